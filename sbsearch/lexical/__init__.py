"""Words rather than vectors: the text that goes into the lexical (FTS5) index, user queries as
safe match expressions (CJK as character bigrams), and snippets with the query's words marked.
Pure computation: the FTS5 tables and their SQL live in sbsearch.index.store."""

from __future__ import annotations

from .analysis import STOPWORDS, Term, index_text, is_identifier, match_expression, mostly_cjk, name_text, query_terms
from .snippets import Snippet, make_snippet

__all__ = ["STOPWORDS", "Snippet", "Term", "index_text", "is_identifier", "make_snippet", "match_expression", "mostly_cjk", "name_text",
           "query_terms"]
