"""The rules checked after parsing, before any work: an option that neither we nor Beam know is
an error (Beam would drop it without a word), and so is one the others make pointless."""

from __future__ import annotations

import argparse
import difflib
import sys

from variant_etl.cli.parser import (
    VT_ABSENT,
    VT_EXPORT_ABSENT,
    VT_EXPORT_IGNORED,
    VT_IGNORED,
    build_parser,
    option_names,
)
from variant_etl.core.errors import VariantEtlError


def parse_args(argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
    """Our options, and the rest for Beam. Before any work: an option neither we nor Beam know
    is an error (Beam would drop it without a word), and so is one the others make pointless."""
    args, rest = build_parser().parse_known_args(argv)
    if args.command == "preprocess":  # VT's ran on Beam: its Beam options are known, and unused
        _check_beam_args(rest, ours=[], beam=True)
        if rest:
            print(
                f"warning: {' '.join(rest)}: Beam options are ignored: preprocess reads the inputs in "
                "this process",
                file=sys.stderr,
            )
        return args, []
    if args.command == "export":  # Beam options: a pipeline writes the pieces (docs/export.md)
        _check_beam_args(rest, ours=[], beam=True)
        _check_vt_options(args, VT_EXPORT_IGNORED, VT_EXPORT_ABSENT)
        return args, rest
    if args.command in ("validate-config", "query", "report"):  # no pipeline: no Beam option
        _check_beam_args(rest, ours=[], beam=False)
        return args, rest
    ours = option_names()
    _check_beam_args(rest, ours=list(ours), beam=True)
    _check_vt_options(args, VT_IGNORED, VT_ABSENT)
    _check_combinations(args, _given(argv, ours))
    return args, rest


def _check_vt_options(args: argparse.Namespace, ignored: dict, absent: dict) -> None:
    """gcp-variant-transforms' options (None when not given) without effect here: a warning
    each; those whose feature is missing: an error, unless they ask for what happens anyway
    (``--move_hom_ref_calls false``)."""
    for name, (_, why) in ignored.items():
        if getattr(args, name[2:]) is not None:
            print(f"warning: {name} is ignored: {why}", file=sys.stderr)
    for name, (_, why, instead) in absent.items():
        if getattr(args, name[2:]) not in (None, False):
            raise VariantEtlError(f"{name}: {why}. Hint: {instead}")


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


def _given(argv: list[str], ours: dict[str, str]) -> set[str]:
    """Our options written on the command line (no abbreviations: a name is written whole), by
    the name they spell (an alias by its option's name)."""
    given = set()
    for arg in argv:
        if arg == "--":
            break
        name = arg.split("=", 1)[0]
        if name in ours:
            given.add(ours[name])
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
    "--infer_annotation_types": ("--annotation_fields", "it types the sub-fields of annotation strings"),
    "--minimal_vep_alt_matching": ("--annotation_fields", "it places the annotations of VEP --minimal"),
    "--overwrite": (_PARQUET, "it replaces what the Parquet output directory holds"),
    "--take_over": (_PARQUET, "it claims the Parquet output directories from a run that died"),
    "--parquet_compression": (_PARQUET, "it sets how the Parquet files are compressed"),
    "--parquet_row_group_size": (_PARQUET, "it sets the row groups of the Parquet files"),
    "--parquet_rows_per_file": (_PARQUET, "it sets the size of the Parquet files"),
}
_NEEDED_VALUE = {
    "--output_table": " PROJECT:DATASET.TABLE",
    "--output_parquet_dir": " DIR",
    "--sample_lookup_parquet_dir": " DIR",
    "--annotate_with": " FILE.vcf.gz",
    "--annotation_fields": " CSQ",
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
        if (
            option in given
            and getattr(args, option[2:]) is not False
            and not any(getattr(args, name[2:]) for name in choices)
        ):
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
