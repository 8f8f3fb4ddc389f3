"""Faults during a run: a killed run leaves nothing a reader would take as complete."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import duckdb
import pytest

from tests.conftest import REPO, generate_vcf, mutate, run_cli
from tests.test_launch import check_manifest_adds_up


@pytest.mark.slow
def test_a_run_killed_mid_write_leaves_no_complete_looking_output(tmp_path):
    source = tmp_path / "gen.vcf"
    generate_vcf(source, 150000, 0)
    out = tmp_path / "out"
    args = ["--input_pattern", str(source), "--output_parquet_dir", str(out), "--read_split_bytes", "2000000"]
    run = subprocess.Popen(
        [sys.executable, "-m", "variant_etl", "launch", *args],
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
    # Only the temporary directory and the run's claim exist: no shard directory, manifest or
    # _SUCCESS, and a reader's usual glob finds no rows.
    assert sorted(p.name for p in out.iterdir()) == ["_CLAIM.json", "_temporary"]
    assert not list(out.glob("*/*.parquet"))
    # A rerun stops at its plan, naming the dead run; --take_over that run finishes the job.
    dead = json.loads((out / "_CLAIM.json").read_text())["run_id"]
    refused = run_cli("launch", *args)
    assert refused.returncode == 2
    assert f"is claimed by run {dead} (started" in refused.stderr
    assert "no longer running" in refused.stderr and f"--take_over {dead}" in refused.stderr
    result = run_cli("launch", *args, "--take_over", dead)
    assert result.returncode == 0, result.stderr
    assert f"took over {out} from run {dead}" in result.stderr
    manifest = check_manifest_adds_up(out)
    assert manifest["totals"]["records_read"] == 150000
    (count,) = duckdb.connect().execute(f"SELECT count(*) FROM read_parquet('{out}/*/*.parquet')").fetchone()
    assert count == 150000
    assert not (out / "_temporary").exists() and not (out / "_CLAIM.json").exists()
    assert (out / "_SUCCESS").exists()
    assert json.loads((out / "_manifest.json").read_text())["totals"]["rows_written"] == 150000


def test_mutated_files_give_rows_or_dead_letters_never_a_crash(tmp_path):
    """Random byte edits of a valid file, read with --allow_malformed_records semantics by both
    readers: every record is a row or a dead-letter entry, and nothing else escapes (a
    UnicodeDecodeError from pysam did, before)."""
    import random

    from variant_etl.core.errors import VariantEtlError
    from variant_etl.core.options import ReadOptions
    from variant_etl.core.reader import Malformed, ReadResult, read_split
    from variant_etl.plan import make_plan

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


def _plan(source, out, **read):
    from variant_etl.core.options import ParquetOptions, ReadOptions
    from variant_etl.plan import make_plan

    return make_plan(
        input_patterns=[str(source)], input_file=None, sharding_config_path=None,
        read=ReadOptions(**read), parquet=ParquetOptions(output_dir=str(out)),
    )  # fmt: skip


def _run(plan, runner: str) -> None:
    import apache_beam as beam
    from apache_beam.options.pipeline_options import PipelineOptions

    from variant_etl.pipeline import build

    with beam.Pipeline(options=PipelineOptions([f"--runner={runner}"])) as p:
        build(p, plan)


def _rows(out) -> list[tuple]:
    return (
        duckdb.connect()
        .execute(
            f"SELECT reference_name, start_position, reference_bases, to_json(call) "
            f"FROM read_parquet('{out}/*/*.parquet') ORDER BY ALL"
        )
        .fetchall()
    )


def _once(failed: set, name: str) -> None:
    if name not in failed:
        failed.add(name)
        raise RuntimeError(f"injected failure in {name}")


@pytest.mark.slow
@pytest.mark.parametrize("where", ["read", "write", "commit"])
def test_a_bundle_that_fails_once_is_retried_without_duplicate_rows(tmp_path, monkeypatch, where):
    """Beam's BundleBasedDirectRunner retries a failed bundle (up to 4 attempts) as Dataflow
    does. A bundle that fails once, after it emitted batches (read), wrote a Parquet file
    (write) or moved files into place (commit), gives the output of a run without failure."""
    from variant_etl.sinks import commit as commit_module
    from variant_etl.sinks import parquet as parquet_module
    from variant_etl.transforms import read as read_module

    source = generate_vcf(tmp_path / "gen.vcf", 3000, 2)
    clean = tmp_path / "clean"
    _run(_plan(source, clean, split_bytes=100_000), "BundleBasedDirectRunner")
    failed: set = set()
    if where == "read":
        process = read_module._ReadSplitFn.process

        def flaky_process(self, element):
            for number, item in enumerate(process(self, element)):
                yield item
                if number == 1:  # after the first batch went out
                    _once(failed, where)

        monkeypatch.setattr(read_module._ReadSplitFn, "process", flaky_process)
    elif where == "write":
        write = parquet_module.write_parquet

        def flaky_write(table, path, options):
            write(table, path, options)
            _once(failed, where)  # the file exists, but its bundle fails

        monkeypatch.setattr(parquet_module, "write_parquet", flaky_write)
    else:
        sample_info = commit_module.sample_info_table

        def flaky_sample_info(run):
            _once(failed, where)  # after the shard files were moved into place
            return sample_info(run)

        monkeypatch.setattr(commit_module, "sample_info_table", flaky_sample_info)
    out = tmp_path / "out"
    _run(_plan(source, out, split_bytes=100_000), "BundleBasedDirectRunner")
    assert failed == {where}  # the failure happened, and the run still completed
    assert _rows(out) == _rows(clean) and len(_rows(out)) == 3000
    manifest = check_manifest_adds_up(out)
    expected = json.loads((clean / "_manifest.json").read_text())
    assert manifest["totals"] == expected["totals"]
    assert [s["files"] for s in manifest["shards"]] == [s["files"] for s in expected["shards"]]
    assert sorted(p.relative_to(out) for p in out.rglob("*")) == sorted(
        p.relative_to(clean) for p in clean.rglob("*")
    )


@pytest.mark.parametrize(
    "stats, message",
    [
        ([("READ", "{src}", 10), ("PARSED", "{src}", 9)], "records read (10) != parsed (9) + malformed (0)"),
        (
            [("READ", "{src}", 10), ("PARSED", "{src}", 10), ("ROUTED", "chr1", 9)],
            "records parsed (10) != routed to shards (9)",
        ),
        (
            [("READ", "{src}", 10), ("PARSED", "{src}", 10), ("ROUTED", "chr1", 10)],
            "shard chr1: records routed (10) != written to Parquet (0)",
        ),
        ([], "{src}: reported no count"),
        ([("BQ_FILE", "chr1", {"path": "x.avro", "rows": 1, "records": 1})], "which no stage should send it"),
    ],
)
def test_counts_that_do_not_add_up_fail_the_commit(tmp_path, stats, message):
    from variant_etl.core.errors import CountMismatchError
    from variant_etl.core.manifest import CommitSpec, build_manifest
    from variant_etl.core.stats import Kind, Stat

    source = generate_vcf(tmp_path / "gen.vcf", 10, 0)
    plan = _plan(source, tmp_path / "out")
    spec = CommitSpec(run=plan.run_info(), sharding=plan.sharding, parquet=plan.parquet)
    stats = [Stat(Kind[kind], key.format(src=source), value) for kind, key, value in stats]
    with pytest.raises(CountMismatchError, match="Nothing was committed") as err:
        build_manifest(spec, stats)
    assert message.format(src=source) in str(err.value)


def test_an_untyped_stat_fails_the_commit(tmp_path):
    """Stats are typed records: a bare tuple (the old form) is refused, never ignored."""
    from variant_etl.core.errors import CountMismatchError
    from variant_etl.core.manifest import CommitSpec, build_manifest

    source = generate_vcf(tmp_path / "gen.vcf", 10, 0)
    plan = _plan(source, tmp_path / "out")
    spec = CommitSpec(run=plan.run_info(), sharding=plan.sharding, parquet=plan.parquet)
    with pytest.raises(CountMismatchError, match=r"the commit got \('read', .*which no stage should send it"):
        build_manifest(spec, [("read", str(source), 10)])
