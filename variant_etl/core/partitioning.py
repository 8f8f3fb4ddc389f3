"""BigQuery integer-range partitioning of ``start_position``, per shard.

The same numbers as gcp-variant-transforms: BigQuery allows 4000 partitions; 3999
cover ``[0, range_end)`` and the last one is left for out-of-range rows. The
given end is padded twice, since it is often an estimate: up to the next
multiple of 10^4 after adding 10^4, then the interval rounded up to a multiple
of 10. Integer arithmetic throughout (the original uses floats; the results are
the same for every end below 2^53).
"""

from __future__ import annotations

import dataclasses

MAX_PARTITIONS = 4000
USED_PARTITIONS = MAX_PARTITIONS - 1
MAX_RANGE_END = 2**63 - 1
_END_ROUNDING = 10**4
_INTERVAL_ROUNDING = 10


@dataclasses.dataclass(frozen=True)
class RangePartitioning:
    """BigQuery ``rangePartitioning`` on a column: ``[start, end)`` in steps of ``interval``."""

    column: str
    start: int
    end: int
    interval: int

    def partition_of(self, value: int) -> int:
        """Index of the partition holding ``value``; values outside share the last one."""
        if value < self.start or value >= self.end:
            return USED_PARTITIONS
        return (value - self.start) // self.interval

    def describe(self) -> str:
        """As people read it: '0–249,297,660, 3,999 partitions of 62,340'."""
        return describe_range(self.start, self.end, self.interval)

    def to_bigquery(self) -> dict:
        return {
            "field": self.column,
            "range": {"start": str(self.start), "end": str(self.end), "interval": str(self.interval)},
        }


def describe_range(start: int, end: int, interval: int) -> str:
    """[start, end) in steps of interval, as people read it: '0–249,297,660, 3,999 partitions of
    62,340' (not '[0, 249,297,660) by 62,340', which reads as four numbers)."""
    count = _ceil_div(end - start, interval)
    return f"{start:,}–{end:,}, {count:,} partition{'' if count == 1 else 's'} of {interval:,}"


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def optimal_range_interval(range_end: int) -> tuple[int, int]:
    """Returns ``(interval, enlarged_end)`` with ``enlarged_end = interval * 3999``."""
    if range_end >= MAX_RANGE_END:
        return MAX_RANGE_END // MAX_PARTITIONS, MAX_RANGE_END
    padded_end = _ceil_div(range_end + _END_ROUNDING, _END_ROUNDING) * _END_ROUNDING
    interval = _ceil_div(padded_end, USED_PARTITIONS)
    interval = _ceil_div(interval, _INTERVAL_ROUNDING) * _INTERVAL_ROUNDING
    enlarged_end = interval * USED_PARTITIONS
    if enlarged_end >= MAX_RANGE_END:
        return MAX_RANGE_END // MAX_PARTITIONS, MAX_RANGE_END
    return interval, enlarged_end


def partitioning_for(range_end: int, column: str = "start_position") -> RangePartitioning:
    interval, end = optimal_range_interval(range_end)
    return RangePartitioning(column=column, start=0, end=end, interval=interval)
