"""The plan: how inputs become read splits and groups of small files."""

from __future__ import annotations

import pytest

from variant_etl.plan import ReadOptions, make_plan

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
