"""Layer pruning for Sentence-BERT models: cut, recover (NLI → STS, distillation), evaluate, export.

    from pruning.config import PruneConfig
    from pruning.run import run
    card = run(PruneConfig.from_recipe("paper", base="full", layers=6, out="mpnet-pruned-6", nli=[...], sts=[...]))

Text in, model out: pruning reads texts and plain data files; sbsearch reads indexes, stores and
folders of documents and hands their text over (pruning.data.Texts). pruning.host is its one door
to sbsearch (model loading, paths, the error type, the shared measures).

Modules: config (PruneConfig), recipes (named plans, as data), stages/ (one module per recovery
stage, and their registry), suites/ (one module per evaluation suite, and theirs), run (cut →
resume → recover → export → evaluate), layers (choose/cut), data and inputs (readers), train (the
shared trainer, hidden-state distillation), measures and evaluate (metrics), card (export), api
(prune(), the keyword form). Importing this package does not import torch.
"""

from .layers import STRATEGIES, choose_layers, cut_model  # noqa: F401


def prune(*args, **kwargs):
    """See pruning.api.prune."""
    from .api import prune as _prune

    return _prune(*args, **kwargs)
