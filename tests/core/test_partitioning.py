import pytest

from variant_etl.core.partitioning import (
    MAX_RANGE_END,
    USED_PARTITIONS,
    optimal_range_interval,
    partitioning_for,
)


@pytest.mark.parametrize(
    "range_end, interval, end",
    [
        (249_240_615, 62_340, 249_297_660),  # gcp-variant-transforms' chr1 example
        (1_000_000, 260, 1_039_740),
        (2_000_000, 510, 2_039_490),
        (1, 10, 39_990),
        (57_227_415, 14_320, 57_265_680),
        (MAX_RANGE_END, MAX_RANGE_END // 4000, MAX_RANGE_END),
        (MAX_RANGE_END - 1, MAX_RANGE_END // 4000, MAX_RANGE_END),
    ],
)
def test_optimal_range_interval(range_end, interval, end):
    assert optimal_range_interval(range_end) == (interval, end)


@pytest.mark.parametrize("range_end", [1, 999, 10_000, 16_569, 249_250_621, 2**31, 10**15])
def test_enlarged_end_covers_range_with_3999_partitions(range_end):
    interval, end = optimal_range_interval(range_end)
    assert end == interval * USED_PARTITIONS
    assert end >= range_end + 10_000
    assert interval % 10 == 0


def test_partition_of_and_bigquery_spec():
    spec = partitioning_for(249_240_615)
    assert spec.partition_of(0) == 0
    assert spec.partition_of(62_339) == 0
    assert spec.partition_of(62_340) == 1
    assert spec.partition_of(249_297_659) == 3998
    assert spec.partition_of(249_297_660) == USED_PARTITIONS  # out of range
    assert spec.partition_of(-1) == USED_PARTITIONS
    assert spec.to_bigquery() == {
        "field": "start_position",
        "range": {"start": "0", "end": "249297660", "interval": "62340"},
    }
