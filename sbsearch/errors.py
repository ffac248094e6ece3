"""User-facing errors: the CLI prints these as one line and exits non-zero."""


class SbsearchError(Exception):
    """Something the user can fix (bad path, missing model, wrong index). Never a bug."""


class IngestError(SbsearchError):
    """A single file could not be read; the indexer records it and goes on."""
