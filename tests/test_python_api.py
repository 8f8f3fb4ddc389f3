"""The public transforms (variant_etl/api.py) in pipelines of one's own: each on TestPipeline with
assert_that, each alone between a reader and a writer, a user's transform between stages, and
the same output as ``launch`` when composed as launch composes them."""

from __future__ import annotations

import json
from pathlib import Path

import apache_beam as beam
import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from apache_beam.testing import test_pipeline
from apache_beam.testing.util import assert_that, equal_to

import variant_etl
from tests.conftest import REPO, VT_VCF, bcftools_positions
from tests.test_launch import check_manifest_adds_up
from variant_etl import (
    AnnotateVariants,
    MergeOptions,
    MergeVariants,
    ReadOptions,
    ReadVcf,
    ShardVariants,
    VariantBatch,
    WriteOutputs,
    WriteToParquet,
)
from variant_etl.cli import main as cli_main
from variant_etl.core.errors import (
    OutputError,
    SchemaError,
    ShardingConfigError,
    VariantEtlError,
    VcfFormatError,
)

EXAMPLES = REPO / "examples" / "data"
CONFIG = """
- output_table:
    table_name_suffix: "early"
    regions: ["1:0-150"]
    partition_range_end: 150
- output_table:
    table_name_suffix: "chr2"
    regions: ["2"]
    partition_range_end: 1000
"""
VCF = """##fileformat=VCFv4.2
##INFO=<ID=DP,Number=1,Type=Integer,Description="Depth">
#CHROM	POS	ID	REF	ALT	QUAL	FILTER	INFO
1	100	.	A	C	.	.	DP=1
1	200	.	A	C	.	.	DP=2
2	5	.	A	C	.	.	DP=3
3	7	.	A	C	.	.	DP=4
1	0	.	A	C	.	.	DP=5
"""


def positions(element: VariantBatch) -> list[tuple]:
    batch = element.batch
    return list(zip(batch.column("reference_name").to_pylist(), batch.column("start_position").to_pylist()))


def shards_and_positions(element: VariantBatch) -> list[tuple]:
    return [(element.shard, *position) for position in positions(element)]


def parquet_bytes(out: Path) -> dict[str, bytes]:
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.glob("*/*.parquet"))}


def manifest(out: Path) -> dict:
    found = json.loads((out / "_manifest.json").read_text())
    for key in ("run_id", "finished_at"):
        found.pop(key)
    return found


# --- each transform on TestPipeline ----------------------------------------------------------


@pytest.mark.parametrize("one_based", [False, True])
def test_read_then_shard(write_vcf, tmp_path, one_based):
    path = write_vcf("a.vcf", VCF)
    config = tmp_path / "config.yaml"
    config.write_text(CONFIG)
    offset = 1 if one_based else 0
    read = ReadVcf(path, read=ReadOptions(one_based=one_based, allow_malformed_records=True, batch_rows=2))
    shard = ShardVariants(str(config))
    with test_pipeline.TestPipeline() as p:
        rows = p | read | shard
        assert_that(
            rows | beam.FlatMap(shards_and_positions),
            equal_to([("early", "1", 99 + offset), ("chr2", "2", 4 + offset)]),
            label="CheckRouted",
        )
        counts = shard.counts | beam.Map(lambda stat: (stat.kind.value, stat.key, stat.value))
        # 1:200 and 3:7 are in no shard (there is no residual shard)
        dropped = counts | beam.Filter(lambda c: c[0] == "dropped") | beam.Map(lambda c: c[2])
        assert_that(dropped | "SumDropped" >> beam.CombineGlobally(sum), equal_to([2]), label="CheckDropped")
        routed = counts | beam.Filter(lambda c: c[0] == "routed") | beam.Map(lambda c: (c[1], c[2]))
        assert_that(routed, equal_to([("early", 1), ("chr2", 1)]), label="CheckRoutedCounts")
        keys = rows | beam.Map(lambda element: element.key) | beam.Distinct()
        assert_that(keys, equal_to(["s0000000-00000"]), label="CheckKeys")
        # 5 records: 4 rows and a dead letter
        read_counts = read.counts | beam.Map(lambda stat: (stat.kind.value, stat.key, stat.value))
        assert_that(read_counts, equal_to([("read", path, 5), ("parsed", path, 4)]), label="CheckReadCounts")
        malformed = read.malformed | beam.Map(lambda e: (e["line"], e["field"]))
        assert_that(malformed, equal_to([(8, "POS")]), label="CheckMalformed")


def test_read_vcf_of_several_patterns_keeps_counts_and_dead_letters_per_file(write_vcf):
    first = write_vcf("a.vcf", VCF)
    second = write_vcf("b.vcf", VCF.replace("1\t100\t", "1\t101\t"))
    read = ReadVcf([first, second], read=ReadOptions(allow_malformed_records=True, batch_rows=3))
    with test_pipeline.TestPipeline() as p:
        rows = p | read
        # small files are read together, in file order, under the first file's key
        keys = rows | beam.Map(lambda element: element.key) | beam.Distinct()
        assert_that(keys, equal_to(["s0000000-00000"]), label="CheckKeys")
        expected = [("1", 99), ("1", 100), ("1", 199), ("1", 199), ("2", 4), ("2", 4), ("3", 6), ("3", 6)]
        assert_that(rows | beam.FlatMap(positions), equal_to(expected), label="CheckRows")
        counts = read.counts | beam.Map(lambda stat: (stat.kind.value, stat.key, stat.value))
        assert_that(
            counts,
            equal_to([("read", first, 5), ("parsed", first, 4), ("read", second, 5), ("parsed", second, 4)]),
            label="CheckCounts",
        )
        malformed = read.malformed | beam.Map(lambda e: (e["file"], e["line"]))
        assert_that(malformed, equal_to([(first, 8), (second, 8)]), label="CheckMalformed")


def test_merge_variants_merges_the_same_site_across_files():
    inputs = sorted(str(p) for p in (VT_VCF / "merge").glob("*.vcf"))
    sites = {(chrom, pos - 1) for path in inputs for chrom, pos in bcftools_positions(Path(path))}
    with test_pipeline.TestPipeline() as p:
        merged = p | ReadVcf(inputs) | MergeVariants("MOVE_TO_CALLS")
        rows = merged | beam.FlatMap(positions)
        # one row per (chrom, start): every site once, whichever files hold it
        assert_that(rows | beam.combiners.Count.Globally(), equal_to([len(sites)]), label="CheckRowCount")
        assert_that(rows | beam.Distinct(), equal_to(sorted(sites)), label="CheckSites")


def test_annotate_variants_copies_fields_of_an_annotation_file_under_each_matching_alt():
    clinvar = str(EXAMPLES / "clinvar_subset.vcf.gz")
    annotate = AnnotateVariants(annotate_with=clinvar, annotate_fields=["CLNSIG"])

    def copied_and_own(element: VariantBatch) -> list[tuple]:
        batch = element.batch
        alts, own = batch.column("alternate_bases").to_pylist(), batch.column("CLNSIG").to_pylist()
        return [
            (tuple(alt["CLNSIG"] or ()), tuple(value or ())) for row, value in zip(alts, own) for alt in row
        ]

    with test_pipeline.TestPipeline() as p:
        pairs = p | ReadVcf(clinvar) | annotate | beam.FlatMap(copied_and_own)
        # ClinVar annotated with itself: every ALT gets its own record's CLNSIG
        assert_that(pairs | beam.Filter(lambda pair: pair[0] != pair[1]), equal_to([]), label="CheckSame")
        assert_that(pairs | beam.combiners.Count.Globally(), equal_to([50]), label="CheckAll")
    assert annotate.output_schema(ReadVcf(clinvar).output_schema).field(
        "alternate_bases"
    ).type.value_type.names == [
        "alt",
        "CLNSIG",
    ]


def test_the_variant_batch_coder_round_trips():
    from variant_etl.transforms.coders import VariantBatchCoder

    batch = pa.record_batch({"reference_name": ["1", "2"], "start_position": [5, 6]})
    coder = VariantBatchCoder()
    for element in (
        VariantBatch(batch),
        VariantBatch(batch, "s0000001-00002", "chr1"),
        VariantBatch(batch, "é", ""),
    ):
        decoded = coder.decode(coder.encode(element))
        assert (decoded.key, decoded.shard) == (element.key, element.shard)
        assert decoded.batch.equals(element.batch)
    assert coder.estimate_size(VariantBatch(batch)) == batch.nbytes


# --- validation at construction ----------------------------------------------------------------


def test_read_vcf_refuses_a_pattern_that_matches_nothing(tmp_path):
    with pytest.raises(VcfFormatError, match="input pattern .*nothing.vcf' matches no file"):
        ReadVcf(str(tmp_path / "nothing.vcf"))


def test_shard_variants_refuses_a_bad_config(tmp_path):
    config = tmp_path / "bad.yaml"
    config.write_text(CONFIG.replace("partition_range_end: 150", "partition_range_end: abc"))
    with pytest.raises(ShardingConfigError, match="partition_range_end must be a positive integer"):
        ShardVariants(str(config))


def test_write_to_parquet_refuses_a_directory_with_a_finished_run(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "_manifest.json").write_text("{}")
    with pytest.raises(OutputError, match="already holds a completed run"):
        WriteToParquet(str(out))


def test_merge_variants_refuses_none_and_unknown_strategies():
    with pytest.raises(VariantEtlError, match="strategy NONE merges nothing"):
        MergeVariants("NONE")
    with pytest.raises(VariantEtlError, match="must be one of NONE, MOVE_TO_CALLS, MERGE_WITH_NON_VARIANTS"):
        MergeVariants("MERGE_EVERYTHING")


def test_annotate_variants_checks_its_fields_against_the_headers_when_applied():
    p = beam.Pipeline()
    rows = p | ReadVcf(str(VT_VCF / "valid-4.0.vcf"))
    with pytest.raises(SchemaError, match="--annotation_fields CSQ: the input headers define no INFO CSQ"):
        rows | AnnotateVariants(["CSQ"])


def test_a_writer_needs_its_input_from_one_read_vcf(tmp_path):
    p = beam.Pipeline()
    first = p | "A" >> ReadVcf(str(VT_VCF / "valid-4.0.vcf"))
    second = p | "B" >> ReadVcf(str(VT_VCF / "valid-4.2.vcf"))
    with pytest.raises(VariantEtlError, match="its input must come from one ReadVcf \\(found 2\\)"):
        (first, second) | beam.Flatten() | WriteToParquet(str(tmp_path / "out"))


# --- composed: the same output as launch --------------------------------------------------------


@pytest.fixture(scope="module")
def launched(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("launched") / "out"
    code = cli_main(
        [
            "launch",
            "--input_pattern",
            str(EXAMPLES / "*.vcf.gz"),
            "--output_parquet_dir",
            str(out),
            "--no_progress",
        ]
    )
    assert code == 0
    return out


def test_read_shard_write_gives_the_output_of_launch(launched, tmp_path):
    out = tmp_path / "out"
    with beam.Pipeline() as p:
        (
            p
            | variant_etl.ReadVcf(str(EXAMPLES / "*.vcf.gz"))
            | variant_etl.ShardVariants(str(REPO / "sharding_configs" / "homo_sapiens_default.yaml"))
            | variant_etl.WriteToParquet(str(out))
        )
    assert parquet_bytes(out) == parquet_bytes(launched)
    assert (out / "_header.vcf").read_bytes() == (launched / "_header.vcf").read_bytes()
    got, expected = manifest(out), manifest(launched)
    assert got == expected
    sample_info = [
        pq.read_table(d / "__sample_info.parquet").drop_columns(["ingestion_datetime"])
        for d in (out, launched)
    ]
    assert sample_info[0].equals(sample_info[1])
    assert (out / "_SUCCESS").exists() and not (out / "_temporary").exists()


def test_unsharded_input_is_sharded_with_the_default_config(launched, tmp_path):
    out = tmp_path / "out"
    with beam.Pipeline() as p:
        p | ReadVcf(str(EXAMPLES / "*.vcf.gz")) | WriteToParquet(str(out))
    assert parquet_bytes(out) == parquet_bytes(launched)
    assert manifest(out)["totals"] == manifest(launched)["totals"]


def test_a_users_filter_between_read_and_write_is_reported_in_the_manifest(launched, tmp_path):
    out = tmp_path / "out"
    with beam.Pipeline() as p:
        (
            p
            | ReadVcf(str(EXAMPLES / "*.vcf.gz"))
            | "OnlyChr1" >> beam.Map(lambda b: b.filter(pc.equal(b.batch.column("reference_name"), "1")))
            | ShardVariants()
            | WriteToParquet(str(out))
        )
    totals = manifest(out)["totals"]
    assert totals["records_read"] == 165 and totals["records_written"] == 117
    assert totals["records_changed_by_other_transforms"] == 165 - 117
    assert parquet_bytes(out) == {
        "chr1/part-00000.parquet": parquet_bytes(launched)["chr1/part-00000.parquet"]
    }
    # launch's own pipeline has no foreign transform: its manifest must add up exactly
    assert "records_changed_by_other_transforms" not in manifest(launched)["totals"]


def test_a_users_transform_that_changes_the_columns_fails_with_a_clear_message(tmp_path):
    def drop_quality(element: VariantBatch) -> VariantBatch:
        return element.with_batch(element.batch.drop_columns(["quality"]))

    with pytest.raises(Exception, match="does not have the output schema \\(missing quality\\)"):
        with beam.Pipeline() as p:
            (
                p
                | ReadVcf(str(VT_VCF / "valid-4.0.vcf"))
                | beam.Map(drop_quality)
                | WriteToParquet(str(tmp_path / "o"))
            )
    assert not (tmp_path / "o" / "_SUCCESS").exists()


def test_a_users_transform_that_yields_bare_batches_fails_with_a_clear_message(tmp_path):
    with pytest.raises(Exception, match="expected VariantBatch elements, got RecordBatch"):
        with beam.Pipeline() as p:
            (
                p
                | ReadVcf(str(VT_VCF / "valid-4.0.vcf"))
                | beam.Map(lambda b: b.batch)
                | WriteToParquet(str(tmp_path / "o"))
            )


def test_dead_letters_reach_the_writer_through_a_users_transform(tmp_path):
    out = tmp_path / "out"
    bad = str(VT_VCF / "invalid-4.0-POS-empty.vcf")
    with beam.Pipeline() as p:
        (
            p
            | ReadVcf(bad, read=ReadOptions(allow_malformed_records=True))
            | "Identity" >> beam.Map(lambda element: element)
            | WriteToParquet(str(out))
        )
    found = check_manifest_adds_up(out)
    assert found["totals"]["malformed"] == 1 and found["totals"]["records_changed_by_other_transforms"] == 0
    (letter,) = [
        json.loads(line) for f in (out / "_malformed").glob("*.jsonl") for line in f.read_text().splitlines()
    ]
    assert letter["file"] == bad and letter["field"] == "POS"


def test_merge_then_write_gives_the_output_of_launch(tmp_path):
    inputs = str(VT_VCF / "merge" / "*.vcf")
    launched = tmp_path / "launched"
    args = ["launch", "--input_pattern", inputs, "--variant_merge_strategy", "MOVE_TO_CALLS", "--no_progress"]
    assert cli_main([*args, "--output_parquet_dir", str(launched)]) == 0
    for name, stages in [
        ("own", lambda p: p | ReadVcf(inputs) | MergeVariants("MOVE_TO_CALLS")),
        ("option", lambda p: p | ReadVcf(inputs, merge=MergeOptions("MOVE_TO_CALLS"))),
    ]:
        out = tmp_path / name
        with beam.Pipeline() as p:
            stages(p) | WriteToParquet(str(out))
        assert parquet_bytes(out) == parquet_bytes(launched), name
        assert manifest(out) == manifest(launched), name


def test_write_outputs_writes_variants_and_sample_lookup_with_one_manifest(launched, tmp_path):
    out, lookup = tmp_path / "out", tmp_path / "lookup"
    with beam.Pipeline() as p:
        (
            p
            | ReadVcf(str(EXAMPLES / "*.vcf.gz"))
            | WriteOutputs(WriteToParquet(str(out)), WriteToParquet(str(lookup), sample_lookup=True))
        )
    assert parquet_bytes(out) == parquet_bytes(launched)
    both = [manifest(out), manifest(lookup)]
    assert both[0] == both[1] and both[0]["totals"]["sample_lookup_rows_written"] == 21735
    calls = duckdb.sql(f"SELECT count(*) FROM read_parquet('{lookup}/*/*.parquet')").fetchall()[0][0]
    assert calls == 21735 == both[0]["totals"]["calls_routed"]


@pytest.mark.slow
@pytest.mark.bigquery
def test_write_to_bigquery_alone_makes_loads_and_describes_its_tables(bq, tmp_path):
    """In a pipeline of one's own: the tables are made in the pipeline, each shard is loaded, the
    run's sample_info and header rows are inserted by the commit, the manifest stays in the temp
    location, and the rows are those launch loads."""
    source = str(VT_VCF / "valid-4.1-large.vcf.gz")
    assert bq.launch("launched", source).returncode == 0
    temp = tmp_path / "temp"
    with beam.Pipeline() as p:
        (
            p
            | ReadVcf(source)
            | ShardVariants()
            | variant_etl.WriteToBigQuery(f"test-project:{bq.dataset}.own", temp_location=str(temp))
        )
    assert [t.split("__", 1)[1] for t in bq.tables("own")] == [
        t.split("__", 1)[1] for t in bq.tables("launched")
    ]
    shards = [t for t in bq.tables("own") if not t.endswith(("__sample_info", "__vcf_header"))]
    loaded = 0
    for table in shards:
        columns = "reference_name, start_position, end_position, reference_bases, to_json_string(call)"
        rows = [
            bq.query(f"SELECT {columns} FROM `{bq.dataset}.{name}` ORDER BY 1, 2, 3, 4")
            for name in (table, table.replace("own__", "launched__", 1))
        ]
        assert rows[0] == rows[1], table
        loaded += len(rows[0])
    assert loaded == 9882
    for suffix in ("sample_info", "vcf_header"):
        counts = [
            bq.query(f"SELECT count(*) FROM `{bq.dataset}.{base}__{suffix}`") for base in ("own", "launched")
        ]
        assert counts[0] == counts[1] and counts[0][0][0] > 0, suffix
    (manifest_path,) = temp.glob("variant_etl-*/_manifest.json")
    totals = json.loads(manifest_path.read_text())["totals"]
    assert totals["records_read"] == totals["rows_loaded_to_bigquery"] == 9882


def test_the_transforms_declare_their_element_type():
    """Beam checks element types when the pipeline is built: a PCollection of something else
    fails there, not in a worker."""
    p = beam.Pipeline()
    numbers = p | beam.Create([1, 2, 3])
    for transform in (ShardVariants(), MergeVariants(), WriteToParquet("unused-dir", checked=True)):
        with pytest.raises(beam.typehints.TypeCheckError, match="VariantBatch"):
            numbers | transform
    read = ReadVcf(str(VT_VCF / "valid-4.0.vcf"))
    assert (p | read).element_type == VariantBatch
    assert read.display_data()["inputs"] == 1


def test_workers_do_not_import_the_planner_or_the_cli():
    """What a worker imports to run the reader, the sharding and the Parquet writer (fastavro
    comes with Beam itself, so it is not ours to avoid)."""
    import subprocess
    import sys

    script = (
        "import sys, variant_etl.transforms.read, variant_etl.transforms.shard, variant_etl.sinks.parquet, "
        "variant_etl.sinks.commit\n"
        "print(sorted(m for m in sys.modules if m.startswith(('variant_etl.plan', 'variant_etl.cli', "
        "'variant_etl.api', 'variant_etl.outputs', 'variant_etl.sinks.bigquery'))))"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=REPO)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_a_users_transform_that_reroutes_rows_to_an_unknown_shard_fails_with_a_clear_message(tmp_path):
    import dataclasses

    with pytest.raises(
        Exception, match="is routed to shard 'chr99', which the sharding config does not have"
    ):
        with beam.Pipeline() as p:
            (
                p
                | ReadVcf(str(VT_VCF / "valid-4.0.vcf"))
                | ShardVariants()
                | beam.Map(lambda element: dataclasses.replace(element, shard="chr99"))
                | WriteToParquet(str(tmp_path / "o"))
            )
    assert not (tmp_path / "o" / "_SUCCESS").exists()


def test_move_hom_ref_calls_in_a_pipeline_gives_the_output_of_launch(tmp_path):
    """MoveHomRefCalls between ReadVcf and the writer: the writer's schema gets hom_ref_call, and
    the output is launch --move_hom_ref_calls's, byte for byte."""
    launched, out = tmp_path / "launched", tmp_path / "out"
    source = str(VT_VCF / "valid-4.0.vcf")
    assert cli_main(["launch", "--input_pattern", source, "--output_parquet_dir", str(launched),
                     "--move_hom_ref_calls", "--no_progress"]) == 0  # fmt: skip
    with beam.Pipeline() as p:
        p | ReadVcf(source) | variant_etl.MoveHomRefCalls() | WriteToParquet(str(out))
    assert parquet_bytes(out) == parquet_bytes(launched)
    moved = duckdb.sql(f"SELECT sum(len(hom_ref_call)) FROM read_parquet('{out}/*/*.parquet')").fetchall()
    assert moved == [(6,)]
