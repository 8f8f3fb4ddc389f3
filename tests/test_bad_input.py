"""Every class of bad input, with the outcome asserted: a one-line error naming the file (and
the line, field and value), or dead-letter entries, and nothing else lost: every record read
is a row or a dead letter."""

from __future__ import annotations

import dataclasses
import gzip
import json
import os
from pathlib import Path

import duckdb
import pysam
import pytest

from tests.conftest import REAL, run_cli
from tests.test_launch import check_manifest_adds_up

HEADER = """##fileformat=VCFv4.2
##contig=<ID=chr1,length=248956422>
##INFO=<ID=DP,Number=1,Type=Integer,Description="depth">
##INFO=<ID=AF,Number=A,Type=Float,Description="allele frequency">
##INFO=<ID=AD,Number=R,Type=Integer,Description="allele depths">
##INFO=<ID=END,Number=1,Type=Integer,Description="end">
##FORMAT=<ID=GT,Number=1,Type=String,Description="genotype">
##FORMAT=<ID=GL,Number=G,Type=Float,Description="genotype likelihoods">
#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\tS1\tS2
"""
FIRST_LINE = HEADER.count("\n") + 1  # the line number of the first record


def record(pos=100, ref="A", alt="C", info="DP=5;AF=0.5", fmt="GT", s1="0/1", s2="1/1") -> str:
    return "\t".join(["chr1", str(pos), ".", ref, alt, "50", "PASS", info, fmt, s1, s2]) + "\n"


GOOD = [record(100), record(200), record(300)]


def with_bad(line: str) -> bytes:
    """A good record, the bad one (on line FIRST_LINE + 1), another good one."""
    return (HEADER + GOOD[0] + line + GOOD[1]).encode("utf-8")


@dataclasses.dataclass(frozen=True)
class Refused:
    """The whole file is refused, with or without --allow_malformed_records."""

    message: str
    at_plan: bool = True  # before the pipeline starts (exit 2), else while reading (exit 1)


@dataclasses.dataclass(frozen=True)
class DeadLetter:
    """One record is malformed: an error without --allow_malformed_records, else a dead letter."""

    field: str
    reason: str
    line: int = FIRST_LINE + 1
    rows: int = 2  # the records around it are loaded
    # with --allow_malformed_records it loads instead, its Number=A values matched to the ALTs
    # by index (gcp-variant-transforms' rule), and the manifest counts it
    matched: bool = False


@dataclasses.dataclass(frozen=True)
class Loaded:
    rows: int


def _alleles(n: int) -> str:
    return ",".join(f"<X{i}>" for i in range(n))


def _truncated_gzip() -> bytes:
    data = gzip.compress((HEADER + "".join(record(pos) for pos in range(1, 20000, 7))).encode())
    return data[: len(data) // 2]


def _truncated_bgzip(tmp: Path) -> bytes:
    plain = tmp / "whole.vcf"
    plain.write_text(HEADER + "".join(record(pos) for pos in range(1, 20000, 7)))
    pysam.tabix_compress(str(plain), str(tmp / "whole.vcf.gz"), force=True)
    data = (tmp / "whole.vcf.gz").read_bytes()
    return data[:-40]  # into the last data block: the 28-byte EOF block and 12 bytes more


GARBAGE = bytes(range(256)) * 8
CASES: dict[str, tuple[object, object]] = {
    # whole files
    "empty.vcf": (b"", Refused("the file is empty")),
    "binary_garbage.vcf": (GARBAGE, Refused("not a VCF or BCF file")),
    "header_only.vcf": (HEADER.encode(), Loaded(0)),
    "missing_chrom_line.vcf": (
        (HEADER.split("#CHROM")[0] + "".join(GOOD)).encode(),
        Refused("no '#CHROM' header line found before the first record"),
    ),
    "duplicate_samples.vcf": (
        (HEADER.replace("S2", "S1") + GOOD[0]).encode(),
        Refused("header line 9: sample name 'S1' appears twice"),
    ),
    "truncated_gzip.vcf.gz": (_truncated_gzip, Refused("the file is truncated or corrupt", at_plan=False)),
    "truncated_in_header.vcf.gz": (
        gzip.compress(HEADER.encode())[:60],
        Refused("the file is truncated or corrupt"),
    ),
    "truncated_bgzip.vcf.gz": (_truncated_bgzip, Refused("the file is truncated or corrupt", at_plan=False)),
    # a plain file cut in the sample columns of its last line (its line 12)
    "cut_mid_line.vcf": (
        (HEADER + "".join(GOOD) + record(400)[:40]).encode(),
        DeadLetter("line", "expected 11 tab-separated columns, found 10", line=FIRST_LINE + 3, rows=3),
    ),
    # one bad record among good ones
    "wrong_column_count.vcf": (
        with_bad("chr1\t150\t.\tA\tC\t50\n"),
        DeadLetter("line", "expected 11 tab-separated columns, found 6"),
    ),
    "pos_not_a_number.vcf": (with_bad(record("abc")), DeadLetter("POS", "expected a positive integer")),
    "pos_negative.vcf": (with_bad(record(-5)), DeadLetter("POS", "expected a positive integer")),
    "pos_zero.vcf": (with_bad(record(0)), DeadLetter("POS", "expected a positive integer")),
    # htslib reads 64-bit positions in text VCF: so do both readers
    "pos_beyond_2_31.vcf": (with_bad(record(2**31 + 5)), Loaded(3)),
    "pos_beyond_htslib.vcf": (with_bad(record(2**63)), DeadLetter("POS", "expected at most")),
    # and an END beyond 32 bits (a chromosome longer than 2^31)
    "end_beyond_2_31.vcf": (with_bad(record(2**31 + 5, alt="<DEL>", info="DP=1;END=2147483900")), Loaded(3)),
    "ref_illegal.vcf": (with_bad(record(150, ref="A1Z")), DeadLetter("REF", "expected bases")),
    "info_number_a.vcf": (
        with_bad(record(150, alt="C,G", info="AF=0.5")),
        DeadLetter("INFO/AF", "Number=A: expected 2 value(s), one per ALT", matched=True),
    ),
    "info_number_r.vcf": (
        with_bad(record(150, info="AD=1,2,3")),
        DeadLetter("INFO/AD", "Number=R: expected 2 value(s), REF and each ALT"),
    ),
    "format_number_g.vcf": (
        with_bad(record(150, fmt="GT:GL", s1="0/1:-1,-2", s2="1/1:-1,-2,-3")),
        DeadLetter("FORMAT/GL of S1", "Number=G: expected 3 value(s), one per genotype"),
    ),
    "undeclared_info.vcf": (
        with_bad(record(150, info="XX=1")),
        DeadLetter("INFO/XX", "not declared in any input header (Hint: --infer_headers)"),
    ),
    "undeclared_format.vcf": (
        with_bad(record(150, fmt="GT:YY", s1="0/1:1", s2="1/1:2")),
        DeadLetter("FORMAT/YY", "not declared in any input header"),
    ),
    # htslib reads Integers beyond 32 bits as missing; our INT64 columns hold them as written
    "integer_beyond_32_bits.vcf": (with_bad(record(150, info="DP=2147483648")), Loaded(3)),
    "list_integer_beyond_32_bits.vcf": (with_bad(record(150, info="AD=1,99999999999")), Loaded(3)),
    "integer_beyond_64_bits.vcf": (
        with_bad(record(150, info="DP=99999999999999999999")),
        DeadLetter("INFO/DP", "Type=Integer: expected 64-bit integers"),
    ),
    # htslib ignores an END before POS (with a warning) and takes the end from REF, as we do
    "end_before_pos.vcf": (with_bad(record(150, info="DP=1;END=120")), Loaded(3)),
    "allele_out_of_range.vcf": (
        with_bad(record(150, s1="0/2")),
        DeadLetter("FORMAT/GT of S1", "allele 2 does not exist"),
    ),
    "not_utf8.vcf": (
        (HEADER + GOOD[0]).encode() + record(150).encode()[:-4] + b"\xff/1\n" + GOOD[1].encode(),
        DeadLetter("record", "htslib could not parse this line"),
    ),  # fmt: skip
    # odd but valid: loaded
    "crlf_line_endings.vcf": ((HEADER + "".join(GOOD)).replace("\n", "\r\n").encode(), Loaded(3)),
    "unsorted.vcf": ((HEADER + GOOD[2] + GOOD[0] + GOOD[1]).encode(), Loaded(3)),
    "duplicate_records.vcf": ((HEADER + GOOD[0] + GOOD[0] + GOOD[1]).encode(), Loaded(3)),
    "ref_iupac_code.vcf": (with_bad(record(150, ref="R")), Loaded(3)),  # as in reference FASTAs
    "310_alt_alleles.vcf": (
        with_bad(record(150, alt=_alleles(310), info="DP=1", s1="0/305", s2="300|309")),
        Loaded(3),
    ),
}
RECORD_CASES = [name for name, (_, outcome) in CASES.items() if not isinstance(outcome, Refused)]


def write_case(tmp_path: Path, name: str) -> Path:
    data, _ = CASES[name]
    if callable(data):
        data = data(tmp_path) if data is _truncated_bgzip else data()
    path = tmp_path / name
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("name", RECORD_CASES)
def test_both_readers_give_the_outcome(tmp_path, name):
    """The vectorized reader and pysam's agree on rows and dead letters, and they add up."""
    from variant_etl.core.options import ReadOptions
    from variant_etl.core.reader import Malformed, ReadResult, read_split
    from variant_etl.plan import make_plan

    path = write_case(tmp_path, name)
    outcome = CASES[name][1]
    plan = make_plan(
        input_patterns=[str(path)],
        input_file=None,
        sharding_config_path=None,
        read=ReadOptions(),
        parquet=None,
    )
    readings = []
    for fast in (True, False):
        result = ReadResult()
        items = list(
            read_split(
                str(path), plan.schema, one_based=False, allow_malformed=True, batch_rows=1000,
                result=result, fast=fast,
            )
        )  # fmt: skip
        letters = [item for item in items if isinstance(item, Malformed)]
        rows = [row for item in items if not isinstance(item, Malformed) for row in item.to_pylist()]
        assert len(rows) + len(letters) == result.records_read
        readings.append((rows, letters))
        if isinstance(outcome, DeadLetter) and outcome.matched:
            assert (len(rows), letters, result.records_matched) == (outcome.rows + 1, [], 1)
        elif isinstance(outcome, DeadLetter):
            assert len(rows) == outcome.rows
            (letter,) = letters
            assert (letter.file, letter.line, letter.field) == (str(path), outcome.line, outcome.field)
            assert outcome.reason in letter.reason
            assert letter.raw  # the line as written, for the user to fix
        else:
            assert (len(rows), letters) == (outcome.rows, [])
    assert repr(readings[0]) == repr(readings[1])


@pytest.mark.parametrize("name", list(CASES))
def test_launch_fails_clearly_or_loads(tmp_path, name):
    """Without --allow_malformed_records: one line naming file (line, field, value), nothing
    written; or a complete output."""
    path = write_case(tmp_path, name)
    out = tmp_path / "out"
    result = run_cli("launch", "--input_pattern", str(path), "--output_parquet_dir", str(out))
    outcome = CASES[name][1]
    assert "Traceback" not in result.stderr
    if isinstance(outcome, Loaded):
        assert result.returncode == 0, result.stderr
        manifest = check_manifest_adds_up(out)
        assert manifest["totals"]["rows_written"] == outcome.rows
        return
    lines = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1, result.stderr
    if isinstance(outcome, Refused):
        assert result.returncode == (2 if outcome.at_plan else 1)
        assert lines[0].startswith(f"error: {path}: {outcome.message}"), lines[0]
    else:
        assert result.returncode == 1
        assert lines[0].startswith(f"error: {path}:{outcome.line}: {outcome.field}: "), lines[0]
        assert outcome.reason in lines[0] and "--allow_malformed_records" in lines[0]
    assert not out.exists() or not list(out.iterdir())  # nothing half-written


def test_allow_malformed_records_accounts_for_every_record_of_every_file(tmp_path):
    """All record-level cases in one run: per file, the records read are the rows passed on
    plus the dead letters; the dead letters are the expected ones; the odd-but-valid files
    keep their content."""
    paths = [write_case(tmp_path, name) for name in RECORD_CASES]
    out = tmp_path / "out"
    args = ["launch", "--output_parquet_dir", str(out), "--allow_malformed_records"]
    for path in paths:
        args += ["--input_pattern", str(path)]
    result = run_cli(*args)
    assert result.returncode == 0, result.stderr
    manifest = check_manifest_adds_up(out)
    letters = [json.loads(line) for f in sorted((out / "_malformed").glob("*.jsonl")) for line in f.open()]
    by_file = {entry["path"]: entry for entry in manifest["inputs"]}
    for name, path in zip(RECORD_CASES, paths):
        outcome = CASES[name][1]
        entry = by_file[str(path)]
        mine = [e for e in letters if e["file"] == str(path)]
        if isinstance(outcome, DeadLetter) and outcome.matched:
            assert mine == [] and entry["malformed"] == 0 and entry["records_read"] == outcome.rows + 1
            assert entry["number_a_values_matched"] == 1
        elif isinstance(outcome, DeadLetter):
            assert [(e["line"], e["field"]) for e in mine] == [(outcome.line, outcome.field)]
            assert entry["malformed"] == 1 and entry["records_read"] == outcome.rows + 1
        else:
            assert mine == [] and entry["malformed"] == 0 and entry["records_read"] == outcome.rows
        assert entry["records_read"] == entry["records_parsed"] + entry["malformed"]
    sql = duckdb.connect()
    rows = sql.execute(
        f"SELECT start_position, len(alternate_bases), [c.genotype FOR c IN call] "
        f"FROM read_parquet('{out}/*/*.parquet') WHERE len(alternate_bases) > 300"
    ).fetchall()
    assert rows == [(149, 310, [[0, 305], [300, 309]])]
    starts = [
        r[0]
        for r in sql.execute(f"SELECT start_position FROM read_parquet('{out}/chr1/*.parquet')").fetchall()
    ]
    assert starts == sorted(starts)  # unsorted input, sorted files


def test_crlf_and_unsorted_files_give_the_rows_of_the_plain_sorted_file(tmp_path):
    from variant_etl.core.options import ReadOptions
    from variant_etl.core.reader import ReadResult, read_split
    from variant_etl.plan import make_plan

    def rows_of(path: Path) -> list:
        plan = make_plan(
            input_patterns=[str(path)], input_file=None, sharding_config_path=None, read=ReadOptions(),
            parquet=None,
        )  # fmt: skip
        items = read_split(
            str(path),
            plan.schema,
            one_based=False,
            allow_malformed=False,
            batch_rows=1000,
            result=ReadResult(),
        )
        return sorted(
            (row for batch in items for row in batch.to_pylist()), key=lambda r: r["start_position"]
        )

    plain = tmp_path / "plain.vcf"
    plain.write_text(HEADER + "".join(GOOD))
    expected = rows_of(plain)
    assert rows_of(write_case(tmp_path, "crlf_line_endings.vcf")) == expected
    assert rows_of(write_case(tmp_path, "unsorted.vcf")) == expected


@pytest.mark.parametrize(
    "name, outcome",
    [
        (
            "hts-specs/failed_body_sample_011.vcf",
            Refused("header line 3: sample name 'HG00096' appears twice"),
        ),
        (
            "hts-specs/failed_body_sample_003.vcf",
            DeadLetter("sample HG00096", "has 4 sub-fields but FORMAT", line=4, rows=0),
        ),
    ],
)
def test_malformed_files_of_the_shared_test_data(tmp_path, name, outcome):
    """The spec-invalid files of shared/testdata/real/ (PROVENANCE.md): clear errors."""
    path = REAL / name
    out = tmp_path / "out"
    result = run_cli("launch", "--input_pattern", str(path), "--output_parquet_dir", str(out))
    assert "Traceback" not in result.stderr
    if isinstance(outcome, Refused):
        assert result.returncode == 2
        assert f"error: {path}: {outcome.message}" in result.stderr
        return
    assert result.returncode == 1
    assert f"error: {path}:{outcome.line}: {outcome.field}: {outcome.reason}" in result.stderr
    result = run_cli(
        "launch", "--input_pattern", str(path), "--output_parquet_dir", str(out), "--allow_malformed_records"
    )
    assert result.returncode == 0, result.stderr
    assert check_manifest_adds_up(out)["totals"]["malformed"] == 1


def test_random_bytes_never_crash(tmp_path):
    """Not a VCF at all, in every container: one clear error each."""
    data = os.urandom(5000)
    for name, content in (
        ("random.vcf", data),
        ("random.vcf.gz", gzip.compress(data)),
        ("random_gzip_magic.vcf.gz", b"\x1f\x8b\x08\x00" + data),
    ):
        path = tmp_path / name
        path.write_bytes(content)
        result = run_cli("plan", "--input_pattern", str(path))
        assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
        assert result.stderr.startswith(f"error: {path}: "), result.stderr
