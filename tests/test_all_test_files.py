"""Every file in shared/testdata (real/ and vt/vcf/) against bcftools: read by the reader (the
quick check), and loaded with `launch` (slow: a pipeline per file, whose outputs test_export
exports again)."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import duckdb
import pytest
from pysam.utils import SamtoolsError

from tests.conftest import REAL, TESTDATA, VT_VCF, bcftools_positions, bcftools_query, run_cli
from tests.test_launch import check_manifest_adds_up, default_shard

# file -> malformed records expected, with the reason they are malformed
# Records loaded with --allow_malformed_records whose Number=A INFO values (under
# alternate_bases) were matched to the ALTs by index, as gcp-variant-transforms did: not
# malformed, but their values are not bcftools', so the files are not compared with it.
# (With --infer_headers, a text VCF's mismatched counts correct the definition to Number=.
# instead: infer-header-fields.vcf's and invalid-4.2-AF-mismatch.vcf's AF are lists.)
MATCHED = {
    "real/htslib/vcf_file.bcf": 1,  # AC: 2 values for 305 ALTs (inference reads no BCF records)
}
# Malformed records, with --allow_malformed_records.
MALFORMED = {
    # (with --infer_headers, NS=3,2,1 under Number=1 in incompatible-field-value.vcf and DP=4.2
    # under Type=Integer in infer-header-fields.vcf correct the definitions instead)
    "vt/vcf/invalid-4.0-POS-empty.vcf": 1,  # POS empty
    "vt/vcf/preprocessor/invalid-4.0.vcf": 1,  # POS is a space
    "real/hts-specs/failed_body_sample_003.vcf": 1,  # 4 sample sub-fields under a 3-key FORMAT
    "real/hts-specs/passed_body_alt.vcf": 1,  # line 22: ALT '.' but GT '0|1' (no allele 1 to point at)
}
# Files whose records bcftools reads but whose values it refuses to print (bcftools query stops).
UNCOMPARED = {
    "vt/vcf/infer-header-fields.vcf",  # FORMAT/DP=4.2 under Type=Integer: "VCF parse error"
}
FILES = sorted(
    str(p.relative_to(TESTDATA))
    for folder in (REAL, VT_VCF)
    for p in folder.rglob("*")
    if p.suffix in (".vcf", ".bcf", ".gz", ".bz2") and p.name != "failed_body_sample_011.vcf"
)


def gt_text(genotype: list[int], phaseset: str | None) -> str:
    if not genotype:
        return "."
    return ("|" if phaseset is not None else "/").join("." if a < 0 else str(a) for a in genotype)


@pytest.mark.parametrize("name", FILES)
def test_file_is_read_as_bcftools_reads_it(tmp_path, name):
    """Each test file, through the reader on the plan `launch --infer_headers
    --allow_malformed_records` makes, against bcftools: the records read, the malformed ones,
    and the sites, alleles and genotypes of the others."""
    from tests.core.test_textparse import plan_for, read_all

    path = TESTDATA / name
    plan = plan_for(path, tmp_path)
    rows, malformed, records_read = [], 0, 0
    for split in plan.splits:
        table, letters, count = read_all(plan, split, fast=True)
        rows += table.to_pylist() if table is not None else []
        malformed += len(letters)
        records_read += count
    expected_positions = _positions(path)
    assert records_read == len(expected_positions)
    assert malformed == MALFORMED.get(name, 0)
    if name in MALFORMED or name in MATCHED or name in UNCOMPARED or not expected_positions:
        return
    sites = [
        (r["reference_name"], r["start_position"], r["reference_bases"], r["alternate_bases"], r.get("call"))
        for r in rows
    ]
    assert our_sites(sites) == bcftools_sites(path)


@pytest.mark.slow
@pytest.mark.parametrize("name", FILES)
def test_file_rows_positions_alleles_and_genotypes(corpus_output, name):
    """Each test file, loaded with --infer_headers --allow_malformed_records, against bcftools:
    the manifest adds up, and the rows per shard and their sites, alleles and genotypes."""
    path = TESTDATA / name
    out = corpus_output(name)
    manifest = check_manifest_adds_up(out)
    expected_positions = _positions(path)
    assert manifest["totals"]["records_read"] == len(expected_positions)
    assert manifest["totals"]["malformed"] == MALFORMED.get(name, 0)
    assert manifest["totals"]["number_a_values_matched"] == MATCHED.get(name, 0)
    if name in MALFORMED or name in MATCHED or name in UNCOMPARED or not expected_positions:
        return
    shards = {s["table_name_suffix"]: s["rows"] for s in manifest["shards"] if s["rows"]}
    assert shards == dict(Counter(default_shard(chrom) for chrom, _ in expected_positions))

    rows = (
        duckdb.connect()
        .execute(
            f"SELECT reference_name, start_position, reference_bases, alternate_bases, "
            f"{'call' if 'call' in _columns(out) else 'NULL'} FROM read_parquet('{out}/*/*.parquet')"
        )
        .fetchall()
    )
    assert our_sites(rows) == bcftools_sites(path)


def our_sites(rows) -> Counter:
    """(CHROM, POS, REF, ALT, GTs) of rows (reference_name, start_position, reference_bases,
    alternate_bases, call), as bcftools query writes them."""
    ours = Counter()
    for chrom, start, ref, alts, calls in rows:
        alt = ",".join(a["alt"] or "." for a in alts) or "."
        gts = tuple(gt_text(c["genotype"], c["phaseset"]) for c in calls or [])
        ours[(chrom, start + 1, ref, alt, gts)] += 1
    return ours


def bcftools_sites(path: Path) -> Counter:
    theirs = Counter()
    for line in bcftools_query(path, "%CHROM\t%POS\t%REF\t%ALT[\t%GT]\n").splitlines():
        chrom, pos, ref, alt, *gts = line.split("\t")
        theirs[(chrom, int(pos), ref, alt, tuple(g for g in gts if g))] += 1
    return theirs


def _positions(path: Path) -> list[tuple[str, int]]:
    try:
        return bcftools_positions(path)
    except SamtoolsError:  # bcftools stops at a record it cannot parse: count the lines instead
        lines = [line for line in path.read_text().splitlines() if line.strip() and not line.startswith("#")]
        return [(line.split("\t")[0], 0) for line in lines]


def _columns(out: Path) -> set[str]:
    schema = duckdb.connect().execute(f"DESCRIBE SELECT * FROM read_parquet('{out}/*/*.parquet')").fetchall()
    return {row[0] for row in schema}


def test_duplicate_sample_names_are_refused_before_the_run(tmp_path):
    result = run_cli(
        "launch", "--input_pattern", str(REAL / "hts-specs" / "failed_body_sample_011.vcf"),
        "--output_parquet_dir", str(tmp_path / "out"),
    )  # fmt: skip
    assert result.returncode == 2
    assert "header line 3: sample name 'HG00096' appears twice" in result.stderr


def test_undeclared_fields_without_infer_headers_are_malformed(tmp_path):
    out = tmp_path / "out"
    result = run_cli(
        "launch", "--input_pattern", str(REAL / "vcfpy" / "example-4.1-sv.vcf"),
        "--output_parquet_dir", str(out), "--allow_malformed_records",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    entries = [json.loads(line) for f in (out / "_malformed").glob("*.jsonl") for line in f.open()]
    assert [(e["line"], e["field"]) for e in entries] == [(33, "INFO/MIINFO")]
    assert "Hint: --infer_headers" in entries[0]["reason"]
