"""Command line: ``python -m variant_etl <command>`` (also ``variant-etl``).

Commands: ``launch`` runs the pipeline; ``plan`` (or ``launch --dry_run``) prints what launch
would do; ``report`` writes an HTML report of an output; ``validate-config`` checks a sharding
YAML; ``export`` writes an output back to VCF; ``query`` selects from an output with DuckDB.
Options this parser does not know (``--runner``, ``--project``, ``--direct_num_workers``, ...)
go to Beam, if Beam knows them: anything else is an error, as is an option that has no effect
with the others given.
"""

from __future__ import annotations

import argparse
import contextlib
import difflib
import json
import logging
import os
import re
import sys
import tempfile

from variant_etl.core.choices import (
    DEFAULT_SHARDING_CONFIG,
    MERGE_STRATEGIES,
    SAMPLE_NAME_ENCODINGS,
    bundled_config,
)
from variant_etl.core.errors import VariantEtlError
from variant_etl.core.schema import SchemaOptions
from variant_etl.core.sharding import load_sharding_config

_OUR_ERRORS = re.compile(
    r"(VcfFormatError|HeaderConflictError|ShardingConfigError|SchemaError|OutputError|"
    r"CountMismatchError): (.+?)(?: \[while running|\n|$)"
)


class _Parser(argparse.ArgumentParser):
    """argparse with its errors as one line (``error: ...``, exit 2) rather than usage and message.
    No abbreviations: ``--output`` must not stand for one of our options, nor hide one of Beam's."""

    def __init__(self, **kwargs):
        super().__init__(allow_abbrev=False, **kwargs)

    def error(self, message: str):
        raise VariantEtlError(f"{message}. Hint: {self.prog} --help lists the options")


def _parser() -> argparse.ArgumentParser:
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
        "--output_vcf", required=True, help="the VCF to write (.vcf.gz: bgzipped, with a .tbi)"
    )
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
            "to launch (default -2147483648)",
        )  # fmt: skip
    else:
        parser.add_argument("--input_parquet_dir", required=True, help="a directory written by launch")
    parser.add_argument(
        "--genomic_regions", nargs="+", default=[], metavar="REGION",
        help="CHROM, CHROM:POS or CHROM:START-END (1-based, inclusive, as in bcftools): variants overlapping",
    )  # fmt: skip
    parser.add_argument(
        "--sample_names", nargs="+", default=[], metavar="NAME", help="keep only these samples' calls"
    )


def _add_pipeline_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--verbose", action="store_true", help="show Beam's own log messages")
    planning = parser.add_argument_group("plan and progress")
    planning.add_argument(
        "--dry_run", nargs="?", const=True, default=False, type=_boolean, metavar="true|false",
        help="launch: print the plan and stop (with DataflowRunner: translate the job, submit nothing)",
    )  # fmt: skip
    planning.add_argument(
        "--format",
        choices=("text", "json"),
        default="text",
        help="how plan and launch --dry_run print the plan",
    )
    planning.add_argument(
        "--no_progress", action="store_true", help="no progress lines on stderr during a DirectRunner run"
    )
    planning.add_argument(
        "--progress_interval", type=_positive_float, default=10.0, metavar="SECONDS",
        help="seconds between progress lines (default 10)",
    )  # fmt: skip
    inputs = parser.add_argument_group("inputs")
    inputs.add_argument(
        "--input_pattern", action="append", default=[],
        help="glob of VCF/BCF files (.vcf, .vcf.gz, .vcf.bgz, .vcf.bz2, .bcf); may be repeated",
    )  # fmt: skip
    inputs.add_argument("--input_file", help="a file listing one input pattern per line")
    inputs.add_argument(
        "--read_split_bytes", type=_positive_int, default=64 * 2**20,
        help="uncompressed VCFs larger than this are read in parallel, line-aligned byte ranges",
    )  # fmt: skip
    inputs.add_argument(
        "--allow_malformed_records", action="store_true",
        help="write malformed records to <out>/_malformed/ and go on, instead of failing",
    )  # fmt: skip
    inputs.add_argument(
        "--infer_headers", action="store_true",
        help="one extra pass to define INFO/FORMAT fields used but not declared in any header",
    )  # fmt: skip
    inputs.add_argument(
        "--use_1_based_coordinate", action="store_true",
        help="start_position is POS as written (1-based) instead of 0-based",
    )  # fmt: skip
    headers = parser.add_argument_group("headers and schema")
    headers.add_argument(
        "--representative_header_file",
        help="use this file's INFO/FORMAT definitions for the schema and for parsing every input",
    )
    headers.add_argument(
        "--allow_incompatible_records", action="store_true",
        help="widen conflicting definitions (e.g. Integer vs String -> String) and cast the values",
    )  # fmt: skip
    headers.add_argument(
        "--split_alternate_allele_info_fields", type=_boolean, default=True, metavar="true|false",
        help="Number=A INFO fields under alternate_bases (default true) or as top-level lists",
    )  # fmt: skip
    headers.add_argument("--include_call_name", action="store_true", help="keep the sample name as call.name")
    headers.add_argument(
        "--sample_name_encoding", choices=SAMPLE_NAME_ENCODINGS, default="WITHOUT_FILE_PATH",
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
    merging = parser.add_argument_group("merging")
    merging.add_argument(
        "--variant_merge_strategy", choices=MERGE_STRATEGIES, default="NONE",
        help="NONE: a row per record; MOVE_TO_CALLS: one row per site with every file's calls; "
        "MERGE_WITH_NON_VARIANTS: as MOVE_TO_CALLS, plus gVCF reference blocks (docs/merging.md)",
    )  # fmt: skip
    merging.add_argument(
        "--copy_quality_to_calls", action="store_true", help="call.quality: each file's QUAL"
    )
    merging.add_argument(
        "--copy_filter_to_calls", action="store_true", help="call.filter: each file's FILTER"
    )
    merging.add_argument(
        "--info_keys_to_move_to_calls_regex", help="INFO keys matching this regex go into their file's calls"
    )
    merging.add_argument(
        "--merge_bucket_size", type=_positive_int, default=10_000_000,
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
        "--bigquery_write_method", choices=("FILE_LOADS", "STREAMING_INSERTS"), default="FILE_LOADS",
        help="Avro files and free load jobs (default), or streaming inserts",
    )  # fmt: skip
    bigquery.add_argument(
        "--sample_lookup_optimized_output_table", metavar="PROJECT:DATASET.TABLE",
        help="with --output_table: also tables TABLE__<suffix> with one row per call, partitioned "
        "on sample_id, for per-sample queries (docs/sample_lookup.md)",
    )  # fmt: skip
    bigquery.add_argument("--append", action="store_true", help="add rows to existing tables")
    bigquery.add_argument(
        "--update_schema_on_append", action="store_true", help="with --append: add new columns to the tables"
    )
    bigquery.add_argument(
        "--keep_intermediate_files", action="store_true", help="keep the Avro load files in --temp_location"
    )
    bigquery.add_argument(
        "--null_numeric_value_replacement", type=int, default=-(2**31),
        help="stands for a missing number inside a list, which BigQuery cannot hold (default -2147483648)",
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
        "--overwrite", action="store_true",
        help="replace what --output_parquet_dir holds (only once the new run is complete)",
    )  # fmt: skip
    output.add_argument("--parquet_compression", choices=("zstd", "snappy", "none"), default="zstd")
    output.add_argument(
        "--parquet_row_group_size", type=_positive_int, default=100_000, help="rows per row group"
    )
    output.add_argument(
        "--parquet_rows_per_file", type=_positive_int, default=2_000_000,
        help="at most this many rows per file (a worker may write smaller ones)",
    )  # fmt: skip


def _boolean(text: str) -> bool:
    if text.lower() in ("true", "1", "yes"):
        return True
    if text.lower() in ("false", "0", "no"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


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


def parse_args(argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
    """Our options, and the rest for Beam. Before any work: an option neither we nor Beam know
    is an error (Beam would drop it without a word), and so is one the others make pointless."""
    args, rest = _parser().parse_known_args(argv)
    if args.command in ("validate-config", "export", "query", "report"):  # no pipeline: no Beam option
        _check_beam_args(rest, ours=[], beam=False)
        return args, rest
    ours = _option_names()
    _check_beam_args(rest, ours=ours, beam=True)
    _check_combinations(args, _given(argv, ours))
    return args, rest


def _option_names() -> list[str]:
    parser = _Parser(add_help=False)
    _add_pipeline_options(parser)
    return [name for action in parser._actions for name in action.option_strings]


class _BeamParser:
    """Beam's options, from Beam: each PipelineOptions subclass adds its own to a parser
    (PipelineOptions.get_all_options does so with the direct subclasses; we take them all,
    in case one subclasses another)."""

    def __init__(self):
        import apache_beam  # noqa: F401  (defines the option classes of every runner and IO)
        from apache_beam.options.pipeline_options import PipelineOptions, _BeamArgumentParser

        class Parser(_BeamArgumentParser):
            def error(self, message: str):
                raise VariantEtlError(f"{message} (a Beam option)")

        self.parser = Parser(allow_abbrev=False, add_help=False, conflict_handler="resolve")
        classes: dict[str, type] = {}
        todo = [PipelineOptions]
        while todo:
            for cls in todo.pop().__subclasses__():
                name = f"{cls.__module__}.{cls.__qualname__}"
                if name not in classes:
                    classes[name] = cls
                    todo.append(cls)
        for cls in classes.values():
            cls._add_argparse_args(self.parser)  # pylint: disable=protected-access
        self.names = [name for action in self.parser._actions for name in action.option_strings]

    def unknown(self, args: list[str]) -> list[str]:
        return self.parser.parse_known_args(args)[1]


def _check_beam_args(rest: list[str], *, ours: list[str], beam: bool) -> None:
    if not rest:
        return
    known = list(ours)
    if beam:
        parser = _BeamParser()
        rest, known = parser.unknown(rest), known + parser.names
    rest = [arg for arg in rest if arg != "--"]
    for arg in rest:
        if arg.startswith("-"):
            name = arg.split("=", 1)[0]  # never the value: it may be a secret
            close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
            if close:
                hint = f"did you mean {close[0]}?"
            else:
                hint = "see --help" + ("; Beam's options are those of its PipelineOptions" if beam else "")
            raise VariantEtlError(f"unknown option {name}. Hint: {hint}")
    for arg in rest:
        raise VariantEtlError(
            f"unexpected argument {arg!r}. Hint: quote glob patterns (--input_pattern 'data/*.vcf.gz') "
            "so the shell does not expand them, and repeat --input_pattern for each pattern"
        )


def _given(argv: list[str], ours: list[str]) -> set[str]:
    """Our options written on the command line (no abbreviations: a name is written whole)."""
    given = set()
    for arg in argv:
        if arg == "--":
            break
        name = arg.split("=", 1)[0]
        if name in ours:
            given.add(name)
    return given


_PARQUET = ("--output_parquet_dir", "--sample_lookup_parquet_dir")
# option: (the option it needs, or a tuple of options one of which it needs, what it does); an
# option given without the one it needs does nothing.
_NEEDS = {
    "--sample_lookup_optimized_output_table": (
        "--output_table",
        "it writes a second copy of the BigQuery tables, one row per call",
    ),
    "--append": ("--output_table", "it adds rows to existing BigQuery tables"),
    "--update_schema_on_append": ("--output_table", "it adds new columns to existing BigQuery tables"),
    "--keep_intermediate_files": ("--output_table", "it keeps the Avro files loaded into BigQuery"),
    "--bigquery_write_method": ("--output_table", "it says how rows are written to BigQuery"),
    "--null_numeric_value_replacement": ("--output_table", "it stands for missing numbers in BigQuery lists"),
    "--annotate_fields": ("--annotate_with", "it names the fields copied from the annotation file"),
    "--overwrite": (_PARQUET, "it replaces what the Parquet output directory holds"),
    "--parquet_compression": (_PARQUET, "it sets how the Parquet files are compressed"),
    "--parquet_row_group_size": (_PARQUET, "it sets the row groups of the Parquet files"),
    "--parquet_rows_per_file": (_PARQUET, "it sets the size of the Parquet files"),
}
_NEEDED_VALUE = {
    "--output_table": " PROJECT:DATASET.TABLE",
    "--output_parquet_dir": " DIR",
    "--sample_lookup_parquet_dir": " DIR",
    "--annotate_with": " FILE.vcf.gz",
}


def _check_combinations(args: argparse.Namespace, given: set[str]) -> None:
    if "--format" in given and args.command == "launch" and not args.dry_run:
        raise VariantEtlError(
            "--format only applies with --dry_run (it says how the plan is printed). "
            "Hint: add --dry_run, or remove --format."
        )
    if "--progress_interval" in given and args.no_progress:
        raise VariantEtlError(
            "--progress_interval has no effect with --no_progress (no progress lines are printed). "
            "Hint: remove one of them."
        )
    for option, (needed, does) in _NEEDS.items():
        choices = needed if isinstance(needed, tuple) else (needed,)
        if option in given and not any(getattr(args, name[2:]) for name in choices):
            which = " or ".join(choices)
            add = " or ".join(f"{name}{_NEEDED_VALUE.get(name, '')}" for name in choices)
            raise VariantEtlError(
                f"{option} only applies with {which} ({does}). Hint: add {add}, or remove {option}."
            )
    if "--update_schema_on_append" in given and not args.append:
        raise VariantEtlError(
            "--update_schema_on_append only applies with --append (it adds new columns to the tables "
            "appended to). Hint: add --append, or remove --update_schema_on_append."
        )
    if "--keep_intermediate_files" in given and args.bigquery_write_method == "STREAMING_INSERTS":
        raise VariantEtlError(
            "--keep_intermediate_files keeps the Avro load files of --bigquery_write_method FILE_LOADS; "
            "STREAMING_INSERTS writes none. Hint: remove one of them."
        )
    if "--merge_bucket_size" in given and args.variant_merge_strategy == "NONE":
        raise VariantEtlError(
            "--merge_bucket_size only applies with --variant_merge_strategy MOVE_TO_CALLS or "
            "MERGE_WITH_NON_VARIANTS (got NONE). Hint: add one of them, or remove --merge_bucket_size."
        )
    if "--allow_incompatible_records" in given and args.representative_header_file:
        raise VariantEtlError(
            "--allow_incompatible_records has no effect with --representative_header_file (whose "
            "definitions are used for every input: no headers are merged). Hint: remove one of them."
        )


def _make_plan(args: argparse.Namespace):
    from variant_etl.plan import MergeOptions, ParquetOptions, ReadOptions, make_plan

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
        infer_headers=args.infer_headers,
        schema_options=SchemaOptions(
            split_alternate_allele_info_fields=args.split_alternate_allele_info_fields,
            include_call_name=args.include_call_name,
            copy_quality_to_calls=args.copy_quality_to_calls,
            copy_filter_to_calls=args.copy_filter_to_calls,
            info_keys_to_move_to_calls_regex=args.info_keys_to_move_to_calls_regex,
        ),
        merge=MergeOptions(strategy=args.variant_merge_strategy, bucket_size=args.merge_bucket_size),
        representative_header_file=args.representative_header_file,
        allow_incompatible_records=args.allow_incompatible_records,
        sample_name_encoding=args.sample_name_encoding,
        bigquery=bigquery,
        sample_lookup=lookup,
        sample_lookup_bigquery=_sample_lookup_bigquery_options(args, bigquery),
        annotation_fields=tuple(_names(args.annotation_fields)),
        annotate_with=args.annotate_with,
        annotate_fields=tuple(_names(args.annotate_fields)),
    )


def _names(values: list[str]) -> list[str]:
    """Field IDs given space- or comma-separated, each once."""
    return list(dict.fromkeys(name for value in values for name in value.split(",") if name))


def _sample_lookup_bigquery_options(args: argparse.Namespace, bigquery):
    """The sample-lookup tables share every BigQuery option of --output_table; their load
    files wait in a folder of their own."""
    if not args.sample_lookup_optimized_output_table or bigquery is None:
        return None
    import dataclasses

    from variant_etl.core.bigquery_tables import parse_output_table

    project, dataset, table = parse_output_table(args.sample_lookup_optimized_output_table, args.project)
    temp_dir = bigquery.temp_dir.rstrip("/") + "/sample_lookup"
    return dataclasses.replace(bigquery, project=project, dataset=dataset, table=table, temp_dir=temp_dir)


def _bigquery_options(args: argparse.Namespace):
    if not args.output_table:
        return None
    import uuid

    from variant_etl.core.bigquery_tables import parse_output_table
    from variant_etl.sinks.bigquery import BigQueryOptions

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


def _beam_options(beam_args: list[str], *, verbose: bool = False, shuffles: bool = False):
    from apache_beam.options.pipeline_options import DirectOptions, PipelineOptions, StandardOptions

    options = PipelineOptions(beam_args)
    if "--default_sdk_harness_log_level" not in " ".join(beam_args) and not verbose:
        # Worker processes log each failure with Beam's traceback; we print the cause ourselves.
        options = PipelineOptions(beam_args + ["--default_sdk_harness_log_level=CRITICAL"])
    standard = options.view_as(StandardOptions)
    if standard.runner is None:
        standard.runner = "DirectRunner"
    if standard.runner in ("DirectRunner", "direct"):
        direct = options.view_as(DirectOptions)
        if "--direct_num_workers" not in " ".join(beam_args):
            direct.direct_num_workers = 0  # all local cores
        if "--direct_running_mode" not in " ".join(beam_args):
            # Threads: the parsing, sharding and Parquet writing run in pyarrow with the GIL
            # released, and threads skip the ~3 s it takes to start Beam worker processes. A
            # merge through a shuffle is the exception: with threads, DirectRunner's shuffle
            # took 24 GB for 3 x 100k x 10 samples, against 2.6 GB with processes.
            direct.direct_running_mode = "multi_processing" if shuffles else "multi_threading"
    return options


def launch(args: argparse.Namespace, beam_args: list[str]) -> int:
    import apache_beam as beam

    from variant_etl.pipeline import build

    plan = _make_plan(args)
    for name in ("temp_location", "project"):  # ours and Beam's
        if getattr(args, name):
            beam_args = [*beam_args, f"--{name}={getattr(args, name)}"]
    shuffles = plan.merge.strategy != "NONE" and not plan.region_splits
    if args.dry_run:  # Beam's own option: only DataflowRunner acts on it
        beam_args = [*beam_args, "--dry_run=True"]
    options = _beam_options(beam_args, verbose=args.verbose, shuffles=shuffles)
    dry_run = _dataflow_dry_run(options)
    if args.dry_run and not dry_run:
        _print_plan(plan, args.format)
        return 0
    created = [] if dry_run else _prepare_bigquery(plan)
    progress = None if dry_run or args.no_progress else _progress(plan, options, args.progress_interval)
    try:
        with _worker_stderr(show=args.verbose):
            with beam.Pipeline(options=options) as p:
                build(p, plan, progress=progress.options if progress else None)
        if progress is not None:
            progress.stop()
        if dry_run:
            print(
                f"dry run: DataflowRunner translated the job ({len(plan.inputs)} input file(s), "
                f"{len(plan.sharding.shards)} shards); nothing was uploaded or submitted"
            )
            return 0
        if plan.bigquery is not None:
            from variant_etl.core.layout import HEADER_SUFFIX, SAMPLE_INFO_SUFFIX
            from variant_etl.sinks.bigquery import insert_run_rows
            from variant_etl.sinks.manifest import header_rows, sample_info_rows

            insert_run_rows(plan.bigquery, SAMPLE_INFO_SUFFIX, sample_info_rows(plan))
            insert_run_rows(plan.bigquery, HEADER_SUFFIX, header_rows(plan))
    except BaseException:
        _remove_temporary(plan)
        if created:
            from variant_etl.sinks.bigquery import delete_tables

            delete_tables(plan.bigquery, created)  # a retry starts clean
        raise
    finally:
        if progress is not None:
            progress.close()
    manifest_dir = (
        plan.parquet.output_dir
        if plan.parquet
        else (plan.sample_lookup.output_dir if plan.sample_lookup else plan.temp_dir)
    )
    with _remote(manifest_dir) as f:
        manifest = json.load(f)
    _print_summary(plan, manifest)
    if plan.parquet is not None and "://" not in plan.parquet.output_dir:
        from variant_etl.report import write_report

        try:  # the run is complete and committed: a report that fails must not fail it
            print(f"report: {write_report(plan.parquet.output_dir)}", file=sys.stderr)
        except Exception as err:
            print(f"warning: {plan.parquet.output_dir}/_report.html not written ({err})", file=sys.stderr)
    return 0


def _print_plan(plan, fmt: str) -> None:
    from variant_etl.plan import estimate_plan, plan_json, plan_text

    estimate = estimate_plan(plan)
    print(plan_json(plan, estimate) if fmt == "json" else plan_text(plan, estimate))


_LOCAL_RUNNERS = ("directrunner", "direct", "bundlebaseddirectrunner", "switchingdirectrunner")


class _Progress:
    """Progress lines while a local run reads: a directory the readers write into, and the
    thread that prints what they wrote (on the real stderr, which _worker_stderr holds back)."""

    def __init__(self, plan, interval: float):
        from variant_etl.core.progress import ProgressOptions, ProgressPrinter

        self.options = ProgressOptions(tempfile.mkdtemp(prefix="variant_etl-progress-"), interval)
        self._out = os.fdopen(os.dup(2), "w", encoding="utf-8", errors="replace")
        self._printer = ProgressPrinter(
            self.options, self._out, splits_per_file=plan.splits_per_input(), windows=len(plan.region_splits)
        ).start()
        self._stopped = False

    def stop(self) -> None:
        self._stopped = True
        self._printer.stop()

    def close(self) -> None:
        import shutil

        if not self._stopped:  # a failed run: no summary line, just no more lines
            self._printer.stop_quietly()
        self._out.close()
        shutil.rmtree(self.options.directory, ignore_errors=True)


def _progress(plan, options, interval: float) -> _Progress | None:
    from apache_beam.options.pipeline_options import StandardOptions

    runner = (options.view_as(StandardOptions).runner or "").rsplit(".", 1)[-1].lower()
    return _Progress(plan, interval) if runner in _LOCAL_RUNNERS else None


def _dataflow_dry_run(options) -> bool:
    """Beam's ``--dry_run=True``: DataflowRunner builds the job and returns before staging and
    submitting it (other runners ignore the option). Beam tests the option's string for truth."""
    from apache_beam.options.pipeline_options import StandardOptions, TestOptions

    runner = (options.view_as(StandardOptions).runner or "").rsplit(".", 1)[-1].lower()
    return bool(options.view_as(TestOptions).dry_run) and runner in ("dataflow", "dataflowrunner")


def _prepare_bigquery(plan) -> list[str]:
    if plan.bigquery is None:
        return []
    from variant_etl.core.schema import bigquery_fields, field_descriptions
    from variant_etl.sinks.bigquery import prepare_tables

    descriptions = field_descriptions(plan.schema)
    fields = bigquery_fields(plan.output_schema(), descriptions)
    created = prepare_tables(plan.bigquery, plan.sharding.shards, fields)
    if plan.sample_lookup_bigquery is None:
        return created
    from variant_etl.core.sample_lookup import PARTITIONING, lookup_schema
    from variant_etl.sinks.bigquery import delete_tables

    lookup_fields = bigquery_fields(lookup_schema(plan.output_schema()), descriptions)
    try:
        created += prepare_tables(
            plan.sample_lookup_bigquery,
            plan.sharding.shards,
            lookup_fields,
            partitioning=PARTITIONING,
            with_sample_info=False,
        )
    except BaseException:
        delete_tables(plan.bigquery, created)
        raise
    return created


def _print_summary(plan, manifest: dict) -> None:
    from variant_etl.core.layout import MANIFEST

    totals = manifest["totals"]
    print(
        f"read {totals['records_read']} records from {len(plan.inputs)} file(s): "
        f"{totals['rows_written']} rows written, {totals['malformed']} malformed, "
        f"{totals['dropped_no_matching_shard']} dropped (no matching shard)"
    )
    for shard in manifest["shards"]:
        if shard["rows"] or shard.get("bigquery_rows"):
            where = f"{len(shard['files'])} file(s)" if plan.parquet else shard["bigquery_table"]
            rows = shard["rows"] or shard.get("bigquery_rows")
            print(f"  {shard['table_name_suffix']}: {rows} rows in {where}")
    if plan.parquet is not None:
        out = plan.parquet.output_dir
        print(f"output: {out}/  (manifest: {out}/{MANIFEST})")
        print(
            'query:  duckdb -c "SELECT reference_name, count(*) '
            f"FROM read_parquet('{out}/*/*.parquet') GROUP BY 1\""
        )
    if plan.bigquery is not None:
        bq = plan.bigquery
        loaded = totals.get("rows_loaded_to_bigquery")
        print(f"BigQuery: {bq.project}.{bq.dataset}.{bq.table}__<suffix>, {loaded} rows")
    if plan.sample_lookup is not None:
        out = plan.sample_lookup.output_dir
        print(
            f"sample lookup: {out}/<table_name_suffix>/*.parquet, "
            f"{totals['sample_lookup_rows_written']} rows (one per call), sorted by sample_id"
        )
    if plan.sample_lookup_bigquery is not None:
        bq = plan.sample_lookup_bigquery
        loaded = totals.get("sample_lookup_rows_loaded_to_bigquery")
        print(f"sample lookup tables: {bq.project}.{bq.dataset}.{bq.table}__<suffix>, {loaded} rows")


def _remove_temporary(plan) -> None:
    """A failed run leaves no partial output: its temporary files go."""
    from apache_beam.io.filesystems import FileSystems

    with contextlib.suppress(Exception):
        if FileSystems.exists(plan.temp_dir):
            FileSystems.delete([plan.temp_dir])
        for output in (plan.parquet, plan.sample_lookup):
            if output is None:
                continue
            out = output.output_dir
            temp_dir = FileSystems.join(out, "_temporary", plan.run_id)
            if FileSystems.exists(temp_dir):
                FileSystems.delete([temp_dir])
            temp_root = FileSystems.join(out, "_temporary")
            for path in (temp_root, out):
                if (
                    FileSystems.exists(path)
                    and not FileSystems.match([FileSystems.join(path, "*")])[0].metadata_list
                ):
                    FileSystems.delete([path])


@contextlib.contextmanager
def _worker_stderr(*, show: bool):
    """Holds back what Beam's worker processes print to stderr (each failure's full
    traceback, unconditionally). Shown on --verbose, or when the failure is not ours."""
    if show:
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as held:
        os.dup2(held.fileno(), 2)
        try:
            yield
        except Exception as err:
            if not _OUR_ERRORS.search(str(err)):
                os.dup2(saved, 2)
                held.seek(0)
                sys.stderr.write(held.read().decode("utf-8", errors="replace"))
            raise
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)


def _remote(out: str):
    import io

    from variant_etl.core.layout import MANIFEST
    from variant_etl.plan import open_binary

    with open_binary(f"{out}/{MANIFEST}") as f:
        return io.StringIO(f.read().decode("utf-8"))


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        args, beam_args = parse_args(argv)
        if not getattr(args, "verbose", False):
            # Beam's workers log every failure with its traceback; we print the cause ourselves.
            logging.getLogger("apache_beam").setLevel(logging.CRITICAL)
        if args.command == "validate-config":
            path = args.path or bundled_config(DEFAULT_SHARDING_CONFIG)
            config = load_sharding_config(path)
            for shard in config.shards:
                spec = shard.partitioning
                regions = ", ".join(str(r) for r in shard.regions) or "residual"
                print(f"{shard.suffix}: {regions} (partitions of {spec.interval} up to {spec.end})")
            print(f"{path}: OK, {len(config.shards)} shard(s)")
            return 0
        if args.command == "export":
            from variant_etl.export import export_vcf

            return export_vcf(args)
        if args.command == "query":
            from variant_etl.query import query

            return query(args)
        if args.command == "plan":
            _print_plan(_make_plan(args), args.format)
            return 0
        if args.command == "report":
            from variant_etl.report import write_report

            print(f"report: {write_report(args.input_parquet_dir, args.output)}")
            return 0
        return launch(args, beam_args)
    except VariantEtlError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except Exception as err:  # Beam wraps worker exceptions; show ours without the traceback
        match = _OUR_ERRORS.search(str(err))
        if match:
            print(f"error: {match.group(2)}", file=sys.stderr)
            return 1
        raise
