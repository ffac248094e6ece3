"""File hashing with a small on-disk memo so a 440 MB weights file is hashed once, not per query."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from . import config

_CHUNK = 1 << 20


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(_CHUNK):
            h.update(block)
    return h.hexdigest()


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _memo_path() -> Path:
    return config.cache_dir() / "sha256-memo.json"


def cached_sha256(path: Path) -> str:
    """sha256 of `path`, re-computed only when its size or mtime changed since last time."""
    path = Path(path).resolve()
    st = path.stat()
    key = str(path)
    stamp = [st.st_size, st.st_mtime_ns]
    memo_file = _memo_path()
    try:
        memo = json.loads(memo_file.read_text())
    except (OSError, ValueError):
        memo = {}
    entry = memo.get(key)
    if entry and entry.get("stamp") == stamp:
        return entry["sha256"]
    digest = sha256_file(path)
    memo[key] = {"stamp": stamp, "sha256": digest}
    try:
        memo_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = memo_file.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(memo))
        os.replace(tmp, memo_file)
    except OSError:
        pass  # the memo is only an optimisation
    return digest
