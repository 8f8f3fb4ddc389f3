"""Tabix indexes (.tbi, or a .csi with tabix's metadata) of bgzipped text: where the records of
a contig, from some position on, lie in the file, as BGZF virtual offsets.

Both kinds list, per reference sequence, bins of the genome with the chunks of file that hold
their records, and a pseudo-bin whose first chunk spans all the reference's records. A .tbi
adds the linear index (per 16 kb tile, the offset of the first record that overlaps it); a
.csi gives each bin that offset of its first tile instead. Either is a lower bound: no record
before it overlaps the tile, since the file is sorted by start. Reading from there up to the
pseudo-bin's end gives every record that overlaps the window, and some before it, which the
reader leaves out (htslib's query does the same from the bins' chunks).
"""

from __future__ import annotations

import dataclasses
import struct

import numpy as np

TBI_MIN_SHIFT, TBI_DEPTH = 14, 5


@dataclasses.dataclass(frozen=True)
class IndexLayout:
    """What an index's header says: its binning, the reference names (tabix metadata, else
    ``contig_names``) and where the first reference's bins begin."""

    csi: bool
    min_shift: int
    depth: int
    names: list[str]
    n_ref: int
    at: int

    @property
    def pseudo_bin(self) -> int:
        return ((1 << (3 * (self.depth + 1))) - 1) // 7 + 1


def layout(data: bytes, contig_names: tuple[str, ...] = ()) -> IndexLayout:
    magic = data[:4]
    if magic == b"TBI\1":
        (n_ref,) = struct.unpack_from("<i", data, 4)
        names, at = _tabix_names(data, 8)
        return IndexLayout(False, TBI_MIN_SHIFT, TBI_DEPTH, names, n_ref, at)
    if magic == b"CSI\1":
        min_shift, depth, l_aux = struct.unpack_from("<3i", data, 4)
        aux = data[16 : 16 + l_aux]
        names = _tabix_names(aux, 0)[0] if l_aux >= 28 else list(contig_names)
        at = 16 + l_aux
        (n_ref,) = struct.unpack_from("<i", data, at)
        return IndexLayout(True, min_shift, depth, names, n_ref, at + 4)
    raise ValueError(f"not a .tbi or .csi index (magic {magic!r})")


def _tabix_names(data: bytes, at: int) -> tuple[list[str], int]:
    (l_nm,) = struct.unpack_from("<i", data, at + 24)  # after format, col_seq/beg/end, meta, skip
    at += 28
    names = data[at : at + l_nm].split(b"\0")
    return [n.decode("utf-8", errors="replace") for n in names if n], at + l_nm


@dataclasses.dataclass(frozen=True)
class _Reference:
    first: int  # virtual offset of its first record
    end: int  # just past its last record
    records: int  # mapped records, as `bcftools index -s` counts them
    # .tbi: the linear index, kept as the tiles where its offset changes and those offsets
    # (a sparse file's 190k tiles are mostly copies of the next one's offset)
    tiles: tuple[np.ndarray, np.ndarray, int] | None  # (first tile of each run, its offset, tiles)
    loffs: dict[int, int] | None  # .csi: each bin's offset of its first tile


class TextIndex:
    """The parts of a tabix index a window's read needs."""

    def __init__(self, data: bytes):
        self._layout = found = layout(data)
        if len(found.names) < found.n_ref:
            raise ValueError("the index does not name its references (no tabix metadata)")
        self._references: dict[str, _Reference] = {}
        at = found.at
        for ref in range(found.n_ref):
            reference, at = _reference(data, at, found)
            if reference is not None and ref < len(found.names):
                self._references[found.names[ref]] = reference

    @property
    def contigs(self) -> list[str]:
        return list(self._references)

    def records(self, contig: str) -> int:
        reference = self._references.get(contig)
        return reference.records if reference is not None else 0

    def span(self, contig: str, start: int) -> tuple[int, int] | None:
        """Virtual offsets [from, to) that hold every record of ``contig`` reaching ``start``
        (0-based) or beyond, with some records before it; None when no record does."""
        reference = self._references.get(contig)
        if reference is None:
            return None
        tile = start >> self._layout.min_shift
        if reference.tiles is not None:
            runs, offsets, count = reference.tiles
            if tile >= count:  # the tiles run to the furthest record's end
                return None
            begin = int(offsets[np.searchsorted(runs, tile, side="right") - 1])
        else:
            begin = _csi_lower_bound(reference.loffs, tile, self._layout.depth)
        return max(begin, reference.first), reference.end


# A bin of one chunk, the kind nearly every bin is (htslib merges a bin's adjacent chunks): such
# bins in a row are read as one numpy array; any other bin (a pseudo-bin has two) on its own.
_HEAD = {False: struct.Struct("<Ii"), True: struct.Struct("<IQi")}  # bin, (loff,) n_chunk
_ONE_CHUNK = {
    False: np.dtype([("bin", "<u4"), ("n_chunk", "<i4"), ("u", "<u8"), ("v", "<u8")]),
    True: np.dtype([("bin", "<u4"), ("loff", "<u8"), ("n_chunk", "<i4"), ("u", "<u8"), ("v", "<u8")]),
}


def _reference(data: bytes, at: int, found: IndexLayout) -> tuple[_Reference | None, int]:
    """One reference's entry: (its parts, or None without records; where the next one starts)."""
    (n_bin,) = struct.unpack_from("<i", data, at)
    at += 4
    one_chunk = _ONE_CHUNK[found.csi]
    head = one_chunk.itemsize - 16  # bytes before a bin's chunks
    span, loffs, left = None, {} if found.csi else None, n_bin
    while left:
        # the bins from here, read as if each had one chunk, up to the first that has not
        count = min(left, (len(data) - at) // one_chunk.itemsize)
        run = np.frombuffer(data, one_chunk, count, at)
        other = np.flatnonzero(run["n_chunk"] != 1)
        run = run[: other[0] if len(other) else count]
        if loffs is not None:
            loffs.update(zip(run["bin"].tolist(), run["loff"].tolist()))
        at, left = at + one_chunk.itemsize * len(run), left - len(run)
        if left:  # that bin, on its own
            fields = _HEAD[found.csi].unpack_from(data, at)
            bin_number, n_chunk = fields[0], fields[-1]
            if loffs is not None:
                loffs[bin_number] = fields[1]
            if bin_number == found.pseudo_bin and n_chunk >= 2:
                span = struct.unpack_from("<4Q", data, at + head)
            at, left = at + head + 16 * n_chunk, left - 1
    tiles = None
    if not found.csi:
        (n_intv,) = struct.unpack_from("<i", data, at)
        linear = np.frombuffer(data, "<u8", n_intv, at + 4)
        runs = np.flatnonzero(np.diff(linear, prepend=~linear[:1]) != 0) if n_intv else np.zeros(0, np.int64)
        tiles = (runs, linear[runs].copy(), n_intv)
        at += 4 + 8 * n_intv
    if span is None:
        if n_bin:  # (htslib always writes it: without it, pysam reads the file)
            raise ValueError("an index without the pseudo-bin of a reference's span and counts")
        return None, at  # a reference without records
    return _Reference(span[0], span[1], span[2], tiles, loffs), at


def _csi_lower_bound(loffs: dict[int, int], tile: int, depth: int) -> int:
    """As htslib: the first bin there is at the finest level leftwards from the tile, going up a
    level at a first child; its offset (0 if none)."""
    first_of_finest = ((1 << (3 * depth)) - 1) // 7
    bin_number = first_of_finest + tile
    while bin_number > 0 and bin_number not in loffs:
        parent = (bin_number - 1) >> 3
        bin_number = bin_number - 1 if bin_number > (parent << 3) + 1 else parent
    return loffs.get(bin_number, 0)
