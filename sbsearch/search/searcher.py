"""Query an index: by meaning (vector), by words (lexical, BM25), or both fused (hybrid).

Every mode reads one SQLite snapshot: the chunk ids a filter allows, the lexical hits, the vector
index of that snapshot's generation and the chunk rows all describe the same committed state.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np

from ..embed.models import default_model, split_spec
from ..errors import SbsearchError
from ..index.filters import DocumentFilter
from ..index.location import open_store
from ..lexical import Snippet, Term, is_identifier, make_snippet, match_expression, mostly_cjk, query_terms
from ..vectors import open_vector_index
from .fusion import (RRF_K, adaptive_score_fusion, distribution_score_fusion, reciprocal_rank_fusion,
                     relative_score_fusion)

MODES = ("hybrid", "vector", "lexical")
# The mode that measured best on the labelled sets (benchmarks/hybrid.py, docs/BENCHMARKS.md)
DEFAULT_MODE = "hybrid"
# Hybrid ranks the fused top of this many candidates from each side (or k, when larger)
CANDIDATES = 50
# How hybrid fuses the two rankings, chosen by benchmarks/fusion.py on six labelled sets at once
# (sample_docs, StackFAQ and STS-B paraphrases with minilm-int8; JSQuAD, JSTS paraphrases and
# sample_docs' Japanese paraphrases with e5-small-int8): adaptive score fusion, the lexical weight
# 0.05 + 0.8 x the square of how far the best lexical hit stands above the next nine
# (fusion.lexical_peak), at or above the better of its two sides on every set. No fixed weighting did
# that and served both kinds of question: JSQuAD wants the words at 0.4, JSTS at 0.12 (at 0.2 it falls
# below vectors alone). Squared, the middling peaks of paraphrases keep the words light while a
# passage that alone holds a question's rare words gets them heavy: against 0.05 + 0.3 x the peak
# (the choice before), JSQuAD 0.928 -> 0.931, sample_docs 0.854 -> 0.858, JSTS 0.865 -> 0.864, the
# rest equal. Rank fusion (RRF) and distribution-based score fusion were below on the paraphrase sets.
# From this many chunks on, words held by more than COMMON_SHARE of them leave the lexical query
COMMON_TERMS_FROM = 20_000
COMMON_SHARE = 0.02
# Tokens whose number of chunks a searcher keeps per generation of the index (a few hundred KB)
TOKEN_COUNTS_KEPT = 20_000
FUSION = "adaptive"
ADAPTIVE_LEXICAL = (0.05, 0.8, 2)  # (base, per unit of peak^power, power): the words' weight in adaptive fusion
FUSION_WEIGHTS = (0.88, 0.12)  # (vector, lexical) of the fixed fusions ("score", "dbsf", "rrf")


def split_mode(spec: str | None) -> tuple[str | None, str | None]:
    """"minilm:hybrid" -> ("minilm", "hybrid"); a spec without a known mode suffix is all model."""
    if spec and ":" in spec:
        model, _, mode = spec.rpartition(":")
        if mode in MODES:
            return model or None, mode
    return spec, None


def check_mode(mode: str | None) -> str:
    mode = mode or DEFAULT_MODE
    if mode not in MODES:
        raise SbsearchError(f"unknown search mode {mode!r} (choose {', '.join(MODES)})")
    return mode


@dataclass
class Result:
    rank: int
    score: float
    chunk_id: int
    path: str
    root: str
    page: int | None
    heading: str | None
    text: str
    terms: list[Term] = field(default_factory=list, repr=False)
    vector_rank: int | None = None
    lexical_rank: int | None = None
    doc_id: int | None = None
    chunk_location: str | None = None  # as stored: "slide 7", "sheet Prices", "mail", or None

    @property
    def location(self) -> str | None:
        """Where in its document the passage is, as shown: "p.3", "slide 7", "sheet Prices", "mail"."""
        if self.chunk_location:
            return self.chunk_location
        return f"p.{self.page}" if self.page else None

    @property
    def relpath(self) -> str:
        """Path relative to the folder that was indexed (what query files name)."""
        if self.root and self.path.startswith(self.root.rstrip("/") + "/"):
            return self.path[len(self.root.rstrip("/")) + 1:]
        return self.path

    def display_path(self) -> str:
        """Relative to the working directory when under it, else `<indexed folder name>/<relpath>`."""
        cwd = os.getcwd().rstrip("/") + "/"
        if self.path.startswith(cwd):
            return self.path[len(cwd):]
        if self.root and self.relpath != self.path:
            return f"{Path(self.root).name}/{self.relpath}"
        return self.path

    def fields(self) -> dict:
        """What both faces show of a result (`query --json`, `/api/search`)."""
        snip = self.snippet
        return {"rank": self.rank, "score": round(self.score, 6), "page": self.page, "location": self.location,
                "heading": self.heading, "snippet": snip.text, "highlights": [list(h) for h in snip.highlights],
                "vector_rank": self.vector_rank, "lexical_rank": self.lexical_rank, "text": self.text}

    @cached_property
    def snippet(self) -> Snippet:
        """The passage to show, the query's words marked (computed when first shown)."""
        return make_snippet(self.text, self.terms)


def model_for_index(store, model: str | None) -> str:
    """--model / $SBSEARCH_MODEL, else the index's default model, else the global default."""
    if model or store.get_meta("default_model"):
        return model or store.get_meta("default_model")
    return default_model()


class Searcher:
    """Searches one index. `model` names the vectors (and the query encoder) of the vector side
    and may carry a mode ("minilm:lexical"); `mode` is the default mode of search_many."""

    def __init__(self, index_path: Path, model: str | None = None, embedder=None, mode: str | None = None):
        self.store = open_store(index_path)
        model, spec_mode = split_mode(model)
        self.mode = check_mode(mode or spec_mode)
        # model_name is what the user asked for ('Q@D' in the asymmetric mode); doc_model names
        # the stored vectors searched, the embedder encodes the queries.
        self.model_name = embedder.name if embedder is not None else model_for_index(self.store, model)
        self.query_model, self.doc_model = split_spec(self.model_name)
        self.has_lexical = self.store.has_lexical()
        # what the answers should tell the user about how they were made (e.g. a mode fallen back)
        self.notice: str | None = None
        if self.mode != "vector" and not self.has_lexical:
            if self.mode == "lexical":
                raise SbsearchError(f"index {index_path} has no lexical index yet (made by an older sbsearch); "
                                    "run `sbsearch index DIR` or `sbsearch check --repair` to add it (nothing is re-embedded)")
            self.mode = "vector"
            self.notice = "vector only: this index has no lexical index yet (run `sbsearch check --repair`)"
        self._embedder = embedder
        # fusion settings (benchmarks/hybrid.py measures alternatives): RRF constant, weights of
        # the (vector, lexical) rankings, chunks holding a code the query names first
        self.fusion = FUSION
        self.rrf_k = RRF_K
        self.fusion_weights = FUSION_WEIGHTS
        self.adaptive_lexical = ADAPTIVE_LEXICAL
        self.identifiers_first = True
        # Hybrid's vector side ranks CANDIDATES chunks for fusion, but only the k shown need vector
        # search's recall: an approximate index reads and rescores the stored vectors of as many
        # candidates as a search for k does, and ranks the rest of the fusion's among them
        # (benchmarks/hybrid_candidates.py measures what that costs in quality; at 1M chunks the
        # 16 x 50 vectors rescored were most of a hybrid search). False: every candidate with it.
        self.rescore_for_shown_only = True
        # An English-only model's vectors of a Japanese question rank Japanese passages close to at
        # random, so for such a question the words decide and the vectors only add candidates after
        # them. Whether the model reads CJK is a property of the model (ModelInfo.languages: the e5
        # family, and models pruned from it, do), known once the query encoder is made.
        self._reads_cjk: bool | None = None
        self._allowed_cache: dict = {}
        self._chunk_counts: dict[tuple, int] = {}  # (store.state, reader) -> chunks the reader may read
        self._token_counts: tuple[int | None, dict[str, int]] = (None, {})  # (generation, token -> chunks)
        self.model_row = self.store.model_row(self.doc_model)
        self.dim = self.model_row["dim"] if self.model_row else None
        self.vector_index = open_vector_index(self.store, self.doc_model, self.dim)
        if self.mode != "lexical":
            self._require_vectors(index_path)

    def _require_vectors(self, index_path) -> None:
        if self.model_row is None or self.store.vector_count(self.doc_model) == 0:
            have = ", ".join(m["name"] for m in self.store.models()) or "none"
            raise SbsearchError(
                f"index {index_path} has no vectors for model {self.doc_model!r} (has: {have}); "
                f"run `sbsearch index DIR --model {self.doc_model}`"
            )

    @property
    def embedder(self):
        if self._embedder is None:
            from ..embed import make_embedder

            self._embedder = make_embedder(self.model_name)
        if self._embedder.dim != self.dim:
            raise SbsearchError(
                f"model {self.model_name!r} gives {self._embedder.dim}-d vectors but the index holds "
                f"{self.dim}-d vectors for it"
            )
        return self._embedder

    @property
    def reads_cjk(self) -> bool:
        """The query encoder reads Japanese (its model info's languages); settable, e.g. by a benchmark."""
        if self._reads_cjk is None:
            info = getattr(self.embedder, "info", None)
            self._reads_cjk = bool(info is not None and info.reads_cjk)
        return self._reads_cjk

    @reads_cjk.setter
    def reads_cjk(self, value: bool) -> None:
        self._reads_cjk = value

    def missing_vectors(self) -> int:
        return self.store.chunk_count() - self.store.vector_count(self.doc_model)

    def search(self, query: str, k: int = 10, mode: str | None = None,
               doc_filter: DocumentFilter | None = None) -> list[Result]:
        return self.search_many([query], k, mode, doc_filter)[0]

    def search_many(self, queries: list[str], k: int = 10, mode: str | None = None,
                    doc_filter: DocumentFilter | None = None) -> list[list[Result]]:
        mode = self.mode if mode is None else check_mode(mode)
        if mode != "vector" and not self.has_lexical:
            mode = "vector"
        if mode != "lexical" and self.mode == "lexical":
            self._require_vectors(self.store.path)
        terms = []
        cjk = []
        for q in queries:
            if not q or not q.strip():
                raise SbsearchError("empty query")
            terms.append(query_terms(q))
            cjk.append(mostly_cjk(q))
            if mode != "vector" and not terms[-1]:
                raise SbsearchError(f"the query {q!r} has no words to search for (only stop words or punctuation)")
        vecs = self.embedder.encode_query(queries) if mode != "lexical" else None
        return self._in_snapshot(vecs, terms, k, mode, doc_filter, cjk)

    def search_vectors(self, vecs: np.ndarray, k: int = 10) -> list[list[Result]]:
        """Vector search of query vectors already encoded (no filter, no snippet terms)."""
        return self._in_snapshot(vecs, [[] for _ in vecs], k, "vector", None)

    def _in_snapshot(self, *args) -> list[list[Result]]:
        for _ in range(20):
            with self.store.snapshot():
                found = self._search_snapshot(*args)
            if found is not None:
                return found
            time.sleep(0.05)  # the vector index is ahead of our snapshot: a writer just published
        raise SbsearchError("the index kept changing during the search; try again")

    def _readable_chunks(self, state: tuple[int, int], reader: DocumentFilter | None) -> int:
        """The chunks a reader may read (all of them for None), counted once per state of the index."""
        key = (state, reader)
        if key not in self._chunk_counts:
            if len(self._chunk_counts) >= 64:
                self._chunk_counts.clear()
            self._chunk_counts[key] = self.store.lexical_collection(reader)[0]
        return self._chunk_counts[key]

    def _lexical_lists(self, terms: list[list[Term]], depth: int, state: tuple[int, int],
                       doc_filter: DocumentFilter | None, allowed: np.ndarray | None) -> list[list[tuple[int, float]]]:
        reader = doc_filter.reader if doc_filter is not None else None
        n_chunks = self._readable_chunks(state, reader)
        return [self.store.lexical_search(match_expression(self._selective(t, n_chunks, reader, state)), depth,
                                          doc_filter, allowed) for t in terms]

    def _search_snapshot(self, vecs, terms: list[list[Term]], k: int, mode: str, doc_filter: DocumentFilter | None,
                         cjk: list[bool] | None = None) -> list[list[Result]] | None:
        """Inside one read transaction: None when the vector index is ahead of the snapshot."""
        state = self.store.state  # (generation, access version): the first read fixes the snapshot
        generation = state[0]  # what readers may read changes with both
        allowed = None
        if doc_filter is not None and doc_filter.active:
            allowed = self._allowed(state, doc_filter)
            if allowed is not None and not len(allowed):
                return [[] for _ in terms]
            if allowed is None:
                doc_filter = None
        depth = k if mode != "hybrid" else max(k, CANDIDATES)
        vector_lists: list[list[tuple[int, float]]] = [[] for _ in terms]
        lexical_lists: list[list[tuple[int, float]]] = [[] for _ in terms]
        if mode != "lexical":
            recall_depth = k if mode == "hybrid" and self.rescore_for_shown_only else None
            found = self.vector_index.search(vecs, depth, generation, allowed, recall_depth=recall_depth)
            if found is None:
                return None
            vector_lists = self._exact_scores(vecs, [[int(i) for i in qi if i >= 0] for qi in found[1]])
        if mode != "vector":
            lexical_lists = self._lexical_lists(terms, depth, state, doc_filter, allowed)
        ranked = []
        for vec_hits, lex_hits, qterms, q_cjk in zip(vector_lists, lexical_lists, terms, cjk or [False] * len(terms)):
            vector_rank = {cid: r for r, (cid, _) in enumerate(vec_hits, start=1)}
            lexical_rank = {cid: r for r, (cid, _) in enumerate(lex_hits, start=1)}
            if mode == "hybrid":
                # weight 0: a vector-only hit scores 0 and follows every lexical hit, in vector order
                if q_cjk and not self.reads_cjk:  # words decide; vector-only hits follow, in vector order
                    hits = reciprocal_rank_fusion([[c for c, _ in vec_hits], [c for c, _ in lex_hits]], self.rrf_k,
                                                  [0.0, 1.0])
                elif self.fusion == "adaptive":
                    hits = adaptive_score_fusion(vec_hits, lex_hits, *self.adaptive_lexical)
                elif self.fusion == "rrf":
                    hits = reciprocal_rank_fusion([[c for c, _ in vec_hits], [c for c, _ in lex_hits]], self.rrf_k,
                                                  list(self.fusion_weights))
                elif self.fusion == "dbsf":
                    hits = distribution_score_fusion([vec_hits, lex_hits], list(self.fusion_weights))
                else:
                    hits = relative_score_fusion([vec_hits, lex_hits], list(self.fusion_weights))
                if self.identifiers_first:
                    hits = self._identifiers_first(hits, qterms, depth, doc_filter, allowed)
                hits = hits[:k]
            else:
                hits = (vec_hits or lex_hits)[:k]
            ranked.append((hits, vector_rank, lexical_rank))
        rows = self.store.chunk_rows({cid for hits, _, _ in ranked for cid, _ in hits})
        out = []
        for (hits, vector_rank, lexical_rank), qterms in zip(ranked, terms):
            shown = [t for t in qterms if not t.stop]  # stop words rank, but are not highlighted
            results = []
            for cid, score in hits:
                row = rows.get(cid)
                if row is None:
                    continue  # cannot happen within one snapshot; never show a ghost anyway
                results.append(Result(len(results) + 1, score, cid, row["path"], row["root"] or "", row["page"],
                                      row["heading"], row["text"], shown, vector_rank.get(cid), lexical_rank.get(cid),
                                      row["doc_id"], row["location"]))
            out.append(results)
        return out

    def _exact_scores(self, vecs: np.ndarray, found: list[list[int]]) -> list[list[tuple[int, float]]]:
        """The vector side's hits, scored anew from their stored vectors in float64 and ranked by
        that score (ties by chunk id). Which path found them (FAISS over every vector, FAISS with an
        id selector, an exact scan of the allowed ones) depends on how much else the index holds,
        and each rounds its float32 sums its own way: a reader's scores must not tell them that."""
        ids = np.asarray(sorted({cid for hits in found for cid in hits}), dtype=np.int64)
        if not len(ids):
            return [[] for _ in found]
        got, mat = self.store.vectors_for_ids(self.doc_model, ids)
        row_of = {int(cid): n for n, cid in enumerate(got)}
        stored = mat.astype(np.float64)
        out = []
        for q, hits in zip(np.asarray(vecs, dtype=np.float64), found):
            scored = [(cid, float(stored[row_of[cid]] @ q)) for cid in hits if cid in row_of]
            out.append(sorted(scored, key=lambda hit: (-hit[1], hit[0])))
        return out

    def _selective(self, terms: list[Term], n_chunks: int, reader: DocumentFilter | None = None,
                   state: tuple[int, int] | None = None) -> list[Term]:
        """The query's words without those most chunks contain. BM25 gives such a word almost no
        weight, yet FTS5 must score every chunk holding it: at 100,000 chunks one "work" or "get"
        costs more than the rest of the search. Small indexes keep every word. Chunks and words
        are counted among those the reader may read (n_chunks is theirs): which words a reader's
        query keeps must not depend on documents they cannot read."""
        if n_chunks < COMMON_TERMS_FROM:
            return terms
        limit = COMMON_SHARE * n_chunks
        tokens = {t: t.token for t in terms if t.word}
        counts = self._vocabulary_counts(set(tokens.values()), state[0] if state else None)
        if reader is not None:
            # The reader holds at most a word's count over all chunks, and at least that less the
            # chunks they cannot read: only words between the two bounds are counted among theirs
            # (counting a common word means listing every chunk that holds it).
            unreadable = self._readable_chunks(state, None) - n_chunks
            unsure = [tok for tok, count in counts.items() if count > limit and count - unreadable <= limit]
            counts.update(self.store.token_row_counts(unsure, reader) if unsure else {})
            if all(counts.get(tok, 0) > limit for tok in tokens.values()) and len(tokens) == len(terms):
                # every word common: the rarest is kept, so every count must be the reader's own
                counts.update(self.store.token_row_counts(set(tokens.values()) - set(unsure), reader))
        held = {t: counts.get(token, 0) for t, token in tokens.items()}
        kept = [t for t in terms if held.get(t, 0) <= limit]
        return kept or [min(terms, key=lambda t: held.get(t, 0))]

    def _vocabulary_counts(self, tokens: set[str], generation: int | None) -> dict[str, int]:
        """How many chunks hold each token, over every chunk (FTS5's vocabulary), kept for the
        generation of the index they were counted in: FTS5 counts a token by walking its whole
        posting list (2 ms for a word 50,000 of 100,000 chunks hold), and a server sees the same
        words query after query. Nothing else changes the lexical rows."""
        if generation is None:
            return self.store.token_row_counts(tokens)
        kept_generation, known = self._token_counts
        if kept_generation != generation or len(known) >= TOKEN_COUNTS_KEPT:
            known = {}
            self._token_counts = (generation, known)
        missing = tokens - known.keys()
        if missing:
            known.update(dict.fromkeys(missing, 0) | self.store.token_row_counts(missing))
        return {token: known[token] for token in tokens}

    def _allowed(self, state: tuple[int, int], doc_filter: DocumentFilter) -> np.ndarray | None:
        """The chunk ids a filter allows (None: all of them), computed once per state of the index
        (its generation, and the version of its documents' readers, which a rules change moves
        without publishing anything): a server answering one reader's group after another asks
        SQLite only when the index has changed."""
        key = (state, doc_filter)
        if key not in self._allowed_cache:
            if len(self._allowed_cache) >= 64:
                self._allowed_cache.clear()
            allowed = self.store.filtered_chunk_ids(doc_filter)
            # a filter that keeps every chunk (a reader who may read everything) costs nothing
            self._allowed_cache[key] = None if len(allowed) == self.store.chunk_count() else allowed
        return self._allowed_cache[key]

    def _identifiers_first(self, fused: list[tuple[int, float]], terms: list[Term], depth: int,
                           doc_filter: DocumentFilter | None, allowed: np.ndarray | None) -> list[tuple[int, float]]:
        """A query naming a code (E-4012, HX-220L) wants the chunks that contain it: those come
        first, in fused order, whatever the vector side thought of them. Rank fusion alone can put
        a chunk that only resembles the query above one that holds the code."""
        codes = [t for t in terms if is_identifier(t)]
        if not codes:
            return fused
        in_bm25_order = [cid for cid, _ in self.store.lexical_search(match_expression(codes), depth, doc_filter,
                                                                     allowed)]
        holders = set(in_bm25_order)
        if not holders:
            return fused
        fused_ids = {cid for cid, _ in fused}
        # holders the fused list lacks (beyond both candidate lists) join after the ones it has
        extra = [(cid, 0.0) for cid in in_bm25_order if cid not in fused_ids]
        first = [h for h in fused if h[0] in holders] + extra
        return first + [h for h in fused if h[0] not in holders]
