"""Reading sorted, indexed inputs region by region (bgzip + .tbi/.csi, or BCF + .csi).

A region split is one window [start, end) of one contig, read from every input
through its index. With a merge strategy, the rows of all inputs in the window
are merged right there: no shuffle, and memory bounded by one window.
A record belongs to the window its start lies in, so each is read (and counted)
exactly once; gVCF blocks that start earlier are also read, to be cut at the edge.
"""

from __future__ import annotations

import dataclasses
import functools
import os
from collections.abc import Callable, Iterator

import pyarrow as pa
import pysam

from variant_etl.core.errors import VcfFormatError
from variant_etl.core.reader import MALFORMED_HINT, Malformed, record_text
from variant_etl.core.records import BatchBuilder, MalformedRecord
from variant_etl.core.schema import START_POSITION, VariantSchema
from variant_etl.core.source import detect_format, read_header
from variant_etl.core.textparse import Fallback, TextParser

INDEX_SUFFIXES = (".tbi", ".csi")  # the indexes that region reads use
# Files that sit beside the inputs and are never inputs themselves.
SIDECAR_SUFFIXES = (*INDEX_SUFFIXES, ".gzi", ".crai", ".bai")
# Without a contig length, windows go up to the largest position an index can hold.
TBI_MAX_POSITION = 2**29
CSI_MAX_POSITION = 2**31


def index_of(path: str, exists: Callable[[str], bool] = os.path.exists) -> str | None:
    """The .tbi/.csi next to a bgzipped VCF or a BCF, if there is one."""
    for suffix in INDEX_SUFFIXES:
        if exists(path + suffix):
            return path + suffix
    return None


@dataclasses.dataclass(frozen=True)
class RegionFile:
    path: str
    file_index: int
    samples: tuple[str, ...]
    sample_ids: tuple[int, ...]


@dataclasses.dataclass(frozen=True)
class RegionSplit:
    contig: str
    start: int
    end: int
    files: tuple[RegionFile, ...]

    @property
    def key(self) -> str:
        return f"r{self.start:011d}:{self.contig}"


def contig_spans(path: str, index: str) -> dict[str, int]:
    """Contigs with records in the file (from its index) and how far to read on each."""
    with pysam.VariantFile(path) as variant_file:
        limit = CSI_MAX_POSITION if index.endswith(".csi") else TBI_MAX_POSITION
        spans = {}
        for contig in variant_file.index.keys():
            declared = variant_file.header.contigs.get(contig)
            length = declared.length if declared is not None and declared.length else None
            spans[contig] = length or limit
        return spans


def plan_region_splits(files: list[RegionFile], window: int) -> tuple[RegionSplit, ...]:
    """Windows of ``window`` bases over every contig any input has records on."""
    spans: dict[str, int] = {}
    for region_file in files:
        index = index_of(region_file.path)
        for contig, span in contig_spans(region_file.path, index).items():
            spans[contig] = max(spans.get(contig, 0), span)
    splits = []
    for contig in sorted(spans):
        for start in range(0, spans[contig], window):
            splits.append(RegionSplit(contig, start, min(start + window, spans[contig]), tuple(files)))
    return tuple(splits)


def read_region(
    split: RegionSplit,
    schema: VariantSchema,
    *,
    one_based: bool,
    allow_malformed: bool,
    keep_overlapping: bool,
    counts: dict[str, int],
) -> Iterator[pa.Table | Malformed]:
    """Yields one table per input (rows with ``_origin``) and Malformed entries.

    ``counts[path]`` gets the records whose start lies in the window. With
    ``keep_overlapping`` the records that start before the window and reach into
    it are in the tables too (not counted: their own window counts them).
    """
    for region_file in split.files:
        fast = _read_window_fast(region_file, split, schema, one_based, keep_overlapping)
        if fast is not None:
            table, counted = fast
            counts[region_file.path] = counts.get(region_file.path, 0) + counted
            if table.num_rows:
                yield table
            continue
        builder = BatchBuilder(
            schema,
            region_file.samples,
            one_based=one_based,
            sample_ids=region_file.sample_ids,
            file_index=region_file.file_index,
        )
        counted = 0
        try:
            variant_file = pysam.VariantFile(region_file.path)
        except (OSError, ValueError) as err:
            raise VcfFormatError(f"{region_file.path}: htslib cannot read this file ({err})") from None
        with variant_file:
            if split.contig not in variant_file.index:
                counts[region_file.path] = counts.get(region_file.path, 0)
                continue
            records = variant_file.fetch(split.contig, split.start, split.end)
            number = 0
            while True:
                try:
                    record = next(records)
                except StopIteration:
                    break
                except (OSError, ValueError) as err:
                    counted += 1
                    entry = _malformed(region_file.path, split, number, "record", "", f"htslib: {err}", "")
                    if not allow_malformed:
                        raise VcfFormatError(entry.message() + MALFORMED_HINT) from None
                    yield entry
                    continue
                number += 1
                home = record.start >= split.start
                if home:
                    counted += 1
                elif not keep_overlapping:
                    continue
                try:
                    builder.add(record, number)
                except MalformedRecord as err:
                    if not home:
                        continue  # its own window reports it
                    entry = _malformed(
                        region_file.path,
                        split,
                        number,
                        err.field,
                        str(err.value),
                        err.reason,
                        record_text(record) or "",
                    )
                    if not allow_malformed:
                        raise VcfFormatError(entry.message() + MALFORMED_HINT) from None
                    yield entry
        counts[region_file.path] = counts.get(region_file.path, 0) + counted
        batch = builder.flush()
        if batch is not None:
            yield pa.Table.from_batches([batch])


def _read_window_fast(
    region_file: RegionFile,
    split: RegionSplit,
    schema: VariantSchema,
    one_based: bool,
    keep_overlapping: bool,
) -> tuple[pa.Table, int] | None:
    """A bgzipped VCF's window: its lines through the tabix index, parsed by TextParser.
    None when pysam must read it (BCF, or a line TextParser hands back)."""
    if detect_format(region_file.path) != "gzip":
        return None
    header = _own_header(region_file.path)
    try:
        with pysam.TabixFile(region_file.path, encoding="utf-8") as tabix:
            if split.contig not in tabix.contigs:
                return pa.table({}), 0
            lines = list(tabix.fetch(split.contig, split.start, split.end))
    except (OSError, ValueError):
        return None
    if not lines:
        return pa.table({}), 0
    parser = TextParser(
        schema,
        header.infos,
        header.formats,
        header.samples,
        filters=header.filters,
        one_based=one_based,
        sample_ids=region_file.sample_ids,
        file_index=region_file.file_index,
    )
    try:
        # record numbers from 1 in the window, as the pysam path counts them
        batch = parser.parse(("\n".join(lines) + "\n").encode("utf-8"), 1)
    except Fallback:
        return None
    home = batch.column(START_POSITION).to_numpy() >= split.start + (1 if one_based else 0)
    table = pa.Table.from_batches([batch if keep_overlapping else batch.filter(pa.array(home))])
    return table, int(home.sum())


# Every window reads every input's header: with more inputs than the cache holds, a window's
# files pushed each other out and each header was read again (100 inputs x 322 windows).
@functools.lru_cache(maxsize=4096)
def _own_header(path: str):
    return read_header(path)


def _malformed(path, split, number, field, value, reason, raw) -> Malformed:
    return Malformed(
        file=path,
        line=None,
        record=number,
        field=field,
        value=value,
        reason=f"{reason} (record {number} of region {split.contig}:{split.start + 1}-{split.end})",
        raw=raw,
    )
