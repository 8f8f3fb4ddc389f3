"""Files through Beam's FileSystems: local paths, gs:// and every other scheme Beam knows, the
same on the driver and on workers. The core takes ``open_binary`` as an argument and never
imports Beam."""

from __future__ import annotations

from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems


def open_binary(path: str):
    """Opens any path Beam knows (local, gs://, ...) without decompressing it."""
    return FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED)
