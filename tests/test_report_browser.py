"""The report in a real browser: headless Chromium (Debian's `chromium` package, which .ci/run
installs) renders the page of a load of the shipped examples with no console message, every
chart drawn in the DOM, and takes a screenshot of it."""

from __future__ import annotations

import shutil
import struct
import subprocess

import pytest

from tests.conftest import REPO, run_cli

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def _chromium(*args: str) -> subprocess.CompletedProcess:
    assert CHROMIUM, "no chromium on PATH: apt-get install -y chromium (.ci/run does)"
    return subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--enable-logging=stderr", "--v=0", *args],
        capture_output=True,
        text=True,
        timeout=180,
    )


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    out = tmp_path_factory.mktemp("browser") / "out"
    result = run_cli(
        "launch", "--input_pattern", str(REPO / "examples" / "data" / "*.vcf.gz"),
        "--output_parquet_dir", str(out), "--no_progress",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return out / "_report.html"


def test_chromium_renders_the_report_without_console_messages(report):
    result = _chromium("--dump-dom", report.as_uri())
    assert result.returncode == 0, result.stderr
    assert [line for line in result.stderr.splitlines() if ":CONSOLE" in line] == []
    dom = result.stdout
    charts = report.read_text().count('<figure class="chart"')
    # records by type, indel lengths, allele frequencies, samples, rows per shard and partition
    assert charts == 6
    assert dom.count("<svg") == charts and dom.count("<figcaption>") == charts
    assert "Quality control" in dom and "Rows per BigQuery partition" in dom


def test_chromium_takes_a_screenshot_of_the_report(report, tmp_path):
    screenshot = tmp_path / "report.png"
    result = _chromium(f"--screenshot={screenshot}", "--window-size=1200,4000", report.as_uri())
    assert result.returncode == 0, result.stderr
    data = screenshot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert struct.unpack(">II", data[16:24]) == (1200, 4000)
    assert len(data) > 100_000  # charts and tables, not a blank page (a blank one is ~10 KB)
