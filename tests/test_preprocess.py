"""`preprocess`: gcp-variant-transforms' vcf_to_bq_preprocess. Its own integration tests
(testing/integration/preprocessor_tests/*.json: options and the report's expected lines) run
here on the test files we have; the report is VT's, line for line, except the malformed
records' error messages, which are ours (file line, field, value)."""

from __future__ import annotations

import duckdb
import pytest

from tests.conftest import VT_VCF, run_cli

CONFLICTS = "ID\tCategory\tConflicts\tFile Paths\tProposed Resolution"
INFERRED = "ID\tCategory\tProposed Resolution"
MALFORMED = "File Path\tVariant Record\tError Message"
PRE = VT_VCF / "preprocessor"

# VT's test name -> (inputs, report_all_conflicts, expected lines); {f} is our path of VT's file.
VT_TESTS = {
    "report-all-conflicts": (
        [PRE / "invalid-4.0.vcf", PRE / "valid-4.0.vcf"], True, [
            "Header Conflicts", CONFLICTS,
            f"GQ\tFORMAT\tnum=1 type=Float\t{PRE / 'invalid-4.0.vcf'}\tnum=1 type=Float",
            f" \t \tnum=1 type=Integer\t{PRE / 'valid-4.0.vcf'}\t ",
            "",
            "Inferred Headers", INFERRED, "FT\tFORMAT\tnum=. type=Integer",
            "",
            "Malformed Records", MALFORMED,
            f"{PRE / 'invalid-4.0.vcf'}\t19   microsat1 GTCT G,GTACT 50 PASS NS=3;DP=9;AA=G GT:GQ:FT 0/1:35:4 "
            "0/2:17:2 1/1:40:3\tline 23: POS: expected a positive integer, got ' '",  # VT: Start position is incorrect.
            "", "",
        ],
    ),
    "header-conflicts-from-file": (  # VT's input_file listed these two
        [VT_VCF / "valid-4.0.vcf", VT_VCF / "valid-4.2.vcf"], True, [
            "Header Conflicts", CONFLICTS,
            f"AF\tINFO\tnum=. type=Float\t{VT_VCF / 'valid-4.0.vcf'}\tnum=. type=Float",
            f" \t \tnum=A type=Float\t{VT_VCF / 'valid-4.2.vcf'}\t ",
            "", "No Inferred Headers Found.", "", "No Malformed Records Found.", "", "",
        ],
    ),
    "report-inferred-headers": (
        [VT_VCF / "infer-header-fields.vcf"], True, [
            "No Header Conflicts Found.", "",
            "Inferred Headers", INFERRED,
            "AA\tINFO\tnum=. type=String", "AF\tINFO\tnum=. type=Float", "DB\tINFO\tnum=0 type=Flag",
            "DP\tINFO\tnum=. type=Integer", "H2\tINFO\tnum=0 type=Flag", "NS\tINFO\tnum=. type=Float",
            "SVTYPE\tINFO\tnum=. type=String", "DP\tFORMAT\tnum=1 type=Float",
            "GQ\tFORMAT\tnum=1 type=Integer", "HQ\tFORMAT\tnum=. type=Integer",
            "", "No Malformed Records Found.", "", "",
        ],
    ),
    "report-malformed-records": (
        [VT_VCF / "invalid-4.0-POS-empty.vcf"], True, [
            "No Header Conflicts Found.", "", "No Inferred Headers Found.", "",
            "Malformed Records", MALFORMED,
            f"{VT_VCF / 'invalid-4.0-POS-empty.vcf'}\t20  rs6054257 G A 29 PASS NS=3;DP=14;AF=0.5;DB;H2 "
            "GT:GQ:DP:HQ 0|0:48:1:51,51 1|0:48:8:51,51 1/1:43:5:.,.\tline 19: POS: expected a positive "
            "integer, got ''",  # VT: Start position is incorrect.
            "", "",
        ],
    ),
    # VT's file was infer-undefined-header-fields.vcf, the same records as infer-header-fields.vcf
    "no-option-report-all-conflicts": ([VT_VCF / "infer-header-fields.vcf"], False, ["No Header Conflicts Found.", "", ""]),
}  # fmt: skip


def preprocess(*args):
    return run_cli("preprocess", *args)


@pytest.mark.parametrize("name", VT_TESTS)
def test_variant_transforms_preprocessor_test(name, tmp_path):
    inputs, report_all, expected = VT_TESTS[name]
    report = tmp_path / "report.tsv"
    args = [a for path in inputs for a in ("--input_pattern", str(path))]
    result = preprocess(*args, "--report_path", str(report), "--report_all_conflicts", str(report_all))
    assert result.returncode == 0, result.stderr
    assert report.read_text().split("\n") == expected
    assert result.stdout.startswith(f"report: {report}: ")


def test_resolved_headers_load_the_conflicting_files(tmp_path):
    """The resolved header, given to launch as --representative_header_file, loads both files
    whose definitions conflict (FORMAT/GQ Integer and Float; FORMAT/FT undeclared)."""
    report, header = tmp_path / "report.tsv", tmp_path / "resolved.vcf"
    inputs = ("--input_pattern", str(PRE / "*.vcf"))
    result = preprocess(
        *inputs, "--report_path", str(report), "--resolved_headers_path", str(header),
        "--report_all_conflicts", "--runner", "DirectRunner",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "--runner DirectRunner: Beam options are ignored" in result.stderr
    assert "1 header conflict(s), 1 inferred definition(s), 1 malformed record(s)" in result.stdout
    lines = header.read_text().splitlines()
    assert '##FORMAT=<ID=GQ,Number=1,Type=Float,Description="Genotype Quality">' in lines
    assert any(line.startswith("##FORMAT=<ID=FT,Number=.,Type=Integer,") for line in lines)
    assert lines[-1] == "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO"
    refused = run_cli("launch", *inputs, "--output_parquet_dir", str(tmp_path / "refused"))
    assert refused.returncode == 1 and "FORMAT/FT: field is not declared" in refused.stderr
    out = tmp_path / "out"
    result = run_cli(
        "launch", *inputs, "--output_parquet_dir", str(out), "--representative_header_file", str(header),
        "--allow_malformed_records",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    rows = duckdb.sql(
        f"SELECT count(*), count(*) FILTER (WHERE len(list_filter(call, lambda c: c.FT IS NOT NULL)) > 0) "
        f"FROM read_parquet('{out}/*/*.parquet')"
    ).fetchall()[0]
    assert rows == (9, 1)  # 10 records, one malformed; FT on the other record that has it


def test_preprocess_errors_are_one_line(tmp_path):
    result = preprocess("--input_pattern", str(tmp_path / "none*.vcf"), "--report_path", str(tmp_path / "r"))
    assert result.returncode == 2
    assert result.stderr.startswith("error: input pattern") and result.stderr.count("\n") == 1
    result = preprocess("--input_pattern", str(PRE / "*.vcf"))
    assert result.returncode == 2 and "--report_path" in result.stderr
