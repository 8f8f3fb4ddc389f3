"""`query`: region, sample and column selection over a launch output, checked against htslib's
own reading of the inputs (tabix region queries, bcftools), and DuckDB's row-group pruning."""

from __future__ import annotations

import csv
import json
import shutil

import pyarrow.parquet as pq
import pysam
import pytest

from tests.conftest import VT_VCF, bcftools_positions, bcftools_query, generate_vcf, run_cli
from variant_etl.core.errors import VariantEtlError
from variant_etl.outputs.selection import parse_genomic_region, select

LARGE = VT_VCF / "valid-4.1-large.vcf"  # 9,882 records on chromosome 1, many with INFO/END
SAMPLES = VT_VCF / "valid-4.0.vcf"  # NA00001..NA00003 on chromosomes 19 and 20
OVERLAP_VCF = """\
##fileformat=VCFv4.2
##contig=<ID=7>
##INFO=<ID=END,Number=1,Type=Integer,Description="End position">
##ALT=<ID=DEL,Description="Deletion">
#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO
7\t100\tdel5\tAAAAA\tA\t50\tPASS\t.
7\t200\tsnv\tC\tT\t50\tPASS\t.
7\t300\tsv\tN\t<DEL>\t50\tPASS\tEND=400
"""


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("inputs")
    overlap = folder / "overlap.vcf"
    overlap.write_text(OVERLAP_VCF)
    return [LARGE, SAMPLES, overlap]


@pytest.fixture(scope="module")
def output(inputs, tmp_path_factory):
    out = tmp_path_factory.mktemp("query") / "out"
    patterns = [arg for path in inputs for arg in ("--input_pattern", str(path))]
    result = run_cli("launch", *patterns, "--output_parquet_dir", str(out))
    assert result.returncode == 0, result.stderr
    return out


@pytest.fixture(scope="module")
def indexed(inputs, tmp_path_factory):
    """Each input bgzipped and tabix-indexed: htslib's region query is the reference."""
    folder = tmp_path_factory.mktemp("indexed")
    files = []
    for path in inputs:
        copy = folder / path.name
        shutil.copy(path, copy)
        files.append(pysam.tabix_index(str(copy), preset="vcf", force=True))
    return files


def query_rows(output, tmp_path, *args: str) -> list[dict]:
    """Runs `query ... --output x.parquet` and reads the file back."""
    target = tmp_path / "result.parquet"
    result = run_cli("query", "--input_parquet_dir", str(output), *args, "--output", str(target))
    assert result.returncode == 0, result.stderr
    rows = pq.read_table(target).to_pylist()
    assert result.stdout.strip() == f"{len(rows)} row(s) written to {target}"
    return rows


def select_rows(output, regions: list[str], *, samples=(), columns=None) -> list[dict]:
    """The statement `query` would run, run in this process (the many cases of one rule)."""
    import duckdb

    from variant_etl.outputs.query import query_sql

    connection = duckdb.connect()
    sql, params = query_sql(
        str(output), select(str(output), regions, list(samples)), connection, columns=columns, limit=None
    )
    result = connection.execute(sql, params)
    names = [column[0] for column in result.description]
    return [dict(zip(names, row)) for row in result.fetchall()]


def positions(rows) -> list[tuple[str, int]]:
    return [(row["reference_name"], row["start_position"] + 1) for row in rows]


def tabix_positions(indexed, region: str) -> list[tuple[str, int]]:
    contig, start, end = parse_genomic_region(region)
    found = []
    for path in indexed:
        with pysam.VariantFile(path) as vcf:
            if contig in vcf.index:
                fetched = vcf.fetch(contig, start - 1, end) if start else vcf.fetch(contig)
                found += [(record.chrom, record.pos) for record in fetched]
    return found


# --- parse_genomic_region --------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, expected",
    [
        ("chr1", ("chr1", None, None)),
        ("chr1:100", ("chr1", 100, 100)),
        ("chr1:100-200", ("chr1", 100, 200)),
        ("chr1:1,000-2,000", ("chr1", 1000, 2000)),
        (" 20:5-5 ", ("20", 5, 5)),
        ("HLA-A*01:01", ("HLA-A*01", 1, 1)),  # as bcftools reads it
    ],
)
def test_parse_genomic_region(text, expected):
    assert parse_genomic_region(text) == expected


@pytest.mark.parametrize(
    "text, message",
    [
        ("", "a region must not be empty"),
        ("chr1:0", "bad region 'chr1:0'"),
        ("chr1:200-100", "bad region 'chr1:200-100'"),
        ("chr1:100-", "bad region 'chr1:100-'"),
        ("chr1:1e6", "bad region 'chr1:1e6'"),
    ],
)
def test_parse_genomic_region_refuses(text, message):
    with pytest.raises(VariantEtlError, match="--genomic_regions: " + message):
        parse_genomic_region(text)


# --- regions -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "region, names",
    [
        ("7:99", []),  # before the deletion
        ("7:100", ["del5"]),
        ("7:102-103", ["del5"]),  # starts before the region, reaches into it
        ("7:104", ["del5"]),  # its last deleted base
        ("7:105-199", []),
        ("7:200", ["snv"]),
        ("7:350", ["sv"]),  # inside <DEL> 300..400 (INFO/END)
        ("7:400-1000", ["sv"]),
        ("7:401-1000", []),
        ("7", ["del5", "snv", "sv"]),
    ],
)
def test_regions_select_overlapping_variants(output, indexed, region, names):
    rows = select_rows(output, [region])
    assert [name for row in rows for name in row["names"]] == names
    assert positions(rows) == tabix_positions(indexed, region)


@pytest.mark.parametrize(
    "regions",
    [["1:10001-11000"], ["1:11050"], ["1:1,000,000-1,100,000"], ["1:50000-120000", "20:1-1200000"], ["19"]],
)
def test_regions_match_tabix(output, indexed, regions):
    rows = select_rows(output, regions)
    assert rows, "a region with variants"
    assert positions(rows) == [
        position for region in regions for position in tabix_positions(indexed, region)
    ]


def test_query_command_regions_match_tabix(output, tmp_path, indexed):
    regions = ["1:10001-20000", "7:102-103", "20:17330-1230237"]
    rows = query_rows(output, tmp_path, "--genomic_regions", *regions)
    assert positions(rows) == [
        position for region in regions for position in tabix_positions(indexed, region)
    ]
    assert len(rows) > 10


def test_no_region_is_every_variant(output, tmp_path, inputs):
    rows = query_rows(output, tmp_path, "--columns", "reference_name", "start_position")
    expected = [
        line.split("\t") for path in inputs for line in bcftools_query(path, "%CHROM\t%POS\n").splitlines()
    ]
    got = [[row["reference_name"], str(row["start_position"] + 1)] for row in rows]
    assert sorted(got) == sorted(expected)
    assert len(got) == 9882 + 5 + 3


def test_default_columns_are_the_site_columns(output, tmp_path):
    (row,) = query_rows(output, tmp_path, "--genomic_regions", "19:1234567")
    assert row == {
        "reference_name": "19",
        "start_position": 1234566,
        "end_position": 1234570,
        "reference_bases": "GTCT",
        "alternate_bases.alt": ["G", "GTACT"],
        "names": ["microsat1"],
        "quality": 50.0,
        "filter": ["PASS"],
    }


# --- samples and columns -----------------------------------------------------------------------


def sample_ids(output) -> dict[str, int]:
    table = pq.read_table(output / "__sample_info.parquet").to_pylist()
    return {row["sample_name"]: row["sample_id"] for row in table}


def genotypes(path, sample: str) -> list[list[int]]:
    """GT of one sample per record, read by bcftools, as allele indexes (-1 for '.')."""
    lines = bcftools_query(path, "[%SAMPLE=%GT\t]\n").splitlines()
    calls = [dict(item.split("=") for item in line.split("\t") if item) for line in lines]
    return [[-1 if a == "." else int(a) for a in call[sample].replace("|", "/").split("/")] for call in calls]


def test_sample_names_keep_only_their_calls(output, tmp_path):
    rows = query_rows(output, tmp_path, "--genomic_regions", "20", "--sample_names", "NA00002")
    assert len(rows) == 4
    assert [[c["sample_id"] for c in row["call"]] for row in rows] == [[sample_ids(output)["NA00002"]]] * 4
    assert [row["call"][0]["genotype"] for row in rows] == genotypes(SAMPLES, "NA00002")[:4]  # 19 is last
    assert "reference_bases" in rows[0]  # the site columns too


def test_columns_of_calls_of_two_samples(output, tmp_path):
    ids = sample_ids(output)
    rows = query_rows(
        output, tmp_path, "--genomic_regions", "20", "--sample_names", "NA00003", "NA00001",
        "--columns", "start_position", "call.sample_id", "call.genotype", "call.DP", "alternate_bases.alt",
    )  # fmt: skip
    assert list(rows[0]) == [
        "start_position",
        "call.sample_id",
        "call.genotype",
        "call.DP",
        "alternate_bases.alt",
    ]
    # calls stay in the file's sample order
    assert {tuple(row["call.sample_id"]) for row in rows} == {(ids["NA00001"], ids["NA00003"])}
    first, third = genotypes(SAMPLES, "NA00001")[:4], genotypes(SAMPLES, "NA00003")[:4]
    assert [row["call.genotype"] for row in rows] == [list(pair) for pair in zip(first, third)]
    assert rows[0]["call.DP"] == [1, 5]
    assert rows[0]["alternate_bases.alt"] == ["A"]


def test_call_without_sample_names_is_every_call(output, tmp_path):
    rows = query_rows(output, tmp_path, "--genomic_regions", "20:14370", "--columns", "call.sample_id")
    assert rows == [{"call.sample_id": [sample_ids(output)[f"NA0000{i}"] for i in (1, 2, 3)]}]


def test_limit(output, tmp_path):
    rows = query_rows(
        output, tmp_path, "--genomic_regions", "1", "--limit", "7", "--columns", "start_position"
    )
    assert [("1", row["start_position"] + 1) for row in rows] == bcftools_positions(LARGE)[:7]


def test_csv_equals_parquet(output, tmp_path):
    args = ["--input_parquet_dir", str(output), "--genomic_regions", "1:10001-60000"]
    parquet = query_rows(output, tmp_path, *args[2:])
    target = tmp_path / "result.csv"
    result = run_cli("query", *args, "--output", str(target))
    assert result.returncode == 0, result.stderr
    with open(target, newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == list(parquet[0])
    assert len(rows) == len(parquet) > 10
    for text, row in zip(rows, parquet):
        assert text["reference_name"] == row["reference_name"]
        assert int(text["start_position"]) == row["start_position"]
        assert int(text["end_position"]) == row["end_position"]
        assert text["alternate_bases.alt"] == "[" + ", ".join(row["alternate_bases.alt"]) + "]"
        assert (float(text["quality"]) if text["quality"] else None) == row["quality"]


def test_prints_a_table(output):
    result = run_cli(
        "query", "--input_parquet_dir", str(output), "--genomic_regions", "20:1110696",
        "--columns", "reference_name", "start_position", "names",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert any("reference_name" in line and "start_position" in line and "names" in line for line in lines)
    assert any("20" in line and "1110695" in line and "[rs6040355]" in line for line in lines)


def test_prints_the_count_of_a_long_result(output):
    result = run_cli("query", "--input_parquet_dir", str(output), "--genomic_regions", "1")
    assert result.returncode == 0, result.stderr
    assert "9882 rows" in result.stdout


# --- errors ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args, message",
    [
        (["--columns", "start", "names"], "--columns: no column 'start' in {out}. Hint: did you mean 'start_position'? its columns are reference_name, start_position,"),
        (["--sample_names", "NA00002", "NA9"], "--sample_names: no sample 'NA9' in {out}. Hint: its samples are GS000016676-ASM, NA00001, NA00002, NA00003"),
        (["--genomic_regions", "20:300-200"], "--genomic_regions: bad region '20:300-200'"),
        (["--output", "result.tsv"], "--output: 'result.tsv' must end in .csv or .parquet"),
        (["--output", "/no/such/dir/result.csv"], "query of {out} failed: IO Error"),
        (["--limit", "0"], "argument --limit: expected a positive integer, got '0'. Hint: variant-etl query --help"),
    ],
)  # fmt: skip
def test_errors(output, args, message):
    result = run_cli("query", "--input_parquet_dir", str(output), *args)
    assert result.returncode == 2
    assert result.stderr.startswith("error: ")
    assert message.format(out=output) in result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert result.stdout == ""


@pytest.mark.parametrize(
    "column, hint",
    [
        ("call.GT", "did you mean 'call.genotype'?"),  # GT is call.genotype
        ("call.genotipe", "did you mean 'call.genotype'?"),
        ("pos", "did you mean 'start_position'?"),
        ("call.dp", "did you mean 'call.DP'?"),
        ("alternate_bases.AF", "did you mean 'alternate_bases.AC'?"),  # AF is top-level in this output
        ("count(*)", "its columns are reference_name"),  # a column, not SQL
        ("names; DROP TABLE x", "its columns are reference_name"),
    ],
)
def test_unknown_column_hints(output, column, hint):
    with pytest.raises(VariantEtlError) as raised:
        select_rows(output, [], columns=[column])
    assert str(raised.value).startswith(f"--columns: no column {column!r} in {output}. Hint: {hint}")


def test_not_an_output(tmp_path):
    (tmp_path / "chr1").mkdir()
    result = run_cli("query", "--input_parquet_dir", str(tmp_path))
    assert result.returncode == 2
    assert result.stderr == (
        f"error: {tmp_path}: no _manifest.json: not the output of a completed `variant_etl launch`. "
        "Hint: pass the --output_parquet_dir of a run that finished (it holds _SUCCESS).\n"
    )


def test_values_are_parameters_not_sql(output, tmp_path):
    """A region or sample name full of quotes is a value, never SQL."""
    assert query_rows(output, tmp_path, "--genomic_regions", "1' OR '1'='1") == []
    result = run_cli("query", "--input_parquet_dir", str(output), "--sample_names", "x') OR (1=1")
    assert result.returncode == 2 and "no sample" in result.stderr


# --- row-group pruning -------------------------------------------------------------------------

ROW_GROUP = 1000


@pytest.fixture(scope="module")
def many_row_groups(tmp_path_factory):
    folder = tmp_path_factory.mktemp("pruning")
    vcf = generate_vcf(folder / "generated.vcf", 50_000, 0)
    out = folder / "out"
    result = run_cli(
        "launch", "--input_pattern", str(vcf), "--output_parquet_dir", str(out),
        "--parquet_row_group_size", str(ROW_GROUP),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return out


def overlapping_row_groups(files, contig: str, start: int, end: int) -> tuple[int, int]:
    """(row groups whose min/max statistics may hold a variant overlapping start-end, all)."""
    may, total = 0, 0
    for path in files:
        metadata = pq.ParquetFile(path).metadata
        names = metadata.schema.names
        for i in range(metadata.num_row_groups):
            total += 1
            group = metadata.row_group(i)
            stats = {name: group.column(names.index(name)).statistics for name in names[:3]}
            contig_ok = stats["reference_name"].min <= contig <= stats["reference_name"].max
            if contig_ok and stats["start_position"].min <= end - 1 and stats["end_position"].max > start - 1:
                may += 1
    return may, total


def test_point_query_reads_few_row_groups(many_row_groups, tmp_path):
    import duckdb

    from variant_etl.outputs.query import query_sql

    middle = pq.read_table(many_row_groups / "chr7", columns=["start_position"])["start_position"][
        2000
    ].as_py()
    region = f"chr7:{middle + 1}"
    selection = select(str(many_row_groups), [region], [])
    may, total = overlapping_row_groups(selection.files, "chr7", middle + 1, middle + 1)
    connection = duckdb.connect()
    sql, params = query_sql(str(many_row_groups), selection, connection, columns=None, limit=None)
    profile = tmp_path / "profile.json"
    connection.execute("PRAGMA enable_profiling='json'")
    connection.execute(f"SET profiling_output='{profile}'")
    rows = connection.execute(sql, params).fetchall()
    connection.close()
    scan = json.loads(profile.read_text())["query"]

    assert total >= 50 and 1 <= may <= 2  # the statistics allow it...
    assert 1 <= scan["total_row_groups_scanned"] <= may  # ...and DuckDB reads no more
    assert scan["total_row_groups_to_scan"] == total
    assert scan["total_rows_scanned"] <= may * ROW_GROUP < 50_000 / 20
    # the command runs that statement
    assert [row[1] for row in rows] == [middle]
    assert [
        row["start_position"] for row in query_rows(many_row_groups, tmp_path, "--genomic_regions", region)
    ] == [middle]
