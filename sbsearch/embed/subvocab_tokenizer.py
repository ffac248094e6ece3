"""The model's own Unigram tokenizer, built for each text from only the pieces that text can use.

Why: loading the 250,002-piece Unigram vocabulary of multilingual-e5-small takes the `tokenizers`
library about 0.9 s (0.5 s of JSON, then its trie), most of a cold `sbsearch query`, which tokenizes
a few words. A Unigram segmentation of a text can only use pieces that are substrings of the text
after normalisation and pre-tokenisation, so a Unigram model over just those pieces, with the
same scores, the same special pieces at the same ids and the same lowest score (which sets the
penalty of an unknown character), segments the text exactly as the whole vocabulary does. Its ids
are mapped back to the whole vocabulary's.

Side files next to tokenizer.json (written the first time the whole tokenizer is loaded) hold the
pieces one per line in sorted order, their ids and their scores: a piece is found by bisection, so
a process builds no 250,002-entry dict (0.15 s). Their record names tokenizer.json's sha256, so a
changed tokenizer is never paired with stale pieces. Texts holding an added token (`<mask>`…), and long
batches (documents), go to the whole tokenizer, loaded once on first need.
"""

from __future__ import annotations

import json
import os
from bisect import bisect_left
from pathlib import Path

import numpy as np

from ..hashing import cached_sha256

PIECES_FILE = "tokenizer-pieces.txt"  # sorted
IDS_FILE = "tokenizer-piece-ids.npy"  # the id of each sorted piece
SCORES_FILE = "tokenizer-scores.npy"  # by id
RECORD_FILE = "tokenizer-subvocab.json"
# Above this many characters in one batch, the whole tokenizer (loaded once) is cheaper than
# enumerating substrings in Python, and its load is amortised over the texts.
MAX_CHARS = 4_000


def _load_whole(model_dir: Path, max_seq_length: int):
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    tokenizer.enable_truncation(max_seq_length)
    tokenizer.no_padding()
    return tokenizer


def write_side_files(model_dir: Path) -> bool:
    """Write the pieces, scores and record for a Unigram tokenizer.json; False when the tokenizer
    is not one this module can serve (another model type, byte fallback, a piece with a newline)."""
    spec = json.loads((model_dir / "tokenizer.json").read_text(encoding="utf-8"))
    model = spec.get("model") or {}
    vocab = model.get("vocab") or []
    if model.get("type") != "Unigram" or model.get("byte_fallback") or any("\n" in p for p, _ in vocab):
        return False
    keep = max([model["unk_id"]] + [a["id"] for a in spec.get("added_tokens", []) if a["id"] < 64]) + 1
    skeleton = {**spec, "model": {**model, "vocab": []},
                "added_tokens": [a for a in spec.get("added_tokens", []) if a["id"] < keep]}
    scores = np.asarray([s for _, s in vocab], dtype=np.float64)
    lowest = int(np.argmin(scores))
    record = {"tokenizer_sha256": cached_sha256(model_dir / "tokenizer.json"), "keep_first": keep,
              "max_piece_chars": max(len(p) for p, _ in vocab),
              "added_contents": [a["content"] for a in spec.get("added_tokens", [])],
              # the pieces a text's candidates never supply: kept first, and the lowest score
              "fixed_pieces": {str(i): vocab[i][0] for i in [*range(keep), lowest]},
              "skeleton": skeleton}
    order = sorted(range(len(vocab)), key=lambda i: vocab[i][0])
    _atomic_write(model_dir / PIECES_FILE, "\n".join(vocab[i][0] for i in order).encode("utf-8"))
    _atomic_save(model_dir / IDS_FILE, np.asarray(order, dtype=np.int32))
    _atomic_save(model_dir / SCORES_FILE, scores)
    _atomic_write(model_dir / RECORD_FILE, json.dumps(record).encode("utf-8"))  # last: marks the set complete
    return True


def _atomic_save(path: Path, array: np.ndarray) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as f:
        np.save(f, array)
    os.replace(tmp, path)


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


class SubVocabTokenizer:
    """encode_batch like a `tokenizers.Tokenizer` (truncated, unpadded), from the side files."""

    def __init__(self, model_dir: Path, max_seq_length: int, record: dict):
        from tokenizers import Tokenizer

        self.model_dir, self.max_seq_length, self.record = model_dir, max_seq_length, record
        self.sorted_pieces = (model_dir / PIECES_FILE).read_bytes().decode("utf-8").split("\n")
        self.sorted_ids = np.load(model_dir / IDS_FILE)
        self.scores = np.load(model_dir / SCORES_FILE)
        self.fixed = {int(i): p for i, p in record["fixed_pieces"].items()}
        self.keep = int(record["keep_first"])
        self.max_len = int(record["max_piece_chars"])
        self.skeleton = record["skeleton"]
        shaper_spec = {**self.skeleton, "model": {**self.skeleton["model"], "vocab": self._vocab(
            {i: self.fixed[i] for i in range(self.keep)})}}
        self._shaper = Tokenizer.from_str(json.dumps(shaper_spec))
        self._whole = None

    @classmethod
    def open(cls, model_dir: Path, max_seq_length: int) -> "SubVocabTokenizer | None":
        """The tokenizer from valid side files, else None."""
        try:
            record = json.loads((model_dir / RECORD_FILE).read_text(encoding="utf-8"))
            if record.get("tokenizer_sha256") != cached_sha256(model_dir / "tokenizer.json"):
                return None
            return cls(model_dir, max_seq_length, record)
        except (OSError, ValueError, KeyError):
            return None

    def _vocab(self, pieces: dict[int, str]) -> list:
        """[piece, score] in id order, for the ids given."""
        return [[pieces[i], float(self.scores[i])] for i in sorted(pieces)]

    def _id_of(self, piece: str) -> int | None:
        at = bisect_left(self.sorted_pieces, piece)
        return int(self.sorted_ids[at]) if at < len(self.sorted_pieces) and self.sorted_pieces[at] == piece else None

    def candidates(self, text: str) -> dict[int, str]:
        """Every piece that occurs in the text as the model sees it (normalised, pre-tokenised), by id."""
        normalised = self._shaper.normalizer.normalize_str(text) if self._shaper.normalizer else text
        found: dict[int, str] = {}
        for word, _ in self._shaper.pre_tokenizer.pre_tokenize_str(normalised):
            for start in range(len(word)):
                for end in range(start + 1, min(len(word), start + self.max_len) + 1):
                    piece = word[start:end]
                    i = self._id_of(piece)
                    if i is not None and i >= self.keep:
                        found[i] = piece
        return found

    def whole(self):
        if self._whole is None:
            self._whole = _load_whole(self.model_dir, self.max_seq_length)
        return self._whole

    def encode_batch(self, texts: list[str]) -> list:
        if self._whole is not None or sum(map(len, texts)) > MAX_CHARS:
            return self.whole().encode_batch(texts)
        return [self.encode(t) for t in texts]

    def encode(self, text: str):
        from tokenizers import Tokenizer, models

        if any(a in text for a in self.record["added_contents"]):
            return self.whole().encode(text)  # an added token (<mask>) has an id the sub-vocabulary lacks
        pieces = {**self.candidates(text), **self.fixed}
        global_ids = sorted(pieces)  # the kept first pieces stay at their own ids (0 .. keep-1)
        spec = self.skeleton["model"]
        local = Tokenizer(models.Unigram([tuple(v) for v in self._vocab(pieces)], spec["unk_id"],
                                         spec.get("byte_fallback", False)))
        # the normaliser, pre-tokeniser, post-processor and special tokens are the shaper's own objects
        local.normalizer, local.pre_tokenizer = self._shaper.normalizer, self._shaper.pre_tokenizer
        local.post_processor, local.decoder = self._shaper.post_processor, self._shaper.decoder
        local.add_special_tokens([a["content"] for a in self.skeleton["added_tokens"]])
        local.enable_truncation(self.max_seq_length)
        local.no_padding()
        enc = local.encode(text)
        return _Encoding([global_ids[i] for i in enc.ids])


class _Encoding:
    """The part of a tokenizers Encoding the encoders read."""

    __slots__ = ("ids",)

    def __init__(self, ids: list[int]):
        self.ids = ids


def load_tokenizer(model_dir: Path, max_seq_length: int):
    """The fastest exact tokenizer for an export: the sub-vocabulary one when its side files are
    valid, else the whole tokenizer (writing the side files for the next process when it can)."""
    fast = SubVocabTokenizer.open(model_dir, max_seq_length)
    if fast is not None:
        return fast
    whole = _load_whole(model_dir, max_seq_length)
    try:
        if (model_dir / "tokenizer.json").stat().st_size > 4_000_000:  # worth it only for big vocabularies
            write_side_files(model_dir)
    except OSError:
        pass  # a read-only model cache: the next process loads the whole tokenizer again
    return whole
