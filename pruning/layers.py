"""Choose which transformer layers to keep, and cut a SentenceTransformer down to them.

Strategies (total = layers of the base model, keep = layers to keep):
  top        drop the top (total - keep) layers: keep 0 .. keep-1           (the paper's winner)
  bottom     drop the bottom layers: keep total-keep .. total-1
  middle     drop layers from the middle: keep the lowest ceil(keep/2) and the highest floor(keep/2)
  alternate  evenly spread over the stack, first and last included: round(linspace(0, total-1, keep))
  explicit   the caller's own list of 0-based layer indices (sorted, unique, in range)
"""

from __future__ import annotations

from collections.abc import Sequence

from .host import SbsearchError

STRATEGIES = ("top", "bottom", "middle", "alternate", "explicit")


def choose_layers(total: int, keep: int | None, strategy: str = "top",
                  explicit: Sequence[int] | None = None) -> list[int]:
    """0-based indices of the layers to keep, ascending."""
    if strategy not in STRATEGIES:
        raise SbsearchError(f"unknown layer strategy {strategy!r} (choose from {', '.join(STRATEGIES)})")
    if total <= 0:
        raise SbsearchError(f"the model has no layers to cut (total={total})")
    if strategy == "explicit" or explicit:
        if not explicit:
            raise SbsearchError("strategy 'explicit' needs a list of layer indices, e.g. --keep-layers 0,2,4")
        kept = [int(i) for i in explicit]
        bad = [i for i in kept if not 0 <= i < total]
        if bad:
            raise SbsearchError(f"layer index {bad[0]} out of range: the model has layers 0..{total - 1}")
        if len(set(kept)) != len(kept):
            raise SbsearchError(f"layer list {kept} repeats a layer")
        if kept != sorted(kept):
            raise SbsearchError(f"layer list {kept} is not in ascending order")
        if keep is not None and keep != len(kept):
            raise SbsearchError(f"--layers {keep} does not match the {len(kept)} explicit layers {kept}")
        return kept
    if keep is None or keep <= 0:
        raise SbsearchError(f"number of layers to keep must be at least 1 (got {keep})")
    if keep > total:
        raise SbsearchError(f"cannot keep {keep} layers: the model has only {total}")
    if strategy == "top":
        return list(range(keep))
    if strategy == "bottom":
        return list(range(total - keep, total))
    if strategy == "middle":
        low = keep - keep // 2
        return list(range(low)) + list(range(total - keep // 2, total))
    # alternate
    if keep == 1:
        return [0]
    return sorted({round(i * (total - 1) / (keep - 1)) for i in range(keep)})


def parse_layer_list(text: str) -> list[int]:
    """'0,2,4' or '0 2 4' -> [0, 2, 4] with a clear error for anything else."""
    parts = [p for p in text.replace(",", " ").split() if p]
    try:
        return [int(p) for p in parts]
    except ValueError:
        raise SbsearchError(f"cannot read layer list {text!r}: expected integers like 0,2,4") from None


def hf_model(st_model):
    """The Hugging Face model inside the first (Transformer) module of a SentenceTransformer."""
    first = st_model[0]
    model = getattr(first, "auto_model", None) or getattr(first, "model", None)
    if model is None:
        raise SbsearchError(f"first module {type(first).__name__} is not a Hugging Face transformer")
    return model


def layer_stack(model):
    """(owner, name) of the nn.ModuleList of transformer layers: encoder.layer (BERT, MPNet, RoBERTa,
    XLM-R, ELECTRA …), also under a wrapper's base_model."""
    for root in (model, getattr(model, "base_model", None)):
        enc = getattr(root, "encoder", None) if root is not None else None
        if enc is not None and hasattr(enc, "layer"):
            return enc, "layer"
    raise SbsearchError(f"{type(model).__name__} has no encoder.layer stack; cannot cut its layers")


def count_layers(st_model) -> int:
    owner, name = layer_stack(hf_model(st_model))
    return len(getattr(owner, name))


def cut_model(st_model, kept: Sequence[int]):
    """Keep only the layers `kept` (0-based, ascending) in place; returns the same model.

    The config's num_hidden_layers (and per-layer lists such as layer_types, when a config has them)
    follow, so saving and reloading with SentenceTransformer(path) gives the same embeddings.
    """
    import torch.nn as nn

    model = hf_model(st_model)
    owner, name = layer_stack(model)
    layers = getattr(owner, name)
    total = len(layers)
    kept = choose_layers(total, len(kept), "explicit", list(kept))
    setattr(owner, name, nn.ModuleList([layers[i] for i in kept]))
    cfg = model.config
    cfg.num_hidden_layers = len(kept)
    for attr in ("layer_types",):
        value = getattr(cfg, attr, None)
        if isinstance(value, list) and len(value) == total:
            setattr(cfg, attr, [value[i] for i in kept])
    # layers that know their own index (used for caches in newer transformers) get their new position
    for new_index, layer in enumerate(getattr(owner, name)):
        for module in layer.modules():
            if hasattr(module, "layer_idx") and isinstance(module.layer_idx, int):
                module.layer_idx = new_index
    return st_model
