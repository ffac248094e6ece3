"""The PostgreSQL store (pgvector), one module per concern; PgStore puts them together."""

from .schema import display_url
from .store import PgStore

__all__ = ["PgStore", "display_url"]
