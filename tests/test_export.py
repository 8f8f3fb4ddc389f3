"""`export`: VCF -> variant_etl -> VCF gives the same records, as bcftools reads both."""

from __future__ import annotations

import gzip
import json
from collections import Counter
from pathlib import Path

import numpy as np
import pysam
import pytest

from tests.conftest import TESTDATA, VT_VCF, bcftools_query, bcftools_view, run_cli
from tests.test_all_test_files import FILES


def parsed(view: str, valueless: frozenset = frozenset()) -> Counter:
    """bcftools' records, made comparable: INFO and each sample's FORMAT as sorted key=value
    pairs of numbers read as 32-bit floats, without missing values ('.' and absent mean the
    same) and without an END that REF implies (or one before POS, which htslib ignores); a Flag given a value ('DB=0') as set, as htslib
    reads it; samples by name."""
    records: Counter = Counter()
    samples: list[str] = []
    flags = set()
    for line in view.splitlines():
        if line.startswith("#CHROM"):
            samples = line.split("\t")[9:]
        elif line.startswith("##INFO=<") and "Type=Flag" in line:
            flags.add(line.split("ID=", 1)[1].split(",", 1)[0])
        if line.startswith("#"):
            continue
        columns = line.split("\t")
        ignored_end = _ignored_end(columns)
        entries = [e.split("=", 1)[0] if e.split("=", 1)[0] in flags else e for e in columns[7].split(";")]
        kept = [e for e in entries if e not in (".", ignored_end, *valueless) and not _missing(e)]
        info = tuple(sorted(_canonical(e) for e in kept))
        calls = []
        if len(columns) > 8:
            keys = columns[8].split(":")
            for name, text in zip(samples, columns[9:]):
                values = tuple(
                    sorted((k, _canonical(v)) for k, v in zip(keys, text.split(":")) if not _missing(v))
                )
                if values:
                    calls.append((name, values))
        records[(*columns[:7], info, tuple(sorted(calls)))] += 1
    return records


def _ignored_end(columns: list[str]) -> str:
    """The INFO/END entry that carries nothing: the one REF implies, or one before POS (htslib
    ignores it, with a warning, and takes the end from REF)."""
    pos, implied = int(columns[1]), int(columns[1]) + len(columns[3]) - 1
    for entry in columns[7].split(";"):
        if entry.startswith("END="):
            end = float(entry[4:])
            return entry if end == implied or end < pos else ""
    return ""


def _canonical(entry: str) -> str:
    """KEY=1.000,-0.00 -> KEY=1.0,-0.0 (values as 32-bit numbers): bcftools writes the values of
    a field the original header does not declare as they stand, and declared ones as numbers."""
    key, equals, value = entry.rpartition("=") if "=" in entry else ("", "", entry)
    parts = []
    for part in value.split(","):
        try:
            parts.append(str(np.float32(float(part))) if part not in ("nan", "inf", "-inf") else part)
        except ValueError:
            parts.append(part)
    return f"{key}{equals}{','.join(parts)}"


def _missing(value: str) -> bool:
    value = value.split("=", 1)[-1]
    return all(part in (".", "") for part in value.replace("|", ",").replace("/", ",").split(","))


def load_and_export(corpus_output, tmp_path: Path, name: str, *extra: str) -> tuple[Path, Path]:
    """The launch of a corpus file (--infer_headers --allow_malformed_records, shared with
    test_all_test_files), exported to tmp_path."""
    out = corpus_output(name)
    vcf = tmp_path / "exported.vcf.gz"
    result = run_cli("export", "--input_parquet_dir", str(out), "--output_vcf", str(vcf), *extra)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    return out, vcf


def without_malformed(expected: Counter, out: Path) -> Counter:
    """The original's records less those refused as malformed (found by their raw line)."""
    entries = [json.loads(line) for f in sorted(out.glob("_malformed/*.jsonl")) for line in f.open()]
    for entry in entries:
        chrom, pos, _id, ref, alt = entry["raw"].split("\t")[:5]
        matches = [
            key
            for key in expected
            if key[0] == chrom and key[3:5] == (ref, alt) and (key[1] == pos or not pos.isdigit())
        ]
        assert matches, entry
        expected[matches[0]] -= 1
    return +expected


# bcftools cannot read these originals (they break the spec): the export is checked against
# the rows the load wrote instead.
UNREADABLE_BY_BCFTOOLS = {
    "real/hts-specs/failed_body_sample_003.vcf": "a sample with more sub-fields than FORMAT keys",
    "vt/vcf/infer-header-fields.vcf": "'.' inside an Integer FORMAT value",
    "vt/vcf/invalid-4.2-AF-mismatch.vcf": "values that contradict their Type",
    "vt/vcf/preprocessor/invalid-4.0.vcf": "a POS that is a space",
}


# Keys used both bare and with a value in one file: --infer_headers makes them Integer, and
# their bare uses are read as missing (htslib reads a valueless Integer so): not compared.
VALUELESS = {"real/hts-specs/passed_body_info.vcf": frozenset({"H2", "H3", "SOMATIC", "VALIDATED", "1000G"})}


@pytest.mark.slow
@pytest.mark.parametrize("name", FILES)
def test_round_trip_keeps_records_alleles_info_and_format_values(corpus_output, tmp_path, name):
    source = TESTDATA / name
    out, vcf = load_and_export(corpus_output, tmp_path, name)
    assert Path(str(vcf) + ".tbi").exists() or Path(str(vcf) + ".csi").exists()
    if name in UNREADABLE_BY_BCFTOOLS:
        written = json.loads((out / "_manifest.json").read_text())["totals"]["rows_written"]
        assert sum(parsed(bcftools_view(vcf)).values()) == written
        return
    valueless = VALUELESS.get(name, frozenset())
    expected = without_malformed(parsed(bcftools_view(source), valueless), out)
    exported = parsed(bcftools_view(vcf), valueless)
    # Records loaded with their Number=A values matched to the ALTs (--allow_malformed_records;
    # vcf_file.bcf's AC of 2 values for 305 ALTs) export as loaded: one value per ALT. Every
    # other record round-trips.
    matched = json.loads((out / "_manifest.json").read_text())["totals"]["number_a_values_matched"]
    assert sum((expected - exported).values()) == sum((exported - expected).values()) == matched


def test_regions_and_samples(corpus_output, tmp_path):
    out, vcf = load_and_export(
        corpus_output,
        tmp_path,
        "vt/vcf/valid-4.0.vcf",
        "--genomic_regions",
        "20:1110696-1230237",
        "19",
        "--sample_names",
        "NA00002",
    )
    with pysam.VariantFile(str(vcf)) as exported:
        assert list(exported.header.samples) == ["NA00002"]
        rows = [(r.chrom, r.pos, r.samples["NA00002"]["GT"]) for r in exported.fetch()]
    assert rows == [("19", 1234567, (0, 2)), ("20", 1110696, (2, 1)), ("20", 1230237, (0, 0))]
    with pysam.VariantFile(str(vcf)) as exported:  # the index works
        assert [r.pos for r in exported.fetch("20", 1110695, 1110696)] == [1110696]


def test_a_region_selects_the_variants_that_overlap_it(corpus_output, tmp_path):
    # microsat1 (19:1234567, REF GTCT) covers 1234567-1234570
    out, vcf = load_and_export(
        corpus_output, tmp_path, "vt/vcf/valid-4.0.vcf", "--genomic_regions", "19:1234570-1234600"
    )
    with pysam.VariantFile(str(vcf)) as exported:
        assert [r.id for r in exported.fetch()] == ["microsat1"]


@pytest.mark.parametrize(
    "args, message",
    [
        (("--sample_names", "NOBODY"), "--sample_names: no sample 'NOBODY'"),
        (("--genomic_regions", "20:10-5"), "--genomic_regions: bad region '20:10-5'"),
    ],
)
def test_export_errors(corpus_output, tmp_path, args, message):
    out = corpus_output("vt/vcf/valid-4.0.vcf")
    result = run_cli(
        "export", "--input_parquet_dir", str(out), "--output_vcf", str(tmp_path / "x.vcf.gz"), *args
    )
    assert result.returncode == 2 and message in result.stderr and "Traceback" not in result.stderr


def test_export_of_a_directory_that_is_not_an_output(tmp_path):
    result = run_cli(
        "export", "--input_parquet_dir", str(tmp_path), "--output_vcf", str(tmp_path / "x.vcf.gz")
    )
    assert result.returncode == 2 and "no _manifest.json" in result.stderr


MERGE_INPUTS = sorted((VT_VCF / "merge").glob("merge*.vcf"))
MERGE_FLAGS = (
    "--variant_merge_strategy", "MOVE_TO_CALLS", "--info_keys_to_move_to_calls_regex", "NS|AF",
    "--copy_quality_to_calls", "--copy_filter_to_calls",
)  # fmt: skip


def per_sample(path: Path, fmt: str) -> set[tuple[str, ...]]:
    """bcftools query output as (site..., sample...) tuples, one per sample with a call."""
    out = set()
    for line in bcftools_query(path, fmt).splitlines():
        site, *samples = line.split("\t|")
        for sample in samples:
            values = tuple(sample.split("\t"))
            if values[1] != ".":  # GT: a sample without a call at this site
                out.add((*site.split("\t"), *values))
    return out


def test_merged_output_comes_back_per_file(tmp_path):
    """MOVE_TO_CALLS of three files: each sample's values at each site are those of its own
    file's record, moved INFO fields (NS, AF) and the record's QUAL and FILTER included (as
    FORMAT fields NS, AF, QUAL and FT)."""
    out = tmp_path / "out"
    args = ["launch", "--output_parquet_dir", str(out), *MERGE_FLAGS]
    for path in MERGE_INPUTS:
        args += ["--input_pattern", str(path)]
    assert run_cli(*args).returncode == 0
    vcf = tmp_path / "merged.vcf.gz"
    result = run_cli("export", "--input_parquet_dir", str(out), "--output_vcf", str(vcf))
    assert result.returncode == 0, result.stderr
    expected = set()
    for path in MERGE_INPUTS:
        fmt = "%CHROM\t%POS\t%REF\t%ALT[\t|%SAMPLE\t%GT\t%GQ\t%DP\t%HQ\t%INFO/NS\t%INFO/AF\t%QUAL\t%FILTER]\n"
        expected |= per_sample(path, fmt)
    exported = per_sample(
        vcf, "%CHROM\t%POS\t%REF\t%ALT[\t|%SAMPLE\t%GT\t%GQ\t%DP\t%HQ\t%NS\t%AF\t%QUAL\t%FT]\n"
    )
    assert exported == expected and len(expected) == 10
    header = gzip.decompress(vcf.read_bytes()).decode()
    assert '##FORMAT=<ID=AF,Number=A,Type=Float,Description="Allele Frequency">' in header
    assert "##INFO=<ID=AF," not in header and "##FORMAT=<ID=FT," in header


@pytest.fixture(scope="module")
def overlapping_output(tmp_path_factory):
    """Three files on the same sites, not merged (the second a copy of the first under other
    sample names: equal records at every site; the third shifted by one base), each read in
    byte ranges (a file key each: 3 to 15 overlapping files a shard), in small row groups; the
    residual shard holds many contigs in each file."""
    from tests.conftest import generate_vcf

    root = tmp_path_factory.mktemp("overlapping")
    first = generate_vcf(root / "a.vcf", 3000, 2)
    text = first.read_text()
    (root / "b.vcf").write_text(text.replace("SAMPLE", "OTHER"))
    shifted = [_shift(line) for line in text.replace("SAMPLE", "THIRD").splitlines()]
    (root / "c.vcf").write_text("\n".join(shifted) + "\n")
    out = root / "out"
    result = run_cli(
        "launch", "--input_pattern", str(root / "*.vcf"), "--output_parquet_dir", str(out),
        "--parquet_row_group_size", "300", "--read_split_bytes", "200000",
        "--sharding_config_path", str(TESTDATA / "vt" / "sharding_configs" / "residual_at_end.yaml"),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return root, out


def _shift(line: str) -> str:
    if line.startswith("#"):
        return line
    chrom, pos, rest = line.split("\t", 2)
    return f"{chrom}\t{int(pos) + 1}\t{rest}"


@pytest.mark.parametrize(
    "regions", [[], ["chr1:1000000-50000000", "chr2", "chr7:1-1000000", "chr7:90000000-91000000"]]
)
def test_overlapping_files_are_merged_in_order_in_small_batches(overlapping_output, monkeypatch, regions):
    """The streamed order (each contig's runs of rows merged as they are read, a few rows at a
    time, row groups outside the regions skipped) is a full sort by contig (header order),
    position, end, REF, ALTs, file and row: as DuckDB sorts all the selected rows at once."""
    import duckdb
    import pyarrow as pa

    from variant_etl.outputs import export, scan
    from variant_etl.outputs.selection import select

    _, out = overlapping_output
    selection = select(str(out), regions, [])
    header = export._run_header(str(out))
    assert len(selection.files) > 10 and any("all_remaining" in f for f in selection.files)
    monkeypatch.setattr(scan, "VALUES_IN_FLIGHT", 1)  # 16 rows a batch
    batches = list(scan.ordered_batches(selection.files, header.contigs, selection.regions))
    assert max(len(b) for b in batches) <= 16
    streamed = pa.Table.from_batches(batches)
    columns = ["reference_name", "start_position", "end_position", "reference_bases", "names"]
    expected = duckdb.execute(
        f"SELECT {', '.join(columns)}, [c.sample_id FOR c IN call] AS ids "
        f"FROM read_parquet(?, filename = true, file_row_number = true) WHERE {selection.where} "
        "ORDER BY list_position(?, reference_name) NULLS LAST, reference_name, start_position, end_position, "
        "reference_bases, array_to_string([a.alt FOR a IN alternate_bases], ','), "
        "list_position(?, filename), file_row_number",
        [list(selection.files), *selection.params, list(header.contigs), list(selection.files)],
    ).fetchall()
    assert len(expected) == (9000 if not regions else 849)
    ids = [[c["sample_id"] for c in calls] for calls in streamed.column("call").to_pylist()]
    assert list(zip(*[streamed.column(c).to_pylist() for c in columns], ids)) == [tuple(r) for r in expected]


def test_export_of_overlapping_files_is_sorted_and_indexed(overlapping_output, tmp_path):
    root, out = overlapping_output
    vcf = tmp_path / "all.vcf.gz"
    assert run_cli("export", "--input_parquet_dir", str(out), "--output_vcf", str(vcf)).returncode == 0
    expected = sum((parsed(bcftools_view(root / f"{n}.vcf")) for n in "abc"), Counter())
    with pysam.VariantFile(str(vcf)) as exported:
        contigs = list(exported.header.contigs)
        keys = [(contigs.index(r.chrom), r.pos) for r in exported]
        assert keys == sorted(keys) and len(keys) == 9000
        # the index finds every record of a contig, the copies of a site together
        assert len(list(exported.fetch("chr2"))) == sum(1 for k in keys if contigs[k[0]] == "chr2")
    assert parsed(bcftools_view(vcf)) == expected  # every record, each sample's values
    assert oct(vcf.stat().st_mode & 0o777) == oct(0o666 & ~_umask())


@pytest.mark.parametrize("regions", [[], ["chr1:1000000-50000000", "chr2", "chr7:1-1000000", "chr7"]])
def test_pieces_hold_each_row_once_in_order(overlapping_output, regions):
    """The pieces of a pipeline export, one after the other, are ordered_batches: cut inside
    contigs (at row groups' first starts), every selected row in exactly one piece."""
    import pyarrow as pa

    from variant_etl.outputs import export, scan
    from variant_etl.outputs.selection import select

    _, out = overlapping_output
    selection = select(str(out), regions, [])
    contigs = export._run_header(str(out)).contigs
    whole = pa.Table.from_batches(list(scan.ordered_batches(selection.files, contigs, selection.regions)))
    pieces = scan.plan_pieces(selection.files, contigs, selection.regions, 100)
    assert [p.number for p in pieces] == list(range(len(pieces)))
    assert len(pieces) > len({p.contig for p in pieces})  # some contigs in several pieces
    for before, after in zip(pieces, pieces[1:]):
        assert before.contig != after.contig or before.last_start + 1 == after.first_start
    joined = pa.Table.from_batches([b for p in pieces for b in p.batches()], schema=whole.schema)
    assert whole.num_rows == (9000 if not regions else 1314)
    assert joined.equals(whole)


def test_export_with_beam_options_writes_the_pieces_in_a_pipeline(overlapping_output, tmp_path, monkeypatch):
    """`export --runner DirectRunner`: a pipeline writes each piece to a part (in whole bgzip
    blocks), the command joins them: the same text as the streamed export, indexed, and the
    parts' directory gone."""
    from variant_etl.outputs import export

    _, out = overlapping_output
    monkeypatch.setattr(export, "VALUES_PER_PIECE", 100)  # about 30 pieces
    args = (
        "--genomic_regions",
        "chr1",
        "chr2:1-100000000",
        "chr7",
        "--sample_names",
        "SAMPLE0001",
        "THIRD0000",
    )
    streamed, piped = tmp_path / "streamed.vcf.gz", tmp_path / "piped.vcf.gz"
    said = []
    for vcf, beam in ((streamed, ()), (piped, ("--runner", "DirectRunner", "--direct_num_workers", "2"))):
        result = run_cli("export", "--input_parquet_dir", str(out), "--output_vcf", str(vcf), *args, *beam)
        assert result.returncode == 0, result.stderr
        said.append(result.stdout.split(" to ")[0])
    assert said == ["wrote 1479 records of 2 sample(s)"] * 2
    assert gzip.decompress(piped.read_bytes()) == gzip.decompress(streamed.read_bytes())
    with pysam.VariantFile(str(piped)) as exported:
        assert (
            len(list(exported.fetch("chr2", 0, 50_000_000)))
            == len(list(pysam.VariantFile(str(streamed)).fetch("chr2", 0, 50_000_000)))
            > 0
        )
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["streamed.vcf.gz", "streamed.vcf.gz.tbi", "piped.vcf.gz", "piped.vcf.gz.tbi"]
    )


def test_a_pipeline_export_refuses_bigquery_tables_and_names_missing_parts(overlapping_output, tmp_path):
    from variant_etl.core.errors import OutputError
    from variant_etl.outputs import export

    result = run_cli(
        "export",
        "--input_table",
        "p:d.t",
        "--output_vcf",
        str(tmp_path / "x.vcf"),
        "--runner",
        "DirectRunner",
    )
    assert result.returncode == 2 and "export --input_table runs no pipeline" in result.stderr
    _, out = overlapping_output
    with pytest.raises(OutputError, match=r"piece 0 \(chr1\) of \d+ was not written"):
        export.export_vcf(str(tmp_path / "x.vcf.gz"), input_parquet_dir=str(out), run_parts=lambda *_: None)
    assert list(tmp_path.iterdir()) == []


def _umask() -> int:
    import os

    mask = os.umask(0)
    os.umask(mask)
    return mask
