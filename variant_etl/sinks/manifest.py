"""Dead-letter files, and the commit step that moves files into place and writes
``_manifest.json`` once every input record is accounted for."""

from __future__ import annotations

import datetime
import json
import os
import shutil
import uuid
from collections import Counter

import apache_beam as beam
import pyarrow as pa
import pyarrow.parquet as pq
from apache_beam.io.filesystems import FileSystems
from apache_beam.transforms.window import GlobalWindows

from variant_etl.core.errors import CountMismatchError, OutputError
from variant_etl.core.header import run_header_lines
from variant_etl.core.layout import HEADER, MALFORMED_DIR, MANIFEST, SAMPLE_INFO, SUCCESS
from variant_etl.core.sample_lookup import PARTITIONING as LOOKUP_PARTITIONING
from variant_etl.core.sample_lookup import SORT_KEYS as LOOKUP_SORT_KEYS
from variant_etl.plan import Plan


def sample_info_rows(plan: Plan) -> list[dict]:
    """The sample_info rows as JSON-able dicts (BigQuery DATETIME as text)."""
    table = sample_info_table(plan)
    rows = table.to_pylist()
    for row in rows:
        row["ingestion_datetime"] = plan.started_at or None
    return rows


def header_rows(plan: Plan) -> list[dict]:
    """The run's header as TABLE__vcf_header rows (export reads them back: docs/export.md)."""
    lines = run_header_lines(list(plan.headers), plan.merged)
    coordinates = coordinates_text(plan)
    return [
        {"run_id": plan.run_id, "ingestion_datetime": plan.started_at or None, "coordinates": coordinates,
         "line_number": number, "line": line}
        for number, line in enumerate(lines)
    ]  # fmt: skip


def coordinates_text(plan: Plan) -> str:
    return "1-based start" if plan.read.one_based else "0-based, half-open"


def sample_info_table(plan: Plan) -> pa.Table:
    """One row per (input file, sample): the ids used in call.sample_id, and where from."""
    rows = sorted(
        (name, split.path, number)
        for split in plan.splits
        for name, number in zip(split.samples, split.sample_ids)
    )
    ingested = datetime.datetime.fromisoformat(plan.started_at) if plan.started_at else None
    return pa.table(
        {
            "sample_id": pa.array([r[2] for r in rows], pa.int64()),
            "sample_name": pa.array([r[0] for r in rows], pa.string()),
            "file_path": pa.array([r[1] for r in rows], pa.string()),
            "ingestion_datetime": pa.array([ingested] * len(rows), pa.timestamp("us")),
        }
    )


class _WriteMalformedFn(beam.DoFn):
    """Writes a bundle's dead-letter entries as one JSON-lines file."""

    def __init__(self, temp_dir: str):
        self._temp_dir = temp_dir

    def start_bundle(self):
        self._entries: list[dict] = []

    def process(self, entry: dict):
        self._entries.append(entry)

    def finish_bundle(self):
        if not self._entries:
            return
        entries = sorted(self._entries, key=lambda e: (e["file"], e["record"]))
        path = FileSystems.join(self._temp_dir, MALFORMED_DIR, f"{uuid.uuid4().hex}.jsonl")
        with FileSystems.create(path) as sink:
            for entry in entries:
                sink.write((json.dumps(entry, ensure_ascii=False) + "\n").encode("utf-8"))
        by_input = dict(Counter(e["file"] for e in entries))
        self._entries = []
        yield GlobalWindows.windowed_value(
            (
                "malformed_file",
                "",
                {
                    "temp_path": path,
                    "rows": len(entries),
                    "by_input": by_input,
                    "first": [entries[0]["file"], entries[0]["record"]],
                },
            )
        )


class WriteMalformed(beam.PTransform):
    def __init__(self, temp_dir: str):
        super().__init__()
        self._temp_dir = temp_dir

    def expand(self, entries):
        return entries | "WriteFiles" >> beam.ParDo(_WriteMalformedFn(self._temp_dir))


def build_manifest(plan: Plan, stats: list[tuple]) -> tuple[dict, list[tuple[str, str]]]:
    """Adds up the stats; returns the manifest and the (temp, final) renames to do."""
    out = plan.parquet.output_dir if plan.parquet else None
    lookup_out = plan.sample_lookup.output_dir if plan.sample_lookup else None
    malformed_out = out or lookup_out  # where dead letters go: the variant output, else the lookup's
    reads: Counter = Counter()
    parsed: Counter = Counter()  # per input: records that became rows
    routed: Counter = Counter()  # per shard: records ShardVariants sent to it
    malformed_by_input: Counter = Counter()
    dropped = 0
    files: dict[str, list[dict]] = {s.suffix: [] for s in plan.sharding.shards}
    loaded: dict[str, dict] = {s.suffix: {"rows": 0, "records": 0} for s in plan.sharding.shards}
    calls: Counter = Counter()  # per shard: calls ShardVariants sent to it (sample-lookup rows)
    lookup_files: dict[str, list[dict]] = {s.suffix: [] for s in plan.sharding.shards}
    lookup_loaded: Counter = Counter()
    malformed_files: list[dict] = []
    for kind, key, value in stats:
        if kind == "read":
            reads[key] += value
        elif kind == "parsed":
            parsed[key] += value
        elif kind == "routed":
            routed[key] += value
        elif kind == "dropped":
            dropped += value
        elif kind == "file":
            files[key].append(value)
        elif kind == "malformed_file":
            malformed_files.append(value)
            malformed_by_input.update(value["by_input"])
        elif kind == "bq_loaded":
            loaded[key]["rows"] += value["rows"]
            loaded[key]["records"] += value["records"]
        elif kind == "routed_calls":
            calls[key] += value
        elif kind == "lookup_file":
            lookup_files[key].append(value)
        elif kind == "lookup_bq_loaded":
            lookup_loaded[key] += value["rows"]
    renames: list[tuple[str, str]] = []
    shards = []
    for shard in plan.sharding.shards:
        shard_files = sorted(
            files[shard.suffix],
            key=lambda f: (
                f["min_reference_name"],
                f["min_start_position"],
                f["key"],
                f["chunk"],
                f["temp_path"],
            ),
        )
        listed = []
        for number, info in enumerate(shard_files):
            renames.append(
                (info["temp_path"], FileSystems.join(out, shard.suffix, f"part-{number:05d}.parquet"))
            )
            listed.append({
                "path": f"{shard.suffix}/part-{number:05d}.parquet",
                "rows": info["rows"],
                "records": info["records"],
                "min_start_position": info["min_start_position"],
                "max_start_position": info["max_start_position"],
            })  # fmt: skip
        shards.append({
            "table_name_suffix": shard.suffix,
            "regions": [str(r) for r in shard.regions] or ["residual"],
            "rows": sum(f["rows"] for f in listed),
            "records": sum(f["records"] for f in listed),
            "records_routed": routed[shard.suffix],
            "files": listed,
            "partitioning": shard.partitioning.to_bigquery(),
            "partition_range_end": shard.partition_range_end,
        })  # fmt: skip
    if plan.bigquery is not None:
        for entry in shards:
            entry["bigquery_table"] = plan.bigquery.table_id(entry["table_name_suffix"])
            entry["bigquery_rows"] = loaded[entry["table_name_suffix"]]["rows"]
            entry["bigquery_records"] = loaded[entry["table_name_suffix"]]["records"]
    if plan.has_sample_lookup:
        for entry in shards:
            suffix = entry["table_name_suffix"]
            entry["calls_routed"] = calls[suffix]
            if lookup_out is not None:
                entry["sample_lookup_rows"], entry["sample_lookup_files"], moves = _lookup_files(
                    lookup_out, suffix, lookup_files[suffix]
                )
                renames += moves
            if plan.sample_lookup_bigquery is not None:
                entry["sample_lookup_bigquery_table"] = plan.sample_lookup_bigquery.table_id(suffix)
                entry["sample_lookup_bigquery_rows"] = lookup_loaded[suffix]
    malformed_listed = []
    for number, info in enumerate(sorted(malformed_files, key=lambda f: (f["first"], f["temp_path"]))):
        if malformed_out is None:  # no output directory: the dead letters stay in the temp location
            malformed_listed.append({"path": info["temp_path"], "rows": info["rows"]})
            continue
        name = f"{MALFORMED_DIR}/part-{number:05d}.jsonl"
        renames.append((info["temp_path"], FileSystems.join(malformed_out, name)))
        malformed_listed.append({"path": name, "rows": info["rows"]})
    totals = {
        "records_read": sum(reads.values()),
        "records_written": sum(s["records"] for s in shards),
        "rows_written": sum(s["rows"] for s in shards),
        "malformed": sum(malformed_by_input.values()),
        "dropped_no_matching_shard": dropped,
    }
    sinks = {}
    if plan.parquet is not None:
        sinks["Parquet"] = totals["records_written"]
    if plan.bigquery is not None:
        totals["records_loaded_to_bigquery"] = sum(v["records"] for v in loaded.values())
        totals["rows_loaded_to_bigquery"] = sum(v["rows"] for v in loaded.values())
        sinks["BigQuery"] = totals["records_loaded_to_bigquery"]
        if out is None:
            totals["records_written"] = totals["records_loaded_to_bigquery"]
            totals["rows_written"] = totals["rows_loaded_to_bigquery"]
    lookup = None
    if plan.has_sample_lookup:
        totals["calls_routed"] = sum(calls.values())
        lookup = {
            "parquet_dir": lookup_out,
            "bigquery_tables": plan.sample_lookup_bigquery.table_id("<suffix>")
            if plan.sample_lookup_bigquery
            else None,
            "partitioning": LOOKUP_PARTITIONING.to_bigquery(),
            "sorted_by": [name for name, _ in LOOKUP_SORT_KEYS],
        }
        if lookup_out is not None:
            totals["sample_lookup_rows_written"] = sum(s["sample_lookup_rows"] for s in shards)
        if plan.sample_lookup_bigquery is not None:
            totals["sample_lookup_rows_loaded_to_bigquery"] = sum(lookup_loaded.values())
    manifest = {
        "variant_etl_manifest_version": 1,
        "run_id": plan.run_id,
        "finished_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "sharding_config": plan.sharding.path,
        "coordinates": coordinates_text(plan),
        "variant_merge_strategy": plan.merge.strategy,
        "inputs": [
            {
                "path": path,
                "records_read": reads[path],
                "records_parsed": parsed[path],
                "malformed": malformed_by_input[path],
            }
            for path in plan.inputs
        ],
        "shards": shards,
        "malformed": {"count": totals["malformed"], "files": malformed_listed},
        "dropped_no_matching_shard": dropped,
        "sample_info": {
            "path": SAMPLE_INFO if out or lookup_out else None,
            "rows": sum(len(split.samples) for split in plan.splits),
        },
        "sample_lookup": lookup,
        "totals": totals,
    }
    _check_conservation(manifest, sinks, set(reads))
    return manifest, renames


def _lookup_files(out: str, suffix: str, files: list[dict]) -> tuple[int, list[dict], list[tuple[str, str]]]:
    """A shard's sample-lookup files: (rows, their manifest entries, the renames)."""
    order = ("min_reference_name", "min_start_position", "key", "chunk", "temp_path")
    ordered = sorted(files, key=lambda f: tuple(f[name] for name in order))
    listed, renames = [], []
    for number, info in enumerate(ordered):
        name = f"{suffix}/part-{number:05d}.parquet"
        renames.append((info["temp_path"], FileSystems.join(out, name)))
        listed.append({
            "path": name,
            "rows": info["rows"],
            "min_sample_id": info["min_sample_id"],
            "max_sample_id": info["max_sample_id"],
            "min_start_position": info["min_start_position"],
            "max_start_position": info["max_start_position"],
        })  # fmt: skip
    return sum(f["rows"] for f in listed), listed, renames


def _check_conservation(manifest: dict, sinks: dict[str, int], reported: set[str]) -> None:
    """Every record read is accounted for: per input file, per shard and over the run.
    Any mismatch fails the run before anything is committed."""
    totals = manifest["totals"]
    problems = []
    for entry in manifest["inputs"]:
        if entry["path"] not in reported:
            problems.append(f"{entry['path']}: reported no count")
        elif entry["records_read"] != entry["records_parsed"] + entry["malformed"]:
            problems.append(
                f"{entry['path']}: records read ({entry['records_read']}) != parsed "
                f"({entry['records_parsed']}) + malformed ({entry['malformed']})"
            )
    parsed = sum(entry["records_parsed"] for entry in manifest["inputs"])
    routed = sum(shard["records_routed"] for shard in manifest["shards"])
    if parsed != routed + totals["dropped_no_matching_shard"]:
        problems.append(
            f"records parsed ({parsed}) != routed to shards ({routed}) + dropped "
            f"({totals['dropped_no_matching_shard']})"
        )
    for shard in manifest["shards"]:
        written = {"Parquet": shard["records"], "BigQuery": shard.get("bigquery_records")}
        for sink in sinks:
            if written[sink] != shard["records_routed"]:
                problems.append(
                    f"shard {shard['table_name_suffix']}: records routed ({shard['records_routed']}) "
                    f"!= written to {sink} ({written[sink]})"
                )
    lookup_sinks = {
        "sample_lookup_rows": "the sample-lookup Parquet",
        "sample_lookup_bigquery_rows": "the sample-lookup tables",
    }
    for shard in manifest["shards"]:
        for field, sink in lookup_sinks.items():
            if field in shard and shard[field] != shard["calls_routed"]:
                problems.append(
                    f"shard {shard['table_name_suffix']}: calls routed ({shard['calls_routed']}) "
                    f"!= rows written to {sink} ({shard[field]})"
                )
    for sink, records in sinks.items():
        accounted = records + totals["malformed"] + totals["dropped_no_matching_shard"]
        if totals["records_read"] != accounted:
            problems.append(
                f"records read ({totals['records_read']}) != written to {sink} ({records}) + malformed "
                f"({totals['malformed']}) + dropped ({totals['dropped_no_matching_shard']})"
            )
    if problems:
        raise CountMismatchError(
            f"{'; '.join(problems[:5])}. Nothing was committed; this is a bug, please report it."
        )


def _remove_previous_output(out: str) -> None:
    """--overwrite: everything but this run's temporary files goes, markers first."""
    for marker in (SUCCESS, MANIFEST):
        path = FileSystems.join(out, marker)
        if FileSystems.exists(path):
            FileSystems.delete([path])
    if not FileSystems.exists(out):
        return
    if "://" not in out:  # local: directories are real, remove them whole
        for name in os.listdir(out):
            if name != "_temporary":
                path = os.path.join(out, name)
                shutil.rmtree(path) if os.path.isdir(path) else os.remove(path)
        return
    temporary = FileSystems.join(out, "_temporary") + "/"
    old = [m.path for m in FileSystems.match([FileSystems.join(out, "**")])[0].metadata_list]
    old = [path for path in old if not path.startswith(temporary)]
    if old:
        FileSystems.delete(old)


def _move(renames: list[tuple[str, str]]) -> None:
    """Moves the files into place; on a second try, only those not moved yet."""
    if not renames:
        return
    try:
        FileSystems.rename([src for src, _ in renames], [dst for _, dst in renames])
        return
    except Exception:  # BeamIOError: some sources are gone, moved by an earlier attempt
        pass
    moved = {src: not FileSystems.exists(src) for src, _ in renames}
    left = [(src, dst) for src, dst in renames if not moved[src]]
    lost = [dst for src, dst in renames if moved[src] and not FileSystems.exists(dst)]
    if lost:
        raise OutputError(
            f"{lost[0]}: neither its temporary file nor the file itself exists; nothing more is moved"
        )
    if left:
        FileSystems.rename([src for src, _ in left], [dst for _, dst in left])


class _CommitFn(beam.DoFn):
    def __init__(self, plan: Plan):
        self._plan = plan

    def process(self, stats: list[tuple]):
        manifest, renames = build_manifest(self._plan, stats)
        plan = self._plan
        # (output directory, its temporary directory): the variant output, the sample lookup
        outputs = [(p.output_dir, FileSystems.join(p.output_dir, "_temporary", plan.run_id))
                   for p in (plan.parquet, plan.sample_lookup) if p is not None]  # fmt: skip
        if not outputs:
            with FileSystems.create(FileSystems.join(plan.temp_dir, MANIFEST)) as sink:
                sink.write(json.dumps(manifest, indent=2).encode("utf-8"))
            yield manifest["totals"]
            return
        # Each step can be run again: a runner retries a failed commit bundle.
        for out, temp_dir in outputs:
            removed = FileSystems.join(temp_dir, "_previous_output_removed")
            overwrite = plan.parquet.overwrite if plan.parquet else plan.sample_lookup.overwrite
            if overwrite and not FileSystems.exists(removed):
                _remove_previous_output(out)
                FileSystems.create(removed).close()
        for directory in sorted({final.rsplit("/", 1)[0] for _, final in renames}):
            if not FileSystems.exists(directory):
                FileSystems.mkdirs(directory)
        _move(renames)
        for out, _ in outputs:
            with FileSystems.create(FileSystems.join(out, SAMPLE_INFO)) as sink:
                pq.write_table(sample_info_table(plan), sink, compression="zstd")
        if plan.parquet is not None:
            with FileSystems.create(FileSystems.join(plan.parquet.output_dir, HEADER)) as sink:
                lines = run_header_lines(list(plan.headers), plan.merged)
                sink.write(("\n".join(lines) + "\n").encode("utf-8"))
        for out, _ in outputs:
            with FileSystems.create(FileSystems.join(out, MANIFEST)) as sink:
                sink.write(json.dumps(manifest, indent=2).encode("utf-8"))
        for out, _ in outputs:
            with FileSystems.create(FileSystems.join(out, SUCCESS)):
                pass  # written last: a directory without it is not a finished run
        for out, temp_dir in outputs:
            temp_root = FileSystems.join(out, "_temporary")
            if FileSystems.exists(temp_dir):
                FileSystems.delete([temp_dir])
            if (
                FileSystems.exists(temp_root)
                and not FileSystems.match([FileSystems.join(temp_root, "*")])[0].metadata_list
            ):
                FileSystems.delete([temp_root])
        yield manifest["totals"]


class CommitOutput(beam.PTransform):
    """All stats -> renames and _manifest.json (runs once, after every write)."""

    def __init__(self, plan: Plan):
        super().__init__()
        self._plan = plan

    def expand(self, stats):
        return stats | "Gather" >> beam.combiners.ToList() | "Commit" >> beam.ParDo(_CommitFn(self._plan))
