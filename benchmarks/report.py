"""Shared by the benchmark scripts: print a result section and append it to docs/BENCHMARKS.md."""

from __future__ import annotations

from pathlib import Path

BENCHMARKS_MD = Path(__file__).resolve().parents[1] / "docs" / "BENCHMARKS.md"


def publish(text: str, write: bool = True) -> None:
    print(text)
    if write:
        with open(BENCHMARKS_MD, "a") as f:
            f.write("\n" + text.rstrip("\n") + "\n")
