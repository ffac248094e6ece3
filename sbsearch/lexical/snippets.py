"""The passage of a result to show, with the query's words marked.

Works on any hit, lexical or vector: the window of the chunk with the most distinct query words
(a vector-only hit without any of them shows the chunk's opening). Highlights are character
offsets into the snippet, so each face marks them its own way (rich styles, <mark> in HTML).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .analysis import CJK_RUN, WORD, Term, normalize


@dataclass
class Snippet:
    text: str
    highlights: list[tuple[int, int]] = field(default_factory=list)


def _same_word(token: str, term: str) -> bool:
    """Equal, or the same stem as far as a reader can tell (policy / policies, rotate / rotation):
    the lexical index stems with Porter, and the highlight should agree with what it matched."""
    if token == term:
        return True
    if any(c.isdigit() for c in term):  # codes and numbers: E-4001 is not E-4012
        return False
    if len(term) < 4 or abs(len(token) - len(term)) > 3:
        return False
    common = 0
    for a, b in zip(token, term):
        if a != b:
            break
        common += 1
    return common >= max(4, len(term) - 2)


def match_spans(text: str, terms: list[Term]) -> list[tuple[int, int, str]]:
    """(start, end, term) of every occurrence of a query term in text, in order, not overlapping."""
    spans = []
    plain = [t.text for t in terms if not CJK_RUN.search(t.text)]
    others = [t.text for t in terms if CJK_RUN.search(t.text)]  # CJK words: no spaces around them
    if plain:
        for m in WORD.finditer(text):
            token = normalize(m.group()).lower()
            for term in plain:
                if _same_word(token, term):
                    spans.append((m.start(), m.end(), term))
                    break
    for word in others:
        start = text.find(word)
        while start >= 0:
            spans.append((start, start + len(word), word))
            start = text.find(word, start + len(word))
    spans.sort()
    out: list[tuple[int, int, str]] = []
    for s in spans:
        if not out or s[0] >= out[-1][1]:
            out.append(s)
    return out


def make_snippet(text: str, terms: list[Term], width: int = 240) -> Snippet:
    flat = " ".join(text.split())
    spans = match_spans(flat, terms)
    if len(flat) <= width:
        start, end = 0, len(flat)
    else:
        start = _best_window(flat, spans, width)
        end = min(len(flat), start + width)
        # whole words at both ends (CJK text has no spaces: then cut where the window falls)
        if start > 0:
            space = flat.find(" ", start, start + 20)
            start = space + 1 if space >= 0 else start
        if end < len(flat):
            space = flat.rfind(" ", end - 20, end)
            end = space if space > start else end
    prefix = "…" if start > 0 else ""
    suffix = "…" if end < len(flat) else ""
    shift = len(prefix) - start
    highlights = [(s + shift, e + shift) for s, e, _ in spans if s >= start and e <= end]
    return Snippet(prefix + flat[start:end] + suffix, highlights)


def _best_window(flat: str, spans: list[tuple[int, int, str]], width: int) -> int:
    """Start of the width-long window holding the most distinct terms (then the most matches),
    with its first match a little way in so the reader sees what comes before it."""
    best, best_key = 0, (0, 0)
    for i, (s, _, _) in enumerate(spans):
        start = max(0, min(s - width // 5, len(flat) - width))
        inside = [t for (a, b, t) in spans[i:] if b <= start + width]
        key = (len(set(inside)), len(inside))
        if key > best_key:
            best, best_key = start, key
    return best
