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

from variant_etl.core.sharding import Shard
from variant_etl.plan import ParquetOptions

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
    """Buffers a bundle's batches of one shard and writes them as sorted files."""

    def __init__(self, shard: Shard, options: ParquetOptions, temp_dir: str):
        self._shard = shard
        self._options = options
        self._temp_dir = temp_dir

    def start_bundle(self):
        self._batches: list[pa.RecordBatch] = []
        self._rows = 0

    def process(self, batch: pa.RecordBatch):
        self._batches.append(batch)
        self._rows += batch.num_rows
        if self._rows >= self._options.rows_per_file:
            yield self._flush()

    def finish_bundle(self):
        if self._rows:
            yield GlobalWindows.windowed_value(self._flush())

    def _flush(self) -> tuple[str, str, dict]:
        table = sorted_table(self._batches)
        self._batches, self._rows = [], 0
        path = FileSystems.join(self._temp_dir, self._shard.suffix, f"{uuid.uuid4().hex}.parquet")
        write_parquet(table, path, self._options)
        starts = table.column("start_position")
        info = {
            "temp_path": path,
            "rows": table.num_rows,
            "min_reference_name": table.column("reference_name")[0].as_py(),
            "min_start_position": pc.min(starts).as_py(),
            "max_start_position": pc.max(starts).as_py(),
        }
        return ("file", self._shard.suffix, info)


class WriteShardToParquet(beam.PTransform):
    """Batches of one shard -> temporary Parquet files; yields one stats tuple per file."""

    def __init__(self, shard: Shard, options: ParquetOptions, temp_dir: str):
        super().__init__()
        self._fn = _WriteShardFilesFn(shard, options, temp_dir)

    def expand(self, batches):
        return batches | "WriteFiles" >> beam.ParDo(self._fn)
