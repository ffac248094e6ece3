"""sbsearch: semantic search over a company's own documents with layer-pruned Sentence-BERT models.

The package is a library first (docs/ARCHITECTURE.md); ``sbsearch.cli`` is a thin command-line
layer over ``sbsearch.app``. Importing ``sbsearch`` (and the modules used by ``sbsearch status``)
must not import torch.
"""

__version__ = "0.1.0"
