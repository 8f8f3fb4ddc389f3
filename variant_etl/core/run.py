"""What one run is, for the files and tables it writes beside the variants: its id and start,
its inputs and samples, its header and coordinates. The commit step gets this, not the plan."""

from __future__ import annotations

import dataclasses
import datetime

import pyarrow as pa


@dataclasses.dataclass(frozen=True)
class RunInfo:
    run_id: str
    started_at: str  # UTC, to the minute (sample_info.ingestion_datetime); "" for none
    inputs: tuple[str, ...]  # every input file, sorted
    samples: tuple[tuple[str, str, int], ...]  # (sample name, file path, sample_id), sorted
    header_lines: tuple[str, ...]  # the run's VCF header (merged definitions), '#CHROM' last
    one_based: bool = False
    merge_strategy: str = "NONE"

    @property
    def coordinates(self) -> str:
        return "1-based start" if self.one_based else "0-based, half-open"


def sample_info_table(run: RunInfo) -> pa.Table:
    """One row per (input file, sample): the ids used in call.sample_id, and where from."""
    ingested = datetime.datetime.fromisoformat(run.started_at) if run.started_at else None
    return pa.table(
        {
            "sample_id": pa.array([r[2] for r in run.samples], pa.int64()),
            "sample_name": pa.array([r[0] for r in run.samples], pa.string()),
            "file_path": pa.array([r[1] for r in run.samples], pa.string()),
            "ingestion_datetime": pa.array([ingested] * len(run.samples), pa.timestamp("us")),
        }
    )


def sample_info_rows(run: RunInfo) -> list[dict]:
    """The sample_info rows as JSON-able dicts (the time as text: a TIMESTAMP, or a DATETIME
    column of tables made before, takes it)."""
    rows = sample_info_table(run).to_pylist()
    for row in rows:
        row["ingestion_datetime"] = run.started_at or None
    return rows


def header_rows(run: RunInfo) -> list[dict]:
    """The run's header as TABLE__vcf_header rows (export reads them back: docs/export.md)."""
    return [
        {"run_id": run.run_id, "ingestion_datetime": run.started_at or None, "coordinates": run.coordinates,
         "line_number": number, "line": line}
        for number, line in enumerate(run.header_lines)
    ]  # fmt: skip
