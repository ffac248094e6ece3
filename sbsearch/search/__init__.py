"""Answering queries: `from sbsearch.search import Searcher` is public API.

searcher.py runs the three modes (vector, lexical, hybrid) over one snapshot of the index;
fusion.py merges the two rankings of a hybrid search.
"""

from __future__ import annotations

from .searcher import DEFAULT_MODE, MODES, Result, Searcher, check_mode, model_for_index, split_mode

__all__ = ["DEFAULT_MODE", "MODES", "Result", "Searcher", "check_mode", "model_for_index", "split_mode"]
