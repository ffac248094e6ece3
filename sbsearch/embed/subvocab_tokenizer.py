"""The model's own Unigram tokenizer, built for each text from only the pieces that text can use.

Why: loading the 250,002-piece Unigram vocabulary of multilingual-e5-small takes the `tokenizers`
library about 0.9 s (0.5 s of JSON, then its trie), most of a cold `sbsearch query`, which tokenizes
a few words. A Unigram segmentation of a text can only use pieces that are substrings of the text
after normalisation and pre-tokenisation, so a Unigram model over just those pieces, with the
same scores, the same special pieces at the same ids and the same lowest score (which sets the
penalty of an unknown character), segments the text exactly as the whole vocabulary does. Its ids
are mapped back to the whole vocabulary's.

A side file next to tokenizer.json (written the first time the whole tokenizer is loaded) holds
the pieces one per line and their scores; its record names tokenizer.json's sha256, so a changed
tokenizer is never paired with stale pieces. Texts holding an added token (`<mask>`…), and long
batches (documents), go to the whole tokenizer, loaded once on first need.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from ..hashing import cached_sha256

PIECES_FILE = "tokenizer-pieces.txt"
SCORES_FILE = "tokenizer-scores.npy"
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
    record = {"tokenizer_sha256": cached_sha256(model_dir / "tokenizer.json"), "keep_first": keep,
              "max_piece_chars": max(len(p) for p, _ in vocab),
              "added_contents": [a["content"] for a in spec.get("added_tokens", [])],
              "skeleton": skeleton}
    _atomic_write(model_dir / PIECES_FILE, "\n".join(p for p, _ in vocab).encode("utf-8"))
    scores = np.asarray([s for _, s in vocab], dtype=np.float64)
    tmp = model_dir / f".{SCORES_FILE}.tmp"
    with open(tmp, "wb") as f:
        np.save(f, scores)
    os.replace(tmp, model_dir / SCORES_FILE)
    _atomic_write(model_dir / RECORD_FILE, json.dumps(record).encode("utf-8"))  # last: marks the set complete
    return True


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


class SubVocabTokenizer:
    """encode_batch like a `tokenizers.Tokenizer` (truncated, unpadded), from the side files."""

    def __init__(self, model_dir: Path, max_seq_length: int, record: dict):
        from tokenizers import Tokenizer

        self.model_dir, self.max_seq_length, self.record = model_dir, max_seq_length, record
        self.pieces = (model_dir / PIECES_FILE).read_bytes().decode("utf-8").split("\n")
        self.scores = np.load(model_dir / SCORES_FILE)
        self.ids = {p: i for i, p in enumerate(self.pieces)}
        self.keep = int(record["keep_first"])
        # the lowest score sets the unknown-character penalty: one piece holding it keeps it
        self.lowest = int(np.argmin(self.scores))
        self.max_len = int(record["max_piece_chars"])
        self.skeleton = record["skeleton"]
        self._shaper = Tokenizer.from_str(json.dumps(self._spec(list(range(self.keep)))))
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

    def _spec(self, global_ids: list[int]) -> dict:
        model = {**self.skeleton["model"], "vocab": [[self.pieces[i], float(self.scores[i])] for i in global_ids]}
        return {**self.skeleton, "model": model}

    def candidate_ids(self, text: str) -> list[int]:
        """Ids of every piece that occurs in the text as the model sees it (normalised, pre-tokenised)."""
        normalised = self._shaper.normalizer.normalize_str(text) if self._shaper.normalizer else text
        found: set[int] = set()
        for word, _ in self._shaper.pre_tokenizer.pre_tokenize_str(normalised):
            for start in range(len(word)):
                for end in range(start + 1, min(len(word), start + self.max_len) + 1):
                    i = self.ids.get(word[start:end])
                    if i is not None and i >= self.keep:
                        found.add(i)
        return sorted(found)

    def whole(self):
        if self._whole is None:
            self._whole = _load_whole(self.model_dir, self.max_seq_length)
        return self._whole

    def encode_batch(self, texts: list[str]) -> list:
        if self._whole is not None or sum(map(len, texts)) > MAX_CHARS or any(
                a in t for t in texts for a in self.record["added_contents"]):
            return self.whole().encode_batch(texts)
        return [self.encode(t) for t in texts]

    def encode(self, text: str):
        from tokenizers import Tokenizer, models

        wanted = sorted(set(self.candidate_ids(text)) | ({self.lowest} if self.lowest >= self.keep else set()))
        global_ids = list(range(self.keep)) + wanted
        spec = self.skeleton["model"]
        local = Tokenizer(models.Unigram([(self.pieces[i], float(self.scores[i])) for i in global_ids],
                                         spec["unk_id"], spec.get("byte_fallback", False)))
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
