"""The ``report`` command: one self-contained HTML page about a Parquet output.

Totals and per-input counts come from ``_manifest.json``; rows per shard and per partition
range of ``start_position`` are counted again from the shard files with DuckDB, so the page
shows what is on disk. Charts are inline SVG: the page opens offline, nothing is fetched.
"""

from __future__ import annotations

import html
import json
import os

import duckdb

from variant_etl.core.errors import OutputError
from variant_etl.core.layout import REPORT
from variant_etl.core.partitioning import USED_PARTITIONS
from variant_etl.outputs import storage

MAX_BARS = 100  # partitions are grouped into at most this many bars per shard


def partition_counts(out: str, shard: dict, con: duckdb.DuckDBPyConnection) -> list[tuple[int, int]]:
    """(partition index, rows) of each non-empty integer-range partition of the shard, as
    BigQuery would partition its start_position values (outside [start, end): the last one)."""
    files = [os.path.join(out, f["path"]) for f in shard["files"]]
    if not files:
        return []
    source, params = storage.shard_scan(con, files)
    spec = shard["partitioning"]["range"]
    start, end, interval = int(spec["start"]), int(spec["end"]), int(spec["interval"])
    query = (
        "SELECT CASE WHEN start_position < ? OR start_position >= ? THEN ? "
        f"ELSE (start_position - ?) // ? END AS p, count(*) FROM {source} GROUP BY p ORDER BY p"
    )
    rows = con.execute(query, [start, end, USED_PARTITIONS, start, interval, *params]).fetchall()
    return [(int(p), int(n)) for p, n in rows]


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
                "rows_counted": sum(n for _, n in partitions),
                "files": len(shard["files"]),
                "partitioning": shard["partitioning"],
                "partitions": partitions,
            }
        )
    con.close()
    return {"out": out, "manifest": manifest, "shards": shards}


def write_report(out: str, output: str | None = None) -> str:
    data = build_report(out)
    target = output or os.path.join(out, REPORT)
    storage.write_text(target, render(data))
    return target


# --- HTML ----------------------------------------------------------------------------------

_STYLE = """
body { font-family: sans-serif; margin: 2em; color: #222; max-width: 1100px }
table { border-collapse: collapse; margin: 0.5em 0 1.5em }
td, th { border: 1px solid #ccc; padding: 2px 8px; text-align: left }
td.n, th.n { text-align: right; font-variant-numeric: tabular-nums }
.bad { color: #b00; font-weight: bold }
svg rect.bar { fill: #4a78b5 } svg rect.bar:hover { fill: #e07b28 }
svg text { font-size: 11px; fill: #444 }
pre { background: #f6f6f6; padding: 1em; overflow: auto; max-height: 40em }
"""


def render(data: dict) -> str:
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
    parts.append("<h2>Rows per shard</h2>")
    shards = data["shards"]
    parts.append(
        _bar_chart(
            "rows-per-shard", [s["suffix"] for s in shards], [s["rows_counted"] for s in shards], "rows"
        )
    )
    rows = []
    for s in shards:
        spec = s["partitioning"]["range"]
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
                f"[{int(spec['start']):,}, {int(spec['end']):,}) by {int(spec['interval']):,}",
                _n(len(s["partitions"])),
            )
        )
    parts.append(
        _table(
            "shards",
            ("shard", "regions", "rows (manifest)", "rows (in files)", "files", "partitions", "non-empty"),
            rows,
            raw=(3,),
        )
    )
    parts.append(
        "<h2>Rows per partition range</h2><p>Each shard's BigQuery integer-range partitions of "
        "<code>start_position</code>, counted from its Parquet files with DuckDB; a bar groups "
        f"consecutive partitions when there are more than {MAX_BARS}. Partition {USED_PARTITIONS} "
        "holds values outside the range.</p>"
    )
    for s in shards:
        if not s["partitions"]:
            continue
        spec = s["partitioning"]["range"]
        start, interval = int(spec["start"]), int(spec["interval"])
        labels, values = _partition_bars(s["partitions"], start, interval)
        parts.append(f'<section class="shard" data-shard="{e(s["suffix"])}"><h3>{e(s["suffix"])}</h3>')
        parts.append(_bar_chart(f"partitions-{s['suffix']}", labels, values, "rows"))
        parts.append("<details><summary>non-empty partitions</summary>")
        # (a table of numbers only, written in one pass: it has a row per non-empty
        # partition: 95,252 for the benchmark's 1M sites in the default config)
        head = "".join(
            f"<th>{h}</th>" for h in ("partition", "start_position from", "to (exclusive)", "rows")
        )
        partitions = s["partitions"]
        cell = '<td class="n">{:,}</td>'
        row = "<tr>" + cell.replace(":,", "") + cell * 3 + "</tr>"
        parts.append(
            f'<table id="partitions-table-{e(s["suffix"])}" class="partitions" data-shard="{e(s["suffix"])}">'
            f"<thead><tr>{head}</tr></thead><tbody>"
            + "".join(
                row.format(p, start + p * interval, start + (p + 1) * interval, n) for p, n in partitions
            )
            + "</tbody></table>"
        )
        parts.append("</details></section>")
    parts.append("<h2>Manifest</h2>")
    parts.append(f'<pre id="manifest">{e(json.dumps(manifest, indent=2))}</pre>')
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


_KIND_NAMES = ("SNPs", "MNPs", "indels", "others", "multi-allelic", "no ALT")
MAX_SAMPLE_ROWS = 100  # samples listed in the report; _manifest.json has them all


def _qc_sections(found: dict | None) -> list[str]:
    """The QC figures of _manifest.json (counted as bcftools stats counts them)."""
    if not found:
        return []
    run = found["run"]
    shards = found["shards"]
    kinds = ("records", "snps", "mnps", "indels", "others", "multiallelic", "no_alts")  # _KIND_NAMES
    rows = [("whole run", *(_n(run[k]) for k in kinds), _ratio(run["ts_tv"]))]
    rows += [(name, *(_n(s[k]) for k in kinds), _ratio(s["ts_tv"])) for name, s in shards.items()]
    parts = [
        "<h2>Quality control</h2><p>Counted during the load, on the rows written, with the "
        "definitions of <code>bcftools stats</code> (its SN, TSTV, IDD, AF and PSC lines): a "
        "record counts once in each type its ALT alleles have; Ts/Tv over SNP alleles.</p>",
        _table("qc-records", ("", "records", *_KIND_NAMES, "Ts/Tv"), rows),
    ]
    lengths = run["indel_lengths"]
    if lengths:
        parts.append("<h3>Indel lengths</h3><p>ALT length less REF length (deletions negative), alleles.</p>")
        parts.append(_table("qc-indels", ("length", "alleles"), [(k, _n(v)) for k, v in lengths.items()]))
    spectrum = [b for b in run["allele_frequency"] if b["snps"] or b["indels"]]
    if spectrum:
        parts.append(
            "<h3>Allele frequency spectrum</h3><p>ALT alleles by AC/AN (from INFO, else from the "
            f"calls), in bins of bcftools stats; singletons (AC=1, or no AC/AN) are in the first bin: "
            f"{_n(run['singletons']['snps'])} SNPs and {_n(run['singletons']['indels'])} indels.</p>"
        )
        parts.append(
            _table(
                "qc-af",
                ("allele frequency from", "SNPs", "transitions", "transversions", "indels"),
                [
                    (f"{b['af']:.3f}", _n(b["snps"]), _n(b["ts"]), _n(b["tv"]), _n(b["indels"]))
                    for b in spectrum
                ],
            )
        )
    samples = run["samples"]
    if samples:
        names = sorted(samples)
        shown = names[:MAX_SAMPLE_ROWS]
        more = len(names) - len(shown)
        listed = f" The first {len(shown):,} of {len(names):,}; all are in <code>_manifest.json</code>."
        parts.append(
            "<h3>Per sample</h3><p>Calls by genotype: hom-ref, het and hom-alt at SNP sites (as "
            "bcftools' PSC); calls with an indel allele; haploid and missing calls; mean depth "
            "(FORMAT/DP, else the sum of AD) over calls with a depth." + (listed if more else "") + "</p>"
        )
        keys = ("hom_ref", "het", "hom_alt", "indels", "hap_ref", "hap_alt", "missing")
        parts.append(
            _table(
                "qc-samples",
                ("sample", "hom-ref", "het", "hom-alt", "indel calls", "haploid ref", "haploid alt",
                 "missing", "mean depth"),
                [(n, *(_n(samples[n][k]) for k in keys), _ratio(samples[n]["mean_depth"])) for n in shown],
            )
        )  # fmt: skip
    return parts


def _ratio(value) -> str:
    return "-" if value is None else f"{value:.2f}"


def _partition_bars(partitions: list[tuple[int, int]], start: int, interval: int):
    """Bars over the non-empty partitions' span; grouped when there are too many."""
    in_range = [(p, n) for p, n in partitions if p < USED_PARTITIONS]
    labels, values = [], []
    if in_range:
        first, last = in_range[0][0], in_range[-1][0]
        width = max(1, -(-(last - first + 1) // MAX_BARS))
        counts: dict[int, int] = {}
        for p, n in in_range:
            counts[(p - first) // width] = counts.get((p - first) // width, 0) + n
        for bar in range((last - first) // width + 1):
            low = start + (first + bar * width) * interval
            labels.append(f"{low:,}-{low + width * interval:,}")
            values.append(counts.get(bar, 0))
    outside = sum(n for p, n in partitions if p >= USED_PARTITIONS)
    if outside:
        labels.append("out of range")
        values.append(outside)
    return labels, values


def _bar_chart(chart_id: str, labels: list[str], values: list[int], unit: str) -> str:
    e = html.escape
    width, height, left, bottom = 1000, 220, 60, 20
    top = max(values, default=0) or 1
    step = (width - left) / max(1, len(values))
    bars = []
    for i, (label, value) in enumerate(zip(labels, values)):
        h = (height - bottom - 10) * value / top
        x, y = left + i * step, height - bottom - h
        bars.append(
            f'<rect class="bar" x="{x:.1f}" y="{y:.1f}" width="{max(step - 1, 0.5):.1f}" height="{h:.1f}" '
            f'data-label="{e(label)}" data-value="{value}"><title>{e(label)}: {value:,} {unit}</title></rect>'
        )
    every = max(1, len(labels) // 12)  # a readable number of axis labels
    ticks = [
        f'<text x="{left + i * step + step / 2:.1f}" y="{height - 5}" '
        f'text-anchor="middle">{e(_tick(label))}</text>'
        for i, label in enumerate(labels)
        if i % every == 0
    ]
    axis = (
        f'<text x="{left - 5}" y="14" text-anchor="end">{top:,}</text>'
        f'<text x="{left - 5}" y="{height - bottom}" text-anchor="end">0</text>'
        f'<line x1="{left}" y1="{height - bottom}" x2="{width}" y2="{height - bottom}" stroke="#888"/>'
    )
    return (
        f'<svg id="{e(chart_id)}" class="chart" xmlns="http://www.w3.org/2000/svg" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}" role="img">'
        f"{axis}{''.join(bars)}{''.join(ticks)}</svg>"
    )


def _tick(label: str) -> str:
    """An axis label short enough to sit under a bar: a range by its start, in k or M."""
    low = label.split("-", 1)[0].replace(",", "")
    if not low.isdigit():
        return label
    value = int(low)
    if value >= 10**6:
        return f"{value / 10**6:.1f}M"
    return f"{value / 10**3:.0f}k" if value >= 10**3 else str(value)


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
