"""Japanese retrieval in one run: words alone, vectors alone and hybrid, per model, on three sets;
fusion variants for the multilingual model; the int8 record of e5-small; and what a Japanese index
built with its default model costs (cold query, index-time peak memory).

    SBSEARCH_CACHE=... .venv/bin/python benchmarks/japanese.py [--models minilm-int8 e5-small e5-small-int8]
                                                                [--jsquad-questions 1000] [--no-write]

Sets (built at run time under a temporary folder; nothing of JGLUE is written into the repository):
  jsquad   JSQuAD valid ($SBSEARCH_SHARED_DATA/jglue/jsquad-valid.json) as retrieval: its 1,145
           paragraphs ("title [SEP] text") are the documents, one .txt each (title as the first line);
           a question's one relevant document is the paragraph that holds its answer. A fixed sample of
           the 4,442 questions (random.Random(0), --jsquad-questions, default 1,000).
  jsts     a paraphrase set from JSTS valid (jglue/jsts-valid.jsonl): every pair scored >= 4 gives a
           question (its first sentence) whose one relevant document is its second sentence; the
           second sentence of every pair (of all scores) is a document.
  sample_docs  the whole of sample_docs/ (English and Japanese), with its Japanese questions:
           `ja-paraphrase` (kind "japanese-paraphrase": questions that share few characters with
           their answer) and `ja-original` (kind "japanese": the 13 earlier ones).

Each model indexes each set as a user would (chunked by its own tokenizer; e5-small and its int8
variant share one index, as they share the tokenizer), so "words alone" is measured on each index.
nDCG@10 / MRR@10 / recall@10 of documents, by sbsearch.quality.evaluation.evaluate. Query vectors are
encoded once per model and reused by every mode and variant.

Fusion variants (every model that reads Japanese, every set): relative score fusion with the vector
weight 0.5-0.9, reciprocal rank fusion (k=60, equal weights), and the earlier CJK rule (words decide,
vector-only hits follow), which sbsearch applied to every model before models carried their languages.

Then: the e5-small entry of sbsearch/embed/int8_quality.json (vector nDCG@10 of fp32 and int8 on the
three sets: the int8 variant is the default for Japanese indexes when it loses at most 0.005 on every
one); a fresh `sbsearch index sample_docs/ja` with no model named (peak memory VmHWM of that process,
the model it chose and why) and a cold `sbsearch query` on it (wall time of a fresh process, median of 3).

Writes benchmarks/results/japanese.json and appends a section to docs/BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "benchmarks")]

from hybrid import sample_docs_kinds, subset  # noqa: E402
from report import publish  # noqa: E402
from sbsearch import config  # noqa: E402
from sbsearch.index.indexer import Indexer  # noqa: E402
from sbsearch.index.store import now  # noqa: E402
from sbsearch.quality.evaluation import QuerySet, evaluate, load_query_set  # noqa: E402
from sbsearch.search import Searcher  # noqa: E402
from sbsearch.search.searcher import FUSION_WEIGHTS  # noqa: E402

RESULTS = REPO / "benchmarks" / "results" / "japanese.json"
MODES = ("lexical", "vector", "hybrid")
SETS = ("jsquad", "jsts", "sample_docs:ja-paraphrase", "sample_docs:ja-original")


# ------------------------------------------------------------------------------------------ sets

def jsquad_set(work: Path, n_questions: int) -> tuple[Path, QuerySet, dict]:
    """JSQuAD as pruning's jsquad suite reads it (pruning.data.read_jsquad), each paragraph written as
    a file to be indexed."""
    from pruning.data import read_jsquad

    path = config.shared_data_dir() / "jglue" / "jsquad-valid.json"
    rs = read_jsquad(path, questions=n_questions)
    folder = work / "jsquad"
    folder.mkdir(parents=True, exist_ok=True)
    for pid, passage in zip(rs.passage_doc, rs.passages):
        (folder / f"{pid}.txt").write_text(passage + "\n", encoding="utf-8")
    total = len(read_jsquad(path, questions=None).queries)
    qs = QuerySet(rs.queries, rs.qrels, "stem", "JSQuAD valid")
    return folder, qs, {"documents": len(rs.passages), "questions_total": total, "questions_used": len(rs.queries)}


def jsts_set(work: Path) -> tuple[Path, QuerySet, dict]:
    folder = work / "jsts"
    folder.mkdir(parents=True, exist_ok=True)
    pairs = [json.loads(line) for line in
             (config.shared_data_dir() / "jglue" / "jsts-valid.jsonl").read_text(encoding="utf-8").splitlines()
             if line.strip()]
    doc_of: dict[str, str] = {}
    for p in pairs:
        s2 = p["sentence2"].strip()
        if s2 not in doc_of:
            doc_of[s2] = f"s{len(doc_of):04d}"
            (folder / f"{doc_of[s2]}.txt").write_text(s2 + "\n", encoding="utf-8")
    questions, qrels = {}, {}
    for p in pairs:
        if float(p["label"]) >= 4:
            qid = f"jsts-{p['sentence_pair_id']}"
            questions[qid] = p["sentence1"].strip()
            qrels[qid] = {doc_of[p["sentence2"].strip()]: 1.0}
    qs = QuerySet(questions, qrels, "stem", "JSTS valid, pairs scored >= 4")
    return folder, qs, {"documents": len(doc_of), "pairs": len(pairs), "questions_used": len(questions)}


def sample_docs_sets() -> tuple[Path, dict[str, QuerySet], dict]:
    qs, kinds = sample_docs_kinds()
    sets = {"sample_docs:ja-paraphrase": subset(qs, kinds.get("japanese-paraphrase", set()), "japanese-paraphrase"),
            "sample_docs:ja-original": subset(qs, kinds.get("japanese", set()), "japanese"),
            # the other questions: English but for 5 Japanese ones of other kinds (formats, none)
            "sample_docs:rest": subset(qs, set().union(*(ids for k, ids in kinds.items()
                                                          if k not in ("japanese", "japanese-paraphrase"))),
                                       "the other questions")}
    sets = {k: v for k, v in sets.items() if v.queries}
    return REPO / "sample_docs", sets, {k: len(v.queries) for k, v in sets.items()}


# ------------------------------------------------------------------------------------------ measuring

class CachedQueries:
    """A model's embedder whose query vectors are computed once per text (modes and variants reuse them)."""

    def __init__(self, inner):
        self.inner, self._memo = inner, {}
        self.name, self.dim, self.info = inner.name, inner.dim, inner.info

    def encode(self, texts, progress=None):
        return self.inner.encode(texts, progress)

    def encode_query(self, texts):
        import numpy as np

        todo = [t for t in dict.fromkeys(texts) if t not in self._memo]
        if todo:
            for t, v in zip(todo, self.inner.encode_query(todo)):
                self._memo[t] = v
        return np.vstack([self._memo[t] for t in texts])


def metrics(searcher: Searcher, qs: QuerySet) -> dict:
    m = evaluate(searcher, qs)
    return {k: round(m[k], 4) for k in ("ndcg@10", "mrr@10", "recall@10")}


VARIANTS = ([{"fusion": "score", "weights": (w, round(1 - w, 2))} for w in (0.5, 0.6, 0.7, 0.8, 0.9)]
            + [{"fusion": "rrf", "weights": (1.0, 1.0)}, {"words_decide": True}])


def quality(models: list[str], work: Path, jsquad_questions: int) -> dict:
    from sbsearch.embed import make_embedder

    out: dict = {"rows": [], "fusion": [], "sets": {}, "index_seconds": {}}
    jq_folder, jq, jq_info = jsquad_set(work, jsquad_questions)
    js_folder, js, js_info = jsts_set(work)
    sd_folder, sd_sets, sd_info = sample_docs_sets()
    out["sets"] = {"jsquad": jq_info, "jsts": js_info, "sample_docs": sd_info}
    corpora = {"jsquad": (jq_folder, {"jsquad": jq}), "jsts": (js_folder, {"jsts": js}),
               "sample_docs": (sd_folder, sd_sets)}
    embedders = {}
    for corpus, (folder, sets) in corpora.items():
        for model in models:
            # e5-small and e5-small-int8 share an index (one tokenizer, the same chunks)
            index = work / f"index-{corpus}-{'e5' if model.startswith('e5-small') else model}"
            t = time.perf_counter()
            Indexer(index, model).run([folder])
            out["index_seconds"][f"{corpus}/{model}"] = round(time.perf_counter() - t, 1)
            print(f"[{corpus}] indexed with {model} in {time.perf_counter() - t:.0f} s", flush=True)
            if model not in embedders:
                embedders[model] = CachedQueries(make_embedder(model))
            emb = embedders[model]
            for mode in MODES:
                if mode == "lexical" and model == "e5-small":
                    continue  # the same index and chunks as e5-small-int8: one lexical row
                searcher = Searcher(index, embedder=emb, mode=mode)
                for set_name, qs in sets.items():
                    row = {"set": set_name, "queries": len(qs.queries), "model": model, "mode": mode,
                           "index": index.name, **metrics(searcher, qs)}
                    out["rows"].append(row)
                    print(json.dumps(row), flush=True)
            if not emb.info.reads_cjk:
                continue
            for variant in VARIANTS:
                searcher = Searcher(index, embedder=emb, mode="hybrid")
                searcher.fusion = variant.get("fusion", searcher.fusion)
                searcher.fusion_weights = variant.get("weights", searcher.fusion_weights)
                if variant.get("words_decide"):
                    searcher.reads_cjk = False
                for set_name, qs in sets.items():
                    row = {"set": set_name, "model": model, "variant": variant, **metrics(searcher, qs)}
                    out["fusion"].append(row)
                    print(json.dumps(row), flush=True)
    return out


def int8_record(rows: list[dict]) -> dict:
    """The e5-small entry of int8_quality.json: vector nDCG@10 of fp32 and int8 per Japanese set."""
    keys = {"jsquad": "jsquad_ndcg10", "jsts": "jsts_ndcg10", "sample_docs:ja-paraphrase": "sample_docs_ja_ndcg10"}
    entry: dict = {}
    for r in rows:
        if r["mode"] == "vector" and r["set"] in keys and r["model"] in ("e5-small", "e5-small-int8"):
            key = keys[r["set"]] if r["model"] == "e5-small" else "int8_" + keys[r["set"]]
            entry[key] = r["ndcg@10"]
    return {**entry, "measured": now(), "source": "benchmarks/japanese.py (vector mode, Japanese sets)"}


def default_model_costs(runs: int = 3) -> dict:
    """A fresh index of sample_docs/ja with no model named; its peak memory; cold queries on it."""
    env = {**os.environ, "COLUMNS": "400"}  # the footer on one line
    with tempfile.TemporaryDirectory(prefix="ja-default-") as tmp:
        env["SBSEARCH_INDEX"] = str(Path(tmp) / "idx")
        cmd = [sys.executable, "-m", "sbsearch"]
        t = time.perf_counter()
        proc = subprocess.run(["/usr/bin/time", "-f", "VmHWM_KB=%M"] + cmd + ["index", str(REPO / "sample_docs" / "ja"), "-q"],
                              check=True, env=env, capture_output=True, text=True)
        index_s = time.perf_counter() - t
        hwm_kb = int(proc.stderr.strip().rsplit("VmHWM_KB=", 1)[1].split()[0])
        status = json.loads(subprocess.run(cmd + ["status", "--json"], check=True, env=env, capture_output=True,
                                           text=True).stdout)
        times, footer = [], ""
        for _ in range(runs):
            t = time.perf_counter()
            q = subprocess.run(cmd + ["query", "引っ越したら交通費の申請はどうなりますか", "-k", "5"], check=True, env=env,
                               capture_output=True, text=True)
            times.append(time.perf_counter() - t)
            footer = q.stdout.strip().splitlines()[-1] if q.stdout.strip() else ""
    return {"default_model": status["default_model"], "model_reason": status.get("model_reason"),
            "documents": status["documents"], "chunks": status["chunks"], "index_seconds": round(index_s, 1),
            "index_peak_mb": round(hwm_kb / 1024), "cold_query_s": [round(x, 2) for x in times],
            "cold_query_median_s": round(statistics.median(times), 2), "footer": footer}


# ------------------------------------------------------------------------------------------ report

def get(rows, set_name, model, mode):
    for r in rows:
        if r["set"] == set_name and r["mode"] == mode and (r["model"] == model or mode == "lexical"
                                                            and r["index"] == index_of(model, set_name, rows)):
            return r
    return None


def index_of(model: str, set_name: str, rows) -> str | None:
    for r in rows:
        if r["set"] == set_name and r["model"] == model:
            return r["index"]
    return None


def report(res: dict) -> str:
    rows, models = res["quality"]["rows"], res["models"]
    s = res["quality"]["sets"]
    lines = [f"### Japanese search — {res['date'][:10]}", "",
             f"`python benchmarks/japanese.py` on {res['machine']}. nDCG@10 of documents. Sets: JSQuAD valid as "
             f"retrieval ({s['jsquad']['documents']:,} paragraphs as documents, a fixed sample of "
             f"{s['jsquad']['questions_used']:,} of its {s['jsquad']['questions_total']:,} questions), a paraphrase set "
             f"from JSTS valid ({s['jsts']['questions_used']} pairs scored ≥ 4 as questions, "
             f"{s['jsts']['documents']:,} second sentences as documents), and sample_docs' Japanese questions "
             f"(all of sample_docs indexed): {s['sample_docs'].get('sample_docs:ja-paraphrase', 0)} paraphrased "
             f"(`japanese-paraphrase`, few characters shared with the answer) and the "
             f"{s['sample_docs'].get('sample_docs:ja-original', 0)} earlier ones (`japanese`). Words alone is "
             "measured on each model's own index (its chunks); e5-small and e5-small-int8 share one.", "",
             "| set | model | words alone | vectors alone | hybrid | hybrid − best single | hybrid − words |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for set_name in SETS:
        for model in models:
            lex, vec, hyb = (get(rows, set_name, model, m) for m in MODES)
            if not (lex and vec and hyb):
                continue
            best = max(lex["ndcg@10"], vec["ndcg@10"])
            lines.append(f"| {set_name} | {model} | {lex['ndcg@10']:.3f} | {vec['ndcg@10']:.3f} | {hyb['ndcg@10']:.3f} | "
                         f"{hyb['ndcg@10'] - best:+.3f} | {hyb['ndcg@10'] - lex['ndcg@10']:+.3f} |")
    fusion = res["quality"]["fusion"]
    if fusion:
        fmodels = sorted({r["model"] for r in fusion})
        lines += ["", f"Fusion variants (hybrid nDCG@10); the default is score fusion {FUSION_WEIGHTS[0]:g}/{FUSION_WEIGHTS[1]:g}. `words decide`: the earlier "
                  "rule for CJK questions (BM25 order, vector-only hits after), which every model got before models "
                  "carried their languages. sample_docs:rest = the other questions of sample_docs (English but for 5 Japanese ones of other kinds), on the same index.", "",
                  "| model | variant | " + " | ".join(SETS + ("sample_docs:rest",)) + " |",
                  "| --- | --- |" + " --- |" * (len(SETS) + 1)]
        for model in fmodels:
            for v in VARIANTS:
                vals = []
                for set_name in SETS + ("sample_docs:rest",):
                    r = next((r for r in fusion if r["model"] == model and r["variant"] == v and r["set"] == set_name), None)
                    vals.append(f"{r['ndcg@10']:.3f}" if r else "-")
                name = ("words decide" if v.get("words_decide") else
                        f"RRF k=60 {v['weights'][0]:g}/{v['weights'][1]:g}" if v["fusion"] == "rrf" else
                        f"score {v['weights'][0]:g}/{v['weights'][1]:g}")
                lines.append(f"| {model} | {name} | " + " | ".join(vals) + " |")
    rec = res.get("int8_record", {})
    if rec:
        pairs = [(k, rec[k], rec.get("int8_" + k)) for k in sorted(rec) if k.endswith("_ndcg10") and not k.startswith("int8_")]
        lines += ["", "int8 of e5-small (vector nDCG@10, fp32 → int8): " + "; ".join(
            f"{k.replace('_ndcg10', '')} {a:.4f} → {b:.4f} ({b - a:+.4f})" for k, a, b in pairs if b is not None)
            + f". Worst loss {res['int8_worst_loss']:+.4f}: the default for Japanese indexes is **{res['ja_default']}** "
              "(int8 when it loses at most 0.005 on every set)."]
    d = res.get("default_index")
    if d:
        lines += ["", f"Out of the box (`sbsearch index sample_docs/ja`, no model named): {d['documents']} documents, "
                  f"{d['chunks']} chunks, model **{d['default_model']}** ({d['model_reason']}); indexing took "
                  f"{d['index_seconds']} s with a peak of {d['index_peak_mb']} MB (VmHWM); a cold `sbsearch query` "
                  f"(new process to printed results) {d['cold_query_median_s']} s median of {len(d['cold_query_s'])} "
                  f"({', '.join(str(x) for x in d['cold_query_s'])})."]
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="+", default=["minilm-int8", "e5-small-int8", "e5-small"])
    ap.add_argument("--jsquad-questions", type=int, default=1000)
    ap.add_argument("--no-write", action="store_true")
    ap.add_argument("--costs-only", type=int, metavar="RUNS", default=0,
                    help="only the default index's costs (index peak memory, RUNS cold queries), recorded as "
                         "`default_index_rerun` in the results; for a quiet machine after the quality run")
    args = ap.parse_args()
    if args.costs_only:
        costs = {**default_model_costs(args.costs_only), "date": now(), "load_before": os.getloadavg()[0]}
        print(json.dumps(costs, ensure_ascii=False), flush=True)
        if not args.no_write:
            res = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
            RESULTS.write_text(json.dumps({**res, "default_index_rerun": costs}, indent=1, ensure_ascii=False) + "\n")
        return
    from sbsearch.embed.models import INT8_FREE_LOSS, INT8_RECORD, default_model, int8_loss

    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="ja-bench-") as tmp:
        q = quality(args.models, Path(tmp), args.jsquad_questions)
    res = {"date": now(), "machine": f"{platform.machine()}, {os.cpu_count()} cores", "models": args.models,
           "command": "python " + " ".join(["benchmarks/japanese.py"] + sys.argv[1:]), "quality": q}
    rec = int8_record(q["rows"])
    res["int8_record"] = rec
    if not args.no_write and any(k.startswith("int8_") for k in rec):
        record = json.loads(INT8_RECORD.read_text())
        record["models"]["e5-small"] = rec
        INT8_RECORD.write_text(json.dumps(record, indent=1) + "\n")
    res["int8_worst_loss"] = int8_loss("e5-small")
    res["ja_default"] = default_model(config.MULTILINGUAL_MODEL)
    print("e5-small int8:", json.dumps(rec), "→ default", res["ja_default"], flush=True)
    res["default_index"] = default_model_costs()
    print(json.dumps(res["default_index"]), flush=True)
    res["seconds"] = round(time.perf_counter() - t0)
    res["int8_rule"] = f"int8 is the default when it loses at most {INT8_FREE_LOSS} nDCG@10 on every set"
    text = report(res)
    if args.no_write:
        print(text)
        return
    RESULTS.write_text(json.dumps(res, indent=1, ensure_ascii=False) + "\n")
    publish(text)


if __name__ == "__main__":
    main()
