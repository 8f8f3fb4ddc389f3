"""The Beam transforms on TestPipeline (DirectRunner), with assert_that."""

from __future__ import annotations

import apache_beam as beam
import pyarrow as pa
import pytest
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from variant_etl.core.header import merge_headers
from variant_etl.core.schema import build_schema
from variant_etl.core.sharding import load_sharding_config
from variant_etl.core.source import read_header
from variant_etl.plan import ReadOptions, ReadSplit
from variant_etl.transforms import read as read_tags
from variant_etl.transforms import shard as shard_tags
from variant_etl.transforms.batches import is_end_of_key
from variant_etl.transforms.read import ReadVcf
from variant_etl.transforms.shard import ShardVariants, shard_tag

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


def rows(element: tuple[str, pa.RecordBatch]) -> list[tuple]:
    _, batch = element
    if is_end_of_key(batch):  # the marker after a key's last batch
        return []
    return list(zip(batch.column("reference_name").to_pylist(), batch.column("start_position").to_pylist()))


@pytest.mark.parametrize("one_based", [False, True])
def test_read_then_shard(write_vcf, one_based):
    path = write_vcf("a.vcf", VCF)
    schema = build_schema(merge_headers([read_header(path)]))
    config = load_sharding_config("t.yaml", text=CONFIG)
    offset = 1 if one_based else 0
    with TestPipeline() as p:
        read = (
            p
            | beam.Create([ReadSplit(path, (), file_index=3)])
            | ReadVcf(schema, ReadOptions(one_based=one_based, allow_malformed_records=True, batch_rows=2))
        )
        sharded = read.batches | ShardVariants(config, one_based=one_based)
        early = sharded[shard_tag(0)] | "EarlyRows" >> beam.FlatMap(rows)
        chr2 = sharded[shard_tag(1)] | "Chr2Rows" >> beam.FlatMap(rows)
        counts = sharded[shard_tags.COUNTS]
        dropped = counts | beam.Filter(lambda c: c[0] == "dropped") | beam.Map(lambda c: c[2])
        dropped = dropped | "SumDropped" >> beam.CombineGlobally(sum)
        routed = counts | beam.Filter(lambda c: c[0] == "routed") | beam.Map(lambda c: c[2])
        routed = routed | "SumRouted" >> beam.CombineGlobally(sum)
        assert_that(early, equal_to([("1", 99 + offset)]), label="CheckEarly")
        assert_that(chr2, equal_to([("2", 4 + offset)]), label="CheckChr2")
        assert_that(dropped, equal_to([2]), label="CheckDropped")  # 1:200 and 3:7, no residual
        assert_that(routed, equal_to([2]), label="CheckRouted")  # 1:100 and 2:5
        keys = read.batches | beam.Map(lambda kv: kv[0]) | beam.Distinct()
        assert_that(keys, equal_to(["s0000003-00000"]), label="CheckKeys")
        # 5 records: 4 rows and a dead letter
        assert_that(
            read[read_tags.COUNTS], equal_to([("read", path, 5), ("parsed", path, 4)]), label="CheckCounts"
        )
        malformed = read[read_tags.MALFORMED] | beam.Map(lambda e: (e["line"], e["field"]))
        assert_that(malformed, equal_to([(8, "POS")]), label="CheckMalformed")


def test_a_group_of_small_files_is_read_into_the_first_files_key(write_vcf):
    first = write_vcf("a.vcf", VCF)
    second = write_vcf("b.vcf", VCF.replace("1\t100\t", "1\t101\t"))
    schema = build_schema(merge_headers([read_header(first)]))
    group = [ReadSplit(second, (), file_index=1, group=7), ReadSplit(first, (), file_index=0, group=7)]
    with TestPipeline() as p:
        read = (
            p | beam.Create(group) | ReadVcf(schema, ReadOptions(allow_malformed_records=True, batch_rows=3))
        )
        keys = read.batches | beam.Map(lambda kv: kv[0]) | beam.Distinct()
        assert_that(keys, equal_to(["s0000000-00000"]), label="CheckKeys")
        both = read.batches | beam.FlatMap(rows)
        expected = [("1", 99), ("1", 100), ("1", 199), ("1", 199), ("2", 4), ("2", 4), ("3", 6), ("3", 6)]
        assert_that(both, equal_to(expected), label="CheckRows")
        # counts and dead letters stay per input file
        assert_that(
            read[read_tags.COUNTS],
            equal_to([("read", first, 5), ("parsed", first, 4), ("read", second, 5), ("parsed", second, 4)]),
            label="CheckCounts",
        )
        malformed = read[read_tags.MALFORMED] | beam.Map(lambda e: (e["file"], e["line"]))
        assert_that(malformed, equal_to([(first, 8), (second, 8)]), label="CheckMalformed")
