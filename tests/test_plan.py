"""The plan: how inputs become read splits and groups of small files."""

from __future__ import annotations

import pytest

from variant_etl.core.options import ReadOptions
from variant_etl.plan import make_plan

HEADER = "##fileformat=VCFv4.2\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n"


def record(position: int) -> str:
    return f"1\t{position}\t.\tA\tC\t.\tPASS\t.\n"


def plan_splits(tmp_path, sizes: list[int], **options) -> list[tuple[str, int, int]]:
    """Writes one file per entry of ``sizes`` (in records); returns (file, part, group) per split."""
    for number, records in enumerate(sizes):
        text = HEADER + "".join(record(position) for position in range(1, records + 1))
        (tmp_path / f"f{number}.vcf").write_text(text)
    plan = make_plan(
        input_patterns=[str(tmp_path / "*.vcf")],
        input_file=None,
        sharding_config_path=None,
        read=ReadOptions(**options),
        parquet=None,
    )
    return [(split.path.rsplit("/", 1)[1], split.part, split.group) for split in plan.splits]


@pytest.mark.parametrize(
    "sizes, options, groups",
    [
        ([1, 1, 1, 1, 1], {}, [0, 0, 0, 0, 0]),  # small files: one group
        ([1, 1, 1, 1, 1], {"group_files": 2}, [0, 0, 1, 1, 2]),
        ([1, 1, 1], {"group_files": 1}, [0, 1, 2]),  # grouping off
        ([1, 1, 1], {"group_bytes": 150}, [0, 1, 2]),  # each file is 79 bytes: two do not fit
        ([1, 1, 1], {"group_bytes": 200}, [0, 0, 1]),
    ],
)
def test_small_files_are_grouped_by_count_and_bytes(tmp_path, sizes, options, groups):
    assert [group for _, _, group in plan_splits(tmp_path, sizes, **options)] == groups


def test_byte_ranges_are_groups_of_their_own(tmp_path):
    # f1's 100 records (1,992 bytes) are cut into ranges of 700 bytes; no small file joins them.
    splits = plan_splits(tmp_path, [1, 100, 1, 1], split_bytes=700)
    assert splits == [
        ("f0.vcf", 0, 0),
        ("f1.vcf", 0, 1),
        ("f1.vcf", 1, 2),
        ("f1.vcf", 2, 3),
        ("f2.vcf", 0, 4),
        ("f3.vcf", 0, 4),
    ]


# --- estimates: records per input, rows per shard ------------------------------------------

CONFIG = """\
- output_table: {table_name_suffix: chr1_a, regions: ["chr1:0-1,000"], partition_range_end: 1000}
- output_table: {table_name_suffix: chr1_b, regions: ["chr1:1,000-2,000"], partition_range_end: 2000}
- output_table: {table_name_suffix: chr2, regions: ["chr2"], partition_range_end: 2000}
"""


@pytest.mark.parametrize(
    "residual, points, spans, rows, dropped",
    [
        # sampled starts: one row each, routed as ShardVariants routes rows (0-based starts)
        (True, {"chr1": [0, 999, 1000, 1999, 2000], "chr2": [5], "chr3": [1]}, [], [2, 2, 1, 2], 0),
        (False, {"chr1": [0, 999, 1000, 1999, 2000], "chr2": [5], "chr3": [1]}, [], [2, 2, 1, 0], 2),
        # spans: rows spread evenly, split where they cross a region's end
        (True, {}, [("chr1", 500, 1500, 10.0)], [5, 5, 0, 0], 0),
        (True, {}, [("chr1", 1500, 2500, 10.0), ("chr2", 0, 10**9, 3.0)], [0, 5, 3, 5], 0),
        (False, {}, [("chrM", 0, 100, 4.0), ("chr1", 0, 4000, 8.0)], [2, 2, 0, 0], 8),
    ],
)
def test_estimated_rows_are_routed_through_the_sharding_config(residual, points, spans, rows, dropped):
    import numpy as np

    from variant_etl.core.sharding import load_sharding_config

    text = CONFIG + (
        '- output_table: {table_name_suffix: residual, regions: ["residual"], partition_range_end: 10}\n'
        if residual
        else ""
    )
    config = load_sharding_config("config.yaml", text)
    found, lost = config.estimate_rows({k: np.array(v) for k, v in points.items()}, spans)
    assert [round(n, 6) for n in found] == (rows if residual else rows[:3])
    assert round(lost, 6) == dropped


def test_a_prefix_is_extrapolated_by_size_and_spread_over_the_contigs_after_it():
    import io

    from variant_etl.core.estimate import contig_lengths, estimate_from_text_prefix

    header = "##fileformat=VCFv4.2\n##contig=<ID=A,length=1000>\n##contig=<ID=B,length=3000>\n"
    header += "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n"
    # 100 records on A, 300 on B, all lines of the same length
    body = "".join(f"A\t{p:04d}\t.\tA\tC\t.\tPASS\t.\n" for p in range(1, 1000, 10))
    body += "".join(f"B\t{p:04d}\t.\tA\tC\t.\tPASS\t.\n" for p in range(1, 3000, 10))
    data = (header + body).encode()
    lengths = contig_lengths(tuple(header.splitlines()))
    assert lengths == {"A": 1000, "B": 3000}
    whole = estimate_from_text_prefix(io.BytesIO(data), fmt="plain", size=len(data), lengths=lengths)
    assert (whole.records, whole.exact, whole.per_contig) == (400, True, {"A": 100, "B": 300})
    prefix = estimate_from_text_prefix(
        io.BytesIO(data), fmt="plain", size=len(data), lengths=lengths, limit=1500
    )
    assert not prefix.exact and prefix.method.startswith("estimated from the first")
    sampled = sum(len(v) for v in prefix.points.values())
    assert 0 < sampled < 100  # the prefix stops in A
    assert round(prefix.records) == 400
    # the rest of A and all of B, by their lengths: records are spread evenly in this file
    assert prefix.per_contig == {"A": pytest.approx(100, rel=0.02), "B": pytest.approx(300, rel=0.02)}


def test_the_plan_describes_each_input_with_its_size_records_and_read_splits(tmp_path):
    from variant_etl.plan import estimate_plan
    from variant_etl.plan.render import describe

    for number, records in enumerate([1, 100, 1]):
        text = HEADER + "".join(record(position) for position in range(1, records + 1))
        (tmp_path / f"f{number}.vcf").write_text(text)
    plan = make_plan(
        input_patterns=[str(tmp_path / "*.vcf")],
        input_file=None,
        sharding_config_path=None,
        read=ReadOptions(split_bytes=700),
        parquet=None,
    )
    described = describe(plan, estimate_plan(plan))
    inputs = [
        (e["size_bytes"], e["records"], e["records_exact"], e["read_splits"]) for e in described["inputs"]
    ]
    sizes = [(tmp_path / f"f{n}.vcf").stat().st_size for n in range(3)]
    assert inputs == [(sizes[0], 1, True, 1), (sizes[1], 100, True, 3), (sizes[2], 1, True, 1)]
    rows = {s["table_name_suffix"]: s["estimated_rows"] for s in described["shards"]}
    assert rows["chr1"] == 102 and sum(rows.values()) == 102
    assert described["estimates_count"] == "a row per input record (no merging)"
