"""The same pipeline on Beam's PortableRunner (the portability API of Flink, Spark and
Dataflow v2) with an EXTERNAL worker pool on 127.0.0.1: identical output to DirectRunner."""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO, refuse_outbound, run_cli, this_environment
from tests.conftest import worker_pool as start_worker_pool


@pytest.fixture
def worker_pool():
    # The pool starts SDK workers with the `python` on PATH: make it this environment's.
    env = this_environment()
    with start_worker_pool(Path(sys.executable), env) as port:
        yield port, env


def digests(out: Path) -> dict[str, str]:
    return {
        str(p.relative_to(out)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(out.glob("*/*.parquet"))
    }


@pytest.mark.slow
def test_portable_runner_with_external_workers_gives_directrunner_output(tmp_path, worker_pool):
    port, env = worker_pool
    inputs = ["--input_pattern", str(REPO / "examples" / "data" / "*.vcf.gz")]
    direct = tmp_path / "direct"
    assert run_cli("launch", *inputs, "--output_parquet_dir", str(direct)).returncode == 0
    portable = tmp_path / "portable"
    result = run_cli(
        "launch", *inputs, "--output_parquet_dir", str(portable),
        "--runner", "PortableRunner", "--job_endpoint", "embed",
        "--environment_type", "EXTERNAL", "--environment_config", f"localhost:{port}",
        env_extra={"PATH": env["PATH"]},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert digests(portable) == digests(direct)
    assert len(digests(direct)) == 25  # the two small inputs are read as one group: a file per shard


@pytest.mark.parametrize("runner", [[], ["--runner", "DirectRunner"]], ids=["default", "DirectRunner"])
def test_the_local_runner_needs_no_network_and_never_tries_prism(tmp_path, monkeypatch, runner):
    """Beam 2.77's DirectRunner first downloads Prism from GitHub and runs the pipeline there
    when it can; launch runs Beam's in-process FnApiRunner instead, with every outbound
    connection refused, and never reaches Prism."""
    import apache_beam.runners.portability.prism_runner as prism_runner

    reached = refuse_outbound(monkeypatch)
    monkeypatch.setattr(prism_runner.PrismRunner, "run_pipeline", lambda *a, **k: reached.append(a))
    out = tmp_path / "out"
    source = REPO.parent / "shared" / "testdata" / "vt" / "vcf" / "valid-4.0.vcf"
    result = run_cli(
        "launch", "--input_pattern", str(source), "--output_parquet_dir", str(out), "--verbose", *runner
    )
    assert result.returncode == 0, result.stderr
    assert reached == []
    assert "prism" not in result.stderr.lower()
    assert (out / "_SUCCESS").exists()


class _Slow:
    """A value whose encoding takes longer than the worker's flush timer's period (1 s)."""

    def __init__(self, text: str):
        self.text = text


def test_threaded_workers_never_send_half_an_element():
    """Beam's threaded workers flush their output each second from a timer, also in the middle
    of an element; the runner decodes each message of a shuffle's input alone, so the element
    cut in two came out empty, with a key '' no element had (seen with Beam's own FnApiRunner:
    [('', ['', '']), ('a', ['']), ('b', [''])]). launch's runner has no such timer."""
    import time

    import apache_beam as beam
    from apache_beam.options.pipeline_options import DirectOptions, PipelineOptions
    from apache_beam.testing.util import assert_that, equal_to

    from variant_etl.cli.launch import _FnApiRunner

    class SlowCoder(beam.coders.Coder):
        def encode(self, value):
            time.sleep(1.2)  # the element's window header is in the buffer already
            return value.text.encode()

        def decode(self, encoded):
            return _Slow(encoded.decode())

        def is_deterministic(self):
            return True

    beam.coders.registry.register_coder(_Slow, SlowCoder)
    options = PipelineOptions(["--direct_running_mode=multi_threading", "--direct_num_workers=2"])
    with beam.Pipeline(runner=_FnApiRunner(), options=options) as p:
        grouped = (
            p
            | beam.Create(["a", "b"])
            | beam.Map(lambda t: (t, _Slow(t * 3))).with_output_types(tuple[str, _Slow])
            | beam.GroupByKey()
            | beam.MapTuple(lambda key, values: (key, [v.text for v in values]))
        )
        assert_that(grouped, equal_to([("a", ["aaa"]), ("b", ["bbb"])]))
    assert options.view_as(DirectOptions).direct_running_mode == "multi_threading"
