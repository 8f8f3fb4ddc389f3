"""RouteToShards: each batch's rows to their shard (VariantBatch.shard), with the counts."""

from __future__ import annotations

import apache_beam as beam
import numpy as np
import pyarrow as pa
from apache_beam import pvalue
from apache_beam.transforms.window import GlobalWindows

from variant_etl.core import qc
from variant_etl.core.batch import require_variant_batch
from variant_etl.core.sample_lookup import calls_per_row
from variant_etl.core.schema import RECORDS
from variant_etl.core.sharding import DROPPED, ShardingConfig, ShardLookup
from variant_etl.core.stats import Kind, Stat
from variant_etl.transforms.coders import VariantBatch

COUNTS = "counts"


class _ShardBatchFn(beam.DoFn):
    def __init__(self, config: ShardingConfig, one_based: bool, count_calls: bool, qc_samples: int | None):
        self._config = config
        self._one_based = one_based
        self._count_calls = count_calls
        self._qc_samples = qc_samples

    def setup(self):
        self._lookup = ShardLookup(self._config)
        self._suffixes = {s.index: s.suffix for s in self._config.shards}

    def start_bundle(self):
        self._qc: dict[str, dict] = {}  # per shard: the QC counts of this bundle's rows

    def finish_bundle(self):
        # one QC stat per shard and bundle, not per batch: a batch's per-sample counts are as
        # large as the batch's own counts (2,500 samples x 11 numbers) and cost more to ship
        for suffix, counts in self._qc.items():
            yield pvalue.TaggedOutput(COUNTS, GlobalWindows.windowed_value(Stat(Kind.QC, suffix, counts)))

    def process(self, element: VariantBatch):
        batch = require_variant_batch(element, "ShardVariants").batch
        starts = batch.column("start_position").to_numpy()
        if self._one_based:
            starts = starts - 1  # regions are matched on 0-based starts
        shard_of = self._lookup.lookup(batch.column("reference_name"), starts)
        calls = calls_per_row(batch) if self._count_calls else None
        for index in np.unique(shard_of):
            rows = np.flatnonzero(shard_of == index)
            if index == DROPPED:
                yield pvalue.TaggedOutput(COUNTS, Stat(Kind.DROPPED, "", _records(batch, rows)))
                continue
            suffix = self._suffixes[int(index)]
            yield pvalue.TaggedOutput(COUNTS, Stat(Kind.ROUTED, suffix, _records(batch, rows)))
            if calls is not None:  # the rows of the sample-lookup output
                yield pvalue.TaggedOutput(COUNTS, Stat(Kind.ROUTED_CALLS, suffix, int(calls[rows].sum())))
            if len(rows) == batch.num_rows:
                routed = batch
            elif rows[-1] - rows[0] + 1 == len(rows):  # contiguous, as in sorted input: no copy
                routed = batch.slice(int(rows[0]), len(rows))
            else:
                routed = batch.take(pa.array(rows))
            if self._qc_samples is not None:
                self._qc[suffix] = qc.add(self._qc.get(suffix, {}), qc.count_batch(routed, self._qc_samples))
            yield VariantBatch(routed, element.key, suffix)


def _records(batch: pa.RecordBatch, rows: np.ndarray) -> int:
    """Input records in these rows (a merged row holds several)."""
    if RECORDS in batch.schema.names:
        return int(batch.column(RECORDS).to_numpy()[rows].sum())
    return len(rows)


class RouteToShards(beam.PTransform):
    """VariantBatch -> VariantBatch with its shard set (one per shard its rows go to), plus
    'counts': the records routed to each shard, and those no shard takes (and with
    ``count_calls``, the calls routed to each shard; with ``qc_samples``, the run's sample
    count, the QC figures of each shard's rows: core/qc.py)."""

    def __init__(
        self,
        config: ShardingConfig,
        *,
        one_based: bool = False,
        count_calls: bool = False,
        qc_samples: int | None = None,
    ):
        super().__init__()
        self._config = config
        self._one_based = one_based
        self._count_calls = count_calls
        self._qc_samples = qc_samples

    def expand(self, batches):
        fn = beam.ParDo(_ShardBatchFn(self._config, self._one_based, self._count_calls, self._qc_samples))
        return batches | "ShardBatch" >> fn.with_output_types(VariantBatch).with_outputs(
            COUNTS, main="batches"
        )
