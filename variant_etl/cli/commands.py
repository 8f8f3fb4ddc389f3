"""What each command does and prints, from its parsed arguments."""

from __future__ import annotations

import argparse
import functools
import importlib

from variant_etl.core.options import DEFAULT_SHARDING_CONFIG, bundled_config
from variant_etl.core.sharding import load_sharding_config


def run(args: argparse.Namespace, beam_args: list[str]) -> int:
    return _COMMANDS[args.command](args, beam_args)


# The module each command runs on (its function below imports from it): `load` imports it
# ahead, while cli.main holds the garbage collector off.
_MODULES = {
    "export": "variant_etl.outputs.export",
    "query": "variant_etl.outputs.query",
    "report": "variant_etl.outputs.report",
    "preprocess": "variant_etl.plan.preprocess",
    "plan": "variant_etl.cli.planning",
    "launch": "variant_etl.cli.launch",
}


def load(command: str) -> None:
    if command in _MODULES:
        importlib.import_module(_MODULES[command])


def validate_config(args: argparse.Namespace, _beam_args: list[str]) -> int:
    path = args.path or bundled_config(DEFAULT_SHARDING_CONFIG)
    config = load_sharding_config(path)
    for shard in config.shards:
        spec = shard.partitioning
        regions = ", ".join(str(r) for r in shard.regions) or "residual"
        print(f"{shard.suffix}: {regions} (partitions of {spec.interval} up to {spec.end})")
    print(f"{path}: OK, {len(config.shards)} shard(s)")
    return 0


def export(args: argparse.Namespace, beam_args: list[str]) -> int:
    from variant_etl.outputs.export import export_vcf

    pipeline = {}
    if beam_args:  # the pieces written by a Beam pipeline (imported only then: a fast start)
        from variant_etl.cli.launch import export_parts_dir, run_export_parts

        pipeline = dict(
            run_parts=functools.partial(run_export_parts, beam_args=beam_args),
            parts_dir=export_parts_dir(beam_args),
        )
    written, samples = export_vcf(
        args.output_vcf,
        input_parquet_dir=args.input_parquet_dir,
        input_table=args.input_table,
        genomic_regions=args.genomic_regions,
        sample_names=args.sample_names,
        project=args.project,
        null_numeric_value_replacement=args.null_numeric_value_replacement,
        regions_by_start_position=args.genomic_regions_by_start_position,
        **pipeline,
    )
    index = " and its index (.tbi or .csi)" if args.output_vcf.endswith(".gz") else ""
    print(f"wrote {written} records of {samples} sample(s) to {args.output_vcf}{index}")
    return 0


def query(args: argparse.Namespace, _beam_args: list[str]) -> int:
    from variant_etl.outputs.query import query as run_query

    rows = run_query(
        args.input_parquet_dir,
        genomic_regions=args.genomic_regions,
        sample_names=args.sample_names,
        columns=args.columns,
        output=args.output,
        limit=args.limit,
        regions_by_start_position=args.genomic_regions_by_start_position,
    )
    if args.output:
        print(f"{rows} row(s) written to {args.output}")
    return 0


def report(args: argparse.Namespace, _beam_args: list[str]) -> int:
    from variant_etl.outputs.report import write_report

    print(f"report: {write_report(args.input_parquet_dir, args.output)}")
    return 0


def preprocess(args: argparse.Namespace, _beam_args: list[str]) -> int:
    from variant_etl.plan.preprocess import preprocess as run_preprocess

    found = run_preprocess(
        args.input_pattern,
        args.input_file,
        report_path=args.report_path,
        resolved_headers_path=args.resolved_headers_path,
        report_all_conflicts=args.report_all_conflicts,
    )
    counts = [f"{len(found.conflicts):,} header conflict(s)"]
    if found.inferred is not None:
        counts.append(f"{len(found.inferred):,} inferred definition(s)")
        counts.append(f"{len(found.malformed):,} malformed record(s)")
    print(f"report: {args.report_path}: {', '.join(counts)}")
    if args.resolved_headers_path:
        print(f"resolved headers: {args.resolved_headers_path} (for launch --representative_header_file)")
    return 0


def plan(args: argparse.Namespace, _beam_args: list[str]) -> int:
    from variant_etl.cli.planning import make_plan_of, print_plan

    print_plan(make_plan_of(args), args.format)
    return 0


def launch(args: argparse.Namespace, beam_args: list[str]) -> int:
    from variant_etl.cli.launch import launch as run_launch

    return run_launch(args, beam_args)


_COMMANDS = {
    "validate-config": validate_config,
    "export": export,
    "query": query,
    "report": report,
    "preprocess": preprocess,
    "plan": plan,
    "launch": launch,
}
