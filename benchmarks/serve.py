"""`sbsearch serve` under load, measured in one run.

    .venv/bin/python benchmarks/serve.py [--chunks 100000] [--seconds 60] [--clients 8] [--skip-memory]

1. Load: a real Store of N chunks (benchmarks/hybrid.py's synthetic corpus: shared STS-B/SNLI
   sentences read at run time, clustered 384-d vectors stored as the default model `minilm-int8`),
   1% of its documents readable by group `rare`, the rest by group `staff`. `sbsearch serve` runs as
   a real process; C client threads send /api/search requests with API tokens for S seconds, half as
   a user who may read everything (untrimmed: the filter keeps every chunk and is skipped) and half
   as a user who may read 1% (trimmed before ranking). Meanwhile `sbsearch index sample_docs` writes
   to the same index (a real re-index: new documents embedded and published). Reported: errors,
   requests/s, p50/p95 per user, whether searches waited for the writer (p95 during the re-index).
2. Trimmed correctness: for 20 queries in vector mode, the 1% user gets k results, all in the
   readable documents, equal to the exact top-k among them (computed here from the stored vectors).
3. Memory per worker: `sbsearch serve -m MODEL` on a sample_docs index for full, minilm and the
   pruned MiniLM int8 model; resident memory (VmRSS, and the peak VmHWM) of the server process
   after 20 searches.

Writes benchmarks/results/serve.json; docs/BENCHMARKS.md quotes it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "benchmarks")]

from sbsearch import app  # noqa: E402
from sbsearch.index.store import now  # noqa: E402

RESULTS = REPO / "benchmarks" / "results" / "serve.json"
SB = [sys.executable, "-m", "sbsearch"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(index: Path, *args: str) -> tuple[subprocess.Popen, str]:
    import httpx

    port = free_port()
    log = index.parent / f"server-{port}.log"  # a file, not a pipe: a full pipe would stall the server
    proc = subprocess.Popen([*SB, "serve", "-i", str(index), "--port", str(port), *args],
                            stdout=subprocess.DEVNULL, stderr=open(log, "w"), text=True)
    proc.log = log
    base = f"http://127.0.0.1:{port}"
    for _ in range(600):
        if proc.poll() is not None:
            raise SystemExit(log.read_text())
        try:
            if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                return proc, base
        except httpx.HTTPError:
            time.sleep(0.2)
    raise SystemExit("server did not start")


def rss_mb(pid: int) -> dict:
    """Resident memory of a process and its children (uvicorn runs the app in the same process
    with one worker)."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = round(int(value.split()[0]) / 1024, 1)
    return fields


def queries() -> list[str]:
    rows = [json.loads(line) for line in (REPO / "sample_docs" / "queries.jsonl").read_text().splitlines() if line.strip()]
    return [r["query"] for r in rows if not any("\u3040" <= ch <= "\u9fff" for ch in r["query"])]


def grant_access(index: Path) -> None:
    """1% of the documents (the rare/ folder) for group rare, the rest for group staff."""
    from sbsearch.index.store import Store

    store = Store(index)
    access = {path: json.dumps(["rare"] if "/rare/" in path else ["staff"]) for path in store.document_access()}
    store.set_document_access(access)


def load_test(chunks: int, seconds: float, clients: int, work: Path) -> dict:
    import httpx

    from hybrid import build_scale_index

    index = work / "scale"
    store, _, model = build_scale_index(index, chunks, rare_share=0.01)
    grant_access(index)
    app.put_user(index, "everyone", "benchmark-pass", ["staff", "rare"])
    app.put_user(index, "few", "benchmark-pass", ["rare"])
    tokens = {u: app.add_token(index, u, "bench")["token"] for u in ("everyone", "few")}
    proc, base = start_server(index, "--threads", "2")
    qs = queries()
    try:
        # warm-up: the FAISS index is built from SQLite by the first search
        for user in tokens:
            httpx.get(base + "/api/search", params={"q": qs[0]}, headers={"Authorization": f"Bearer {tokens[user]}"},
                      timeout=600)
        # before the re-index below adds documents outside rare/
        correctness = trimmed_correctness(index, base, tokens["few"], qs[:20], model)
        stop = time.monotonic() + seconds
        lat: dict[str, list[tuple[float, float]]] = {u: [] for u in tokens}
        errors: list[str] = []

        def client(n: int) -> None:
            user = "everyone" if n % 2 == 0 else "few"
            rng = random.Random(n)
            with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {tokens[user]}"}, timeout=60) as c:
                while time.monotonic() < stop:
                    t = time.perf_counter()
                    try:
                        r = c.get("/api/search", params={"q": rng.choice(qs), "k": 10})
                        ok = r.status_code == 200 and len(r.json()["results"]) == 10
                    except httpx.HTTPError as exc:
                        ok, r = False, exc
                    done = time.perf_counter()
                    if not ok:
                        errors.append(str(getattr(r, "status_code", r)))
                    lat[user].append((done, (done - t) * 1000))

        threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
        started = time.perf_counter()
        for t in threads:
            t.start()
        time.sleep(min(5.0, seconds / 6))
        reindex_start = time.perf_counter()
        # the same readers as grant_access gave, as rules (a re-index without rules would leave the
        # new documents readable by all, and the server refuses to answer then: 503)
        rules = work / "access.toml"
        rules.write_text('default = "allow"\n[[rule]]\nfolders = ["rare"]\ngroups = ["rare"]\n'
                         '[[rule]]\npaths = ["area-*"]\ngroups = ["staff"]\n')
        writer = subprocess.run([*SB, "index", str(REPO / "sample_docs"), "-i", str(index), "-m", model, "-q",
                                 "--access", str(rules)], capture_output=True, text=True)
        reindex_end = time.perf_counter()
        for t in threads:
            t.join()
        elapsed = time.perf_counter() - started
        during = [ms for u in lat for (end, ms) in lat[u] if reindex_start <= end <= reindex_end]
        total = sum(len(v) for v in lat.values())
        out = {"chunks": chunks, "clients": clients, "seconds": round(elapsed, 1), "requests": total,
               "errors": len(errors), "error_samples": errors[:5], "requests_per_s": round(total / elapsed, 1),
               "reindex": {"exit": writer.returncode, "seconds": round(reindex_end - reindex_start, 1),
                           "requests_during": len(during),
                           "p95_ms_during": round(float(np.percentile(during, 95)), 1) if during else None,
                           "stderr": writer.stderr.strip()[-300:]}}
        for user, values in lat.items():
            ms = [v for _, v in values]
            out[user] = {"requests": len(ms), "p50_ms": round(float(np.percentile(ms, 50)), 1),
                         "p95_ms": round(float(np.percentile(ms, 95)), 1)}
        out["trimmed_p95_over_untrimmed"] = round(out["few"]["p95_ms"] / out["everyone"]["p95_ms"], 2)
        out["server_log_tail"] = proc.log.read_text()[-2000:]
        out["server_memory_mb"] = rss_mb(proc.pid)
        out["trimmed_correctness"] = correctness
        return out
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def trimmed_correctness(index: Path, base: str, token: str, qs: list[str], model: str) -> dict:
    import httpx

    from sbsearch.embed import make_embedder
    from sbsearch.index.filters import DocumentFilter
    from sbsearch.index.store import Store

    store = Store(index)
    allowed = store.filtered_chunk_ids(DocumentFilter(groups=("rare",)))
    ids, mat = store.vectors_for_ids(model, allowed)
    embedder = make_embedder(model)
    checks = []
    for q in qs:
        r = httpx.get(base + "/api/search", params={"q": q, "k": 10, "mode": "vector"},
                      headers={"Authorization": f"Bearer {token}"}, timeout=60).json()["results"]
        exact = ids[np.argsort(-(mat @ embedder.encode_query([q])[0]))[:10]].tolist()
        got_docs = [h["document_id"] for h in r]
        chunk_docs = {row["id"]: row["doc_id"] for row in store.chunk_rows(exact).values()}
        checks.append({"returned": len(r), "inside": all("/rare/" in f"/{h['path']}" for h in r),
                       "equal_exact": got_docs == [chunk_docs[c] for c in exact]})
    return {"queries": len(checks), "allowed_chunks": int(len(allowed)),
            "all_returned_10": all(c["returned"] == 10 for c in checks),
            "all_inside": all(c["inside"] for c in checks), "all_equal_exact": all(c["equal_exact"] for c in checks)}


def memory_per_worker(models: list[str], work: Path, index: Path | None = None) -> dict:
    import httpx

    from sbsearch.index.indexer import Indexer

    index = index or work / "sample_docs"
    out = {}
    for model in models:
        Indexer(index, model).run([REPO / "sample_docs"])
    for model in models:
        proc, base = start_server(index, "-m", model, "--public", "--all-may-read-everything")  # no access rules
        try:
            for q in queries()[:20]:
                httpx.get(base + "/api/search", params={"q": q}, timeout=600).raise_for_status()
            out[model] = rss_mb(proc.pid)
        finally:
            proc.terminate()
            proc.wait(timeout=30)
        print(f"[memory] {model}: {out[model]}", flush=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--chunks", type=int, default=100_000)
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--models", nargs="+", default=["full", "minilm", "minilm-3-best-long-2ep-int8"])
    ap.add_argument("--skip-memory", action="store_true")
    ap.add_argument("--skip-load", action="store_true")
    ap.add_argument("--memory-index", type=Path, help="An index of sample_docs to bring up to date and serve "
                                                      "for the memory measurement (default: a new one)")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="sbsearch-serve-"))
    previous = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    result = {"created": now(), "command": "benchmarks/serve.py " + " ".join(sys.argv[1:]),
              "machine": f"{platform.machine()} · {os.cpu_count()} CPUs"}
    if args.skip_load:
        result["load"] = previous.get("load")
    else:
        result["load"] = load_test(args.chunks, args.seconds, args.clients, work)
        print(json.dumps(result["load"], indent=1), flush=True)
    result["memory_per_worker_mb"] = previous.get("memory_per_worker_mb") if args.skip_memory else \
        memory_per_worker(args.models, work, args.memory_index)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=1) + "\n")
    print(f"written {RESULTS}")


if __name__ == "__main__":
    main()
