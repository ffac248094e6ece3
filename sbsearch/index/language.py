"""Which model a new index gets when none is named: chosen by the language of its documents.

Every packaged model but the e5 family reads English only. So the first run of a new index, when no
model is named (`-m`, $SBSEARCH_MODEL) and the index has none yet, reads a sample of the files it
found before anything is chunked or embedded (the chunk tokenizer is the model's):

  sample    up to SAMPLE_FILES files, spread evenly over the scanned list (folders sort together,
            so the first files alone could all come from one folder); at most SAMPLE_CHARS
            characters of each count, so that one long file does not decide alone
  measure   the share of CJK characters (kana, kanji, hangul) among the letters and digits read
  choose    from CJK_SHARE on: the multilingual model (config.MULTILINGUAL_MODEL, its int8 variant
            when that measured free on the Japanese sets), else today's default (default_model())

The sampled documents are kept and used by the same run: no file is read twice. The choice and its
reason ("chosen for Japanese documents (62% CJK)") are stored in the index meta (default_model,
model_reason), so later runs, `sbsearch status` and the query footer use and say them; an existing
index keeps its model, and `-m` always overrides.

Why 25%: Japanese business text is 80-95% CJK among its letters (codes, product names and URLs are
the rest), English text ~0%. A Japanese sentence says in about 2.5x fewer characters what an English
one says, so a folder whose documents are half Japanese, half English by content reads ~25% CJK;
from there on, an English-only model would answer a large part of the documents close to at random,
while the multilingual model still reads the English ones.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..lexical.analysis import CJK_RUN

SAMPLE_FILES = 24
SAMPLE_CHARS = 20_000
CJK_SHARE = 0.25
MODEL_REASON_META = "model_reason"

_KANA = ("\u3040", "\u30ff")
_HANGUL = ("\uac00", "\ud7af")


@dataclass
class LetterCount:
    """Letters and digits read, the CJK ones among them, and of those kana and hangul (the script
    that tells Japanese and Korean from Chinese)."""

    letters: int = 0
    cjk: int = 0
    kana: int = 0
    hangul: int = 0
    files: int = 0

    def add(self, text: str) -> None:
        for ch in text[:SAMPLE_CHARS]:
            if not ch.isalnum():
                continue
            self.letters += 1
            if CJK_RUN.match(ch):
                self.cjk += 1
                if _KANA[0] <= ch <= _KANA[1]:
                    self.kana += 1
                elif _HANGUL[0] <= ch <= _HANGUL[1]:
                    self.hangul += 1

    @property
    def share(self) -> float:
        return self.cjk / self.letters if self.letters else 0.0

    @property
    def language(self) -> str:
        """The CJK language most of the CJK letters are written in."""
        if self.kana * 10 >= self.cjk:  # Japanese mixes kana into kanji; Chinese has none
            return "Japanese"
        return "Korean" if self.hangul * 2 >= self.cjk else "Chinese"


@dataclass
class ModelChoice:
    model: str
    reason: str
    cjk_share: float | None = None


def sample_indices(n: int, k: int = SAMPLE_FILES) -> list[int]:
    """k positions spread evenly over n (all of them when n <= k)."""
    if n <= k:
        return list(range(n))
    return sorted({round(i * (n - 1) / (k - 1)) for i in range(k)})


def choose_model(count: LetterCount) -> ModelChoice:
    """The model for documents whose sample reads as `count`, and why."""
    from .. import config
    from ..embed.models import default_model

    pct = round(100 * count.share)
    if count.letters and count.share >= CJK_SHARE:
        what = f"{count.language} documents" if count.share >= 0.5 else f"mixed {count.language} and other documents"
        return ModelChoice(default_model(config.MULTILINGUAL_MODEL),
                           f"chosen for {what} ({pct}% CJK in {count.files} files read)", count.share)
    if not count.letters:
        return ModelChoice(default_model(), "the default (no text read to tell the language)", 0.0)
    return ModelChoice(default_model(), f"the default ({pct}% CJK in {count.files} files read, "
                                        f"under {round(100 * CJK_SHARE)}%)", count.share)
