"""ReadVcf: read splits -> Arrow RecordBatches, plus dead-letter and count outputs."""

from __future__ import annotations

import dataclasses

import apache_beam as beam
from apache_beam import pvalue

from variant_etl.core.reader import Malformed, ReadResult, read_split
from variant_etl.core.schema import VariantSchema
from variant_etl.plan import ReadOptions, ReadSplit, open_binary

MALFORMED = "malformed"
COUNTS = "counts"


class _ReadSplitFn(beam.DoFn):
    def __init__(self, schema: VariantSchema, options: ReadOptions):
        self._schema = schema
        self._options = options

    def process(self, split: ReadSplit):
        result = ReadResult()
        for item in read_split(
            split.path,
            self._schema,
            one_based=self._options.one_based,
            allow_malformed=self._options.allow_malformed_records,
            batch_rows=self._options.batch_rows,
            result=result,
            open_binary=open_binary,
            extra_header_lines=split.extra_header_lines,
        ):
            if isinstance(item, Malformed):
                yield pvalue.TaggedOutput(MALFORMED, dataclasses.asdict(item))
            else:
                yield item
        yield pvalue.TaggedOutput(COUNTS, ("read", split.path, result.records_read))


class ReadVcf(beam.PTransform):
    """Splits -> RecordBatches (main), dead-letter dicts ('malformed'), counts ('counts')."""

    def __init__(self, schema: VariantSchema, options: ReadOptions):
        super().__init__()
        self._schema = schema
        self._options = options

    def expand(self, splits):
        return (
            splits
            | "Distribute" >> beam.Reshuffle()
            | "ReadSplit"
            >> beam.ParDo(_ReadSplitFn(self._schema, self._options)).with_outputs(
                MALFORMED, COUNTS, main="batches"
            )
        )
