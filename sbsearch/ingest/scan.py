"""Which files of the indexed folders to read: supported types, minus hidden files and the
patterns of each folder's .sbsearchignore."""

from __future__ import annotations

import fnmatch
import os
import stat
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


def _note_hard_link(path: Path, inodes: dict | None) -> None:
    """Record a regular file of several names (a hard link) under its (device, inode)."""
    if inodes is None:
        return
    try:
        st = os.lstat(path)
    except OSError:
        return
    if stat.S_ISREG(st.st_mode) and st.st_nlink > 1:
        inodes.setdefault((st.st_dev, st.st_ino), set()).add(str(path))


def scan(roots: list[Path], inodes: dict | None = None) -> tuple[dict[str, Path], list[dict]]:
    """All supported files under the roots, by absolute path; plus unsupported/unreadable ones.

    inodes, when given, is filled with (st_dev, st_ino) -> the paths seen under the roots of every
    regular file that has more than one name (hard links), whatever its type, hidden or ignored
    files included (files in hidden folders are not walked): the indexer reads such a file only
    when all its names are inside the indexed folders."""
    found: dict[str, Path] = {}
    skipped: list[dict] = []
    for root in roots:
        if root.is_file():
            found[str(root)] = root
            _note_hard_link(root, inodes)
            continue
        patterns = _ignore_patterns(root)

        def on_error(exc: OSError):
            skipped.append({"path": exc.filename, "error": f"cannot read folder: {exc.strerror}"})

        # followlinks=False: a symlink loop cannot trap the walk; linked files are still read (the
        # indexer checks where they lead).
        for dirpath, dirnames, filenames in os.walk(root, onerror=on_error, followlinks=False):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            for fname in sorted(filenames):
                path = Path(dirpath) / fname
                _note_hard_link(path, inodes)
                if fname.startswith(".") or fname == IGNORE_FILE:
                    continue
                rel = path.relative_to(root).as_posix()
                if _ignored(rel, patterns):
                    continue
                if not is_supported(path):
                    skipped.append({"path": str(path), "error": f"unsupported file type {path.suffix or '(none)'}"})
                    continue
                found[str(path)] = path
    return found, skipped
