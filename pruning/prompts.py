"""The prompts a model puts before what it encodes: E5's "query: " / "passage: ". Training and
evaluation read them from here so that a model is trained and measured as it reads."""

from __future__ import annotations


def prompt_of(model, role: str) -> str:
    """The text a model puts before a query ("query") or a document ("document"); "" for models
    trained without prompts (MiniLM, mpnet), which encode the same either way."""
    return (getattr(model, "prompts", None) or {}).get(role) or ""
