"""The plan: what is decided before the pipeline starts. ``SourcePlan`` is the reading side
(what ReadVcf decides at construction: files, headers, schema, splits); ``Plan`` adds the
sharding config, the outputs and the run's identity (what ``launch`` decides)."""

from __future__ import annotations

import dataclasses

from apache_beam.io.filesystems import FileSystems

from variant_etl.core.annotations import Annotations
from variant_etl.core.calls import with_hom_ref_column
from variant_etl.core.estimate import RecordEstimate
from variant_etl.core.header import MergedHeader, VcfHeader, run_header_lines
from variant_etl.core.options import BigQueryOptions, MergeOptions, ParquetOptions, ReadOptions
from variant_etl.core.regions import RegionSplit
from variant_etl.core.run import RunInfo
from variant_etl.core.schema import VariantSchema
from variant_etl.core.sharding import ShardingConfig
from variant_etl.core.splits import ReadSplit


@dataclasses.dataclass(frozen=True)
class SourcePlan:
    """The inputs as read: files, headers, one merged schema, and how they are read."""

    inputs: tuple[str, ...]
    headers: tuple[VcfHeader, ...]
    merged: MergedHeader
    schema: VariantSchema
    splits: tuple[ReadSplit, ...]
    read: ReadOptions
    merge: MergeOptions = MergeOptions()
    # Merging indexed inputs: windows read through the indexes and merged in place.
    region_splits: tuple[RegionSplit, ...] = ()
    sizes: tuple[int, ...] = ()  # bytes on disk of each input, as listed

    @property
    def max_samples(self) -> int:
        return max((len(h.samples) for h in self.headers), default=0)

    def samples(self) -> tuple[tuple[str, str, int], ...]:
        """(sample name, file path, sample_id) of every input's samples, sorted."""
        return tuple(
            sorted(
                (name, split.path, number)
                for split in self.splits
                if split.part == 0
                for name, number in zip(split.samples, split.sample_ids)
            )
        )

    def ranked_sample_ids(self) -> list[int]:
        """Sample ids in the order merged calls take: by sample name, then file path."""
        return list(dict.fromkeys(number for _, _, number in self.samples()))

    def splits_per_input(self) -> dict[str, int]:
        counted = {path: 0 for path in self.inputs}
        for split in self.splits:
            counted[split.path] += 1
        return counted

    def run_info(self, run_id: str, started_at: str) -> RunInfo:
        return RunInfo(
            run_id=run_id,
            started_at=started_at,
            inputs=self.inputs,
            samples=self.samples(),
            header_lines=tuple(run_header_lines(list(self.headers), self.merged)),
            one_based=self.read.one_based,
            merge_strategy=self.merge.strategy,
        )


@dataclasses.dataclass(frozen=True)
class Plan:
    """A launch: its source, sharding config and outputs, and the run's identity."""

    source: SourcePlan
    sharding: ShardingConfig
    parquet: ParquetOptions | None
    run_id: str
    started_at: str = ""  # UTC, to the minute: sample_info.ingestion_datetime
    bigquery: BigQueryOptions | None = None
    annotations: Annotations | None = None  # --annotation_fields, --annotate_with
    omit_empty_sample_calls: bool = False  # calls with no allele and no FORMAT value left out
    move_hom_ref_calls: bool = False  # 0/0 calls moved to hom_ref_call (sample ids only)
    # The sample-lookup layout (one row per call, docs/sample_lookup.md): a Parquet directory
    # and/or a second set of BigQuery tables.
    sample_lookup: ParquetOptions | None = None
    sample_lookup_bigquery: BigQueryOptions | None = None
    # Set by launch once it claimed the output directories: what it saw in each, the run_id of
    # the completed output --overwrite replaces, or None (empty). The commit checks it again.
    seen: tuple[tuple[str, str | None], ...] = ()

    def previous_run(self, output_dir: str) -> str | None:
        return dict(self.seen).get(output_dir)

    def parquet_outputs(self) -> list[tuple[ParquetOptions, str]]:
        """(options, flag) of each Parquet output directory."""
        both = ((self.parquet, "--output_parquet_dir"), (self.sample_lookup, "--sample_lookup_parquet_dir"))
        return [(options, flag) for options, flag in both if options is not None]

    # The source's fields, read as the plan's own.
    inputs = property(lambda self: self.source.inputs)
    headers = property(lambda self: self.source.headers)
    merged = property(lambda self: self.source.merged)
    schema = property(lambda self: self.source.schema)
    splits = property(lambda self: self.source.splits)
    read = property(lambda self: self.source.read)
    merge = property(lambda self: self.source.merge)
    region_splits = property(lambda self: self.source.region_splits)
    sizes = property(lambda self: self.source.sizes)

    def output_schema(self):
        """The columns written: the parsed ones, plus the annotations under alternate_bases and
        (--move_hom_ref_calls) hom_ref_call."""
        schema = self.schema.arrow_schema()
        if self.annotations is not None:
            schema = self.annotations.output_schema(schema)
        return with_hom_ref_column(schema) if self.move_hom_ref_calls else schema

    @property
    def has_sample_lookup(self) -> bool:
        return self.sample_lookup is not None or self.sample_lookup_bigquery is not None

    @property
    def sample_lookup_temp_dir(self) -> str:
        return FileSystems.join(self.sample_lookup.output_dir, "_temporary", self.run_id)

    @property
    def temp_dir(self) -> str:
        """Where this run's files wait until the commit (dead letters too)."""
        if self.parquet is not None:
            return FileSystems.join(self.parquet.output_dir, "_temporary", self.run_id)
        if self.sample_lookup is not None:
            return self.sample_lookup_temp_dir
        return self.bigquery.temp_dir

    def run_info(self) -> RunInfo:
        return self.source.run_info(self.run_id, self.started_at)

    def ranked_sample_ids(self) -> list[int]:
        return self.source.ranked_sample_ids()

    def splits_per_input(self) -> dict[str, int]:
        return self.source.splits_per_input()


@dataclasses.dataclass(frozen=True, eq=False)
class PlanEstimate:
    """Records per input (exact from an index or a whole read, else extrapolated) and the rows
    they give each shard when routed through the sharding config."""

    inputs: dict[str, RecordEstimate]
    shard_rows: list[float]
    dropped: float
    counts: str  # what the shard estimates count
