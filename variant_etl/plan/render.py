"""The plan for people (text) and for programs (JSON)."""

from __future__ import annotations

import json
import os

from variant_etl.plan.model import Plan, PlanEstimate


def describe(plan: Plan, estimate: PlanEstimate | None = None) -> dict:
    """A JSON-able summary (what `plan --format json` prints); with ``estimate``, the
    records of each input and the estimated rows of each shard."""
    described = {
        "inputs": [{"path": h.path, "samples": len(h.samples)} for h in plan.headers],
        "schema": str(plan.output_schema()).splitlines(),
        "sharding_config": plan.sharding.path,
        "shards": [
            {
                "table_name_suffix": s.suffix,
                "regions": [str(r) for r in s.regions] or ["residual"],
                "partitioning": s.partitioning.to_bigquery(),
            }
            for s in plan.sharding.shards
        ],
        "header_resolutions": [_resolution(r) for r in plan.merged.resolutions],
        "splits": len(plan.splits),
        "read_groups": len({split.group for split in plan.splits}),
        "region_splits": len(plan.region_splits),
        "output_parquet_dir": plan.parquet.output_dir if plan.parquet else None,
        "output_tables": [plan.bigquery.table_id(s.suffix) for s in plan.sharding.shards]
        if plan.bigquery
        else None,
        "sample_lookup_parquet_dir": plan.sample_lookup.output_dir if plan.sample_lookup else None,
        "sample_lookup_tables": [plan.sample_lookup_bigquery.table_id(s.suffix) for s in plan.sharding.shards]
        if plan.sample_lookup_bigquery
        else None,
    }
    if estimate is None:
        return described
    splits = plan.splits_per_input()
    for entry, path, size in zip(described["inputs"], plan.inputs, plan.sizes or [None] * len(plan.inputs)):
        found = estimate.inputs[path]
        entry.update(
            size_bytes=size,
            records=round(found.records),
            records_exact=found.exact,
            records_from=found.method,
            records_per_contig={k: round(v) for k, v in found.per_contig.items()},
            read_splits=splits[path],
        )
    for entry, rows in zip(described["shards"], estimate.shard_rows):
        entry["estimated_rows"] = round(rows)
    described["estimated_rows_dropped"] = round(estimate.dropped)
    described["estimates_count"] = estimate.counts
    return described


def _resolution(resolution) -> dict:
    """A definition used that not every header gives, and which files give what."""
    return {
        "field": f"{resolution.kind}/{resolution.field.id}",
        "used": {"number": resolution.field.number, "type": resolution.field.type},
        "declared": [
            {"number": f.number, "type": f.type, "file_count": len(paths), "files": list(paths[:SHOWN_FILES])}
            for f, paths in resolution.declared
        ],
        "why": resolution.why,
        "inferred": resolution.inferred,
    }


SHOWN_FILES = 5  # files named per definition (gcp-variant-transforms' preprocessor's number)
SHOWN_RESOLUTIONS = 10  # header resolutions listed by the text plan; JSON lists all
SHOWN_SHARDS = 10  # lines of the shard table; plan --format json and the report list them all


def shown_shards(shards: list) -> tuple[list, list]:
    """(the shards listed one a line, the rest summed up in one line): SHOWN_SHARDS lines."""
    if len(shards) <= SHOWN_SHARDS:
        return shards, []
    return shards[: SHOWN_SHARDS - 1], shards[SHOWN_SHARDS - 1 :]


def plan_json(plan: Plan, estimate: PlanEstimate | None = None) -> str:
    return json.dumps(describe(plan, estimate), indent=2)


def plan_text(plan: Plan, estimate: PlanEstimate) -> str:
    """The plan for people: inputs, read splits, shards with partitioning and estimated rows."""
    splits = plan.splits_per_input()
    sizes = plan.sizes or (0,) * len(plan.inputs)
    lines = [
        f"plan: {len(plan.inputs)} input file(s), {human_bytes(sum(sizes))}; "
        f"{len(plan.sharding.shards)} shard(s) from {_shown_path(plan.sharding.path)}",
        "",
        "inputs",
    ]
    rows = [("path", "size", "samples", "records", "read splits", "records from")]
    for h, size in zip(plan.headers, sizes):
        found = estimate.inputs[h.path]
        records = f"{round(found.records):,}" if found.exact else f"~{round(found.records):,}"
        rows.append(
            (
                _shown_path(h.path),
                human_bytes(size),
                f"{len(h.samples):,}",
                records,
                str(splits[h.path]),
                found.method,
            )
        )
    lines += _table(rows, right=(1, 2, 3, 4))
    groups = len({split.group for split in plan.splits})
    read = f"read: {len(plan.splits)} split(s) in {groups} task(s)"
    if plan.region_splits:
        read += f"; merged in place: {len(plan.region_splits):,} window(s) of {plan.merge.bucket_size:,} bp"
    elif plan.merge.strategy != "NONE":
        read += f"; merged through a shuffle in buckets of {plan.merge.bucket_size:,} bp"
    lines += ["", read]
    resolutions = plan.merged.resolutions
    if resolutions:
        lines += ["", f"header definitions used that not every header gives ({len(resolutions):,})"]
        lines += [f"  {r.describe()}" for r in resolutions[:SHOWN_RESOLUTIONS]]
        if len(resolutions) > SHOWN_RESOLUTIONS:
            more = len(resolutions) - SHOWN_RESOLUTIONS
            lines.append(f"  ... and {more:,} more (plan --format json lists them)")
    lines += ["", f"shards (estimated rows: {estimate.counts})"]
    rows = [("suffix", "regions", "partitions of start_position", "estimated rows")]
    shown, rest = shown_shards(list(zip(plan.sharding.shards, estimate.shard_rows)))
    for shard, estimated in shown:
        regions = ", ".join(str(r) for r in shard.regions) or "residual"
        rows.append((shard.suffix, regions, shard.partitioning.describe(), f"{round(estimated):,}"))
    lines += _table(rows, right=(3,))
    if rest:
        lines.append(
            f"  ... and {len(rest):,} more shards ({rest[0][0].suffix} to {rest[-1][0].suffix}): "
            f"{round(sum(e for _, e in rest)):,} estimated rows (plan --format json lists every shard)"
        )
    total = sum(estimate.shard_rows)
    exact = all(found.exact for found in estimate.inputs.values())
    lines.append(
        f"total: {'' if exact else '~'}{round(total):,} rows in shards, "
        f"{round(estimate.dropped):,} dropped (no matching shard)"
    )
    if any(region.start is not None for shard in plan.sharding.shards for region in shard.regions):
        lines.append(
            "  (rows of a position-range shard are apportioned by the index bins or the sampled "
            "positions: an estimate even when the file's total is exact)"
        )
    lines += [
        "",
        f"schema: {len(plan.output_schema())} top-level columns (plan --format json lists them)",
    ]
    if plan.parquet is not None:
        lines.append(f"output: {plan.parquet.output_dir} (Parquet)")
    if plan.bigquery is not None:
        lines.append(f"output: {plan.bigquery.table_id('<suffix>')} (BigQuery)")
    if plan.sample_lookup is not None:
        lines.append(f"output: {plan.sample_lookup.output_dir} (Parquet, sample lookup: a row per call)")
    if plan.sample_lookup_bigquery is not None:
        table = plan.sample_lookup_bigquery.table_id("<suffix>")
        lines.append(f"output: {table} (BigQuery, sample lookup: a row per call)")
    return "\n".join(lines)


def _shown_path(path: str) -> str:
    """Local paths under the working directory are shown relative to it (shorter to read)."""
    here = os.getcwd() + os.sep
    return path[len(here) :] if "://" not in path and path.startswith(here) else path


def _table(rows: list[tuple[str, ...]], right: tuple[int, ...] = ()) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    out = []
    for row in rows:
        cells = [
            cell.rjust(w) if i in right else cell.ljust(w) for i, (cell, w) in enumerate(zip(row, widths))
        ]
        out.append("  " + "  ".join(cells).rstrip())
    return out


def human_bytes(n: int) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"
