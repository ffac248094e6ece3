"""OCR measured in one run: quality on generated scans, throughput, its share of a first index of
sample_docs, and that an unchanged scanned PDF costs no OCR when indexed again.

    .venv/bin/python benchmarks/ocr.py [--no-write]

Quality: character error rate (edit distance / source length, whitespace removed, NFKC) of the
OCR text against the text the scans were typeset from (scripts/make_sample_formats.py): the
scanned letter (English, 2 pages) and the Japanese notice of sample_docs as committed (200 dpi,
tilt under 1°, grey noise), and the same letter as a fax (100 dpi) made at run time. Each is read
with the default languages (eng+jpn) and with its own language alone.

Throughput: pages per second of `Ocr.read_pages` (rendering + Tesseract, one page at a time, one
Tesseract thread; the same page with Tesseract's default threads for comparison).

Share of index time: `sbsearch index sample_docs` into a new index with the default model (its
weights already assembled), OCR cache empty; then the same again unchanged, after a touch, and into
a second index (from the OCR cache).

Writes benchmarks/results/ocr.json and appends a section to docs/BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import importlib.util
import io
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import unicodedata
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "benchmarks"), str(REPO / "tests")]

import docgen  # noqa: E402
from report import publish  # noqa: E402
from sbsearch.index.indexer import Indexer  # noqa: E402
from sbsearch.ingest import ReadOptions, load_document  # noqa: E402
from sbsearch.ingest.ocr import Ocr  # noqa: E402

RESULTS = REPO / "benchmarks" / "results" / "ocr.json"
SAMPLES = REPO / "sample_docs"


def _sample_sources():
    spec = importlib.util.spec_from_file_location("make_sample_formats", REPO / "scripts" / "make_sample_formats.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _normalised(text: str) -> str:
    return "".join(unicodedata.normalize("NFKC", text).split())


def edit_distance(a: str, b: str) -> int:
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]


def cer(ocr_text: str, source: str) -> float:
    ocr_text, source = _normalised(ocr_text), _normalised(source)
    return edit_distance(ocr_text, source) / max(1, len(source))


def ocr_document(path: Path, languages: str | None, cache: Path) -> tuple[str, Ocr, float]:
    ocr = Ocr(languages, cache_dir=cache)
    started = time.perf_counter()
    doc = load_document(path, options=ReadOptions(ocr=ocr))
    return "\n".join(s.text for s in doc.sections), ocr, time.perf_counter() - started


def quality(sources, tmp: Path) -> list[dict]:
    fax = docgen.make_scan(tmp / "letter-fax.pdf", sources.LANDLORD_LETTER, dpi=100, seed=7)
    cases = [
        ("English letter, 200 dpi", SAMPLES / "facilities" / "landlord-letter-facade-works-2025-scan.pdf",
         sources.LANDLORD_LETTER, "eng"),
        ("English letter as a fax, 100 dpi", fax, sources.LANDLORD_LETTER, "eng"),
        ("Japanese notice, 200 dpi", SAMPLES / "offices" / "tokyo" / "building-power-outage-notice-2025-ja-scan.pdf",
         sources.TOKYO_OUTAGE_NOTICE, "jpn"),
    ]
    rows = []
    for name, path, pages, own_language in cases:
        source = sources.source_text(pages)
        for languages in (None, own_language):
            text, ocr, seconds = ocr_document(path, languages, tmp / f"cache-{len(rows)}")
            rows.append({"scan": name, "languages": ocr.languages, "pages": ocr.stats.pages_read,
                         "cer": round(cer(text, source), 4), "source_chars": len(_normalised(source)),
                         "seconds": round(seconds, 2), "pages_per_s": round(ocr.stats.pages_read / ocr.stats.seconds, 3)})
            print(rows[-1], flush=True)
    return rows


def thread_comparison() -> dict:
    """One page read by Tesseract with one thread and with its default threads, in turns."""
    import pypdfium2

    pdf = pypdfium2.PdfDocument(str(SAMPLES / "facilities" / "landlord-letter-facade-works-2025-scan.pdf"))
    image = pdf[0].render(scale=300 / 72, grayscale=True).to_pil()
    png = io.BytesIO()
    image.save(png, "PNG", dpi=(300, 300))
    times: dict[str, list[float]] = {"one thread": [], "default threads": []}
    for _ in range(3):
        for name in times:
            env = {k: v for k, v in os.environ.items() if k != "OMP_THREAD_LIMIT"}
            if name == "one thread":
                env["OMP_THREAD_LIMIT"] = "1"
            started = time.perf_counter()
            subprocess.run(["tesseract", "stdin", "stdout", "-l", "eng+jpn"], input=png.getvalue(),
                           capture_output=True, env=env, check=True)
            times[name].append(time.perf_counter() - started)
    return {name: round(sorted(t)[1], 2) for name, t in times.items()}


def index_runs(tmp: Path) -> dict:
    """First index of sample_docs with an empty OCR cache, then runs that must not OCR."""
    cache = tmp / "ocr-cache"

    def run(index: Path, roots: list[Path]) -> dict:
        indexer = Indexer(index)
        indexer.read_options.ocr = Ocr(cache_dir=cache)
        s = indexer.run(roots)
        return {"model": s.model, "seconds": s.seconds, "documents_added": s.added, "unchanged": s.unchanged,
                "updated": s.updated, "failed": s.failed, **{f"ocr_{k}": v for k, v in s.ocr.items() if k != "engine"}}

    first = run(tmp / "index-a", [SAMPLES])
    first["ocr_share"] = round(first["ocr_seconds"] / first["seconds"], 3)
    unchanged = run(tmp / "index-a", [SAMPLES])
    scan = SAMPLES / "facilities" / "landlord-letter-facade-works-2025-scan.pdf"
    os.utime(scan)  # touched, not changed
    touched = run(tmp / "index-a", [SAMPLES])
    elsewhere = run(tmp / "index-b", [scan])
    return {"first": first, "unchanged": unchanged, "touched": touched, "other_index_same_scan": elsewhere}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--no-write", action="store_true", help="print only; do not write results or docs")
    args = parser.parse_args()
    sources = _sample_sources()
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        rows = quality(sources, tmp)
        threads = thread_comparison()
        runs = index_runs(tmp)
    tesseract = subprocess.run(["tesseract", "--version"], capture_output=True, text=True).stdout.splitlines()[0]
    result = {"created": time.strftime("%Y-%m-%d"), "machine": f"{platform.machine()}, {os.cpu_count()} cores",
              "tesseract": tesseract, "quality": rows, "one_page_seconds": threads, "index": runs}
    if not args.no_write:
        RESULTS.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    publish(markdown(result), write=not args.no_write)
    return 0


def markdown(r: dict) -> str:
    lines = [f"### OCR (benchmarks/ocr.py, {r['created']}, {r['machine']}, {r['tesseract']})", "",
             "Command: `.venv/bin/python benchmarks/ocr.py` (results: `benchmarks/results/ocr.json`).", "",
             "| scan | languages | pages | CER | pages/s |", "|---|---|---|---|---|"]
    for q in r["quality"]:
        lines.append(f"| {q['scan']} | {q['languages']} | {q['pages']} | {q['cer'] * 100:.1f}% | {q['pages_per_s']:.2f} |")
    t = r["one_page_seconds"]
    first = r["index"]["first"]
    lines += ["", f"One page with one Tesseract thread: {t['one thread']} s; with Tesseract's default threads: "
                  f"{t['default threads']} s (median of 3, in turns).", "",
              f"First `sbsearch index sample_docs` ({first['model']}, OCR cache empty): {first['seconds']:.1f} s, of "
              f"which OCR {first['ocr_seconds']:.1f} s for {first['ocr_pages_read']} pages "
              f"({first['ocr_share'] * 100:.0f}% of the run)."]
    for name, label in [("unchanged", "re-index, nothing changed"), ("touched", "re-index after touching the scan"),
                        ("other_index_same_scan", "the scan into a second index")]:
        run = r["index"][name]
        lines.append(f"- {label}: OCR pages read {run['ocr_pages_read']}, from the cache {run['ocr_cache_hits']}, "
                     f"{run['seconds']:.1f} s")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
