"""``_manifest.json``: the stats of a run added up, with the check that every input record is
accounted for, and the renames that put each temporary file in its place. Beam-free: the
commit step (sinks/commit.py) does the moving."""

from __future__ import annotations

import dataclasses
import datetime
import os
import posixpath
from collections import Counter

from variant_etl.core import qc
from variant_etl.core.errors import CountMismatchError
from variant_etl.core.layout import (
    HEADER,
    MALFORMED_DIR,
    MANIFEST,
    REPORT,
    REPORT_PARTITIONS,
    SAMPLE_INFO,
    SUCCESS,
)
from variant_etl.core.options import BigQueryOptions, ParquetOptions
from variant_etl.core.run import RunInfo
from variant_etl.core.sample_lookup import PARTITIONING as LOOKUP_PARTITIONING
from variant_etl.core.sample_lookup import SORT_KEYS as LOOKUP_SORT_KEYS
from variant_etl.core.sharding import ShardingConfig
from variant_etl.core.stats import Kind, Stat

# What reaches the commit; the load-file stats stop at the BigQuery load step.
_COMMITTED = set(Kind) - {Kind.BQ_FILE, Kind.LOOKUP_BQ_FILE}


@dataclasses.dataclass(frozen=True)
class CommitSpec:
    """What the commit step needs, and nothing more: the run, the shards, the outputs."""

    run: RunInfo
    sharding: ShardingConfig
    parquet: ParquetOptions | None = None
    sample_lookup: ParquetOptions | None = None
    bigquery: BigQueryOptions | None = None
    sample_lookup_bigquery: BigQueryOptions | None = None
    temp_dir: str = ""  # where the manifest and dead letters stay without an output directory
    # False when a transform not of ours stands between the reader and a writer: the records
    # it removed or added are reported (records_changed_by_other_transforms), not an error.
    strict: bool = True
    insert_run_rows: bool = False  # the commit inserts TABLE__sample_info and __vcf_header rows
    # What the plan saw in each output directory: the run_id of the completed output that
    # --overwrite replaces, or None (empty). The commit moves nothing unless it is still so.
    seen: tuple[tuple[str, str | None], ...] = ()
    # True when launch holds the directories' claims (it took them before any work and gives
    # them up at its end); otherwise the commit takes and releases them itself.
    claims_held: bool = False

    def previous_run(self, output_dir: str) -> str | None:
        return dict(self.seen).get(output_dir)

    @property
    def has_sample_lookup(self) -> bool:
        return self.sample_lookup is not None or self.sample_lookup_bigquery is not None

    def temp_dir_of(self, output_dir: str) -> str:
        """Where this run's files wait inside an output directory until the commit."""
        return _join(output_dir, "_temporary", self.run.run_id)


def files_of(manifest: dict, output_dir: str) -> list[str]:
    """The files, relative to ``output_dir``, that the run of ``manifest`` wrote there: what
    --overwrite may remove (nothing else). The same manifest sits in the variant directory and
    the sample-lookup one; its ``sample_lookup.parquet_dir`` tells them apart."""
    lookup = (manifest.get("sample_lookup") or {}).get("parquet_dir")
    is_lookup = lookup is not None and _same_dir(lookup, output_dir)
    names = [SUCCESS, MANIFEST, SAMPLE_INFO, REPORT, REPORT_PARTITIONS] + ([] if is_lookup else [HEADER])
    for shard in manifest.get("shards", []):
        listed = shard.get("sample_lookup_files", []) if is_lookup else shard.get("files", [])
        names += [entry["path"] for entry in listed]
    # dead letters: in the variant directory, or in the lookup's when the run had none
    names += [entry["path"] for entry in manifest.get("malformed", {}).get("files", [])
              if not posixpath.isabs(entry["path"]) and "://" not in entry["path"]]  # fmt: skip
    return sorted(set(names))


def normalised_dir(path: str) -> str:
    """An output directory as two paths to it compare: absolute (local), no trailing '/'."""
    return path.rstrip("/") if "://" in path else os.path.abspath(path)


def _same_dir(one: str, other: str) -> bool:
    return normalised_dir(one) == normalised_dir(other)


def _join(base: str, *parts: str) -> str:
    return posixpath.join(base, *parts)


def build_manifest(spec: CommitSpec, stats: list[Stat]) -> tuple[dict, list[tuple[str, str]]]:
    """Adds up the stats; returns the manifest and the (temp, final) renames to do."""
    plan = spec
    out = plan.parquet.output_dir if plan.parquet else None
    lookup_out = plan.sample_lookup.output_dir if plan.sample_lookup else None
    malformed_out = out or lookup_out  # where dead letters go: the variant output, else the lookup's
    reads: Counter = Counter()
    parsed: Counter = Counter()  # per input: records that became rows
    matched: Counter = Counter()  # per input: of those, loaded with Number=A values matched by index
    cast: Counter = Counter()  # per input: of those, loaded with a Number=1 number's first value
    routed: Counter = Counter()  # per shard: records ShardVariants sent to it
    malformed_by_input: Counter = Counter()
    dropped = 0
    files: dict[str, list[dict]] = {s.suffix: [] for s in plan.sharding.shards}
    loaded: dict[str, dict] = {s.suffix: {"rows": 0, "records": 0} for s in plan.sharding.shards}
    calls: Counter = Counter()  # per shard: calls ShardVariants sent to it (sample-lookup rows)
    lookup_files: dict[str, list[dict]] = {s.suffix: [] for s in plan.sharding.shards}
    lookup_loaded: Counter = Counter()
    malformed_files: list[dict] = []
    qc_counts: dict[str, dict] = {}  # per shard: core.qc counts of its rows
    for stat in stats:
        if not isinstance(stat, Stat) or stat.kind not in _COMMITTED:
            raise CountMismatchError(
                f"the commit got {stat!r}, which no stage should send it. Nothing was committed; "
                "this is a bug, please report it."
            )
        kind, key, value = stat.kind, stat.key, stat.value
        if kind is Kind.READ:
            reads[key] += value
        elif kind is Kind.PARSED:
            parsed[key] += value
        elif kind is Kind.MATCHED:
            matched[key] += value
        elif kind is Kind.CAST:
            cast[key] += value
        elif kind is Kind.ROUTED:
            routed[key] += value
        elif kind is Kind.DROPPED:
            dropped += value
        elif kind is Kind.FILE:
            files[key].append(value)
        elif kind is Kind.MALFORMED_FILE:
            malformed_files.append(value)
            malformed_by_input.update(value["by_input"])
        elif kind is Kind.BQ_LOADED:
            loaded[key]["rows"] += value["rows"]
            loaded[key]["records"] += value["records"]
        elif kind is Kind.ROUTED_CALLS:
            calls[key] += value
        elif kind is Kind.LOOKUP_FILE:
            lookup_files[key].append(value)
        elif kind is Kind.QC:
            qc_counts[key] = qc.add(qc_counts.get(key, {}), value)
        else:  # Kind.LOOKUP_BQ_LOADED
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
            renames.append((info["temp_path"], _join(out, shard.suffix, f"part-{number:05d}.parquet")))
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
        renames.append((info["temp_path"], _join(malformed_out, name)))
        malformed_listed.append({"path": name, "rows": info["rows"]})
    totals = {
        "records_read": sum(reads.values()),
        "records_written": sum(s["records"] for s in shards),
        "rows_written": sum(s["rows"] for s in shards),
        "malformed": sum(malformed_by_input.values()),
        "dropped_no_matching_shard": dropped,
        "number_a_values_matched": sum(matched.values()),
        "several_values_cast_to_first": sum(cast.values()),
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
        "run_id": plan.run.run_id,
        "finished_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "sharding_config": plan.sharding.path,
        "coordinates": plan.run.coordinates,
        "variant_merge_strategy": plan.run.merge_strategy,
        "inputs": [
            {
                "path": path,
                "records_read": reads[path],
                "records_parsed": parsed[path],
                "malformed": malformed_by_input[path],
                "number_a_values_matched": matched[path],
                "several_values_cast_to_first": cast[path],
            }
            for path in plan.run.inputs
        ],
        "shards": shards,
        "malformed": {"count": totals["malformed"], "files": malformed_listed},
        "dropped_no_matching_shard": dropped,
        "sample_info": {
            "path": SAMPLE_INFO if out or lookup_out else None,
            "rows": len(plan.run.samples),
        },
        "sample_lookup": lookup,
        "totals": totals,
    }
    if qc_counts:
        manifest["qc"] = _qc_section(plan, qc_counts)
    if not plan.strict:
        # what a transform of the pipeline's own removed (positive) or added (negative)
        written = next(iter(sinks.values()), totals["records_written"])
        totals["records_changed_by_other_transforms"] = (
            totals["records_read"] - totals["malformed"] - totals["dropped_no_matching_shard"] - written
        )
    _check_conservation(manifest, sinks, set(reads), strict=plan.strict)
    return manifest, renames


def _lookup_files(out: str, suffix: str, files: list[dict]) -> tuple[int, list[dict], list[tuple[str, str]]]:
    """A shard's sample-lookup files: (rows, their manifest entries, the renames)."""
    order = ("min_reference_name", "min_start_position", "key", "chunk", "temp_path")
    ordered = sorted(files, key=lambda f: tuple(f[name] for name in order))
    listed, renames = [], []
    for number, info in enumerate(ordered):
        name = f"{suffix}/part-{number:05d}.parquet"
        renames.append((info["temp_path"], _join(out, name)))
        listed.append({
            "path": name,
            "rows": info["rows"],
            "min_sample_id": info["min_sample_id"],
            "max_sample_id": info["max_sample_id"],
            "min_start_position": info["min_start_position"],
            "max_start_position": info["max_start_position"],
        })  # fmt: skip
    return sum(f["rows"] for f in listed), listed, renames


def _check_conservation(manifest: dict, sinks: dict[str, int], reported: set[str], *, strict: bool) -> None:
    """Every record read is accounted for: per input file, per shard and over the run.
    Any mismatch fails the run before anything is committed. Not ``strict``, only the reader's
    own counts are checked (a transform between the stages may remove or add rows)."""
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
    if not strict:
        _raise_if(problems)
        return
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
    _raise_if(problems)


def _raise_if(problems: list[str]) -> None:
    if problems:
        raise CountMismatchError(
            f"{'; '.join(problems[:5])}. Nothing was committed; this is a bug, please report it."
        )


def _qc_section(plan: CommitSpec, by_shard: dict[str, dict]) -> dict:
    """The QC figures (core/qc.py) of the whole run, per sample by name, and of each shard."""
    ids = {str(number): name for name, _, number in plan.run.samples}
    samples = len(ids)
    total: dict = {}
    for counts in by_shard.values():
        total = qc.add(total, counts)
    run_only = ("samples", "allele_frequency", "singletons")
    shards = {}
    for shard in plan.sharding.shards:
        if shard.suffix in by_shard:  # (its per-sample counts: not even summed up)
            counts = {key: value for key, value in by_shard[shard.suffix].items() if key != "samples"}
            figures = qc.summary(counts, samples)
            shards[shard.suffix] = {key: value for key, value in figures.items() if key not in run_only}
    return {"definitions": "bcftools stats", "run": qc.summary(total, samples, ids), "shards": shards}
