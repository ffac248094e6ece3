"""Text for the lexical index, and user queries as safe FTS5 match expressions.

SQLite's FTS5 `unicode61` tokenizer splits on spaces and punctuation, which suits English, codes
("E-4012" becomes the tokens e, 4012, found again by the phrase "e 4012") and names. Japanese and
Chinese have no spaces: a whole line of Japanese would be one token, never matched. So runs of CJK
characters are written into the index as overlapping character bigrams ("通勤手当" → "通勤 勤手
手当"), the standard way of indexing CJK without a dictionary; a query's CJK words become phrases of
bigrams too, so "通勤手当" matches exactly that sequence wherever it occurs. (Each bigram a term of
its own, as CJK bigram analysers query, raised words alone on JSQuAD 0.914 → 0.926 but lowered
hybrid on JSQuAD and on sample_docs' Japanese paraphrases at every fusion weight of
benchmarks/fusion.py, and left none at or above both sides on all its six sets.)

Everything a user types is quoted before it reaches FTS5: AND, OR, NEAR, *, :, ( ) and quotes in a
query are text to look for, never syntax.
"""

from __future__ import annotations

import functools
import re
import threading
import unicodedata
from dataclasses import dataclass

# Hiragana, katakana (with the prolonged sound mark), CJK ideographs (+ extension A and
# compatibility), half-width katakana, Hangul syllables.
CJK_LETTERS = "\u3040-\u309f\u30a0-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff66-\uff9f\uac00-\ud7af"
CJK_RUN = re.compile(f"[{CJK_LETTERS}]+")
_HIRAGANA_RUN = re.compile("[\u3040-\u309f]+")
# A word, or a code made of words joined by - . / _ ' (E-4012, HX-220L, v2.3.1, o'neil).
WORD = re.compile(r"[^\W_]+(?:[-./_'][^\W_]+)*")

STOPWORDS = frozenset("""
a about above after again all am an and any are as at be because been before being below between
both but by can could did do does doing down during each few for from further had has have having he
her here hers him his how i if in into is it its itself just me more most my myself no nor not now of
off on once only or other our ours out over own same she should so some such than that the their
them then there these they this those through to too under until up very was we were what when where
which while who whom why will with would you your yours
""".split())


def normalize(text: str) -> str:
    """NFKC: full-width Latin letters and digits (Ｅ－４０１２) and half-width katakana become the
    forms people type, in the index and in queries alike."""
    return unicodedata.normalize("NFKC", text)


def _bigrams(run: str) -> str:
    if len(run) == 1:
        return run
    return " ".join(run[i:i + 2] for i in range(len(run) - 1))


def index_text(text: str | None) -> str:
    """What the lexical index stores for a piece of text: the text itself, CJK runs as bigrams."""
    if not text:
        return ""
    text = normalize(text)
    return CJK_RUN.sub(lambda m: f" {_bigrams(m.group())} ", text) if CJK_RUN.search(text) else text


def name_text(relpath: str) -> str:
    """A document's path as words ("intranet/expenseflow-how-to.html" → "intranet expenseflow how to
    html"), so that a file's name is found by the words in it."""
    return index_text(re.sub(r"[-_./\\]+", " ", relpath))


def _cjk_words(run: str) -> list[str]:
    """The content words of a CJK run of a query: its kanji, katakana and Hangul stretches.
    Hiragana stretches are mostly particles and inflections (が, を, ですか) and are dropped,
    unless the run has nothing else."""
    parts = [p for p in _HIRAGANA_RUN.split(run) if p]
    return parts or [run]


@dataclass(frozen=True)
class Term:
    """One thing a query looks for: `fts` is its quoted FTS5 form, `text` the words to highlight;
    `word`: a single plain word, one index token (codes and CJK words are phrases of several);
    `stop`: a stop word, which ranks but is neither highlighted nor a query on its own."""

    text: str
    fts: str
    word: bool = False
    stop: bool = False

    @property
    def token(self) -> str | None:
        """The index token of a plain word: its Porter stem, as FTS5 stores it (computed only when
        asked: loading the stemmer costs ~50 ms of a cold query that may never need it)."""
        return stem(self.text) if self.word else None


_stemmers = threading.local()


@functools.lru_cache(maxsize=1 << 16)
def stem(word: str) -> str:
    """The Porter stem FTS5's `porter` tokenizer stores for a lower-case word (the same algorithm,
    from the snowball project's implementation). One stemmer per thread: a stemmer keeps the word it
    is working on in itself, and two server threads sharing one corrupted each other's words
    (IndexError, a 500, seen under load by benchmarks/serve.py). Kept per word: the Python stemmer
    takes ~45 us a word, and a question's five words were a few percent of a lexical search."""
    stemmer = getattr(_stemmers, "porter", None)
    if stemmer is None:
        import snowballstemmer

        stemmer = _stemmers.porter = snowballstemmer.stemmer("porter")
    return stemmer.stemWord(word)


def _quote(s: str) -> str:
    return '"' + s.replace('"', '""') + '"'


def query_terms(query: str) -> list[Term]:
    """The searchable terms of a user's query, in order, without duplicates. Stop words follow the
    other terms, flagged: BM25 gives them little weight, but among short texts that share the
    query's content words they still tell which text says what the query says (STS-B's
    paraphrases: words alone 0.843 → 0.891 nDCG@10 with them, benchmarks/fusion.py). A query of
    stop words alone has no terms: "the" is not something to look for."""
    query = normalize(query)
    terms: dict[str, Term] = {}
    stops: dict[str, Term] = {}
    pos = 0
    for m in CJK_RUN.finditer(query):
        _latin_terms(query[pos:m.start()], terms, stops)
        for word in _cjk_words(m.group()):
            fts = _quote(_bigrams(word)) + ("*" if len(word) == 1 else "")
            terms.setdefault(word, Term(word, fts))
        pos = m.end()
    _latin_terms(query[pos:], terms, stops)
    if not terms:
        return []
    return list(terms.values()) + [t for w, t in stops.items() if w not in terms]


def _latin_terms(text: str, terms: dict[str, Term], stops: dict[str, Term]) -> None:
    for m in WORD.finditer(text):
        word = m.group().lower()
        if word in STOPWORDS:
            stops.setdefault(word, Term(word, _quote(word), word.isalnum(), stop=True))
        elif len(word) >= 2 or word.isdigit():
            terms.setdefault(word, Term(word, _quote(word), word.isalnum()))


_LETTER = re.compile(r"[^\W\d_]")
_DIGIT = re.compile(r"\d")


def is_identifier(term: Term) -> bool:
    """A code rather than a word: letters and digits together (E-4012, HX-220L, FIN-203, v2.3).
    Codes are exact: the documents that contain one are what a query naming it looks for."""
    return bool(_LETTER.search(term.text) and _DIGIT.search(term.text) and WORD.fullmatch(term.text))


def mostly_cjk(text: str) -> bool:
    """At least half of the letters of text are CJK (a Japanese or Chinese question)."""
    letters = [ch for ch in text if ch.isalnum()]
    return bool(letters) and sum(1 for ch in letters if CJK_RUN.match(ch)) * 2 >= len(letters)


def match_expression(terms: list[Term]) -> str:
    """Any of the terms (BM25 ranks documents with more, and rarer, terms first)."""
    return " OR ".join(t.fts for t in terms)
