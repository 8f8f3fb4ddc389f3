"""OmitEmptyCalls: --omit_empty_sample_calls (core/calls.py) applied to each batch."""

from __future__ import annotations

import apache_beam as beam

from variant_etl.core.calls import omit_empty_calls
from variant_etl.transforms.coders import VariantBatch


class OmitEmptyCalls(beam.PTransform):
    """VariantBatch -> the same rows, without the calls that say nothing (no allele known, no
    FORMAT value), as gcp-variant-transforms' --omit_empty_sample_calls."""

    def expand(self, batches):
        return batches | "OmitEmptyCalls" >> beam.Map(
            lambda element: element.with_batch(omit_empty_calls(element.batch))
        ).with_output_types(VariantBatch)
