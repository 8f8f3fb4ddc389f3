"""`export --input_table`: VCF -> variant_etl -> BigQuery (the emulator) -> VCF gives the same
records as bcftools reads them, with the header launch kept in TABLE__vcf_header or, without
it, one made from the table schema."""

from __future__ import annotations

import gzip
import re

import pysam
import pytest

from tests.conftest import REAL, VT_VCF, BigQuerySession, bcftools_view, run_cli
from tests.test_export import MERGE_FLAGS, MERGE_INPUTS, parsed, without_malformed

# samples with phased and missing values, Infinity and lists with missing items, Number=A/R/G
FILES = [VT_VCF / "valid-4.0.vcf", VT_VCF / "valid-4.2.vcf", REAL / "bcftools" / "norm.vcf"]


def export_table(bq, table: str, vcf, *extra: str):
    result = run_cli(
        "export", "--input_table", f"test-project:{bq.dataset}.{table}", "--output_vcf", str(vcf), *extra,
        env_extra={"BIGQUERY_EMULATOR_HOST": bq.host},
    )  # fmt: skip
    return result


@pytest.fixture(scope="module")
def valid_tables(bigquery_emulator, tmp_path_factory):
    """valid-4.0.vcf loaded once into tables `sel__*` of a dataset of their own, for the tests
    that only export them."""
    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.setenv("BIGQUERY_EMULATOR_HOST", bigquery_emulator)
        session = BigQuerySession(bigquery_emulator, tmp_path_factory.mktemp("valid_tables"))
        loaded = session.launch("sel", VT_VCF / "valid-4.0.vcf")
    assert loaded.returncode == 0, loaded.stderr
    return session


@pytest.mark.parametrize("source", FILES, ids=lambda p: p.name)
def test_round_trip_through_bigquery(bq, tmp_path, source):
    loaded = bq.launch("rt", source, extra=("--infer_headers", "--output_parquet_dir", str(tmp_path / "out")))
    assert loaded.returncode == 0, loaded.stderr
    vcf = tmp_path / "from_bq.vcf.gz"
    result = export_table(bq, "rt", vcf)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "from_bq.vcf.gz.tbi").exists()
    expected = without_malformed(parsed(bcftools_view(source)), tmp_path / "out")
    assert parsed(bcftools_view(vcf)) == expected
    # the same text as the export of the Parquet output of the same run (same header, values)
    from_parquet = tmp_path / "from_parquet.vcf"
    assert (
        run_cli(
            "export", "--input_parquet_dir", str(tmp_path / "out"), "--output_vcf", str(from_parquet)
        ).returncode
        == 0
    )
    assert gzip.decompress(vcf.read_bytes()).decode() == all_missing_as_absent(from_parquet.read_text())


def all_missing_as_absent(vcf: str) -> str:
    """BigQuery has no list of NULLs: a list whose every value is missing ('HQ=.,.') is
    loaded empty, as gcp-variant-transforms loads it, and comes back absent ('.' in VCF)."""
    lines = []
    for line in vcf.splitlines(keepends=True):
        if not line.startswith("#"):
            columns = line.rstrip("\n").split("\t")
            info = [e for e in columns[7].split(";") if not re.fullmatch(r"[^=]+=\.(,\.)+", e)]
            columns[7] = ";".join(info) or "."
            for i in range(9, len(columns)):
                parts = ["." if re.fullmatch(r"\.(,\.)+", p) else p for p in columns[i].split(":")]
                while len(parts) > 1 and parts[-1] == ".":
                    parts.pop()
                columns[i] = ":".join(parts)
            line = "\t".join(columns) + "\n"
        lines.append(line)
    return "".join(lines)


def test_regions_and_samples_are_selected_in_the_query(valid_tables, tmp_path):
    vcf = tmp_path / "part.vcf.gz"
    result = export_table(
        valid_tables, "sel", vcf, "--genomic_regions", "20:1110696-1230237", "19", "--sample_names", "NA00002"
    )
    assert result.returncode == 0, result.stderr
    with pysam.VariantFile(str(vcf)) as exported:
        assert list(exported.header.samples) == ["NA00002"]
        rows = [(r.chrom, r.pos, r.samples["NA00002"]["GT"]) for r in exported.fetch()]
    assert rows == [("19", 1234567, (0, 2)), ("20", 1110696, (2, 1)), ("20", 1230237, (0, 0))]
    # a deletion that starts before the region but reaches into it
    result = export_table(valid_tables, "sel", vcf, "--genomic_regions", "19:1234570-1234600")
    assert result.returncode == 0, result.stderr
    with pysam.VariantFile(str(vcf)) as exported:
        assert [r.id for r in exported.fetch()] == ["microsat1"]


@pytest.mark.slow
def test_one_based_tables(bq, tmp_path):
    """--use_1_based_coordinate: start_position is POS; the header table says so, and regions
    select the same variants."""
    source = VT_VCF / "valid-4.0.vcf"
    assert bq.launch("one", source, extra=("--use_1_based_coordinate",)).returncode == 0
    assert bq.query(f"SELECT MIN(start_position) FROM {bq.dataset}.one__chr19")[0] == (1234567,)
    vcf = tmp_path / "one.vcf.gz"
    assert export_table(bq, "one", vcf).returncode == 0
    assert parsed(bcftools_view(vcf)) == parsed(bcftools_view(source))
    assert export_table(bq, "one", vcf, "--genomic_regions", "19:1234570-1234600", "20:14370").returncode == 0
    with pysam.VariantFile(str(vcf)) as exported:
        assert [r.id for r in exported.fetch()] == ["microsat1", "rs6054257"]


@pytest.mark.parametrize(
    "source", [VT_VCF / "valid-4.0.vcf", REAL / "bcftools" / "norm.vcf"], ids=lambda p: p.name
)
def test_without_the_header_table_the_header_is_made_from_the_schema(bq, tmp_path, source):
    """Tables of older versions (or of gcp-variant-transforms) have no TABLE__vcf_header: the
    definitions come from the column names, types, modes and descriptions."""
    assert bq.launch("nohdr", source).returncode == 0
    bq.client.delete_table(f"test-project.{bq.dataset}.nohdr__vcf_header")
    vcf = tmp_path / "made.vcf.gz"
    result = export_table(bq, "nohdr", vcf)
    assert result.returncode == 0, result.stderr
    assert parsed(bcftools_view(vcf)) == parsed(bcftools_view(source))
    with pysam.VariantFile(str(vcf)) as exported:
        header = exported.header
        assert header.formats["GQ"].description == "Genotype Quality" if "GQ" in header.formats else True
        assert all(header.contigs[c].name == c for c in header.contigs)
        assert set(header.filters) >= {r.filter.keys()[0] for r in exported.fetch() if r.filter.keys()}


def test_appended_runs_export_with_both_headers(bq, tmp_path, write_vcf):
    header = "##fileformat=VCFv4.2\n{info}##contig=<ID=1,length=1000>\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n"
    dp = '##INFO=<ID=DP,Number=1,Type=Integer,Description="d">\n'
    xr = '##INFO=<ID=XR,Number=R,Type=Integer,Description="new">\n'
    first = write_vcf("a.vcf", header.format(info=dp) + "1\t5\t.\tA\tC\t.\t.\tDP=1\n")
    # DP in the second file too: the emulator cannot load a file that lacks a column of the table
    second = write_vcf("b.vcf", header.format(info=dp + xr) + "1\t6\t.\tA\tC,G\t.\t.\tDP=2;XR=1,.,3\n")
    assert bq.launch("app", first).returncode == 0
    added = bq.launch("app", second, extra=("--append", "--update_schema_on_append"))
    assert added.returncode == 0, added.stderr
    vcf = tmp_path / "both.vcf"
    result = export_table(bq, "app", vcf)
    assert result.returncode == 0, result.stderr
    lines = vcf.read_text().splitlines()
    assert '##INFO=<ID=XR,Number=R,Type=Integer,Description="new">' in lines
    assert '##INFO=<ID=DP,Number=1,Type=Integer,Description="d">' in lines
    assert [line.split("\t")[:8] for line in lines if not line.startswith("#")] == [
        ["1", "5", ".", "A", "C", ".", ".", "DP=1"],
        ["1", "6", ".", "A", "C,G", ".", ".", "DP=2;XR=1,.,3"],
    ]


def test_export_of_a_table_that_does_not_exist(bq, tmp_path):
    result = export_table(bq, "nothing", tmp_path / "x.vcf.gz")
    assert result.returncode == 2, result.stderr
    assert f"no table test-project.{bq.dataset}.nothing__sample_info" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    "args, message",
    [
        (("--sample_names", "NOBODY"), "--sample_names: no sample 'NOBODY'"),
        (("--genomic_regions", "20:10-5"), "--genomic_regions: bad region '20:10-5'"),
    ],
)
def test_export_errors(valid_tables, tmp_path, args, message):
    result = export_table(valid_tables, "sel", tmp_path / "x.vcf.gz", *args)
    assert result.returncode == 2, result.stderr
    assert message in result.stderr and "Traceback" not in result.stderr


def test_input_table_and_input_parquet_dir_exclude_each_other(tmp_path):
    result = run_cli(
        "export", "--input_table", "p:d.t", "--input_parquet_dir", str(tmp_path), "--output_vcf", "x.vcf"
    )
    assert result.returncode == 2 and "not allowed with argument" in result.stderr
    bad = run_cli("export", "--input_table", "d.t", "--output_vcf", "x.vcf")
    assert bad.returncode == 2 and "--input_table 'd.t' names no project" in bad.stderr
    pointless = run_cli(
        "export", "--input_parquet_dir", str(tmp_path), "--output_vcf", "x.vcf", "--null_numeric_value_replacement", "0"
    )  # fmt: skip
    assert pointless.returncode == 2
    assert "--null_numeric_value_replacement only applies with --input_table" in pointless.stderr


@pytest.mark.slow
def test_merged_output_through_bigquery_is_the_parquet_export(bq, tmp_path):
    """MOVE_TO_CALLS with INFO moved to the calls, call.quality and call.filter: the export of the
    tables is the export of the Parquet output of the same run (tests/test_export.py checks that
    one against each input)."""
    out = tmp_path / "out"
    loaded = bq.launch("merged", *MERGE_INPUTS, extra=(*MERGE_FLAGS, "--output_parquet_dir", str(out)))
    assert loaded.returncode == 0, loaded.stderr
    from_bq, from_parquet = tmp_path / "bq.vcf", tmp_path / "parquet.vcf"
    result = export_table(bq, "merged", from_bq)
    assert result.returncode == 0, result.stderr
    assert (
        run_cli("export", "--input_parquet_dir", str(out), "--output_vcf", str(from_parquet)).returncode == 0
    )
    bq_text, parquet_text = from_bq.read_text(), from_parquet.read_text()
    header = [line for line in parquet_text.splitlines() if line.startswith("#")]
    assert [line for line in bq_text.splitlines() if line.startswith("#")] == header
    # the same values; a list whose every value is missing is absent (see all_missing_as_absent),
    # which can leave a FORMAT key out of a record
    assert parsed(bq_text) == parsed(parquet_text)
    assert "GT:GQ:DP:HQ:NS:AF:QUAL:FT\t0|0:48:1:51,51:2:0.5:10:q10" in from_bq.read_text()


def test_hom_ref_calls_come_back_as_0_0(bq, tmp_path):
    """--move_hom_ref_calls: the tables keep only the sample of each 0/0 call (as
    gcp-variant-transforms' hom_ref_call); export writes it back as 0/0, like the Parquet export."""
    out = tmp_path / "out"
    loaded = bq.launch(
        "homref", VT_VCF / "valid-4.0.vcf", extra=("--move_hom_ref_calls", "--output_parquet_dir", str(out))
    )
    assert loaded.returncode == 0, loaded.stderr
    rows = bq.query(f"SELECT COUNT(*) AS n FROM `{bq.dataset}.homref__chr20` t, t.hom_ref_call AS h")
    assert rows == [(6,)]  # 14370: NA00001; 17330: NA00001, NA00003; 1230237: all three
    vcf = tmp_path / "from_bq.vcf.gz"
    assert export_table(bq, "homref", vcf).returncode == 0
    from_parquet = tmp_path / "from_parquet.vcf"
    assert (
        run_cli("export", "--input_parquet_dir", str(out), "--output_vcf", str(from_parquet)).returncode == 0
    )
    assert gzip.decompress(vcf.read_bytes()).decode() == all_missing_as_absent(from_parquet.read_text())
    with pysam.VariantFile(str(vcf)) as back:
        genotypes = {r.pos: [s["GT"] for s in r.samples.values()] for r in back if r.pos == 1230237}
    assert genotypes == {1230237: [(0, 0), (0, 0), (0, 0)]}
