"""Reading sorted, indexed inputs region by region (bgzip + .tbi/.csi, or BCF + .csi).

A region split is one window [start, end) of one contig, read from every input
through its index. With a merge strategy, the rows of all inputs in the window
are merged right there: no shuffle, and memory bounded by one window.
A record belongs to the window its start lies in, so each is read (and counted)
exactly once; gVCF blocks that start earlier are also read, to be cut at the edge.
"""

from __future__ import annotations

import bisect
import collections
import contextlib
import dataclasses
import functools
import itertools
import os
import struct
from collections.abc import Callable, Iterator
from typing import BinaryIO

import numpy as np
import pyarrow as pa
import pysam
import pysam.bcftools

from variant_etl.core import bgzf
from variant_etl.core.errors import VcfFormatError
from variant_etl.core.merge import positions_within
from variant_etl.core.reader import MALFORMED_HINT, Malformed, record_text
from variant_etl.core.records import BatchBuilder, MalformedRecord
from variant_etl.core.schema import END_POSITION, ORIGIN_FILE_SHIFT, START_POSITION, VariantSchema
from variant_etl.core.source import detect_format, read_header
from variant_etl.core.tabix import TextIndex
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
    limit = CSI_MAX_POSITION if index.endswith(".csi") else TBI_MAX_POSITION
    own = _readable_index(path)
    if own is not None:
        lengths = _own_header(path).contig_lengths
        return {contig: lengths.get(contig) or limit for contig in own.contigs}
    with pysam.VariantFile(path) as variant_file:
        spans = {}
        for contig in variant_file.index.keys():
            declared = variant_file.header.contigs.get(contig)
            length = declared.length if declared is not None and declared.length else None
            spans[contig] = length or limit
        return spans


def plan_region_splits(
    files: list[RegionFile], window: int, *, calls_per_window: int | None = None
) -> tuple[RegionSplit, ...]:
    """Windows of ``window`` bases over every contig any input has records on. With
    ``calls_per_window``, windows of whole multiples of ``window``, as many on a contig as
    hold about that many calls of all the inputs (as their indexes count the records)."""
    spans: dict[str, int] = {}
    for region_file in files:
        index = index_of(region_file.path)
        for contig, span in contig_spans(region_file.path, index).items():
            spans[contig] = max(spans.get(contig, 0), span)
    calls = _calls_per_contig(files) if calls_per_window else {}
    splits = []
    for contig in sorted(spans):
        buckets = -(-spans[contig] // window)
        width = window
        if contig in calls:
            windows = max(1, -(-calls[contig] // calls_per_window))
            width = window * max(1, -(-buckets // windows))
        for start in range(0, spans[contig], width):
            splits.append(RegionSplit(contig, start, min(start + width, spans[contig]), tuple(files)))
    return tuple(splits)


CHUNK_BYTES = 4 << 20  # of a window's text parsed at once (as core/reader.py reads files)
# Inputs whose indexes are read for their record counts: the rest are taken to be alike.
COUNTED_FILES = 16


def _calls_per_contig(files: list[RegionFile]) -> dict[str, int]:
    """Calls (records x samples, at least 1 a record) per contig over all inputs, estimated from
    the record counts in the indexes of the first COUNTED_FILES inputs. {} when an index has no
    counts (htslib writes them; some other tools do not)."""
    counted = files[:COUNTED_FILES]
    calls: dict[str, float] = {}
    for region_file in counted:
        records = records_per_contig(region_file.path)
        if records is None:
            return {}
        for contig, number in records.items():
            calls[contig] = calls.get(contig, 0) + number * max(1, len(region_file.samples))
    scale = len(files) / max(1, len(counted))
    return {contig: int(total * scale) for contig, total in calls.items()}


def records_per_contig(path: str) -> dict[str, int] | None:
    """The records of each contig with records, as the file's index counts them (`bcftools index
    -s`), or None: a bgzipped VCF's index read by core/tabix.py, else by bcftools."""
    own = _readable_index(path)
    if own is not None:
        return {contig: own.records(contig) for contig in own.contigs}
    try:
        text = pysam.bcftools.index("-s", path)
    except (pysam.utils.SamtoolsError, OSError, ValueError):
        return None
    records = {}
    for line in text.splitlines():
        fields = line.split("\t")
        if len(fields) != 3 or not fields[2].isdigit():
            return None
        records[fields[0]] = int(fields[2])
    return records


# What reading an index this reader cannot use raises (pysam reads the file then).
INDEX_ERRORS = (OSError, ValueError, EOFError, struct.error)


def text_index(path: str) -> TextIndex:
    """The parsed .tbi/.csi of a bgzipped VCF, read once per process while unchanged: a local
    run's plan and worker threads share it."""
    index = index_of(path)
    if index is None:
        raise OSError(f"{path}: no index")
    stat = os.stat(index)
    return _parsed_index(index, stat.st_mtime_ns, stat.st_size)


def _readable_index(path: str) -> TextIndex | None:
    """A bgzipped VCF's index as core/tabix.py reads it; None for a BCF or an index it refuses."""
    if _format(path) != "gzip":
        return None
    try:
        return text_index(path)
    except INDEX_ERRORS:
        return None


@functools.lru_cache(maxsize=256)
def _parsed_index(index: str, _mtime_ns: int, _size: int) -> TextIndex:
    with open(index, "rb") as raw:
        return TextIndex(bgzf.decompress(raw))


class OpenFiles:
    """The bgzipped inputs one reader keeps open from window to window, each with its parsed
    index (``text_index``). At most ``limit`` stay open, the least recently used closed first.
    A handle (a file position) serves one thread: keep one per DoFn instance."""

    def __init__(self, limit: int = 256):
        self._limit = limit
        self._open: collections.OrderedDict[str, tuple[BinaryIO, TextIndex]] = collections.OrderedDict()

    def text(self, path: str) -> tuple[BinaryIO, TextIndex]:
        """The file, open, and its index. Raises INDEX_ERRORS on an index this reader cannot
        use (pysam reads the file then)."""
        handle = self._open.pop(path, None)
        if handle is None:
            index = text_index(path)  # (first: a file it refuses is not left open)
            handle = (open(path, "rb"), index)
            while len(self._open) >= self._limit:
                self._open.popitem(last=False)[1][0].close()
        self._open[path] = handle
        return handle

    def close(self) -> None:
        while self._open:
            self._open.popitem()[1][0].close()


def read_region(
    split: RegionSplit,
    schema: VariantSchema,
    *,
    one_based: bool,
    allow_malformed: bool,
    keep_overlapping: bool,
    counts: dict[str, int],
    open_files: OpenFiles | None = None,
) -> Iterator[pa.Table | Malformed]:
    """Yields tables of rows with ``_origin`` and Malformed entries.

    ``counts[path]`` gets the records whose start lies in the window. With
    ``keep_overlapping`` the records that start before the window and reach into
    it are in the tables too (not counted: their own window counts them).
    """
    if open_files is None:  # handles for this window only
        with contextlib.closing(OpenFiles()) as own:
            yield from read_region(
                split, schema, one_based=one_based, allow_malformed=allow_malformed,
                keep_overlapping=keep_overlapping, counts=counts, open_files=own,
            )  # fmt: skip
        return
    left = []  # what pysam reads: BCF, or lines TextParser hands back
    fast = _FastWindow(split, schema, one_based, keep_overlapping)
    for region_file in split.files:
        if not fast.add(region_file, open_files):
            left.append(region_file)
    for path in fast.empty:
        counts[path] = counts.get(path, 0)
    parsed, unparsed = fast.parse()
    for table, file_counts in parsed:
        for path, counted in file_counts.items():
            counts[path] = counts.get(path, 0) + counted
        if table.num_rows:
            yield table
    for region_file in left + unparsed:
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
            if variant_file.index is None:
                raise VcfFormatError(f"{region_file.path}: htslib cannot use its index")
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


_Member = tuple[RegionFile, bytes, np.ndarray]  # a file, its lines in a window, their ends


class _FastWindow:
    """A window's lines of bgzipped VCFs, fetched through their tabix indexes and parsed by
    TextParser: the lines of every file with the same definitions (and, with call names, the
    same samples) as one chunk, since a chunk's parse costs about the same for 60 lines as for
    6,000. A group TextParser hands back is parsed file by file; a file it hands back again is
    left to pysam (``add`` returns False, or ``parse`` lists it)."""

    def __init__(self, split: RegionSplit, schema: VariantSchema, one_based: bool, keep_overlapping: bool):
        self._split = split
        self._schema = schema
        self._one_based = one_based
        self._keep_overlapping = keep_overlapping
        self._groups: dict[tuple, list[_Member]] = {}
        self.empty: list[str] = []  # files with no lines in the window

    def add(self, region_file: RegionFile, open_files: OpenFiles) -> bool:
        """Reads the file's lines in the window; False when pysam must read it."""
        if _format(region_file.path) != "gzip":
            return False
        try:
            text, ends = _window_text(*open_files.text(region_file.path), self._split, self._keep_overlapping)
        except INDEX_ERRORS:
            return False
        if not len(ends):
            self.empty.append(region_file.path)
        else:
            key = _parse_key(region_file.path, self._schema.options.include_call_name)
            self._groups.setdefault(key, []).append((region_file, text, ends))
        return True

    def parse(self) -> tuple[list[tuple[pa.Table, dict[str, int]]], list[RegionFile]]:
        """[(rows, records counted per file)], and the files pysam must read."""
        parsed, unparsed = [], []
        for members in self._groups.values():
            together = self._parse(members) if len(members) > 1 else None
            if together is not None:
                parsed.append(together)
                continue
            for member in members:
                alone = self._parse([member])
                if alone is None:
                    unparsed.append(member[0])
                else:
                    parsed.append(alone)
        return parsed, unparsed

    def _parse(self, members: list[_Member]) -> tuple[pa.Table, dict[str, int]] | None:
        first = members[0][0]
        header = _own_header(first.path)
        parser = TextParser(
            self._schema,
            header.infos,
            header.formats,
            header.samples,
            filters=header.filters,
            one_based=self._one_based,
            sample_ids=first.sample_ids,
            file_index=first.file_index,
        )
        sizes = np.array([len(ends) for _, _, ends in members])
        member_of_row = np.repeat(np.arange(len(members)), sizes)
        # record numbers from 1 in the window, as the pysam path counts them
        number = positions_within(sizes).astype(np.int64) + 1
        file_indexes = np.array([f.file_index for f, _, _ in members], dtype=np.int64)
        origin = (file_indexes[member_of_row] << ORIGIN_FILE_SHIFT) | number
        sample_ids = np.array([f.sample_ids for f, _, _ in members], dtype=np.int64)[member_of_row].ravel()
        per_row = len(first.sample_ids)
        # one text of every file's lines, cut into chunks of about CHUNK_BYTES at line ends, as a
        # file's text is read: a whole contig of 100 files (49 MB) parsed as one took 3 times as long
        text = b"".join(text for _, text, _ in members)
        bases = np.cumsum([0] + [len(text) for _, text, _ in members[:-1]])
        ends = np.concatenate([ends + base for (_, _, ends), base in zip(members, bases)])
        cuts = np.searchsorted(ends, np.arange(CHUNK_BYTES, len(text), CHUNK_BYTES)) + 1
        cuts = np.unique(np.minimum([0, *cuts, len(ends)], len(ends)))
        batches = []
        try:
            for a, b in itertools.pairwise(cuts.tolist()):
                chunk = text[ends[a - 1] if a else 0 : ends[b - 1]]
                batches.append(
                    parser.parse(chunk, origin=origin[a:b], sample_ids=sample_ids[a * per_row : b * per_row])
                )
        except Fallback:
            return None
        table = pa.Table.from_batches(batches)
        home = table.column(START_POSITION).to_numpy() >= self._split.start + (1 if self._one_based else 0)
        counted = np.bincount(member_of_row[home], minlength=len(members))
        counts = {f.path: int(c) for (f, _, _), c in zip(members, counted)}
        if self._keep_overlapping:  # and the records before the window that reach into it
            reach = table.column(END_POSITION).to_numpy() > self._split.start
            return (table if reach.all() else table.filter(pa.array(home | reach))), counts
        return table, counts


def _window_text(
    raw: BinaryIO, index: TextIndex, split: RegionSplit, with_earlier: bool
) -> tuple[bytes, np.ndarray]:
    """The lines of the records that start in the window (``with_earlier``: and of those before
    it from where the index says records reaching into it may start), and where each line ends.
    Read from the index's lower bound on, a block at a time, up to the first line that starts
    past the window."""
    span = index.span(split.contig, split.start)
    if span is None:
        return b"", np.zeros(0, np.int64)
    pieces = []
    for piece in bgzf.read_between(raw, *span):
        pieces.append(piece)
        if _past(piece, split):
            break
    text = b"".join(pieces)
    if text and text[-1] != 10:
        text += b"\n"
    ends = np.flatnonzero(np.frombuffer(text, np.uint8) == 10) + 1
    starts = np.concatenate([[0], ends[:-1]])

    def start_of(line: int) -> int:
        return _line_start(text, int(starts[line]), split.contig)

    lines = range(len(ends))  # sorted by start: the window's are those that start in it
    stop = bisect.bisect_left(lines, split.end, key=start_of)
    first = 0 if with_earlier else bisect.bisect_left(lines, split.start, hi=stop, key=start_of)
    if first == 0 and stop == len(ends):
        return text, ends
    if first == stop:
        return b"", np.zeros(0, np.int64)
    begin = int(starts[first])
    return text[begin : int(ends[stop - 1])], ends[first:stop] - begin


def _past(piece: bytes, split: RegionSplit) -> bool:
    """Whether the last line that starts in a block of text starts past the window."""
    last = piece.rfind(b"\n", 0, len(piece) - 1)
    try:
        return last >= 0 and _line_start(piece, last + 1, split.contig) >= split.end
    except ValueError:  # (cut by the block's end before its position ends)
        return False


def _line_start(text: bytes, at: int, contig: str) -> int:
    """The 0-based start of the record whose line begins at ``at``; past any window when the line
    is another contig's. ValueError when it has no position (an empty line too: htslib does not
    index a file with one, another indexer might)."""
    chrom_end = text.index(b"\t", at)
    pos_end = text.index(b"\t", chrom_end + 1)
    if text.find(b"\n", at, pos_end) >= 0:
        raise ValueError("not a record line")
    if text[at:chrom_end].decode() != contig:
        return CSI_MAX_POSITION << 1
    return int(text[chrom_end + 1 : pos_end]) - 1


@functools.lru_cache(maxsize=4096)
def _format(path: str) -> str:
    return detect_format(path)


@functools.lru_cache(maxsize=4096)
def _parse_key(path: str, with_names: bool) -> tuple:
    """Files whose lines TextParser parses alike."""
    header = _own_header(path)
    samples = header.samples if with_names else len(header.samples)
    return (tuple(header.infos.items()), tuple(header.formats.items()), header.filters, samples)


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
