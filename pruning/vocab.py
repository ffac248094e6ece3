"""Vocabulary trimming: a model that keeps only the word pieces some texts use.

Why: multilingual-e5-small's embedding table holds XLM-R's 250,002 pieces, 384 MB of its 470 MB in
fp32, and layer pruning leaves it whole. A company's documents and its people's questions use a few
percent of those pieces (benchmarks/vocab_trim.py). Trimming changes no weight of the kept pieces:
a text made only of kept pieces is encoded exactly as before. A text with a piece outside the kept
set is cut into other, kept pieces by the same unigram model (its scores are kept), and a character
no kept piece covers becomes <unk>; keep_single_characters keeps every one-character piece of the
vocabulary, so that only characters the model never knew become <unk>.

Works on a saved sentence-transformers directory whose tokenizer is a `tokenizers` Unigram model
(tokenizer.json; XLM-R, E5) and whose weights are one model.safetensors: reads it, writes a trimmed
copy. Text in, model out, like the rest of pruning.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from .host import SbsearchError

EMBEDDING_KEY = "word_embeddings.weight"


def used_pieces(tokenizer_file: Path, texts: list[str], keep_single_characters: bool = True) -> list[int]:
    """The piece ids `texts` use (encoded as given: add the model's prompts first), every special
    piece, and with keep_single_characters every piece of one character; sorted."""
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(tokenizer_file))
    spec = json.loads(Path(tokenizer_file).read_text(encoding="utf-8"))
    if spec["model"]["type"] != "Unigram":
        raise SbsearchError(f"{tokenizer_file}: vocabulary trimming needs a Unigram tokenizer, not {spec['model']['type']}")
    kept = {t["id"] for t in spec.get("added_tokens", [])} | {spec["model"]["unk_id"]}
    for enc in tok.encode_batch(list(texts)):
        kept.update(enc.ids)
    if keep_single_characters:
        kept.update(i for i, (piece, _) in enumerate(spec["model"]["vocab"]) if len(piece.lstrip("\u2581")) <= 1)
    return sorted(kept)


def _renumbered_tokenizer(spec: dict, order: list[int]) -> dict:
    new_id = {old: new for new, old in enumerate(order)}
    spec = json.loads(json.dumps(spec))  # a deep copy
    spec["model"]["vocab"] = [spec["model"]["vocab"][i] for i in order]
    spec["model"]["unk_id"] = new_id[spec["model"]["unk_id"]]
    for token in spec.get("added_tokens", []):
        token["id"] = new_id[token["id"]]
    for special in ((spec.get("post_processor") or {}).get("special_tokens") or {}).values():
        special["ids"] = [new_id[i] for i in special["ids"]]
    return spec


def trim_vocabulary(model_dir: Path, texts: list[str], out_dir: Path, keep_single_characters: bool = True) -> dict:
    """Write to out_dir a copy of the model at model_dir that keeps only the pieces `texts` use (see
    used_pieces); returns what was kept. Refuses a model whose weights or tokenizer it cannot read."""
    import torch
    from safetensors.torch import load_file, save_file

    model_dir, out_dir = Path(model_dir), Path(out_dir)
    weights, tokenizer_file = model_dir / "model.safetensors", model_dir / "tokenizer.json"
    for needed in (weights, tokenizer_file, model_dir / "config.json"):
        if not needed.exists():
            raise SbsearchError(f"{model_dir}: no {needed.name} (vocabulary trimming needs one)")
    order = used_pieces(tokenizer_file, texts, keep_single_characters)
    tensors = load_file(str(weights))
    keys = [k for k in tensors if k.endswith(EMBEDDING_KEY)]
    if len(keys) != 1:
        raise SbsearchError(f"{weights}: expected one {EMBEDDING_KEY}, found {len(keys)}")
    before = tensors[keys[0]].shape[0]
    tensors[keys[0]] = tensors[keys[0]].index_select(0, torch.tensor(order)).contiguous()
    if out_dir.exists():
        shutil.rmtree(out_dir)
    shutil.copytree(model_dir, out_dir, ignore=shutil.ignore_patterns("model.safetensors", "sentencepiece*.model",
                                                                      ".sbsearch-*"))
    save_file(tensors, str(out_dir / "model.safetensors"), metadata={"format": "pt"})
    spec = json.loads(tokenizer_file.read_text(encoding="utf-8"))
    (out_dir / "tokenizer.json").write_text(json.dumps(_renumbered_tokenizer(spec, order), ensure_ascii=False),
                                            encoding="utf-8")
    config = json.loads((model_dir / "config.json").read_text())
    config["vocab_size"] = len(order)
    (out_dir / "config.json").write_text(json.dumps(config, indent=2))
    return {"pieces_before": before, "pieces_kept": len(order), "single_characters_kept": keep_single_characters,
            "texts": len(texts)}
