"""CI runs the benchmark only as a smoke test: tiny input, one run, no peers, no timing asserts."""

import subprocess
import sys

import pytest

from tests.conftest import REPO


@pytest.mark.slow
def test_benchmark_smoke():
    result = subprocess.run(
        [sys.executable, str(REPO / "bench" / "run.py"), "--smoke", "--cases", "sites"],
        capture_output=True, text=True, cwd=REPO,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert "| variant_etl |" in result.stdout and "2,000 sites-only variants" in result.stdout
