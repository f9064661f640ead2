"""The indexer's errors: each says what was wrong and what to do about it."""


class IndexerError(Exception):
    """Base of the errors the indexer reports to a person (CLI: one line, non-zero exit)."""


class SchemaError(IndexerError):
    """A store this Regard cannot open: written by a newer one, or needing what this
    Python's SQLite lacks."""


class SourceError(IndexerError):
    """A source (manifest, collection, folder) could not be read: names the source and why."""

    def __init__(self, source: str, problem: str):
        self.source = source
        self.problem = problem
        super().__init__(f"{source}: {problem}")


class NotIIIFError(SourceError):
    """The document was read but is not a IIIF manifest or collection we understand."""
