"""Which documents a search may return: by path glob, file type, modification date, folder.

A filter is applied before ranking (the store turns it into SQL over the documents table), so a
filter that matches few chunks still yields up to k results from those chunks.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import SbsearchError

# --type names people use for the same files
TYPE_ALIASES = {"markdown": "md", "text": "txt", "word": "docx", "htm": "html", "faq": "jsonl"}


@dataclass(frozen=True)
class DocumentFilter:
    """paths: globs over the path relative to the indexed folder (or the absolute path), any may
    match; types: file suffixes without the dot; folders: relative or absolute folder prefixes;
    modified_after: seconds since the epoch (exclusive). Empty fields do not filter."""

    paths: tuple[str, ...] = ()
    types: tuple[str, ...] = ()
    folders: tuple[str, ...] = ()
    modified_after: float | None = None
    # the reader's groups (None: no access trimming, e.g. the server's admin at the CLI)
    groups: tuple[str, ...] | None = None
    description: tuple[str, ...] = field(default=(), compare=False, hash=False)

    @property
    def active(self) -> bool:
        return bool(self.paths or self.types or self.folders or self.modified_after is not None
                    or self.groups is not None)

    @property
    def narrows(self) -> bool:
        """Criteria the searcher chose (path, type, folder, date), beyond the reader's access."""
        return bool(self.paths or self.types or self.folders or self.modified_after is not None)

    @property
    def reader(self) -> "DocumentFilter | None":
        """The reader's part alone: what they may read, whatever they searched for (None: no
        access trimming). BM25's statistics are taken over it (sbsearch.lexical.bm25)."""
        return None if self.groups is None else DocumentFilter(groups=self.groups)

    def for_reader(self, groups: list[str] | tuple[str, ...] | None) -> "DocumentFilter":
        """The same filter, trimmed to what a reader of these groups may see."""
        from dataclasses import replace

        return self if groups is None else replace(self, groups=tuple(groups))

    @classmethod
    def build(cls, paths=(), types=(), folders=(), modified_after: str | None = None) -> "DocumentFilter":
        """From what a user typed (CLI options, URL parameters); bad input raises SbsearchError."""
        from ..ingest import SUPPORTED_SUFFIXES  # only when types are given: it loads every format's reader

        suffixes = []
        for t in types:
            name = TYPE_ALIASES.get(t.lower().lstrip("."), t.lower().lstrip("."))
            if "." + name not in SUPPORTED_SUFFIXES:
                known = ", ".join(sorted(s.lstrip(".") for s in SUPPORTED_SUFFIXES))
                raise SbsearchError(f"unknown --type {t!r} (known: {known})")
            suffixes.append(name)
            if name == "jsonl":
                suffixes += ["json", "csv"]  # FAQ files
        since = parse_date(modified_after) if modified_after else None
        described = [f"path {p}" for p in paths] + [f"type {t}" for t in types] + [f"folder {f}" for f in folders]
        if modified_after:
            described.append(f"modified after {modified_after}")
        return cls(tuple(paths), tuple(dict.fromkeys(suffixes)), tuple(_folder(f) for f in folders), since,
                   None, tuple(described))


def parse_date(text: str) -> float:
    """YYYY-MM-DD (midnight UTC) or an ISO date-time, as seconds since the epoch."""
    try:
        value = dt.datetime.fromisoformat(text.strip())
    except ValueError:
        raise SbsearchError(f"cannot read the date {text!r}: use YYYY-MM-DD or YYYY-MM-DDTHH:MM") from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.timezone.utc)
    return value.timestamp()


def _folder(folder: str) -> str:
    """An existing folder on disk becomes its absolute path; anything else is a folder relative to
    the indexed root (e.g. "handbooks" or "offices/tokyo")."""
    p = Path(folder).expanduser()
    if p.is_dir() and (p.is_absolute() or folder.startswith(".")):
        return str(p.resolve()).rstrip("/")
    return folder.strip("/")
