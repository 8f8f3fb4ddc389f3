"""Faults during a run: a killed run leaves nothing a reader would take as complete."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

import duckdb

from tests.conftest import REPO, generate_vcf, mutate, run_cli
from tests.test_launch import check_manifest_adds_up


def test_a_run_killed_mid_write_leaves_no_complete_looking_output(tmp_path):
    source = tmp_path / "gen.vcf"
    generate_vcf(source, 150000, 0)
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


def test_mutated_files_give_rows_or_dead_letters_never_a_crash(tmp_path):
    """Random byte edits of a valid file, read with --allow_malformed_records semantics by both
    readers: every record is a row or a dead-letter entry, and nothing else escapes (a
    UnicodeDecodeError from pysam did, before)."""
    import random

    from variant_etl.core.errors import VariantEtlError
    from variant_etl.core.reader import Malformed, ReadResult, read_split
    from variant_etl.plan import ReadOptions, make_plan

    source = tmp_path / "gen.vcf"
    generate_vcf(source, 40, 3)
    data = source.read_bytes()
    body_start = data.index(b"\n", data.index(b"\n#CHROM") + 1) + 1
    plan = make_plan(
        input_patterns=[str(source)],
        input_file=None,
        sharding_config_path=None,
        read=ReadOptions(),
        parquet=None,
    )
    rng = random.Random(7)
    refused = 0
    for _ in range(150):
        body = mutate(rng, data[body_start:])
        path = tmp_path / "mutated.vcf"
        path.write_bytes(data[:body_start] + bytes(body))
        for fast in (True, False):
            result = ReadResult()
            try:
                items = list(
                    read_split(
                        str(path), plan.schema, one_based=False, allow_malformed=True, batch_rows=1000,
                        result=result, fast=fast,
                    )
                )  # fmt: skip
            except VariantEtlError:
                refused += 1  # e.g. a record htslib cannot even split: one clear error
                continue
            rows = sum(item.num_rows for item in items if not isinstance(item, Malformed))
            malformed = sum(isinstance(item, Malformed) for item in items)
            assert rows + malformed == result.records_read
    assert refused < 150
