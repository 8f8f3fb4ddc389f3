"""Merge strategies end to end, against models of the rules written independently here."""

from __future__ import annotations

import hashlib
import json
import re
from collections import defaultdict
from pathlib import Path

import duckdb
import pytest

from tests.conftest import REPO, VT_VCF, run_cli

MERGE_FILES = sorted((VT_VCF / "merge").glob("*.vcf"))
GVCFS = sorted((REPO / "tests" / "data" / "gvcf").glob("*.g.vcf"))
# Options of launches that several tests read (MOVE_TO_CALLS in buckets of the default 10,000,000 bases).
MOVE_TO_CALLS_ARGS = ("--variant_merge_strategy", "MOVE_TO_CALLS", "--include_call_name")


def merge_with_non_variants(bucket_size: int) -> tuple[str, ...]:
    return (
        "--variant_merge_strategy", "MERGE_WITH_NON_VARIANTS", "--include_call_name",
        "--merge_bucket_size", str(bucket_size),
    )  # fmt: skip


def launch(out: Path, inputs, *extra: str):
    args = ["launch", "--output_parquet_dir", str(out)]
    for path in inputs:
        args += ["--input_pattern", str(path)]
    result = run_cli(*args, *extra)
    assert result.returncode == 0, result.stderr
    return json.loads((out / "_manifest.json").read_text())


def shared(shared_launch, inputs, *extra: str) -> tuple[Path, dict]:
    """The launch of these inputs and options, run once for the tests that read it (see
    conftest.shared_launch): its output and manifest."""
    args = [arg for path in inputs for arg in ("--input_pattern", str(path))]
    result, out = shared_launch(*args, *extra)
    assert result.returncode == 0, result.stderr
    return out, json.loads((out / "_manifest.json").read_text())


def rows(out: Path, columns: str) -> list[tuple]:
    query = f"SELECT {columns} FROM read_parquet('{out}/*/*.parquet') ORDER BY reference_name, start_position, end_position"
    return duckdb.connect().execute(query).fetchall()


def text_records(paths):
    """(file, sample names, record columns) straight from the text: no VCF library."""
    for path in paths:
        samples = []
        for line in Path(path).read_text().splitlines():
            if line.startswith("#CHROM"):
                samples = line.rstrip().split("\t")[9:]
            elif line.strip() and not line.startswith("#"):
                yield path, samples, line.rstrip("\t").split("\t")


def gt_of(column: str) -> str:
    return column.split(":")[0]


def gt_text(call: dict) -> str:
    separator = "|" if call["phaseset"] is not None else "/"
    return separator.join("." if g < 0 else str(g) for g in call["genotype"])


def test_move_to_calls_on_the_vt_merge_files(shared_launch):
    # The rules, restated: one row per (CHROM, POS, REF, ALT); names and filters are sorted
    # unions; quality the maximum; calls sorted by sample name then file.
    sites = defaultdict(list)
    for path, samples, cols in text_records(MERGE_FILES):
        sites[(cols[0], int(cols[1]) - 1, cols[3], cols[4])].append((path, samples, cols))
    expected = []
    for (chrom, start, ref, alt), records in sorted(sites.items()):
        names = sorted({n for _, _, c in records for n in c[2].split(";") if n != "."})
        filters = sorted({f for _, _, c in records for f in c[6].split(";") if f != "."})
        quality = max(float(c[5]) for _, _, c in records)
        calls = sorted(
            (name, str(path), gt_of(value))
            for path, samples, c in records
            for name, value in zip(samples, c[9:])
        )
        expected.append(
            (chrom, start, ref, alt.split(","), names, quality, filters, [(n, g) for n, _, g in calls])
        )
    out, manifest = shared(shared_launch, MERGE_FILES, *MOVE_TO_CALLS_ARGS)
    found = rows(
        out,
        "reference_name, start_position, reference_bases, [a.alt for a in alternate_bases], names, quality, filter, "
        "call",
    )
    found = [(*r[:7], [(c["name"], gt_text(c)) for c in r[7]]) for r in found]
    assert found == sorted(expected, key=lambda e: (e[0], e[1]))
    totals = manifest["totals"]
    assert (totals["records_read"], totals["records_written"], totals["rows_written"]) == (7, 7, 4)
    assert manifest["variant_merge_strategy"] == "MOVE_TO_CALLS"


def test_move_to_calls_options(tmp_path):
    out = tmp_path / "out"
    launch(
        out, MERGE_FILES, "--variant_merge_strategy", "MOVE_TO_CALLS", "--include_call_name",
        "--copy_quality_to_calls", "--copy_filter_to_calls", "--info_keys_to_move_to_calls_regex", "^(NS|AA)$",
    )  # fmt: skip
    found = rows(out, "start_position, [(c.name, c.quality, c.filter, c.NS) for c in call]")
    site = dict(found)[14369]  # 20:14370 is in all three files, each with its own QUAL/FILTER/NS
    assert [tuple(c) for c in site] == [
        ("NA00001", 10.0, ["q10"], 2),
        ("NA00002", 10.0, ["q10"], 2),
        ("NA00003", 29.0, ["PASS"], 1),
        ("NA00004", 30.0, ["PASS"], 1),
    ]
    columns = {
        r[0]
        for r in duckdb.connect()
        .execute(f"DESCRIBE SELECT * FROM read_parquet('{out}/*/*.parquet')")
        .fetchall()
    }
    assert "NS" not in columns and "AA" not in columns and "DP" in columns


@pytest.mark.parametrize(
    "extra, message",
    [
        (
            ("--copy_quality_to_calls",),
            "--copy_quality_to_calls only apply with --variant_merge_strategy MOVE_TO_CALLS",
        ),
        (
            (
                "--variant_merge_strategy",
                "MERGE_WITH_NON_VARIANTS",
                "--info_keys_to_move_to_calls_regex",
                "X",
            ),
            "only apply",
        ),
        (
            ("--variant_merge_strategy", "MOVE_TO_CALLS", "--info_keys_to_move_to_calls_regex", "DP"),
            "the calls already have the FORMAT field 'DP'",
        ),
        (
            ("--variant_merge_strategy", "MOVE_TO_CALLS", "--info_keys_to_move_to_calls_regex", "(("),
            "not a valid regular expression",
        ),
    ],
)
def test_merge_option_errors(tmp_path, extra, message):
    result = run_cli(
        "launch", "--input_pattern", str(MERGE_FILES[0]), "--output_parquet_dir", str(tmp_path / "o"), *extra
    )
    assert result.returncode == 2 and message in result.stderr, result.stderr


def gvcf_model(paths, bucket_size: int):
    """The MERGE_WITH_NON_VARIANTS rules, restated position by position.

    Returns rows (chrom, start, end, alts, [(sample, GT)]) in position order.
    """
    variants = defaultdict(list)  # (chrom, start, end, ref, alt) -> [(sample, file, gt)]
    blocks = []  # (chrom, start, end, sample, file, gt)
    for path, samples, cols in text_records(paths):
        chrom, start, ref, alt = cols[0], int(cols[1]) - 1, cols[3], cols[4]
        info = dict(kv.split("=", 1) for kv in cols[7].split(";") if "=" in kv)
        end = int(info.get("END", start + len(ref)))
        calls = [(name, str(path), gt_of(v)) for name, v in zip(samples, cols[9:])]
        real_alts = [a for a in alt.split(",") if a not in ("<NON_REF>", "<*>", ".")]
        if real_alts:
            variants[(chrom, start, start + len(ref), alt)].extend(calls)
        else:
            blocks.extend((chrom, start, end, *call) for call in calls)
    covered = defaultdict(list)  # (chrom, pos) -> calls of blocks covering pos
    block_edges = defaultdict(set)
    for chrom, start, end, name, path, gt in blocks:
        for pos in range(start, end):
            covered[(chrom, pos)].append((name, path, gt))
        block_edges[chrom] |= {start, end}
    out = []
    variant_starts = defaultdict(set)
    for (chrom, start, end, alt), calls in variants.items():
        variant_starts[chrom].add(start)
        called = {name for name, _, _ in calls}
        extra = [c for c in covered.get((chrom, start), []) if c[0] not in called]
        out.append((chrom, start, end, alt.split(","), [(n, g) for n, _, g in sorted(calls + extra)]))
    for chrom in block_edges:
        positions = sorted(pos for c, pos in covered if c == chrom)
        cuts = block_edges[chrom] | variant_starts[chrom] | {v + 1 for v in variant_starts[chrom]}
        cuts |= {(p // bucket_size) * bucket_size for p in positions}
        piece = None
        for pos in positions:
            if pos in variant_starts[chrom]:
                piece = None
                continue
            calls = [(n, g) for n, _, g in sorted(covered[(chrom, pos)])]
            if piece is None or pos in cuts or pos != piece[2]:
                piece = [chrom, pos, pos + 1, None, calls]
                out.append(piece)
            else:
                piece[2] = pos + 1
    return sorted((r[0], r[1], r[2], r[4]) for r in out)


@pytest.mark.parametrize("bucket_size", [10_000_000, 64, 7])
def test_merge_with_non_variants_matches_the_model(shared_launch, bucket_size):
    out, manifest = shared(shared_launch, GVCFS, *merge_with_non_variants(bucket_size))
    found = rows(
        out,
        "reference_name, start_position, end_position, call",
    )
    found = [(r[0], r[1], r[2], [(c["name"], gt_text(c)) for c in r[3]]) for r in found]
    assert found == gvcf_model(GVCFS, bucket_size)
    totals = manifest["totals"]
    assert totals["records_read"] == totals["records_written"] == 11
    # no two non-variant rows of one sample overlap
    seen = defaultdict(list)
    for chrom, start, end, calls in found:
        for name, _ in calls:
            seen[(chrom, name)].append((start, end))
    for spans in seen.values():
        spans.sort()
        assert all(a_end <= b_start for (_, a_end), (b_start, _) in zip(spans, spans[1:]))


def data_file_digests(out: Path) -> dict[str, str]:
    return {
        str(p.relative_to(out)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(out.glob("*/*.parquet"))
    }


@pytest.mark.slow
@pytest.mark.parametrize("strategy", ["NONE", "MOVE_TO_CALLS", "MERGE_WITH_NON_VARIANTS"])
def test_output_is_byte_identical_whatever_workers_and_file_order(tmp_path, strategy):
    inputs = [*GVCFS, *MERGE_FILES] if strategy != "MERGE_WITH_NON_VARIANTS" else GVCFS
    first = tmp_path / "a"
    launch(first, inputs, "--variant_merge_strategy", strategy, "--direct_num_workers", "1",
           "--direct_running_mode", "in_memory")  # fmt: skip
    second = tmp_path / "b"
    bucket = ("--merge_bucket_size", "10000000") if strategy != "NONE" else ()  # (NONE refuses it)
    launch(second, list(reversed(inputs)), "--variant_merge_strategy", strategy, "--direct_num_workers", "2",
           "--direct_running_mode", "multi_processing", *bucket)  # fmt: skip
    assert data_file_digests(first) == data_file_digests(second)
    assert len(data_file_digests(first)) > 1


def test_sample_info_and_sample_name_encoding(tmp_path):
    out = tmp_path / "out"
    launch(out, MERGE_FILES, "--sample_name_encoding", "WITH_FILE_PATH")
    info = (
        duckdb.connect()
        .execute(f"SELECT sample_id, sample_name, file_path FROM '{out}/__sample_info.parquet'")
        .fetchall()
    )
    assert [(name, Path(path).name) for _, name, path in info] == [
        ("NA00001", "merge1.vcf"), ("NA00002", "merge1.vcf"), ("NA00003", "merge2.vcf"), ("NA00004", "merge3.vcf"),
    ]  # fmt: skip
    # gcp-variant-transforms' id with the file path: farmhash of '["<path, non-word chars as _>_<name>"]'
    import farmhash

    for number, name, path in info:
        composite = re.sub(r"\W", "_", path) + "_" + name
        assert number == farmhash.fingerprint64(json.dumps([composite])) % 2**63
    ids = {r[0] for r in rows(out, "UNNEST(call).sample_id")}
    assert ids == {r[0] for r in info}


def indexed_copies(tmp_path: Path, paths) -> list[Path]:
    """bgzip + tabix copies of the inputs (htslib's own tools, built into pysam)."""
    import pysam

    copies = []
    for path in paths:
        target = tmp_path / "indexed" / (path.name + ".gz")
        target.parent.mkdir(exist_ok=True)
        text = tmp_path / "indexed" / path.name  # htslib refuses the trailing tabs we tolerate
        lines = [line.rstrip("\t") for line in path.read_text().splitlines() if line.strip()]
        text.write_text("\n".join(lines) + "\n")
        pysam.tabix_compress(str(text), str(target))
        pysam.tabix_index(str(target), preset="vcf")
        copies.append(target)
    return copies


@pytest.mark.parametrize(
    "inputs, extra",
    [(MERGE_FILES, MOVE_TO_CALLS_ARGS), (GVCFS, merge_with_non_variants(64))],
    ids=["MOVE_TO_CALLS", "MERGE_WITH_NON_VARIANTS"],
)
def test_indexed_inputs_merge_window_by_window_with_the_same_rows(shared_launch, tmp_path, inputs, extra):
    """The rows of indexed inputs, merged window by window, are those of the plain inputs (the
    launch of test_move_to_calls_on_the_vt_merge_files and of the model test with buckets of
    64), merged through a shuffle."""
    plain, _ = shared(shared_launch, inputs, *extra)
    indexed = tmp_path / "indexed_out"
    copies = indexed_copies(tmp_path, inputs)
    result = run_cli(
        "plan", "--format", "json", *[a for p in copies for a in ("--input_pattern", str(p))], *extra
    )
    assert json.loads(result.stdout)["region_splits"] > 0  # no shuffle: windows read through the index
    manifest = launch(indexed, copies, *extra)
    columns = "reference_name, start_position, end_position, reference_bases, alternate_bases, names, quality, filter, call"
    assert rows(indexed, columns) == rows(plain, columns)
    assert (
        manifest["totals"]["records_read"]
        == manifest["totals"]["records_written"]
        == sum(1 for _ in text_records(inputs))
    )


def test_move_to_calls_windows_hold_about_the_calls_the_indexes_count(tmp_path, monkeypatch):
    """Indexed MOVE_TO_CALLS inputs are read in windows of whole merge buckets, as many on a
    contig as hold about calls_per_window calls by the indexes' record counts (bcftools index
    -s); never narrower than a bucket. Without counts in an index: one window a bucket."""
    import pysam

    from variant_etl.core import regions
    from variant_etl.core.regions import RegionFile, plan_region_splits

    copies = indexed_copies(tmp_path, MERGE_FILES)
    files = [RegionFile(str(p), i, ("A", "B"), (2 * i, 2 * i + 1)) for i, p in enumerate(copies)]
    counts = {}
    for path in copies:
        records = {}
        for line in pysam.bcftools.index("-s", str(path)).splitlines():
            contig, _, number = line.split("\t")
            records[contig] = int(number)
            counts[contig] = counts.get(contig, 0) + 2 * int(number)
        assert regions.records_per_contig(str(path)) == records  # read from the .tbi by core/tabix.py
    assert counts == {"19": 4, "20": 10}  # calls: records x 2 samples

    def windows(bucket: int = 100_000, **per_window) -> dict[str, list[tuple[int, int]]]:
        found: dict[str, list[tuple[int, int]]] = {}
        for split in plan_region_splits(files, bucket, **per_window):
            found.setdefault(split.contig, []).append((split.start, split.end))
        for spans in found.values():  # each contig tiled, in whole buckets
            assert spans[0][0] == 0 and all(a[1] == b[0] for a, b in zip(spans, spans[1:]))
            assert all(start % bucket == 0 for start, _ in spans)
        return found

    def sizes(found) -> dict[str, int]:
        return {contig: len(spans) for contig, spans in found.items()}

    buckets = windows()
    assert sizes(buckets) == {"19": 5369, "20": 5369}  # 2^29 bases (no contig lengths) / 100,000
    assert sizes(windows(calls_per_window=1)) == {"19": 4, "20": 10}
    assert sizes(windows(calls_per_window=4)) == {"19": 1, "20": 3}
    assert sizes(windows(calls_per_window=1_000)) == {"19": 1, "20": 1}
    assert sizes(windows(300_000_000, calls_per_window=1)) == {"19": 2, "20": 2}  # never below a bucket

    def no_counts(*args):  # what bcftools says of an index without them
        raise pysam.utils.SamtoolsError("index of ... does not contain any count metadata")

    def no_index(path):  # an index core/tabix.py cannot read: bcftools is asked
        raise ValueError("an index without the pseudo-bin of a reference's span and counts")

    monkeypatch.setattr(pysam.bcftools, "index", no_counts)
    monkeypatch.setattr(regions, "text_index", no_index)
    assert windows(calls_per_window=1_000) == buckets
