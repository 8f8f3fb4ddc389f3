"""BGZF (the blocked gzip of bgzip): block boundaries, and reading the lines of a range of blocks.

A bgzipped file is a series of gzip members of at most 64 KiB each, whose header says how
long the member is. So a large bgzipped VCF can be cut at block boundaries and the pieces
read in parallel without an index. A range of blocks [start, end) owns the lines whose
preceding newline lies in its decompressed bytes: it skips up to its first newline (the rest
of a line the range before owns) and reads past ``end`` up to the first newline there.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator
from typing import BinaryIO

_MAGIC = b"\x1f\x8b\x08\x04"
_HEADER = 18  # gzip header with the 6-byte 'BC' extra field bgzip writes
_SEARCH = 1 << 17  # a block is at most 64 KiB, so one starts within any 128 KiB


def _block_size(header: bytes) -> int | None:
    """Total size of the block whose header this is, or None if it is not a BGZF header."""
    if len(header) < _HEADER or header[:4] != _MAGIC:
        return None
    xlen, si1, si2, slen, bsize = struct.unpack("<HBBHH", header[10:18])
    if (si1, si2, slen) != (66, 67, 2) or xlen < 6:
        return None
    return bsize + 1


def is_bgzf(raw: BinaryIO) -> bool:
    raw.seek(0)
    return _block_size(raw.read(_HEADER)) is not None


def block_starts(raw: BinaryIO, size: int, every: int) -> list[int]:
    """Block offsets about ``every`` bytes apart, starting with 0: for each multiple of
    ``every``, the first block that starts at or after it."""
    starts = [0]
    target = every
    while target < size:
        found = _next_block_start(raw, target, size)
        if found is None:
            break
        starts.append(found)
        target = max(found + 1, target + every)
    return starts


def _next_block_start(raw: BinaryIO, at: int, size: int) -> int | None:
    """The first block at or after ``at``: a BGZF header followed, where it says, by another
    one or by the end of the file."""
    raw.seek(at)
    window = raw.read(_SEARCH + _HEADER)
    found = window.find(_MAGIC)
    while found >= 0:
        length = _block_size(window[found : found + _HEADER])
        if length is not None:
            after = at + found + length
            raw.seek(after)
            if after == size or _block_size(raw.read(_HEADER)) is not None:
                return at + found
        found = window.find(_MAGIC, found + 1)
    return None


def _blocks(raw: BinaryIO, start: int):
    """(offset, decompressed bytes) of each block from ``start`` on."""
    raw.seek(start)
    offset = start
    while True:
        header = raw.read(_HEADER)
        if not header:
            return
        length = _block_size(header)
        if length is None:
            raise OSError(f"not a BGZF block at byte {offset}")
        block = header + raw.read(length - _HEADER)
        if len(block) < length:
            raise EOFError(f"the BGZF block at byte {offset} is cut short")
        yield offset, _inflate(block, offset)
        offset += length


def decompress(raw: BinaryIO) -> bytes:
    """A whole BGZF file's text (an index's)."""
    return b"".join(data for _, data in _blocks(raw, 0))


def read_between(raw: BinaryIO, start: int, end: int) -> Iterator[bytes]:
    """The text between the virtual offsets ``start`` and ``end`` (an index's: a block's offset
    in the file << 16 | an offset in its text), a block at a time."""
    skip, last, keep = start & 0xFFFF, end >> 16, end & 0xFFFF
    for offset, data in _blocks(raw, start >> 16):
        if offset > last or (offset == last and keep == 0):
            return
        piece = data[skip : keep if offset == last else None] if skip or offset == last else data
        skip = 0
        if piece:
            yield piece
        if offset == last:
            return


def _inflate(block: bytes, offset: int) -> bytes:
    """A block's data, its CRC checked: libdeflate (twice zlib's speed), zlib if it refuses."""
    import deflate

    (xlen,) = struct.unpack("<H", block[10:12])
    crc, size = struct.unpack("<II", block[-8:])
    try:
        data = deflate.deflate_decompress(block[12 + xlen : -8], size)
    except deflate.DeflateError:
        data = None
    if data is None or len(data) != size or deflate.crc32(data) != crc:
        try:  # zlib's own message for what is wrong
            return zlib.decompress(block, wbits=31)
        except zlib.error as err:
            raise OSError(f"the BGZF block at byte {offset} is corrupt ({err})") from None
    return data  # (a bytearray: the text is joined into chunks later, copied once there)


class BlockRange:
    """A readable stream of the lines that the blocks [start, end) own (see the module doc)."""

    def __init__(self, raw: BinaryIO, start: int, end: int):
        self._blocks = _blocks(raw, start)
        self._end = end
        self._skip = start > 0  # the first partial line belongs to the range before
        self._done = False
        self._pieces: list[bytes] = []
        self._held = 0

    def read(self, size: int = -1) -> bytes:
        """Whole blocks' text, at least ``size`` bytes unless the range ends first: a block
        more than a file's read would give, where cutting it would copy all of it again."""
        while not self._done and (size < 0 or self._held < size):
            self._next_block()
        data = b"".join(self._pieces)
        self._pieces, self._held = [], 0
        return data

    def readline(self) -> bytes:
        """For the header lines: one line, newline included."""
        while not self._done and not any(b"\n" in piece for piece in self._pieces):
            self._next_block()
        data = b"".join(self._pieces)
        cut = data.find(b"\n") + 1 or len(data)
        rest = data[cut:]
        self._pieces, self._held = ([rest] if rest else []), len(rest)
        return data[:cut]

    def _next_block(self) -> None:
        block = next(self._blocks, None)
        if block is None:
            self._done = True
            return
        offset, data = block
        newline = data.find(b"\n")
        if offset >= self._end:
            # Past the range: only the rest of the line that started inside it.
            if self._skip:  # no line starts inside the range
                self._done = True
                return
            if newline >= 0:
                data, self._done = data[: newline + 1], True
        elif self._skip:
            if newline < 0:
                return
            data, self._skip = data[newline + 1 :], False
        self._pieces.append(data)
        self._held += len(data)


def newlines_before(raw: BinaryIO, start: int) -> int:
    """The number of lines before the first line of the range that starts at block ``start``:
    those ending in earlier blocks, plus the partial line the range skips."""
    count = 0
    for offset, data in _blocks(raw, 0):
        if offset >= start:
            break
        count += data.count(b"\n")
    return count + 1


# Writing: what bgzip writes, with libdeflate (about twice zlib's speed at the same level, and
# it releases the GIL, so blocks of several batches compress at once).
BLOCK_INPUT = 0xFF00  # bgzip's: text a block holds; compressed, a block always fits in 64 KiB
EOF_BLOCK = bytes.fromhex("1f8b08040000000000ff0600424302001b0003000000000000000000")
LEVEL = 6  # bgzip's default


def compress(data, level: int = LEVEL) -> bytes:
    """``data`` as whole BGZF blocks (no end-of-file block)."""
    import deflate

    view = memoryview(data)
    out = []
    for at in range(0, len(view), BLOCK_INPUT):
        chunk = view[at : at + BLOCK_INPUT]
        body = deflate.deflate_compress(chunk, level)
        out.append(struct.pack("<4sIBBHBBHH", _MAGIC, 0, 0, 0xFF, 6, 66, 67, 2, len(body) + 25))
        out.append(body)
        out.append(struct.pack("<II", deflate.crc32(chunk), len(chunk)))
    return b"".join(out)
