"""The checks made before any header is read or any worker starts, each with its message."""

from __future__ import annotations

import os

from apache_beam.io.filesystems import FileSystems

from variant_etl.core.bigquery_tables import MAX_TABLE_NAME_LENGTH, shown
from variant_etl.core.errors import OutputError, VariantEtlError
from variant_etl.core.layout import HEADER_SUFFIX, MANIFEST, SAMPLE_INFO_SUFFIX
from variant_etl.core.manifest import files_of, normalised_dir
from variant_etl.core.options import (
    MERGE_STRATEGIES,
    BigQueryOptions,
    MergeOptions,
    ParquetOptions,
    SchemaOptions,
)
from variant_etl.core.sharding import ShardingConfig
from variant_etl.core.splits import ReadSplit
from variant_etl.filesystems.claims import claimed_error, listed_files, read_claim, read_manifest


def check_merge_options(merge: MergeOptions, options: SchemaOptions) -> None:
    if merge.strategy not in MERGE_STRATEGIES:
        raise VariantEtlError(
            f"--variant_merge_strategy must be one of {', '.join(MERGE_STRATEGIES)}, got {merge.strategy!r}"
        )
    if merge.strategy != "MOVE_TO_CALLS":
        used = [
            flag
            for flag, value in (
                ("--copy_quality_to_calls", options.copy_quality_to_calls),
                ("--copy_filter_to_calls", options.copy_filter_to_calls),
                ("--info_keys_to_move_to_calls_regex", options.info_keys_to_move_to_calls_regex),
            )
            if value
        ]
        if used:
            raise VariantEtlError(
                f"{', '.join(used)} only apply with --variant_merge_strategy MOVE_TO_CALLS "
                f"(got {merge.strategy})"
            )
    if merge.bucket_size <= 0:
        raise VariantEtlError(
            f"--merge_bucket_size must be a positive number of bases, got {merge.bucket_size}"
        )


def check_sample_ids(splits: tuple[ReadSplit, ...]) -> None:
    """Two different sample names must not share an id (a 64-bit hash: it never happens
    by chance, but the check is cheap)."""
    names: dict[int, str] = {}
    for split in splits:
        for name, number in zip(split.samples, split.sample_ids):
            if names.setdefault(number, name) != name:
                raise VariantEtlError(
                    f"samples {names[number]!r} and {name!r} hash to the same sample_id {number}"
                )


def check_dirs_apart(lookup: ParquetOptions, parquet: ParquetOptions) -> None:
    one, other = (normalised_dir(d) for d in (lookup.output_dir, parquet.output_dir))
    if one == other or one.startswith(other + "/") or other.startswith(one + "/"):
        raise OutputError(
            f"--sample_lookup_parquet_dir {lookup.output_dir} and --output_parquet_dir {parquet.output_dir} "
            "overlap: both hold <table_name_suffix>/ directories. Hint: choose two separate directories, "
            "e.g. out/variants and out/sample_lookup."
        )


def check_output_dir(
    output_dir: str,
    overwrite: bool,
    flag: str = "--output_parquet_dir",
    *,
    claimed_by: str | None = None,
    taking_over: str | None = None,
) -> str | None:
    """The directory must be new or empty, or (``overwrite``) hold one completed run and only
    its files, and no other run may claim it (but run ``claimed_by``: this one). A claim of run
    ``taking_over`` (dead, --take_over) ends the check: launch checks again once it has removed
    what that run left. Returns the run_id of the output --overwrite replaces, or None."""
    if "://" not in output_dir:
        check_local_output_dir(output_dir, flag)
    holder = read_claim(output_dir)
    if holder is not None and holder.run_id == taking_over:
        return None
    if holder is not None and holder.run_id != claimed_by:
        raise claimed_error(output_dir, holder, flag)
    manifest = read_manifest(output_dir)
    files = listed_files(output_dir)
    if manifest is None:
        if files:
            raise OutputError(
                f"{output_dir} is not empty and holds no completed run ({', '.join(files[:5])}"
                f"{', ...' if len(files) > 5 else ''}). Hint: choose a new {flag}, or move those files "
                "away; nothing here is removed that a run of this package did not write."
            )
        return None
    if not overwrite:
        raise OutputError(
            f"{output_dir} already holds a completed run ({FileSystems.join(output_dir, MANIFEST)} exists). "
            f"Hint: pass --overwrite to replace it, choose a new {flag}, or delete it."
        )
    run_id = str(manifest.get("run_id"))
    own = set(files_of(manifest, output_dir))
    foreign = [name for name in files if name not in own]
    if foreign:
        raise OutputError(
            f"{output_dir} holds {len(foreign)} file(s) that its run {run_id} did not write "
            f"({', '.join(foreign[:5])}{', ...' if len(foreign) > 5 else ''}); --overwrite replaces only "
            f"that run's files. Hint: move them out of the directory, or choose a new {flag}."
        )
    return run_id


def check_local_output_dir(output_dir: str, flag: str) -> None:
    """The directory, or the nearest of its ancestors that exists, must be a writable directory."""
    path = os.path.abspath(output_dir)
    while not os.path.exists(path):
        path = os.path.dirname(path)
    if not os.path.isdir(path):
        which = "is" if path == os.path.abspath(output_dir) else f"is under {path}, which is"
        raise OutputError(
            f"{flag} {output_dir} {which} a file, not a directory. "
            f"Hint: choose a {flag} that is or can become a directory."
        )
    if not os.access(path, os.W_OK | os.X_OK):
        which = "" if path == os.path.abspath(output_dir) else f" (its nearest existing ancestor, {path})"
        raise OutputError(
            f"{flag} {output_dir}{which} is not writable by this user. "
            "Hint: choose a directory you can write to, or fix its permissions."
        )


def check_table_names(bigquery: BigQueryOptions, sharding: ShardingConfig) -> None:
    """Shard tables are TABLE__<suffix>; BigQuery table names are at most 1024 characters."""
    for suffix in [s.suffix for s in sharding.shards] + [SAMPLE_INFO_SUFFIX, HEADER_SUFFIX]:
        name = bigquery.table_id(suffix).rsplit(".", 1)[-1]
        if len(name) > MAX_TABLE_NAME_LENGTH:
            raise OutputError(
                f"--output_table table {shown(bigquery.table)} with table_name_suffix {shown(suffix)} "
                f"gives a table name of {len(name)} characters; BigQuery allows {MAX_TABLE_NAME_LENGTH}. "
                "Hint: choose a shorter --output_table TABLE."
            )


def check_sample_lookup_tables(
    lookup: BigQueryOptions, bigquery: BigQueryOptions | None, sharding: ShardingConfig
) -> None:
    flag = "--sample_lookup_optimized_output_table"
    if bigquery is None:
        raise OutputError(f"{flag} needs --output_table (it writes a second copy of those tables)")
    if (lookup.project, lookup.dataset, lookup.table) == (bigquery.project, bigquery.dataset, bigquery.table):
        raise OutputError(
            f"{flag} and --output_table both name {lookup.project}:{lookup.dataset}.{lookup.table}: the "
            f"two sets of tables would be the same. Hint: e.g. --output_table ...{lookup.table} and "
            f"{flag} ...{lookup.table}_samples"
        )
    for suffix in [s.suffix for s in sharding.shards]:
        name = lookup.table_id(suffix).rsplit(".", 1)[-1]
        if len(name) > MAX_TABLE_NAME_LENGTH:
            raise OutputError(
                f"{flag} table {shown(lookup.table)} with table_name_suffix {shown(suffix)} gives a table "
                f"name of {len(name)} characters; BigQuery allows {MAX_TABLE_NAME_LENGTH}. "
                f"Hint: choose a shorter {flag} TABLE."
            )


def check_sample_lookup_has_samples(source, parquet: bool) -> None:
    """The sample-lookup layout has a row per call: inputs without samples give it nothing."""
    if source.max_samples == 0:
        flag = "--sample_lookup_parquet_dir" if parquet else "--sample_lookup_optimized_output_table"
        raise VariantEtlError(
            f"{flag}: no input has samples (all {len(source.headers)} are sites-only), so there is no "
            f"call to write a row for. Hint: remove {flag}, or add inputs with sample columns."
        )
