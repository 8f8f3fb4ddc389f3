"""The options of every command, one argument group per stage; defaults and choices come
from core/options.py (written there once)."""

from __future__ import annotations

import argparse
import difflib
import re

from variant_etl.core.errors import VariantEtlError
from variant_etl.core.options import (
    BIGQUERY_WRITE_METHODS,
    DEFAULT_SHARDING_CONFIG,
    MERGE_STRATEGIES,
    NULL_NUMERIC_VALUE_REPLACEMENT,
    PARQUET_COMPRESSIONS,
    PROGRESS_INTERVAL,
    SAMPLE_NAME_ENCODINGS,
    BigQueryOptions,
    HeaderOptions,
    MergeOptions,
    ParquetOptions,
    ReadOptions,
    SchemaOptions,
)


def _boolean(text: str) -> bool:
    if text.lower() in ("true", "1", "yes"):
        return True
    if text.lower() in ("false", "0", "no"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


# An on/off option, as gcp-variant-transforms spells them: `--append`, `--append true`,
# `--append=False` (its users' scripts write all three).
ON_OFF = dict(nargs="?", const=True, default=False, type=_boolean, metavar="true|false")


class _Parser(argparse.ArgumentParser):
    """argparse with its errors as one line (``error: ...``, exit 2) rather than usage and message.
    No abbreviations: ``--output`` must not stand for one of our options, nor hide one of Beam's."""

    def __init__(self, **kwargs):
        super().__init__(allow_abbrev=False, **kwargs)

    def error(self, message: str):
        unknown = _INVALID_COMMAND.match(message)
        if unknown:  # a misspelt command: the nearest one, not argparse's list of all
            given, choices = unknown.group(1), re.findall(r"'([^']+)'", unknown.group(2))
            near = difflib.get_close_matches(given, choices, n=1, cutoff=0.5)
            hint = f"did you mean '{near[0]}'?" if near else f"the commands are {', '.join(choices)}"
            raise VariantEtlError(f"no command '{given}': {hint} ({self.prog} --help lists them)")
        raise VariantEtlError(f"{message}. Hint: {self.prog} --help lists the options")


_INVALID_COMMAND = re.compile(r"argument command: invalid choice: '([^']*)' \(choose from (.*)\)$")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="variant-etl", description="Load VCF/BCF files into sharded Parquet tables (Apache Beam)."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    for name, helptext in (
        ("launch", "run the pipeline"),
        ("plan", "print the plan (inputs, read splits, shards, estimated rows) without running"),
    ):
        command = commands.add_parser(name, help=helptext)
        _add_pipeline_options(command)
    preprocess = commands.add_parser(
        "preprocess",
        help="report header conflicts (and inferred definitions, malformed records) before a load, "
        "as gcp-variant-transforms' vcf_to_bq_preprocess",
    )
    preprocess.add_argument(
        "--input_pattern", action="append", default=[], help="glob of VCF/BCF files; may be repeated"
    )
    preprocess.add_argument("--input_file", help="a file listing one input pattern per line")
    preprocess.add_argument("--report_path", required=True, help="the TSV report to write")
    preprocess.add_argument(
        "--resolved_headers_path",
        help="also write a VCF header with the resolved definitions (for --representative_header_file)",
    )
    preprocess.add_argument(
        "--report_all_conflicts", **ON_OFF,
        help="also read every record: the definitions --infer_headers would add or correct, and the "
        "malformed records",
    )  # fmt: skip
    report = commands.add_parser("report", help="write an HTML report of a Parquet output (rows per shard)")
    report.add_argument("--input_parquet_dir", required=True, help="a directory written by launch")
    report.add_argument("--output", help="the HTML file to write (default: <input_parquet_dir>/_report.html)")
    validate = commands.add_parser("validate-config", help="check a sharding config YAML")
    validate.add_argument("path", nargs="?", default=None)
    export = commands.add_parser(
        "export", help="write a Parquet output or BigQuery tables back to a bgzipped, indexed VCF"
    )
    _add_selection_options(export, tables=True)
    export.add_argument(
        "--output_vcf", "--output_file", required=True,
        help="the VCF to write (.vcf.gz: bgzipped, with a .tbi); --output_file is bq_to_vcf's name",
    )  # fmt: skip
    _add_vt_options(export, VT_EXPORT_IGNORED, VT_EXPORT_ABSENT)
    query = commands.add_parser("query", help="select variants of a Parquet output with DuckDB")
    _add_selection_options(query)
    query.add_argument(
        "--columns", nargs="+", metavar="COLUMN", help="columns to show (default: the site columns)"
    )
    query.add_argument("--output", help="write to this .csv or .parquet file instead of printing a table")
    query.add_argument("--limit", type=_positive_int, help="at most this many rows")
    return parser


def _add_selection_options(parser: argparse.ArgumentParser, *, tables: bool = False) -> None:
    if tables:
        source = parser.add_mutually_exclusive_group(required=True)
        source.add_argument("--input_parquet_dir", help="a directory written by launch")
        source.add_argument(
            "--input_table", metavar="PROJECT:DATASET.TABLE",
            help="the --output_table of a launch: its TABLE__<suffix> tables (docs/export.md)",
        )  # fmt: skip
        parser.add_argument("--project", help="Google Cloud project of --input_table DATASET.TABLE")
        parser.add_argument(
            "--null_numeric_value_replacement", type=int, default=None,
            help="with --input_table: the number that stands for a missing value in lists, as given "
            f"to launch (default {NULL_NUMERIC_VALUE_REPLACEMENT})",
        )  # fmt: skip
    else:
        parser.add_argument("--input_parquet_dir", required=True, help="a directory written by launch")
    parser.add_argument(
        "--genomic_regions", nargs="+", default=[], metavar="REGION",
        help="CHROM, CHROM:POS or CHROM:START-END (1-based, inclusive, as in bcftools): variants overlapping",
    )  # fmt: skip
    parser.add_argument(
        "--genomic_regions_by_start_position", **ON_OFF,
        help="--genomic_regions CHROM:START-END selects start_position in [START, END), as stored "
        "(gcp-variant-transforms' bq_to_vcf), instead of the variants overlapping 1-based START-END",
    )  # fmt: skip
    parser.add_argument(
        "--sample_names", nargs="+", default=[], metavar="NAME", help="keep only these samples' calls"
    )


def _add_pipeline_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--verbose", **ON_OFF, help="show Beam's own log messages")
    planning = parser.add_argument_group("plan and progress")
    planning.add_argument(
        "--dry_run", **ON_OFF,
        help="launch: print the plan and stop (with DataflowRunner: translate the job, submit nothing)",
    )  # fmt: skip
    planning.add_argument(
        "--format",
        choices=("text", "json"),
        default="text",
        help="how plan and launch --dry_run print the plan",
    )
    planning.add_argument(
        "--no_progress", **ON_OFF, help="no progress lines on stderr during a DirectRunner run"
    )
    planning.add_argument(
        "--progress_interval", type=_positive_float, default=PROGRESS_INTERVAL, metavar="SECONDS",
        help=f"seconds between progress lines (default {PROGRESS_INTERVAL:g})",
    )  # fmt: skip
    inputs = parser.add_argument_group("inputs")
    inputs.add_argument(
        "--input_pattern", action="append", default=[],
        help="glob of VCF/BCF files (.vcf, .vcf.gz, .vcf.bgz, .vcf.bz2, .bcf); may be repeated",
    )  # fmt: skip
    inputs.add_argument("--input_file", help="a file listing one input pattern per line")
    inputs.add_argument(
        "--read_split_bytes", type=_positive_int, default=ReadOptions.split_bytes,
        help="uncompressed VCFs larger than this are read in parallel, line-aligned byte ranges; "
        "bgzipped ones in ranges of BGZF blocks of a sixteenth of it",
    )  # fmt: skip
    inputs.add_argument(
        "--allow_malformed_records", **ON_OFF,
        help="write malformed records to <out>/_malformed/ and go on, instead of failing",
    )  # fmt: skip
    inputs.add_argument(
        "--infer_headers", "--infer_undefined_headers", **ON_OFF,
        help="one extra pass to define INFO/FORMAT fields used but not declared in any header",
    )  # fmt: skip
    inputs.add_argument(
        "--use_1_based_coordinate", **ON_OFF,
        help="start_position is POS as written (1-based) instead of 0-based",
    )  # fmt: skip
    headers = parser.add_argument_group("headers and schema")
    headers.add_argument(
        "--representative_header_file",
        help="use this file's INFO/FORMAT definitions for the schema and for parsing every input",
    )
    headers.add_argument(
        "--allow_incompatible_records", **ON_OFF,
        help="widen conflicting definitions (e.g. Integer vs String -> String) and cast the values",
    )  # fmt: skip
    headers.add_argument(
        "--split_alternate_allele_info_fields",
        **{**ON_OFF, "default": SchemaOptions.split_alternate_allele_info_fields},
        help="Number=A INFO fields under alternate_bases (default true) or as top-level lists",
    )  # fmt: skip
    headers.add_argument("--include_call_name", **ON_OFF, help="keep the sample name as call.name")
    headers.add_argument(
        "--omit_empty_sample_calls", **ON_OFF,
        help="leave out of call the calls with no allele known and no FORMAT value (./.)",
    )  # fmt: skip
    headers.add_argument(
        "--move_hom_ref_calls", **ON_OFF,
        help="move 0/0 calls out of call into hom_ref_call (their sample_id and name; FORMAT values dropped)",
    )  # fmt: skip
    headers.add_argument(
        "--sample_name_encoding", choices=SAMPLE_NAME_ENCODINGS, default=HeaderOptions.sample_name_encoding,
        help="WITH_FILE_PATH: call.sample_id also hashes the file path (same name, different people)",
    )  # fmt: skip
    annotations = parser.add_argument_group("annotations (docs/annotations.md)")
    annotations.add_argument(
        "--annotation_fields", nargs="+", default=[], metavar="INFO_ID",
        help="INFO fields of VEP/SnpEff annotation strings (CSQ, ANN) to split under the alternate "
        "allele they describe: alternate_bases[].<ID>[] with one column per sub-field",
    )  # fmt: skip
    annotations.add_argument(
        "--annotate_with", metavar="FILE.vcf.gz",
        help="an indexed VCF (e.g. ClinVar) whose --annotate_fields are copied under each matching ALT",
    )  # fmt: skip
    annotations.add_argument(
        "--annotate_fields", nargs="+", default=[], metavar="INFO_ID",
        help="INFO fields of --annotate_with to copy (space- or comma-separated), e.g. CLNSIG,CLNREVSTAT",
    )  # fmt: skip
    annotations.add_argument(
        "--infer_annotation_types", **ON_OFF,
        help="type each sub-field of --annotation_fields Integer or Float when every value is one "
        "(one extra pass over the records)",
    )  # fmt: skip
    annotations.add_argument(
        "--minimal_vep_alt_matching", **ON_OFF,
        help="also match annotation alleles as VEP --minimal writes them (REF/ALT difference)",
    )  # fmt: skip
    merging = parser.add_argument_group("merging")
    merging.add_argument(
        "--variant_merge_strategy", choices=MERGE_STRATEGIES, default=MergeOptions.strategy,
        help="NONE: a row per record; MOVE_TO_CALLS: one row per site with every file's calls; "
        "MERGE_WITH_NON_VARIANTS: as MOVE_TO_CALLS, plus gVCF reference blocks (docs/merging.md)",
    )  # fmt: skip
    merging.add_argument("--copy_quality_to_calls", **ON_OFF, help="call.quality: each file's QUAL")
    merging.add_argument("--copy_filter_to_calls", **ON_OFF, help="call.filter: each file's FILTER")
    merging.add_argument(
        "--info_keys_to_move_to_calls_regex", help="INFO keys matching this regex go into their file's calls"
    )
    merging.add_argument(
        "--merge_bucket_size", type=_positive_int, default=MergeOptions.bucket_size,
        help="bases of the genome merged together; bounds the memory of one merge group",
    )  # fmt: skip
    sharding = parser.add_argument_group("sharding")
    sharding.add_argument(
        "--sharding_config_path", default=None,
        help=f"sharding YAML (default: sharding_configs/{DEFAULT_SHARDING_CONFIG})",
    )  # fmt: skip
    bigquery = parser.add_argument_group("BigQuery output")
    bigquery.add_argument(
        "--output_table", help="PROJECT:DATASET.TABLE: one table TABLE__<suffix> per shard (docs/bigquery.md)"
    )
    bigquery.add_argument(
        "--bigquery_write_method", choices=BIGQUERY_WRITE_METHODS, default=BigQueryOptions.write_method,
        help="Avro files and free load jobs (default), or streaming inserts",
    )  # fmt: skip
    bigquery.add_argument(
        "--sample_lookup_optimized_output_table", metavar="PROJECT:DATASET.TABLE",
        help="with --output_table: also tables TABLE__<suffix> with one row per call, partitioned "
        "on sample_id, for per-sample queries (docs/sample_lookup.md)",
    )  # fmt: skip
    bigquery.add_argument("--append", **ON_OFF, help="add rows to existing tables")
    bigquery.add_argument(
        "--update_schema_on_append", **ON_OFF, help="with --append: add new columns to the tables"
    )
    bigquery.add_argument(
        "--keep_intermediate_files",
        "--keep_intermediate_avro_files",
        **ON_OFF,
        help="keep the Avro load files in --temp_location",
    )
    bigquery.add_argument(
        "--null_numeric_value_replacement", type=int, default=NULL_NUMERIC_VALUE_REPLACEMENT,
        help="stands for a missing number inside a list, which BigQuery cannot hold "
        f"(default {NULL_NUMERIC_VALUE_REPLACEMENT})",
    )  # fmt: skip
    bigquery.add_argument("--temp_location", help="where load files wait (also Beam's --temp_location)")
    bigquery.add_argument("--project", help="Google Cloud project (also Beam's --project)")
    output = parser.add_argument_group("Parquet output")
    output.add_argument("--output_parquet_dir", help="directory for <table_name_suffix>/*.parquet")
    output.add_argument(
        "--sample_lookup_parquet_dir", metavar="DIR",
        help="also (or only) one row per call, sorted by sample_id, for per-sample queries "
        "(docs/sample_lookup.md)",
    )  # fmt: skip
    output.add_argument(
        "--overwrite", **ON_OFF,
        help="replace what --output_parquet_dir holds (only once the new run is complete)",
    )  # fmt: skip
    output.add_argument(
        "--take_over", metavar="RUN_ID",
        help="claim the output directories from run RUN_ID, which died: its temporary files and "
        "any unfinished commit are removed (docs/reliability.md)",
    )  # fmt: skip
    output.add_argument(
        "--parquet_compression", choices=PARQUET_COMPRESSIONS, default=ParquetOptions.compression
    )
    output.add_argument(
        "--parquet_row_group_size",
        type=_positive_int,
        default=ParquetOptions.row_group_rows,
        help="rows per row group",
    )
    output.add_argument(
        "--parquet_rows_per_file", type=_positive_int, default=ParquetOptions.rows_per_file,
        help="at most this many rows per file (a worker may write smaller ones)",
    )  # fmt: skip
    _add_vt_options(parser, VT_IGNORED, VT_ABSENT)


_VEP_RUN = "it configures gcp-variant-transforms' VEP run (--run_annotation_pipeline), not done here"
_SIZED = "the plan sizes the job from the inputs"
# gcp-variant-transforms options that have no effect here: accepted, with a warning saying why.
VT_IGNORED = {
    "--optimize_for_large_inputs": (ON_OFF, f"deprecated in gcp-variant-transforms; {_SIZED}"),
    "--pipeline_mode": (dict(metavar="small|medium|large"), _SIZED),
    "--num_bigquery_write_shards": (
        dict(type=int), "deprecated in gcp-variant-transforms; load jobs need no write shards"
    ),
    "--auto_flags_experiment": (
        dict(nargs="?", const=True), "a gcp-variant-transforms experiment; `plan` shows what the inputs need"
    ),
    "--use_allele_num": (
        ON_OFF, "an annotation's ALLELE_NUM is used whenever its format has one (docs/annotations.md)"
    ),
    "--shard_variants": (ON_OFF, _VEP_RUN),
    "--run_with_garbage_collection": (ON_OFF, _VEP_RUN),
    **{f"--{name}": (dict(), _VEP_RUN) for name in (
        "number_of_variants_per_shard", "location", "vep_image_uri", "vep_cache_path", "vep_info_field",
        "vep_num_fork", "vep_assembly", "vep_species", "annotation_output_dir")},
}  # fmt: skip
# bq_to_vcf's options that have no effect on `export`: accepted, with a warning saying why.
VT_EXPORT_IGNORED = {
    "--number_of_bases_per_shard": (
        dict(type=int), "a pipeline export cuts its pieces by the values they hold, not by bases"
    ),
    "--allow_incompatible_schema": (
        ON_OFF, "the header is the one launch wrote, or is made from the table schema without checks"
    ),
    "--bq_uses_1_based_coordinate": (
        ON_OFF, "the coordinates are read from the output (its manifest, its vcf_header rows, or the "
        "start_position description gcp-variant-transforms wrote)",
    ),
}  # fmt: skip
# bq_to_vcf's options whose feature `export` lacks: an error naming what to do instead.
VT_EXPORT_ABSENT = {
    "--preserve_sample_order": (
        ON_OFF, "samples are written in name order (bq_to_vcf's default)",
        "reorder them afterwards with bcftools view -s NAME,NAME,...",
    ),
    "--representative_header_file": (
        dict(), "the header is the one launch stored with the output",
        "replace header lines afterwards with bcftools reheader -h FILE",
    ),
    "--custom_sample_info_table": (
        dict(), "the sample names are read from TABLE__sample_info",
        "copy your table to <input_table>__sample_info",
    ),
}  # fmt: skip
# gcp-variant-transforms options whose feature variant_etl lacks: an error naming what to do instead.
VT_ABSENT = {
    "--output_avro_path": (
        dict(), "variant_etl writes no Avro output",
        "--output_parquet_dir DIR for files, or --keep_intermediate_files to keep the Avro files "
        "loaded into BigQuery",
    ),
    "--reference_names": (
        dict(nargs="+"), "variant_etl loads every reference name its sharding config routes",
        "a sharding config with shards for only those references and no residual shard (docs/sharding.md)",
    ),
    "--run_annotation_pipeline": (
        ON_OFF, "gcp-variant-transforms ran VEP on Google Cloud Life Sciences, which has been shut down",
        "run VEP on the VCFs first and load them with --annotation_fields CSQ, or copy the fields of an "
        "annotated VCF with --annotate_with FILE.vcf.gz --annotate_fields ID,...",
    ),
}  # fmt: skip


def _add_vt_options(parser: argparse.ArgumentParser, ignored: dict, absent: dict) -> None:
    """gcp-variant-transforms' options of a command, accepted so that its scripts run (default
    None: not given); not in --help (docs/migrating_from_gcp_variant_transforms.md lists them)."""
    for name, (kwargs, *_) in [*ignored.items(), *absent.items()]:
        parser.add_argument(name, **{**kwargs, "default": None}, help=argparse.SUPPRESS)


def _positive_int(text: str) -> int:
    value = int(text.replace(",", "").replace("_", ""))
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number of seconds, got {text!r}")
    return value


def option_names() -> dict[str, str]:
    """Every option name of launch and plan -> the option it spells (itself, but for aliases)."""
    parser = _Parser(add_help=False)
    _add_pipeline_options(parser)
    return {name: action.option_strings[0] for action in parser._actions for name in action.option_strings}
