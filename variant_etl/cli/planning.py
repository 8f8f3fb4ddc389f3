"""The arguments of ``launch`` and ``plan`` translated into a Plan (variant_etl/plan/), and the
plan printed."""

from __future__ import annotations

import argparse
import dataclasses
import os
import uuid

from variant_etl.core.bigquery_tables import parse_output_table
from variant_etl.core.errors import VariantEtlError
from variant_etl.core.options import (
    AnnotationOptions,
    BigQueryOptions,
    HeaderOptions,
    MergeOptions,
    ParquetOptions,
    ReadOptions,
    SchemaOptions,
)


def make_plan_of(args: argparse.Namespace):
    from variant_etl.plan import make_plan  # (imports Beam's FileSystems)

    if not args.input_pattern and not args.input_file:
        raise VariantEtlError("no input: pass --input_pattern 'data/*.vcf.gz' or --input_file list.txt")
    if args.command == "launch" and not (
        args.output_parquet_dir or args.output_table or args.sample_lookup_parquet_dir
    ):
        raise VariantEtlError(
            "no output: pass --output_parquet_dir DIR and/or --output_table PROJECT:DATASET.TABLE "
            "(or --sample_lookup_parquet_dir DIR)"
        )
    parquet, lookup = (
        ParquetOptions(
            output_dir=directory,
            compression=args.parquet_compression,
            row_group_rows=args.parquet_row_group_size,
            rows_per_file=args.parquet_rows_per_file,
            overwrite=args.overwrite,
        )
        if directory
        else None
        for directory in (args.output_parquet_dir, args.sample_lookup_parquet_dir)
    )
    bigquery = _bigquery_options(args)
    return make_plan(
        input_patterns=args.input_pattern,
        input_file=args.input_file,
        sharding_config_path=args.sharding_config_path,
        read=ReadOptions(
            one_based=args.use_1_based_coordinate,
            allow_malformed_records=args.allow_malformed_records,
            split_bytes=args.read_split_bytes,
        ),
        parquet=parquet,
        schema_options=SchemaOptions(
            split_alternate_allele_info_fields=args.split_alternate_allele_info_fields,
            include_call_name=args.include_call_name,
            copy_quality_to_calls=args.copy_quality_to_calls,
            copy_filter_to_calls=args.copy_filter_to_calls,
            info_keys_to_move_to_calls_regex=args.info_keys_to_move_to_calls_regex,
        ),
        merge=MergeOptions(strategy=args.variant_merge_strategy, bucket_size=args.merge_bucket_size),
        headers=HeaderOptions(
            representative_header_file=args.representative_header_file,
            allow_incompatible_records=args.allow_incompatible_records,
            infer_headers=args.infer_headers,
            sample_name_encoding=args.sample_name_encoding,
        ),
        bigquery=bigquery,
        sample_lookup=lookup,
        sample_lookup_bigquery=_sample_lookup_bigquery_options(args, bigquery),
        take_over=args.take_over,
        omit_empty_sample_calls=args.omit_empty_sample_calls,
        move_hom_ref_calls=args.move_hom_ref_calls,
        annotations=AnnotationOptions(
            annotation_fields=tuple(_names(args.annotation_fields)),
            annotate_with=args.annotate_with,
            infer_annotation_types=args.infer_annotation_types,
            minimal_vep_alt_matching=args.minimal_vep_alt_matching,
            annotate_fields=tuple(_names(args.annotate_fields)),
        ),
    )


def _names(values: list[str]) -> list[str]:
    """Field IDs given space- or comma-separated, each once."""
    return list(dict.fromkeys(name for value in values for name in value.split(",") if name))


def _sample_lookup_bigquery_options(args: argparse.Namespace, bigquery):
    """The sample-lookup tables share every BigQuery option of --output_table; their load
    files wait in a folder of their own."""
    if not args.sample_lookup_optimized_output_table or bigquery is None:
        return None
    project, dataset, table = parse_output_table(args.sample_lookup_optimized_output_table, args.project)
    temp_dir = bigquery.temp_dir.rstrip("/") + "/sample_lookup"
    return dataclasses.replace(bigquery, project=project, dataset=dataset, table=table, temp_dir=temp_dir)


def _bigquery_options(args: argparse.Namespace):
    if not args.output_table:
        return None
    project, dataset, table = parse_output_table(args.output_table, args.project)
    if args.temp_location:
        temp_dir = args.temp_location.rstrip("/") + f"/variant_etl-{uuid.uuid4().hex[:12]}"
    elif args.output_parquet_dir or args.sample_lookup_parquet_dir:
        out = args.output_parquet_dir or args.sample_lookup_parquet_dir
        temp_dir = os.path.join(out, "_temporary", f"bigquery-{uuid.uuid4().hex[:12]}")
    else:
        raise VariantEtlError(
            "--output_table needs --temp_location for its load files (gs://bucket/tmp on Dataflow, "
            "a local directory on DirectRunner)"
        )
    return BigQueryOptions(
        project=project,
        dataset=dataset,
        table=table,
        temp_dir=temp_dir,
        write_method=args.bigquery_write_method,
        append=args.append,
        update_schema_on_append=args.update_schema_on_append,
        keep_intermediate_files=args.keep_intermediate_files,
        null_numeric_value_replacement=args.null_numeric_value_replacement,
    )


def print_plan(plan, fmt: str) -> None:
    from variant_etl.plan import estimate_plan, plan_json, plan_text

    estimate = estimate_plan(plan)
    print(plan_json(plan, estimate) if fmt == "json" else plan_text(plan, estimate))
