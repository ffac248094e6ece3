"""Layer pruning for Sentence-BERT models: cut, recover (NLI → STS, distillation), evaluate, export.

    from pruning import prune, choose_layers, cut_model
    card = prune("full", 6, "top", "mpnet-pruned-6", nli=[...], sts=[...])

Submodules: layers (choose/cut), data (readers), train (stages), evaluate (metrics), card (export),
api (prune). Importing this package does not import torch.
"""

from .layers import STRATEGIES, choose_layers, cut_model  # noqa: F401


def prune(*args, **kwargs):
    """See pruning.api.prune."""
    from .api import prune as _prune

    return _prune(*args, **kwargs)
