"""Faults during a run: a killed run leaves nothing a reader would take as complete."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import duckdb

from tests.conftest import REPO, run_cli
from tests.test_launch import check_manifest_adds_up


def test_a_run_killed_mid_write_leaves_no_complete_looking_output(tmp_path):
    source = tmp_path / "gen.vcf"
    subprocess.run(
        [sys.executable, str(REPO.parent / "shared" / "bench" / "gen_vcf.py"),
         "--variants", "150000", "--samples", "0", "--seed", "42", "--out", str(source)],
        check=True,
    )  # fmt: skip
    out = tmp_path / "out"
    args = ["--input_pattern", str(source), "--output_parquet_dir", str(out), "--read_split_bytes", "2000000"]
    run = subprocess.Popen(
        ["python", "-m", "variant_etl", "launch", *args],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,  # its own process group, so the kill takes every worker
    )
    deadline = time.time() + 120
    while not list((out / "_temporary").rglob("*.parquet")):
        assert run.poll() is None, "the run ended before it wrote anything"
        assert time.time() < deadline
        time.sleep(0.05)
    os.killpg(run.pid, signal.SIGKILL)
    run.wait()
    # Only the temporary directory exists: no shard directory, manifest or _SUCCESS, and a
    # reader's usual glob finds no rows.
    assert sorted(p.name for p in out.iterdir()) == ["_temporary"]
    assert not list(out.glob("*/*.parquet"))
    # A rerun into the same directory needs no --overwrite and gives the complete output.
    result = run_cli("launch", *args)
    assert result.returncode == 0, result.stderr
    manifest = check_manifest_adds_up(out)
    assert manifest["totals"]["records_read"] == 150000
    (count,) = duckdb.connect().execute(f"SELECT count(*) FROM read_parquet('{out}/*/*.parquet')").fetchone()
    assert count == 150000
    assert (out / "_SUCCESS").exists()
    assert json.loads((out / "_manifest.json").read_text())["totals"]["rows_written"] == 150000
