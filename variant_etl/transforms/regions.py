"""ReadMergedRegions: indexed inputs, read and merged one genomic window at a time."""

from __future__ import annotations

import dataclasses

import apache_beam as beam
import pyarrow as pa
from apache_beam import pvalue

from variant_etl.core import merge
from variant_etl.core.options import MergeOptions, ReadOptions
from variant_etl.core.progress import ProgressOptions, ProgressWriter
from variant_etl.core.reader import Malformed
from variant_etl.core.regions import OpenFiles, RegionSplit, read_region
from variant_etl.core.schema import VariantSchema
from variant_etl.core.stats import Kind, Stat
from variant_etl.transforms.coders import VariantBatch
from variant_etl.transforms.read import COUNTS, MALFORMED


class _ReadMergedRegionFn(beam.DoFn):
    def __init__(
        self,
        schema: VariantSchema,
        options: ReadOptions,
        merging: MergeOptions,
        ranked: list[int],
        progress: ProgressOptions | None,
    ):
        self._schema = schema
        self._options = options
        self._merging = merging
        self._ranked = ranked
        self._progress = progress

    def setup(self):
        self._order = merge.SampleOrder(self._ranked)
        self._open_files = OpenFiles()

    def teardown(self):
        self._open_files.close()

    def process(self, split: RegionSplit):
        gvcf = self._merging.strategy == merge.MERGE_WITH_NON_VARIANTS
        counts: dict[str, int] = {}
        malformed: dict[str, int] = {}
        tables = []
        progress = ProgressWriter(self._progress, split.key, [f.path for f in split.files])
        for item in read_region(
            split,
            self._schema,
            one_based=self._options.one_based,
            allow_malformed=self._options.allow_malformed_records,
            keep_overlapping=gvcf,
            counts=counts,
            open_files=self._open_files,
        ):
            if isinstance(item, Malformed):
                malformed[item.file] = malformed.get(item.file, 0) + 1
                yield pvalue.TaggedOutput(MALFORMED, dataclasses.asdict(item))
            else:
                tables.append(item)
                progress.add(item.num_rows)
        progress.done(sum(counts.values()))
        for path, number in sorted(counts.items()):
            yield pvalue.TaggedOutput(COUNTS, Stat(Kind.READ, path, number))
            # the merge keeps the count of its records in each row (_records)
            yield pvalue.TaggedOutput(COUNTS, Stat(Kind.PARSED, path, number - malformed.get(path, 0)))
        if not tables:
            return
        table = pa.concat_tables(tables)
        if gvcf:
            merged = merge.merge_buckets_with_non_variants(
                table, (split.start, split.end), self._merging.bucket_size, self._order
            )
        else:
            merged = merge.move_to_calls(table, self._order)
        for batch in merged.to_batches(max_chunksize=self._options.batch_rows):
            yield VariantBatch(batch, split.key)


class ReadMergedRegions(beam.PTransform):
    """RegionSplits -> VariantBatch (merged rows, keyed by window), dead letters ('malformed'),
    counts ('counts')."""

    def __init__(
        self,
        schema: VariantSchema,
        options: ReadOptions,
        merging: MergeOptions,
        ranked: list[int],
        *,
        progress: ProgressOptions | None = None,
    ):
        super().__init__()
        self._fn = _ReadMergedRegionFn(schema, options, merging, ranked, progress)

    def expand(self, splits):
        return (
            splits
            | "Distribute" >> beam.Reshuffle()
            | "ReadAndMerge"
            >> beam.ParDo(self._fn)
            .with_output_types(VariantBatch)
            .with_outputs(MALFORMED, COUNTS, main="batches")
        )
