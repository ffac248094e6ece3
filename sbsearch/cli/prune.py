"""`sbsearch prune`: cut a model's layers, recover it in stages, export it with its card.

Options in, a PruneConfig out, app.prune() runs it (sbsearch reads --distil indexes and folders
for pruning); torch is imported only when the command runs.
"""

from __future__ import annotations

import json
import sys

import click

from ..errors import SbsearchError

RECIPE_HELP = ("best (default with --nli and --sts: hidden-state distillation to the base on 1,500 sentences "
               "of --distil, its passages whole and 3,000 sentences of --sts; ~15 min for mpnet-6 here), "
               "best-e5 (best for e5-small: 4,500 sentences, 1.5 epochs, lr 8e-4, embedding term x10; "
               "6 layers kept 96.6-97.2% of its int8 JSQuAD retrieval, three seeds, in ~15 min), "
               "best-long (every sentence of --distil; ~22 min, better retrieval), paper (nli → sts:2, "
               "Shelke et al.; top layers), paper-softmax (nli-softmax → sts:2: NLI data without triplets, e.g. JNLI), "
               "nli, sts, distil, hidden, distil-nli-sts (distil → nli → sts:2)")
SUITE_HELP = ("stsb, sick, nli, stackfaq, sample_docs, size, speed; Japanese: jsts, jsquad, sample_docs_ja; "
              "'all'; 'none'")


@click.command("prune")
@click.option("--base", default="full", show_default=True, help="Model to cut: full, minilm, a model name or directory.")
@click.option("--layers", "n_layers", type=int, default=None, help="Layers to keep (default 6; or the length of --keep-layers).")
@click.option("--strategy", type=click.Choice(["top", "bottom", "middle", "alternate", "explicit"]), default=None,
              help="Which layers to keep: top drops the top layers (the paper's choice) [default: the recipe's: "
                   "alternate for best, best-e5 and best-long, top otherwise].")
@click.option("--keep-layers", default=None, help="Explicit 0-based layers to keep, e.g. 0,2,4,7,9,11.")
@click.option("--nli", multiple=True, help="NLI file(s): premise/hypothesis/label (SNLI, XNLI, SICK, tsv/csv/jsonl) "
              "or anchor/positive/negative; hf:ID with SBSEARCH_ONLINE=1. Repeatable.")
@click.option("--sts", multiple=True, help="STS file(s): STS-B's tab format, SICK, or sentence1/sentence2/score. Repeatable.")
@click.option("--sts-dev", default=None, help="Pairs for the STS evaluator [default: shared STS-B dev when present].")
@click.option("--distil", multiple=True, help="Text for distillation: text file(s), data files, a folder of documents, "
              "an sbsearch index (folder with index.db, or a postgresql:// store). Repeatable. "
              "Default: the --nli/--sts sentences.")
@click.option("--distil-limit", type=int, default=None,
              help="At most this many texts of --distil (sentences with --distil-split), a seeded random sample; "
                   "--sts-sentences and --distil-whole passages come on top.")
@click.option("--distil-split/--no-distil-split", default=None,
              help="Cut distillation text into sentences (short, query-like, cheaper per text) [default: on, passages also kept whole, for best and best-long].")
@click.option("--distil-whole", is_flag=True, default=False,
              help="With --distil-split: also keep each --distil passage whole, so the student meets long "
                   "documents too (raise --max-length-cap to let them in).")
@click.option("--sts-limit", type=int, default=None, help="At most this many STS pairs (random sample).")
@click.option("--sts-sentences", type=click.IntRange(0), default=None,
              help="With --distil and --sts: this many sentences of the --sts files join the distillation text "
                   "[default: 3000 for best, else 0].")
@click.option("--nli-limit", type=int, default=None, help="At most this many NLI triplets (random sample).")
@click.option("--teacher", default=None, help="Teacher for distillation [default: the base model]. A base that is "
              "itself a cut may learn from its original model (progressive pruning).")
@click.option("--recipe", default=None, help=f"Named stage list: {RECIPE_HELP}.")
@click.option("--stages", default=None, help="Explicit stages among nli, nli-softmax, sts, distil, mix, hidden, e.g. hidden,sts:2 (name[:epochs]); overrides --recipe.")
@click.option("--epochs", type=float, default=None, help="Epochs per stage (unless name:epochs) [default: 1.5 for best-e5, else 1].")
@click.option("--batch-size", type=click.IntRange(2, 4096), default=None, help="[default: 16 for best and best-e5, else 32]")
@click.option("--lr", type=float, default=None, help="Learning rate [default: 8e-4 for best-e5, else 2e-5 for nli/sts, 1e-4 for distil and hidden].")
@click.option("--max-length", type=click.IntRange(8, 4096), default=None,
              help="Training sequence length [default: fitted to the data, at most --max-length-cap].")
@click.option("--max-length-cap", type=click.IntRange(8, 4096), default=None, help="[default: 256 for best, best-e5 and best-long, else 128]")
@click.option("--seed", type=int, default=42, show_default=True)
@click.option("--bf16/--no-bf16", default=False, show_default=True, help="bf16 autocast (only pays off on CPUs with avx512_bf16/AMX).")
@click.option("--freeze-embeddings/--train-embeddings", default=True, show_default=True,
              help="Keep the embedding matrices frozen (fewer parameters to update).")
@click.option("--group-by-length/--no-group-by-length", default=True, show_default=True,
              help="Batch sts/distil texts of similar length together (less padding).")
@click.option("--threads", type=int, default=None, help="Torch threads [default: all cores].")
@click.option("--embedding-weight", type=click.FloatRange(0), default=None,
              help="Stage hidden: the sentence embedding's weight beside the layers' terms [default: 10 for "
                   "best-e5, else 1].")
@click.option("--eval", "eval_suites", default="stsb,stackfaq,sample_docs,size,speed", show_default=True,
              help=f"Evaluate after training: {SUITE_HELP}.")
@click.option("--compare/--no-compare", default=True, show_default=True,
              help="Also evaluate the base model and the untrained cut.")
@click.option("--asymmetric", is_flag=True, help="Also measure retrieval with documents embedded by the base (or --teacher) "
              "model and queries by the pruned one.")
@click.option("--force", is_flag=True, help="Replace an existing pruned model at --out.")
@click.option("--no-resume", is_flag=True, help="Start over even if finished stages of this run are saved.")
@click.option("--out", required=True, help="Output directory, or a NAME (no slash) saved under the models folder.")
@click.option("--json", "as_json", is_flag=True, help="Print the card as JSON.")
@click.option("-q", "--quiet", is_flag=True, help="No progress output.")
def prune(n_layers, distil_split, distil_whole, eval_suites, compare, no_resume, as_json, quiet, **options):
    """Cut a Sentence-BERT model to fewer layers and recover it by fine-tuning.

    \b
    sbsearch prune --base full --layers 6 --nli snli.tsv --sts sts-train.csv --out mpnet-pruned-6
    sbsearch prune --base full --layers 6 --recipe paper --nli … --sts … --out mpnet-paper-6
    sbsearch prune --base full --layers 4 --stages distil --distil indexes/default --out mpnet-4-domain
    """
    from pruning.config import PruneConfig, RunHooks, split_setting

    from .. import app

    progress = not quiet and sys.stderr.isatty()

    def say(msg: str) -> None:
        if not quiet:
            click.echo(msg, err=True)

    try:
        cfg = PruneConfig(layers=n_layers, distil_split=split_setting(distil_split, distil_whole),
                          evaluate=app.prune_suites(eval_suites), compare=("base", "cut") if compare else (),
                          resume=not no_resume, **options)
        _quiet_libraries(progress)
        card = app.prune(cfg, RunHooks(progress=progress, say=say))
    except SbsearchError as exc:
        raise click.ClickException(str(exc)) from None
    except KeyboardInterrupt:
        click.echo("Interrupted; finished stages are kept and the same command resumes after them.", err=True)
        sys.exit(130)
    if as_json:
        click.echo(json.dumps(card, indent=2, ensure_ascii=False))
        return
    click.echo(f"saved {card['path']}")
    click.echo(card["summary"])
    _print_metrics(card.get("metrics", {}))


def _quiet_libraries(progress: bool) -> None:
    import logging
    import os
    import warnings

    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    warnings.filterwarnings("ignore", category=FutureWarning)
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
    except ImportError:
        pass
    for name in ("sentence_transformers", "transformers", "accelerate", "datasets"):
        logging.getLogger(name).setLevel(logging.ERROR)
    if not progress:
        try:
            import datasets

            datasets.disable_progress_bars()
        except ImportError:
            pass


def _print_metrics(metrics: dict) -> None:
    if not metrics:
        return
    from rich.console import Console
    from rich.table import Table

    cols = [("stsb_test", "STS-B ρ"), ("sick_r", "SICK-R ρ"), ("nli_acc", "NLI acc"),
            ("stackfaq_mrr10", "StackFAQ MRR@10"), ("sample_docs_mrr10", "sample_docs MRR@10"),
            ("sentences_per_s", "sent/s"), ("params", "params"), ("mb", "MB")]
    cols = [c for c in cols if any(c[0] in m for m in metrics.values())]
    t = Table()
    t.add_column("model")
    for _, title in cols:
        t.add_column(title, justify="right")
    for name, m in metrics.items():
        t.add_row(name, *[(f"{m[k]:.3f}" if isinstance(m.get(k), float) and k != "sentences_per_s"
                           else str(m.get(k, ""))) for k, _ in cols])
    Console().print(t)
