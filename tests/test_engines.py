"""The same launch on other engines than the in-process one: byte-identical Parquet, the same
manifest counts and the same dead letters as on DirectRunner. Prism is Beam's Go portable
runner, built from the Go module registry (tests/conftest.py::prism_binary)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from conftest import REAL, REPO, VT_VCF, cache_dir, prism_binary, run_cli, this_environment, worker_pool
from test_merge import indexed_copies

MERGE = sorted((VT_VCF / "merge").glob("merge*.vcf"))
MOVE_TO_CALLS = [
    "--variant_merge_strategy",
    "MOVE_TO_CALLS",
    "--copy_quality_to_calls",
    "--copy_filter_to_calls",
]


CASES = [
    "shards and dead letters",
    "MOVE_TO_CALLS merge through the shuffle",
    "indexed merge in region splits",
    "annotations",
]


def _cases(tmp_path: Path) -> dict[str, list[str]]:
    def inputs(paths) -> list[str]:
        return [arg for path in paths for arg in ("--input_pattern", str(path))]

    return {
        "shards and dead letters": inputs(
            [
                VT_VCF / "valid-4.0.vcf",
                VT_VCF / "invalid-4.0-POS-empty.vcf",
                REPO / "examples" / "data" / "*.vcf.gz",
            ]
        )
        + ["--allow_malformed_records", "--allow_incompatible_records"],
        "MOVE_TO_CALLS merge through the shuffle": inputs(MERGE) + MOVE_TO_CALLS,
        "indexed merge in region splits": inputs(indexed_copies(tmp_path, MERGE)) + MOVE_TO_CALLS,
        "annotations": inputs([REAL / "bcftools" / "split-vep.5.vcf"]) + ["--annotation_fields", "CSQ"],
    }


def output(out: Path) -> dict[str, object]:
    """What a run wrote, but what differs between runs: its id and times."""
    found: dict[str, object] = {}
    for path in sorted(out.rglob("*")):
        name = path.relative_to(out).as_posix()
        if path.is_dir() or name in ("_report.html", "_SUCCESS"):
            continue
        if name == "_manifest.json":
            manifest = json.loads(path.read_text())
            manifest.pop("run_id"), manifest.pop("finished_at")
            found[name] = manifest
        elif name == "__sample_info.parquet":
            found[name] = pq.read_table(path).drop(["ingestion_datetime"]).to_pylist()
        else:
            found[name] = path.read_bytes()
    return found


def _on_both(tmp_path: Path, args: list[str], engine: list[str]) -> tuple[dict, dict]:
    """The output of ``launch ARGS`` on DirectRunner, and on the engine its options name."""
    direct, other = tmp_path / "direct", tmp_path / "other"
    result = run_cli("launch", *args, "--output_parquet_dir", str(direct))
    assert result.returncode == 0, result.stderr
    result = run_cli("launch", *args, "--output_parquet_dir", str(other), *engine)
    assert result.returncode == 0, result.stderr
    return output(direct), output(other)


def _portable(port: int) -> list[str]:
    """PortableRunner with the EXTERNAL worker pool on ``port`` (as on Flink or Spark without
    Docker)."""
    return ["--runner", "PortableRunner", "--job_endpoint", "embed",
            "--environment_type", "EXTERNAL", "--environment_config", f"localhost:{port}"]  # fmt: skip


@pytest.fixture(scope="module")
def prism():
    return prism_binary()


@pytest.mark.slow
@pytest.mark.parametrize("case", CASES)
def test_prism_gives_the_directrunner_output(tmp_path, prism, case):
    expected, found = _on_both(
        tmp_path, _cases(tmp_path)[case], ["--runner", "PrismRunner", "--prism_location", str(prism)]
    )
    assert any(name.endswith(".parquet") and "/" in name for name in expected)
    if case == "shards and dead letters":
        assert any(name.startswith("_malformed/") for name in expected)
    assert found == expected


@pytest.mark.slow
@pytest.mark.bigquery
@pytest.mark.parametrize("engine", ["prism", "portable"])
def test_engines_load_the_bigquery_tables_directrunner_loads(bq, engine):
    inputs = [VT_VCF / "valid-4.0.vcf", VT_VCF / "invalid-4.0-POS-empty.vcf"]
    extra = ["--allow_malformed_records"]
    assert bq.launch("direct", *inputs, extra=extra).returncode == 0
    if engine == "prism":
        result = bq.launch(
            engine,
            *inputs,
            extra=[*extra, "--runner", "PrismRunner", "--prism_location", str(prism_binary())],
        )
    else:  # the workers load the tables: they need the emulator's address too
        env = dict(this_environment(), BIGQUERY_EMULATOR_HOST=bq.host)
        with worker_pool(Path(sys.executable), env) as port:
            result = bq.launch(engine, *inputs, extra=[*extra, *_portable(port)])
    assert result.returncode == 0, result.stderr
    names = [name.removeprefix("direct__") for name in bq.tables("direct")]
    assert names == [name.removeprefix(f"{engine}__") for name in bq.tables(engine)]
    for name in names:
        if name == "vcf_header":
            columns = "line_number, line"
        elif name == "sample_info":
            columns = "sample_id, sample_name, file_path"
        else:
            columns = "TO_JSON_STRING(t)"
        rows = [
            bq.query(f"SELECT {columns} FROM `{bq.dataset}.{base}__{name}` AS t ORDER BY 1")
            for base in ("direct", engine)
        ]
        assert rows[0] == rows[1], name
    assert any(bq.query(f"SELECT count(*) FROM `{bq.dataset}.{engine}__chr20`")[0])


def _sdist_venv(tmp_path: Path) -> Path:
    """A virtualenv holding only the sdist of setup.py and what it requires: what
    ``--setup_file`` installs on Dataflow workers. The dependencies are installed once per
    machine (keyed by setup.py); the sdist of this checkout, each time."""
    import hashlib
    import subprocess
    import sys

    dist = tmp_path / "dist"
    subprocess.run([sys.executable, "setup.py", "-q", "sdist", "-d", str(dist)], cwd=REPO, check=True)
    (sdist,) = dist.glob("variant_etl-*.tar.gz")
    digest = hashlib.sha256((REPO / "setup.py").read_bytes()).hexdigest()[:12]
    venv = cache_dir() / f"sdist-workers-{digest}"
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q"]
    if not (venv / "ready").exists():
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
        subprocess.run([*pip, str(sdist)], check=True, cwd=tmp_path)
        (venv / "ready").write_text("ok\n")
    else:
        subprocess.run([*pip, "--no-deps", "--force-reinstall", str(sdist)], check=True, cwd=tmp_path)
    return venv


@pytest.mark.slow
def test_workers_with_only_the_sdist_installed_give_the_directrunner_output(tmp_path):
    """The job's driver runs here; its SDK workers come from an EXTERNAL worker pool started in
    a virtualenv with only the sdist installed, in a directory away from the checkout."""
    import os
    import subprocess

    venv = _sdist_venv(tmp_path)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    where = subprocess.run(
        [str(venv / "bin" / "python"), "-c", "import variant_etl; print(variant_etl.__file__)"],
        cwd=elsewhere, env=env, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert where.startswith(str(venv)), where  # the installed sdist, not the checkout
    args = [*_cases(tmp_path)["shards and dead letters"], "--annotation_fields", "CSQ"]
    args += ["--input_pattern", str(REAL / "bcftools" / "split-vep.5.vcf")]
    with worker_pool(venv / "bin" / "python", env, cwd=elsewhere) as port:
        expected, found = _on_both(tmp_path, args, _portable(port))
    assert found == expected


@pytest.fixture(scope="module")
def worker_pool_port():
    """Beam's EXTERNAL worker pool of this environment on 127.0.0.1."""
    with worker_pool(Path(sys.executable), this_environment()) as port:
        yield port


@pytest.mark.slow
@pytest.mark.parametrize("case", CASES)
def test_portable_runner_gives_the_directrunner_output(tmp_path, worker_pool_port, case):
    expected, found = _on_both(tmp_path, _cases(tmp_path)[case], _portable(worker_pool_port))
    assert found == expected


@pytest.mark.slow
@pytest.mark.parametrize("engine", ["prism", "portable"])
def test_engines_export_the_file_the_streamed_export_writes(tmp_path, engine, request):
    """export with Beam options on a real engine: its workers write the parts (EXTERNAL
    workers: another process than the command), the command joins them into the file the
    streamed export writes."""
    out = tmp_path / "out"
    inputs = [str(VT_VCF / "valid-4.0.vcf"), str(VT_VCF / "valid-4.1-large.vcf")]
    args = [
        "launch",
        *[a for path in inputs for a in ("--input_pattern", path)],
        "--output_parquet_dir",
        str(out),
    ]
    assert run_cli(*args).returncode == 0
    if engine == "prism":
        options = ["--runner", "PrismRunner", "--prism_location", str(request.getfixturevalue("prism"))]
    else:
        options = _portable(request.getfixturevalue("worker_pool_port"))
    streamed, piped = tmp_path / "streamed.vcf.gz", tmp_path / "piped.vcf.gz"
    for vcf, beam in ((streamed, []), (piped, options)):
        result = run_cli("export", "--input_parquet_dir", str(out), "--output_vcf", str(vcf), *beam)
        assert result.returncode == 0, result.stderr
    assert piped.read_bytes() == streamed.read_bytes()
    assert (tmp_path / "piped.vcf.gz.tbi").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "out",
        "piped.vcf.gz",
        "piped.vcf.gz.tbi",
        "streamed.vcf.gz",
        "streamed.vcf.gz.tbi",
    ]
