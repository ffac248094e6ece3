"""OCR with Tesseract: page images in, text out, cached by the file's sha256.

Tesseract runs as a program (`tesseract stdin stdout -l eng+jpn`): nothing to import, and a page
that makes it crash or hang costs one page, not the indexing run. The text of every page read is
kept in a JSON file per source file under the cache folder (sbsearch.config.cache_dir()/ocr), keyed
by the file's sha256, the page number and the languages, so a file is never OCR'd twice: not on
a re-index, not in a second index, not after a rename.

Where Tesseract is missing, `Ocr.available` is False and the loaders report the pages they could
not read as OCR_UNAVAILABLE instead of indexing an empty document as if all were well.
"""

from __future__ import annotations

import functools
import io
import json
import os
import re
import shutil
import subprocess
import threading
import time
import unicodedata
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from .. import config
from ..config import cpu_threads
from ..errors import IngestError, SbsearchError

# The words every "could not OCR" message holds: the indexer re-reads such files once OCR works.
OCR_UNAVAILABLE = "OCR not available"
INSTALL_HINT = "install Tesseract: apt-get install tesseract-ocr tesseract-ocr-jpn"
PREFERRED_LANGUAGES = ("eng", "jpn")
# Page images are rendered at this resolution (Tesseract's accuracy peaks around 300 dpi) …
RENDER_DPI = 300
# … unless that makes more pixels than this (a poster-sized page would need gigabytes)
MAX_RENDER_PIXELS = 40_000_000
PAGE_TIMEOUT_S = 180
# A page whose darkest pixel is this light is blank: nothing to read
BLANK_PAGE_MIN_LEVEL = 235


def tesseract_binary() -> str | None:
    """The Tesseract program: $SBSEARCH_TESSERACT (a name or path; empty: none), else `tesseract`
    on the PATH; None when there is none."""
    name = os.environ.get("SBSEARCH_TESSERACT", "tesseract")
    return shutil.which(name) if name else None


@functools.lru_cache(maxsize=8)
def installed_languages(binary: str) -> tuple[str, ...]:
    try:
        out = subprocess.run([binary, "--list-langs"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return ()
    # the first line is a header ("List of available languages in ...")
    return tuple(ln.strip() for ln in out.splitlines()[1:] if ln.strip() and ln.strip() != "osd")


def default_languages(installed: tuple[str, ...]) -> str | None:
    """eng+jpn when both are installed, else whichever of them is, else the first installed."""
    preferred = [lang for lang in PREFERRED_LANGUAGES if lang in installed]
    if preferred:
        return "+".join(preferred)
    return installed[0] if installed else None


_CJK = r"\u3000-\u30ff\u3400-\u9fff\uf900-\ufaff\uff00-\uffef"
_CJK_CHAR = re.compile(f"[{_CJK}]")
_CID = re.compile(r"\(cid:\d+\)")
_LATIN_WORD = re.compile(r"[A-Za-z\u00c0-\u024f]{2,}")
_VOWEL = re.compile(r"[aeiouyAEIOUY\u00c0-\u00c6\u00c8-\u00cf\u00d2-\u00d6\u00d8-\u00dd\u00e0-\u00e6\u00e8-\u00ef\u00f2-\u00f6\u00f8-\u00fd]")


def readable(text: str) -> bool:
    """Does this look like text a person wrote? False for an empty page, for a text layer of
    unmapped glyphs ("(cid:12)(cid:7)", private-use or control characters) and for OCR noise
    read off a photo (mostly punctuation and symbols)."""
    chars = [c for c in _CID.sub("\x00", text) if not c.isspace()]
    if not chars:
        return False
    letters = sum(1 for c in chars if c.isalnum())
    broken = sum(1 for c in chars if c == "\ufffd" or unicodedata.category(c) in ("Co", "Cc", "Cn", "Cs"))
    if letters < 0.5 * len(chars) or broken > 0.1 * len(chars):
        return False
    # OCR of symbols or a photo makes letters too ("nn SS J] CO"), but hardly words: nearly every
    # word of a European language has a vowel (Latin words in Japanese text are acronyms: not there)
    if len(_CJK_CHAR.findall(text)) >= 0.2 * letters:
        return True
    words = _LATIN_WORD.findall(text)
    return len(words) < 5 or sum(1 for w in words if _VOWEL.search(w)) >= 0.7 * len(words)


# what sits next to Japanese characters without a space: digits of dates and times, brackets
_CJK_NEIGHBOUR = _CJK + r"0-9()\[\]:.,"
_SPACE_IN_CJK = re.compile(rf"(?<=[{_CJK}])[ \t]+(?=[{_CJK_NEIGHBOUR}])|(?<=[{_CJK_NEIGHBOUR}])[ \t]+(?=[{_CJK}])")


def tidy(text: str) -> str:
    """Tesseract sets Japanese with spaces between characters ("2025 年 4 月"); Japanese has none."""
    text = text.replace("\f", "").replace("\r\n", "\n")
    return _SPACE_IN_CJK.sub("", text).strip()


@dataclass
class OcrStats:
    pages_read: int = 0  # pages Tesseract read in this process
    cache_hits: int = 0  # pages answered from the cache
    seconds: float = 0.0  # spent reading pages: rendering them and Tesseract


class Ocr:
    """Reads page images with Tesseract; one instance per indexing run (its stats are the run's)."""

    def __init__(self, languages: str | None = None, cache_dir: Path | None = None):
        self.binary = tesseract_binary()
        self._languages = languages
        self.cache_dir = Path(cache_dir) if cache_dir is not None else config.cache_dir() / "ocr"
        self.stats = OcrStats()
        self._stats_lock = threading.Lock()

    @property
    def available(self) -> bool:
        return self.binary is not None and self.languages is not None

    @functools.cached_property
    def languages(self) -> str | None:
        """The languages asked for, checked against those installed; None without Tesseract."""
        if self.binary is None:
            return None
        installed = installed_languages(self.binary)
        if not self._languages:
            return default_languages(installed)
        missing = [lang for lang in self._languages.split("+") if lang not in installed]
        if missing:
            raise SbsearchError(f"OCR language {'+'.join(missing)} is not installed "
                                f"(installed: {', '.join(installed) or 'none'}; e.g. apt-get install "
                                f"tesseract-ocr-{missing[0]})")
        return self._languages

    def describe(self) -> str:
        if not self.available:
            return f"{OCR_UNAVAILABLE} ({INSTALL_HINT})"
        return f"Tesseract ({self.binary}), languages {self.languages}"

    def read_pages(self, file_sha256: str, pages: dict[int, Callable[[], object]]) -> dict[int, str]:
        """Text of each page (number -> a function making its PIL image), from the cache when this
        file's page was read before with these languages."""
        cache_file = self.cache_dir / file_sha256[:2] / f"{file_sha256}.json"
        try:
            cached = json.loads(cache_file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            cached = {}
        mine = cached.setdefault(self.languages, {})
        out: dict[int, str] = {}
        todo = []
        for number, make_image in pages.items():
            if str(number) in mine:
                self.stats.cache_hits += 1
                out[number] = mine[str(number)]
            else:
                todo.append((number, make_image))
        fresh = bool(todo)
        if todo:
            started = time.perf_counter()
            try:
                for number, text in zip([n for n, _ in todo], self._read_in_parallel([m for _, m in todo])):
                    out[number] = mine[str(number)] = text
            finally:
                self.stats.seconds += time.perf_counter() - started
        if fresh:
            _write_atomically(cache_file, json.dumps(cached, ensure_ascii=False))
        return out

    def _read_in_parallel(self, make_images: list[Callable[[], object]]) -> list[str]:
        """Pages read by one Tesseract process per core, at most that many at a time: Tesseract
        runs one thread a page, so a scan's pages one by one left a core idle once the embedding
        was done (benchmarks/indexing.py). Images are made one at a time (a multi-page image or a
        PDF is not safe to render from two threads); a failed page fails the file, as before."""
        lock = threading.Lock()

        def read(make_image) -> str:
            with lock:
                image = make_image()
            return self.read_image(image)

        workers = min(len(make_images), cpu_threads())
        if workers <= 1:
            return [read(m) for m in make_images]
        with ThreadPoolExecutor(workers, thread_name_prefix="sbsearch-ocr") as pool:
            return list(pool.map(read, make_images))

    def read_image(self, image) -> str:
        """One page image's text ("" for a blank page)."""
        gray = image.convert("L")
        if gray.getextrema()[0] >= BLANK_PAGE_MIN_LEVEL:
            return ""
        png = io.BytesIO()
        gray.save(png, format="PNG", dpi=(RENDER_DPI, RENDER_DPI))
        # Tesseract's own threads made a page about 3x slower on a 2-core server (benchmarks/ocr.py):
        # one thread unless OMP_THREAD_LIMIT says otherwise
        try:
            done = subprocess.run([self.binary, "stdin", "stdout", "-l", self.languages, "--psm", "3"],
                                  input=png.getvalue(), capture_output=True, timeout=PAGE_TIMEOUT_S,
                                  env={"OMP_THREAD_LIMIT": "1", **os.environ})
        except subprocess.TimeoutExpired:
            raise IngestError(f"OCR of a page took over {PAGE_TIMEOUT_S} s") from None
        with self._stats_lock:
            self.stats.pages_read += 1
        if done.returncode != 0:
            reason = done.stderr.decode("utf-8", "replace").strip().splitlines()[-1:] or ["no message"]
            raise IngestError(f"Tesseract failed on a page ({reason[0][:200]})")
        return tidy(done.stdout.decode("utf-8", "replace"))


def render_scale(width_pt: float, height_pt: float) -> float:
    """Scale from PDF points to pixels: RENDER_DPI, lowered for pages too large to render whole."""
    scale = RENDER_DPI / 72
    pixels = width_pt * height_pt * scale * scale
    if pixels > MAX_RENDER_PIXELS:
        scale *= (MAX_RENDER_PIXELS / pixels) ** 0.5
    return scale


def _write_atomically(path: Path, text: str) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    except OSError:
        pass  # the cache only saves time; a read-only cache folder must not fail the file
