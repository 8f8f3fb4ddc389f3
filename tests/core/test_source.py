"""Reading inputs: compressions, header fixes, line numbers, corrupt streams."""

import gzip

import pysam
import pysam.bcftools as bcftools
import pytest

from tests.conftest import REAL, VT_VCF
from variant_etl.core.errors import VcfFormatError
from variant_etl.core.records import MalformedRecord
from variant_etl.core.source import detect_format, open_source, read_header

HEADER = (
    "##fileformat=VCFv4.2\n"
    '##INFO=<ID=DP,Number=1,Type=Integer,Description="Depth">\n'
    '##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">\n'
    "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\tS1\n"
)
RECORDS = "1\t100\t.\tA\tC\t.\tPASS\tDP=3\tGT\t0/1\n1\t200\t.\tG\tT\t.\tPASS\tDP=4\tGT\t1/1\n"


def positions(path):
    with open_source(path) as source:
        return [r.pos for r in source.records()]


@pytest.mark.parametrize("compress, fmt", [(None, "plain"), ("gzip", "gzip"), ("bzip2", "bzip2")])
def test_compressions(write_vcf, compress, fmt):
    path = write_vcf("a.vcf", HEADER + RECORDS, compress=compress)
    assert detect_format(path) == fmt
    assert positions(path) == [100, 200]


def test_bgzip_and_bcf(tmp_path, write_vcf):
    plain = write_vcf("a.vcf", HEADER.replace("#CHROM", "##contig=<ID=1>\n#CHROM") + RECORDS)
    pysam.tabix_compress(plain, plain + ".gz")
    bcf = str(tmp_path / "a.bcf")
    bcftools.view("-Ob", "-o", bcf, plain, catch_stdout=False)
    assert detect_format(plain + ".gz") == "gzip"
    assert detect_format(bcf) == "bcf"
    assert positions(plain + ".gz") == positions(bcf) == [100, 200]


def test_blank_lines_missing_fileformat_trailing_tab_and_crlf(write_vcf):
    text = "\n" + HEADER.replace("##fileformat=VCFv4.2\n", "").replace("S1\n", "S1\t\n") + "\n" + RECORDS
    path = write_vcf("messy.vcf", text.replace("\n", "\r\n"))
    with open_source(path) as source:
        assert source.header.samples == ("S1",)
        records = list(source.records())
        assert [r.pos for r in records] == [100, 200]
        assert records[1].samples["S1"]["GT"] == (1, 1)  # no stray CR in the last column
        # line 1 is blank, lines 2-4 the header, line 5 blank, records on lines 6 and 7
        assert [source.location(i) for i in range(2)] == [f"{path}:6", f"{path}:7"]


def test_line_numbers_skip_blank_body_lines(write_vcf):
    path = write_vcf(
        "gaps.vcf", HEADER + "\n".join(RECORDS.splitlines()[:1] + ["", "", RECORDS.splitlines()[1]]) + "\n"
    )
    with open_source(path) as source:
        list(source.records())
        assert source.location(0).endswith(":5")
        assert source.location(1).endswith(":8")


def test_unparsable_record_is_yielded_as_an_error_and_reading_goes_on(write_vcf):
    bad = "1\t150\t.\tA\tC\t.\tPASS\tDP=3\tGT\t0/1:extra:fields\n"
    lines = RECORDS.splitlines(keepends=True)
    path = write_vcf("bad.vcf", HEADER + lines[0] + bad + lines[1])
    with open_source(path) as source:
        items = list(source.records())
    assert [type(i).__name__ for i in items] == ["VariantRecord", "OSError", "VariantRecord"]


def test_truncated_gzip_is_a_clear_error(tmp_path):
    data = gzip.compress((HEADER + RECORDS * 2000).encode())
    path = tmp_path / "cut.vcf.gz"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(VcfFormatError, match="truncated or corrupt"):
        with open_source(str(path)) as source:
            list(source.records())


def test_empty_and_headerless_files(write_vcf):
    with pytest.raises(VcfFormatError, match="empty.vcf: the file is empty"):
        read_header(write_vcf("empty.vcf", ""))
    with pytest.raises(VcfFormatError, match="empty.vcf.gz: the file is empty"):
        read_header(write_vcf("empty.vcf.gz", "", compress="gzip"))
    with pytest.raises(VcfFormatError, match="binary.vcf: not a VCF or BCF file"):
        read_header(write_vcf("binary.vcf", "\x00\x01\x02garbage\n"))
    with pytest.raises(VcfFormatError, match="no '#CHROM' header line"):
        read_header(write_vcf("nohead.vcf", RECORDS))


def test_vt_files_need_the_fixes():
    # valid-4.2.vcf starts with a blank line; valid-4.0.vcf.gz is plain gzip; .bz2 is bzip2.
    assert len(positions(str(VT_VCF / "valid-4.2.vcf"))) == 13
    assert detect_format(str(VT_VCF / "valid-4.0.vcf.gz")) == "gzip"
    assert positions(str(VT_VCF / "valid-4.0.vcf.bz2")) == positions(str(VT_VCF / "valid-4.0.vcf"))


def test_bcf_header_and_duplicate_samples():
    assert read_header(str(REAL / "cyvcf2" / "multi-contig.bcf")).samples == ("NA00001", "NA00002", "NA00003")
    with pytest.raises(VcfFormatError, match="sample name 'HG00096' appears twice"):
        read_header(str(REAL / "hts-specs" / "failed_body_sample_011.vcf"))


@pytest.mark.parametrize("size", [1, 7, 40, 41, 100, 10_000])
def test_byte_ranges_read_every_record_once(write_vcf, size):
    lines = [f"1\t{100 + i}\t.\tA\tC\t.\tPASS\tDP={i}\tGT\t0/1" for i in range(30)]
    lines[17] = "1\t117\t.\tA\tC\t.\tPASS\tDP=x\tGT\t0/1:extra:junk"  # unparsable, line 5 + 17
    path = write_vcf("ranges.vcf", HEADER + "\n".join(lines) + "\n")
    with open_source(path) as whole:
        body = whole.header.body_offset
    end = len(open(path, "rb").read())
    seen, errors = [], []
    for start in range(body, end, size):
        with open_source(path, byte_range=(start, min(start + size, end))) as source:
            for index, item in enumerate(source.records()):
                if isinstance(item, Exception):
                    errors.append(source.location(index))
                else:
                    seen.append(item.pos)
    assert seen == [100 + i for i in range(30) if i != 17]
    assert errors == [f"{path}:22"]


def header_or_error(read):
    try:
        return read()
    except VcfFormatError as err:
        return ("error", str(err))


INPUTS = sorted(
    p for folder in (REAL, VT_VCF) for p in folder.rglob("*") if p.suffix in (".vcf", ".bcf", ".gz", ".bz2")
)


@pytest.mark.parametrize("path", INPUTS, ids=lambda p: str(p.relative_to(REAL.parent)))
def test_read_header_equals_the_header_of_an_open_source(path):
    """read_header reads text headers without pysam's pipe; the result (or error) is the same."""

    def opened():
        with open_source(str(path)) as source:
            return source.header

    assert header_or_error(lambda: read_header(str(path))) == header_or_error(opened)


LONG_HEADER = HEADER.replace("#CHROM", "##contig=<ID=1>\n" * 2000 + "#CHROM")


@pytest.mark.parametrize(
    "data",
    [
        gzip.compress(HEADER.encode())[:30],  # gzip cut before the first line
        gzip.compress(LONG_HEADER.encode())[:150],  # gzip cut inside the header
        b"\x1f\x8b\x08\x00garbage",  # a gzip magic, then garbage
        bytes(range(256)) * 4,  # binary
        b"BZh91AY&SY" + b"\x00" * 20,  # a bzip2 magic, then garbage
    ],
)
def test_read_header_fails_as_an_open_source_does(tmp_path, data):
    path = tmp_path / "broken.vcf.gz"
    path.write_bytes(data)
    with pytest.raises(VcfFormatError) as ours:
        read_header(str(path))
    with pytest.raises(VcfFormatError) as theirs:
        open_source(str(path)).close()
    assert str(ours.value) == str(theirs.value)


@pytest.mark.parametrize(
    "header",
    [
        "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tS1",  # samples without FORMAT
        "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT",  # FORMAT without samples
        "##fileformat=VCFv4.2\n#comment\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO",
        "##fileformat=garbage\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO",
    ],
)
def test_headers_htslib_refuses_are_refused_by_read_header(write_vcf, header):
    path = write_vcf("refused.vcf", header + "\n1\t100\t.\tA\tC\t.\tPASS\t.\n")
    with pytest.raises(VcfFormatError, match="htslib cannot read this file"):
        read_header(path)
    with pytest.raises(VcfFormatError, match="htslib cannot read this file"):
        open_source(path).close()


@pytest.mark.parametrize(
    "line, long, problem",
    [
        ("1\t5\t.\tA\tC\t.\t.\tN=2147483648\tGT:AD\t0/1:1,2\t0/0", ({"N": (2147483648,)}, {}), None),
        ("1\t5\t.\tA\tC\t.\t.\tN=-2147483641\tGT:AD\t0/1:1,2\t0/0", ({"N": (-2147483641,)}, {}), None),
        (
            "1\t5\t.\tA\tC\t.\t.\tN=1\tGT:AD\t0/1:1,2\t0/0:3,99999999999",
            ({}, {("AD", 1): (3, 99999999999)}),
            None,
        ),
        ("1\t5\t.\tA\tC\t.\t.\tN=2147483647;CSQ=ENSG00000026486\tGT:AD\t0/1:1,-2147483640\t0/0", None, None),
        ("1\t5\t.\tA\tC\t.\t.\tS=12345678901\tGT:AD\t0/1:1,2\t0/0", None, None),  # a String
        ("1\t2147483648\t.\tA\tC\t.\t.\t.\tGT\t0/1\t0/1", None, None),  # POS has its own check
        (
            "1\t5\t.\tA\tC\t.\t.\tN=99999999999999999999\tGT\t0/1\t0/1",
            None,
            ("INFO/N", "99999999999999999999"),
        ),
    ],
)
def test_integers_htslib_would_read_as_missing_are_kept_as_written(write_vcf, line, long, problem):
    """htslib reads an Integer beyond 32 bits as missing: the source keeps the written values for
    the record (LongIntegers); beyond 64 bits, the record is malformed."""
    header = (
        '##fileformat=VCFv4.2\n##INFO=<ID=N,Number=1,Type=Integer,Description="d">\n'
        '##INFO=<ID=S,Number=1,Type=String,Description="d">\n##INFO=<ID=CSQ,Number=.,Type=String,Description="d">\n'
        '##FORMAT=<ID=GT,Number=1,Type=String,Description="d">\n'
        '##FORMAT=<ID=AD,Number=R,Type=Integer,Description="d">\n'
        "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\tS1\tS2\n"
    )
    path = write_vcf("ints.vcf", header + "1\t1\t.\tA\tC\t.\t.\t.\tGT\t0/1\t0/1\n" + line + "\n")
    with open_source(path) as source:
        found = [(r.field, r.value) for r in source.records() if isinstance(r, MalformedRecord)]
        kept = {i: (v.info, v.format) for i, v in source.long_integers.items()}
    assert found == ([problem] if problem else [])
    assert kept == ({1: long} if long else {})
