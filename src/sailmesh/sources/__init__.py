"""Manifest sources: which files a `-f` argument names, read into (name, text) pairs.

Standard library only, so that `sailctl apply` can read its input and send it to the
running daemon without importing the resource models (see `sailmesh.sources.reading`).
"""

from sailmesh.sources.reading import (
    MANIFEST_SUFFIXES,
    MAX_REQUEST_BYTES,
    Source,
    read_sources,
)

__all__ = ["MANIFEST_SUFFIXES", "MAX_REQUEST_BYTES", "Source", "read_sources"]
