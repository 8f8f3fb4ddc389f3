"""ExplodeCalls: variant batches -> one row per call (the sample-lookup layout)."""

from __future__ import annotations

import apache_beam as beam

from variant_etl.core.sample_lookup import explode_calls
from variant_etl.core.schema import without_record_counts
from variant_etl.transforms.coders import VariantBatch


def _explode(element: VariantBatch):
    variants, _ = without_record_counts(element.batch)
    for calls in explode_calls(variants).to_batches():
        if calls.num_rows:
            yield element.with_batch(calls)


class ExplodeCalls(beam.PTransform):
    """VariantBatch of variants -> VariantBatch of calls (same key and shard)."""

    def expand(self, batches):
        return batches | "Explode" >> beam.FlatMap(_explode).with_output_types(VariantBatch)
