"""The PostgreSQL store's lexical index: a weighted tsvector per chunk of the FTS5 tokens
(store.tokens), ranked by FTS5's BM25 in SQL, with the statistics BM25 needs kept beside it."""

from __future__ import annotations

import json
import math
import re
import secrets
from functools import cached_property
from typing import Iterable

import numpy as np

from ....lexical import index_text
from ....lexical.bm25 import Collection
from ...filters import DocumentFilter
from ..postings import KeptPhrases, Occurrences
from ..tokens import LEXICAL_WEIGHTS, lexical_disagreements, lexical_name, lexical_tokens, match_phrases
from .access import filter_sql
from .schema import LEXICAL_FORMAT, POSTINGS_TABLE_SQL, WRITER_LOCK_KEY

# What a search from the postings kept in memory reads of meta: the state of the index and the whole
# table's BM25 statistics
_LEXICAL_META = ("generation", "access_version", "lexical_version", "lexical_rows", "lexical_length")

# tsvector limits: a lexeme under 2 KB, positions up to 16383
MAX_LEXEME_BYTES, MAX_POSITION = 2046, 16383

# The weight label of each column of a lexical row (body, heading, name) in its tsvector, and the
# BM25 weight it stands for (LEXICAL_WEIGHTS, as the SQLite store gives FTS5's bm25())
COLUMN_LABELS = ("D", "B", "C")

# BM25 exactly as FTS5's bm25() computes it: k1 = 1.2, b = 0.75; a phrase's idf is
# ln((N - n + 0.5) / (n + 0.5)), at least 1e-6, n the rows holding the phrase (from lexical_df for
# one token, else counted through the GIN index); its frequency in a row is the column-weighted count
# of its occurrences; a row's length is its token count (ntok). The idfs and the mean row length are
# computed first (lexical_search), the ranking in one statement (bm25_statement, below).
BM25_K1, BM25_B = 1.2, 0.75


def _weight_of(label: str) -> str:
    """SQL: the BM25 weight of a position's weight label (a tsvector's default label is D: the body)."""
    return (f"CASE {label} WHEN 'B' THEN {LEXICAL_WEIGHTS[1]} WHEN 'C' THEN {LEXICAL_WEIGHTS[2]} "
            f"ELSE {LEXICAL_WEIGHTS[0]} END")


# A ranking statement is built of parts (bm25_statement): the query's phrases, then the occurrences
# of the phrases in the rows, as (chunk_id, ntok, i, tf) rows of a CTE `tf`, from one or two sources:
#  - tsvectors: the rows matching any phrase (through the GIN index), the positions of the query's
#    tokens in them, the phrases' occurrences (a start position from which each of its tokens follows
#    the one before). Phrases of several tokens and prefixes need positions, so they are read here.
#  - postings (table lexical_postings): a one-token phrase's rows, counts and lengths straight from
#    the lexeme's postings, without reading any row's tsvector. Most phrases of English questions
#    are one token; reading each matching row's tsvector was most of a search's time (at 100k
#    chunks, five words in 4,229 rows: 71 ms through the tsvectors, 8 ms from the postings).
_PHRASES_CTE = (
    "WITH p AS MATERIALIZED (SELECT x.i, x.toks, x.prefix, x.idf, x.posted "
    "FROM jsonb_to_recordset(%s::jsonb) AS x(i int, toks text[], prefix boolean, idf float8, posted boolean))")
_TSVECTOR_CTES = (
    ", k AS MATERIALIZED (SELECT p.i, t.tok, t.j, cardinality(p.toks) AS len, p.prefix AND t.j = cardinality(p.toks) AS pre "
    "FROM p CROSS JOIN LATERAL unnest(p.toks) WITH ORDINALITY t(tok, j) WHERE NOT p.posted), "
    # the query's tokens in each row that matches (through the GIN index): without prefixes, the
    # row's tsvector less every other lexeme (ts_delete, in C: a row's other lexemes never become
    # SQL rows), else every lexeme, filtered
    "occ AS MATERIALIZED (SELECT l.chunk_id, l.ntok, u.lexeme, pw.pos, pw.w FROM lexical l {join} CROSS JOIN LATERAL "
    "(SELECT v.lexeme, v.positions, v.weights FROM unnest(CASE WHEN cardinality(%s::text[]) = 0 "
    "THEN ts_delete(l.tsv, tsvector_to_array(ts_delete(l.tsv, %s::text[]))) ELSE l.tsv END) v "
    "WHERE v.lexeme = ANY(%s::text[]) OR v.lexeme LIKE ANY(%s::text[])) u "
    "CROSS JOIN LATERAL unnest(u.positions, u.weights) pw(pos, w) WHERE l.tsv @@ %s::tsquery {where}), "
    f"hits AS (SELECT o.chunk_id, o.ntok, k.i, max({_weight_of('o.w')}) AS f FROM k JOIN occ o "
    "ON o.lexeme = k.tok OR (k.pre AND starts_with(o.lexeme, k.tok)) "
    "GROUP BY o.chunk_id, o.ntok, k.i, k.len, o.pos - k.j HAVING count(DISTINCT k.j) = k.len), "
    "tf_tsvector AS (SELECT h.chunk_id, h.ntok, h.i, sum(h.f)::float8 AS tf FROM hits h GROUP BY h.chunk_id, h.ntok, h.i)")
_POSTINGS_CTE = (
    ", tf_postings AS (SELECT x.c AS chunk_id, x.n AS ntok, p.i, x.t::float8 AS tf FROM p "
    "JOIN lexical_postings lp ON lp.lexeme = p.toks[1] "
    "CROSS JOIN LATERAL unnest(lp.chunk_ids, lp.tfs, lp.ntoks) x(c, t, n) {join} "
    "WHERE p.posted AND lp.lexeme = ANY(%s::text[]) {where})")
_FILTER_JOIN = "JOIN chunks c ON c.id = {id} JOIN documents d ON d.id = c.doc_id"
# BM25 exactly as FTS5's bm25() adds it up, over the `tf` rows, best first
_RANK = (f" SELECT tf.chunk_id, sum(p.idf * tf.tf * {BM25_K1 + 1} / (tf.tf + {BM25_K1} * "
         f"(1 - {BM25_B} + {BM25_B} * tf.ntok / %s::float8))) AS r FROM tf JOIN p ON p.i = tf.i "
         "GROUP BY tf.chunk_id ORDER BY r DESC, tf.chunk_id LIMIT %s")
# Where the phrases occur over the whole table, for the postings kept in memory (store.postings):
# each row holding them, its length and the phrases' column-weighted occurrences there
_OCCURRENCES = " SELECT tf.chunk_id, tf.ntok, tf.tf FROM tf ORDER BY tf.chunk_id"


def bm25_statement(phrases: list[dict], postings: bool, where: str = "TRUE", where_params: Iterable = ()) -> tuple[str, list]:
    """The SQL and parameters that put the occurrences of these phrases (each with its idf) in the
    rows passing `where` (an SQL condition on chunks c and documents d) into a CTE `tf`; postings:
    whether one-token phrases may be read from lexical_postings."""
    phrases = [{**p, "posted": postings and len(p["toks"]) == 1 and not p["prefix"]} for p in phrases]
    filtered = where != "TRUE"
    where_sql, where_params = (f"AND {where}", list(where_params)) if filtered else ("", [])
    sql, params, sources = _PHRASES_CTE, [json.dumps(phrases)], []
    read = [p for p in phrases if not p["posted"]]
    if read:
        any_phrase = " | ".join(f"({p['q']})" for p in read)
        exact = sorted({t for p in read for t in (p["toks"][:-1] if p["prefix"] else p["toks"])})
        prefixes = [re.sub(r"([%_\\])", r"\\\1", p["toks"][-1]) + "%" for p in read if p["prefix"]]
        sql += _TSVECTOR_CTES.format(join=_FILTER_JOIN.format(id="l.chunk_id") if filtered else "", where=where_sql)
        params += [prefixes, exact, exact, prefixes, any_phrase, *where_params]
        sources.append("tf_tsvector")
    posted = [p["toks"][0] for p in phrases if p["posted"]]
    if posted:
        sql += _POSTINGS_CTE.format(join=_FILTER_JOIN.format(id="x.c") if filtered else "", where=where_sql)
        params += [posted, *where_params]
        sources.append("tf_postings")
    sql += ", tf AS (" + " UNION ALL ".join(f"SELECT chunk_id, ntok, i, tf FROM {t}" for t in sources) + ")"
    return sql, params


# lexical_postings: for each lexeme, the chunks holding it, with its column-weighted count there and
# each chunk's length (BM25's three numbers), as arrays, one row for each batch of chunks written at
# once (its key: the batch's first chunk id; ids are never reused). Filled from the rows' tsvectors
# in the same transactions, so it counts exactly what the tsvectors hold. Arrays, not a row per
# posting: as one row per (lexeme, chunk) with its primary key, the table took 439 MB at 100k chunks
# (122 bytes a posting, most of it row headers and index entries), 6x the tsvectors and their GIN
# index together; as arrays, 42 MB (12 bytes a posting).
_POST_SQL = (
    "INSERT INTO lexical_postings (lexeme, first_chunk, chunk_ids, tfs, ntoks) "
    "SELECT u.lexeme, %s, array_agg(l.chunk_id ORDER BY l.chunk_id), "
    f"array_agg((SELECT sum({_weight_of('w')}) FROM unnest(u.weights) w)::real ORDER BY l.chunk_id), "
    "array_agg(l.ntok ORDER BY l.chunk_id) FROM lexical l, unnest(l.tsv) u WHERE l.chunk_id = ANY(%s) GROUP BY u.lexeme")
# the chunks leave the postings of their lexemes (a row left empty is deleted after)
_UNPOST_SQL = (
    "UPDATE lexical_postings lp SET chunk_ids = f.ids, tfs = f.tfs, ntoks = f.ntoks FROM ("
    "SELECT g.lexeme, g.first_chunk, coalesce(array_agg(x.c ORDER BY x.c) FILTER (WHERE x.c <> ALL(%(ids)s::bigint[])), '{}') AS ids, "
    "coalesce(array_agg(x.t ORDER BY x.c) FILTER (WHERE x.c <> ALL(%(ids)s::bigint[])), '{}') AS tfs, "
    "coalesce(array_agg(x.n ORDER BY x.c) FILTER (WHERE x.c <> ALL(%(ids)s::bigint[])), '{}') AS ntoks "
    "FROM lexical_postings g CROSS JOIN LATERAL unnest(g.chunk_ids, g.tfs, g.ntoks) x(c, t, n) "
    "WHERE g.lexeme = ANY(ARRAY(SELECT DISTINCT u.lexeme FROM lexical l, unnest(l.tsv) u WHERE l.chunk_id = ANY(%(ids)s::bigint[]))) "
    "AND g.chunk_ids && %(ids)s::bigint[] GROUP BY g.lexeme, g.first_chunk) f "
    "WHERE lp.lexeme = f.lexeme AND lp.first_chunk = f.first_chunk")


def _lexeme(token: str) -> str:
    return "'" + token.replace("\\", "\\\\").replace("'", "''") + "'"


def tsvector_literal(columns: list[list[str]]) -> tuple[str, int]:
    """A lexical row as a tsvector literal (each token at its position, labelled by its column; a
    gap between columns, so that no phrase spans two) and its token count."""
    positions: dict[str, list[str]] = {}
    base = 0
    for tokens, label in zip(columns, COLUMN_LABELS):
        for i, token in enumerate(tokens):
            if len(token.encode()) <= MAX_LEXEME_BYTES:
                positions.setdefault(token, []).append(f"{min(base + i + 1, MAX_POSITION)}{label}")
        base += len(tokens) + 1
    return " ".join(f"{_lexeme(t)}:{','.join(p)}" for t, p in positions.items()), sum(len(c) for c in columns)


def lexical_rows(rows: list[tuple[int, str | None, str | None, str]]) -> list[tuple[int, str, int]]:
    """(chunk id, tsvector literal, token count) of (chunk id, text, heading, file name) rows."""
    tokens = lexical_tokens([(index_text(text), index_text(heading), name) for _, text, heading, name in rows])
    return [(row[0], *tsvector_literal(columns)) for row, columns in zip(rows, tokens)]


def query_phrases(match: str) -> list[dict]:
    """The phrases of an FTS5 match expression of sbsearch.lexical (quoted phrases joined by OR, a
    phrase of one CJK character searched as a prefix), each with its FTS5 tokens and tsquery."""
    phrases = match_phrases(match)
    tokens = lexical_tokens([(p, None, None) for p, _ in phrases])
    return query_phrases_of_tokens([(toks, prefix) for (_, prefix), (toks, _, _) in zip(phrases, tokens)])


def query_phrases_of_tokens(phrases: list[tuple[list[str], bool]]) -> list[dict]:
    """Each phrase (its FTS5 tokens, the last a prefix or not) with its tsquery; none left empty."""
    out = []
    for toks, prefix in phrases:
        toks = [t for t in toks if len(t.encode()) <= MAX_LEXEME_BYTES]
        if toks:
            q = " <-> ".join(map(_lexeme, toks)) + (":*" if prefix else "")
            out.append({"i": len(out), "q": q, "toks": toks, "prefix": prefix})
    return out


class LexicalMixin:
    """Lexical search and its upkeep, over self.conn."""

    def has_lexical(self) -> bool:
        """False for an index whose lexical rows are of an older format (the next `sbsearch index`
        or `sbsearch check --repair` rebuilds them)."""
        return self.get_meta("lexical_format") == LEXICAL_FORMAT

    def lexical_search(self, match: str, limit: int, doc_filter: DocumentFilter | None = None,
                       allowed: np.ndarray | None = None) -> list[tuple[int, float]]:
        """(chunk id, BM25 score, higher is better) of the best `limit` chunks matching an FTS5
        expression of sbsearch.lexical, among the chunks of documents that pass the filter.
        allowed (the ids the filter allows) is not used: the statement joins the filter itself,
        and sending a large folder's ids with every search would cost more than it saves."""
        phrases = query_phrases(match)
        if not phrases:
            return []
        if doc_filter is None or (doc_filter.groups is None and not doc_filter.narrows):
            found = self._search_kept(phrases, limit)
            if found is not None:
                return found
        # BM25's statistics: those of the chunks the filter's reader may read (all chunks when it
        # names no reader), so that documents a reader cannot read never move their scores
        reader = DocumentFilter(groups=doc_filter.groups) if doc_filter is not None and doc_filter.groups is not None else None
        rows, length = self.lexical_collection(reader)
        n = max(float(rows), 1.0)
        mean_length = max(float(length), 1.0) / n
        singles = [p["toks"][0] for p in phrases if len(p["toks"]) == 1 and not p["prefix"]]
        df = self.token_row_counts(singles) if singles and reader is None else {}
        scope, scope_params = filter_sql(reader)
        for p in phrases:
            if reader is None and len(p["toks"]) == 1 and not p["prefix"]:
                hits = df.get(p["toks"][0], 0)
            elif reader is None:  # a phrase of several tokens, or a prefix: the rows that hold it
                hits = self._value("SELECT count(*) FROM lexical WHERE tsv @@ %s::tsquery", [p["q"]])
            else:
                hits = self._value("SELECT count(*) FROM lexical l JOIN chunks c ON c.id = l.chunk_id JOIN documents d "
                                   f"ON d.id = c.doc_id WHERE l.tsv @@ %s::tsquery AND {scope}", [p["q"], *scope_params])
            p["idf"] = max(math.log((n - hits + 0.5) / (hits + 0.5)), 1e-6)
        sql, params = bm25_statement(phrases, self._has_postings, *filter_sql(doc_filter))
        return [(int(r["chunk_id"]), float(r["r"])) for r in self._rows(sql + _RANK, [*params, mean_length, limit])]

    # ---------------------------------------------------------------- postings kept in memory
    def _search_kept(self, phrases: list[dict], limit: int) -> list[tuple[int, float]] | None:
        """The search over the whole table from the postings kept in memory (store.postings), or
        None while a phrase is not kept (asking counts: a phrase asked for twice is read in). The
        arithmetic is FTS5's, as the SQL's, which adds the same terms in its own order: the scores
        agree to ~1e-12 (tests/test_pg_store.py), the order with them."""
        keyed = [(tuple(p["toks"]), p["prefix"]) for p in phrases]
        meta = self._lexical_meta()  # one round trip: at ~0.3 ms each, they are most of such a search
        state = meta["generation"], meta["access_version"], meta["lexical_version"]
        if not self._kept.answerable_from_memory(keyed, state):
            return None
        occurrences = [self._kept.occurrences(tokens, prefix, state) for tokens, prefix in keyed]
        collection = Collection(meta["lexical_rows"], meta["lexical_length"])
        return self._kept.rank_whole_table(occurrences, collection, None, limit)

    @cached_property
    def _kept(self) -> KeptPhrases:
        return KeptPhrases(lambda: self._index_identity, self._phrase_occurrences)

    @cached_property
    def _index_identity(self) -> tuple | None:
        """(the server and database as named, the database's oid, the index's random id): what tells
        two indexes apart in the process's postings cache, a database made anew at the same name
        included. None (an index no writer has named yet): nothing is kept."""
        index_id = self.get_meta("index_id")
        if not index_id:
            return None
        return self.path, self._value("SELECT oid FROM pg_database WHERE datname = current_database()"), index_id

    def _lexical_meta(self) -> dict[str, int]:
        """The state of the index and the whole table's BM25 statistics, in one statement."""
        meta = {r["key"]: int(r["value"]) for r in self._rows(
            "SELECT key, value FROM meta WHERE key = ANY(%s)", [list(_LEXICAL_META)])}
        return {key: meta.get(key, 0) for key in _LEXICAL_META}

    @property
    def _lexical_state(self) -> tuple[int, int, int]:
        """(generation, access version, lexical version)."""
        meta = self._lexical_meta()
        return meta["generation"], meta["access_version"], meta["lexical_version"]

    def _phrase_occurrences(self, tokens: tuple[str, ...], prefix: bool) -> Occurrences:
        """Where a phrase occurs over the whole table, with each row's length."""
        phrase = next(iter(query_phrases_of_tokens([(list(tokens), prefix)])), None)
        if phrase is None:
            empty = np.zeros(0, dtype=np.int64)
            return Occurrences(empty, np.zeros(0), empty)
        sql, params = bm25_statement([{**phrase, "idf": 0.0}], self._has_postings)
        rows = self._rows(sql + _OCCURRENCES, params)
        return Occurrences(np.fromiter((r["chunk_id"] for r in rows), dtype=np.int64, count=len(rows)),
                           np.fromiter((r["tf"] for r in rows), dtype=np.float64, count=len(rows)),
                           np.fromiter((r["ntok"] for r in rows), dtype=np.int64, count=len(rows)))

    @cached_property
    def _has_postings(self) -> bool:
        """Whether lexical_postings is kept (every index made or upgraded since it exists; an older
        one gets it from the next writer: PgStore.upgrade_schema). Asked once: once kept, it is
        kept by every writer after."""
        return self.get_meta("lexical_postings") == "1"

    def _post_lexical(self, chunk_ids: list[int]) -> None:
        """These chunks' lexical rows (just written) into lexical_postings, as one batch."""
        if chunk_ids:
            self.conn.execute(_POST_SQL, [min(chunk_ids), chunk_ids])

    def _unpost_lexical(self, chunk_ids: list[int]) -> None:
        """These chunks (their lexical rows not yet deleted) out of lexical_postings."""
        if chunk_ids:
            self.conn.execute(_UNPOST_SQL, {"ids": chunk_ids})
            self.conn.execute("DELETE FROM lexical_postings WHERE cardinality(chunk_ids) = 0")

    def _add_postings(self, batch: int = 20000) -> bool:
        """Give an index made before lexical_postings existed its postings, from its tsvectors, in
        one transaction (no model run, no text read again); False when it has them already."""
        with self.atomic():
            self.conn.execute("SELECT pg_advisory_xact_lock(%s)", [WRITER_LOCK_KEY + 1])
            if self.get_meta("lexical_postings") == "1":
                return False
            self.conn.execute("DROP TABLE IF EXISTS lexical_postings")
            self.conn.execute(POSTINGS_TABLE_SQL)
            last = -1
            while True:
                ids = [r["chunk_id"] for r in self._rows(
                    "SELECT chunk_id FROM lexical WHERE chunk_id > %s ORDER BY chunk_id LIMIT %s", [last, batch])]
                if not ids:
                    break
                self._post_lexical(ids)
                last = ids[-1]
            self.set_meta("lexical_postings", "1")
        self.__dict__.pop("_has_postings", None)
        return True

    def _name_index(self) -> None:
        """Give the index its random id (meta `index_id`) if it has none: what the postings cache
        keys on besides the database's name and oid."""
        if not self.get_meta("index_id"):
            self.set_meta("index_id", secrets.token_hex(16))

    def lexical_collection(self, reader: DocumentFilter | None) -> tuple[int, int]:
        """(lexical rows, their tokens together) of the chunks a reader may read (reader: a filter
        of groups alone; None: every chunk), kept per generation and group set."""
        if reader is None:
            stats = {r["key"]: int(r["value"]) for r in self._rows(
                "SELECT key, value FROM meta WHERE key IN ('lexical_rows', 'lexical_length')")}
            return stats.get("lexical_rows", 0), stats.get("lexical_length", 0)
        cache = self.__dict__.setdefault("_collections", {})
        key = (self.state, tuple(sorted(set(reader.groups))))
        if key not in cache:
            if len(cache) >= 32:
                cache.clear()
            where, params = filter_sql(reader)
            row = self._rows("SELECT count(*) AS n, coalesce(sum(l.ntok), 0) AS total FROM lexical l JOIN chunks c "
                             f"ON c.id = l.chunk_id JOIN documents d ON d.id = c.doc_id WHERE {where}", params)[0]
            cache[key] = (int(row["n"]), int(row["total"]))
        return cache[key]

    def token_row_counts(self, tokens: Iterable[str], reader: DocumentFilter | None = None) -> dict[str, int]:
        """How many chunks hold each index token (its document frequency, kept in lexical_df): the
        same FTS5 tokens as the SQLite store's. reader: only the chunks a reader may read
        (a filter of groups alone), counted through the GIN index."""
        if reader is None:
            return {r["lexeme"]: r["ndoc"] for r in self._rows(
                "SELECT lexeme, ndoc FROM lexical_df WHERE lexeme = ANY(%s)", [list(set(tokens))])}
        where, params = filter_sql(reader)
        return {token: self._value("SELECT count(*) FROM lexical l JOIN chunks c ON c.id = l.chunk_id JOIN documents d "
                                   f"ON d.id = c.doc_id WHERE l.tsv @@ %s::tsquery AND {where}", [_lexeme(token), *params])
                for token in set(tokens)}

    def _count_lexical(self, chunk_ids: list[int], sign: int) -> None:
        """Add (sign 1) or take away (-1, before they are deleted) these chunks' lexical rows in the
        BM25 statistics: document frequencies, rows, total length."""
        self.conn.execute(
            "INSERT INTO lexical_df (lexeme, ndoc) SELECT u.lexeme, %s * count(*) FROM lexical l, unnest(l.tsv) u "
            "WHERE l.chunk_id = ANY(%s) GROUP BY u.lexeme "
            "ON CONFLICT (lexeme) DO UPDATE SET ndoc = lexical_df.ndoc + EXCLUDED.ndoc", [sign, chunk_ids])
        if sign < 0:
            self.conn.execute("DELETE FROM lexical_df WHERE ndoc <= 0")
        if self._has_postings:
            (self._post_lexical if sign > 0 else self._unpost_lexical)(chunk_ids)
        row = self.conn.execute("SELECT count(*) AS n, coalesce(sum(ntok), 0) AS total FROM lexical "
                                "WHERE chunk_id = ANY(%s)", [chunk_ids]).fetchone()
        self.set_meta("lexical_rows", str(int(self.get_meta("lexical_rows", "0")) + sign * row["n"]))
        self.set_meta("lexical_length", str(int(self.get_meta("lexical_length", "0")) + sign * int(row["total"])))

    def lexical_summary(self) -> dict | None:
        postings = "+ pg_total_relation_size('lexical_postings')" if self._has_postings else ""
        return {"rows": self._value("SELECT count(*) FROM lexical"),
                "size_bytes": self._value(f"SELECT pg_total_relation_size('lexical') {postings}"),
                "engine": "PostgreSQL full text"}

    def lexical_problems(self) -> list[str]:
        if not self.has_lexical():
            return ["the lexical index is of an older format (made by an older sbsearch)"]
        missing = self._value("SELECT count(*) FROM chunks WHERE id NOT IN (SELECT chunk_id FROM lexical)")
        extra = self._value("SELECT count(*) FROM lexical WHERE chunk_id NOT IN (SELECT id FROM chunks)")
        problems = lexical_disagreements(missing, extra)
        if self._has_postings and self._value(
                "SELECT (SELECT coalesce(sum(cardinality(chunk_ids)), 0) FROM lexical_postings) "
                "<> (SELECT coalesce(sum(ndoc), 0) FROM lexical_df)"):
            # both are counted from the same tsvectors in the same transactions
            problems.append("the lexical postings disagree with the lexical rows")
        return problems

    def rebuild_lexical(self, batch: int = 2000) -> int:
        """Write the lexical index anew from the chunks, in one transaction; returns its rows."""
        added, last = 0, -1
        with self.atomic(), self.conn.cursor() as cur:
            self.conn.execute("ALTER TABLE lexical ADD COLUMN IF NOT EXISTS ntok INTEGER NOT NULL DEFAULT 0")
            self.conn.execute("DELETE FROM lexical")
            self.conn.execute("DELETE FROM lexical_df")
            if self._has_postings:
                self.conn.execute("DELETE FROM lexical_postings")
            self.set_meta("lexical_rows", "0")
            self.set_meta("lexical_length", "0")
            # what searchers keep of the old rows is old, though no generation is published
            self.set_meta("lexical_version", str(int(self.get_meta("lexical_version", "0")) + 1))
            while True:
                rows = self._rows("SELECT c.id, c.text, c.heading, d.path, d.root FROM chunks c JOIN documents d "
                                  "ON d.id = c.doc_id WHERE c.id > %s ORDER BY c.id LIMIT %s", [last, batch])
                if not rows:
                    self.set_meta("lexical_format", LEXICAL_FORMAT)
                    return added
                cur.executemany("INSERT INTO lexical (chunk_id, tsv, ntok) VALUES (%s, %s::tsvector, %s)",
                                lexical_rows([(r["id"], r["text"], r["heading"], lexical_name(r["path"], r["root"]))
                                              for r in rows]))
                self._count_lexical([r["id"] for r in rows], 1)
                added += len(rows)
                last = rows[-1]["id"]
