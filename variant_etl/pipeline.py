"""The pipeline, top to bottom as in docs/architecture: plan -> ReadVcf ->
ShardVariants -> sinks per shard (Parquet, BigQuery, and the sample-lookup copies of
both: one row per call) -> commit with _manifest.json."""

from __future__ import annotations

import apache_beam as beam

from variant_etl.core.progress import ProgressOptions
from variant_etl.core.sample_lookup import lookup_schema
from variant_etl.plan import Plan
from variant_etl.sinks.bigquery import LoadToBigQuery, WriteShardToBigQuery
from variant_etl.sinks.manifest import CommitOutput, WriteMalformed
from variant_etl.sinks.parquet import WriteShardToParquet, WriteShardToSampleLookup
from variant_etl.transforms import read as read_tags
from variant_etl.transforms import shard as shard_tags
from variant_etl.transforms.annotate import AnnotateVariants
from variant_etl.transforms.merge import MergeVariants
from variant_etl.transforms.read import ReadVcf
from variant_etl.transforms.regions import ReadMergedRegions
from variant_etl.transforms.sample_lookup import ExplodeCalls
from variant_etl.transforms.shard import ShardVariants, shard_tag

LOOKUP_BQ = "lookup_bq"  # the stats of the sample-lookup tables: lookup_bq_file, lookup_bq_loaded


def build(p: beam.Pipeline, plan: Plan, *, progress: ProgressOptions | None = None) -> beam.PCollection:
    """Adds the whole job to ``p``; returns the commit's totals. With ``progress``, the readers
    report the records they have read (core/progress.py)."""
    merging = plan.merge.strategy != "NONE"
    if plan.region_splits:  # sorted, indexed inputs: read and merge window by window, no shuffle
        read = (
            p
            | "RegionSplits" >> beam.Create(plan.region_splits)
            | "ReadMergedRegions"
            >> ReadMergedRegions(
                plan.schema, plan.read, plan.merge, plan.ranked_sample_ids(), progress=progress
            )
        )
        batches = read.batches
    else:
        read = (
            p
            | "Splits" >> beam.Create(plan.splits)
            | "ReadVcf" >> ReadVcf(plan.schema, plan.read, with_origin=merging, progress=progress)
        )
        batches = read.batches
        if merging:
            batches = batches | "MergeVariants" >> MergeVariants(plan.merge, plan.ranked_sample_ids())
    if plan.annotations is not None:
        batches = batches | "AnnotateVariants" >> AnnotateVariants(
            plan.annotations, one_based=plan.read.one_based
        )
    sharded = batches | "ShardVariants" >> ShardVariants(
        plan.sharding, one_based=plan.read.one_based, count_calls=plan.has_sample_lookup
    )
    stats = [read[read_tags.COUNTS], sharded[shard_tags.COUNTS]]
    bigquery_files = []
    lookup_bigquery_files = []
    calls_schema = lookup_schema(plan.output_schema()) if plan.has_sample_lookup else None
    for shard in plan.sharding.shards:
        rows = sharded[shard_tag(shard.index)]
        if plan.parquet is not None:
            stats.append(
                rows
                | f"WriteParquet[{shard.suffix}]" >> WriteShardToParquet(shard, plan.parquet, plan.temp_dir)
            )
        if plan.bigquery is not None:
            written = rows | f"WriteBigQuery[{shard.suffix}]" >> WriteShardToBigQuery(
                shard, plan.output_schema(), plan.bigquery
            )
            (bigquery_files if plan.bigquery.write_method == "FILE_LOADS" else stats).append(written)
        if plan.sample_lookup is not None:
            stats.append(
                rows
                | f"WriteSampleLookup[{shard.suffix}]"
                >> WriteShardToSampleLookup(shard, plan.sample_lookup, plan.sample_lookup_temp_dir)
            )
        if plan.sample_lookup_bigquery is not None:
            written = (
                rows
                | f"ExplodeCalls[{shard.suffix}]" >> ExplodeCalls()
                | f"WriteSampleLookupBigQuery[{shard.suffix}]"
                >> WriteShardToBigQuery(shard, calls_schema, plan.sample_lookup_bigquery, kind=LOOKUP_BQ)
            )
            is_loaded = plan.sample_lookup_bigquery.write_method == "FILE_LOADS"
            (lookup_bigquery_files if is_loaded else stats).append(written)
    if bigquery_files:
        suffixes = [s.suffix for s in plan.sharding.shards]
        stats.append(
            bigquery_files
            | "AllLoadFiles" >> beam.Flatten()
            | "LoadToBigQuery" >> LoadToBigQuery(plan.bigquery, suffixes)
        )
    if lookup_bigquery_files:
        suffixes = [s.suffix for s in plan.sharding.shards]
        stats.append(
            lookup_bigquery_files
            | "AllSampleLookupLoadFiles" >> beam.Flatten()
            | "LoadSampleLookupToBigQuery"
            >> LoadToBigQuery(plan.sample_lookup_bigquery, suffixes, kind=LOOKUP_BQ)
        )
    stats.append(read[read_tags.MALFORMED] | "WriteMalformed" >> WriteMalformed(plan.temp_dir))
    return stats | "AllStats" >> beam.Flatten() | "CommitOutput" >> CommitOutput(plan)


def main(argv: list[str] | None = None) -> int:
    from variant_etl.cli import main as cli_main

    return cli_main(argv)


if __name__ == "__main__":
    raise SystemExit(main())
