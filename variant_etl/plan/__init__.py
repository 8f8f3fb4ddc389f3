"""Everything decided before the pipeline starts: input files, headers, the merged schema, the
sharding config, the read splits and the outputs. All that can be rejected is rejected here,
before any worker starts.

``plan_source`` is the reading side alone (what ``ReadVcf`` decides at construction);
``make_plan`` adds the sharding config and the outputs (what ``launch`` decides)."""

from __future__ import annotations

import datetime
import uuid

from variant_etl.core.options import (
    DEFAULT_SHARDING_CONFIG,
    AnnotationOptions,
    BigQueryOptions,
    HeaderOptions,
    MergeOptions,
    ParquetOptions,
    ReadOptions,
    SchemaOptions,
    bundled_config,
)
from variant_etl.core.sharding import load_sharding_config
from variant_etl.plan.estimate import estimate_input, estimate_plan
from variant_etl.plan.inputs import expand_inputs, plan_source, source_annotations
from variant_etl.plan.model import Plan, PlanEstimate, SourcePlan
from variant_etl.plan.render import human_bytes, plan_json, plan_text
from variant_etl.plan.rules import (
    check_dirs_apart,
    check_merge_options,
    check_output_dir,
    check_sample_lookup_has_samples,
    check_sample_lookup_tables,
    check_table_names,
)

__all__ = [
    "Plan",
    "PlanEstimate",
    "SourcePlan",
    "estimate_input",
    "estimate_plan",
    "expand_inputs",
    "human_bytes",
    "make_plan",
    "plan_json",
    "plan_source",
    "plan_text",
]


def make_plan(
    *,
    input_patterns: list[str],
    input_file: str | None,
    sharding_config_path: str | None,
    read: ReadOptions,
    parquet: ParquetOptions | None,
    headers: HeaderOptions | None = None,
    infer_headers: bool = False,
    schema_options: SchemaOptions | None = None,
    merge: MergeOptions | None = None,
    annotations: AnnotationOptions | None = None,
    bigquery: BigQueryOptions | None = None,
    sample_lookup: ParquetOptions | None = None,
    sample_lookup_bigquery: BigQueryOptions | None = None,
    take_over: str | None = None,
    omit_empty_sample_calls: bool = False,
    move_hom_ref_calls: bool = False,
) -> Plan:
    headers = headers or HeaderOptions(infer_headers=infer_headers)
    schema_options = schema_options or SchemaOptions()
    merge = merge or MergeOptions()
    annotations = annotations or AnnotationOptions()
    check_merge_options(merge, schema_options)
    # The cheap checks first: a bad config or output must not wait for every header to be read.
    sharding = load_sharding_config(sharding_config_path or bundled_config(DEFAULT_SHARDING_CONFIG))
    for options, flag in ((parquet, "--output_parquet_dir"), (sample_lookup, "--sample_lookup_parquet_dir")):
        if options is None:
            continue
        if options is sample_lookup and parquet is not None:
            check_dirs_apart(sample_lookup, parquet)
        # Launch checks the directories again once it has claimed them. A remote one being
        # overwritten is left to that check: a Dataflow --dry_run claims nothing and reads nothing.
        if not (options.overwrite and "://" in options.output_dir):
            check_output_dir(options.output_dir, options.overwrite, flag, taking_over=take_over)
    if bigquery is not None:
        check_table_names(bigquery, sharding)
    if sample_lookup_bigquery is not None:
        check_sample_lookup_tables(sample_lookup_bigquery, bigquery, sharding)
    source = plan_source(
        input_patterns, input_file, read=read, headers=headers, schema_options=schema_options, merge=merge
    )
    planned_annotations = source_annotations(source, annotations)
    if sample_lookup is not None or sample_lookup_bigquery is not None:
        check_sample_lookup_has_samples(source, sample_lookup is not None)
    return Plan(
        source=source,
        sharding=sharding,
        parquet=parquet,
        run_id=new_run_id(),
        started_at=started_now(),
        bigquery=bigquery,
        annotations=planned_annotations,
        omit_empty_sample_calls=omit_empty_sample_calls,
        move_hom_ref_calls=move_hom_ref_calls,
        sample_lookup=sample_lookup,
        sample_lookup_bigquery=sample_lookup_bigquery,
    )


def new_run_id() -> str:
    return uuid.uuid4().hex[:12]


def started_now() -> str:
    """UTC, to the minute: sample_info.ingestion_datetime."""
    now = datetime.datetime.now(datetime.timezone.utc).replace(second=0, microsecond=0)
    return now.strftime("%Y-%m-%dT%H:%M:%S")
