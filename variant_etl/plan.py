"""Everything decided before the pipeline starts: input files, headers, the
merged schema, the sharding config and the read splits. All that can be
rejected is rejected here, before any worker starts."""

from __future__ import annotations

import dataclasses
import datetime
import gzip
import json
import logging
import os
import re
import struct
import uuid
import zlib

import numpy as np
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from variant_etl.core.annotations import Annotations, plan_annotations
from variant_etl.core.bgzf import block_starts, is_bgzf
from variant_etl.core.bigquery_tables import MAX_TABLE_NAME_LENGTH, shown
from variant_etl.core.choices import (  # noqa: F401  (also imported from here)
    DEFAULT_SHARDING_CONFIG,
    MERGE_STRATEGIES,
    SAMPLE_NAME_ENCODINGS,
    bundled_config,
)
from variant_etl.core.errors import OutputError, SchemaError, VariantEtlError, VcfFormatError
from variant_etl.core.estimate import (
    RecordEstimate,
    contig_lengths,
    estimate_bcf_prefix,
    estimate_from_index,
    estimate_from_text_prefix,
    parse_index,
)
from variant_etl.core.header import (
    MergedHeader,
    VcfHeader,
    header_overrides,
    merge_headers,
    redefines_own,
    representative_header,
)
from variant_etl.core.infer import FieldInference
from variant_etl.core.layout import HEADER_SUFFIX, SAMPLE_INFO_SUFFIX
from variant_etl.core.records import sample_id
from variant_etl.core.regions import RegionFile, RegionSplit, index_of, plan_region_splits
from variant_etl.core.schema import SchemaOptions, VariantSchema, build_schema
from variant_etl.core.sharding import ShardingConfig, load_sharding_config
from variant_etl.core.source import detect_format, read_header, record_lines
from variant_etl.sinks.bigquery import BigQueryOptions

INDEX_SUFFIXES = (".tbi", ".csi", ".gzi", ".crai", ".bai")
BGZF_RATIO = 4  # a VCF compresses about this much or more: bgzip ranges are split_bytes / 4


def open_binary(path: str):
    """Opens any path Beam knows (local, gs://, ...) without decompressing it."""
    return FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED)


@dataclasses.dataclass(frozen=True)
class ReadSplit:
    """A unit of reading: a whole file, or a byte range of a large uncompressed one.

    Splits with the same ``group`` (small files, one after another) are read by one task
    into one set of output files.
    """

    path: str
    samples: tuple[str, ...]
    # Definitions this file lacks or defines otherwise than the merged schema (from other
    # inputs, --representative_header_file, --allow_incompatible_records or inference).
    extra_header_lines: tuple[str, ...] = ()
    file_index: int = 0  # position of the file in the sorted input list
    sample_ids: tuple[int, ...] = ()
    # uncompressed text: the lines starting in [start, end); bgzip: the lines of BGZF blocks
    # [start, end) (core/bgzf.py)
    byte_range: tuple[int, int] | None = None
    part: int = 0  # number of this byte range in its file
    group: int = 0


@dataclasses.dataclass(frozen=True)
class MergeOptions:
    strategy: str = "NONE"
    bucket_size: int = 10_000_000  # bp of a merge key: bounds the memory of one group


@dataclasses.dataclass(frozen=True)
class ReadOptions:
    one_based: bool = False
    allow_malformed_records: bool = False
    batch_rows: int = 10_000
    split_bytes: int = 64 * 2**20  # uncompressed VCFs above this are read in parallel ranges
    # Whole files are read together, up to this many and this many bytes on disk a group.
    group_files: int = 100
    group_bytes: int = 8 * 2**20


@dataclasses.dataclass(frozen=True)
class ParquetOptions:
    output_dir: str
    compression: str = "zstd"
    row_group_rows: int = 100_000
    rows_per_file: int = 2_000_000
    overwrite: bool = False  # replace what the directory holds, at commit time


@dataclasses.dataclass(frozen=True)
class Plan:
    inputs: tuple[str, ...]
    headers: tuple[VcfHeader, ...]
    merged: MergedHeader
    schema: VariantSchema
    sharding: ShardingConfig
    splits: tuple[ReadSplit, ...]
    read: ReadOptions
    parquet: ParquetOptions | None
    run_id: str
    merge: MergeOptions = MergeOptions()
    started_at: str = ""  # UTC, to the minute: sample_info.ingestion_datetime
    # Merging indexed inputs: windows read through the indexes and merged in place.
    region_splits: tuple[RegionSplit, ...] = ()
    bigquery: BigQueryOptions | None = None
    sizes: tuple[int, ...] = ()  # bytes on disk of each input, as listed
    annotations: Annotations | None = None  # --annotation_fields, --annotate_with

    def output_schema(self):
        """The columns written: the parsed ones, plus the annotations under alternate_bases."""
        parsed = self.schema.arrow_schema()
        return parsed if self.annotations is None else self.annotations.output_schema(parsed)

    # The sample-lookup layout (one row per call, docs/sample_lookup.md): a Parquet directory
    # and/or a second set of BigQuery tables.
    sample_lookup: ParquetOptions | None = None
    sample_lookup_bigquery: BigQueryOptions | None = None

    @property
    def has_sample_lookup(self) -> bool:
        return self.sample_lookup is not None or self.sample_lookup_bigquery is not None

    @property
    def sample_lookup_temp_dir(self) -> str:
        return FileSystems.join(self.sample_lookup.output_dir, "_temporary", self.run_id)

    def ranked_sample_ids(self) -> list[int]:
        """Sample ids in the order merged calls take: by sample name, then file path."""
        pairs = sorted(
            (name, split.path, number)
            for split in self.splits
            for name, number in zip(split.samples, split.sample_ids)
        )
        return list(dict.fromkeys(number for _, _, number in pairs))

    @property
    def temp_dir(self) -> str:
        """Where this run's files wait until the commit (dead letters too)."""
        if self.parquet is not None:
            return FileSystems.join(self.parquet.output_dir, "_temporary", self.run_id)
        if self.sample_lookup is not None:
            return self.sample_lookup_temp_dir
        return self.bigquery.temp_dir

    def describe(self, estimate: PlanEstimate | None = None) -> dict:
        """A JSON-able summary (what `plan --format json` prints); with ``estimate``, the
        records of each input and the estimated rows of each shard."""
        described = {
            "inputs": [{"path": h.path, "samples": len(h.samples)} for h in self.headers],
            "schema": str(self.output_schema()).splitlines(),
            "sharding_config": self.sharding.path,
            "shards": [
                {
                    "table_name_suffix": s.suffix,
                    "regions": [str(r) for r in s.regions] or ["residual"],
                    "partitioning": s.partitioning.to_bigquery(),
                }
                for s in self.sharding.shards
            ],
            "splits": len(self.splits),
            "read_groups": len({split.group for split in self.splits}),
            "region_splits": len(self.region_splits),
            "output_parquet_dir": self.parquet.output_dir if self.parquet else None,
            "output_tables": [self.bigquery.table_id(s.suffix) for s in self.sharding.shards]
            if self.bigquery
            else None,
            "sample_lookup_parquet_dir": self.sample_lookup.output_dir if self.sample_lookup else None,
            "sample_lookup_tables": [
                self.sample_lookup_bigquery.table_id(s.suffix) for s in self.sharding.shards
            ]
            if self.sample_lookup_bigquery
            else None,
        }
        if estimate is None:
            return described
        splits = self.splits_per_input()
        for entry, path, size in zip(
            described["inputs"], self.inputs, self.sizes or [None] * len(self.inputs)
        ):
            found = estimate.inputs[path]
            entry.update(
                size_bytes=size,
                records=round(found.records),
                records_exact=found.exact,
                records_from=found.method,
                records_per_contig={k: round(v) for k, v in found.per_contig.items()},
                read_splits=splits[path],
            )
        for entry, rows in zip(described["shards"], estimate.shard_rows):
            entry["estimated_rows"] = round(rows)
        described["estimated_rows_dropped"] = round(estimate.dropped)
        described["estimates_count"] = estimate.counts
        return described

    def splits_per_input(self) -> dict[str, int]:
        counted = {path: 0 for path in self.inputs}
        for split in self.splits:
            counted[split.path] += 1
        return counted


def expand_inputs(patterns: list[str], input_file: str | None) -> dict[str, int]:
    """Expands --input_pattern globs and the patterns listed in --input_file: {path: size in
    bytes}, sorted by path (the sizes come with the listing: no request per file)."""
    all_patterns = list(patterns)
    if input_file:
        try:
            with FileSystems.open(input_file, compression_type=CompressionTypes.UNCOMPRESSED) as f:
                listed = f.read().decode("utf-8").splitlines()
        except OSError as err:
            raise VcfFormatError(f"--input_file {input_file}: cannot be read ({err})") from None
        listed = [line.strip() for line in listed if line.strip() and not line.startswith("#")]
        if not listed:
            raise VcfFormatError(f"--input_file {input_file}: lists no file pattern")
        all_patterns += listed
    # Beam's local filesystem does not match a bare 'x*.vcf': make local patterns absolute.
    all_patterns = [p if "://" in p else os.path.abspath(p) for p in all_patterns]
    sizes: dict[str, int] = {}
    for pattern, result in zip(all_patterns, FileSystems.match(all_patterns)):
        found = {m.path: m.size_in_bytes for m in result.metadata_list if not m.path.endswith(INDEX_SUFFIXES)}
        if not found:
            raise VcfFormatError(
                f"input pattern {pattern!r} matches no file. Hint: quote the pattern so the "
                "shell does not expand it, and check the path."
            )
        sizes.update(found)
    for path in sizes:
        if "://" not in path and os.path.isdir(path):
            raise VcfFormatError(
                f"input {path} is a directory, not a VCF/BCF file. "
                f"Hint: match the files inside it, e.g. --input_pattern '{os.path.join(path, '*.vcf.gz')}'"
            )
    return dict(sorted(sizes.items()))


def _read_header(path: str, what: str = "input") -> VcfHeader:
    try:
        return read_header(path, open_binary)
    except OSError as err:  # opening failed (read_header reports what fails after that)
        raise VcfFormatError(f"{what} {path} cannot be opened ({err.strerror or err})") from None


def make_plan(
    *,
    input_patterns: list[str],
    input_file: str | None,
    sharding_config_path: str | None,
    read: ReadOptions,
    parquet: ParquetOptions | None,
    infer_headers: bool = False,
    schema_options: SchemaOptions | None = None,
    merge: MergeOptions | None = None,
    representative_header_file: str | None = None,
    allow_incompatible_records: bool = False,
    sample_name_encoding: str = "WITHOUT_FILE_PATH",
    bigquery: BigQueryOptions | None = None,
    annotation_fields: tuple[str, ...] = (),
    annotate_with: str | None = None,
    annotate_fields: tuple[str, ...] = (),
    sample_lookup: ParquetOptions | None = None,
    sample_lookup_bigquery: BigQueryOptions | None = None,
) -> Plan:
    schema_options = schema_options or SchemaOptions()
    merge = merge or MergeOptions()
    _check_merge_options(merge, schema_options)
    # The cheap checks first: a bad config or output must not wait for every header to be read.
    sharding = load_sharding_config(sharding_config_path or bundled_config(DEFAULT_SHARDING_CONFIG))
    if parquet is not None:
        _check_output_dir(parquet.output_dir, parquet.overwrite)
    if sample_lookup is not None:
        _check_sample_lookup_dir(sample_lookup, parquet)
    if bigquery is not None:
        _check_table_names(bigquery, sharding)
    if sample_lookup_bigquery is not None:
        _check_sample_lookup_tables(sample_lookup_bigquery, bigquery, sharding)
    sizes = expand_inputs(input_patterns, input_file)
    inputs = tuple(sizes)
    headers = tuple(_read_header(path) for path in inputs)
    if representative_header_file:
        merged = representative_header(
            _read_header(representative_header_file, "--representative_header_file"), list(headers)
        )
    else:
        merged = merge_headers(list(headers), allow_incompatible=allow_incompatible_records)
    if infer_headers:
        merged = _with_inferred_fields(merged, inputs)
    try:
        schema = build_schema(merged, schema_options)
    except re.error as err:
        raise SchemaError(
            f"--info_keys_to_move_to_calls_regex {schema_options.info_keys_to_move_to_calls_regex!r} "
            f"is not a valid regular expression ({err})"
        ) from None
    annotations = plan_annotations(
        merged.infos,
        [c.name for c in schema.alt_columns],
        list(annotation_fields),
        _local_file(annotate_with, "--annotate_with") if annotate_with else None,
        list(annotate_fields),
    )
    max_samples = max((len(h.samples) for h in headers), default=0)
    if max_samples == 0 and (sample_lookup is not None or sample_lookup_bigquery is not None):
        flag = "--sample_lookup_parquet_dir" if sample_lookup else "--sample_lookup_optimized_output_table"
        raise VariantEtlError(
            f"{flag}: no input has samples (all {len(headers)} are sites-only), so there is no call to "
            f"write a row for. Hint: remove {flag}, or add inputs with sample columns."
        )
    # Keep a batch near a million values, whether they are sites or calls.
    batch_rows = max(100, min(read.batch_rows, 1_000_000 // max(1, max_samples)))
    read = dataclasses.replace(read, batch_rows=batch_rows)
    with_path = sample_name_encoding == "WITH_FILE_PATH"
    splits = []
    for index, h in enumerate(headers):
        common = dict(
            path=h.path,
            samples=h.samples,
            extra_header_lines=header_overrides(h, merged),
            file_index=index,
            sample_ids=tuple(sample_id(name, h.path if with_path else None) for name in h.samples),
        )
        ranges = _byte_ranges(h, sizes[h.path], read.split_bytes)
        splits += [ReadSplit(**common, byte_range=r, part=part) for part, r in enumerate(ranges)]
    splits = _group_small_files(splits, sizes, read)
    _check_sample_ids(splits, merge)
    region_splits = _region_splits(headers, splits, merged, merge) if merge.strategy != "NONE" else ()
    now = datetime.datetime.now(datetime.timezone.utc).replace(second=0, microsecond=0)
    return Plan(
        inputs=inputs,
        headers=headers,
        merged=merged,
        schema=schema,
        sharding=sharding,
        splits=splits,
        read=read,
        parquet=parquet,
        run_id=uuid.uuid4().hex[:12],
        merge=merge,
        started_at=now.strftime("%Y-%m-%dT%H:%M:%S"),
        region_splits=region_splits,
        bigquery=bigquery,
        annotations=annotations,
        sample_lookup=sample_lookup,
        sample_lookup_bigquery=sample_lookup_bigquery,
        sizes=tuple(sizes[path] for path in inputs),
    )


def _local_file(path: str, option: str) -> str:
    """An annotation file is opened by htslib on each worker: a local path, as workers see it."""
    if "://" in path:
        raise VcfFormatError(f"{option} {path}: must be a local file (htslib opens it on each worker)")
    if not os.path.isfile(path):
        raise VcfFormatError(f"{option} {path}: no such file")
    return os.path.abspath(path)


def _region_splits(headers, splits, merged: MergedHeader, merge: MergeOptions) -> tuple[RegionSplit, ...]:
    """Windows to merge in place when every input is indexed; else () and a warning."""
    unindexed = [h.path for h in headers if index_of(h.path, FileSystems.exists) is None]
    redefined = [h.path for h in headers if redefines_own(h, merged)]
    if unindexed or redefined:
        why = (
            f"{len(unindexed)} input(s) have no .tbi/.csi index (e.g. {unindexed[0]})"
            if unindexed
            else f"{redefined[0]} must be parsed with other definitions than its own"
        )
        logging.getLogger(__name__).warning(
            "merging through a shuffle, because %s. On DirectRunner Beam keeps all shuffled data in "
            "memory; bgzip and index the inputs (bgzip f.vcf; tabix -p vcf f.vcf.gz) to merge "
            "window by window with bounded memory.",
            why,
        )
        return ()
    files = [RegionFile(s.path, s.file_index, s.samples, s.sample_ids) for s in splits if s.part == 0]
    return plan_region_splits(files, merge.bucket_size)


def _byte_ranges(header: VcfHeader, size: int, split_bytes: int) -> list[tuple[int, int] | None]:
    """Large uncompressed VCFs are cut into line-aligned byte ranges read in parallel; large
    bgzipped ones into ranges of BGZF blocks (core/bgzf.py), about a quarter of
    ``split_bytes`` of compressed data each."""
    if header.body_offset is not None:
        if size - header.body_offset <= split_bytes:
            return [None]
        starts = list(range(header.body_offset, size, split_bytes))
        return [(start, min(start + split_bytes, size)) for start in starts]
    every = max(1, split_bytes // BGZF_RATIO)
    if size <= every or detect_format(header.path, open_binary) != "gzip":
        return [None]
    with open_binary(header.path) as raw:
        if not is_bgzf(raw):
            return [None]
        starts = block_starts(raw, size, every)
    return list(zip(starts, starts[1:] + [size])) if len(starts) > 1 else [None]


def _group_small_files(
    splits: list[ReadSplit], sizes: dict[str, int], read: ReadOptions
) -> tuple[ReadSplit, ...]:
    """Numbers groups of consecutive whole files, so that a thousand small files cost a
    few tasks and output files, not one each. A byte range is a group of its own."""
    grouped: list[ReadSplit] = []
    group, files, total = -1, 0, 0  # the group being filled: its number, files and bytes
    for split in splits:
        size = sizes[split.path]
        fits = 0 < files < read.group_files and total + size <= read.group_bytes
        if split.byte_range is not None or not fits:
            group, files, total = group + 1, 0, 0
        grouped.append(dataclasses.replace(split, group=group))
        files, total = (files + 1, total + size) if split.byte_range is None else (read.group_files, 0)
    return tuple(grouped)


def _check_merge_options(merge: MergeOptions, options: SchemaOptions) -> None:
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


def _check_sample_ids(splits: tuple[ReadSplit, ...], merge: MergeOptions) -> None:
    """Two different sample names must not share an id (a 64-bit hash: it never happens
    by chance, but the check is cheap)."""
    names: dict[int, str] = {}
    for split in splits:
        for name, number in zip(split.samples, split.sample_ids):
            if names.setdefault(number, name) != name:
                raise VariantEtlError(
                    f"samples {names[number]!r} and {name!r} hash to the same sample_id {number}"
                )


def _with_inferred_fields(merged: MergedHeader, inputs: tuple[str, ...]) -> MergedHeader:
    """Adds definitions for INFO/FORMAT keys the records use but no header declares."""
    inference = FieldInference(merged.infos, merged.formats)
    for path in inputs:
        try:
            for line in record_lines(path, open_binary):
                inference.add_line(line)
        except (OSError, EOFError) as err:
            raise VcfFormatError(f"{path}: cannot be read to infer headers ({err})") from None
    infos, formats = inference.definitions()
    if infos or formats:
        found = [f"INFO/{k} ({f.type}, Number={f.number})" for k, f in infos.items()]
        found += [f"FORMAT/{k} ({f.type}, Number={f.number})" for k, f in formats.items()]
        logging.getLogger(__name__).warning("--infer_headers: inferred %s", ", ".join(found))
    return dataclasses.replace(merged, infos={**merged.infos, **infos}, formats={**merged.formats, **formats})


def _check_sample_lookup_dir(lookup: ParquetOptions, parquet: ParquetOptions | None) -> None:
    flag = "--sample_lookup_parquet_dir"
    if parquet is not None:
        one, other = (_normalised(d) for d in (lookup.output_dir, parquet.output_dir))
        if one == other or one.startswith(other + "/") or other.startswith(one + "/"):
            raise OutputError(
                f"{flag} {lookup.output_dir} and --output_parquet_dir {parquet.output_dir} overlap: both "
                "hold <table_name_suffix>/ directories. Hint: choose two separate directories, "
                "e.g. out/variants and out/sample_lookup."
            )
    _check_output_dir(lookup.output_dir, lookup.overwrite, flag)


def _normalised(path: str) -> str:
    return path.rstrip("/") if "://" in path else os.path.abspath(path)


def _check_output_dir(output_dir: str, overwrite: bool, flag: str = "--output_parquet_dir") -> None:
    if "://" not in output_dir:
        _check_local_output_dir(output_dir, flag)
    if overwrite:
        return  # the commit step replaces the old output once the new one is complete
    manifest = FileSystems.join(output_dir, "_manifest.json")
    if FileSystems.exists(manifest):
        raise OutputError(
            f"{output_dir} already holds a completed run ({manifest} exists). "
            f"Hint: pass --overwrite to replace it, choose a new {flag}, or delete it."
        )
    if FileSystems.exists(output_dir):
        leftovers = FileSystems.match([FileSystems.join(output_dir, "*")])[0].metadata_list
        if leftovers:
            names = sorted({os.path.basename(m.path.rstrip("/")) for m in leftovers})
            if any(name != "_temporary" for name in names):
                raise OutputError(
                    f"{output_dir} is not empty ({', '.join(names[:5])}...). "
                    f"Hint: pass --overwrite to replace its content, choose a new {flag}, "
                    "or delete it first."
                )


def _check_local_output_dir(output_dir: str, flag: str) -> None:
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


def _check_table_names(bigquery: BigQueryOptions, sharding: ShardingConfig) -> None:
    """Shard tables are TABLE__<suffix>; BigQuery table names are at most 1024 characters."""
    for suffix in [s.suffix for s in sharding.shards] + [SAMPLE_INFO_SUFFIX, HEADER_SUFFIX]:
        name = bigquery.table_id(suffix).rsplit(".", 1)[-1]
        if len(name) > MAX_TABLE_NAME_LENGTH:
            raise OutputError(
                f"--output_table table {shown(bigquery.table)} with table_name_suffix {shown(suffix)} "
                f"gives a table name of {len(name)} characters; BigQuery allows {MAX_TABLE_NAME_LENGTH}. "
                "Hint: choose a shorter --output_table TABLE."
            )


@dataclasses.dataclass(frozen=True, eq=False)
class PlanEstimate:
    """Records per input (exact from an index or a whole read, else extrapolated) and the rows
    they give each shard when routed through the sharding config."""

    inputs: dict[str, RecordEstimate]
    shard_rows: list[float]
    dropped: float
    counts: str  # what the shard estimates count


def estimate_plan(plan: Plan) -> PlanEstimate:
    """Cheap: reads each input's index, or a few MB of its records, never a whole large file."""
    sizes = plan.sizes or (None,) * len(plan.headers)
    inputs = {h.path: estimate_input(h, size) for h, size in zip(plan.headers, sizes)}
    points: dict[str, list] = {}
    spans = []
    for found in inputs.values():
        for contig, starts in found.points.items():
            points.setdefault(contig, []).append(starts)
        spans += [(s.contig, s.start, s.end, s.rows) for s in found.spans]
    joined = {contig: np.concatenate(parts) for contig, parts in points.items()}
    rows, dropped = plan.sharding.estimate_rows(joined, spans)
    if plan.merge.strategy == "NONE":
        counts = "a row per input record (no merging)"
    else:
        counts = (
            f"input records, not merged rows: {plan.merge.strategy} makes one row of the records "
            "of a site across files, so a shard gets at most this many rows"
        )
    return PlanEstimate(inputs, rows, dropped, counts)


def estimate_input(header: VcfHeader, size: int | None = None) -> RecordEstimate:
    path = header.path
    index = index_of(path, FileSystems.exists)
    if index is not None:
        try:
            with open_binary(index) as f:
                data = gzip.decompress(f.read())
            return estimate_from_index(parse_index(data, header.contigs), os.path.basename(index))
        except (OSError, EOFError, ValueError, struct.error, zlib.error):
            pass  # an index we cannot read: the records tell
    try:
        fmt = detect_format(path, open_binary)
        if size is None:
            size = FileSystems.match([path])[0].metadata_list[0].size_in_bytes
        if fmt == "bcf":
            if "://" in path:
                return RecordEstimate(0.0, False, "unknown (an unindexed remote BCF)", {})
            return estimate_bcf_prefix(path, size)
        with open_binary(path) as raw:
            return estimate_from_text_prefix(raw, fmt=fmt, size=size, lengths=contig_lengths(header.lines))
    except (OSError, ValueError, VariantEtlError) as err:  # the reader will say what is wrong
        return RecordEstimate(0.0, False, f"unknown ({err})", {})


def plan_json(plan: Plan, estimate: PlanEstimate | None = None) -> str:
    return json.dumps(plan.describe(estimate), indent=2)


def plan_text(plan: Plan, estimate: PlanEstimate) -> str:
    """The plan for people: inputs, read splits, shards with partitioning and estimated rows."""
    splits = plan.splits_per_input()
    sizes = plan.sizes or (0,) * len(plan.inputs)
    lines = [
        f"plan: {len(plan.inputs)} input file(s), {human_bytes(sum(sizes))}; "
        f"{len(plan.sharding.shards)} shard(s) from {_shown_path(plan.sharding.path)}",
        "",
        "inputs",
    ]
    rows = [("path", "size", "samples", "records", "read splits", "records from")]
    for h, size in zip(plan.headers, sizes):
        found = estimate.inputs[h.path]
        records = f"{round(found.records):,}" if found.exact else f"~{round(found.records):,}"
        rows.append(
            (
                _shown_path(h.path),
                human_bytes(size),
                f"{len(h.samples):,}",
                records,
                str(splits[h.path]),
                found.method,
            )
        )
    lines += _table(rows, right=(1, 2, 3, 4))
    groups = len({split.group for split in plan.splits})
    read = f"read: {len(plan.splits)} split(s) in {groups} task(s)"
    if plan.region_splits:
        read += f"; merged in place: {len(plan.region_splits):,} window(s) of {plan.merge.bucket_size:,} bp"
    elif plan.merge.strategy != "NONE":
        read += f"; merged through a shuffle in buckets of {plan.merge.bucket_size:,} bp"
    lines += ["", read, "", f"shards (estimated rows: {estimate.counts})"]
    rows = [("suffix", "regions", "partitions of start_position", "estimated rows")]
    for shard, estimated in zip(plan.sharding.shards, estimate.shard_rows):
        spec = shard.partitioning
        regions = ", ".join(str(r) for r in shard.regions) or "residual"
        partitions = f"[{spec.start:,}, {spec.end:,}) by {spec.interval:,}"
        rows.append((shard.suffix, regions, partitions, f"{round(estimated):,}"))
    lines += _table(rows, right=(3,))
    total = sum(estimate.shard_rows)
    exact = all(found.exact for found in estimate.inputs.values())
    lines.append(
        f"total: {'' if exact else '~'}{round(total):,} rows in shards, "
        f"{round(estimate.dropped):,} dropped (no matching shard)"
    )
    if any(region.start is not None for shard in plan.sharding.shards for region in shard.regions):
        lines.append(
            "  (rows of a position-range shard are apportioned by the index bins or the sampled "
            "positions: an estimate even when the file's total is exact)"
        )
    lines += [
        "",
        f"schema: {len(plan.output_schema())} top-level columns (plan --format json lists them)",
    ]
    if plan.parquet is not None:
        lines.append(f"output: {plan.parquet.output_dir} (Parquet)")
    if plan.bigquery is not None:
        lines.append(f"output: {plan.bigquery.table_id('<suffix>')} (BigQuery)")
    if plan.sample_lookup is not None:
        lines.append(f"output: {plan.sample_lookup.output_dir} (Parquet, sample lookup: a row per call)")
    if plan.sample_lookup_bigquery is not None:
        table = plan.sample_lookup_bigquery.table_id("<suffix>")
        lines.append(f"output: {table} (BigQuery, sample lookup: a row per call)")
    return "\n".join(lines)


def _shown_path(path: str) -> str:
    """Local paths under the working directory are shown relative to it (shorter to read)."""
    here = os.getcwd() + os.sep
    return path[len(here) :] if "://" not in path and path.startswith(here) else path


def _table(rows: list[tuple[str, ...]], right: tuple[int, ...] = ()) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    out = []
    for row in rows:
        cells = [
            cell.rjust(w) if i in right else cell.ljust(w) for i, (cell, w) in enumerate(zip(row, widths))
        ]
        out.append("  " + "  ".join(cells).rstrip())
    return out


def human_bytes(n: int) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"


def _check_sample_lookup_tables(
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
