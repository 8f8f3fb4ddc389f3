"""Two runs, one output: a run claims its output directories before any work; its commit checks
that they still hold what its plan saw before it moves anything; a commit stopped at any step
leaves the previous complete output or none, and a retry or a run taking over finishes or
cleans up; no clean-up removes what the run did not write. docs/reliability.md, "Concurrent
runs"."""

from __future__ import annotations

import errno
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest
from apache_beam.io.filesystems import FileSystems
from conftest import REPO, VT_VCF, generate_vcf, run_cli
from test_launch import check_manifest_adds_up

from variant_etl.core.manifest import files_of
from variant_etl.filesystems.claims import Claim, acquire
from variant_etl.sinks.commit import clean_up_dead_run

VALID = VT_VCF / "valid-4.0.vcf"  # chromosomes 19 and 20: two shards
OTHER = VT_VCF / "valid-4.2.vcf"
MALFORMED = VT_VCF / "invalid-4.0-POS-empty.vcf"


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def _claim(out: Path, run_id: str, pid: int) -> Claim:
    claim = Claim(run_id=run_id, started_at="2026-12-02T10:00:00Z", host=socket.gethostname(), pid=pid)
    acquire(str(out), claim)
    return claim


def _launch(*args: str):
    return run_cli("launch", "--input_pattern", str(VALID), *args)


REPORT_FILES = ("_report.html", "_report_partitions.csv")  # written after the commit


def _tree(directory: Path) -> dict[str, bytes]:
    """What a reader finds: every file but runs' temporary files, the claim and the report files;
    the manifest without its finishing time."""
    found = {}
    for path in sorted(directory.rglob("*")):
        name = path.relative_to(directory).as_posix()
        if path.is_dir() or name.startswith("_temporary/") or name in ("_CLAIM.json", *REPORT_FILES):
            continue
        data = path.read_bytes()
        if name == "_manifest.json":
            manifest = json.loads(data)
            manifest.pop("finished_at")
            data = json.dumps(manifest, sort_keys=True).encode()
        found[name] = data
    return found


# --- one run at a time ------------------------------------------------------------------------


@pytest.mark.parametrize("relative", [False, True], ids=["absolute", "relative"])
def test_a_run_into_a_claimed_output_stops_at_its_plan_naming_the_other_run(tmp_path, relative):
    out = tmp_path / "out"
    _claim(out, "aaaaaaaaaaaa", os.getpid())  # a live process holds it
    (out / "_temporary" / "aaaaaaaaaaaa").mkdir(parents=True)
    given = os.path.relpath(out, REPO) if relative else str(out)  # run_cli runs in REPO
    for command in ("launch", "plan"):
        result = run_cli(command, "--input_pattern", str(VALID), "--output_parquet_dir", given)
        assert result.returncode == 2, result.stderr
        (line,) = result.stderr.strip().splitlines()
        assert line.startswith(
            f"error: --output_parquet_dir {given} is claimed by run aaaaaaaaaaaa (started "
        )
        assert f"on {socket.gethostname()}, pid {os.getpid()}, still running)" in line
        assert "--take_over aaaaaaaaaaaa" in line
    # The other run's claim and files are untouched.
    assert json.loads((out / "_CLAIM.json").read_text())["run_id"] == "aaaaaaaaaaaa"
    assert (out / "_temporary" / "aaaaaaaaaaaa").is_dir()


def test_a_sample_lookup_directory_is_claimed_too(tmp_path):
    lookup = tmp_path / "lookup"
    _claim(lookup, "bbbbbbbbbbbb", os.getpid())
    result = _launch(
        "--output_parquet_dir", str(tmp_path / "out"), "--sample_lookup_parquet_dir", str(lookup)
    )
    assert result.returncode == 2
    assert f"--sample_lookup_parquet_dir {lookup} is claimed by run bbbbbbbbbbbb" in result.stderr
    assert not (tmp_path / "out").exists()  # nothing was claimed, or created, in the other


def test_a_run_releases_its_claims_whether_it_succeeds_or_fails(tmp_path):
    out, lookup = tmp_path / "out", tmp_path / "lookup"
    result = _launch("--output_parquet_dir", str(out), "--sample_lookup_parquet_dir", str(lookup))
    assert result.returncode == 0, result.stderr
    assert not (out / "_CLAIM.json").exists() and not (lookup / "_CLAIM.json").exists()
    failed = run_cli("launch", "--input_pattern", str(MALFORMED), "--output_parquet_dir", str(tmp_path / "f"))
    assert failed.returncode != 0
    assert not (tmp_path / "f").exists()  # the run made it, and it is empty again


def test_a_dead_runs_claim_is_taken_over_only_by_naming_that_run(tmp_path):
    out = tmp_path / "out"
    _claim(out, "cccccccccccc", _dead_pid())
    stale = out / "_temporary" / "cccccccccccc" / "chr20"
    stale.mkdir(parents=True)
    (stale / "x.parquet").write_bytes(b"its file")
    other = out / "_temporary" / "dddddddddddd"  # a run that holds no claim here: not touched
    other.mkdir(parents=True)
    (other / "marker").write_text("keep")
    refused = _launch("--output_parquet_dir", str(out))
    assert refused.returncode == 2 and "no longer running" in refused.stderr
    wrong = _launch("--output_parquet_dir", str(out), "--take_over", "eeeeeeeeeeee")
    assert wrong.returncode == 2 and "is claimed by run cccccccccccc" in wrong.stderr
    result = _launch("--output_parquet_dir", str(out), "--take_over", "cccccccccccc")
    assert result.returncode == 0, result.stderr
    assert f"took over {out} from run cccccccccccc" in result.stderr
    assert not (out / "_temporary" / "cccccccccccc").exists()
    assert (other / "marker").read_text() == "keep"
    assert not (out / "_CLAIM.json").exists()
    assert json.loads((out / "_manifest.json").read_text())["totals"]["rows_written"] == 5


@pytest.mark.slow
@pytest.mark.parametrize("relative", [False, True], ids=["absolute", "relative"])
def test_two_runs_started_two_seconds_apart_into_one_new_output(tmp_path, relative):
    """The issue's case: run A (many records) and, 2 s later, run B (5 records) into one new
    directory. B stops at its plan naming A; A's output is complete and only A's. A is paused
    (SIGSTOP) from its claim until B has run, so that it cannot finish first on a fast machine
    (a launch of these 200,000 records now ends within 2 s of its claim)."""
    import signal

    big = generate_vcf(tmp_path / "big.vcf", 200_000, 4)
    out = "out" if relative else str(tmp_path / "out")
    cwd = tmp_path if relative else REPO

    def start(source: Path):
        return subprocess.Popen(
            [sys.executable, "-m", "variant_etl", "launch", "--input_pattern", str(source),
             "--output_parquet_dir", out],
            cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
        )  # fmt: skip

    a = start(big)
    deadline = time.time() + 60
    while not (tmp_path / "out" / "_CLAIM.json").exists():
        assert a.poll() is None and time.time() < deadline
        time.sleep(0.05)
    assert a.poll() is None, "run A ended as it claimed the output"
    os.killpg(a.pid, signal.SIGSTOP)
    try:
        time.sleep(2)
        b = start(VALID)
        _, b_err = b.communicate(timeout=120)
    finally:
        os.killpg(a.pid, signal.SIGCONT)
    _, a_err = a.communicate(timeout=300)
    assert a.returncode == 0, a_err
    assert b.returncode == 2, b_err
    manifest = check_manifest_adds_up(tmp_path / "out")
    assert f"is claimed by run {manifest['run_id']} (started" in b_err
    assert "still running" in b_err
    assert manifest["totals"]["records_read"] == 200_000
    (rows,) = (
        duckdb.connect()
        .execute(f"SELECT count(*) FROM read_parquet('{tmp_path}/out/*/*.parquet')")
        .fetchone()
    )
    assert rows == 200_000


# --- the commit checks before it moves ---------------------------------------------------------


def _api_pipeline(out: Path, **kwargs):
    import apache_beam as beam

    import variant_etl

    p = beam.Pipeline(
        options=beam.options.pipeline_options.PipelineOptions(["--direct_running_mode=in_memory"])
    )
    _ = p | variant_etl.ReadVcf(str(VALID)) | variant_etl.WriteToParquet(str(out), **kwargs)
    return p


def test_a_commit_moves_nothing_into_an_output_another_run_completed_meanwhile(tmp_path):
    out = tmp_path / "out"
    pipeline = _api_pipeline(out)  # its plan: a new directory
    assert _launch("--output_parquet_dir", str(out)).returncode == 0  # another run, finished first
    before = _tree(out)
    with pytest.raises(Exception, match="changed while this run ran: its plan saw no completed output"):
        pipeline.run().wait_until_finish()
    assert _tree(out) == before  # the other run's output, whole, and nothing of this one
    assert not (out / "_CLAIM.json").exists()


def test_a_commit_moves_nothing_when_the_output_it_replaces_was_replaced_meanwhile(tmp_path):
    out = tmp_path / "out"
    assert _launch("--output_parquet_dir", str(out)).returncode == 0
    first = json.loads((out / "_manifest.json").read_text())["run_id"]
    pipeline = _api_pipeline(out, overwrite=True)  # its plan: replace run `first`
    again = run_cli("launch", "--input_pattern", str(OTHER), "--output_parquet_dir", str(out), "--overwrite")
    assert again.returncode == 0
    before = _tree(out)
    with pytest.raises(
        Exception, match=f"its plan saw the output of run {first}, which --overwrite replaces"
    ):
        pipeline.run().wait_until_finish()
    assert _tree(out) == before


def test_overwrite_replaces_only_the_previous_runs_files(tmp_path):
    out = tmp_path / "out"
    assert _launch("--output_parquet_dir", str(out)).returncode == 0
    (out / "notes.txt").write_text("mine")
    refused = _launch("--output_parquet_dir", str(out), "--overwrite")
    assert refused.returncode == 2
    assert "holds 1 file(s) that its run" in refused.stderr and "notes.txt" in refused.stderr
    assert (out / "notes.txt").read_text() == "mine"
    (out / "notes.txt").unlink()
    # A directory with files and no completed run: nothing here is a run's to remove.
    junk = tmp_path / "junk"
    (junk / "chr1").mkdir(parents=True)
    (junk / "chr1" / "a.parquet").write_bytes(b"x")
    for extra in ((), ("--overwrite",)):
        result = _launch("--output_parquet_dir", str(junk), *extra)
        assert (
            result.returncode == 2
            and "is not empty and holds no completed run (chr1/a.parquet)" in result.stderr
        )
    assert (junk / "chr1" / "a.parquet").read_bytes() == b"x"
    # --overwrite of a run's own output: the old files go, the new ones come.
    result = run_cli("launch", "--input_pattern", str(OTHER), "--output_parquet_dir", str(out), "--overwrite")
    assert result.returncode == 0, result.stderr
    manifest = check_manifest_adds_up(out)
    assert sorted(_tree(out)) == [name for name in files_of(manifest, str(out)) if name not in REPORT_FILES]
    assert (out / "_report.html").exists(), result.stderr


# --- nothing outside a run's own files is deleted ----------------------------------------------


@pytest.mark.parametrize("relative", [False, True], ids=["absolute", "relative"])
def test_failed_runs_remove_only_their_own_files(tmp_path, relative):
    def given(path: Path) -> str:
        return os.path.relpath(path, REPO) if relative else str(path)

    beside = tmp_path / "beside.txt"
    beside.write_text("keep")
    # An existing directory holding another run's temporary files (and only directories at its
    # top: a glob of out/* matches no file there).
    out = tmp_path / "out"
    other = out / "_temporary" / "ffffffffffff" / "chr20"
    other.mkdir(parents=True)
    (other / "part.parquet").write_bytes(b"theirs")
    # A new directory, two levels of it made by the run.
    new = tmp_path / "new" / "deeper" / "out"
    for target in (out, new):
        result = run_cli("launch", "--input_pattern", str(MALFORMED), "--output_parquet_dir", given(target))
        assert result.returncode != 0
        assert "POS" in result.stderr
    assert beside.read_text() == "keep"
    assert (other / "part.parquet").read_bytes() == b"theirs"
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*")) == [
        "_temporary", "_temporary/ffffffffffff", "_temporary/ffffffffffff/chr20",
        "_temporary/ffffffffffff/chr20/part.parquet",
    ]  # fmt: skip
    assert not (tmp_path / "new").exists()  # what the run made, and only that, is gone
    assert sorted(p.name for p in tmp_path.iterdir()) == ["beside.txt", "out"]


# --- a commit stopped at any step ---------------------------------------------------------------


class _Fault(BaseException):
    """A kill: no code of the commit runs after it (no ``except Exception`` catches it)."""


class _HalfSink:
    """A file on a full disk: the first bytes land, then ENOSPC."""

    def __init__(self, sink):
        self._sink, self._room = sink, 7

    def write(self, data):
        if len(data) > self._room:
            self._sink.write(bytes(data[: self._room]))
            self._room = 0
            raise OSError(errno.ENOSPC, "No space left on device")
        self._room -= len(data)
        return self._sink.write(data)

    def __getattr__(self, name):
        return getattr(self._sink, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._sink.close()


class _FaultyFileSystems:
    """Beam's FileSystems with each change made one file at a time and counted; change number
    ``fail_at`` fails: ``kill`` stops before it, ``disk_full`` writes part of a file and raises
    ENOSPC (or fails the rename, delete, mkdir with it)."""

    def __init__(self, fail_at: int | None = None, kind: str = "kill"):
        self.fail_at, self.kind, self.steps = fail_at, kind, []

    def __getattr__(self, name):
        return getattr(FileSystems, name)

    def _step(self, what: str) -> bool:
        self.steps.append(what)
        if len(self.steps) != self.fail_at:
            return False
        if self.kind == "kill":
            raise _Fault(what)
        if not what.startswith("create"):
            raise OSError(errno.ENOSPC, f"No space left on device ({what})")
        return True

    def rename(self, sources, destinations):
        for source, destination in zip(sources, destinations):
            self._step(f"rename {destination}")
            FileSystems.rename([source], [destination])

    def delete(self, paths):
        for path in paths:
            self._step(f"delete {path}")
            FileSystems.delete([path])

    def mkdirs(self, path):
        self._step(f"mkdirs {path}")
        FileSystems.mkdirs(path)

    def create(self, path, *args, **kwargs):
        partial = self._step(f"create {path}")
        sink = FileSystems.create(path, *args, **kwargs)
        return _HalfSink(sink) if partial else sink


class _Recorded:
    """A real launch whose commit was recorded: its arguments, the directories as the commit
    found them, and as it left them."""

    def __init__(self, base: Path, *, overwrite: bool):
        import variant_etl.sinks.commit as commit

        self.base = base
        self.dirs = [base / "out", base / "lookup"]
        outputs = [
            "--output_parquet_dir",
            str(self.dirs[0]),
            "--sample_lookup_parquet_dir",
            str(self.dirs[1]),
        ]
        self.previous = None
        if overwrite:  # a first run, which the recorded one replaces
            assert run_cli("launch", "--input_pattern", str(OTHER), *outputs).returncode == 0
            self.previous = [_tree(d) for d in self.dirs]
        original = commit.commit_files

        def record(spec, manifest, renames):
            self.args = (spec, manifest, renames)
            for number, directory in enumerate(self.dirs):
                shutil.copytree(directory, base / f"found{number}", symlinks=True)
            return original(spec, manifest, renames)

        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(commit, "commit_files", record)
            inputs = [
                "--input_pattern",
                str(VALID),
                "--input_pattern",
                str(MALFORMED),
                "--allow_malformed_records",
            ]
            result = run_cli("launch", *inputs, *outputs, *(["--overwrite"] if overwrite else []))
        assert result.returncode == 0, result.stderr
        self.run_id = self.args[0].run.run_id
        self.made = [_tree(d) for d in self.dirs]
        assert any(name.startswith("_malformed/") for name in self.made[0])

    def restore(self) -> None:
        """The directories as the commit found them (the claim of the recorded run included)."""
        for number, directory in enumerate(self.dirs):
            shutil.rmtree(directory, ignore_errors=True)
            shutil.copytree(self.base / f"found{number}", directory, symlinks=True)

    def commit(self, filesystems=None) -> None:
        import variant_etl.sinks.commit as commit

        with pytest.MonkeyPatch.context() as patch:
            if filesystems is not None:
                patch.setattr(commit, "FileSystems", filesystems)
            commit.commit_files(*self.args)

    def steps(self) -> list[str]:
        self.restore()
        counting = _FaultyFileSystems()
        self.commit(counting)
        assert [_tree(d) for d in self.dirs] == self.made
        return counting.steps

    def check_complete_or_absent(self, step: str) -> None:
        """Each directory holds the previous complete output, or the new complete one (either
        maybe without its _SUCCESS: the first marker to go, the last to come), or no _SUCCESS and
        no _manifest.json; a manifest is always whole."""
        for number, directory in enumerate(self.dirs):
            tree = _tree(directory)
            manifest = (
                json.loads((directory / "_manifest.json").read_text()) if "_manifest.json" in tree else None
            )
            if manifest is None:
                assert "_SUCCESS" not in tree, (
                    f"{directory}: _SUCCESS without a manifest after a fault at {step}"
                )
            elif self.previous and manifest["run_id"] != self.run_id:
                previous = dict(self.previous[number])
                if "_SUCCESS" not in tree:  # the first step of its removal
                    previous.pop("_SUCCESS")
                assert tree == previous, f"{directory}: a changed previous output after {step}"
            else:
                assert manifest["run_id"] == self.run_id
                made = dict(self.made[number])
                if "_SUCCESS" not in tree:
                    made.pop("_SUCCESS")
                assert tree == made, f"{directory}: an incomplete output with a manifest after {step}"


@pytest.fixture(scope="module", params=["new", "overwrite"])
def recorded(request, tmp_path_factory):
    return _Recorded(tmp_path_factory.mktemp(request.param), overwrite=request.param == "overwrite")


@pytest.mark.parametrize("kind", ["kill", "disk_full"])
def test_a_commit_stopped_at_any_step_is_complete_or_absent_and_its_retry_completes_it(recorded, kind):
    steps = recorded.steps()
    assert sum(step.startswith("rename") for step in steps) >= 8, steps  # files, journal, manifests
    if recorded.previous:
        assert sum(step.startswith("delete") for step in steps) >= 6, steps
    for number, step in enumerate(steps, 1):
        recorded.restore()
        try:  # a full disk may fail a step that the commit then does again, and goes on
            recorded.commit(_FaultyFileSystems(number, kind))
            assert kind == "disk_full"
        except (_Fault, OSError):
            pass
        recorded.check_complete_or_absent(step)
        recorded.commit()  # the runner retries the commit bundle
        assert [_tree(d) for d in recorded.dirs] == recorded.made, f"retry after a fault at {step}"
        assert not any((d / "_temporary").exists() for d in recorded.dirs)
        if kind == "kill":  # the run died instead: what a run taking over it finds
            recorded.restore()
            with pytest.raises(_Fault):
                recorded.commit(_FaultyFileSystems(number, kind))
            for index, directory in enumerate(recorded.dirs):
                clean_up_dead_run(str(directory), recorded.run_id)
                left = _tree(directory)
                whole = [recorded.made[index]] + ([recorded.previous[index]] if recorded.previous else [])
                assert left in [{}, *whole], f"{directory} after a take-over of a fault at {step}"
                assert not (directory / "_temporary").exists()


def _first_and_last_of_each_kind(steps: list[str]) -> list[tuple[int, str]]:
    """(number, step) of the first and last step of each kind (the step with its numbers left
    out: 'rename .../chr1/part-00003.parquet' is of the kind of every data file's rename), in
    order: a launch after each costs seconds, and steps of one kind fail alike in between."""
    kinds: dict[str, list[int]] = {}
    for number, step in enumerate(steps, 1):
        kinds.setdefault(re.sub(r"\d+", "N", re.sub(r"/chr\w+/", "/SHARD/", step)), []).append(number)
    chosen = sorted({n for numbers in kinds.values() for n in (numbers[0], numbers[-1])})
    return [(n, steps[n - 1]) for n in chosen]


@pytest.mark.slow
def test_a_run_taking_over_a_commit_killed_at_any_step_leaves_only_its_own_output(recorded):
    steps = recorded.steps()
    outputs = [
        "--output_parquet_dir",
        str(recorded.dirs[0]),
        "--sample_lookup_parquet_dir",
        str(recorded.dirs[1]),
    ]
    for number, step in _first_and_last_of_each_kind(steps):
        recorded.restore()
        with pytest.raises(_Fault):
            recorded.commit(_FaultyFileSystems(number))
        result = run_cli(
            "launch", "--input_pattern", str(OTHER), *outputs, "--overwrite", "--take_over", recorded.run_id
        )
        assert result.returncode == 0, f"after a fault at {step}: {result.stderr}"
        for directory in recorded.dirs:
            manifest = check_manifest_adds_up(directory)
            assert manifest["run_id"] not in (recorded.run_id, None)
            assert sorted(_tree(directory)) == [
                name for name in files_of(manifest, str(directory)) if name not in REPORT_FILES
            ], f"{directory} after a fault at {step}"
            assert sorted(p.name for p in directory.iterdir() if p.name.startswith("_temporary")) == []
            assert not (directory / "_CLAIM.json").exists()
        assert manifest["totals"]["records_read"] == 13  # valid-4.2.vcf


# --- BigQuery -----------------------------------------------------------------------------------


@pytest.mark.bigquery
def test_bigquery_tables_and_loads_name_their_run_and_an_append_waits_for_a_loading_run(bq):
    from variant_etl.sinks.tables import RUN_LABEL, STATE_LABEL

    result = bq.launch("t", VALID)
    assert result.returncode == 0, result.stderr
    (run_id,) = {row[0] for row in bq.query(f"SELECT run_id FROM `{bq.dataset}.t__vcf_header`")}
    for name in bq.tables("t"):  # shards, sample_info, vcf_header
        labels = bq.client.get_table(f"{bq.dataset}.{name}").labels
        assert labels == {RUN_LABEL: run_id, STATE_LABEL: "complete"}, name
    # One load job per shard with rows, labelled with the run (the emulator keeps labels, not
    # the job ids' variant_etl_<run_id>_ prefix).
    loads = [
        job for job in bq.client.list_jobs() if job.job_type == "load" and job.labels.get(RUN_LABEL) == run_id
    ]
    assert len(loads) == 2  # chromosomes 19 and 20
    # A table another run is still loading (it created it and has not finished): no append.
    table = bq.client.get_table(f"{bq.dataset}.t__chr20")
    table.labels = {RUN_LABEL: "0123456789ab", STATE_LABEL: "loading"}
    bq.client.update_table(table, ["labels"])
    before = bq.query(f"SELECT count(*) FROM `{bq.dataset}.t__chr20`")
    refused = bq.launch("t", VALID, extra=["--append"])
    assert refused.returncode == 2, refused.stderr
    (line,) = refused.stderr.strip().splitlines()
    assert "t__chr20 is being loaded by run 0123456789ab" in line
    assert bq.query(f"SELECT count(*) FROM `{bq.dataset}.t__chr20`") == before


@pytest.mark.bigquery
def test_bigquery_two_runs_creating_one_set_of_tables_leave_only_the_first(bq, monkeypatch):
    """Both runs see no table; the other run creates them between this run's check and its
    first create. This run stops, deletes nothing of the other's and loads nothing."""
    import variant_etl.sinks.tables as tables
    from variant_etl.core.options import BigQueryOptions, bundled_config
    from variant_etl.core.sharding import load_sharding_config

    shards = load_sharding_config(bundled_config("homo_sapiens_default.yaml")).shards
    options = BigQueryOptions(project="test-project", dataset=bq.dataset, table="t", temp_dir="unused")
    fields = [{"name": "reference_name", "type": "STRING", "mode": "NULLABLE"}]
    real = tables.make_client

    class Racing:
        """The emulator's client, but the first create comes after the other run's tables."""

        raced = False

        def __init__(self, project):
            self._client = real(project)

        def __getattr__(self, name):
            return getattr(self._client, name)

        def create_table(self, table):
            if not Racing.raced:
                Racing.raced = True
                tables.prepare_tables(options, shards, fields, run_id="aaaaaaaaaaaa")  # the other run
            return self._client.create_table(table)

    monkeypatch.setattr(tables, "make_client", Racing)
    with pytest.raises(Exception, match=r"created by another run \(run aaaaaaaaaaaa\)"):
        tables.prepare_tables(options, shards, fields, run_id="bbbbbbbbbbbb")
    monkeypatch.setattr(tables, "make_client", real)
    names = bq.tables("t")
    assert len(names) == len(shards) + 2
    labels = {bq.client.get_table(f"{bq.dataset}.{name}").labels[tables.RUN_LABEL] for name in names}
    assert labels == {"aaaaaaaaaaaa"}
    # A failed run deletes only tables still labelled with its run id.
    ids = [options.table_id(s.suffix) for s in shards]
    tables.delete_tables(options, ids, "bbbbbbbbbbbb")
    assert bq.tables("t") == names


# --- gs:// --------------------------------------------------------------------------------------


def test_gcs_claims_are_created_and_replaced_only_at_the_generation_read(gcs_emulator, monkeypatch):
    """On gcp-storage-emulator: the claim object is created with ifGenerationMatch=0 (real GCS
    refuses a second create; the emulator ignores preconditions, so the test records them as
    sent), a second run is refused naming the first, and only the named dead run's claim is
    taken over, at its generation."""
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    from variant_etl.filesystems.claims import ClaimedError, read_claim, release, take_over

    url, _ = gcs_emulator
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", url)
    uploads, deletes = [], []  # the preconditions sent (the emulator does not enforce them)
    upload, delete = storage.Blob.upload_from_string, storage.Blob.delete

    def recorded(calls, method):
        def call(self, *args, **kwargs):
            calls.append(kwargs)
            return method(self, *args, **kwargs)

        return call

    monkeypatch.setattr(storage.Blob, "upload_from_string", recorded(uploads, upload))
    monkeypatch.setattr(storage.Blob, "delete", recorded(deletes, delete))
    storage.Client(project="p", credentials=AnonymousCredentials()).create_bucket("claims")
    out = "gs://claims/cohort/out"
    first = Claim("aaaaaaaaaaaa", "2026-12-02T10:00:00Z", "elsewhere", 1)
    acquire(out, first)
    assert read_claim(out) == first
    with pytest.raises(
        ClaimedError, match=r"is claimed by run aaaaaaaaaaaa \(started 2026-12-02T10:00:00Z on elsewhere"
    ):
        acquire(out, Claim.new("bbbbbbbbbbbb"))
    with pytest.raises(ClaimedError, match="is claimed by run aaaaaaaaaaaa"):
        take_over(out, "cccccccccccc", Claim.new("bbbbbbbbbbbb"))
    release(out, "bbbbbbbbbbbb")  # not its claim: stays
    assert read_claim(out) == first
    second = Claim.new("bbbbbbbbbbbb")
    assert take_over(out, "aaaaaaaaaaaa", second) == first
    assert read_claim(out) == second
    release(out, "bbbbbbbbbbbb")
    assert read_claim(out) is None
    assert [kwargs.get("if_generation_match") for kwargs in uploads] == [0, uploads[1]["if_generation_match"]]
    assert uploads[1]["if_generation_match"] > 0  # the takeover: replaced at the generation read
    assert len(deletes) == 1 and deletes[0]["if_generation_match"] > 0
