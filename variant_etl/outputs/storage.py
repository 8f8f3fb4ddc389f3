"""Where ``export``, ``query`` and ``report`` read an output from: a local directory, or a
gs:// one through pyarrow's own Cloud Storage client (never Beam's: these commands start in
well under a second). Credentials are Google's defaults (``gcloud auth application-default
login``, a service account on GCE); with STORAGE_EMULATOR_HOST set (gcp-storage-emulator, the
tests) the emulator is used, anonymously."""

from __future__ import annotations

import functools
import os
from collections.abc import Sequence
from urllib.parse import urlparse

from variant_etl.core.errors import OutputError

GCS = "gs://"


def is_remote(path: str) -> bool:
    return "://" in path


def _filesystem(path: str):
    """(pyarrow file system, the path as it names it)."""
    import pyarrow.fs

    if path.startswith(GCS):
        return _gcs(os.environ.get("STORAGE_EMULATOR_HOST", "")), path[len(GCS) :]
    if is_remote(path):
        raise OutputError(f"{path}: only local paths and gs:// outputs can be read back here")
    return pyarrow.fs.LocalFileSystem(), os.path.abspath(path)


@functools.lru_cache(maxsize=4)
def _gcs(emulator: str):
    import pyarrow.fs

    if not emulator:
        return pyarrow.fs.GcsFileSystem()
    url = urlparse(emulator if "://" in emulator else f"http://{emulator}")
    return pyarrow.fs.GcsFileSystem(anonymous=True, endpoint_override=url.netloc, scheme=url.scheme)


def read_text(path: str) -> str:
    """The file's text; FileNotFoundError when there is none."""
    filesystem, name = _filesystem(path)
    try:
        with filesystem.open_input_stream(name) as f:
            return f.read().decode("utf-8")
    except FileNotFoundError:
        raise
    except OSError as err:
        if "not found" in str(err).lower() or "no such file" in str(err).lower():
            raise FileNotFoundError(path) from None
        raise


def write_text(path: str, text: str) -> None:
    filesystem, name = _filesystem(path)
    with filesystem.open_output_stream(name) as f:
        f.write(text.encode("utf-8"))


def open_output(path: str):
    """A new file (local or gs://) to write, its directory made when local."""
    filesystem, name = _filesystem(path)
    if not is_remote(path):
        os.makedirs(os.path.dirname(name), exist_ok=True)
    return filesystem.open_output_stream(name)


def open_input(path: str):
    filesystem, name = _filesystem(path)
    return filesystem.open_input_stream(name)


def delete_dir(path: str) -> None:
    """The directory and what it holds, if it exists."""
    filesystem, name = _filesystem(path)
    try:
        filesystem.delete_dir(name)
    except FileNotFoundError:
        pass


def read_table(path: str):
    """A Parquet file as a pyarrow table."""
    import pyarrow.parquet as pq

    filesystem, name = _filesystem(path)
    return pq.read_table(name, filesystem=filesystem)


def parquet_file(path: str):
    """A Parquet file, opened for reading (its metadata read)."""
    import pyarrow.parquet as pq

    filesystem, name = _filesystem(path)
    return pq.ParquetFile(filesystem.open_input_file(name))


def read_schema(path: str):
    import pyarrow.parquet as pq

    filesystem, name = _filesystem(path)
    return pq.read_schema(name, filesystem=filesystem)


def shard_scan(connection, files: Sequence[str], *, numbered: bool = False) -> tuple[str, list]:
    """The FROM clause that reads the Parquet ``files`` on the DuckDB ``connection``, and its
    parameters. DuckDB's own reader, in the order of ``files``, skipping row groups by their
    statistics; gs:// files through pyarrow's client, registered with DuckDB as a file system.
    ``numbered``: with the columns ``filename`` and ``file_row_number``."""
    if any(f.startswith(GCS) for f in files) and not connection.filesystem_is_registered("gs"):
        connection.register_filesystem(_duckdb_gcs(os.environ.get("STORAGE_EMULATOR_HOST", "")))
    if numbered:
        return "read_parquet(?, filename = true, file_row_number = true)", [list(files)]
    return "read_parquet(?)", [list(files)]


@functools.lru_cache(maxsize=4)
def _duckdb_gcs(emulator: str):
    from fsspec.implementations.arrow import ArrowFSWrapper

    class Gcs(ArrowFSWrapper):
        protocol = ("gs",)  # the paths DuckDB hands to it

    return Gcs(_gcs(emulator))


def shown(path: str) -> str:
    """The path as the user should read it: absolute when local."""
    return path if is_remote(path) else os.path.abspath(path)


def local_target(path: str, option: str) -> None:
    """Refuses a remote path for a file these commands write with a local writer."""
    if is_remote(path):
        raise OutputError(
            f"{option} {path}: must be a local path (outputs can be read from gs://, not written there). "
            "Hint: write it locally, then copy it (gcloud storage cp)."
        )
