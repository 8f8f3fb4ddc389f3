"""End to end: `python -m variant_etl launch` on real files, checked against bcftools."""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest

from tests.conftest import REPO, TESTDATA, VT_VCF, bcftools_positions, run_cli, run_cli_process

AUTOSOMES_AND_SEX = {str(i) for i in range(1, 23)} | {"X", "Y"}


def default_shard(chrom: str) -> str:
    """The bundled default config, restated by hand: chr1..chr22, chrX, chrY, residual."""
    bare = chrom[3:] if chrom.startswith("chr") else chrom
    if bare in AUTOSOMES_AND_SEX or bare in ("x", "y"):
        return "chr" + bare.upper()
    return "residual"


def expected_by_shard(paths, shard_of=default_shard) -> dict[str, tuple[int, int]]:
    """{suffix: (rows, sum of 0-based start_position)} from bcftools' reading."""
    rows, sums = Counter(), Counter()
    for path in paths:
        for chrom, pos in bcftools_positions(path):
            shard = shard_of(chrom)
            if shard is not None:
                rows[shard] += 1
                sums[shard] += pos - 1
    return {shard: (rows[shard], sums[shard]) for shard in rows}


def sql(query: str) -> list[tuple]:
    return duckdb.connect().execute(query).fetchall()


def launch(out: Path, *inputs: Path, extra: tuple[str, ...] = ()):
    args = ["launch", "--output_parquet_dir", str(out)]
    for path in inputs:
        args += ["--input_pattern", str(path)]
    return run_cli(*args, *extra)


def written_by_shard(out: Path) -> dict[str, tuple[int, int]]:
    found = {}
    for shard_dir in sorted(p for p in out.iterdir() if p.is_dir() and not p.name.startswith("_")):
        rows, total = sql(f"SELECT count(*), sum(start_position) FROM read_parquet('{shard_dir}/*.parquet')")[
            0
        ]
        found[shard_dir.name] = (rows, int(total))
    return found


def check_manifest_adds_up(out: Path) -> dict:
    manifest = json.loads((out / "_manifest.json").read_text())
    totals = manifest["totals"]
    assert totals["records_read"] == (
        totals["rows_written"] + totals["malformed"] + totals["dropped_no_matching_shard"]
    )
    assert totals["records_read"] == sum(i["records_read"] for i in manifest["inputs"])
    assert totals["rows_written"] == sum(s["rows"] for s in manifest["shards"])
    for entry in manifest["inputs"]:
        assert entry["records_read"] == entry["records_parsed"] + entry["malformed"]
    assert sum(i["records_parsed"] for i in manifest["inputs"]) == (
        sum(s["records_routed"] for s in manifest["shards"]) + totals["dropped_no_matching_shard"]
    )
    for shard in manifest["shards"]:
        assert shard["records_routed"] == shard["records"] == sum(f["records"] for f in shard["files"])
        assert shard["rows"] == sum(f["rows"] for f in shard["files"])
        for f in shard["files"]:
            assert (out / f["path"]).exists()
    assert not (out / "_temporary").exists()
    assert (out / "_SUCCESS").exists()
    return manifest


VT_GROUPS = {
    "4.0": ["valid-4.0.vcf", "valid-4.0.vcf.gz", "valid-4.0.vcf.bz2"],
    "4.1-large": ["valid-4.1-large.vcf", "valid-4.1-large.vcf.gz"],
    "4.2": ["valid-4.2.vcf", "valid-4.2.vcf.gz"],
    "merge": ["merge/merge1.vcf", "merge/merge2.vcf", "merge/merge3.vcf"],
}


@pytest.mark.parametrize("group", sorted(VT_GROUPS))
def test_vt_files_per_shard_rows_and_positions_match_bcftools(tmp_path, group):
    inputs = [VT_VCF / name for name in VT_GROUPS[group]]
    out = tmp_path / "out"
    result = launch(out, *inputs)
    assert result.returncode == 0, result.stderr
    assert written_by_shard(out) == expected_by_shard(inputs)
    manifest = check_manifest_adds_up(out)
    assert manifest["totals"]["malformed"] == 0
    assert "rows written" in result.stdout and "duckdb" in result.stdout


def test_gcp_variant_transforms_sharding_config_with_ranges(tmp_path):
    config = TESTDATA / "vt" / "sharding_configs" / "residual_in_middle.yaml"
    inputs = [VT_VCF / "valid-4.1-large.vcf.gz"]

    def shard_of(chrom, pos=None):
        return None  # replaced below: ranges need the position

    rows, sums = Counter(), Counter()
    for chrom, pos in bcftools_positions(inputs[0]):
        start = pos - 1
        if chrom == "chr1" and start < 1_000_000:
            shard = "chr01_part1"
        elif chrom == "chr1" and start < 2_000_000:
            shard = "chr01_part2"
        elif chrom == "chr2":
            shard = "chrom02"
        elif chrom == "3" and 500_000 <= start < 1_000_000:
            shard = "chr3_02"
        else:
            shard = "all_remaining"
        rows[shard] += 1
        sums[shard] += start
    out = tmp_path / "out"
    result = launch(out, *inputs, extra=("--sharding_config_path", str(config)))
    assert result.returncode == 0, result.stderr
    assert written_by_shard(out) == {s: (rows[s], sums[s]) for s in rows}
    manifest = check_manifest_adds_up(out)
    spec = {s["table_name_suffix"]: s["partitioning"]["range"] for s in manifest["shards"]}
    assert spec["chr01_part1"] == {"start": "0", "end": "1039740", "interval": "260"}
    assert spec["all_remaining"] == {"start": "0", "end": "249297660", "interval": "62340"}


def test_no_residual_drops_and_counts(tmp_path):
    config = TESTDATA / "vt" / "sharding_configs" / "residual_missing.yaml"
    inputs = [VT_VCF / "valid-4.2.vcf"]  # contigs 19, 20, Y, HLA...: none is in this config
    out = tmp_path / "out"
    result = launch(out, *inputs, extra=("--sharding_config_path", str(config)))
    assert result.returncode == 0, result.stderr
    manifest = check_manifest_adds_up(out)
    assert manifest["totals"]["dropped_no_matching_shard"] == len(bcftools_positions(inputs[0])) == 13
    assert manifest["totals"]["rows_written"] == 0


def test_parquet_is_sorted_with_tight_statistics_and_zstd(tmp_path):
    out = tmp_path / "out"
    assert (
        launch(out, VT_VCF / "valid-4.1-large.vcf", extra=("--parquet_row_group_size", "1000")).returncode
        == 0
    )
    meta = sql(
        f"SELECT row_group_id, stats_min_value::BIGINT, stats_max_value::BIGINT, compression "
        f"FROM parquet_metadata('{out}/chr1/*.parquet') WHERE path_in_schema = 'start_position' ORDER BY 1"
    )
    assert len(meta) == 10  # 9,882 rows in row groups of 1,000
    assert all(c == "ZSTD" for *_, c in meta)
    for (_, _, previous_max, _), (_, next_min, _, _) in zip(meta, meta[1:]):
        assert previous_max <= next_min  # sorted: row groups do not overlap


def test_malformed_records_stop_the_run_with_a_clear_error(tmp_path):
    out = tmp_path / "out"
    result = launch(out, VT_VCF / "invalid-4.0-POS-empty.vcf")
    assert result.returncode == 1
    assert "invalid-4.0-POS-empty.vcf:19: POS: expected a positive integer, got ''" in result.stderr
    assert "Traceback" not in result.stderr
    assert not out.exists()  # nothing half-written


def test_allow_malformed_records_dead_letters_them(tmp_path):
    out = tmp_path / "out"
    inputs = [VT_VCF / "invalid-4.0-POS-empty.vcf", VT_VCF / "preprocessor" / "invalid-4.0.vcf"]
    result = launch(out, *inputs, extra=("--allow_malformed_records",))
    assert result.returncode == 0, result.stderr
    manifest = check_manifest_adds_up(out)
    entries = [json.loads(line) for f in sorted((out / "_malformed").glob("*.jsonl")) for line in f.open()]
    assert [(Path(e["file"]).name, e["line"], e["field"]) for e in entries] == [
        ("invalid-4.0-POS-empty.vcf", 19, "POS"),
        ("invalid-4.0.vcf", 22, "FORMAT/FT"),
        ("invalid-4.0.vcf", 23, "POS"),
    ]
    assert entries[0]["raw"].startswith("20\t\trs6054257")
    assert manifest["totals"] == {
        "records_read": 10, "records_written": 7, "rows_written": 7, "malformed": 3,
        "dropped_no_matching_shard": 0, "number_a_values_matched": 0, "several_values_cast_to_first": 0,
    }  # fmt: skip


@pytest.mark.parametrize(
    "args, message",
    [
        (("--input_pattern", "/nonexistent/*.vcf", "--output_parquet_dir", "o"), "matches no file"),
        (("--output_parquet_dir", "o"), "no input"),
        (("--input_pattern", str(VT_VCF / "valid-4.0.vcf")), "no output"),
        (
            (
                "--input_pattern",
                str(VT_VCF / "valid-4.0.vcf"),
                "--input_pattern",
                str(VT_VCF / "valid-4.2.vcf"),
                "--output_parquet_dir",
                "o",
            ),
            "INFO field 'AF' has incompatible definitions",
        ),
        (
            (
                "--input_pattern",
                str(VT_VCF / "valid-4.0.vcf"),
                "--output_parquet_dir",
                "o",
                "--sharding_config_path",
                "/nonexistent.yaml",
            ),
            "cannot read the sharding config",
        ),
    ],
)
def test_plan_time_errors(tmp_path, args, message):
    result = run_cli("launch", *args)
    assert result.returncode == 2
    assert message in result.stderr and "Traceback" not in result.stderr


def test_existing_output_is_refused_unless_overwrite(tmp_path):
    out = tmp_path / "out"
    assert launch(out, VT_VCF / "valid-4.2.vcf").returncode == 0  # shards chr19, chr20, chrY, residual
    result = launch(out, VT_VCF / "valid-4.0.vcf")
    assert result.returncode == 2 and "already holds a completed run" in result.stderr
    assert "--overwrite" in result.stderr
    replaced = launch(out, VT_VCF / "valid-4.0.vcf", extra=("--overwrite",))  # shards chr19, chr20
    assert replaced.returncode == 0, replaced.stderr
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [
            "__sample_info.parquet",
            "_SUCCESS",
            "_header.vcf",
            "_manifest.json",
            "_report.html",
            "_report_partitions.csv",
            "chr19",
            "chr20",
        ]
    )
    assert written_by_shard(out) == expected_by_shard([VT_VCF / "valid-4.0.vcf"])
    check_manifest_adds_up(out)


def test_input_file_lists_patterns(tmp_path):
    listing = tmp_path / "inputs.txt"
    listing.write_text(f"# inputs\n{VT_VCF / 'valid-4.0.vcf'}\n{VT_VCF / 'valid-4.0.vcf.g*'}\n")
    out = tmp_path / "out"
    result = run_cli("launch", "--input_file", str(listing), "--output_parquet_dir", str(out))
    assert result.returncode == 0, result.stderr
    assert check_manifest_adds_up(out)["totals"]["records_read"] == 10


@pytest.mark.slow
def test_other_entry_points(tmp_path):
    """The console script the package installs, beside `python -m variant_etl`."""
    import subprocess

    script = str(Path(sys.executable).parent / "variant-etl")
    out = tmp_path / "out"
    result = subprocess.run(
        [script, "launch", "--input_pattern", str(VT_VCF / "valid-4.0.vcf"), "--output_parquet_dir", str(out)],
        capture_output=True, text=True, cwd=REPO,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert check_manifest_adds_up(out)["totals"]["records_read"] == 5
    result = subprocess.run([script, "validate-config"], capture_output=True, text=True)
    assert result.returncode == 0 and "OK, 25 shard(s)" in result.stdout


@pytest.mark.slow
def test_python_dash_m_exit_codes_and_one_line_errors(tmp_path):
    """The process `python -m variant_etl` exits with main()'s code: 0 when it worked, 2 for an
    error found before any work, 1 for one found while reading; an error is one line on
    stderr, without a traceback. (The other tests run the CLI in this process: run_cli.)"""
    done = run_cli_process("validate-config")
    assert done.returncode == 0 and "OK, 25 shard(s)" in done.stdout, done.stderr
    refused = run_cli_process("validate-config", str(tmp_path / "missing.yaml"))
    assert refused.returncode == 2, refused.stderr
    assert refused.stderr.startswith("error: ") and len(refused.stderr.strip().splitlines()) == 1
    assert refused.stdout == ""
    out = tmp_path / "out"
    source = VT_VCF / "invalid-4.0-POS-empty.vcf"
    failed = run_cli_process("launch", "--input_pattern", str(source), "--output_parquet_dir", str(out))
    assert failed.returncode == 1
    (error,) = [line for line in failed.stderr.splitlines() if line.startswith("error: ")]
    assert error.startswith(f"error: {source}:19: POS: expected a positive integer")
    assert "Traceback" not in failed.stderr and not out.exists()


def test_large_uncompressed_files_are_read_in_byte_ranges(tmp_path):
    path = VT_VCF / "valid-4.1-large.vcf"
    out = tmp_path / "out"
    result = launch(out, path, extra=("--read_split_bytes", "50000"))
    assert result.returncode == 0, result.stderr
    assert written_by_shard(out) == expected_by_shard([path])
    manifest = check_manifest_adds_up(out)
    assert len(manifest["shards"][0]["files"]) > 10  # one file per range: each read in parallel
    assert manifest["inputs"] == [
        {
            "path": str(path),
            "records_read": 9882,
            "records_parsed": 9882,
            "malformed": 0,
            "number_a_values_matched": 0,
            "several_values_cast_to_first": 0,
        }
    ]
    # one row per sample of the file, however many ranges it was read in
    sample_info = pq.read_table(out / "__sample_info.parquet").to_pylist()
    assert [(r["sample_name"], r["file_path"]) for r in sample_info] == [("GS000016676-ASM", str(path))]
    assert manifest["sample_info"]["rows"] == 1


SMALL_HEADER = (
    "##fileformat=VCFv4.2\n##contig=<ID=chr1>\n##contig=<ID=chr2>\n"
    '##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">\n'
    "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\t{sample}\n"
)


def write_small_files(folder: Path, count: int) -> list[Path]:
    """Files of 4 records on chr1 and chr2, positions interleaved across files; f003 has a
    fifth, malformed record."""
    folder.mkdir()
    paths = []
    for i in range(count):
        records = [
            f"chr{c}\t{1000 - i + k}\t.\tA\tC\t.\tPASS\t.\tGT\t0/1\n" for c in (1, 2) for k in (0, 500)
        ]
        if i == 3:
            records.append("chr1\tx\t.\tA\tC\t.\tPASS\t.\tGT\t0/1\n")
        paths.append(folder / f"f{i:03d}.vcf")
        paths[-1].write_text(SMALL_HEADER.format(sample=f"S{i}") + "".join(records))
    return paths


def test_small_files_are_read_in_groups_with_per_file_counts_and_deterministic_output(tmp_path):
    paths = write_small_files(tmp_path / "in", 120)  # two groups: 100 files, then 20
    first, second = tmp_path / "a", tmp_path / "b"
    extra = ("--allow_malformed_records", "--direct_num_workers", "1", "--direct_running_mode", "in_memory")
    assert launch(first, tmp_path / "in" / "*.vcf", extra=extra).returncode == 0
    result = launch(second, tmp_path / "in" / "*.vcf", extra=("--allow_malformed_records",))
    assert result.returncode == 0, result.stderr
    manifest = check_manifest_adds_up(second)
    assert manifest["inputs"] == [
        {
            "path": str(p),
            "records_read": 5 if p.name == "f003.vcf" else 4,
            "records_parsed": 4,
            "malformed": int(p.name == "f003.vcf"),
            "number_a_values_matched": 0,
            "several_values_cast_to_first": 0,
        }
        for p in paths
    ]
    files = {s["table_name_suffix"]: len(s["files"]) for s in manifest["shards"] if s["files"]}
    assert files == {"chr1": 2, "chr2": 2}  # one file per group and shard, not one per input
    contents = {}
    for out in (first, second):
        contents[out] = {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.glob("*/*.parquet"))}
        for path in out.glob("*/*.parquet"):
            starts = pq.read_table(path).column("start_position").to_pylist()
            assert starts == sorted(starts)
    assert contents[first] == contents[second]
    assert written_by_shard(second) == {
        f"chr{c}": (240, sum(999 - i + k for i in range(120) for k in (0, 500))) for c in (1, 2)
    }


def test_local_runs_sample_beams_state_often():
    """A bundle's end waits for Beam's state sampler to wake (every 200 ms by default): a local
    run's bundles get a sampler that wakes every 10 ms, and Beam's default is back after it."""
    from apache_beam.runners.worker import statesampler
    from apache_beam.utils.counters import CounterFactory

    from variant_etl.cli import launch

    with launch._short_state_sampling():
        inside = statesampler.StateSampler("test", CounterFactory())
    after = statesampler.StateSampler("test", CounterFactory())
    assert (inside.sampling_period_ms, after.sampling_period_ms) == (
        10,
        statesampler.DEFAULT_SAMPLING_PERIOD_MS,
    )
