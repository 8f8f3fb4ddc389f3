"""ExplodeCalls: a shard's variant batches -> one row per call (the sample-lookup layout)."""

from __future__ import annotations

import apache_beam as beam
import pyarrow as pa

from variant_etl.core.sample_lookup import explode_calls
from variant_etl.core.schema import without_record_counts
from variant_etl.transforms.batches import KeyedBatch, is_end_of_key


def _explode(element: tuple[str, pa.RecordBatch]):
    key, batch = element
    if is_end_of_key(batch):
        yield element
        return
    variants, _ = without_record_counts(batch)
    for calls in explode_calls(variants).to_batches():
        if calls.num_rows:
            yield key, calls


class ExplodeCalls(beam.PTransform):
    """(file key, variant batch) -> (file key, call batch); END_OF_KEY passes through."""

    def expand(self, batches):
        return batches | "Explode" >> beam.FlatMap(_explode).with_output_types(KeyedBatch)
