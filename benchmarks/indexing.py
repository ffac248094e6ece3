"""Where the time of a first index goes, and what the int8 path and the reading thread buy.

    .venv/bin/python benchmarks/indexing.py [--rounds 2] [--work DIR] [--skip-encode] [--skip-whole]

Three parts, one run, on this machine's cores as they are (shared: read the ratios):

1. Stages. A first index, each in a fresh process, of sample_docs/ and of a 1,000-file folder
   (answers of the shared StackFAQ set written as .txt files at run time; nothing of it enters the
   repository), OCR cache empty. Timers wrap each stage where the indexer calls it: scan,
   read/parse (including OCR), chunk, tokenize, encode, SQLite (lookups, pending vectors, publish,
   checkpoint), FAISS, model load. Stage seconds are busy time summed over threads: with the
   reading thread, reading and encoding overlap and the stages add up to more than the wall time.
   Also CPU use (user+system of the process and of Tesseract, over wall) and peak RSS of the process.
2. Encoding. The chunks of sample_docs (the default passage length) encoded by MiniLM as torch
   fp32 (what `minilm` runs), as fp32 on ONNX Runtime, as int8 without fused attention (the export
   before this measurement) and as int8 with fused attention (the export now); each variant's
   cosine to torch fp32; texts/s at fixed lengths of 32/128/256 tokens; and a sweep of the padded
   tokens a batch may hold (onnx_backend.TOKENS_PER_BATCH).
3. Whole index. `minilm` and `minilm-int8` indexing sample_docs and the 1,000 files with the
   reading thread (read_ahead 32, the default) and without (read_ahead 0), interleaved over rounds,
   each a fresh process (imports and model load included); median wall, CPU use, peak RSS.

Writes benchmarks/results/indexing.json; docs/BENCHMARKS.md ("Where indexing time goes") quotes it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "benchmarks")]

RESULTS = REPO / "benchmarks" / "results" / "indexing.json"
STAGES = ("scan", "read/parse+OCR", "chunk", "tokenize", "encode", "SQLite", "FAISS", "model load")


# ----------------------------------------------------------------------------- the child process

class StageClock:
    """Busy seconds per stage, summed over threads; wraps functions by name where they are called."""

    def __init__(self):
        self.seconds: dict[str, float] = defaultdict(float)
        self._lock = threading.Lock()

    def wrap(self, owner, attr: str, stage: str) -> None:
        inner = getattr(owner, attr)

        def timed(*args, **kwargs):
            t = time.perf_counter()
            try:
                return inner(*args, **kwargs)
            finally:
                with self._lock:
                    self.seconds[stage] += time.perf_counter() - t
        setattr(owner, attr, timed)


def child(config: dict) -> dict:
    """One first index in this process, with stage timers; returns its measurements."""
    from sbsearch.embed import onnx_backend, torch_backend
    from sbsearch.index import indexer as indexer_module
    from sbsearch.index.store import Store
    from sbsearch.vectors import faiss_index

    clock = StageClock()
    clock.wrap(indexer_module, "scan", "scan")
    clock.wrap(indexer_module, "load_document", "read/parse+OCR")
    clock.wrap(indexer_module, "chunk_document", "chunk")
    clock.wrap(onnx_backend.OnnxEmbedder, "encode", "_onnx encode")
    clock.wrap(onnx_backend.OnnxEmbedder, "_run", "encode")
    clock.wrap(torch_backend.TorchEmbedder, "encode", "encode")  # tokenizing included: not separable
    for name in ("vectors_by_text", "save_pending", "publish", "checkpoint", "add_vectors"):
        clock.wrap(Store, name, "SQLite")
    clock.wrap(faiss_index.FaissVectorIndex, "update", "FAISS")
    clock.wrap(indexer_module.Indexer, "embedder", "model load")

    t0 = time.perf_counter()
    r0 = [resource.getrusage(who) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]
    ix = indexer_module.Indexer(Path(config["index"]), model=config["model"], read_ahead=config["read_ahead"])
    ix.read_options.ocr.cache_dir = Path(config["ocr_cache"])  # empty: a first index reads every scan
    summary = ix.run([Path(config["folder"])])
    wall = time.perf_counter() - t0
    r1 = [resource.getrusage(who) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]
    seconds = dict(clock.seconds)
    if "_onnx encode" in seconds:
        seconds["tokenize"] = seconds.pop("_onnx encode") - seconds.get("encode", 0.0)
    # CPU of the process and of its children (Tesseract runs as a child process)
    cpu = sum((b.ru_utime - a.ru_utime) + (b.ru_stime - a.ru_stime) for a, b in zip(r0, r1))
    return {"wall_s": round(wall, 3), "cpu_pct": round(100 * cpu / wall), "peak_rss_mb": round(r1[0].ru_maxrss / 1024),
            "stages_s": {k: round(v, 3) for k, v in seconds.items()}, "chunks": summary.chunks_total,
            "embedded": summary.chunks_embedded, "files": summary.added, "ocr_pages": summary.ocr.get("pages_read")}


def run_child(config: dict) -> dict:
    """A fresh process (imports, model load and all) for one index; wall time of the process too."""
    for key in ("index", "ocr_cache"):
        shutil.rmtree(config[key], ignore_errors=True)
    t = time.perf_counter()
    proc = subprocess.run([sys.executable, __file__, "--child", json.dumps(config)], capture_output=True, text=True,
                          cwd=REPO)
    if proc.returncode != 0:
        raise SystemExit(f"child failed: {config}\n{proc.stderr[-2000:]}")
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    out["process_s"] = round(time.perf_counter() - t, 3)
    return out


# ------------------------------------------------------------------------------------- folders

def stackfaq_folder(work: Path, n: int = 1000) -> Path:
    """n StackFAQ answers, one .txt file each (built at run time from the shared data)."""
    from sbsearch import config

    out = work / "stackfaq-1000"
    if out.is_dir() and len(list(out.iterdir())) == n:
        return out
    out.mkdir(parents=True, exist_ok=True)
    data = json.loads((config.shared_data_dir() / "stackfaq" / "stackExchange-FAQ.json").read_text())
    answers = [a for qa in data["root"]["qapair"] for a in (qa.get("answer") or []) if a and len(a.strip()) > 20]
    for i, text in enumerate(answers[:n]):
        (out / f"answer-{i:04d}.txt").write_text(text + "\n", encoding="utf-8")
    return out


# ------------------------------------------------------------------------------------- encoding

def encoding_part(work: Path, texts: list[str], rounds: int) -> dict:
    from sbsearch.embed import make_embedder
    from sbsearch.embed.int8_export import export_int8
    from sbsearch.embed.model_info import ModelInfo
    from sbsearch.embed.models import load_model, resolve
    from sbsearch.embed.onnx_backend import META_FILE, OnnxEmbedder

    variants: dict[str, object] = {"torch fp32": make_embedder("minilm")}
    for label, kwargs in (("ONNX fp32", {"quantize": False}), ("int8 unfused", {"fuse": False})):
        d = work / "exports" / label.replace(" ", "-")
        if not (d / META_FILE).exists():
            export_int8(*load_model("minilm"), d, **kwargs)
        variants[label] = OnnxEmbedder(ModelInfo("minilm-" + label, d, "int8"))
    variants["int8 fused"] = OnnxEmbedder(resolve("minilm-int8"))

    def speed(emb, batch: list[str]) -> float:
        emb.encode(batch[:16])
        best = float("inf")
        for _ in range(rounds):
            t = time.perf_counter()
            emb.encode(batch)
            best = min(best, time.perf_counter() - t)
        return len(batch) / best

    ref = variants["torch fp32"].encode(texts)
    out: dict = {"texts": len(texts), "variants": {}}
    vectors = {}
    for label, emb in variants.items():
        vectors[label] = vecs = emb.encode(texts)
        out["variants"][label] = {"cosine_to_torch_fp32": round(float((vecs * ref).sum(1).mean()), 4)}
    # an index embedded by the earlier export, searched with queries of this one
    out["cosine_unfused_to_fused"] = round(float((vectors["int8 unfused"] * vectors["int8 fused"]).sum(1).mean()), 4)
    # interleaved: each round visits every variant before the next round
    rates: dict[str, list[float]] = defaultdict(list)
    for _ in range(rounds):
        for label, emb in variants.items():
            rates[label].append(speed(emb, texts))
    for label in variants:
        out["variants"][label]["texts_per_s"] = round(max(rates[label]), 1)

    # texts of exactly N tokens: windows of the chunks' token stream, decoded
    tokenizer = variants["int8 fused"].tokenizer
    stream = [t for e in tokenizer.encode_batch(texts) for t in e.ids[1:-1]]
    out["by_length"] = {}
    for length in (32, 128, 254):
        windows = [stream[i:i + length] for i in range(0, len(stream) - length, length)][:200]
        batch = [tokenizer.decode(w) for w in windows]
        out["by_length"][length + 2] = {label: round(speed(variants[label], batch), 1)
                                        for label in ("torch fp32", "ONNX fp32", "int8 unfused", "int8 fused")}
    out["token_budget"] = {}
    fused = variants["int8 fused"]
    default = fused.tokens_per_batch
    for budget in (512, 1024, 2048, 4096, 8192):
        fused.tokens_per_batch, fused.batch_size = budget, 256
        out["token_budget"][budget] = round(speed(fused, texts), 1)
    fused.tokens_per_batch, fused.batch_size = default, 32
    return out


def sample_texts(index: Path) -> list[str]:
    import sqlite3

    from sbsearch.ingest.chunking import embedding_text

    db = sqlite3.connect(index / "index.db")
    return [embedding_text(t, h) for t, h in db.execute("SELECT text, heading FROM chunks ORDER BY id")]


# --------------------------------------------------------------------------------------- main

def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--work", type=Path, help="folder for indexes and exports (default: a temporary one)")
    ap.add_argument("--skip-encode", action="store_true")
    ap.add_argument("--skip-whole", action="store_true")
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(json.loads(args.child))))
        return
    work = args.work or Path(tempfile.mkdtemp(prefix="sbsearch-indexing-"))
    work.mkdir(parents=True, exist_ok=True)
    folders = {"sample_docs": REPO / "sample_docs", "stackfaq-1000": stackfaq_folder(work)}
    result: dict = {"command": " ".join([Path(sys.argv[0]).name] + sys.argv[1:]), "machine": platform.machine(),
                    "cores": os.cpu_count(), "load_before": os.getloadavg()[0]}

    def config(folder: str, model: str, read_ahead: int) -> dict:
        tag = f"{folder}-{model}-{read_ahead}"
        return {"folder": str(folders[folder]), "model": model, "read_ahead": read_ahead,
                "index": str(work / "idx" / tag), "ocr_cache": str(work / "ocr" / tag)}

    print("1. stages of a first index (minilm-int8, reading thread on)", flush=True)
    result["stages"] = {}
    for folder in folders:
        r = run_child(config(folder, "minilm-int8", 32))
        result["stages"][folder] = r
        print(f"  {folder}: {r['files']} files, {r['chunks']} chunks, wall {r['wall_s']} s "
              f"(process {r['process_s']} s), CPU {r['cpu_pct']}%, peak RSS {r['peak_rss_mb']} MB", flush=True)
        for stage in STAGES:
            s = r["stages_s"].get(stage, 0.0)
            print(f"    {stage:<16} {s:7.2f} s  {100 * s / r['wall_s']:5.1f}% of wall", flush=True)

    if not args.skip_encode:
        print("2. encoding the chunks of sample_docs", flush=True)
        texts = sample_texts(Path(config("sample_docs", "minilm-int8", 32)["index"]))
        enc = encoding_part(work, texts, args.rounds)
        result["encoding"] = enc
        base = enc["variants"]["torch fp32"]["texts_per_s"]
        for label, v in enc["variants"].items():
            print(f"  {label:<14} {v['texts_per_s']:7.1f} texts/s  {v['texts_per_s'] / base:4.2f}x torch fp32  "
                  f"cosine {v['cosine_to_torch_fp32']}", flush=True)
        for length, row in enc["by_length"].items():
            print(f"  {length:>4} tokens, texts/s: " + "  ".join(f"{k} {v}" for k, v in row.items()), flush=True)
        print("  tokens per batch (int8 fused): " + "  ".join(f"{k}: {v}/s" for k, v in enc["token_budget"].items()))

    if not args.skip_whole:
        print("3. whole first index, fresh process each, interleaved", flush=True)
        plan = [(f, m, ra) for f in folders for m in ("minilm", "minilm-int8") for ra in (0, 32)]
        runs: dict[str, list[dict]] = defaultdict(list)
        for _ in range(args.rounds):
            for f, m, ra in plan:
                runs[f"{f} | {m} | read_ahead {ra}"].append(run_child(config(f, m, ra)))
        result["whole"] = {}
        for key, rs in runs.items():
            row = {"process_s": statistics.median(r["process_s"] for r in rs),
                   "cpu_pct": statistics.median(r["cpu_pct"] for r in rs),
                   "peak_rss_mb": max(r["peak_rss_mb"] for r in rs), "runs": rs}
            result["whole"][key] = row
            print(f"  {key:<45} {row['process_s']:7.2f} s  CPU {row['cpu_pct']:4.0f}%  peak RSS {row['peak_rss_mb']} MB",
                  flush=True)
    result["load_after"] = os.getloadavg()[0]
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {RESULTS.relative_to(REPO)}")


if __name__ == "__main__":
    main()
