"""The copy-paste examples of the docs, run as written (in a scratch directory that has the
repository's examples/ and sharding_configs/), with some of what they print checked."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

# doc -> strings its examples print
DOCS = {
    "docs/annotations.md": ["splice_donor_variant", "Uncertain_significance", "Likely_benign"],
    "docs/query.md": ["10389", "[[0, 0], [0, 0]]"],
    "docs/python_api.md": [
        "{'records_read': 165, 'records_written': 165, 'rows_written': 165, 'malformed': 0,",
        "read 115 written 108 removed by the pipeline's own steps 7",
        "chromosome 1: 2 ClinVar records",
        "merged_rows",
    ],
    "docs/export.md": ["wrote"],
    "docs/sample_lookup.md": [
        "21,735 rows (one per call)",
        "27 calls with an ALT allele",
        "row groups read: 1 of 22",
    ],
    "docs/plan_and_report.md": [
        "total: 165 rows in shards, 0 dropped (no matching shard)",
        "index (cohort_189_samples.vcf.gz.tbi)",
        "input records, not merged rows: MOVE_TO_CALLS",
        '"estimated_rows": 117',
        "report: example_report.html",
    ],
}
_BLOCK = re.compile(r"^```[a-z]*\n(.*?)^```", re.MULTILINE | re.DOTALL)
_COMMAND = re.compile(r"^(python -m variant_etl|\./run_local\.sh|printf|python - <<|python -c)", re.MULTILINE)
# BigQuery examples need a Google Cloud project: test_bigquery.py and test_export_bigquery.py run
# the same commands against the emulator.
_CLOUD = re.compile(r"--(input|output)_table|--sample_lookup_optimized_output_table|gs://|DataflowRunner")


def examples(doc: str) -> list[str]:
    """The fenced blocks of a doc that run something (not the ones showing output or SQL)."""
    blocks = _BLOCK.findall((REPO / doc).read_text())
    return [block for block in blocks if _COMMAND.search(block) and not _CLOUD.search(block)]


@pytest.mark.slow
@pytest.mark.parametrize("doc", sorted(DOCS))
def test_doc_examples_run_as_written(doc, tmp_path):
    blocks = examples(doc)
    assert blocks, f"{doc} has no example"
    for name in ("examples", "sharding_configs", "run_local.sh"):
        (tmp_path / name).symlink_to(REPO / name)
    (tmp_path / "out").mkdir()
    # the docs say "after ./run_local.sh out/example" where they do not run it themselves
    needs_example = any("out/example" in b for b in blocks) and not any("run_local.sh" in b for b in blocks)
    script = ("./run_local.sh out/example > /dev/null\n" if needs_example else "") + "\n".join(blocks)
    # `python` in the examples is this Python, whether or not its environment is activated
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script], cwd=tmp_path, capture_output=True, text=True, env=env
    )
    assert result.returncode == 0, result.stderr[-3000:]
    for expected in DOCS[doc]:
        assert expected in result.stdout, (expected, result.stdout[-3000:])
