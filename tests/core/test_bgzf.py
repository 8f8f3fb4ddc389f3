"""Cutting bgzipped text at block boundaries: every line read exactly once."""

from __future__ import annotations

import random

import pysam
import pytest

from variant_etl.core.bgzf import BlockRange, block_starts, is_bgzf, newlines_before


def bgzip(tmp_path, text: bytes):
    plain = tmp_path / "t.txt"
    plain.write_bytes(text)
    out = tmp_path / "t.txt.gz"
    pysam.tabix_compress(str(plain), str(out), force=True)
    return out


def lines_of_ranges(path, every: int) -> tuple[list[bytes], list[int]]:
    size = path.stat().st_size
    with open(path, "rb") as raw:
        starts = block_starts(raw, size, every)
        pieces = []
        for start, end in zip(starts, starts[1:] + [size]):
            pieces.append(BlockRange(raw, start, end).read())
    return pieces, starts


@pytest.mark.parametrize("seed", range(4))
def test_ranges_partition_the_lines(tmp_path, seed):
    rng = random.Random(seed)
    # short lines, and a few longer than a block (64 KiB), so a line can span a whole range
    table = bytes.maketrans(bytes(range(256)), b"ACGT\t" * 51 + b"A")
    lines = [
        rng.randbytes(rng.choice([5, 80, 700, 150_000])).translate(table)
        for _ in range(rng.randint(100, 250))
    ]
    text = b"\n".join(lines) + b"\n"
    path = bgzip(tmp_path, text)
    with open(path, "rb") as raw:
        assert is_bgzf(raw)
    for every in (1, 5_000, 40_000, 200_000):
        pieces, starts = lines_of_ranges(path, every)
        assert b"".join(pieces) == text
        assert all(piece == b"" or piece.endswith(b"\n") for piece in pieces)
        # each range knows how many lines come before it
        with open(path, "rb") as raw:
            for start, piece in list(zip(starts[1:], pieces[1:]))[::7]:
                if piece:
                    before = text[: text.index(piece)].count(b"\n")
                    assert newlines_before(raw, start) == before


def test_plain_gzip_is_not_bgzf(tmp_path):
    import gzip

    path = tmp_path / "t.gz"
    path.write_bytes(gzip.compress(b"a\nb\n"))
    with open(path, "rb") as raw:
        assert not is_bgzf(raw)


def test_written_blocks_are_bgzf_that_gzip_and_htslib_read(tmp_path):
    import gzip
    import os

    from variant_etl.core.bgzf import EOF_BLOCK, compress

    text = b"".join(b"chr1\t%d\t.\tA\tC\t.\t.\tDP=%d\n" % (i, i % 97) for i in range(40_000))
    data = text + os.urandom(200_000)  # incompressible bytes too
    path = tmp_path / "t.gz"
    path.write_bytes(compress(data) + EOF_BLOCK)
    assert gzip.decompress(path.read_bytes()) == data
    with pysam.BGZFile(str(path), "rb") as reader:
        assert reader.read() == data
    with open(path, "rb") as raw:
        assert is_bgzf(raw)
        starts = block_starts(raw, path.stat().st_size, 1)  # every block
    sizes = [b - a for a, b in zip(starts, starts[1:] + [path.stat().st_size])]
    assert max(sizes) <= 65536 and len(starts) == -(-len(data) // 0xFF00) + 1  # + the EOF block
    assert compress(b"") == b""
