"""What keeping only the tokens a corpus and its language use would save in multilingual-e5-small,
and what it would cost the questions (issue #27, part 3: "most of this model's size is its 250k-token
embedding table, which layer pruning does not touch").

    .venv/bin/python benchmarks/vocab_trim.py            # measure, write benchmarks/results/vocab_trim.json
    .venv/bin/python benchmarks/vocab_trim.py --no-write
    .venv/bin/python benchmarks/vocab_trim.py --quality   # also: trim e5-small to the "+ English" set
                                                          # (single characters kept) and evaluate it

The model's SentencePiece vocabulary (XLM-R's, 250,002 pieces) is read from the converted e5-small
tokenizer. Kept sets, each a superset of the one before (plus the special tokens):
  documents   every piece the documents searched use: sample_docs (read and chunked by sbsearch) and
              JSQuAD valid's paragraphs
  + Japanese  JSTS train and JNLI valid/test sentences: the language, beyond these documents
  + English   STS-B train, SNLI and StackFAQ's questions and answers (never its rephrasings)
Held out (never in a kept set): the questions of JSQuAD valid, sample_docs' questions, JSTS valid,
StackFAQ's rephrasings, STS-B test. For each kept set: its size, the embedding table's megabytes in
fp32 and int8, and per held-out set the share of tokens outside it and of questions with any token
outside it (a trimmed tokenizer would cut those into other, kept pieces: a changed input, not lost
text). Nothing of the data is written into the repository: only counts.

--quality trims the model (pruning.vocab.trim_vocabulary) to the largest kept set, every one-character
piece kept too, and measures it with the suites of benchmarks/pruning_japanese.py (JSTS valid, JSQuAD,
sample_docs' Japanese questions, STS-B test, StackFAQ, sample_docs); the untrimmed model's numbers are
that table's `e5` row when it has one, else measured here.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "benchmarks")]

from sbsearch import config  # noqa: E402

RESULTS = REPO / "benchmarks" / "results" / "vocab_trim.json"
SHARED = config.shared_data_dir()


def jsonl(rel: str) -> list[dict]:
    return [json.loads(line) for line in (SHARED / rel).read_text(encoding="utf-8").splitlines() if line.strip()]


def sources() -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    """(kept-set sources in order, held-out question sets)."""
    from pruning import data
    from sbsearch.model_choice.prune_inputs import folder_texts

    jsquad = data.read_jsquad(SHARED / "jglue" / "jsquad-valid.json", questions=None)
    stackfaq = data.read_stackfaq(SHARED / "stackfaq" / "stackExchange-FAQ.json")
    sd_queries = [json.loads(x)["query"] for x in (REPO / "sample_docs" / "queries.jsonl").read_text().splitlines() if x.strip()]
    pairs = lambda rows: [t for r in rows for t in (r["sentence1"], r["sentence2"])]  # noqa: E731
    kept = {
        "documents": list(folder_texts(REPO / "sample_docs").texts) + jsquad.passages,
        "+ Japanese": pairs(jsonl("jglue/jsts-train.jsonl")) + pairs(jsonl("jglue/jnli-valid.jsonl"))
        + pairs(jsonl("jglue/jnli-test.jsonl")),
        "+ English": [t for a, b, _ in data.read_sts(SHARED / "stsb" / "sts-train.csv") for t in (a, b)]
        + [t for a, b, _ in data.read_nli(SHARED / "nli" / "snli_dev_test.tsv") for t in (a, b)]
        + stackfaq.passages,
    }
    held = {
        "JSQuAD questions": sorted(random.Random(0).sample(list(jsquad.queries.values()), 1000)),
        "sample_docs questions": sd_queries,
        "JSTS valid": pairs(jsonl("jglue/jsts-valid.jsonl")),
        "StackFAQ rephrasings": list(stackfaq.queries.values()),
        "STS-B test": [t for a, b, _ in data.read_sts(SHARED / "stsb" / "sts-test.csv") for t in (a, b)],
    }
    return kept, held


QUALITY_SUITES = ("jsts", "jsquad", "sample_docs_ja", "stsb", "stackfaq", "sample_docs", "size")


def quality(model_dir: Path, kept_texts: list[str]) -> dict:
    """The model trimmed to kept_texts' pieces (single characters kept), measured beside the untrimmed one."""
    import tempfile

    from pruning import evaluate as ev
    from pruning.vocab import trim_vocabulary
    from sbsearch.embed.models import load_model
    from sbsearch.model_choice.prune_inputs import eval_data

    ed = eval_data()
    with tempfile.TemporaryDirectory(prefix="vocab-trim-") as tmp:
        info = trim_vocabulary(model_dir, kept_texts, Path(tmp) / "trimmed")
        print(f"trimmed: {info}", flush=True)
        trimmed, _ = load_model(str(Path(tmp) / "trimmed"))
        info["trimmed"] = ev.evaluate_model(trimmed, QUALITY_SUITES, ed)
        info["model_mb_fp32_trimmed"] = round((Path(tmp) / "trimmed" / "model.safetensors").stat().st_size / 1e6, 1)
    table = REPO / "benchmarks" / "results" / "pruning_japanese.json"
    base_row = json.loads(table.read_text()).get("e5") if table.exists() else None
    if base_row:
        info["untrimmed"], info["untrimmed_source"] = base_row["metrics"], f"pruning_japanese.json e5 ({base_row['when']})"
    else:
        info["untrimmed"], info["untrimmed_source"] = ev.evaluate_model(load_model("e5-small")[0], QUALITY_SUITES, ed), "here"
    keys = ("jsts_valid", "jsquad_ndcg10", "sample_docs_ja_ndcg10", "stsb_test", "stackfaq_ndcg10", "sample_docs_ndcg10")
    info["delta"] = {k: round(info["trimmed"][k] - info["untrimmed"][k], 4) for k in keys
                     if k in info["trimmed"] and k in info["untrimmed"]}
    return info


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--no-write", action="store_true")
    ap.add_argument("--quality", action="store_true", help="also trim the model and evaluate it")
    args = ap.parse_args()
    from tokenizers import Tokenizer

    from sbsearch.embed.e5_convert import ensure_converted

    t0 = time.perf_counter()
    model_dir = ensure_converted()
    tok = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    vocab = tok.get_vocab_size()
    dim = json.loads((model_dir / "config.json").read_text())["hidden_size"]
    special = {tok.token_to_id(s) for s in ("<s>", "</s>", "<pad>", "<unk>", "<mask>") if tok.token_to_id(s) is not None}
    # each text as the model reads it: with its prompt (the prompt's pieces are then always kept)
    ids = lambda texts, prompt: [e.ids for e in tok.encode_batch([prompt + t for t in texts])]  # noqa: E731
    kept_src, held = sources()
    held_ids = {name: ids(texts, "query: ") for name, texts in held.items()}
    kept: set[int] = set(special)
    rows = []
    for name, texts in kept_src.items():
        for seq in ids(texts, "passage: " if name == "documents" else "query: "):
            kept.update(seq)
        row = {"kept_set": name, "texts": len(texts), "pieces": len(kept), "share_of_vocab": round(len(kept) / vocab, 4),
               "embedding_mb_fp32": round(len(kept) * dim * 4 / 1e6, 1), "embedding_mb_int8": round(len(kept) * dim / 1e6, 1),
               "held_out": {}}
        for hname, seqs in held_ids.items():
            tokens = sum(len(s) for s in seqs)
            outside = sum(1 for s in seqs for i in s if i not in kept)
            row["held_out"][hname] = {"texts": len(seqs), "tokens_outside_pct": round(100 * outside / tokens, 2),
                                      "texts_with_any_outside_pct": round(100 * sum(any(i not in kept for i in s)
                                                                                  for s in seqs) / len(seqs), 1)}
        rows.append(row)
        print(json.dumps(row, ensure_ascii=False), flush=True)
    rec = {"when": time.strftime("%Y-%m-%d %H:%M"), "command": ".venv/bin/python benchmarks/vocab_trim.py",
           "vocab": vocab, "dim": dim, "embedding_mb_fp32_full": round(vocab * dim * 4 / 1e6, 1),
           "model_mb_fp32": round((model_dir / "model.safetensors").stat().st_size / 1e6, 1),
           "rows": rows, "seconds": round(time.perf_counter() - t0, 1)}
    if args.quality:
        prompted = [("passage: " if name == "documents" else "query: ") + t for name, texts in kept_src.items()
                    for t in texts]
        rec["quality"] = quality(model_dir, prompted)
        print(json.dumps(rec["quality"]["delta"]), flush=True)
    if not args.no_write:
        RESULTS.write_text(json.dumps(rec, indent=1, ensure_ascii=False) + "\n")
    print(json.dumps({k: v for k, v in rec.items() if k != "rows"}))


if __name__ == "__main__":
    main()
