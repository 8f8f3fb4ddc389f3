"""The pipeline of ``launch``, top to bottom as in docs/architecture.md, from the public
transforms of variant_etl/api.py: ReadVcf (merging when asked) -> AnnotateVariants ->
ShardVariants -> WriteOutputs (Parquet, BigQuery, and the sample-lookup copies of both: one
row per call), whose commit writes _manifest.json."""

from __future__ import annotations

import apache_beam as beam

from variant_etl.api import (
    AnnotateVariants,
    MoveHomRefCalls,
    OmitEmptySampleCalls,
    ReadVcf,
    ShardVariants,
    WriteOutputs,
    WriteToBigQuery,
    WriteToParquet,
)
from variant_etl.core.progress import ProgressOptions
from variant_etl.plan.model import Plan


def build(
    p: beam.Pipeline, plan: Plan, *, progress: ProgressOptions | None = None, claims_held: bool = False
) -> beam.PCollection:
    """Adds the whole job to ``p``; returns the commit's totals. With ``progress``, the readers
    report the records they have read (core/progress.py). The BigQuery tables are made before
    (cli/launch.py), and their sample_info and header rows inserted after. ``claims_held``: the
    caller claimed the output directories (sinks/claims.py) and saw ``plan.seen`` in them."""
    batches = p | "ReadVcf" >> ReadVcf.from_source(plan.source, progress=progress)
    if plan.annotations is not None:
        batches = batches | "AnnotateVariants" >> AnnotateVariants(planned=plan.annotations)
    if plan.omit_empty_sample_calls:
        batches = batches | "OmitEmptySampleCalls" >> OmitEmptySampleCalls()
    if plan.move_hom_ref_calls:
        batches = batches | "MoveHomRefCalls" >> MoveHomRefCalls()
    sharded = batches | "ShardVariants" >> ShardVariants(plan.sharding)
    outputs = []
    for options, lookup in ((plan.parquet, False), (plan.sample_lookup, True)):
        if options is not None:
            outputs.append(
                WriteToParquet(
                    options.output_dir,
                    compression=options.compression,
                    row_group_size=options.row_group_rows,
                    rows_per_file=options.rows_per_file,
                    overwrite=options.overwrite,
                    sample_lookup=lookup,
                    checked=True,
                    previous_run=plan.previous_run(options.output_dir),
                )
            )
    for options, lookup in ((plan.bigquery, False), (plan.sample_lookup_bigquery, True)):
        if options is not None:
            outputs.append(
                WriteToBigQuery("", temp_location="", options=options, sample_lookup=lookup, prepared=True)
            )
    return sharded | "WriteOutputs" >> WriteOutputs(
        *outputs, run_id=plan.run_id, started_at=plan.started_at, claims_held=claims_held
    )
