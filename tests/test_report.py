"""Plan, dry run, report and progress, end to end through `python -m variant_etl`.

Estimates are checked against independent counts: `bcftools index --stats` for the records an
index holds, `bcftools query` for the records and positions of a file, DuckDB for what the
Parquet files hold.
"""

from __future__ import annotations

import gzip
import json
import re
import shutil
import subprocess
import sys
from collections import Counter
from html.parser import HTMLParser
from pathlib import Path

import duckdb
import numpy as np
import pysam
import pysam.bcftools as bcftools
import pytest

from tests.conftest import REAL, REPO, bcftools_positions, generate_vcf, run_cli
from variant_etl.core.partitioning import USED_PARTITIONS
from variant_etl.outputs.report import MAX_SAMPLE_ROWS, partitions_csv

SHIPPED = [
    REPO / "examples" / "data" / "clinvar_subset.vcf.gz",
    REPO / "examples" / "data" / "cohort_189_samples.vcf.gz",
]
GLOB = str(REPO / "examples" / "data" / "*.vcf.gz")

RANGES = """\
- output_table:
    table_name_suffix: chr1_a
    regions: ["chr1:0-100,000,000"]
    partition_range_end: 100,000,000
- output_table:
    table_name_suffix: chr1_b
    regions: ["chr1:100,000,000-250,000,000", "1:0-250,000,000"]
    partition_range_end: 250,000,000
- output_table:
    table_name_suffix: chr2
    regions: ["chr2", "2"]
    partition_range_end: 243,000,000
- output_table:
    table_name_suffix: residual
    regions: ["residual"]
    partition_range_end: 250,000,000
"""


def range_shard(chrom: str, pos: int) -> str:
    """RANGES, restated by hand (0-based starts)."""
    start = pos - 1
    if chrom == "chr1":
        return "chr1_a" if start < 100_000_000 else "chr1_b"
    if chrom == "1":
        return "chr1_b"
    return "chr2" if chrom in ("chr2", "2") else "residual"


def plan_json(*args: str) -> dict:
    result = run_cli("plan", "--format", "json", *args)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def index_stats(path: Path) -> dict[str, int]:
    """`bcftools index --stats`: contig, length, records per line."""
    lines = bcftools.index("--stats", str(path)).splitlines()
    return {line.split("\t")[0]: int(line.split("\t")[2]) for line in lines if line.strip()}


@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> dict[str, Path]:
    """30,000 records over chr1..chrY (about 10 MB of text, more than the 4 MB prefix the
    plan reads), in every container the plan estimates differently."""
    folder = tmp_path_factory.mktemp("generated")
    plain = generate_vcf(folder / "plain.vcf", 30_000, 2)
    files = {"plain": plain}
    files["gzip"] = folder / "gzip.vcf.gz"
    files["gzip"].write_bytes(gzip.compress(plain.read_bytes(), compresslevel=6))
    files["bgzip"] = folder / "bgzip.vcf.gz"
    pysam.tabix_compress(str(plain), str(files["bgzip"]))
    files["tbi"] = folder / "tbi.vcf.gz"
    shutil.copy(files["bgzip"], files["tbi"])
    pysam.tabix_index(str(files["tbi"]), preset="vcf")
    files["csi"] = folder / "csi.vcf.gz"
    shutil.copy(files["bgzip"], files["csi"])
    pysam.tabix_index(str(files["csi"]), preset="vcf", csi=True)
    files["bcf"] = folder / "plain.bcf"
    bcftools.view("-Ob", "-o", str(files["bcf"]), str(files["tbi"]), catch_stdout=False)
    files["bcf_csi"] = folder / "indexed.bcf"
    shutil.copy(files["bcf"], files["bcf_csi"])
    bcftools.index(str(files["bcf_csi"]))
    (folder / "ranges.yaml").write_text(RANGES)
    files["ranges"] = folder / "ranges.yaml"
    return files


# --- plan: estimates --------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["tbi", "csi", "bcf_csi", "real_bcf_csi", "real_tbi"])
def test_indexed_inputs_are_counted_from_the_index_as_bcftools_does(generated, kind):
    path = {
        "real_bcf_csi": REAL / "cyvcf2" / "multi-contig.bcf",
        "real_tbi": REAL / "ensembl-vep" / "input.vcf.gz",
    }.get(kind) or generated[kind]
    (entry,) = plan_json("--input_pattern", str(path))["inputs"]
    assert entry["records_exact"] is True and entry["records_from"].startswith("index (")
    stats = index_stats(path)
    assert entry["records_per_contig"] == stats
    assert entry["records"] == sum(stats.values()) == len(bcftools_positions(path))


@pytest.mark.parametrize("kind", ["plain", "gzip", "bgzip", "bcf"])
def test_unindexed_inputs_are_extrapolated_from_a_prefix(generated, kind):
    plan = plan_json("--input_pattern", str(generated[kind]))
    (entry,) = plan["inputs"]
    actual = bcftools_positions(generated["plain"])
    assert entry["records_exact"] is False and entry["records_from"].startswith("estimated from the first")
    assert abs(entry["records"] - len(actual)) <= 0.05 * len(actual), (entry["records"], len(actual))
    # Per shard: the contigs after the prefix are spread by the header's contig lengths.
    by_shard = Counter(
        "chr" + chrom[3:].upper() if chrom[3:] not in ("X", "Y") else chrom for chrom, _ in actual
    )
    for shard in plan["shards"]:
        expected = by_shard.get(shard["table_name_suffix"], 0)
        assert abs(shard["estimated_rows"] - expected) <= 0.15 * expected + 30, (shard, expected)


@pytest.mark.parametrize("kind", ["tbi", "csi", "bcf_csi", "plain", "gzip"])
def test_position_range_shards_are_apportioned(generated, kind):
    plan = plan_json(
        "--input_pattern", str(generated[kind]), "--sharding_config_path", str(generated["ranges"])
    )
    actual = Counter(range_shard(chrom, pos) for chrom, pos in bcftools_positions(generated["plain"]))
    estimated = {s["table_name_suffix"]: s["estimated_rows"] for s in plan["shards"]}
    for suffix in ("chr1_a", "chr1_b", "chr2"):
        assert abs(estimated[suffix] - actual[suffix]) <= 0.05 * actual[suffix] + 10, (
            suffix,
            estimated,
            actual,
        )
    if kind in ("tbi", "csi", "bcf_csi"):  # the total is the index's: exact
        assert sum(estimated.values()) == sum(actual.values())


def test_plan_text_shows_inputs_splits_shards_and_estimated_rows():
    result = run_cli("plan", "--input_pattern", GLOB)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("plan: 2 input file(s), 179.7 kB; 25 shard(s) from ")
    # paths under the working directory are shown relative to it
    (cohort,) = [line for line in lines if line.startswith("  examples/data/cohort_189_samples.vcf.gz ")]
    # path, size, samples, records (whole file read: exact), read splits
    assert cohort.split()[1:7] == ["174.8", "kB", "189", "115", "1", "counted"]
    assert "read: 2 split(s) in 1 task(s)" in lines
    (chr1,) = [line for line in lines if line.startswith("  chr1 ")]
    assert chr1.split() == [
        "chr1",
        "chr1,",
        "1",
        "0–249,297,660,",
        "3,999",
        "partitions",
        "of",
        "62,340",
        "117",
    ]
    # 25 shards: the table stops at 10 lines (9 shards, then the rest in one)
    assert [line.split()[0] for line in lines if line.startswith("  chr")] == [
        f"chr{i}" for i in range(1, 10)
    ]
    assert (
        "  ... and 16 more shards (chr10 to residual): 32 estimated rows (plan --format json lists every shard)"
        in lines
    )
    assert "total: 165 rows in shards, 0 dropped (no matching shard)" in lines


def test_launch_summary_is_short_and_its_query_hint_runs(tmp_path):
    out = tmp_path / "out"
    result = run_cli("launch", "--input_pattern", GLOB, "--output_parquet_dir", str(out), "--no_progress")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert (
        lines[0]
        == "read 165 records from 2 file(s): 165 rows written, 0 malformed, 0 dropped (no matching shard)"
    )
    assert lines[1:11] == [f"  chr{i}: {117 if i == 1 else 2} rows in 1 file(s)" for i in range(1, 10)] + [
        "  ... and 16 more shards (chr10 to residual): 32 rows (the manifest and report list all)"
    ]
    # the hint is Python (pip installs DuckDB's module, not its command-line tool); run it
    (hint,) = [line for line in lines if line.startswith("query:  python -c ")]
    code = hint.removeprefix("query:  python -c ")
    shown = subprocess.run(
        [sys.executable, "-c", eval(code)], capture_output=True, text=True, check=True
    ).stdout
    assert "117" in shown and "reference_name" in shown


def test_estimates_on_shipped_data_are_the_rows_a_launch_writes(tmp_path):
    out = tmp_path / "out"
    plan = plan_json("--input_pattern", GLOB, "--output_parquet_dir", str(out))
    result = run_cli("launch", "--input_pattern", GLOB, "--output_parquet_dir", str(out))
    assert result.returncode == 0, result.stderr
    manifest = json.loads((out / "_manifest.json").read_text())
    assert [(i["path"], i["records"]) for i in plan["inputs"]] == [
        (i["path"], i["records_read"]) for i in manifest["inputs"]
    ]
    assert [s["estimated_rows"] for s in plan["shards"]] == [s["rows"] for s in manifest["shards"]]
    assert [s["partitioning"] for s in plan["shards"]] == [s["partitioning"] for s in manifest["shards"]]


def test_with_merging_the_plan_says_estimates_count_input_records():
    result = run_cli("plan", "--input_pattern", GLOB, "--variant_merge_strategy", "MOVE_TO_CALLS")
    assert result.returncode == 0, result.stderr
    assert "estimated rows: input records, not merged rows: MOVE_TO_CALLS" in result.stdout
    plan = plan_json("--input_pattern", GLOB, "--variant_merge_strategy", "MOVE_TO_CALLS")
    assert plan["estimates_count"].startswith("input records, not merged rows")


# --- launch --dry_run ---------------------------------------------------------------------


@pytest.mark.parametrize("flag", [["--dry_run"], ["--dry_run=True"], ["--dry_run", "true"]])
def test_launch_dry_run_prints_the_plan_and_runs_nothing(tmp_path, flag):
    out = tmp_path / "out"
    args = ["--input_pattern", GLOB, "--output_parquet_dir", str(out)]
    result = run_cli("launch", *args, *flag)
    assert result.returncode == 0, result.stderr
    assert result.stdout == run_cli("plan", *args).stdout
    assert "progress:" not in result.stderr
    assert not out.exists()
    as_json = run_cli("launch", *args, *flag, "--format", "json")
    assert json.loads(as_json.stdout) == plan_json(*args)
    assert not out.exists()


def test_launch_dry_run_still_checks_what_launch_checks(tmp_path):
    result = run_cli("launch", "--input_pattern", GLOB, "--dry_run")
    assert result.returncode == 2
    assert result.stderr.startswith("error: no output: pass --output_parquet_dir DIR")


@pytest.mark.parametrize(
    "args, message",
    [
        (["--format", "json"], "--format only applies with --dry_run (it says how the plan is printed)"),
        (
            ["--no_progress", "--progress_interval", "2"],
            "--progress_interval has no effect with --no_progress",
        ),
        (["--progress_interval", "0"], "argument --progress_interval: expected a positive number of seconds"),
        (["--dry_run=maybe"], "argument --dry_run: expected true or false, got 'maybe'"),
    ],
)
def test_plan_and_progress_option_mistakes(tmp_path, args, message):
    result = run_cli("launch", "--input_pattern", GLOB, "--output_parquet_dir", str(tmp_path / "o"), *args)
    assert result.returncode == 2
    assert result.stderr.startswith("error: ") and message in result.stderr, result.stderr
    assert not (tmp_path / "o").exists()


# --- report -------------------------------------------------------------------------------


class _Page(HTMLParser):
    """Tables by id (rows of cell texts), chart bars by chart id, the manifest text, and every
    URL the page would fetch."""

    def __init__(self):
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self.bars: dict[str, list[tuple[str, int]]] = {}
        self.manifest = ""
        self.paragraphs: dict[str, str] = {}
        self._paragraph = None
        self.fetches: list[str] = []
        self._table = self._chart = None
        self._cell: list[str] | None = None
        self._in_manifest = False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        for name in ("src", "href"):
            if name in attrs:
                self.fetches.append(attrs[name])
        if tag in ("script", "link", "img", "iframe"):
            self.fetches.append(tag)
        if tag == "p" and "id" in attrs:
            self._paragraph = attrs["id"]
            self.paragraphs[self._paragraph] = ""
        if tag == "table":
            self._table = attrs["id"]
            self.tables[self._table] = []
        elif tag == "tr" and self._table:
            self.tables[self._table].append([])
        elif tag in ("td", "th") and self._table:
            self._cell = []
        elif tag == "figure" and attrs.get("class") == "chart":  # an inline SVG, with its numbers
            self.bars[attrs["id"]] = list(
                zip(json.loads(attrs["data-labels"]), json.loads(attrs["data-values"]))
            )
        elif tag == "pre" and attrs.get("id") == "manifest":
            self._in_manifest = True

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self.tables[self._table][-1].append("".join(self._cell).strip())
            self._cell = None
        elif tag == "table":
            self._table = None
        elif tag == "pre":
            self._in_manifest = False
        elif tag == "p":
            self._paragraph = None

    def text(self, paragraph_id: str) -> str:
        return self.paragraphs.get(paragraph_id, "")

    def handle_data(self, data):
        if self._paragraph is not None:
            self.paragraphs[self._paragraph] += data
        if self._cell is not None:
            self._cell.append(data)
        if self._in_manifest:
            self.manifest += data


def read_page(path: Path) -> _Page:
    page = _Page()
    page.feed(path.read_text(encoding="utf-8"))
    return page


def number(text: str) -> int:
    return int(text.replace(",", ""))


@pytest.fixture(scope="module")
def shipped_run(tmp_path_factory, generated) -> Path:
    """The shipped examples plus the generated file, loaded with position-range shards."""
    out = tmp_path_factory.mktemp("report") / "out"
    result = run_cli(
        "launch", "--input_pattern", GLOB, "--input_pattern", str(generated["bgzip"]),
        "--sharding_config_path", str(generated["ranges"]), "--output_parquet_dir", str(out),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert f"report: {out}/_report.html" in result.stderr.splitlines()
    return out


def test_report_numbers_are_the_manifest_and_the_files(shipped_run):
    out = shipped_run
    manifest = json.loads((out / "_manifest.json").read_text())
    page = read_page(out / "_report.html")
    # opens offline: no script, stylesheet or image to fetch; one link, to the CSV beside it
    assert page.fetches == ["_report_partitions.csv"] and (out / "_report_partitions.csv").exists()
    assert json.loads(page.manifest) == {key: value for key, value in manifest.items() if key != "qc"}
    totals = {row[0]: number(row[1]) for row in page.tables["totals"][1:]}
    assert totals == manifest["totals"]
    inputs = [(row[0], number(row[1]), number(row[2]), number(row[3])) for row in page.tables["inputs"][1:]]
    assert inputs == [
        (i["path"], i["records_read"], i["records_parsed"], i["malformed"]) for i in manifest["inputs"]
    ]
    # rows per shard: the manifest's, and DuckDB's count of the shard's files
    con = duckdb.connect()
    counted = {
        s["table_name_suffix"]: con.execute(
            f"SELECT count(*) FROM read_parquet('{out}/{s['table_name_suffix']}/*.parquet')"
        ).fetchone()[0]
        if s["files"]
        else 0
        for s in manifest["shards"]
    }
    shards = {row[0]: (number(row[2]), number(row[3])) for row in page.tables["shards"][1:]}
    assert shards == {
        s["table_name_suffix"]: (s["rows"], counted[s["table_name_suffix"]]) for s in manifest["shards"]
    }
    assert page.bars["rows-per-shard"] == [(s, counted[s]) for s in counted]
    assert sum(counted.values()) == manifest["totals"]["rows_written"] == 30_000 + 165


def test_report_shows_the_qc_figures_of_the_manifest(shipped_run):
    manifest = json.loads((shipped_run / "_manifest.json").read_text())
    qc = manifest["qc"]
    page = read_page(shipped_run / "_report.html")
    records = {row[0]: [number(x) for x in row[1:8]] for row in page.tables["qc-records"][1:]}
    kinds = ("records", "snps", "mnps", "indels", "others", "multiallelic", "no_alts")
    assert records["whole run"] == [qc["run"][k] for k in kinds]
    assert records["whole run"][0] == manifest["totals"]["rows_written"]
    assert {name: values for name, values in records.items() if name != "whole run"} == {
        name: [s[k] for k in kinds] for name, s in qc["shards"].items()
    }
    indels = {row[0]: number(row[1]) for row in page.tables["qc-indels"][1:]}
    assert indels == qc["run"]["indel_lengths"]
    samples = {row[0]: [number(x) for x in row[1:8]] for row in page.tables["qc-samples"][1:]}
    keys = ("hom_ref", "het", "hom_alt", "indels", "hap_ref", "hap_alt", "missing")
    names = sorted(qc["run"]["samples"])  # the first 100 by name on the page, all in the manifest
    assert len(names) == 191 and len(samples) == MAX_SAMPLE_ROWS
    assert samples == {
        name: [qc["run"]["samples"][name][k] for k in keys] for name in names[:MAX_SAMPLE_ROWS]
    }


def test_report_rows_per_partition_range_match_duckdb(shipped_run):
    out = shipped_run
    manifest = json.loads((out / "_manifest.json").read_text())
    page = read_page(out / "_report.html")
    con = duckdb.connect()
    lines = (out / "_report_partitions.csv").read_text().splitlines()
    assert lines[0] == "shard,partition,start_position_from,start_position_to,rows"
    listed = [line.split(",") for line in lines[1:]]
    suffixes = {shard["table_name_suffix"] for shard in manifest["shards"]}
    assert all(len(row) == 5 and row[0] in suffixes for row in listed)
    summary = {row[0]: [number(x) for x in row[1:]] for row in page.tables["partitions"][1:]}
    for shard in manifest["shards"]:
        suffix = shard["table_name_suffix"]
        interval = int(shard["partitioning"]["range"]["interval"])
        expected = con.execute(
            f"SELECT start_position // {interval} AS p, count(*) "
            f"FROM read_parquet('{out}/{suffix}/*.parquet') GROUP BY p ORDER BY p"
        ).fetchall() if shard["files"] else []  # fmt: skip
        # every non-empty partition in the CSV: DuckDB's counts
        assert [
            (int(p), int(a), int(b), int(n)) for shard_name, p, a, b, n in listed if shard_name == suffix
        ] == [(p, p * interval, (p + 1) * interval, n) for p, n in expected]
        if not expected:
            assert suffix not in summary and suffix in page.text("empty-shards")
            continue
        counts = sorted(n for _, n in expected)
        assert summary[suffix] == [len(counts), counts[0], counts[len(counts) // 2], counts[-1], 0]
    # the drawn distributions: fewest, median and most rows a partition, per shard drawn
    drawn = dict(page.bars["rows-per-partition"])
    assert drawn and all(
        drawn[suffix] == [summary[suffix][1], summary[suffix][2], summary[suffix][3]] for suffix in drawn
    )
    # the fullest partitions of the page are the CSV's largest
    fullest = sorted((int(n) for *_, n in listed), reverse=True)[
        : len(page.tables["heaviest-partitions"]) - 1
    ]
    assert [number(row[4]) for row in page.tables["heaviest-partitions"][1:]] == fullest
    # chr1_b holds the generated chr1 records past 100 Mb: spread over many partitions
    assert summary["chr1_b"][0] > 500


def test_partitions_csv_of_shards_some_empty():
    """Empty shards (first, between, last) write no line: Arrow's CSV writer pads an empty chunk
    with NUL bytes."""
    spec = {"partitioning": {"range": {"start": "0", "end": "1000", "interval": "100"}}}
    empty = (np.zeros(0, np.int64), np.zeros(0, np.int64))
    shards = [
        {"suffix": "a", "partitions": empty, **spec},
        {"suffix": "b", "partitions": (np.array([0, 7, USED_PARTITIONS]), np.array([3, 1, 2])), **spec},
        {"suffix": "c", "partitions": empty, **spec},
        {"suffix": "d", "partitions": (np.array([9]), np.array([5])), **spec},
        {"suffix": "e", "partitions": empty, **spec},
    ]
    assert partitions_csv(shards) == (
        "shard,partition,start_position_from,start_position_to,rows\n"
        f"b,0,0,100,3\nb,7,700,800,1\nb,{USED_PARTITIONS},,,2\nd,9,900,1000,5\n"
    )
    assert partitions_csv(shards[:1]) == "shard,partition,start_position_from,start_position_to,rows\n"


def test_report_command_writes_the_same_page(shipped_run, tmp_path):
    target = tmp_path / "report.html"
    result = run_cli("report", "--input_parquet_dir", str(shipped_run), "--output", str(target))
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"report: {target}\n"
    # the same page (the same drawings too), its CSV named after it
    page = target.read_text().replace("report_partitions.csv", "_report_partitions.csv")
    assert page == (shipped_run / "_report.html").read_text()
    assert (tmp_path / "report_partitions.csv").read_bytes() == (
        shipped_run / "_report_partitions.csv"
    ).read_bytes()


def test_report_of_a_directory_without_a_run(tmp_path):
    result = run_cli("report", "--input_parquet_dir", str(tmp_path))
    assert result.returncode == 2
    assert result.stderr.startswith(f"error: {tmp_path}: no _manifest.json, so not a finished run")


# --- progress -----------------------------------------------------------------------------

PROGRESS = re.compile(r"progress: (\d+)/(\d+) (files|windows), ([\d,]+) records, ([\d,]+) records/s")
DONE = re.compile(
    r"progress: done, (\d+)/(\d+) (files|windows), ([\d,]+) records in [\d.]+ s, [\d,]+ records/s"
)


def progress_lines(stderr: str) -> tuple[list[tuple[int, int, int]], re.Match]:
    lines = [line for line in stderr.splitlines() if line.startswith("progress:")]
    periodic = [PROGRESS.fullmatch(line) for line in lines[:-1]]
    assert all(periodic), lines
    final = DONE.fullmatch(lines[-1])
    assert final, lines[-1]
    return [(int(m[1]), int(m[2]), number(m[4])) for m in periodic], final


@pytest.mark.slow
def test_progress_lines_during_a_run_in_worker_processes(tmp_path, generated):
    inputs = []
    for name in ("a", "b", "c"):
        inputs += ["--input_pattern", str(shutil.copy(generated["gzip"], tmp_path / f"{name}.vcf.gz"))]
    out = tmp_path / "out"
    result = run_cli(
        "launch", *inputs, "--output_parquet_dir", str(out), "--progress_interval", "0.2",
        "--direct_running_mode", "multi_processing", "--direct_num_workers", "2",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "progress:" not in result.stdout and result.stdout.startswith("read 90,000 records from 3 file(s)")
    periodic, final = progress_lines(result.stderr)
    assert periodic, "a run of several seconds prints lines every 0.2 s"
    assert all(total == 3 for _, total, _ in periodic)
    assert [records for _, _, records in periodic] == sorted(records for _, _, records in periodic)
    manifest = json.loads((out / "_manifest.json").read_text())
    # the last line adds up what every reader reported: all files, every record
    assert (final[1], final[2], number(final[4])) == ("3", "3", manifest["totals"]["records_read"])
    assert manifest["totals"]["records_read"] == 90_000


@pytest.mark.slow
def test_progress_counts_windows_when_merging_indexed_inputs(tmp_path):
    inputs = []
    for path in SHIPPED:
        copy = tmp_path / path.name
        shutil.copy(path, copy)  # bgzipped already
        pysam.tabix_index(str(copy), preset="vcf", force=True)
        inputs += ["--input_pattern", str(copy)]
    merge = ["--variant_merge_strategy", "MOVE_TO_CALLS"]
    windows = plan_json(*inputs, *merge)["region_splits"]
    out = tmp_path / "out"
    result = run_cli(
        "launch", *inputs, *merge, "--output_parquet_dir", str(out), "--progress_interval", "0.5"
    )
    assert result.returncode == 0, result.stderr
    _, final = progress_lines(result.stderr)
    manifest = json.loads((out / "_manifest.json").read_text())
    assert (int(final[1]), int(final[2]), final[3]) == (windows, windows, "windows")
    assert number(final[4]) == manifest["totals"]["records_read"] == 165


def test_no_progress(tmp_path):
    result = run_cli(
        "launch", "--input_pattern", GLOB, "--output_parquet_dir", str(tmp_path / "o"), "--no_progress"
    )
    assert result.returncode == 0, result.stderr
    assert "progress:" not in result.stderr


def test_charts_are_svg_drawn_to_scale():
    """The charts are well-formed SVG whose marks sit where their numbers say: bars as long as
    their values, a box from the first to the third quartile on a log axis, round ticks."""
    import xml.etree.ElementTree as ET

    from variant_etl.outputs import charts

    ns = {"s": "http://www.w3.org/2000/svg"}

    def svg(figure: str):
        return ET.fromstring(figure[figure.index("<svg") : figure.index("</svg>") + 6])

    bars = svg(charts.horizontal_bars("b", ["a", "bb"], [5, 120], axis="rows", caption="c"))
    widths = [float(r.get("width")) for r in bars.findall("s:rect", ns)]
    assert len(widths) == 2 and widths[1] / widths[0] == pytest.approx(24, rel=0.01)
    ticks = [t.text for t in bars.findall("s:text", ns) if t.get("text-anchor") == "middle"]
    assert ticks == ["0", "50", "100", "rows"]  # round steps up to 1.15 x the longest bar; the label
    boxes = svg(charts.boxes("x", ["s"], [[1, 2, 3, 4, 1000]], axis="rows", caption="c"))
    (box,) = boxes.findall("s:rect", ns)
    x_of = {
        t.text: float(t.get("x")) for t in boxes.findall("s:text", ns) if t.get("text-anchor") == "middle"
    }
    assert list(x_of)[:4] == ["1", "10", "100", "1,000"]
    decade = x_of["10"] - x_of["1"]
    left, width = float(box.get("x")), float(box.get("width"))
    assert left == pytest.approx(x_of["1"] + decade * np.log10(2), abs=0.1)  # Q1 = 2
    assert left + width == pytest.approx(x_of["1"] + decade * np.log10(4), abs=0.1)  # Q3 = 4
    for figure in (
        charts.vertical_bars("v", [-3, 1, 60], [2, 0, 7], xlabel="x", ylabel="y", caption="c"),
        charts.spectrum("f", [0.0, 0.5, 0.9], {"SNPs": [3, 0, 40], "indels": [0, 0, 0]}, caption="c"),
        charts.scatter("p", ["a", "b"], [0, 12], [3, 0], xlabel="x", ylabel="y", caption="c"),
        charts.horizontal_bars("e", [], [], axis="none", caption="c"),
    ):
        assert svg(figure).tag == "{http://www.w3.org/2000/svg}svg"
