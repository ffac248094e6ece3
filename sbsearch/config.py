"""Where things live: the index, model caches, pruned models and the shared data sets.

Every location can be moved with an environment variable so tests and CI can point
everything at a temporary directory.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
# The source checkout (pyproject.toml beside the package) doubles as the tool's home, so that
# `indexes/` and `models/` of the repository are the defaults the README talks about.
_CHECKOUT = PACKAGE_DIR.parent if (PACKAGE_DIR.parent / "pyproject.toml").exists() else None

DEFAULT_MODEL = "minilm"
# The model of a new index whose documents are mostly CJK (sbsearch.index.language), or its int8
# variant when that measured free
MULTILINGUAL_MODEL = "e5-small"


def home() -> Path:
    """Root for indexes/ and models/: $SBSEARCH_HOME, else the source checkout, else ~/.local/share."""
    env = os.environ.get("SBSEARCH_HOME")
    if env:
        return Path(env).expanduser()
    if _CHECKOUT is not None:
        return _CHECKOUT
    return Path.home() / ".local" / "share" / "sbsearch"


def cpu_threads() -> int:
    """The threads a model runtime may use: $SBSEARCH_THREADS (a Ray worker sets it to the cores
    Ray gave it, so that two workers on two cores do not each run two threads), else every core
    this process may run on."""
    env = os.environ.get("SBSEARCH_THREADS", "")
    if env.isdigit() and int(env) > 0:
        return int(env)
    return max(1, len(os.sched_getaffinity(0)))


def is_store_url(location) -> bool:
    """A PostgreSQL URL (the shared store) rather than an index folder."""
    if isinstance(location, IndexLocation):
        return location.shared
    return isinstance(location, str) and location.startswith(("postgresql://", "postgres://"))


def display_url(url: str) -> str:
    """A PostgreSQL URL without its password, for messages and `status`."""
    return re.sub(r"^(postgres(?:ql)?://[^:/@]*):[^@]*@", r"\1:***@", url)


@dataclass(frozen=True)
class IndexLocation:
    """Where an index lives: a folder (SQLite + FAISS, the embedded default) or a PostgreSQL URL
    (pgvector, shared by many search servers). What differs between the two (how it is named in
    messages and on the status page, whether it exists, where files of it are written on this
    machine) is answered here, once; `value` is what the layers below take (a Path or the URL)."""

    folder: Path | None = None
    url: str | None = None

    @classmethod
    def of(cls, location: "IndexLocation | Path | str | None") -> "IndexLocation":
        """From what a user or a caller gave: a postgresql:// URL, a folder, or None (the default index)."""
        if isinstance(location, IndexLocation):
            return location
        if location is None:
            return cls(folder=default_index_path())
        if is_store_url(location):
            return cls(url=location)
        return cls(folder=Path(location))

    @property
    def shared(self) -> bool:
        """A PostgreSQL store."""
        return self.url is not None

    @property
    def value(self) -> Path | str:
        return self.url if self.url is not None else self.folder

    def exists(self) -> bool:
        """An index folder that holds an index; a URL is asked only when opened (True)."""
        return self.shared or (self.folder / "index.db").exists()

    @property
    def display(self) -> str:
        """For messages: the folder, or the URL without its password."""
        return display_url(self.url) if self.shared else str(self.folder)

    @property
    def name(self) -> str:
        """For a reader (the status page): the folder's name, or the database's (never where it is)."""
        return self.display.rsplit("/", 1)[-1].split("?")[0] if self.shared else self.folder.name

    @property
    def files_dir(self) -> Path:
        """Where a command writes files of the index (charts, a BEIR corpus as files): the index
        folder, or for a PostgreSQL store a folder of this machine's sbsearch home."""
        if self.shared:
            return home() / "store-files" / model_key(self.url.rsplit("@", 1)[-1])
        return self.folder


def default_index_path() -> Path:
    env = os.environ.get("SBSEARCH_INDEX")
    if env:
        return Path(env).expanduser()
    return home() / "indexes" / "default"


def models_dir() -> Path:
    """Where pruned/derived models are written and found by name."""
    env = os.environ.get("SBSEARCH_MODELS_DIR")
    if env:
        return Path(env).expanduser()
    return home() / "models"


def cache_dir() -> Path:
    """Where packaged weights are assembled (the split mpnet zip is ~440 MB once unpacked)."""
    env = os.environ.get("SBSEARCH_CACHE")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "sbsearch"


def shared_data_dir() -> Path:
    """The shared data sets (STS-B, NLI, SICK, StackFAQ); never copied into the repository."""
    env = os.environ.get("SBSEARCH_SHARED_DATA")
    if env:
        return Path(env).expanduser()
    base = _CHECKOUT if _CHECKOUT is not None else Path.cwd()
    return (base / ".." / "shared" / "data").resolve()


def model_key(name: str) -> str:
    """A file-name-safe key for a model name (names may be paths), for files kept per model."""
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in name)[-60:]
    return f"{safe}-{hashlib.sha1(name.encode()).hexdigest()[:8]}"
