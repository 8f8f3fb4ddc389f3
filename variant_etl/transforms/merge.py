"""MergeVariants: rows of many files -> merged rows, by bounded genomic buckets."""

from __future__ import annotations

import typing

import apache_beam as beam
import pyarrow as pa

from variant_etl.core import merge
from variant_etl.core.options import MergeOptions
from variant_etl.transforms.coders import VariantBatch


def merge_key(key: tuple[str, int]) -> str:
    """Names the output files of one bucket."""
    reference_name, bucket = key
    return f"m{bucket:09d}:{reference_name}"


class _MergeBucketFn(beam.DoFn):
    def __init__(self, options: MergeOptions, ranked_sample_ids: list[int]):
        self._options = options
        self._ranked_sample_ids = ranked_sample_ids

    def setup(self):
        self._order = merge.SampleOrder(self._ranked_sample_ids)

    def process(self, element):
        key, pieces = element
        table = pa.Table.from_batches(list(pieces))
        if self._options.strategy == merge.MOVE_TO_CALLS:
            merged = merge.move_to_calls(table, self._order)
        else:
            size = self._options.bucket_size
            merged = merge.merge_with_non_variants(table, (key[1] * size, (key[1] + 1) * size), self._order)
        for batch in merged.to_batches():
            yield VariantBatch(batch, merge_key(key))


class MergeBuckets(beam.PTransform):
    """VariantBatch with _origin -> VariantBatch of merged rows, keyed by bucket.

    Rows are grouped by (reference_name, start // bucket_size): a group never holds more
    than one bucket of the genome, however many files there are of it.
    """

    def __init__(self, options: MergeOptions, ranked_sample_ids: list[int]):
        super().__init__()
        self._options = options
        self._ranked_sample_ids = ranked_sample_ids

    def expand(self, keyed_batches):
        spanning = self._options.strategy == merge.MERGE_WITH_NON_VARIANTS
        size = self._options.bucket_size
        return (
            keyed_batches
            | "KeyByBucket"
            >> beam.FlatMap(
                lambda element: merge.bucket_pieces(element.batch, size, spanning=spanning)
            ).with_output_types(
                typing.Tuple[typing.Tuple[str, int], pa.RecordBatch]  # noqa: UP006
            )
            | "GroupByBucket" >> beam.GroupByKey()
            | "MergeBucket"
            >> beam.ParDo(_MergeBucketFn(self._options, self._ranked_sample_ids)).with_output_types(
                VariantBatch
            )
        )
