"""Sharding config: the gcp-variant-transforms YAML format, validated, and a
vectorized lookup of each variant's shard.

Format (a list of items)::

    - output_table:
        table_name_suffix: "chr1"
        regions: ["chr1", "1"]          # CHROM, or CHROM:START-END (commas allowed)
        partition_range_end: 249,240,615
    - output_table:
        table_name_suffix: "residual"
        regions: ["residual"]           # everything no other item matched
        partition_range_end: 249,240,615

A ``CHROM:START-END`` region holds variants whose 0-based ``start_position`` lies
in ``[START, END)``. Names are case-sensitive. Without a residual item,
unmatched variants are dropped and counted.
"""

from __future__ import annotations

import dataclasses
import re

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import yaml

from variant_etl.core.errors import ShardingConfigError
from variant_etl.core.partitioning import RangePartitioning, partitioning_for

RESIDUAL = "residual"
DROPPED = -1
_SUFFIX_RE = re.compile(r"[A-Za-z0-9_]+")  # fullmatch: "$" would let "chr1\n" through
_RANGE_RE = re.compile(r"^(.+):([0-9,]+)-([0-9,]+)$")
_ITEM_KEYS = {"table_name_suffix", "regions", "partition_range_end"}
MAX_SUFFIX_LENGTH = 1024 - 64  # BigQuery table ids are at most 1024 characters


@dataclasses.dataclass(frozen=True)
class Region:
    contig: str
    start: int | None = None  # None: the whole contig
    end: int | None = None

    def __str__(self) -> str:
        return self.contig if self.start is None else f"{self.contig}:{self.start}-{self.end}"

    def overlaps(self, other: Region) -> bool:
        if self.contig != other.contig:
            return False
        if self.start is None or other.start is None:
            return True
        return self.start < other.end and other.start < self.end


@dataclasses.dataclass(frozen=True)
class Shard:
    index: int
    suffix: str
    regions: tuple[Region, ...]
    partition_range_end: int
    is_residual: bool
    partitioning: RangePartitioning


@dataclasses.dataclass(frozen=True)
class ShardingConfig:
    path: str
    shards: tuple[Shard, ...]

    @property
    def residual_index(self) -> int | None:
        return next((s.index for s in self.shards if s.is_residual), None)

    def shard_indices(self, reference_names: pa.Array, starts: np.ndarray) -> np.ndarray:
        """Shard index of each variant (0-based starts), or DROPPED."""
        return ShardLookup(self).lookup(reference_names, starts)

    def estimate_rows(
        self, points: dict[str, np.ndarray], spans: list[tuple[str, int, int, float]]
    ) -> tuple[list[float], float]:
        """Estimated rows per shard and dropped, from record starts (one row each) and spans
        ``(contig, start, end, rows)`` whose rows lie evenly over 0-based ``[start, end)``."""
        lookup = ShardLookup(self)
        rows = [0.0] * len(self.shards)
        dropped = 0.0

        def add(index: int, value: float) -> None:
            nonlocal dropped
            if index == DROPPED:
                dropped += value
            else:
                rows[index] += value

        for contig, starts in points.items():
            if not len(starts):
                continue
            names = pa.array([contig] * len(starts), pa.string())
            shard_of = lookup.lookup(names, np.asarray(starts, dtype=np.int64))
            for index, count in zip(*np.unique(shard_of, return_counts=True)):
                add(int(index), float(count))
        for contig, start, end, value in spans:
            if contig in lookup.whole:
                add(lookup.whole[contig], value)
                continue
            inside = 0.0
            if contig in lookup.ranges and end > start:
                for range_start, range_end, index in zip(*lookup.ranges[contig]):
                    overlap = min(end, int(range_end)) - max(start, int(range_start))
                    if overlap > 0:
                        share = value * overlap / (end - start)
                        add(int(index), share)
                        inside += share
            add(lookup.default, value - inside)
        return rows, dropped


class ShardLookup:
    """contig -> (whole-contig shard | sorted ranges) tables for vectorized lookup."""

    def __init__(self, config: ShardingConfig):
        self.default = config.residual_index if config.residual_index is not None else DROPPED
        self.whole: dict[str, int] = {}
        ranges: dict[str, list[tuple[int, int, int]]] = {}
        for shard in config.shards:
            for region in shard.regions:
                if region.start is None:
                    self.whole[region.contig] = shard.index
                else:
                    ranges.setdefault(region.contig, []).append((region.start, region.end, shard.index))
        self.ranges = {
            contig: tuple(np.array(col, dtype=np.int64) for col in zip(*sorted(items)))
            for contig, items in ranges.items()
        }

    def lookup(self, reference_names: pa.Array, starts: np.ndarray) -> np.ndarray:
        encoded = pc.dictionary_encode(reference_names)
        if isinstance(encoded, pa.ChunkedArray):
            encoded = encoded.combine_chunks()
        codes = encoded.indices.to_numpy(zero_copy_only=False)
        out = np.full(len(starts), self.default, dtype=np.int64)
        for code, contig in enumerate(encoded.dictionary.to_pylist()):
            mask = codes == code
            if contig in self.whole:
                out[mask] = self.whole[contig]
            elif contig in self.ranges:
                range_starts, range_ends, shard_of = self.ranges[contig]
                positions = starts[mask]
                slot = np.searchsorted(range_starts, positions, side="right") - 1
                inside = (slot >= 0) & (positions < range_ends[np.maximum(slot, 0)])
                out[mask] = np.where(inside, shard_of[np.maximum(slot, 0)], self.default)
        return out


def load_sharding_config(path: str, text: str | None = None) -> ShardingConfig:
    """Reads and validates a sharding YAML; every rule has its own message."""
    if text is None:
        try:
            with open(path, encoding="utf-8") as f:
                text = f.read()
        except OSError as err:
            raise ShardingConfigError(f"{path}: cannot read the sharding config ({err.strerror})") from None
    try:
        items = yaml.safe_load(text)  # plain data only: a !!python/... tag is an error, never run
    except yaml.YAMLError as err:
        raise ShardingConfigError(f"{path}: not valid YAML ({_yaml_problem(err)})") from None
    if not isinstance(items, list) or not items:
        raise ShardingConfigError(
            f"{path}: expected a non-empty list of '- output_table:' items, got {type(items).__name__}"
        )
    shards = [_parse_item(path, index, item) for index, item in enumerate(items)]
    _check_across_items(path, shards)
    return ShardingConfig(path=path, shards=tuple(shards))


def _yaml_problem(err: yaml.YAMLError) -> str:
    """PyYAML's message on one line: the problem and where it is."""
    if not isinstance(err, yaml.MarkedYAMLError) or not err.problem:
        return " ".join(str(err).split())
    problem = f"{err.context}: {err.problem}" if err.context else err.problem
    if err.problem_mark:
        problem += f" at line {err.problem_mark.line + 1}, column {err.problem_mark.column + 1}"
    if isinstance(err, yaml.constructor.ConstructorError):
        problem += "; a sharding config holds only lists, mappings, strings and numbers"
    return problem


def _parse_item(path: str, index: int, item: object) -> Shard:
    where = f"{path}: item {index + 1}"
    if (
        not isinstance(item, dict)
        or set(item) != {"output_table"}
        or not isinstance(item["output_table"], dict)
    ):
        raise ShardingConfigError(f"{where}: expected a mapping with the single key 'output_table'")
    table = item["output_table"]
    suffix = table.get("table_name_suffix")
    if not isinstance(suffix, str) or not suffix.strip():
        raise ShardingConfigError(f"{where}: table_name_suffix is missing or empty")
    where = f"{where} ({suffix!r})"
    if not _SUFFIX_RE.fullmatch(suffix) or len(suffix) > MAX_SUFFIX_LENGTH:
        raise ShardingConfigError(
            f"{where}: table_name_suffix may only contain letters, digits and '_' "
            f"(at most {MAX_SUFFIX_LENGTH} characters), got {suffix!r}"
        )
    unknown = set(table) - _ITEM_KEYS
    if unknown:
        raise ShardingConfigError(
            f"{where}: unknown key(s) {', '.join(sorted(unknown))}; allowed: {', '.join(sorted(_ITEM_KEYS))}"
        )
    regions = table.get("regions")
    if not isinstance(regions, list) or not regions:
        raise ShardingConfigError(f"{where}: regions must be a non-empty list")
    is_residual = RESIDUAL in regions
    if is_residual and len(regions) > 1:
        raise ShardingConfigError(f"{where}: the 'residual' region must be the item's only region")
    parsed = () if is_residual else tuple(_parse_region(where, r) for r in regions)
    range_end = _parse_range_end(where, table.get("partition_range_end"))
    return Shard(
        index=index,
        suffix=suffix,
        regions=parsed,
        partition_range_end=range_end,
        is_residual=is_residual,
        partitioning=partitioning_for(range_end),
    )


def parse_region(text: str) -> Region:
    """``CHROM`` or ``CHROM:START-END`` (commas allowed in numbers)."""
    return _parse_region("region", text)


def _parse_region(where: str, text: object) -> Region:
    if not isinstance(text, str) or not text.strip():
        raise ShardingConfigError(f"{where}: a region must be a non-empty string, got {text!r}")
    text = text.strip()
    match = _RANGE_RE.match(text)
    if not match:
        if re.search(r":[0-9A-Za-z,]*-[0-9,]*$", text):
            raise ShardingConfigError(f"{where}: bad region {text!r}; expected CHROM or CHROM:START-END")
        return Region(text)
    contig, start, end = match.group(1), _number(match.group(2)), _number(match.group(3))
    if start is None or end is None or start >= end:
        raise ShardingConfigError(
            f"{where}: bad region {text!r}; START and END must be integers with START < END"
        )
    return Region(contig, start, end)


def _number(text: str) -> int | None:
    digits = text.replace(",", "")
    return int(digits) if digits.isdigit() else None


def _parse_range_end(where: str, value: object) -> int:
    if value is None:
        raise ShardingConfigError(f"{where}: partition_range_end is missing")
    number = value if isinstance(value, int) and not isinstance(value, bool) else None
    if isinstance(value, str):
        number = _number(value.strip())
    if number is None or number <= 0:
        raise ShardingConfigError(f"{where}: partition_range_end must be a positive integer, got {value!r}")
    return number


def _check_across_items(path: str, shards: list[Shard]) -> None:
    seen_suffix: dict[str, int] = {}
    residuals = [s for s in shards if s.is_residual]
    if len(residuals) > 1:
        raise ShardingConfigError(
            f"{path}: items {', '.join(str(s.index + 1) for s in residuals)} are all 'residual'; "
            "at most one residual item is allowed"
        )
    placed: list[tuple[Region, Shard]] = []
    for shard in shards:
        key = shard.suffix.lower()  # BigQuery table names are case-insensitive
        if key in seen_suffix:
            raise ShardingConfigError(
                f"{path}: item {shard.index + 1} ({shard.suffix!r}): table_name_suffix duplicates "
                f"item {seen_suffix[key] + 1}"
            )
        seen_suffix[key] = shard.index
        for region in shard.regions:
            for other, other_shard in placed:
                if region.overlaps(other):
                    raise ShardingConfigError(
                        f"{path}: item {shard.index + 1} ({shard.suffix!r}): region {str(region)!r} "
                        f"overlaps region {str(other)!r} of item {other_shard.index + 1} "
                        f"({other_shard.suffix!r})"
                    )
            placed.append((region, shard))
