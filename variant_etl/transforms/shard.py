"""ShardVariants: route each batch's rows to their shard's output."""

from __future__ import annotations

import apache_beam as beam
import numpy as np
import pyarrow as pa
from apache_beam import pvalue

from variant_etl.core.sample_lookup import calls_per_row
from variant_etl.core.schema import RECORDS
from variant_etl.core.sharding import DROPPED, ShardingConfig, ShardLookup
from variant_etl.transforms.batches import KeyedBatch, is_end_of_key

COUNTS = "counts"


def shard_tag(index: int) -> str:
    return f"shard_{index}"


class _ShardBatchFn(beam.DoFn):
    def __init__(self, config: ShardingConfig, one_based: bool, count_calls: bool):
        self._config = config
        self._one_based = one_based
        self._count_calls = count_calls

    def setup(self):
        self._lookup = ShardLookup(self._config)
        self._tags = [shard_tag(s.index) for s in self._config.shards]
        self._suffixes = {s.index: s.suffix for s in self._config.shards}

    def process(self, element: tuple[str, pa.RecordBatch]):
        key, batch = element
        if is_end_of_key(batch):
            for tag in self._tags:
                yield pvalue.TaggedOutput(tag, element)
            return
        starts = batch.column("start_position").to_numpy()
        if self._one_based:
            starts = starts - 1  # regions are matched on 0-based starts
        shard_of = self._lookup.lookup(batch.column("reference_name"), starts)
        calls = calls_per_row(batch) if self._count_calls else None
        for index in np.unique(shard_of):
            rows = np.flatnonzero(shard_of == index)
            if index == DROPPED:
                yield pvalue.TaggedOutput(COUNTS, ("dropped", "", _records(batch, rows)))
                continue
            yield pvalue.TaggedOutput(COUNTS, ("routed", self._suffixes[int(index)], _records(batch, rows)))
            if calls is not None:  # the rows of the sample-lookup output
                routed_calls = int(calls[rows].sum())
                yield pvalue.TaggedOutput(COUNTS, ("routed_calls", self._suffixes[int(index)], routed_calls))
            if len(rows) == batch.num_rows:
                yield pvalue.TaggedOutput(shard_tag(int(index)), (key, batch))
            elif rows[-1] - rows[0] + 1 == len(rows):  # contiguous, as in sorted input: no copy
                yield pvalue.TaggedOutput(shard_tag(int(index)), (key, batch.slice(int(rows[0]), len(rows))))
            else:
                yield pvalue.TaggedOutput(shard_tag(int(index)), (key, batch.take(pa.array(rows))))


def _records(batch: pa.RecordBatch, rows: np.ndarray) -> int:
    """Input records in these rows (a merged row holds several)."""
    if RECORDS in batch.schema.names:
        return int(batch.column(RECORDS).to_numpy()[rows].sum())
    return len(rows)


class ShardVariants(beam.PTransform):
    """(file key, batch) -> one PCollection of (file key, batch) per shard (tag shard_<i>),
    plus 'counts': the records routed to each shard, and those no shard takes (and with
    ``count_calls``, the calls routed to each shard)."""

    def __init__(self, config: ShardingConfig, *, one_based: bool = False, count_calls: bool = False):
        super().__init__()
        self._config = config
        self._one_based = one_based
        self._count_calls = count_calls

    def expand(self, batches):
        tags = [shard_tag(s.index) for s in self._config.shards]
        fn = beam.ParDo(_ShardBatchFn(self._config, self._one_based, self._count_calls))
        fn = fn.with_output_types(KeyedBatch, **dict.fromkeys(tags, KeyedBatch))
        return batches | "ShardBatch" >> fn.with_outputs(COUNTS, *tags)
