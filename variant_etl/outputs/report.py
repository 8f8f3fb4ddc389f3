"""The ``report`` command: one self-contained HTML page about a Parquet output.

Totals and per-input counts come from ``_manifest.json``; rows per shard and per partition
range of ``start_position`` are counted again from the shard files with DuckDB, so the page
shows what is on disk. Charts are inline SVG: the page opens offline, nothing is fetched.
"""

from __future__ import annotations

import html
import io
import json
import os

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

from variant_etl.core.errors import OutputError
from variant_etl.core.layout import REPORT, REPORT_PARTITIONS
from variant_etl.core.partitioning import USED_PARTITIONS, describe_range
from variant_etl.outputs import charts, storage


def partition_counts(out: str, shard: dict, con: duckdb.DuckDBPyConnection) -> tuple[np.ndarray, np.ndarray]:
    """The index of each non-empty integer-range partition of the shard, as BigQuery would
    partition its start_position values (outside [start, end): the last one), and its rows:
    two arrays, in the order of the partitions."""
    files = [os.path.join(out, f["path"]) for f in shard["files"]]
    if not files:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    source, params = storage.shard_scan(con, files)
    spec = shard["partitioning"]["range"]
    start, end, interval = int(spec["start"]), int(spec["end"]), int(spec["interval"])
    query = (
        "SELECT CASE WHEN start_position < ? OR start_position >= ? THEN ? "
        f"ELSE (start_position - ?) // ? END AS p, count(*) AS n FROM {source} GROUP BY p ORDER BY p"
    )
    found = con.execute(query, [start, end, USED_PARTITIONS, start, interval, *params]).fetchnumpy()
    return found["p"].astype(np.int64), found["n"].astype(np.int64)


def build_report(out: str) -> dict:
    """The numbers the page shows."""
    path = os.path.join(out, "_manifest.json")
    try:
        manifest = json.loads(storage.read_text(path))
    except OSError:
        raise OutputError(
            f"{out}: no _manifest.json, so not a finished run. Hint: pass the --output_parquet_dir of a "
            "completed launch"
        ) from None
    shards = []
    con = duckdb.connect()  # one for all shards: a connection costs ~0.1 s
    for shard in manifest["shards"]:
        partitions = partition_counts(out, shard, con)
        shards.append(
            {
                "suffix": shard["table_name_suffix"],
                "regions": shard["regions"],
                "rows_manifest": shard["rows"],
                "rows_counted": int(partitions[1].sum()),
                "files": len(shard["files"]),
                "partitioning": shard["partitioning"],
                "partitions": partitions,
            }
        )
    con.close()
    return {"out": out, "manifest": manifest, "shards": shards}


def write_report(out: str, output: str | None = None) -> str:
    """Writes the page (and beside it, every non-empty partition as CSV); returns its path."""
    data = build_report(out)
    target = output or os.path.join(out, REPORT)
    csv_path = partitions_csv_path(target)
    storage.write_text(csv_path, partitions_csv(data["shards"]))
    storage.write_text(target, render(data, csv_name=os.path.basename(csv_path)))
    return target


def partitions_csv_path(report: str) -> str:
    """``_report.html`` -> ``_report_partitions.csv``, beside it."""
    base = report[: -len(".html")] if report.endswith(".html") else report
    return base + "_partitions.csv"


def partitions_csv(shards: list[dict]) -> str:
    """Every non-empty partition of every shard: its start_position range and rows (written
    by Arrow: 95,000 partitions of 1M variants in 0.02 s, where Python took 0.2 s)."""
    columns = {"shard": [], "partition": [], "start_position_from": [], "start_position_to": [], "rows": []}
    for s in shards:
        partitions, rows = s["partitions"]
        spec = s["partitioning"]["range"]
        start, interval = int(spec["start"]), int(spec["interval"])
        outside = partitions >= USED_PARTITIONS  # (no range: empty cells)
        columns["shard"].append(pa.array([s["suffix"]] * len(partitions), pa.string()))
        columns["partition"].append(pa.array(partitions))
        columns["start_position_from"].append(pa.array(start + partitions * interval, mask=outside))
        columns["start_position_to"].append(pa.array(start + (partitions + 1) * interval, mask=outside))
        columns["rows"].append(pa.array(rows))
    table = pa.table({name: pa.chunked_array(parts, pa.string() if name == "shard" else pa.int64())
                      for name, parts in columns.items()})  # fmt: skip
    text = io.BytesIO()
    options = pacsv.WriteOptions(include_header=False, quoting_style="none")
    # one chunk: Arrow's CSV writer pads an empty chunk (an empty shard's) with NUL bytes
    pacsv.write_csv(table.combine_chunks(), text, options)
    return ",".join(columns) + "\n" + text.getvalue().decode("utf-8")


def partition_bounds(spec: dict, partition: int) -> tuple[int, int] | None:
    """The start_position range [from, to) of a partition of the manifest's range spec; None for
    BigQuery's partition of the values outside [start, end)."""
    if partition >= USED_PARTITIONS:
        return None
    start, interval = int(spec["start"]), int(spec["interval"])
    return start + partition * interval, start + (partition + 1) * interval


def partition_spec(spec: dict) -> str:
    """A shard's partitioning from the manifest, as people read it (core/partitioning.py)."""
    return describe_range(int(spec["start"]), int(spec["end"]), int(spec["interval"]))


# --- HTML ----------------------------------------------------------------------------------

_STYLE = """
body { font-family: sans-serif; margin: 2em; color: #222; max-width: 1100px }
table { border-collapse: collapse; margin: 0.5em 0 1.5em }
td, th { border: 1px solid #ccc; padding: 2px 8px; text-align: left }
td.n, th.n { text-align: right; font-variant-numeric: tabular-nums }
.bad { color: #b00; font-weight: bold }
figure.chart { margin: 0.5em 0 1.5em } figure.chart svg { max-width: 100%; height: auto }
figcaption { font-size: 0.85em; color: #555 }
pre { background: #f6f6f6; padding: 1em; overflow: auto; max-height: 40em }
"""
SPARSE_ROWS = 10  # shards with fewer rows are listed in a sentence, not drawn
HEAVIEST = 20  # partitions listed in the page; the CSV beside it has them all


def render(data: dict, csv_name: str = REPORT_PARTITIONS) -> str:
    manifest = data["manifest"]
    totals = manifest["totals"]
    e = html.escape
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>variant_etl report: {e(data['out'])}</title>",
        f"<style>{_STYLE}</style></head><body>",
        f"<h1>variant_etl run report</h1><p>Output <code>{e(storage.shown(data['out']))}</code>, "
        f"run <code>{e(manifest['run_id'])}</code>, finished {e(manifest['finished_at'])}, "
        f"merge strategy {e(manifest['variant_merge_strategy'])}, coordinates {e(manifest['coordinates'])}, "
        f"sharding config <code>{e(manifest['sharding_config'])}</code>.</p>",
        "<h2>Totals</h2>",
        _table("totals", ("", "count"), [(key, _n(value)) for key, value in totals.items()]),
        "<h2>Input files</h2>",
        _table(
            "inputs",
            ("path", "records read", "records parsed", "malformed"),
            [
                (i["path"], _n(i["records_read"]), _n(i["records_parsed"]), _n(i["malformed"]))
                for i in manifest["inputs"]
            ],
        ),
    ]
    parts += _qc_sections(manifest.get("qc"))
    parts += _shard_sections(data["shards"])
    parts += _partition_sections(data["shards"], csv_name)
    shown = {key: value for key, value in manifest.items() if key != "qc"}  # (shown above)
    parts.append("<h2>Manifest</h2><details><summary><code>_manifest.json</code> (less its qc)</summary>")
    parts.append(f'<pre id="manifest">{e(json.dumps(shown, indent=2))}</pre></details>')
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def _shard_sections(shards: list[dict]) -> list[str]:
    rows = []
    for s in shards:
        counted = _n(s["rows_counted"])
        if s["rows_counted"] != s["rows_manifest"]:
            counted = f'<span class="bad">{counted}</span>'
        rows.append(
            (
                s["suffix"],
                ", ".join(s["regions"]),
                _n(s["rows_manifest"]),
                counted,
                _n(s["files"]),
                partition_spec(s["partitioning"]["range"]),
                _n(len(s["partitions"][0])),
            )
        )
    return [
        "<h2>Rows per shard</h2>",
        charts.horizontal_bars(
            "rows-per-shard",
            [s["suffix"] for s in shards],
            [s["rows_counted"] for s in shards],
            axis="rows written (counted in the shard's Parquet files)",
            caption="Rows in each shard's table.",
        ),
        _table(
            "shards",
            ("shard", "regions", "rows (manifest)", "rows (in files)", "files", "partitioning", "non-empty"),
            rows,
            raw=(3,),
        ),
    ]


def _partition_sections(shards: list[dict], csv_name: str) -> list[str]:
    e = html.escape
    parts = [
        "<h2>Rows per BigQuery partition</h2><p>Each shard's table is partitioned on ranges of "
        "<code>start_position</code> (its partitioning above); the rows of each non-empty "
        "partition are counted from the Parquet files with DuckDB. Partition "
        f"{USED_PARTITIONS:,} holds values outside the range. Every non-empty partition is in "
        f'<a href="{e(csv_name)}"><code>{e(csv_name)}</code></a>, beside this page.</p>'
    ]
    drawn = [s for s in shards if s["rows_counted"] >= SPARSE_ROWS and len(s["partitions"][0])]
    sparse = [s for s in shards if 0 < s["rows_counted"] < SPARSE_ROWS]
    empty = [s["suffix"] for s in shards if not s["rows_counted"]]
    rows = []
    for s in drawn + sparse:
        partitions, counts = s["partitions"]
        ordered = np.sort(counts)
        outside = int(counts[partitions >= USED_PARTITIONS].sum())
        rows.append(
            (
                s["suffix"],
                _n(len(ordered)),
                _n(int(ordered[0])),
                _n(int(ordered[len(ordered) // 2])),
                _n(int(ordered[-1])),
                _n(outside),
            )
        )
    parts.append(
        _table(
            "partitions",
            ("shard", "non-empty partitions", "fewest rows", "median rows", "most rows", "rows out of range"),
            rows,
        )
    )
    if drawn:
        parts.append(
            charts.boxes(
                "rows-per-partition",
                [s["suffix"] for s in drawn],
                [s["partitions"][1] for s in drawn],
                axis="rows in one non-empty partition (log scale)",
                caption="For each shard, the rows of its non-empty partitions: the box spans the middle "
                "half of the partitions, the orange line is the median, the whiskers reach the "
                "emptiest and the fullest partition.",
            )
        )
    if sparse:
        listed = ", ".join(f"{s['suffix']} ({_n(s['rows_counted'])})" for s in sparse)
        parts.append(f'<p id="sparse-shards">Shards with fewer than {SPARSE_ROWS} rows: {e(listed)}.</p>')
    if empty:
        parts.append(f'<p id="empty-shards">Shards with no rows: {e(", ".join(empty))}.</p>')
    heaviest = _fullest(shards)
    if heaviest:
        parts.append(f"<h3>The {len(heaviest)} fullest partitions</h3>")
        parts.append(
            _table(
                "heaviest-partitions",
                ("shard", "partition", "start_position from", "to (exclusive)", "rows"),
                [(suffix, _n(p), *_partition_range(spec, p), _n(n)) for n, suffix, p, spec in heaviest],
            )
        )
    return parts


def _fullest(shards: list[dict]) -> list[tuple[int, str, int, dict]]:
    """(rows, shard, partition, its range spec) of the HEAVIEST fullest partitions, fullest
    first, ties in the order of the shards and partitions."""
    owner = np.concatenate([np.full(len(s["partitions"][0]), i) for i, s in enumerate(shards)] or [[]])
    partitions = np.concatenate([s["partitions"][0] for s in shards] or [[]]).astype(np.int64)
    rows = np.concatenate([s["partitions"][1] for s in shards] or [[]]).astype(np.int64)
    chosen = np.argsort(-rows, kind="stable")[:HEAVIEST]
    found = []
    for i in chosen:
        shard = shards[owner[i]]
        found.append((int(rows[i]), shard["suffix"], int(partitions[i]), shard["partitioning"]["range"]))
    return found


_KINDS = {"snps": "SNPs", "mnps": "MNPs", "indels": "indels", "others": "others",
          "multiallelic": "multi-allelic", "no_alts": "no ALT"}  # fmt: skip
MAX_SAMPLE_ROWS = 100  # samples listed in the page; _manifest.json has them all
SAMPLE_KEYS = ("hom_ref", "het", "hom_alt", "indels", "hap_ref", "hap_alt", "missing")


def _qc_sections(found: dict | None) -> list[str]:
    """The QC figures of _manifest.json (counted as bcftools stats counts them)."""

    if not found:
        return []
    run, shards = found["run"], found["shards"]
    rows = [("whole run", _n(run["records"]), *(_n(run[k]) for k in _KINDS), _ratio(run["ts_tv"]))]
    rows += [
        (name, _n(s["records"]), *(_n(s[k]) for k in _KINDS), _ratio(s["ts_tv"]))
        for name, s in shards.items()
    ]
    parts = [
        "<h2>Quality control</h2><p>Counted during the load, on the rows written, with the "
        "definitions of <code>bcftools stats</code> (its SN, TSTV, IDD, AF and PSC lines): a "
        "record counts once in each type its ALT alleles have; Ts/Tv is over SNP alleles. "
        f"Whole run: Ts/Tv {_ratio(run['ts_tv'])} ({_n(run['ts'])} transitions, {_n(run['tv'])} "
        "transversions).</p>",
        charts.horizontal_bars(
            "qc-types",
            list(_KINDS.values()),
            [run[k] for k in _KINDS],
            axis="records (a record with a SNP and an indel allele counts in both)",
            caption="Records by variant type, whole run.",
        ),
        _table("qc-records", ("", "records", *_KINDS.values(), "Ts/Tv"), rows),
    ]
    lengths = run["indel_lengths"]
    if lengths:
        parts.append("<h3>Indel lengths</h3>")
        parts.append(
            charts.vertical_bars(
                "qc-indel-lengths",
                [int(k) for k in lengths],
                list(lengths.values()),
                xlabel="indel length in bases (ALT less REF; deletions negative; 60 = 60 or more)",
                ylabel="ALT alleles",
                caption="Indel alleles by length, whole run.",
            )
        )
        indels = _table("qc-indels", ("length", "alleles"), [(k, _n(v)) for k, v in lengths.items()])
        parts.append(f"<details><summary>the lengths</summary>{indels}</details>")
    spectrum = [b for b in run["allele_frequency"] if b["snps"] or b["indels"]]
    if spectrum:
        parts.append(
            "<h3>Allele frequency spectrum</h3><p>ALT alleles by AC/AN (from INFO, else from the "
            "calls), in the bins of bcftools stats; singletons (AC=1, or no AC/AN) are in the first "
            f"bin: {_n(run['singletons']['snps'])} SNPs and {_n(run['singletons']['indels'])} indels.</p>"
        )
        parts.append(
            charts.spectrum(
                "qc-af",
                [b["af"] for b in spectrum],
                {"SNPs": [b["snps"] for b in spectrum], "indels": [b["indels"] for b in spectrum]},
                caption="SNP and indel alleles per allele-frequency bin (a bin starts at its x), whole run.",
            )
        )
        parts.append(
            "<details><summary>the bins</summary>"
            + _table(
                "qc-af-bins",
                ("allele frequency from", "SNPs", "transitions", "transversions", "indels"),
                [(f"{b['af']:.3f}", *(_n(b[k]) for k in ("snps", "ts", "tv", "indels"))) for b in spectrum],
            )
            + "</details>"
        )
    samples = run["samples"]
    if samples:
        names = sorted(samples)
        shown = names[:MAX_SAMPLE_ROWS]
        listed = (
            f" The first {len(shown):,} of {len(names):,} by name; all are in <code>_manifest.json</code>."
        )
        parts.append(
            "<h3>Per sample</h3><p>Calls by genotype: hom-ref, het and hom-alt at SNP sites (as "
            "bcftools' PSC); calls with an indel allele; haploid and missing calls; mean depth "
            "(FORMAT/DP, else the sum of AD) over calls with a depth."
            + (listed if len(shown) < len(names) else "")
            + "</p>"
        )
        parts.append(
            charts.scatter(
                "qc-samples-het-hom",
                names,
                [samples[n]["het"] for n in names],
                [samples[n]["hom_alt"] for n in names],
                xlabel="het calls at SNP sites",
                ylabel="hom-alt calls at SNP sites",
                caption=f"One point per sample ({len(names):,}).",
            )
        )
        parts.append(
            f"<details><summary>the samples ({len(shown):,})</summary>"
            + _table(
                "qc-samples",
                ("sample", "hom-ref", "het", "hom-alt", "indel calls", "haploid ref", "haploid alt",
                 "missing", "mean depth"),
                [(n, *(_n(samples[n][k]) for k in SAMPLE_KEYS), _depth(samples[n]["mean_depth"]))
                 for n in shown],
            )
            + "</details>"
        )  # fmt: skip
    return parts


def _depth(value) -> str:
    return "-" if value is None else f"{value:.1f}"


def _ratio(value) -> str:
    return "-" if value is None else f"{value:.2f}"


def _partition_range(spec: dict, partition: int) -> tuple[str, str]:
    bounds = partition_bounds(spec, partition)
    return ("outside the range", "") if bounds is None else (_n(bounds[0]), _n(bounds[1]))


def _table(table_id: str, header: tuple[str, ...], rows: list[tuple[str, ...]], *, raw=(), attrs="") -> str:
    e = html.escape

    def cell(tag: str, i: int, value: str) -> str:
        numeric = value.replace(",", "").lstrip("-").isdigit() or value.startswith("<span")
        shown = value if i in raw else e(value)
        return f'<{tag} class="n">{shown}</{tag}>' if numeric else f"<{tag}>{shown}</{tag}>"

    head = "".join(f"<th>{e(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(cell("td", i, v) for i, v in enumerate(row)) + "</tr>" for row in rows)
    return f'<table id="{e(table_id)}" {attrs}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _n(value) -> str:
    return f"{value:,}" if isinstance(value, int) else str(value)
