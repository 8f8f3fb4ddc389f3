"""Cheap estimates of how many records an input holds, and where on the genome.

Two sources, neither of which reads a whole large file:

* the index (``.tbi``/``.csi``): htslib writes, per reference sequence, a pseudo-bin with the
  number of records mapped to it (what ``bcftools index --stats`` prints). That count is exact;
  how it spreads along the contig comes from the bins' chunk sizes (bytes of data per genomic
  bin), which is only approximate.
* a prefix of the records (a few MB of text): counts per contig and bytes per record,
  extrapolated to the file's size. A file that fits in the prefix is counted exactly.

An estimate is a set of sampled record starts (each one record) plus spans over which a number
of records is spread evenly; ``ShardingConfig.estimate_rows`` routes both to shards. Positions
are 0-based starts, as ``start_position``.
"""

from __future__ import annotations

import bisect
import bz2
import dataclasses
import functools
import gzip
import struct
import zlib
from collections.abc import Callable
from typing import BinaryIO

import numpy as np

from variant_etl.core.header import parse_structured
from variant_etl.core.tabix import layout

OpenBinary = Callable[[str], BinaryIO]
PREFIX_BYTES = 4 * 2**20  # text read from an unindexed input
SPAN_WINDOW = 1 << 20  # bins of an index are added up into windows of this many bases
BGZF_BLOCK_TEXT = 0xFF00  # bgzip fills each block with this many uncompressed bytes


@dataclasses.dataclass(frozen=True)
class Span:
    """``rows`` records spread evenly over 0-based ``[start, end)`` of ``contig``."""

    contig: str
    start: int
    end: int
    rows: float


@dataclasses.dataclass(frozen=True, eq=False)
class RecordEstimate:
    records: float
    exact: bool  # the total is a count (index, or the whole file read), not an extrapolation
    method: str  # says where the numbers come from, for people
    per_contig: dict[str, float]
    points: dict[str, np.ndarray] = dataclasses.field(default_factory=dict)  # sampled starts
    spans: tuple[Span, ...] = ()


# --- from the index ----------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class IndexContig:
    name: str
    mapped: int  # records, from the pseudo-bin
    # (start, end, chunks): a genomic bin and the (begin, end) virtual offsets of its data
    bins: tuple[tuple[int, int, tuple[tuple[int, int], ...]], ...]


def parse_index(data: bytes, contig_names: tuple[str, ...] = ()) -> list[IndexContig]:
    """Parses a decompressed .tbi or .csi. ``contig_names`` name the references of a CSI
    without tabix metadata (a BCF's: its header's contigs, in order)."""
    found = layout(data, contig_names)
    names, at, n_ref = found.names, found.at, found.n_ref
    min_shift, depth, pseudo, with_loffset = found.min_shift, found.depth, found.pseudo_bin, found.csi
    contigs = []
    for ref in range(n_ref):
        (n_bin,) = struct.unpack_from("<i", data, at)
        at += 4
        mapped, bins = 0, []
        for _ in range(n_bin):
            (bin_number,) = struct.unpack_from("<I", data, at)
            at += 12 if with_loffset else 4
            (n_chunk,) = struct.unpack_from("<i", data, at)
            at += 4
            chunks = struct.unpack_from(f"<{2 * n_chunk}Q", data, at)
            at += 16 * n_chunk
            if bin_number == pseudo:
                mapped = chunks[2] if n_chunk >= 2 else 0
                continue
            start, end = _bin_span(bin_number, min_shift, depth)
            bins.append((start, end, tuple(zip(chunks[0::2], chunks[1::2]))))
        if not with_loffset:  # the tabix linear index
            (n_intv,) = struct.unpack_from("<i", data, at)
            at += 4 + 8 * n_intv
        name = names[ref] if ref < len(names) else f"#{ref}"
        if mapped:
            contigs.append(IndexContig(name, mapped, tuple(bins)))
    return contigs


def _bin_span(bin_number: int, min_shift: int, depth: int) -> tuple[int, int]:
    """The genomic range of a bin of the binning scheme (level 0 is one bin over everything)."""
    firsts = _level_firsts(depth)
    level = bisect.bisect_right(firsts, bin_number) - 1
    size = 1 << (min_shift + 3 * (depth - level))
    start = (bin_number - firsts[level]) * size
    return start, start + size


@functools.lru_cache
def _level_firsts(depth: int) -> tuple[int, ...]:
    return tuple(((1 << (3 * level)) - 1) // 7 for level in range(depth + 1))


def _text_position(block_bytes: float) -> Callable[[int], float]:
    """A virtual offset (compressed block offset << 16 | offset in the block) as an
    approximate offset in the text: blocks of ``block_bytes`` compressed bytes each hold
    BGZF_BLOCK_TEXT bytes of text."""

    def position(virtual_offset: int) -> float:
        return (virtual_offset >> 16) / block_bytes * BGZF_BLOCK_TEXT + (virtual_offset & 0xFFFF)

    return position


def _block_bytes(index: list[IndexContig]) -> float:
    """Typical compressed size of a BGZF block: the median gap between the blocks the
    index points into (most blocks, when records are dense; rarely matters otherwise)."""
    offsets = sorted({v >> 16 for c in index for _, _, chunks in c.bins for pair in chunks for v in pair})
    gaps = sorted(b - a for a, b in zip(offsets, offsets[1:]) if b > a)
    return float(gaps[len(gaps) // 2]) if gaps else float(BGZF_BLOCK_TEXT)


def estimate_from_index(index: list[IndexContig], index_name: str) -> RecordEstimate:
    """The records of each contig (exact), spread over its bins in proportion to the text
    each bin's chunks span (approximate)."""
    position = _text_position(_block_bytes(index))
    spans = []
    for contig in index:
        # Small bins are added up per window: a few thousand spans for a genome, not 50,000.
        windows: dict[tuple[int, int], float] = {}
        for start, end, chunks in contig.bins:
            weight = sum(max(0.0, position(b) - position(a)) for a, b in chunks)
            if end - start < SPAN_WINDOW:
                start = start // SPAN_WINDOW * SPAN_WINDOW
                end = start + SPAN_WINDOW
            windows[start, end] = windows.get((start, end), 0.0) + weight
        total = sum(windows.values())
        if total <= 0:  # no data per bin: put the records where the first bin starts
            start = min((s for s, _, _ in contig.bins), default=0)
            spans.append(Span(contig.name, start, start + 1, float(contig.mapped)))
            continue
        for (start, end), weight in sorted(windows.items()):
            if weight > 0:
                spans.append(Span(contig.name, start, end, contig.mapped * weight / total))
    return RecordEstimate(
        records=float(sum(c.mapped for c in index)),
        exact=True,
        method=f"index ({index_name})",
        per_contig={c.name: float(c.mapped) for c in index},
        spans=tuple(spans),
    )


# --- from a prefix of the records --------------------------------------------------------


class _Counting:
    """A read-only stream that counts the bytes read through it."""

    def __init__(self, raw: BinaryIO):
        self._raw = raw
        self.consumed = 0

    def read(self, size: int = -1) -> bytes:
        data = self._raw.read(size)
        self.consumed += len(data)
        return data

    def readable(self) -> bool:
        return True


def contig_lengths(header_lines: tuple[str, ...]) -> dict[str, int]:
    """``##contig=<ID=x,length=n>`` lines, in header order."""
    lengths = {}
    for line in header_lines:
        if line.startswith("##contig=<"):
            fields = parse_structured(line.strip()[len("##contig=<") : -1])
            length = fields.get("length", "")
            if fields.get("ID") and length.isdigit():
                lengths[fields["ID"]] = int(length)
    return lengths


def estimate_from_text_prefix(
    raw: BinaryIO,
    *,
    fmt: str,
    size: int,
    lengths: dict[str, int],
    limit: int = PREFIX_BYTES,
) -> RecordEstimate:
    """Reads up to ``limit`` bytes of text of a VCF (plain, gzip or bzip2) from ``raw``."""
    counting = _Counting(raw)
    if fmt == "gzip":
        stream = gzip.GzipFile(fileobj=counting)
    elif fmt == "bzip2":
        stream = bz2.BZ2File(counting)
    else:
        stream = counting
    header_bytes = record_bytes = 0
    starts: dict[str, list[int]] = {}
    complete = True
    pending = b""
    try:
        while True:
            chunk = stream.read(min(1 << 16, limit))
            if not chunk:
                lines, pending = ([pending] if pending else []), b""
            else:
                lines = (pending + chunk).split(b"\n")
                pending = lines.pop()
            for line in lines:
                if line.startswith(b"#") or not line.strip():
                    header_bytes += len(line) + 1
                    continue
                record_bytes += len(line) + 1
                fields = line.split(b"\t", 2)
                pos = fields[1] if len(fields) > 1 else b""
                contig = fields[0].decode("utf-8", errors="replace")
                starts.setdefault(contig, []).append(int(pos) - 1 if pos.strip().isdigit() else 0)
            if not chunk:
                break
            if header_bytes + record_bytes + len(pending) >= limit:
                complete = False
                break
    except (OSError, EOFError, zlib.error):
        complete = True  # damaged or truncated: the reader reports it; count what was seen
    sampled = sum(len(v) for v in starts.values())
    points = {contig: np.asarray(values, dtype=np.int64) for contig, values in starts.items()}
    per_contig = {contig: float(len(values)) for contig, values in starts.items()}
    if complete:
        return RecordEstimate(float(sampled), True, "counted (whole file read)", per_contig, points)
    text = header_bytes + record_bytes
    if fmt == "plain":
        total_text = size
    else:  # the same compression ratio for the rest of the file as for the prefix
        total_text = size * text / max(1, counting.consumed)
    records = max(float(sampled), sampled * (total_text - header_bytes) / max(1, record_bytes))
    spans = _rest(starts, lengths, records - sampled)
    for span in spans:
        per_contig[span.contig] = per_contig.get(span.contig, 0.0) + span.rows
    method = f"estimated from the first {sampled:,} records ({_megabytes(text)} of text)"
    return RecordEstimate(records, False, method, per_contig, points, tuple(spans))


def estimate_bcf_prefix(path: str, size: int, *, limit: int = PREFIX_BYTES // 4) -> RecordEstimate:
    """An unindexed BCF: pysam reads records until ``limit`` compressed bytes are behind."""
    position = _text_position(BGZF_BLOCK_TEXT / 4)  # BCF compresses about 4:1
    import pysam

    starts: dict[str, list[int]] = {}
    complete = True
    with pysam.VariantFile(path) as variant_file:
        first = position(variant_file.tell())
        lengths = {name: c.length for name, c in variant_file.header.contigs.items() if c.length}
        for record in variant_file:
            starts.setdefault(record.chrom, []).append(record.start)
            if position(variant_file.tell()) - first >= limit * 4:
                complete = False
                break
        last = position(variant_file.tell())
    sampled = sum(len(v) for v in starts.values())
    points = {contig: np.asarray(values, dtype=np.int64) for contig, values in starts.items()}
    per_contig = {contig: float(len(values)) for contig, values in starts.items()}
    if complete:
        return RecordEstimate(float(sampled), True, "counted (whole file read)", per_contig, points)
    records = max(float(sampled), sampled * (position(size << 16) - first) / max(1, last - first))
    spans = _rest(starts, lengths, records - sampled)
    for span in spans:
        per_contig[span.contig] = per_contig.get(span.contig, 0.0) + span.rows
    method = f"estimated from the first {sampled:,} records"
    return RecordEstimate(records, False, method, per_contig, points, tuple(spans))


def _rest(starts: dict[str, list[int]], lengths: dict[str, int], rows: float) -> list[Span]:
    """Where the records after the prefix probably are: the rest of the last contig sampled
    and the contigs the header declares after it (files are sorted in header order), in
    proportion to their lengths; without lengths, just after the last record sampled."""
    if rows <= 0 or not starts:
        return []
    last_contig = list(starts)[-1]
    last = max(starts[last_contig]) + 1
    candidates = []
    if lengths.get(last_contig, 0) > last:
        candidates.append((last_contig, last, lengths[last_contig]))
    names = list(lengths)
    if last_contig in lengths:
        candidates += [(name, 0, lengths[name]) for name in names[names.index(last_contig) + 1 :]]
    total = sum(end - start for _, start, end in candidates)
    if not total:
        return [Span(last_contig, last, last + 1, rows)]
    return [Span(name, start, end, rows * (end - start) / total) for name, start, end in candidates]


def _megabytes(n: float) -> str:
    return f"{n / 2**20:.1f} MB"
