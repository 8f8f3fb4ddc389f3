"""Large inputs read in parallel pieces, end to end: same rows as reading them whole."""

from __future__ import annotations

import json

import duckdb
import pysam
import pytest

from tests.conftest import generate_vcf, run_cli
from tests.test_launch import check_manifest_adds_up


def rows(out) -> list[tuple]:
    query = (
        "SELECT reference_name, start_position, reference_bases, to_json(alternate_bases), "
        f"to_json(call), DP, CSQ FROM read_parquet('{out}/*/*.parquet') ORDER BY ALL"
    )
    return duckdb.connect().execute(query).fetchall()


@pytest.mark.slow
def test_bgzipped_file_is_read_in_block_ranges(tmp_path):
    plain = tmp_path / "gen.vcf"
    generate_vcf(plain, 20000, 4)
    bgzipped = tmp_path / "gen.vcf.gz"
    pysam.tabix_compress(str(plain), str(bgzipped))
    plan = run_cli(
        "plan", "--format", "json", "--input_pattern", str(bgzipped), "--read_split_bytes", "400000"
    )
    assert plan.returncode == 0, plan.stderr
    assert json.loads(plan.stdout)["splits"] > 4
    outs = {}
    for name, path, extra in (("whole", plain, ()), ("ranges", bgzipped, ("--read_split_bytes", "400000"))):
        outs[name] = tmp_path / name
        result = run_cli(
            "launch", "--input_pattern", str(path), "--output_parquet_dir", str(outs[name]), *extra
        )
        assert result.returncode == 0, result.stderr
    manifest = check_manifest_adds_up(outs["ranges"])
    assert manifest["totals"]["records_read"] == 20000
    assert rows(outs["ranges"]) == rows(outs["whole"])
    # every output file is sorted by position
    for f in outs["ranges"].glob("*/*.parquet"):
        starts = duckdb.connect().execute(f"SELECT start_position FROM read_parquet('{f}')").fetchall()
        assert starts == sorted(starts)
