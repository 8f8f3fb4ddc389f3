"""Files through Beam's FileSystems: local paths, gs:// and every other scheme Beam knows, the
same on the driver and on workers. The core takes ``open_binary`` as an argument and never
imports Beam."""

from __future__ import annotations

import os

from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems


def anonymous_gcs_for_an_emulator() -> None:
    """With STORAGE_EMULATOR_HOST set (gcp-storage-emulator, tests), Beam's gs:// file system
    connects anonymously at once. Otherwise Beam first looks up Google credentials, retrying four
    times with backoff (about 30 s per process where there are none) and asking the metadata
    server at 169.254.169.254. Beam has no option for it: its credential cache (Beam 2.77) is
    marked as looked up, with no credentials, which is what it does itself when none are found."""
    if not os.environ.get("STORAGE_EMULATOR_HOST"):
        return
    try:
        from apache_beam.internal.gcp import auth
    except ImportError:  # Beam without its gcp extra: no gs:// at all
        return
    credentials = getattr(auth, "_Credentials", None)
    if credentials is not None and hasattr(credentials, "_credentials_init"):
        with credentials._credentials_lock:
            credentials._credentials, credentials._credentials_init = None, True


anonymous_gcs_for_an_emulator()  # workers: at import; the CLI again when it starts


def open_binary(path: str):
    """Opens any path Beam knows (local, gs://, ...) without decompressing it."""
    return FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED)
