"""BigQuery sink: unit tests of what we send, and runs of `launch` against bqemulator."""

from __future__ import annotations

import json
import re

import fastavro
import pyarrow as pa
import pytest

from tests.conftest import REPO, VT_VCF, bcftools_positions, bcftools_query, run_cli
from tests.test_launch import VT_GROUPS, expected_by_shard
from variant_etl.core.bigquery_rows import bigquery_rows, json_safe
from variant_etl.core.bigquery_tables import parse_output_table
from variant_etl.core.errors import OutputError
from variant_etl.core.schema import avro_schema, bigquery_fields
from variant_etl.core.sharding import load_sharding_config
from variant_etl.sinks.tables import table_resource

DEFAULT_CONFIG = REPO / "sharding_configs" / "homo_sapiens_default.yaml"
SAMPLE = "GS000016676-ASM"  # the one sample of valid-4.1-large.vcf.gz


def test_table_creation_request_has_range_partitioning_and_clustering():
    shard = load_sharding_config(str(DEFAULT_CONFIG)).shards[0]  # chr1, partition_range_end 249,240,615
    fields = [{"name": "start_position", "type": "INT64", "mode": "NULLABLE"}]
    resource = table_resource("p.d.t__chr1", fields, shard).to_api_repr()
    assert resource["rangePartitioning"] == {
        "field": "start_position",
        "range": {"start": "0", "end": "249297660", "interval": "62340"},
    }
    assert resource["clustering"] == {"fields": ["start_position", "end_position"]}
    assert resource["tableReference"] == {"projectId": "p", "datasetId": "d", "tableId": "t__chr1"}


def test_bigquery_and_avro_schemas_come_from_the_arrow_schema():
    schema = pa.schema(
        [
            ("start_position", pa.int64()),
            ("alternate_bases", pa.list_(pa.struct([("alt", pa.string()), ("AF", pa.float64())]))),
            ("call", pa.list_(pa.struct([("sample_id", pa.int64()), ("genotype", pa.list_(pa.int64()))]))),
            ("DB", pa.bool_()),
        ]
    )
    fields = bigquery_fields(schema, {"AF": "Allele frequency"})
    assert fields[1] == {
        "name": "alternate_bases",
        "mode": "REPEATED",
        "type": "RECORD",
        "fields": [
            {"name": "alt", "mode": "NULLABLE", "type": "STRING"},
            {"name": "AF", "mode": "NULLABLE", "type": "FLOAT64", "description": "Allele frequency"},
        ],
    }
    assert fields[2]["fields"][1] == {"name": "genotype", "mode": "REPEATED", "type": "INT64"}
    assert fields[3] == {"name": "DB", "mode": "NULLABLE", "type": "BOOL"}
    fastavro.parse_schema(avro_schema(fields))


def test_nulls_inside_lists_are_replaced_not_dropped():
    batch = pa.RecordBatch.from_pylist(
        [{"AD": [3, None, 5], "S": ["a", None], "call": [{"GL": [None, 1.5], "GQ": None}], "Q": None}],
        schema=pa.schema(
            [
                ("AD", pa.list_(pa.int64())),
                ("S", pa.list_(pa.string())),
                ("call", pa.list_(pa.struct([("GL", pa.list_(pa.float64())), ("GQ", pa.int64())]))),
                ("Q", pa.float64()),
            ]
        ),
    )
    assert bigquery_rows(batch, -(2**31)) == [
        {"AD": [3, -(2**31), 5], "S": ["a", "."], "call": [{"GL": [-(2**31), 1.5], "GQ": None}], "Q": None}
    ]
    assert json_safe({"x": [float("nan"), float("inf"), -float("inf"), 1.0]}) == {
        "x": ["NaN", "Infinity", "-Infinity", 1.0]
    }


@pytest.mark.parametrize(
    "text, expected",
    [
        ("my-project:d.t", ("my-project", "d", "t")),
        ("my-proj.d.t", ("my-proj", "d", "t")),
        ("d.t", ("default-project", "d", "t")),
        ("example.com:my-project:Data_1.T_2", ("example.com:my-project", "Data_1", "T_2")),
        ("example.com:my-project.d.t", ("example.com:my-project", "d", "t")),
        (f"my-project:{'d' * 1024}.{'t' * 1024}", ("my-project", "d" * 1024, "t" * 1024)),
    ],
)
def test_parse_output_table(text, expected):
    assert parse_output_table(text, "default-project") == expected


@pytest.mark.parametrize(
    "text, message",
    [
        ("nodots", "must look like PROJECT:DATASET.TABLE, got 'nodots'"),
        ("my-project:d.", "must look like PROJECT:DATASET.TABLE"),
        ("my-project:.t", "must look like PROJECT:DATASET.TABLE"),
        ("my-project:d.t`; DROP TABLE x; --", "the table name may only contain letters, digits and '_'"),
        ("`my-project`.d.t", "is not a Google Cloud project id"),
        ("my-project:d.t x", "the table name may only contain"),
        ("my-project:d.t;x", "the table name may only contain"),
        ("my-project:d'.t", "the dataset name may only contain"),
        ('my-project:d".t', "the dataset name may only contain"),
        ("my-project:d/x.t", "the dataset name may only contain"),
        ("my-project:d.t\n", "the table name may only contain"),
        ("my-project:d.t\x00", "the table name may only contain"),
        ("my-project:d.t\u00e9", "the table name may only contain"),
        ("my-project:../d.t", "the dataset name may only contain"),
        ("my-project/../x:d.t", "is not a Google Cloud project id"),
        (f"my-project:{'d' * 1025}.t", "at most 1024 characters"),
        (f"my-project:d.{'t' * 1025}", "at most 1024 characters"),
        ("abc:d.t", "'abc' is not a Google Cloud project id (6 to 30"),
        (f"{'p' * 31}:d.t", "is not a Google Cloud project id"),
        ("My-Project:d.t", "is not a Google Cloud project id"),
        ("1project:d.t", "is not a Google Cloud project id"),
        ("project-:d.t", "is not a Google Cloud project id"),
        ("my_project:d.t", "is not a Google Cloud project id"),
        ("my-project:x:d.t", "is not a Google Cloud project id"),
    ],
)
def test_bad_output_table(text, message):
    with pytest.raises(OutputError, match=re.escape(message)) as err:
        parse_output_table(text, None)
    assert "\n" not in str(err.value) and len(str(err.value)) < 400


@pytest.mark.parametrize("project", [None, "bad project", "p"])
def test_output_table_needs_a_valid_project(project):
    with pytest.raises(OutputError, match="names no project|is not a Google Cloud project id"):
        parse_output_table("d.t", project)


# --- against the emulator ---------------------------------------------------------------


@pytest.mark.parametrize("group", sorted(VT_GROUPS))
def test_multi_shard_load_matches_bcftools(bq, group):
    inputs = [VT_VCF / name for name in VT_GROUPS[group]]
    result = bq.launch("vt", *inputs)
    assert result.returncode == 0, result.stderr
    expected = expected_by_shard(inputs)
    for suffix, (rows, total) in expected.items():
        found = bq.query(f"SELECT COUNT(*), SUM(start_position) FROM {bq.dataset}.vt__{suffix}")[0]
        assert found == (rows, total), suffix
    # one table per shard of the default config, plus sample_info and vcf_header
    assert len(bq.tables("vt")) == 27
    empty = [t for t in bq.tables("vt") if t.split("__")[1] not in {*expected, "sample_info", "vcf_header"}]
    assert all(bq.query(f"SELECT COUNT(*) FROM {bq.dataset}.{t}")[0] == (0,) for t in empty[:3])
    table = bq.client.get_table(f"test-project.{bq.dataset}.vt__chr1")
    assert table.clustering_fields == ["start_position", "end_position"]
    assert table.range_partitioning is None  # the emulator drops it: see the unit test above


def test_nested_calls_and_alleles_match_bcftools(bq):
    path = VT_VCF / "valid-4.1-large.vcf.gz"  # 9,882 records x 1 sample on chromosome 1
    assert bq.launch("large", path).returncode == 0
    gts = bcftools_query(path, "[%GT]\n").split()
    alt_count = sum(0 if a == "." else len(a.split(",")) for a in bcftools_query(path, "%ALT\n").split())
    called = sum(int(a) for gt in gts for a in gt.replace("|", "/").split("/") if a != ".")
    assert bq.query(
        f"SELECT COUNT(*), SUM(ARRAY_LENGTH(alternate_bases)), "
        f"(SELECT SUM(g) FROM {bq.dataset}.large__chr1 v, UNNEST(v.call) c, UNNEST(c.genotype) g WHERE g >= 0) "
        f"FROM {bq.dataset}.large__chr1"
    )[0] == (len(bcftools_positions(path)), alt_count, called)
    info = bq.query(f"SELECT sample_id, sample_name, file_path FROM {bq.dataset}.large__sample_info")
    ids = bq.query(f"SELECT DISTINCT c.sample_id FROM {bq.dataset}.large__chr1 v, UNNEST(v.call) c")
    assert [(name, path) for _, name, path in info] == [(SAMPLE, str(path))]
    assert ids == [(info[0][0],)]


def test_preflight_errors_and_append(bq, tmp_path):
    path = VT_VCF / "valid-4.0.vcf"
    missing = run_cli(
        "launch", "--input_pattern", str(path), "--output_table", "test-project:no_such_dataset.t",
        "--temp_location", str(tmp_path / "t"), env_extra={"BIGQUERY_EMULATOR_HOST": bq.host},
    )  # fmt: skip
    assert missing.returncode == 2 and "dataset test-project.no_such_dataset does not exist" in missing.stderr
    no_tables = bq.launch("app", path, extra=("--append",))
    assert no_tables.returncode == 2 and "--append needs every table to exist" in no_tables.stderr
    assert bq.launch("app", path).returncode == 0
    again = bq.launch("app", path)
    assert again.returncode == 2 and "already exist" in again.stderr and "--append" in again.stderr
    appended = bq.launch("app", path, extra=("--append",))
    assert appended.returncode == 0, appended.stderr
    assert bq.query(f"SELECT COUNT(*) FROM {bq.dataset}.app__chr20")[0] == (8,)  # 4 records, twice


def test_update_schema_on_append(bq, write_vcf):
    header = "##fileformat=VCFv4.2\n{info}#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n"
    first = write_vcf(
        "a.vcf",
        header.format(info='##INFO=<ID=DP,Number=1,Type=Integer,Description="d">\n')
        + "1\t5\t.\tA\tC\t.\t.\tDP=1\n",
    )
    second = write_vcf(
        "b.vcf",
        header.format(info='##INFO=<ID=DP,Number=1,Type=Integer,Description="d">\n##INFO=<ID=NEW,Number=1,Type=String,Description="n">\n')
        + "1\t6\t.\tA\tC\t.\t.\tDP=2;NEW=x\n",
    )  # fmt: skip
    assert bq.launch("upd", first).returncode == 0
    refused = bq.launch("upd", second, extra=("--append",))
    assert (
        refused.returncode == 2
        and "lacks column(s) NEW" in refused.stderr
        and "--update_schema_on_append" in refused.stderr
    )
    added = bq.launch("upd", second, extra=("--append", "--update_schema_on_append"))
    assert added.returncode == 0, added.stderr
    assert bq.query(f"SELECT start_position, DP, NEW FROM {bq.dataset}.upd__chr1 ORDER BY 1") == [
        (4, 1, None),
        (5, 2, "x"),
    ]


def _columns(bq, table):
    return [f.to_api_repr() for f in bq.client.get_table(f"{bq.dataset}.{table}").schema]


def test_update_schema_on_append_adds_columns_with_the_rows_and_takes_them_back_on_failure(
    bq, write_vcf, monkeypatch
):
    header = (
        '##fileformat=VCFv4.2\n##INFO=<ID=DP,Number=1,Type=Integer,Description="d">\n{more}'
        "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n"
    )
    new = '##INFO=<ID=NEW,Number=1,Type=String,Description="n">\n'
    first = write_vcf(
        "a.vcf", header.format(more="") + "1\t5\t.\tA\tC\t.\t.\tDP=1\n2\t5\t.\tA\tC\t.\t.\tDP=1\n"
    )
    assert bq.launch("atom", first).returncode == 0
    before = {t: _columns(bq, t) for t in ("atom__chr1", "atom__chr2", "atom__chr3")}
    # A run that fails while reading changes no table (columns are added only when loading).
    bad = write_vcf(
        "bad.vcf", header.format(more=new) + "1\t6\t.\tA\tC\t.\t.\tNEW=x\n1\tX\t.\tA\tC\t.\t.\t.\n"
    )
    failed = bq.launch("atom", bad, extra=("--append", "--update_schema_on_append"))
    assert failed.returncode == 1 and "POS" in failed.stderr
    assert {t: _columns(bq, t) for t in before} == before
    # A load that fails: the table whose load failed (chr2) and those after it are as they were;
    # chr1, loaded before, has the run's rows and the new column.
    from google.cloud import bigquery

    real_load = bigquery.Client.load_table_from_file

    def load(client, source, table_id, **kwargs):
        if table_id.endswith("__chr2"):
            raise RuntimeError("injected load failure")
        return real_load(client, source, table_id, **kwargs)

    monkeypatch.setattr(bigquery.Client, "load_table_from_file", load)
    second = write_vcf(
        "b.vcf", header.format(more=new) + "1\t6\t.\tA\tC\t.\t.\tNEW=x\n2\t6\t.\tA\tC\t.\t.\tNEW=y\n"
    )
    partial = bq.launch("atom", second, extra=("--append", "--update_schema_on_append"))
    assert partial.returncode == 1
    assert (
        "injected load failure" in partial.stderr
        and "Shards loaded before the failure: chr1." in partial.stderr
    )
    assert f"{bq.dataset}.atom__chr2 and the shards after it are as they were" in partial.stderr
    assert (
        _columns(bq, "atom__chr2") == before["atom__chr2"]
        and _columns(bq, "atom__chr3") == before["atom__chr3"]
    )
    assert [f["name"] for f in _columns(bq, "atom__chr1")][-1] == "NEW"
    assert bq.query(f"SELECT start_position, NEW FROM {bq.dataset}.atom__chr1 ORDER BY 1") == [
        (4, None),
        (5, "x"),
    ]
    assert bq.query(f"SELECT COUNT(*) FROM {bq.dataset}.atom__chr2")[0] == (1,)
    monkeypatch.setattr(bigquery.Client, "load_table_from_file", real_load)
    # A plain append of a file without NEW loads into both kinds of table (files hold every
    # column of the table they go to); appending NEW again adds it where it is missing.
    assert bq.launch("atom", first, extra=("--append",)).returncode == 0
    assert bq.launch("atom", second, extra=("--append", "--update_schema_on_append")).returncode == 0
    assert bq.query(f"SELECT COUNT(*), COUNT(NEW) FROM {bq.dataset}.atom__chr2")[0] == (3, 1)
    assert bq.query(f"SELECT COUNT(*), COUNT(NEW) FROM {bq.dataset}.atom__chr1")[0] == (4, 2)
    # Every shard table ends with the same columns, rows or not.
    assert _columns(bq, "atom__chr3") == _columns(bq, "atom__chr1")


def test_both_sinks_and_streaming_inserts(bq, tmp_path):
    path = VT_VCF / "valid-4.2.vcf"
    out = tmp_path / "out"
    result = bq.launch("both", path, extra=("--output_parquet_dir", str(out)))
    assert result.returncode == 0, result.stderr
    manifest = json.loads((out / "_manifest.json").read_text())
    assert manifest["totals"]["records_loaded_to_bigquery"] == manifest["totals"]["records_written"] == 13
    streamed = bq.launch("stream", path, extra=("--bigquery_write_method", "STREAMING_INSERTS"))
    assert streamed.returncode == 0, streamed.stderr
    for suffix, (rows, total) in expected_by_shard([path]).items():
        assert bq.query(f"SELECT COUNT(*), SUM(start_position) FROM {bq.dataset}.stream__{suffix}")[0] == (
            rows,
            total,
        )


def test_failed_run_removes_the_tables_it_created(bq):
    result = bq.launch("failed", VT_VCF / "invalid-4.0-POS-empty.vcf")
    assert result.returncode == 1 and "POS: expected a positive integer" in result.stderr
    assert bq.tables("failed") == []
