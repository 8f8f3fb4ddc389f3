"""`export`: VCF -> variant_etl -> VCF gives the same records, as bcftools reads both."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pysam
import pytest

from tests.conftest import TESTDATA, VT_VCF, bcftools_view, run_cli
from tests.test_all_test_files import FILES


def parsed(view: str) -> Counter:
    """bcftools' records, made comparable: INFO and each sample's FORMAT as sorted key=value
    pairs without missing values ('.' and absent mean the same), samples by name."""
    records: Counter = Counter()
    samples: list[str] = []
    for line in view.splitlines():
        if line.startswith("#"):
            if line.startswith("#CHROM"):
                samples = line.split("\t")[9:]
            continue
        columns = line.split("\t")
        info = tuple(sorted(entry for entry in columns[7].split(";") if entry != "." and not _missing(entry)))
        calls = ()
        if len(columns) > 8:
            keys = columns[8].split(":")
            calls = tuple(
                sorted(
                    (name, tuple(sorted((k, v) for k, v in zip(keys, text.split(":")) if not _missing(v))))
                    for name, text in zip(samples, columns[9:])
                )
            )
            calls = tuple((name, values) for name, values in calls if values)
        records[(*columns[:7], info, calls)] += 1
    return records


def _missing(value: str) -> bool:
    value = value.split("=", 1)[-1]
    return all(part in (".", "") for part in value.replace("|", ",").replace("/", ",").split(","))


def load_and_export(tmp_path: Path, source: Path, *extra: str) -> tuple[Path, Path]:
    out = tmp_path / "out"
    result = run_cli(
        "launch", "--input_pattern", str(source), "--output_parquet_dir", str(out), "--infer_headers",
        "--allow_malformed_records",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    vcf = tmp_path / "exported.vcf.gz"
    result = run_cli("export", "--input_parquet_dir", str(out), "--output_vcf", str(vcf), *extra)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    return out, vcf


def without_malformed(expected: Counter, out: Path) -> Counter:
    """The original's records less those refused as malformed (found by their raw line)."""
    entries = [json.loads(line) for f in sorted(out.glob("_malformed/*.jsonl")) for line in f.open()]
    for entry in entries:
        chrom, pos, _id, ref = entry["raw"].split("\t")[:4]
        matches = [key for key in expected if key[0] == chrom and key[1] == pos and key[3] == ref]
        assert matches, entry
        expected[matches[0]] -= 1
    return +expected


# Files whose round trip differs from the original for a reason that is not a loss; each with why.
DIFFERENT: dict[str, str] = {}


@pytest.mark.parametrize("name", FILES)
def test_round_trip_keeps_records_alleles_info_and_format_values(tmp_path, name):
    if name in DIFFERENT:
        pytest.skip(DIFFERENT[name])
    source = TESTDATA / name
    out, vcf = load_and_export(tmp_path, source)
    assert Path(str(vcf) + ".tbi").exists()
    expected = without_malformed(parsed(bcftools_view(source)), out)
    exported = parsed(bcftools_view(vcf))
    assert exported == expected


def test_regions_and_samples(tmp_path):
    source = VT_VCF / "valid-4.0.vcf"
    out, vcf = load_and_export(
        tmp_path, source, "--genomic_regions", "20:1110696-1230237", "19", "--sample_names", "NA00002"
    )
    with pysam.VariantFile(str(vcf)) as exported:
        assert list(exported.header.samples) == ["NA00002"]
        rows = [(r.chrom, r.pos, r.samples["NA00002"]["GT"]) for r in exported.fetch()]
    assert rows == [("19", 1234567, (0, 2)), ("20", 1110696, (2, 1)), ("20", 1230237, (0, 0))]
    with pysam.VariantFile(str(vcf)) as exported:  # the index works
        assert [r.pos for r in exported.fetch("20", 1110695, 1110696)] == [1110696]


def test_a_region_selects_the_variants_that_overlap_it(tmp_path):
    source = VT_VCF / "valid-4.0.vcf"
    # microsat1 (19:1234567, REF GTCT) covers 1234567-1234570
    out, vcf = load_and_export(tmp_path, source, "--genomic_regions", "19:1234570-1234600")
    with pysam.VariantFile(str(vcf)) as exported:
        assert [r.id for r in exported.fetch()] == ["microsat1"]


@pytest.mark.parametrize(
    "args, message",
    [
        (("--sample_names", "NOBODY"), "--sample_names: no sample 'NOBODY'"),
        (("--genomic_regions", "20:10-5"), "--genomic_regions: bad region '20:10-5'"),
    ],
)
def test_export_errors(tmp_path, args, message):
    out = tmp_path / "out"
    assert (
        run_cli(
            "launch", "--input_pattern", str(VT_VCF / "valid-4.0.vcf"), "--output_parquet_dir", str(out)
        ).returncode
        == 0
    )
    result = run_cli(
        "export", "--input_parquet_dir", str(out), "--output_vcf", str(tmp_path / "x.vcf.gz"), *args
    )
    assert result.returncode == 2 and message in result.stderr and "Traceback" not in result.stderr


def test_export_of_a_directory_that_is_not_an_output(tmp_path):
    result = run_cli(
        "export", "--input_parquet_dir", str(tmp_path), "--output_vcf", str(tmp_path / "x.vcf.gz")
    )
    assert result.returncode == 2 and "no _manifest.json" in result.stderr
