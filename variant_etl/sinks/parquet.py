"""WriteShardToParquet: one directory of sorted, zstd Parquet files per shard.

Files are first written under ``<out>/_temporary/<run_id>/`` and only moved into
``<out>/<table_name_suffix>/`` by the commit step, once every count adds up.
"""

from __future__ import annotations

import uuid

import apache_beam as beam
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from apache_beam.io.filesystems import FileSystems
from apache_beam.transforms.window import GlobalWindows

from variant_etl.core.sample_lookup import calls_per_row, explode_calls, sorted_by_sample
from variant_etl.core.schema import SAMPLE_ID, without_record_counts
from variant_etl.core.sharding import Shard
from variant_etl.plan import ParquetOptions
from variant_etl.transforms.batches import is_end_of_key

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


def write_parquet(table: pa.Table, path: str, options: ParquetOptions) -> None:
    compression = None if options.compression == "none" else options.compression
    with FileSystems.create(path) as sink:
        pq.write_table(
            table,
            sink,
            compression=compression,
            row_group_size=options.row_group_rows,
            write_statistics=True,
        )


class _WriteShardFilesFn(beam.DoFn):
    """Writes each file key's rows (a read split, or a merge bucket) as sorted files.

    A key's batches all arrive in one bundle, in order, so which rows share a file
    depends on the data only, never on bundling: the same inputs give the same files.
    """

    def __init__(self, shard: Shard, options: ParquetOptions, temp_dir: str):
        self._shard = shard
        self._options = options
        self._temp_dir = temp_dir

    def start_bundle(self):
        self._pending: dict[str, _Pending] = {}

    def process(self, element: tuple[str, pa.RecordBatch]):
        key, batch = element
        if is_end_of_key(batch):
            if self._pending.get(key) is not None and self._pending[key].rows:
                yield self._flush(key, self._pending[key])
            return
        # A key's batches come from one input element, one after another: when another key
        # starts, the others are complete. Writing them now bounds memory to about one key.
        for other in sorted(k for k, p in self._pending.items() if k != key and p.rows):
            yield self._flush(other, self._pending[other])
        pending = self._pending.setdefault(key, _Pending())
        pending.add(batch, self._rows_of(batch))
        if pending.rows >= self._options.rows_per_file or pending.nbytes >= MAX_BYTES_PER_FILE:
            yield self._flush(key, pending)

    def finish_bundle(self):
        for key in sorted(self._pending):
            if self._pending[key].rows:
                yield GlobalWindows.windowed_value(self._flush(key, self._pending[key]))
        self._pending = {}

    def _rows_of(self, batch: pa.RecordBatch) -> int:
        """Output rows of a batch (what --parquet_rows_per_file counts)."""
        return batch.num_rows

    def _flush(self, key: str, pending: _Pending) -> tuple[str, str, dict]:
        table = sorted_table(pending.batches)
        table, records = without_record_counts(table)
        chunk = pending.take_chunk()
        path = FileSystems.join(self._temp_dir, self._shard.suffix, f"{uuid.uuid4().hex}.parquet")
        write_parquet(table, path, self._options)
        return ("file", self._shard.suffix, _file_info(path, key, chunk, table, records, table))


class _Pending:
    """Batches of one file key waiting to be written."""

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


class WriteShardToParquet(beam.PTransform):
    """(file key, batch) of one shard -> temporary Parquet files; one stats tuple per file."""

    def __init__(self, shard: Shard, options: ParquetOptions, temp_dir: str):
        super().__init__()
        self._fn = _WriteShardFilesFn(shard, options, temp_dir)

    def expand(self, batches):
        return batches | "WriteFiles" >> beam.ParDo(self._fn)


class _WriteLookupFilesFn(_WriteShardFilesFn):
    """The same files as the variant output (one set per file key), one row per call, sorted
    by sample_id first: a per-sample query reads about one row group per file."""

    def _rows_of(self, batch: pa.RecordBatch) -> int:
        return int(calls_per_row(batch).sum())

    def process(self, element: tuple[str, pa.RecordBatch]):
        _, batch = element
        if not is_end_of_key(batch) and self._rows_of(batch) == 0:
            return  # variants without calls (sites-only inputs) give no row
        yield from super().process(element)

    def _flush(self, key: str, pending: _Pending) -> tuple[str, str, dict]:
        variants, records = without_record_counts(sorted_table(pending.batches))
        chunk = pending.take_chunk()
        table = sorted_by_sample(explode_calls(variants))
        path = FileSystems.join(self._temp_dir, self._shard.suffix, f"{uuid.uuid4().hex}.parquet")
        write_parquet(table, path, self._options)
        info = _file_info(path, key, chunk, table, records, variants)
        sample_ids = table.column(SAMPLE_ID)
        info.update(min_sample_id=pc.min(sample_ids).as_py(), max_sample_id=pc.max(sample_ids).as_py())
        return ("lookup_file", self._shard.suffix, info)


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


class WriteShardToSampleLookup(beam.PTransform):
    """(file key, batch) of one shard -> temporary sample-lookup Parquet files (one row per
    call); one stats tuple per file."""

    def __init__(self, shard: Shard, options: ParquetOptions, temp_dir: str):
        super().__init__()
        self._fn = _WriteLookupFilesFn(shard, options, temp_dir)

    def expand(self, batches):
        return batches | "WriteFiles" >> beam.ParDo(self._fn)
