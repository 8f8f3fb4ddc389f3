"""Reading a window of a bgzipped VCF through its .tbi/.csi ourselves (core/tabix.py, the
window reads of core/regions.py), checked against htslib's own query (pysam.TabixFile.fetch)
on a generated gVCF of many BGZF blocks, with blocks long enough to span many 16 kb tiles."""

from __future__ import annotations

import random
import shutil
from pathlib import Path

import pyarrow as pa
import pysam
import pytest

from tests.core.test_textparse import plan_for
from variant_etl.core import regions
from variant_etl.core.options import MergeOptions
from variant_etl.core.regions import OpenFiles, RegionSplit, read_region
from variant_etl.core.schema import END_POSITION, START_POSITION
from variant_etl.core.tabix import TextIndex

CONTIGS = {"chr1": 3_000_000, "chr2": 700_000, "chrX": 400_000}


def _gvcf_text(seed: int = 7, missing_ends: bool = True) -> str:
    """Variants, deletions and non-variant blocks (some 200 kb long, some with END=., which
    TextParser leaves to pysam) of one sample, sorted; ~700 KB of text, a dozen BGZF blocks."""
    rng = random.Random(seed)
    lines = [
        "##fileformat=VCFv4.2",
        '##INFO=<ID=END,Number=1,Type=Integer,Description="End">',
        '##INFO=<ID=DP,Number=1,Type=Integer,Description="Depth">',
        '##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">',
        *(f"##contig=<ID={name},length={length}>" for name, length in CONTIGS.items()),
        "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\tS1",
    ]
    for contig, length in CONTIGS.items():
        pos = rng.randint(1, 50)
        while pos < length - 300_000:
            kind = rng.random()
            if kind < 0.5:
                ref = rng.choice("ACGT") + (
                    "".join(rng.choices("ACGT", k=rng.randint(1, 40))) if kind < 0.1 else ""
                )
                lines.append(f"{contig}\t{pos}\t.\t{ref}\tT\t50\tPASS\tDP=12\tGT\t0/1")
                pos += len(ref) + rng.randint(0, 300)
            else:
                size = (
                    rng.choice([1, 20, 300, 5_000, 40_000, 200_000]) if kind > 0.97 else rng.randint(1, 400)
                )
                end = "." if kind > 0.995 and missing_ends else str(pos + size - 1)
                lines.append(f"{contig}\t{pos}\t.\tA\t<NON_REF>\t.\t.\tEND={end};DP=3\tGT\t0/0")
                pos += (size if end != "." else 1) + rng.randint(0, 2)
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def gvcfs(tmp_path_factory) -> dict[str, Path]:
    """The gVCF bgzipped, once with a .tbi and once with a .csi; "...-parsed": without END=."""
    folder = tmp_path_factory.mktemp("tabix")
    found = {}
    for missing_ends in (True, False):
        text = folder / f"blocks{missing_ends}.vcf"
        text.write_text(_gvcf_text(missing_ends=missing_ends))
        for kind in ("tbi", "csi"):
            name = kind if missing_ends else f"{kind}-parsed"
            target = folder / name / "blocks.vcf.gz"
            target.parent.mkdir()
            pysam.tabix_compress(str(text), str(target))
            pysam.tabix_index(str(target), preset="vcf", csi=kind == "csi")
            assert Path(f"{target}.{kind}").exists()
            found[name] = target
    return found


def _start(line: bytes) -> int:
    return int(line.split(b"\t")[1]) - 1


def _end(line: bytes) -> int:
    """Our end (core/textparse.py): INFO/END, else start + len(REF)."""
    fields = line.split(b"\t")
    for item in fields[7].split(b";"):
        if item.startswith(b"END=") and item != b"END=.":
            return int(item[4:])
    return _start(line) + len(fields[3])


def _windows(rng: random.Random) -> list[tuple[str, int, int]]:
    found = []
    for contig, length in CONTIGS.items():
        for lo in [0, 1, 16_383, 16_384, 16_385, length - 1, length + 5, *rng.sample(range(length), 25)]:
            for width in (1, 100, 16_384, 70_000, 1_000_000):
                found.append((contig, lo, lo + width))
        found.append((contig, 0, 2**29))
    return found + [("chrUn", 0, 1000)]  # a contig the index does not have


@pytest.mark.parametrize("kind", ["tbi", "csi"])
def test_window_lines_are_htslibs(gvcfs, kind):
    """The lines of a window: without earlier records, exactly those of htslib's query that
    start in it; with them, every line htslib gives that reaches into the window by our end
    (INFO/END or REF), plus only earlier lines that do not (the parse leaves them out)."""
    path = str(gvcfs[kind])
    with open(path, "rb") as raw, pysam.TabixFile(path, index=f"{path}.{kind}") as tabix:
        with open(f"{path}.{kind}", "rb") as index_file:
            from variant_etl.core import bgzf

            index = TextIndex(bgzf.decompress(index_file))
        assert index.contigs == list(CONTIGS)
        windows = _windows(random.Random(kind))
        earlier = []
        for contig, lo, hi in windows:
            split = RegionSplit(contig, lo, hi, ())
            theirs = (
                [line.encode() for line in tabix.fetch(contig, lo, hi)] if contig in tabix.contigs else []
            )
            home = [line for line in theirs if _start(line) >= lo]
            text, ends = regions._window_text(raw, index, split, False)
            ours = text.splitlines()
            assert ours == home, (contig, lo, hi)
            assert len(ends) == len(ours) and (not ours or ends[-1] == len(text))
            text, _ = regions._window_text(raw, index, split, True)
            ours = text.splitlines()
            reaching = [line for line in theirs if _start(line) >= lo or _end(line) > lo]
            assert [line for line in ours if _start(line) >= lo or _end(line) > lo] == reaching
            assert all(_start(line) < hi for line in ours)
            earlier.append(len(ours) - len(theirs))
    # Read from the index's bound, not the contig's start: a .tbi's linear index bounds each 16 kb
    # tile; a .csi's bins are merged upwards until they hold ~64 KB of compressed data each (as
    # htslib's compress_binning does), a looser bound (~2,000 of these lines).
    assert 0 <= min(earlier) and max(earlier) < (400 if kind == "tbi" else 2_500)


def _plan(path: Path):
    return plan_for(
        path, path.parent, infer_headers=False, merge=MergeOptions(strategy="MERGE_WITH_NON_VARIANTS")
    )


def _rows(tables) -> list[tuple]:
    table = pa.concat_tables([t for t in tables if isinstance(t, pa.Table)])
    table = table.sort_by([(START_POSITION, "ascending"), (END_POSITION, "ascending")])
    return list(
        zip(*(table.column(c).to_pylist() for c in (START_POSITION, END_POSITION, "reference_bases")))
    )


@pytest.mark.parametrize("kind", ["tbi", "csi"])
def test_read_region_rows_are_those_pysam_reads(gvcfs, kind, monkeypatch):
    """read_region's rows and counts through our index reads are those of its pysam path (the
    records htslib's query gives), less earlier records that do not reach into the window."""
    path = gvcfs[f"{kind}-parsed"]
    plan = _plan(path)
    files = plan.source.region_splits[0].files
    rng = random.Random(3)
    splits = [RegionSplit(c, lo, hi, files) for c, lo, hi in _windows(rng)[::7]]
    open_files = OpenFiles()

    def read(split, keep):
        counts = {}
        tables = list(read_region(split, plan.schema, one_based=False, allow_malformed=False,
                                  keep_overlapping=keep, counts=counts, open_files=open_files))  # fmt: skip
        return (_rows(tables) if tables else []), counts

    with monkeypatch.context() as patched:  # (none of it left to pysam)
        patched.setattr(regions, "BatchBuilder", None)
        ours = {(split, keep): read(split, keep) for split in splits for keep in (False, True)}
    monkeypatch.setattr(regions, "_format", lambda path: "bcf")  # every file to pysam
    for (split, keep), (rows, counts) in ours.items():
        pysam_rows, pysam_counts = read(split, keep)
        assert counts == pysam_counts
        assert rows == [r for r in pysam_rows if r[0] >= split.start or r[1] > split.start]
    open_files.close()
    assert sum(counts[str(path)] for (split, keep), (_, counts) in ours.items() if not keep) > 500


def test_an_index_without_tabix_names_is_not_read_as_empty(gvcfs, tmp_path):
    """A .csi whose references are not named (a BCF's kind) cannot say where a contig's records
    are: not a window without records, but a file for pysam, which says it cannot use it."""
    import gzip
    import struct

    from variant_etl.core import bgzf
    from variant_etl.core.errors import VcfFormatError

    path = tmp_path / "blocks.vcf.gz"
    shutil.copy(gvcfs["csi"], path)
    data = gzip.decompress(Path(f"{gvcfs['csi']}.csi").read_bytes())
    l_aux = struct.unpack_from("<i", data, 12)[0]
    bare = data[:12] + struct.pack("<i", 0) + data[16 + l_aux :]
    Path(f"{path}.csi").write_bytes(bgzf.compress(bare) + bgzf.EOF_BLOCK)
    with pytest.raises(ValueError, match="does not name"):
        TextIndex(bare)
    plan = _plan(gvcfs["csi"])
    file = plan.source.region_splits[0].files[0]
    moved = type(file)(str(path), file.file_index, file.samples, file.sample_ids)
    split = RegionSplit("chr1", 0, 2**29, (moved,))
    assert not regions._FastWindow(split, plan.schema, False, False).add(moved, OpenFiles())
    with pytest.raises(VcfFormatError, match="blocks.vcf.gz: htslib cannot use its index"):
        list(read_region(split, plan.schema, one_based=False, allow_malformed=False,
                         keep_overlapping=False, counts={}))  # fmt: skip


def test_csi_lower_bound_walks_left_then_up():
    """htslib's walk for a .csi: the finest bin of the tile, else its left siblings, else the
    parent's line, up to bin 0."""
    from variant_etl.core.tabix import _csi_lower_bound

    first = ((1 << 15) - 1) // 7  # depth 5: bins of the finest level start here
    assert _csi_lower_bound({first + 9: 90}, 9, 5) == 90
    assert _csi_lower_bound({first + 8: 80}, 9, 5) == 80  # left sibling (9 is not a first child)
    assert _csi_lower_bound({first + 8: 80}, 8, 5) == 80
    parent = (first + 8 - 1) >> 3
    assert _csi_lower_bound({parent: 7}, 15, 5) == 7  # siblings 8..15 absent: up a level
    assert _csi_lower_bound({0: 3}, 123_456, 5) == 3
    assert _csi_lower_bound({}, 5, 5) == 0


def test_an_index_without_pseudo_bins_is_not_read_as_empty():
    """htslib writes, per reference, a pseudo-bin with the span of its records and their count;
    another indexer may not. Without it no window may look empty: TextIndex refuses the index
    (pysam reads the file). A reference without bins has no records."""
    import struct

    def tbi(*references: bytes) -> bytes:
        names = b"".join(f"chr{i}\0".encode() for i in range(1, len(references) + 1))
        header = b"TBI\1" + struct.pack("<8i", len(references), 2, 1, 2, 0, ord("#"), 0, len(names))
        return header + names + b"".join(references)

    bare_bin = struct.pack("<iIi2Q", 1, 4681, 1, 1 << 16, 5 << 16) + struct.pack("<iQ", 1, 1 << 16)
    pseudo = struct.pack("<Ii4Q", 37450, 2, 1 << 16, 5 << 16, 12, 0)
    with_pseudo = (
        struct.pack("<iIi2Q", 2, 4681, 1, 1 << 16, 5 << 16) + pseudo + struct.pack("<iQ", 1, 1 << 16)
    )
    no_records = struct.pack("<ii", 0, 0)
    index = TextIndex(tbi(with_pseudo, no_records))
    assert index.contigs == ["chr1"] and index.records("chr1") == 12 and index.records("chr2") == 0
    assert index.span("chr1", 0) == (1 << 16, 5 << 16) and index.span("chr1", 16_384) is None
    with pytest.raises(ValueError, match="pseudo-bin"):
        TextIndex(tbi(bare_bin))


def test_line_start_refuses_what_is_not_a_record_line():
    """The window's cut parses a few lines' positions; a line it cannot place (an empty one, no
    position) sends the file to pysam rather than cut the window in the wrong place."""
    text = b"chr1\t100\t.\tA\tT\nchr2\t7\t.\tC\tG\n\nchr2\t9\t.\tC\tG\n"
    assert regions._line_start(text, 0, "chr1") == 99
    assert regions._line_start(text, text.index(b"chr2"), "chr1") > 2**31  # past any window
    with pytest.raises(ValueError):
        regions._line_start(text, text.index(b"\n\n") + 1, "chr2")  # the empty line
    with pytest.raises(ValueError):
        regions._line_start(b"chr1\tx\t.\n", 0, "chr1")
