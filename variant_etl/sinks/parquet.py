"""WriteParquetFiles: each shard's rows as sorted, zstd Parquet files, and the sample-lookup
copy (one row per call, sorted by sample_id).

Files are first written under ``<out>/_temporary/<run_id>/<table_name_suffix>/`` and only
moved into ``<out>/<table_name_suffix>/`` by the commit step (sinks/commit.py), once every
count adds up.
"""

from __future__ import annotations

import os
import uuid

import apache_beam as beam
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from apache_beam.io.filesystems import FileSystems
from apache_beam.transforms.window import GlobalWindows

from variant_etl.core.batch import VariantBatch, require_variant_batch
from variant_etl.core.errors import OutputError
from variant_etl.core.options import ParquetOptions
from variant_etl.core.sample_lookup import calls_per_row, explode_calls, sorted_by_sample
from variant_etl.core.schema import SAMPLE_ID, without_record_counts
from variant_etl.core.stats import Kind, Stat

MAX_BYTES_PER_FILE = 256 * 2**20  # in memory (Arrow) before a file is cut
SORT_KEYS = [("reference_name", "ascending"), ("start_position", "ascending"), ("end_position", "ascending")]


def sorted_table(batches: list[pa.RecordBatch]) -> pa.Table:
    """One table, sorted by position, so row groups have tight min/max statistics."""
    table = pa.Table.from_batches(batches)
    if _is_sorted(table):
        return table
    return table.sort_by(SORT_KEYS)


def _is_sorted(table: pa.Table) -> bool:
    """True for one contig in position order (the usual case: sorted input, one shard)."""
    if table.num_rows < 2:
        return True
    names = table.column("reference_name")
    if pc.count_distinct(names).as_py() != 1:
        return False
    starts = table.column("start_position").to_numpy()
    ends = table.column("end_position").to_numpy()
    step = np.diff(starts)
    return bool(np.all((step > 0) | ((step == 0) & (np.diff(ends) >= 0))))


# Positions grow along a file: delta-encoded they take a few bits a row, where a dictionary of
# distinct positions does not help. Floats are byte-stream-split (their bytes of each rank
# together), which zstd compresses better than a dictionary of mostly distinct values. The rest
# is dictionary-encoded where that pays (pyarrow falls back to plain where it does not).
_DELTA = {"start_position": "DELTA_BINARY_PACKED", "end_position": "DELTA_BINARY_PACKED"}


def _leaf_paths(name: str, data_type: pa.DataType):
    """(Parquet column, Arrow type) of each leaf of an Arrow field ('call.list.element.DP'):
    what use_dictionary and column_encoding name."""
    if pa.types.is_list(data_type) or pa.types.is_large_list(data_type):
        yield from _leaf_paths(f"{name}.list.element", data_type.value_type)
    elif pa.types.is_struct(data_type):
        for child in data_type:
            yield from _leaf_paths(f"{name}.{child.name}", child.type)
    else:
        yield name, data_type


# zstd's own default level; pyarrow's is 1. Measured on the benchmark outputs: 100k x 100 samples
# 66.3 -> 57.9 MB, 10k x 2,500 141.8 -> 124.0 MB, for 1-20% more writing time (level 6: 54.4 and
# 116.8 MB, 35-50% more). Strings are the exception: level 1 writes them as small (chr1 of 4M
# sites: CSQ 6,156 KB at 1, 6,182 KB at 3; rsIDs 391 against 423 KB) in less time (the sites'
# files 11% faster); the integers of the calls are where 3 pays (PL 1,818 against 2,377 KB).
ZSTD_LEVEL = 3
ZSTD_STRING_LEVEL = 1


def _column_settings(schema: pa.Schema) -> tuple[dict[str, str], list[str], dict[str, int]]:
    """Of each leaf column: (column -> its encoding, the columns dictionary-encoded, column ->
    its zstd level)."""
    encodings, dictionary, levels = {}, [], {}
    for field in schema:
        for path, data_type in _leaf_paths(field.name, field.type):
            if path in _DELTA:
                encodings[path] = _DELTA[path]
            elif pa.types.is_floating(data_type):
                encodings[path] = "BYTE_STREAM_SPLIT"
            else:
                dictionary.append(path)
            text = pa.types.is_string(data_type) or pa.types.is_binary(data_type)
            levels[path] = ZSTD_STRING_LEVEL if text else ZSTD_LEVEL
    return encodings, dictionary, levels


def write_parquet(table: pa.Table, path: str, options: ParquetOptions) -> None:
    compression = None if options.compression == "none" else options.compression
    encodings, dictionary, levels = _column_settings(table.schema)

    def write(sink) -> None:
        pq.write_table(
            table,
            sink,
            compression=compression,
            compression_level=levels if compression == "zstd" else None,
            row_group_size=options.row_group_rows,
            write_statistics=True,
            use_dictionary=dictionary,
            column_encoding=encodings or None,
        )

    if "://" in path:
        with FileSystems.create(path) as sink:
            write(sink)
    else:  # Arrow's own file: the whole write without the GIL (Beam's is a Python object)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        write(path)


def check_element(
    element: VariantBatch, expected: pa.Schema | None, shards: frozenset[str], where: str
) -> None:
    """What a writer accepts: a VariantBatch routed to one of the config's shards, with the
    columns (names and types) of the stages before the writer (files of one output with
    different schemas cannot be read as one table)."""
    require_variant_batch(element, where)
    if element.shard not in shards:
        what = "has no shard" if element.shard is None else f"is routed to shard {element.shard!r}"
        raise OutputError(
            f"{where}: a batch of key {element.key!r} {what}, which the sharding config does not have "
            f"(its shards: {', '.join(sorted(shards))}). Hint: keep the shard ShardVariants sets."
        )
    if expected is None:
        return
    got = element.batch.schema
    names = [name for name in got.names if not name.startswith("_")]  # hidden: _records, _origin
    if names == expected.names and all(got.field(n).type == expected.field(n).type for n in names):
        return
    missing = [n for n in expected.names if n not in names]
    extra = [n for n in names if n not in expected.names]
    retyped = [
        f"{n} ({got.field(n).type} instead of {expected.field(n).type})"
        for n in names
        if n in expected.names and got.field(n).type != expected.field(n).type
    ]
    found = "; ".join(
        part
        for part in (
            f"missing {', '.join(missing)}" if missing else "",
            f"unexpected {', '.join(extra)}" if extra else "",
            f"retyped {', '.join(retyped)}" if retyped else "",
            "" if missing or extra or retyped else "columns in another order",
        )
        if part
    )
    raise OutputError(
        f"{where}: a batch of key {element.key!r} does not have the output schema ({found}). Hint: a "
        "transform between the stages must keep the columns; pass schema= to the writer for another one."
    )


class _Pending:
    """Batches of one (shard, file key) waiting to be written."""

    def __init__(self):
        self.batches: list[pa.RecordBatch] = []
        self.rows = 0
        self.nbytes = 0
        self.chunks = 0

    def add(self, batch: pa.RecordBatch, rows: int) -> None:
        self.batches.append(batch)
        self.rows += rows
        self.nbytes += batch.nbytes

    def take_chunk(self) -> int:
        chunk = self.chunks
        self.chunks += 1
        self.batches, self.rows, self.nbytes = [], 0, 0
        return chunk


class _WriteFilesFn(beam.DoFn):
    """Writes each (shard, file key)'s rows as sorted files under ``temp_dir/<shard>/``.

    A key's batches come one after another (from one read split or merge bucket): when a batch
    of another key arrives, the keys before it are complete and are written, so memory holds
    about one key. Which rows share a file then depends on the data only, never on bundling:
    the same inputs give the same files.
    """

    def __init__(
        self,
        options: ParquetOptions,
        temp_dir: str,
        schema: pa.Schema | None,
        shards: frozenset[str],
        where: str,
    ):
        self._options = options
        self._temp_dir = temp_dir
        self._schema = schema
        self._shards = shards
        self._where = where

    def start_bundle(self):
        self._pending: dict[tuple[str, str], _Pending] = {}
        self._key: str | None = None

    def process(self, element: VariantBatch):
        check_element(element, self._schema, self._shards, self._where)
        if element.key != self._key:
            yield from self._flush_all()
            self._key = element.key
        rows = self._rows_of(element.batch)
        if rows == 0:
            return
        pending = self._pending.setdefault((element.shard, element.key), _Pending())
        pending.add(element.batch, rows)
        if pending.rows >= self._options.rows_per_file or pending.nbytes >= MAX_BYTES_PER_FILE:
            yield self._flush(element.shard, element.key, pending)

    def finish_bundle(self):
        for stat in self._flush_all():
            yield GlobalWindows.windowed_value(stat)
        self._pending = {}

    def _flush_all(self):
        # (the emptied _Pending objects stay: a key seen again numbers its chunks on)
        for (shard, key), pending in sorted(self._pending.items()):
            if pending.rows:
                yield self._flush(shard, key, pending)

    def _rows_of(self, batch: pa.RecordBatch) -> int:
        """Output rows of a batch (what --parquet_rows_per_file counts)."""
        return batch.num_rows

    def _path(self, shard: str) -> str:
        return FileSystems.join(self._temp_dir, shard, f"{uuid.uuid4().hex}.parquet")

    def _flush(self, shard: str, key: str, pending: _Pending) -> Stat:
        table = sorted_table(pending.batches)
        table, records = without_record_counts(table)
        chunk = pending.take_chunk()
        path = self._path(shard)
        write_parquet(table, path, self._options)
        return Stat(Kind.FILE, shard, _file_info(path, key, chunk, table, records, table))


class _WriteLookupFilesFn(_WriteFilesFn):
    """The same files as the variant output (one set per file key), one row per call, sorted
    by sample_id first: a per-sample query reads about one row group per file."""

    def _rows_of(self, batch: pa.RecordBatch) -> int:
        return int(calls_per_row(batch).sum())  # variants without calls give no row

    def _flush(self, shard: str, key: str, pending: _Pending) -> Stat:
        variants, records = without_record_counts(sorted_table(pending.batches))
        chunk = pending.take_chunk()
        table = sorted_by_sample(explode_calls(variants))
        path = self._path(shard)
        write_parquet(table, path, self._options)
        info = _file_info(path, key, chunk, table, records, variants)
        sample_ids = table.column(SAMPLE_ID)
        info.update(min_sample_id=pc.min(sample_ids).as_py(), max_sample_id=pc.max(sample_ids).as_py())
        return Stat(Kind.LOOKUP_FILE, shard, info)


def _file_info(path: str, key: str, chunk, written: pa.Table, records: int, variants: pa.Table) -> dict:
    """What the commit step learns of a temp file: where, its key and chunk, rows written, input
    records, and the position range of the ``variants`` it holds."""
    starts = variants.column("start_position")
    return {
        "temp_path": path,
        "key": key,
        "chunk": chunk,
        "rows": written.num_rows,
        "records": records,
        "min_reference_name": variants.column("reference_name")[0].as_py(),
        "min_start_position": pc.min(starts).as_py(),
        "max_start_position": pc.max(starts).as_py(),
    }


class WriteParquetFiles(beam.PTransform):
    """Sharded VariantBatches -> temporary Parquet files; one Stat per file.

    With ``sample_lookup``, the files of the sample-lookup layout (one row per call)."""

    def __init__(
        self,
        options: ParquetOptions,
        temp_dir: str,
        *,
        shards: frozenset[str],
        schema: pa.Schema | None = None,
        sample_lookup: bool = False,
    ):
        super().__init__()
        where = "WriteToParquet" + (" (sample lookup)" if sample_lookup else "")
        fn_class = _WriteLookupFilesFn if sample_lookup else _WriteFilesFn
        self._fn = fn_class(options, temp_dir, schema, shards, where)

    def expand(self, batches):
        return batches | "WriteFiles" >> beam.ParDo(self._fn)
