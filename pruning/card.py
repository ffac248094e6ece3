"""Export: a sentence-transformers directory + pruning.json + a short README.md model card."""

from __future__ import annotations

import json
import os
from pathlib import Path

CARD_FILE = "pruning.json"


def summary_line(card: dict) -> str:
    m = card.get("metrics", {}).get("model", {})
    parts = [f"{card.get('base_model', '?')} cut to {len(card.get('kept_layers', []))} of "
             f"{card.get('base_layers', '?')} layers ({card.get('strategy', '?')})"]
    if card.get("recipe"):
        parts.append(f"recipe {card['recipe']}")
    for key, label in (("stsb_test", "STS-B ρ"), ("stackfaq_mrr10", "StackFAQ MRR@10"),
                       ("sample_docs_mrr10", "sample_docs MRR@10")):
        if key in m:
            parts.append(f"{label} {m[key]:.3f}")
    return " · ".join(parts)


def write_card(out: Path, card: dict) -> dict:
    """Write pruning.json (atomically) and README.md beside the saved model; returns the card."""
    out = Path(out)
    card = dict(card)
    card["summary"] = summary_line(card)
    tmp = out / (CARD_FILE + ".tmp")
    tmp.write_text(json.dumps(card, indent=2, ensure_ascii=False) + "\n")
    os.replace(tmp, out / CARD_FILE)
    (out / "README.md").write_text(render_readme(card))
    return card


def read_card(path: Path) -> dict:
    p = Path(path) / CARD_FILE
    return json.loads(p.read_text()) if p.exists() else {}


def _table(metrics: dict) -> str:
    cols = [("stsb_test", "STS-B test ρ"), ("sick_r", "SICK-R ρ"), ("nli_acc", "NLI probe acc"),
            ("stackfaq_mrr10", "StackFAQ MRR@10"), ("sample_docs_mrr10", "sample_docs MRR@10"),
            ("sentences_per_s", "sentences/s"), ("mb", "MB")]
    cols = [c for c in cols if any(c[0] in m for m in metrics.values())]
    if not cols:
        return ""
    lines = ["| model | " + " | ".join(c[1] for c in cols) + " |", "|---" * (len(cols) + 1) + "|"]
    for name, m in metrics.items():
        lines.append(f"| {name} | " + " | ".join(str(m.get(c[0], "")) for c in cols) + " |")
    return "\n".join(lines) + "\n"


def render_readme(card: dict) -> str:
    stages = card.get("stages", [])
    stage_lines = "\n".join(
        f"- `{s['stage']}`: {s.get('rows', '?')} rows, {s.get('steps', '?')} steps, max length "
        f"{s.get('max_length', '?')}, {s.get('seconds', '?')} s" + (f", dev ρ {s['dev_spearman']}" if "dev_spearman" in s else "")
        for s in stages) or "- none (the cut model as is)"
    data_lines = "\n".join(f"- `{d['path']}` ({d['role']}, sha256 {d['sha256'][:12]}…)" for d in card.get("data", [])) or "- none"
    return f"""---
library_name: sentence-transformers
pipeline_tag: sentence-similarity
tags: [sentence-transformers, layer-pruning, sbsearch]
---

# {card.get('name', 'pruned model')}

{card.get('summary', '')}

Made with `sbsearch prune` (layer pruning after Shelke, Savant & Joshi 2024, "Towards Building
Efficient Sentence BERT Models using Layer Pruning"): the base model's transformer layers
{card.get('kept_layers')} of {card.get('base_layers')} were kept, then recovered in stages.

## Recovery stages

{stage_lines}

## Data

{data_lines}

## Evaluation

{_table(card.get('metrics', {}))}
Load it with `SentenceTransformer("{card.get('name', 'path/to/model')}")`. Full details: `pruning.json`.
"""
