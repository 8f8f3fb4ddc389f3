"""OmitEmptyCalls and MoveHomRefs: --omit_empty_sample_calls and --move_hom_ref_calls
(core/calls.py) applied to each batch."""

from __future__ import annotations

import apache_beam as beam

from variant_etl.core.calls import move_hom_ref_calls, omit_empty_calls
from variant_etl.transforms.coders import VariantBatch


class OmitEmptyCalls(beam.PTransform):
    """VariantBatch -> the same rows, without the calls that say nothing (no allele known, no
    FORMAT value), as gcp-variant-transforms' --omit_empty_sample_calls."""

    def expand(self, batches):
        return batches | "OmitEmptyCalls" >> beam.Map(
            lambda element: element.with_batch(omit_empty_calls(element.batch))
        ).with_output_types(VariantBatch)


class MoveHomRefs(beam.PTransform):
    """VariantBatch -> the same rows, their 0/0 calls moved from ``call`` to ``hom_ref_call``
    (sample ids only), as gcp-variant-transforms' --move_hom_ref_calls."""

    def expand(self, batches):
        return batches | "MoveHomRefs" >> beam.Map(
            lambda element: element.with_batch(move_hom_ref_calls(element.batch))
        ).with_output_types(VariantBatch)
