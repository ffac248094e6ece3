"""Split Documents into Chunks: structure first (FAQ pair, page, heading), then token budget.

Chunks are model-independent within an index: the token budget is counted with one tokenizer
(the index's chunking tokenizer) so that every model of a comparison embeds the same chunks.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable

from .document import Document

SECTION_GAP = "\n\n"  # how sections are joined into the document text that spans refer to


@dataclass
class Chunk:
    text: str
    page: int | None
    heading: str | None
    start: int  # character span in the document text (sections joined by SECTION_GAP)
    end: int
    location: str | None = None  # "slide 7", "sheet Prices", "mail" (Section.location)

    def embedding_text(self) -> str:
        return embedding_text(self.text, self.heading)


def embedding_text(text: str, heading: str | None) -> str:
    """What the model sees: the heading gives a short passage its context."""
    return f"{heading}\n{text}" if heading and heading not in text else text


TokenCounter = Callable[[str], int]


def word_counter(text: str) -> int:
    """Fallback counter (no tokenizer): ~1.3 word pieces per word for English prose."""
    return int(len(text.split()) * 1.3) + 1


def tokenizer_counter(tokenizer_json: str) -> TokenCounter:
    """Count word pieces with a model's fast tokenizer (tokenizers only: no torch import)."""
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(tokenizer_json)
    tok.no_truncation()
    tok.no_padding()

    def count(text: str) -> int:
        return len(tok.encode(text, add_special_tokens=False).ids)

    return count


_PARA = re.compile(r"\n\s*\n")
_SENTENCE = re.compile(r"(?<=[.!?。！？])\s+|(?<=[。！？])|\n")


def _units(text: str, base: int, max_tokens: int, count: TokenCounter) -> list[tuple[int, int, int]]:
    """Cut a section into (start, end, tokens) units no larger than max_tokens:
    paragraphs, then sentences/lines, then word windows."""
    out: list[tuple[int, int, int]] = []

    def spans(pattern: re.Pattern, s: int, e: int):
        pos = s
        for m in pattern.finditer(text, s, e):
            if m.start() > pos:
                yield pos, m.start()
            pos = m.end()
        if pos < e:
            yield pos, e

    def add(s: int, e: int, level: int):
        # trim whitespace so spans point at text
        while s < e and text[s].isspace():
            s += 1
        while e > s and text[e - 1].isspace():
            e -= 1
        if s >= e:
            return
        n = count(text[s:e])
        if n <= max_tokens:
            out.append((base + s, base + e, n))
        elif level == 0:
            for a, b in spans(_SENTENCE, s, e):
                add(a, b, 1)
        else:
            _word_windows(s, e)

    def _word_windows(s: int, e: int):
        # Word pieces never cross whitespace, so a window's cost is the sum of its words' costs:
        # one count per word instead of one per growing window (which was quadratic).
        words = [(s + m.start(), s + m.end()) for m in re.finditer(r"\S+", text[s:e])]
        costs = [count(text[a:b]) for a, b in words]
        i = 0
        while i < len(words):
            a, b = words[i]
            if costs[i] > max_tokens:
                # one "word" longer than the budget (CJK text has no spaces): cut by characters
                step = max(1, (b - a) * max_tokens // costs[i])
                for c in range(a, b, step):
                    out.append((base + c, base + min(b, c + step), count(text[c:min(b, c + step)])))
                i += 1
                continue
            j, used = i, 0
            while j < len(words) and used + costs[j] <= max_tokens:
                used += costs[j]
                j += 1
            out.append((base + words[i][0], base + words[j - 1][1], used))
            i = j

    for a, b in spans(_PARA, 0, len(text)):
        add(a, b, 0)
    return out


def chunk_document(
    doc: Document,
    max_tokens: int = 200,
    overlap_tokens: int = 40,
    count: TokenCounter = word_counter,
) -> list[Chunk]:
    """Pack each section's units greedily into chunks of at most max_tokens (heading included),
    carrying about overlap_tokens of trailing units into the next chunk of the same section."""
    chunks: list[Chunk] = []
    full_text = SECTION_GAP.join(s.text for s in doc.sections)
    offset = 0
    for section in doc.sections:
        heading_cost = count(section.heading) + 1 if section.heading else 0
        budget = max(16, max_tokens - heading_cost)
        units = _units(section.text, offset, budget, count)
        i = 0
        while i < len(units):
            j, used = i, 0
            while j < len(units) and used + units[j][2] <= budget:
                used += units[j][2]
                j += 1
            j = max(j, i + 1)
            start, end = units[i][0], units[j - 1][1]
            chunks.append(Chunk(full_text[start:end], section.page, section.heading, start, end, section.location))
            if j >= len(units):
                break
            # step back over trailing units worth ~overlap_tokens, but always move forward
            k, carried = j, 0
            while k - 1 > i and carried + units[k - 1][2] <= overlap_tokens:
                k -= 1
                carried += units[k][2]
            i = k
        offset += len(section.text) + len(SECTION_GAP)
    return chunks
