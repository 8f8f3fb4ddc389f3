"""The inputs: expanding patterns, reading headers into one schema, cutting read splits. What
``ReadVcf`` decides at construction, and ``launch`` through it."""

from __future__ import annotations

import dataclasses
import logging
import os
import re

from apache_beam.io.filesystems import FileSystems

from variant_etl.core.annotations import Annotations, AnnotationTypes, plan_annotations
from variant_etl.core.bgzf import block_starts, is_bgzf
from variant_etl.core.errors import SchemaError, VcfFormatError
from variant_etl.core.header import (
    MergedHeader,
    VcfHeader,
    header_overrides,
    merge_headers,
    redefines_own,
    representative_header,
)
from variant_etl.core.infer import FieldInference
from variant_etl.core.options import (
    AnnotationOptions,
    HeaderOptions,
    MergeOptions,
    ReadOptions,
    SchemaOptions,
)
from variant_etl.core.records import sample_id
from variant_etl.core.regions import SIDECAR_SUFFIXES, RegionFile, RegionSplit, index_of, plan_region_splits
from variant_etl.core.schema import build_schema
from variant_etl.core.source import detect_format, open_source, read_header, record_lines
from variant_etl.core.splits import ReadSplit
from variant_etl.filesystems import Prefetch, open_binary
from variant_etl.plan.model import SourcePlan
from variant_etl.plan.rules import check_merge_options, check_sample_ids

# bgzip ranges are split_bytes / 16 of compressed data (a VCF compresses 4-8 times): 4 MB, about
# the text of a quarter or an eighth of a 64 MB plain range. Smaller ranges keep two workers busy
# to the end and hold less at once (2-core machine, medians of 3-4): against / 8, 100k x 100
# samples 6.45 s / 778 MB -> 6.08 s / 640 MB, 10k x 2,500 14.3 -> 13.7 s, 4M sites 10.8 s either
# way in 596 -> 501 MB; against / 4, 10k x 2,500 17.0 s / 1.57 GB -> 14.7 s / 1.04 GB (/ 8).
BGZF_RATIO = 16
# Calls of all inputs in a merge window of indexed inputs (~100 bytes each in memory).
CALLS_PER_WINDOW = 2_000_000


def expand_inputs(patterns: list[str], input_file: str | None) -> dict[str, int]:
    """Expands --input_pattern globs and the patterns listed in --input_file: {path: size in
    bytes}, sorted by path (the sizes come with the listing: no request per file)."""
    all_patterns = list(patterns)
    if input_file:
        try:
            with open_binary(input_file) as f:
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
        listed = result.metadata_list
        found = {m.path: m.size_in_bytes for m in listed if not m.path.endswith(SIDECAR_SUFFIXES)}
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


def _read_header(path: str, what: str = "input", opener=open_binary) -> VcfHeader:
    try:
        return read_header(path, opener)
    except OSError as err:  # opening failed (read_header reports what fails after that)
        raise VcfFormatError(f"{what} {path} cannot be opened ({err.strerror or err})") from None


def plan_source(
    input_patterns: str | list[str],
    input_file: str | None = None,
    *,
    read: ReadOptions | None = None,
    headers: HeaderOptions | None = None,
    schema_options: SchemaOptions | None = None,
    merge: MergeOptions | None = None,
) -> SourcePlan:
    """Lists the inputs, reads and merges their headers into one schema and cuts the read
    splits (with a merge of indexed inputs, the genomic windows merged in place)."""
    read, headers = read or ReadOptions(), headers or HeaderOptions()
    schema_options, merge = schema_options or SchemaOptions(), merge or MergeOptions()
    check_merge_options(merge, schema_options)
    patterns = [input_patterns] if isinstance(input_patterns, str) else list(input_patterns)
    if not patterns and not input_file:
        raise VcfFormatError("no input: pass --input_pattern 'data/*.vcf.gz' or --input_file list.txt")
    sizes = expand_inputs(patterns, input_file)
    inputs = tuple(sizes)
    headers_read, ranges, indexed = [], {}, {}
    with Prefetch(inputs) as files:  # each input read once, in order, from its prefetched head
        for path in inputs:
            headers_read.append(_read_header(path, opener=files.open))
            ranges[path] = _byte_ranges(headers_read[-1], sizes[path], read.split_bytes, files.open)
            if merge.strategy != "NONE":
                indexed[path] = index_of(path, files.exists) is not None
    parsed = tuple(headers_read)
    if headers.representative_header_file:
        merged = representative_header(
            _read_header(headers.representative_header_file, "--representative_header_file"), list(parsed)
        )
    else:
        merged = merge_headers(list(parsed), allow_incompatible=headers.allow_incompatible_records)
    if headers.infer_headers:
        merged = _with_inferred_fields(merged, inputs)
    try:
        schema = build_schema(merged, schema_options)
    except re.error as err:
        raise SchemaError(
            f"--info_keys_to_move_to_calls_regex {schema_options.info_keys_to_move_to_calls_regex!r} "
            f"is not a valid regular expression ({err})"
        ) from None
    max_samples = max((len(h.samples) for h in parsed), default=0)
    # Keep a batch near a million values, whether they are sites or calls.
    batch_rows = max(100, min(read.batch_rows, 1_000_000 // max(1, max_samples)))
    read = dataclasses.replace(read, batch_rows=batch_rows, cast_values=headers.allow_incompatible_records)
    with_path = headers.sample_name_encoding == "WITH_FILE_PATH"
    splits = []
    for index, h in enumerate(parsed):
        common = dict(
            path=h.path,
            samples=h.samples,
            extra_header_lines=header_overrides(h, merged),
            file_index=index,
            sample_ids=tuple(sample_id(name, h.path if with_path else None) for name in h.samples),
        )
        splits += [ReadSplit(**common, byte_range=r, part=part) for part, r in enumerate(ranges[h.path])]
    splits = _group_small_files(splits, sizes, read)
    check_sample_ids(splits)
    region_splits = _region_splits(parsed, indexed, splits, merged, merge) if merge.strategy != "NONE" else ()
    return SourcePlan(
        inputs=inputs,
        headers=parsed,
        merged=merged,
        schema=schema,
        splits=splits,
        read=read,
        merge=merge,
        region_splits=region_splits,
        sizes=tuple(sizes[path] for path in inputs),
    )


def local_file(path: str, option: str) -> str:
    """An annotation file is opened by htslib on each worker: a local path, as workers see it."""
    if "://" in path:
        raise VcfFormatError(f"{option} {path}: must be a local file (htslib opens it on each worker)")
    if not os.path.isfile(path):
        raise VcfFormatError(f"{option} {path}: no such file")
    return os.path.abspath(path)


def _region_splits(
    headers, indexed: dict[str, bool], splits, merged: MergedHeader, merge: MergeOptions
) -> tuple[RegionSplit, ...]:
    """Windows to merge in place when every input is indexed; else () and a warning."""
    unindexed = [h.path for h in headers if not indexed[h.path]]
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
    # Sparse inputs get fewer, wider windows (fewer, larger files, fewer reads of each input);
    # the rows do not change: a gVCF window is merged bucket by bucket.
    return plan_region_splits(files, merge.bucket_size, calls_per_window=CALLS_PER_WINDOW)


def _byte_ranges(header: VcfHeader, size: int, split_bytes: int, opener) -> list[tuple[int, int] | None]:
    """Large uncompressed VCFs are cut into line-aligned byte ranges read in parallel; large
    bgzipped ones into ranges of BGZF blocks (core/bgzf.py), about a sixteenth of
    ``split_bytes`` of compressed data each."""
    if header.body_offset is not None:
        if size - header.body_offset <= split_bytes:
            return [None]
        starts = list(range(header.body_offset, size, split_bytes))
        return [(start, min(start + split_bytes, size)) for start in starts]
    every = max(1, split_bytes // BGZF_RATIO)
    if size <= every or detect_format(header.path, opener) != "gzip":
        return [None]
    with opener(header.path) as raw:
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


def _with_inferred_fields(merged: MergedHeader, inputs: tuple[str, ...]) -> MergedHeader:
    """Adds definitions for INFO/FORMAT keys the records use but no header declares."""
    inference = FieldInference(merged.infos, merged.formats)
    for path in inputs:
        try:
            for line in record_lines(path, open_binary):
                inference.add_line(line)
        except (OSError, EOFError) as err:
            raise VcfFormatError(f"{path}: cannot be read to infer headers ({err})") from None
    found = inference.resolutions()
    if found:
        logging.getLogger(__name__).warning("--infer_headers: %s", "; ".join(r.describe() for r in found))
    infos = {r.field.id: r.field for r in found if r.kind == "INFO"}
    formats = {r.field.id: r.field for r in found if r.kind == "FORMAT"}
    return dataclasses.replace(
        merged,
        infos={**merged.infos, **infos},
        formats={**merged.formats, **formats},
        resolutions=merged.resolutions + tuple(found),
    )


def source_annotations(source: SourcePlan, options: AnnotationOptions) -> Annotations | None:
    """The annotations ``options`` ask for, checked against the source's headers; with
    ``infer_annotation_types``, their sub-fields typed from one pass over the records."""
    planned = plan_annotations(
        source.merged.infos,
        [c.name for c in source.schema.alt_columns],
        list(options.annotation_fields),
        local_file(options.annotate_with, "--annotate_with") if options.annotate_with else None,
        list(options.annotate_fields),
    )
    if planned is None:
        return None
    if options.infer_annotation_types and planned.split:
        types = AnnotationTypes(list(planned.split))
        for path in source.inputs:
            for field_id, value in _info_values(path, [f.id for f in planned.split]):
                types.add(field_id, value)
        planned = dataclasses.replace(planned, split=tuple(types.typed(f) for f in planned.split))
    return dataclasses.replace(planned, minimal_alt_matching=options.minimal_vep_alt_matching)


def _info_values(path: str, ids: list[str]):
    """(INFO ID, value as written) of the given IDs in every record of a VCF or BCF."""
    if detect_format(path, open_binary) == "bcf":
        with open_source(path, open_binary) as source:
            for record in source.records():
                if isinstance(record, Exception):
                    continue  # the load reports it
                for field_id in ids:
                    value = record.info.get(field_id)
                    if value is not None:
                        yield field_id, ",".join(value) if isinstance(value, tuple) else value
        return
    wanted = {f"{field_id}=": field_id for field_id in ids}
    try:
        for line in record_lines(path, open_binary):
            info = line.split("\t", 8)[7] if line.count("\t") >= 7 else ""
            for entry in info.split(";"):
                key, eq, value = entry.partition("=")
                if eq and key + "=" in wanted:
                    yield key, value.rstrip("\r\n")
    except (OSError, EOFError) as err:
        raise VcfFormatError(f"{path}: cannot be read to infer annotation types ({err})") from None
