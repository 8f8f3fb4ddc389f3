"""The sample-lookup layout (one row per call, sorted and partitioned on sample_id), end to
end through `python -m variant_etl launch`, read back with DuckDB and checked against
bcftools' reading of the inputs."""

from __future__ import annotations

import json
import uuid
from collections import Counter
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest

from tests.conftest import REPO, VT_VCF, bcftools_query, run_cli
from tests.test_launch import check_manifest_adds_up
from variant_etl.core.sample_lookup import PARTITIONING
from variant_etl.core.sharding import load_sharding_config
from variant_etl.sinks.tables import table_resource

COHORT = REPO / "examples" / "data" / "cohort_189_samples.vcf.gz"  # 115 records x 189 samples, chr1
ROW_GROUP = 1000


def check_lookup_adds_up(lookup: Path) -> dict:
    """The sample-lookup directory's manifest: a row per call routed, every file in place."""
    manifest = json.loads((lookup / "_manifest.json").read_text())
    totals = manifest["totals"]
    assert manifest["sample_lookup"]["parquet_dir"] == str(lookup)
    assert manifest["sample_lookup"]["sorted_by"][0] == "sample_id"
    for shard in manifest["shards"]:
        files = shard["sample_lookup_files"]
        assert shard["sample_lookup_rows"] == shard["calls_routed"] == sum(f["rows"] for f in files)
        for f in files:
            assert pq.ParquetFile(lookup / f["path"]).metadata.num_rows == f["rows"]
    assert totals["sample_lookup_rows_written"] == totals["calls_routed"]
    assert totals["calls_routed"] == sum(s["calls_routed"] for s in manifest["shards"])
    assert totals["records_read"] == sum(i["records_read"] for i in manifest["inputs"])
    assert (lookup / "_SUCCESS").exists() and (lookup / "__sample_info.parquet").exists()
    assert not (lookup / "_temporary").exists()
    return manifest


def launch(*args: str, inputs=(COHORT,)):
    command = ["launch"]
    for path in inputs:
        command += ["--input_pattern", str(path)]
    return run_cli(*command, *args)


def genotype_text(alleles: list[int] | None) -> str:
    return "/".join("." if a < 0 else str(a) for a in alleles or [])


def bcftools_calls(*paths: Path) -> Counter:
    """(sample, CHROM, POS, GT with '/') of every call, as bcftools reads them."""
    calls = Counter()
    for path in paths:
        for line in bcftools_query(path, "[%SAMPLE\t%CHROM\t%POS\t%GT\n]").splitlines():
            sample, chrom, pos, gt = line.split("\t")
            calls[(sample, chrom, int(pos), gt.replace("|", "/"))] += 1
    return calls


def lookup_calls(lookup: Path) -> Counter:
    rows = duckdb.sql(
        f"SELECT s.sample_name, l.reference_name, l.start_position + 1, l.call.genotype "
        f"FROM read_parquet('{lookup}/*/*.parquet') l "
        f"JOIN read_parquet('{lookup}/__sample_info.parquet') s USING (sample_id)"
    ).fetchall()
    return Counter((name, chrom, pos, genotype_text(gt)) for name, chrom, pos, gt in rows)


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    """The shipped 189-sample cohort, loaded to both layouts with small row groups."""
    root = tmp_path_factory.mktemp("cohort")
    variants, lookup = root / "variants", root / "lookup"
    result = launch(
        "--output_parquet_dir", str(variants), "--sample_lookup_parquet_dir", str(lookup),
        "--parquet_row_group_size", str(ROW_GROUP),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "sample lookup:" in result.stdout and "21,735 rows" in result.stdout
    return variants, lookup


def test_cohort_rows_are_the_calls_bcftools_reads(cohort):
    variants, lookup = cohort
    check_manifest_adds_up(variants)
    manifest = check_lookup_adds_up(lookup)
    assert json.loads((variants / "_manifest.json").read_text()) == manifest  # one manifest, two places
    assert manifest["totals"]["calls_routed"] == 115 * 189
    assert manifest["sample_lookup"]["partitioning"] == PARTITIONING.to_bigquery()
    assert lookup_calls(lookup) == bcftools_calls(COHORT)
    # the same sample ids as the variant table's calls and its __sample_info
    ids = duckdb.sql(f"SELECT DISTINCT sample_id FROM read_parquet('{lookup}/*/*.parquet') ORDER BY 1")
    call_ids = duckdb.sql(
        f"SELECT DISTINCT c.sample_id FROM (SELECT unnest(call) c FROM read_parquet('{variants}/*/*.parquet')) "
        "ORDER BY 1"
    )
    info = duckdb.sql(f"SELECT sample_id FROM read_parquet('{variants}/__sample_info.parquet') ORDER BY 1")
    assert ids.fetchall() == call_ids.fetchall() == info.fetchall()
    assert len(ids.fetchall()) == 189


def test_cohort_rows_hold_the_variant_columns_and_that_sample_call(cohort):
    variants, lookup = cohort
    names = pq.read_schema(next((variants / "chr1").glob("*.parquet"))).names
    lookup_names = pq.read_schema(next((lookup / "chr1").glob("*.parquet"))).names
    at = names.index("call")  # gcp-variant-transforms' layout: sample_id just before call
    assert lookup_names == names[:at] + ["sample_id"] + names[at:]
    sample = duckdb.sql(
        f"SELECT sample_id FROM read_parquet('{variants}/__sample_info.parquet') "
        "WHERE sample_name = '100231-100231'"
    ).fetchall()[0][0]
    site_columns = ", ".join(f'"{n}"' for n in names if n != "call")
    found = duckdb.execute(
        f"SELECT {site_columns}, call FROM read_parquet('{lookup}/*/*.parquet') WHERE sample_id = ? "
        "ORDER BY start_position, end_position",
        [sample],
    ).fetchall()
    expected = duckdb.execute(
        f"SELECT {site_columns}, list_filter(call, lambda c: c.sample_id = ?)[1] "
        f"FROM read_parquet('{variants}/*/*.parquet') ORDER BY start_position, end_position",
        [sample],
    ).fetchall()
    assert len(found) == 115 and found == expected


def test_rows_are_sorted_by_sample_then_position(cohort):
    _, lookup = cohort
    for path in (lookup / "chr1").glob("*.parquet"):
        table = pq.read_table(path, columns=["sample_id", "start_position"])
        keys = list(zip(table["sample_id"].to_pylist(), table["start_position"].to_pylist()))
        assert keys == sorted(keys)


def test_per_sample_query_reads_one_or_two_row_groups(cohort, tmp_path):
    _, lookup = cohort
    files = sorted((lookup / "chr1").glob("*.parquet"))
    total = sum(pq.ParquetFile(f).metadata.num_row_groups for f in files)
    assert total == -(-115 * 189 // ROW_GROUP)  # 22 row groups of 1,000 calls
    sample = duckdb.sql(
        f"SELECT sample_id FROM read_parquet('{lookup}/__sample_info.parquet') "
        "WHERE sample_name = '100231-100231'"
    ).fetchall()[0][0]
    profile = tmp_path / "profile.json"
    connection = duckdb.connect()
    connection.execute("PRAGMA enable_profiling='json'")
    connection.execute(f"SET profiling_output='{profile}'")
    rows = connection.execute(
        f"SELECT sample_id, start_position, call.genotype FROM read_parquet('{lookup}/*/*.parquet') "
        "WHERE sample_id = ?",
        [sample],
    ).fetchall()
    connection.close()
    scan = json.loads(profile.read_text())["query"]
    assert len(rows) == 115 and {row[0] for row in rows} == {sample}
    assert scan["total_row_groups_to_scan"] == total
    assert 1 <= scan["total_row_groups_scanned"] <= 2  # a sample's 115 calls span one or two groups
    assert scan["total_rows_scanned"] <= 2 * ROW_GROUP


def test_sample_lookup_on_its_own_over_several_shards(tmp_path):
    """Only the lookup directory: it gets the manifest, sample_info and the dead letters."""
    path = VT_VCF / "valid-4.0.vcf"  # 5 records x 3 samples on chromosomes 19 and 20
    lookup = tmp_path / "lookup"
    result = launch("--sample_lookup_parquet_dir", str(lookup), inputs=[path])
    assert result.returncode == 0, result.stderr
    manifest = check_lookup_adds_up(lookup)
    by_shard = {s["table_name_suffix"]: s["sample_lookup_rows"] for s in manifest["shards"]}
    assert {k: v for k, v in by_shard.items() if v} == {"chr19": 3, "chr20": 12}
    assert sorted(p.name for p in lookup.iterdir() if p.is_dir()) == ["chr19", "chr20"]
    assert lookup_calls(lookup) == bcftools_calls(path)
    assert manifest["totals"]["rows_written"] == 0  # no variant output was asked for


def test_lookup_only_keeps_dead_letters_and_is_overwritten_only_when_asked(tmp_path, write_vcf):
    vcf = write_vcf(
        "calls.vcf",
        '##fileformat=VCFv4.2\n##FORMAT=<ID=GT,Number=1,Type=String,Description="g">\n'
        "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\tS1\tS2\n"
        "1\t5\t.\tA\tC\t.\t.\t.\tGT\t0/1\t./.\n"
        "1\tabc\t.\tA\tC\t.\t.\t.\tGT\t0/1\t1/1\n"
        "1\t9\t.\tA\tC,G\t.\t.\t.\tGT\t1|2\t0/0\n",
    )
    lookup = tmp_path / "lookup"
    args = ("--sample_lookup_parquet_dir", str(lookup), "--allow_malformed_records")
    result = launch(*args, inputs=[vcf])
    assert result.returncode == 0, result.stderr
    manifest = check_lookup_adds_up(lookup)
    assert manifest["totals"]["malformed"] == 1 and manifest["totals"]["calls_routed"] == 4
    assert [f["path"] for f in manifest["malformed"]["files"]] == ["_malformed/part-00000.jsonl"]
    assert "abc" in (lookup / "_malformed" / "part-00000.jsonl").read_text()
    assert lookup_calls(lookup) == Counter(
        {
            ("S1", "1", 5, "0/1"): 1,
            ("S2", "1", 5, "./."): 1,
            ("S1", "1", 9, "1/2"): 1,
            ("S2", "1", 9, "0/0"): 1,
        }
    )
    again = launch(*args, inputs=[vcf])
    assert again.returncode == 2
    assert (
        "already holds a completed run" in again.stderr
        and "choose a new --sample_lookup_parquet_dir" in again.stderr
    )
    replaced = launch(*args, "--overwrite", inputs=[vcf])
    assert replaced.returncode == 0, replaced.stderr
    assert check_lookup_adds_up(lookup)["run_id"] != manifest["run_id"]
    assert lookup_calls(lookup).total() == 4


def test_merged_inputs_give_every_files_calls(tmp_path):
    inputs = [VT_VCF / "merge" / "merge1.vcf", VT_VCF / "merge" / "merge2.vcf"]
    variants, lookup = tmp_path / "variants", tmp_path / "lookup"
    result = launch(
        "--output_parquet_dir", str(variants), "--sample_lookup_parquet_dir", str(lookup),
        "--variant_merge_strategy", "MOVE_TO_CALLS", inputs=inputs,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    manifest = check_lookup_adds_up(lookup)
    assert manifest["totals"]["records_written"] == manifest["totals"]["records_read"] == 6
    merged_calls = duckdb.sql(
        f"SELECT sum(len(call)) FROM read_parquet('{variants}/*/*.parquet')"
    ).fetchall()[0]
    assert manifest["totals"]["calls_routed"] == merged_calls[0] == 9  # 3 x 2 + 3 x 1 calls
    assert manifest["totals"]["rows_written"] < manifest["totals"]["records_read"]  # sites were merged
    assert lookup_calls(lookup) == bcftools_calls(*inputs)
    # 20:14370 is in both files: one merged row, three calls, each its own lookup row
    at_site = duckdb.sql(
        f"SELECT s.sample_name FROM read_parquet('{lookup}/*/*.parquet') l "
        f"JOIN read_parquet('{lookup}/__sample_info.parquet') s USING (sample_id) "
        "WHERE l.start_position = 14369 ORDER BY 1"
    ).fetchall()
    assert at_site == [("NA00001",), ("NA00002",), ("NA00003",)]


# --- option checks -----------------------------------------------------------------------


def one_line_error(*args: str) -> str:
    result = run_cli(*args, env_extra={"BIGQUERY_EMULATOR_HOST": "127.0.0.1:9"})
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_sites_only_input_is_refused(tmp_path, write_vcf):
    sites = write_vcf(
        "sites.vcf",
        "##fileformat=VCFv4.2\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n1\t5\t.\tA\tC\t.\t.\t.\n",
    )
    line = one_line_error(
        "launch", "--input_pattern", sites, "--sample_lookup_parquet_dir", str(tmp_path / "l")
    )
    assert (
        "--sample_lookup_parquet_dir: no input has samples (all 1 are sites-only), so there is no call "
        "to write a row for. Hint: remove --sample_lookup_parquet_dir" in line
    )
    assert not (tmp_path / "l").exists()


@pytest.mark.parametrize(
    "args, message",
    [
        (
            ["--output_parquet_dir", "{tmp}/o", "--sample_lookup_optimized_output_table", "test-project:d.s"],
            "--sample_lookup_optimized_output_table only applies with --output_table (it writes a second "
            "copy of the BigQuery tables, one row per call). Hint: add --output_table PROJECT:DATASET.TABLE",
        ),
        (
            ["--output_parquet_dir", "{tmp}/o", "--sample_lookup_parquet_dir", "{tmp}/o/lookup"],
            "--sample_lookup_parquet_dir {tmp}/o/lookup and --output_parquet_dir {tmp}/o overlap",
        ),
        (
            ["--output_parquet_dir", "{tmp}/o", "--sample_lookup_parquet_dir", "{tmp}/o"],
            "overlap: both hold <table_name_suffix>/ directories",
        ),
        (
            [
                "--output_table",
                "test-project:d.t",
                "--sample_lookup_optimized_output_table",
                "test-project:d.t",
                "--temp_location",
                "{tmp}/t",
            ],
            "--sample_lookup_optimized_output_table and --output_table both name test-project:d.t",
        ),  # fmt: skip
        (
            [
                "--output_table",
                "test-project:d.t",
                "--sample_lookup_optimized_output_table",
                "d.s x",
                "--temp_location",
                "{tmp}/t",
            ],
            "the table name may only contain letters, digits and '_'",
        ),  # fmt: skip
        (
            [
                "--output_table",
                "test-project:d.t",
                "--parquet_row_group_size",
                "10",
                "--temp_location",
                "{tmp}/t",
            ],
            "--parquet_row_group_size only applies with --output_parquet_dir or --sample_lookup_parquet_dir",
        ),
    ],
)
def test_pointless_or_conflicting_lookup_options(tmp_path, args, message):
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    line = one_line_error("launch", "--input_pattern", str(VT_VCF / "valid-4.0.vcf"), *args)
    assert message.replace("{tmp}", str(tmp_path)) in line
    assert not (tmp_path / "o").exists()


def test_plan_lists_the_lookup_outputs(tmp_path):
    result = run_cli(
        "plan", "--input_pattern", str(VT_VCF / "valid-4.0.vcf"),
        "--sample_lookup_parquet_dir", str(tmp_path / "l"), "--format", "json",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    plan = json.loads(result.stdout)
    assert plan["sample_lookup_parquet_dir"] == str(tmp_path / "l") and plan["sample_lookup_tables"] is None
    text = run_cli(
        "plan", "--input_pattern", str(VT_VCF / "valid-4.0.vcf"), "--sample_lookup_parquet_dir", "l"
    )
    assert text.returncode == 0 and "output: l (Parquet, sample lookup: a row per call)" in text.stdout


# --- BigQuery ------------------------------------------------------------------------------


def test_lookup_table_creation_request_partitions_on_sample_id():
    shard = load_sharding_config(str(REPO / "sharding_configs" / "homo_sapiens_default.yaml")).shards[0]
    fields = [{"name": "sample_id", "type": "INT64", "mode": "NULLABLE"}]
    resource = table_resource("p.d.s__chr1", fields, shard, partitioning=PARTITIONING).to_api_repr()
    # gcp-variant-transforms: [0, 2^63-1) in 4000 steps, clustered on positions as the variant tables
    assert resource["rangePartitioning"] == {
        "field": "sample_id",
        "range": {"start": "0", "end": str(2**63 - 1), "interval": str((2**63 - 1) // 4000)},
    }
    assert resource["clustering"] == {"fields": ["start_position", "end_position"]}


@pytest.fixture
def bq(bigquery_emulator, monkeypatch):
    from variant_etl.sinks.tables import make_client

    monkeypatch.setenv("BIGQUERY_EMULATOR_HOST", bigquery_emulator)
    client = make_client("test-project")
    dataset = f"ds_{uuid.uuid4().hex[:8]}"
    client.create_dataset(dataset)
    return client, dataset, bigquery_emulator


@pytest.mark.parametrize("method", ["FILE_LOADS", "STREAMING_INSERTS"])
def test_bigquery_lookup_tables_hold_one_row_per_call(bq, tmp_path, method):
    client, dataset, host = bq
    path = VT_VCF / "valid-4.0.vcf"
    out = tmp_path / "out"
    result = run_cli(
        "launch", "--input_pattern", str(path), "--output_parquet_dir", str(out),
        "--output_table", f"test-project:{dataset}.v",
        "--sample_lookup_optimized_output_table", f"test-project:{dataset}.v_samples",
        "--temp_location", str(tmp_path / "tmp"), "--bigquery_write_method", method,
        env_extra={"BIGQUERY_EMULATOR_HOST": host},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    manifest = check_manifest_adds_up(out)
    shards = {s["table_name_suffix"]: s for s in manifest["shards"]}
    assert shards["chr20"]["sample_lookup_bigquery_rows"] == shards["chr20"]["calls_routed"] == 12
    assert manifest["totals"]["sample_lookup_rows_loaded_to_bigquery"] == 15
    tables = sorted(t.table_id for t in client.list_tables(dataset))
    lookup_tables = [t for t in tables if t.startswith("v_samples__")]
    assert len(lookup_tables) == 25 and "v_samples__sample_info" not in tables  # one per shard, as gcp-vt
    assert "v__sample_info" in tables

    def query(sql):
        return [tuple(row.values()) for row in client.query(sql).result()]

    found = query(
        f"SELECT i.sample_name, l.reference_name, l.start_position + 1, l.call.genotype "
        f"FROM {dataset}.v_samples__chr20 l JOIN {dataset}.v__sample_info i ON i.sample_id = l.sample_id"
    )
    found += query(
        f"SELECT i.sample_name, l.reference_name, l.start_position + 1, l.call.genotype "
        f"FROM {dataset}.v_samples__chr19 l JOIN {dataset}.v__sample_info i ON i.sample_id = l.sample_id"
    )
    assert Counter((n, c, p, genotype_text(g)) for n, c, p, g in found) == bcftools_calls(path)
    same_id = query(f"SELECT COUNT(*) FROM {dataset}.v_samples__chr20 WHERE sample_id = call.sample_id")
    assert same_id == [(12,)]
    table = client.get_table(f"test-project.{dataset}.v_samples__chr20")
    assert table.clustering_fields == ["start_position", "end_position"]
    assert table.range_partitioning is None  # the emulator drops it: see the creation-request test
    schema = {f.name: f for f in table.schema}
    assert schema["call"].mode == "NULLABLE" and schema["call"].field_type in ("RECORD", "STRUCT")
    assert schema["sample_id"].field_type in ("INTEGER", "INT64")


def test_bigquery_lookup_failure_removes_both_sets_of_tables(bq, tmp_path):
    client, dataset, host = bq
    result = run_cli(
        "launch", "--input_pattern", str(VT_VCF / "invalid-4.0-POS-empty.vcf"),
        "--output_table", f"test-project:{dataset}.f",
        "--sample_lookup_optimized_output_table", f"test-project:{dataset}.f_samples",
        "--temp_location", str(tmp_path / "tmp"), env_extra={"BIGQUERY_EMULATOR_HOST": host},
    )  # fmt: skip
    assert result.returncode == 1 and "POS: expected a positive integer" in result.stderr
    assert list(client.list_tables(dataset)) == []
