"""`export --input_table`: VCF -> variant_etl -> BigQuery (the emulator) -> VCF gives the same
records as bcftools reads them, with the header launch kept in TABLE__vcf_header or, without
it, one made from the table schema."""

from __future__ import annotations

import gzip

import pysam
import pytest

from tests.conftest import REAL, VT_VCF, bcftools_view, run_cli
from tests.test_export import parsed, without_malformed

# samples with phased and missing values, Infinity and lists with missing items, Number=A/R/G
FILES = [VT_VCF / "valid-4.0.vcf", VT_VCF / "valid-4.2.vcf", REAL / "bcftools" / "norm.vcf"]


def export_table(bq, table: str, vcf, *extra: str):
    result = run_cli(
        "export", "--input_table", f"test-project:{bq.dataset}.{table}", "--output_vcf", str(vcf), *extra,
        env_extra={"BIGQUERY_EMULATOR_HOST": bq.host},
    )  # fmt: skip
    return result


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
    assert gzip.decompress(vcf.read_bytes()).decode() == from_parquet.read_text()
