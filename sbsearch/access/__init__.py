"""Who may read what: access rules resolved per document (rules.py), and the hashing of passwords
and API tokens (secrets.py). Users, tokens and each document's groups are stored by
sbsearch.index.store; the web face checks them on every request."""

from __future__ import annotations

from .rules import EVERYONE, AccessRules

__all__ = ["EVERYONE", "AccessRules"]
