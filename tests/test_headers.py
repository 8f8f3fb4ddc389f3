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


def test_representative_header_file_decides_types(tmp_path, write_vcf):
    rep = vcf(write_vcf, "rep.vcf", ['##INFO=<ID=DP,Number=1,Type=Float,Description="">', '##FORMAT=<ID=GT,Number=1,Type=String,Description="">'],
              "R", [])  # fmt: skip
    data = vcf(write_vcf, "a.vcf", ['##INFO=<ID=DP,Number=1,Type=Integer,Description="">', '##FORMAT=<ID=GT,Number=1,Type=String,Description="">'],
               "S1", ["1\t10\t.\tA\tC\t.\t.\tDP=5\tGT\t0/1"])  # fmt: skip
    out = tmp_path / "out"
    result = launch(out, data, extra=("--representative_header_file", rep))
    assert result.returncode == 0, result.stderr
    assert column_types(out)["DP"] == "DOUBLE"


def test_infer_headers_defines_and_corrects(tmp_path):
    # infer-header-fields.vcf uses undeclared fields, and FORMAT/DP=4.2 where DP is declared Integer
    out = tmp_path / "out"
    result = launch(
        out, VT_VCF / "infer-header-fields.vcf", extra=("--infer_headers", "--allow_malformed_records")
    )
    assert result.returncode == 0, result.stderr
    manifest = json.loads((out / "_manifest.json").read_text())
    # the AF count mismatch left loads, matched to the ALTs (--allow_malformed_records, as VT)
    assert manifest["totals"]["malformed"] == 0 and manifest["totals"]["number_a_values_matched"] == 1
    call_type = column_types(out)["call"]
    assert "DP DOUBLE" in call_type


def test_inference_rules():
    lines = [
        "##fileformat=VCFv4.2",
        '##INFO=<ID=D,Number=1,Type=Integer,Description="">',
        "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO",
    ]
    merged = merge_headers([parse_header(normalise_header_lines(lines, "f"), "f", 3)])
    inference = FieldInference(merged.infos, merged.formats)
    for info in ["D=1.5;F;I=3;L=1,2;S=x", "D=2;I=4;S=1"]:
        inference.add_line(f"1\t1\t.\tA\tC\t.\t.\t{info}")
    infos, formats = inference.definitions()
    assert {k: (f.number, f.type) for k, f in infos.items()} == {
        "D": ("1", "Float"),  # declared Integer, but 1.5 is not: corrected
        "F": ("0", "Flag"),
        "I": ("1", "Integer"),
        "L": (".", "Integer"),
        "S": ("1", "String"),
    }
    assert formats == {}


@pytest.mark.parametrize("value", ["false", "False", "0"])
def test_split_alternate_allele_info_fields_false(tmp_path, value):
    out = tmp_path / "out"
    result = launch(out, VT_VCF / "valid-4.2.vcf", extra=("--split_alternate_allele_info_fields", value))
    assert result.returncode == 0, result.stderr
    types = column_types(out)
    assert types["AF"] == "DOUBLE[]" and types["alternate_bases"] == "STRUCT(alt VARCHAR)[]"
