"""Header options end to end: representative header, incompatible definitions, inference."""

from __future__ import annotations

import json

import duckdb
import pytest

from tests.conftest import VT_VCF, run_cli
from variant_etl.core.header import merge_headers, normalise_header_lines, parse_header
from variant_etl.core.infer import FieldInference

HEADER = """##fileformat=VCFv4.2
{defs}
#CHROM	POS	ID	REF	ALT	QUAL	FILTER	INFO	FORMAT	{sample}
"""


def vcf(write_vcf, name, defs, sample, records):
    return write_vcf(name, HEADER.format(defs="\n".join(defs), sample=sample) + "\n".join(records) + "\n")


def launch(out, *inputs, extra=()):
    args = ["launch", "--output_parquet_dir", str(out)]
    for path in inputs:
        args += ["--input_pattern", str(path)]
    return run_cli(*args, *extra)


def column_types(out) -> dict[str, str]:
    rows = duckdb.connect().execute(f"DESCRIBE SELECT * FROM read_parquet('{out}/*/*.parquet')").fetchall()
    return {r[0]: r[1] for r in rows}


def test_allow_incompatible_records_widens_and_casts(tmp_path, write_vcf):
    a = vcf(write_vcf, "a.vcf", ['##INFO=<ID=X,Number=1,Type=Integer,Description="">', '##FORMAT=<ID=GT,Number=1,Type=String,Description="">'],
            "S1", ["1\t10\t.\tA\tC\t.\t.\tX=5\tGT\t0/1"])  # fmt: skip
    b = vcf(write_vcf, "b.vcf", ['##INFO=<ID=X,Number=.,Type=String,Description="">', '##FORMAT=<ID=GT,Number=1,Type=String,Description="">'],
            "S2", ["1\t20\t.\tA\tC\t.\t.\tX=abc,def\tGT\t1/1"])  # fmt: skip
    refused = launch(tmp_path / "o1", a, b)
    assert refused.returncode == 2
    assert "INFO field 'X' has incompatible definitions" in refused.stderr
    assert "--allow_incompatible_records" in refused.stderr
    out = tmp_path / "o2"
    result = launch(out, a, b, extra=("--allow_incompatible_records",))
    assert result.returncode == 0, result.stderr
    assert column_types(out)["X"] == "VARCHAR[]"
    values = (
        duckdb.connect()
        .execute(f"SELECT start_position, X FROM read_parquet('{out}/*/*.parquet') ORDER BY 1")
        .fetchall()
    )
    assert values == [(9, ["5"]), (19, ["abc", "def"])]
    # the plan says which definition is used, what each file declares, and why
    planned = run_cli(
        "plan", "--input_pattern", str(a), "--input_pattern", str(b), "--allow_incompatible_records"
    )
    assert planned.returncode == 0, planned.stderr
    assert (
        "  INFO/X: Number=1,Type=Integer in 1 file(s) or Number=.,Type=String in 1 file(s) -> "
        "Number=.,Type=String (the files disagree)"
    ) in planned.stdout
    planned = run_cli(
        "plan", "--input_pattern", str(a), "--input_pattern", str(b), "--allow_incompatible_records",
        "--format", "json",
    )  # fmt: skip
    assert json.loads(planned.stdout)["header_resolutions"] == [
        {
            "field": "INFO/X",
            "used": {"number": ".", "type": "String"},
            "declared": [
                {"number": "1", "type": "Integer", "file_count": 1, "files": [str(a)]},
                {"number": ".", "type": "String", "file_count": 1, "files": [str(b)]},
            ],
            "why": "the files disagree",
            "inferred": False,
        }
    ]


def test_representative_header_file_decides_types(tmp_path, write_vcf):
    rep = vcf(write_vcf, "rep.vcf", ['##INFO=<ID=DP,Number=1,Type=Float,Description="">', '##FORMAT=<ID=GT,Number=1,Type=String,Description="">'],
              "R", [])  # fmt: skip
    data = vcf(write_vcf, "a.vcf", ['##INFO=<ID=DP,Number=1,Type=Integer,Description="">', '##FORMAT=<ID=GT,Number=1,Type=String,Description="">'],
               "S1", ["1\t10\t.\tA\tC\t.\t.\tDP=5\tGT\t0/1"])  # fmt: skip
    out = tmp_path / "out"
    result = launch(out, data, extra=("--representative_header_file", rep))
    assert result.returncode == 0, result.stderr
    assert column_types(out)["DP"] == "DOUBLE"


def test_representative_header_file_with_allow_incompatible_records_casts(tmp_path, write_vcf):
    """As gcp-variant-transforms: the representative's definitions, and the values cast to them."""
    rep = vcf(write_vcf, "rep.vcf", ['##INFO=<ID=NS,Number=1,Type=Integer,Description="">', '##FORMAT=<ID=GT,Number=1,Type=String,Description="">'],
              "R", [])  # fmt: skip
    data = vcf(write_vcf, "a.vcf", ['##INFO=<ID=NS,Number=.,Type=Integer,Description="">', '##FORMAT=<ID=GT,Number=1,Type=String,Description="">'],
               "S1", ["1\t10\t.\tA\tC\t.\t.\tNS=3,2,1\tGT\t0/1"])  # fmt: skip
    refused = launch(tmp_path / "o1", data, extra=("--representative_header_file", rep))
    assert refused.returncode == 1 and "INFO/NS: Number=1: expected 1 value, got '3,2,1'" in refused.stderr
    out = tmp_path / "o2"
    result = launch(out, data, extra=("--representative_header_file", rep, "--allow_incompatible_records"))
    assert result.returncode == 0, result.stderr
    assert duckdb.sql(f"SELECT NS FROM read_parquet('{out}/*/*.parquet')").fetchall() == [(3,)]


def test_inference_rules():
    lines = [
        "##fileformat=VCFv4.2",
        '##INFO=<ID=D,Number=1,Type=Integer,Description="">',
        '##INFO=<ID=A,Number=A,Type=Integer,Description="">',
        '##INFO=<ID=R,Number=R,Type=Integer,Description="">',
        '##INFO=<ID=K,Number=A,Type=Integer,Description="">',
        '##FORMAT=<ID=GT,Number=1,Type=String,Description="">',
        '##FORMAT=<ID=PL,Number=G,Type=Integer,Description="">',
        '##FORMAT=<ID=AD,Number=R,Type=Integer,Description="">',
        "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\tS1\tS2",
    ]
    merged = merge_headers([parse_header(normalise_header_lines(lines, "f"), "f", 3)])
    inference = FieldInference(merged.infos, merged.formats)
    rows = [  # (ALT, INFO, FORMAT and two calls)
        ("C", "D=1.5;F;I=3;L=1,2;S=x;A=1,2;R=1,2;K=.", "GT:PL:AD\t0/1:0,1,2:3,4\t1:0,1:5,6"),
        ("C,G", "D=2;I=4;S=1;A=1,2;R=1,2,3;K=1,2", "GT:PL:AD\t0/1:0,1,2,3,4,5:3,4,5\t.:0,1,2,3,4,5:1,2"),
        (".", "K=0", "GT:PL:AD\t0/0:0:3\t./.:.:."),  # one Number=A value for ALT '.' loads
    ]
    for alt, info, calls in rows:
        inference.add_line(f"1\t1\t.\tA\t{alt}\t.\t.\t{info}\t{calls}")
    found = {(r.kind, r.field.id): (r.field.number, r.field.type, r.why) for r in inference.resolutions()}
    assert found == {
        ("INFO", "D"): ("1", "Float", "the records have values that are not integers"),
        # gcp-variant-transforms' rules: an undeclared INFO key with values is a list
        ("INFO", "F"): ("0", "Flag", "inferred from the values"),
        ("INFO", "I"): (".", "Integer", "inferred from the values"),
        ("INFO", "L"): (".", "Integer", "inferred from the values"),
        ("INFO", "S"): (".", "String", "inferred from the values"),
        # 2 values for 1 ALT: Number=A cannot hold them; R and K fit their Numbers
        ("INFO", "A"): (".", "Integer", "the records have value counts that do not match Number=A"),
        # PL: 3 values for a diploid call of 2 alleles fit, 2 for the haploid, 6 for 3 alleles
        # (and for the call without GT), 1 for the 1-allele site; AD: 2 values for 3 alleles do not
        ("FORMAT", "AD"): (".", "Integer", "the records have value counts that do not match Number=R"),
    }


def test_infer_headers_and_allow_incompatible_records_on_variant_transforms_files(tmp_path):
    """infer-header-fields.vcf declares AF Number=A,Type=Integer but writes AF=0.333 for two ALTs;
    incompatible-field-value.vcf writes NS=3,2,1 for a Number=1 Integer (VT's expected values)."""
    out = tmp_path / "inferred"
    extra = ("--infer_headers", "--allow_incompatible_records")
    result = launch(out, VT_VCF / "infer-header-fields.vcf", extra=extra)
    assert result.returncode == 0, result.stderr
    assert "INFO/AF: Number=A,Type=Integer -> Number=.,Type=Float" in result.stderr
    types = column_types(out)
    assert types["AF"] == "DOUBLE[]" and types["NS"] == "DOUBLE[]" and types["AA"] == "VARCHAR[]"
    assert "DP DOUBLE" in types["call"]  # FORMAT/DP declared Integer, written 4.2
    rows = duckdb.sql(f"SELECT AF FROM read_parquet('{out}/*/*.parquet') ORDER BY start_position").fetchall()
    assert rows == [([0.5],), ([pytest.approx(0.333)],), (None,)]
    out = tmp_path / "cast"
    result = launch(out, VT_VCF / "incompatible-field-value.vcf", extra=("--allow_incompatible_records",))
    assert result.returncode == 0, result.stderr
    assert "1 record(s) had several values for a Number=1 number: loaded with the first" in result.stdout
    manifest = json.loads((out / "_manifest.json").read_text())
    assert manifest["totals"]["several_values_cast_to_first"] == 1
    assert manifest["inputs"][0]["several_values_cast_to_first"] == 1
    assert duckdb.sql(f"SELECT NS, DB FROM read_parquet('{out}/*/*.parquet')").fetchall() == [(3, True)]
    refused = launch(tmp_path / "refused", VT_VCF / "incompatible-field-value.vcf")
    assert refused.returncode == 1 and "INFO/NS: Number=1: expected 1 value, got '3,2,1'" in refused.stderr


@pytest.mark.parametrize("value", ["false", "False", "0"])
def test_split_alternate_allele_info_fields_false(tmp_path, value):
    out = tmp_path / "out"
    result = launch(out, VT_VCF / "valid-4.2.vcf", extra=("--split_alternate_allele_info_fields", value))
    assert result.returncode == 0, result.stderr
    types = column_types(out)
    assert types["AF"] == "DOUBLE[]" and types["alternate_bases"] == "STRUCT(alt VARCHAR)[]"
