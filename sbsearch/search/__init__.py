"""Answering queries: `from sbsearch.search import Searcher` is public API.

searcher.py is vector search; a lexical search and the fusion of both rankings would be modules
beside it, combined by the Searcher.
"""

from __future__ import annotations

from .searcher import Result, Searcher, model_for_index

__all__ = ["Result", "Searcher", "model_for_index"]
