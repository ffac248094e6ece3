"""Which files of the indexed folders to read: supported types, minus hidden files and the
patterns of each folder's .sbsearchignore."""

from __future__ import annotations

import fnmatch
import os
from pathlib import Path

from . import is_supported

IGNORE_FILE = ".sbsearchignore"


def _ignore_patterns(root: Path) -> list[str]:
    try:
        lines = (root / IGNORE_FILE).read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return []
    return [ln.strip() for ln in lines if ln.strip() and not ln.lstrip().startswith("#")]


def _ignored(rel: str, patterns: list[str]) -> bool:
    name = rel.rsplit("/", 1)[-1]
    return any(fnmatch.fnmatch(rel, p) or fnmatch.fnmatch(name, p) for p in patterns)


def scan(roots: list[Path]) -> tuple[dict[str, Path], list[dict]]:
    """All supported files under the roots, by absolute path; plus unsupported/unreadable ones."""
    found: dict[str, Path] = {}
    skipped: list[dict] = []
    for root in roots:
        if root.is_file():
            found[str(root)] = root
            continue
        patterns = _ignore_patterns(root)

        def on_error(exc: OSError):
            skipped.append({"path": exc.filename, "error": f"cannot read folder: {exc.strerror}"})

        # followlinks=False: a symlink loop cannot trap the walk; linked files are still read.
        for dirpath, dirnames, filenames in os.walk(root, onerror=on_error, followlinks=False):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            for fname in sorted(filenames):
                if fname.startswith(".") or fname == IGNORE_FILE:
                    continue
                path = Path(dirpath) / fname
                rel = path.relative_to(root).as_posix()
                if _ignored(rel, patterns):
                    continue
                if not is_supported(path):
                    skipped.append({"path": str(path), "error": f"unsupported file type {path.suffix or '(none)'}"})
                    continue
                found[str(path)] = path
    return found, skipped
