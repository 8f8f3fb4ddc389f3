"""ReadSplits: read splits -> VariantBatches, plus dead-letter and count outputs (the public
ReadVcf in variant_etl/api.py plans the splits and applies this)."""

from __future__ import annotations

import dataclasses

import apache_beam as beam
import pyarrow as pa
from apache_beam import pvalue

from variant_etl.core.options import ReadOptions
from variant_etl.core.progress import ProgressOptions, ProgressWriter
from variant_etl.core.reader import Malformed, ReadResult, read_split
from variant_etl.core.schema import VariantSchema
from variant_etl.core.splits import ReadSplit
from variant_etl.core.stats import Kind, Stat
from variant_etl.filesystems import open_binary
from variant_etl.transforms.coders import VariantBatch

MALFORMED = "malformed"
COUNTS = "counts"


class _ReadSplitFn(beam.DoFn):
    def __init__(
        self, schema: VariantSchema, options: ReadOptions, with_origin: bool, progress: ProgressOptions | None
    ):
        self._schema = schema
        self._options = options
        self._with_origin = with_origin
        self._progress = progress

    def process(self, element):
        _, group = element  # (group number, its splits)
        splits = sorted(group, key=lambda split: (split.file_index, split.part))
        key = split_key(splits[0])  # the group's rows share output files
        pending: list[pa.RecordBatch] = []  # small files' batches, joined up to batch_rows
        rows = 0
        for split in splits:
            for item in self._read(split):
                if not isinstance(item, pa.RecordBatch):
                    yield item  # a dead letter or a count
                    continue
                if item.nbytes >= JOIN_BELOW_BYTES:  # large already: joining would only copy it
                    if pending:
                        yield VariantBatch(_joined(pending), key)
                        pending, rows = [], 0
                    yield VariantBatch(item, key)
                    continue
                pending.append(item)
                rows += item.num_rows
                if rows >= self._options.batch_rows:
                    yield VariantBatch(_joined(pending), key)
                    pending, rows = [], 0
        if pending:
            yield VariantBatch(_joined(pending), key)

    def _read(self, split: ReadSplit):
        result = ReadResult()
        parsed = 0  # records that became rows
        progress = ProgressWriter(self._progress, split_key(split), [split.path])
        for item in read_split(
            split.path,
            self._schema,
            one_based=self._options.one_based,
            allow_malformed=self._options.allow_malformed_records,
            cast_values=self._options.cast_values,
            batch_rows=self._options.batch_rows,
            result=result,
            open_binary=open_binary,
            extra_header_lines=split.extra_header_lines,
            sample_ids=split.sample_ids,
            file_index=split.file_index if self._with_origin else None,
            byte_range=split.byte_range,
            record_base=split.part << RECORD_BITS_PER_PART,
        ):
            if isinstance(item, Malformed):
                progress.add(1)
                yield pvalue.TaggedOutput(MALFORMED, dataclasses.asdict(item))
            else:
                parsed += item.num_rows
                progress.add(item.num_rows)
                yield item
        progress.done(result.records_read)
        yield pvalue.TaggedOutput(COUNTS, Stat(Kind.READ, split.path, result.records_read))
        yield pvalue.TaggedOutput(COUNTS, Stat(Kind.PARSED, split.path, parsed))
        if result.records_matched:
            yield pvalue.TaggedOutput(COUNTS, Stat(Kind.MATCHED, split.path, result.records_matched))
        if result.records_cast:
            yield pvalue.TaggedOutput(COUNTS, Stat(Kind.CAST, split.path, result.records_cast))


# Batches of small files are joined up to batch_rows, so that 1,000 small files make a few
# elements. A batch of a 4 MB text chunk (core/reader.py) is large enough as it is: joining
# those of wide files (64 rows of 2,500 samples each) copied every call again (9% of a run).
JOIN_BELOW_BYTES = 4 << 20


def _joined(batches: list[pa.RecordBatch]) -> pa.RecordBatch:
    return batches[0] if len(batches) == 1 else pa.concat_batches(batches)


RECORD_BITS_PER_PART = 28  # record numbers of part k of a file start at k << 28


def split_key(split: ReadSplit) -> str:
    """Names the output files made from this split's rows (deterministic, unlike bundles)."""
    return f"s{split.file_index:07d}-{split.part:05d}"


class ReadSplits(beam.PTransform):
    """Splits -> VariantBatch (main), dead-letter dicts ('malformed'), counts ('counts': Stat).

    The splits of one group are read one after another, in file order, and their rows go to
    the first split's key; counts and dead letters stay per input file.

    With ``with_origin`` (merging) each batch has a hidden ``_origin`` column. With
    ``progress``, each split reports the records it has read (core/progress.py).
    """

    def __init__(
        self,
        schema: VariantSchema,
        options: ReadOptions,
        *,
        with_origin: bool = False,
        progress: ProgressOptions | None = None,
    ):
        super().__init__()
        self._schema = schema
        self._options = options
        self._with_origin = with_origin
        self._progress = progress

    def expand(self, splits):
        return (
            splits
            | "KeyByGroup" >> beam.Map(lambda split: (split.group, split))
            | "GroupSmallFiles" >> beam.GroupByKey()  # also spreads the groups over workers
            | "ReadSplit"
            >> beam.ParDo(_ReadSplitFn(self._schema, self._options, self._with_origin, self._progress))
            .with_output_types(VariantBatch)
            .with_outputs(MALFORMED, COUNTS, main="batches")
        )
