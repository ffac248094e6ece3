"""One writer per index: an OS file lock (flock), released by the kernel when its holder dies,
so a killed `sbsearch index` never leaves a stale lock behind."""

from __future__ import annotations

import json
import os
import sys
import time
from contextlib import contextmanager
from pathlib import Path

from ..errors import SbsearchError

LOCK_NAME = "writer.lock"
HOLDER_NAME = "writer.json"


@contextmanager
def writer_lock(index_path: Path, wait: bool | float = False):
    """Hold the index's writer lock. wait=False: fail at once if held; True: wait for it;
    a number: wait that many seconds at most."""
    from filelock import FileLock, Timeout

    index_path = Path(index_path)
    index_path.mkdir(parents=True, exist_ok=True)
    timeout = -1 if wait is True else (0 if wait is False else float(wait))
    lock = FileLock(str(index_path / LOCK_NAME), timeout=timeout)
    try:
        lock.acquire()
    except Timeout:
        holder = _holder(index_path)
        who = f" (pid {holder.get('pid')}, since {holder.get('since')})" if holder else ""
        raise SbsearchError(f"another sbsearch process is writing to {index_path}{who}; "
                            "try again later or pass --wait") from None
    try:
        tmp = index_path / f".{HOLDER_NAME}.{os.getpid()}"
        tmp.write_text(json.dumps({"pid": os.getpid(), "since": time.strftime("%Y-%m-%dT%H:%M:%S"),
                                   "argv": sys.argv[1:]}))
        os.replace(tmp, index_path / HOLDER_NAME)
        yield
    finally:
        (index_path / HOLDER_NAME).unlink(missing_ok=True)
        lock.release()


def _holder(index_path: Path) -> dict:
    try:
        return json.loads((index_path / HOLDER_NAME).read_text())
    except (OSError, ValueError):
        return {}
