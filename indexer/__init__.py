"""Regard's indexer: IIIF reading, fetching, the indexing pipeline and the collection store."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("regard")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0"
