"""The QC figures a load writes into _manifest.json (core/qc.py), each checked against
htslib's own reading: `bcftools stats` (SN, TSTV, IDD, AF lines; PSC with `-s -`) of the same
file, on real files of ../shared/testdata."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pysam.bcftools as bcftools
import pytest

from tests.conftest import REAL, VT_VCF, run_cli
from variant_etl.core import qc

# real files: a 189-sample cohort, multi-allelic and indel-rich files, MNPs, a tetraploid and a
# haploid/ploidy mix, a gVCF, structural variants, AC declared Number=. (a list column)
FILES = [
    REAL / "cyvcf2" / "test.vcf.gz",
    REAL / "cyvcf2" / "multi-contig.bcf",
    REAL / "cyvcf2" / "test.mnp.vcf",
    REAL / "bcftools" / "norm.vcf",
    REAL / "gatk" / "gvcfExample1.vcf",
    REAL / "gatk" / "spanningDel.many.tetraploid.g.vcf",
    REAL / "vcfpy" / "example-4.1-ploidy.vcf",
    REAL / "hts-specs" / "sv44.vcf",
    REAL / "ensembl-vep" / "input.vcf.gz",
    REAL / "pysam" / "example_vcf43_with_utf8.vcf",
    VT_VCF / "valid-4.0.vcf",
    VT_VCF / "valid-4.1-large.vcf",
]
SN = {
    "number of records": "records",
    "number of no-ALTs": "no_alts",
    "number of SNPs": "snps",
    "number of MNPs": "mnps",
    "number of indels": "indels",
    "number of others": "others",
    "number of multiallelic sites": "multiallelic",
    "number of multiallelic SNP sites": "multiallelic_snps",
}


def _bcftools_stats(path, *options) -> dict:
    found: dict = {"SN": {}, "IDD": {}, "AF": [], "PSC": {}}
    for line in bcftools.stats(*options, str(path)).splitlines():
        f = line.split("\t")
        if f[0] == "SN":
            found["SN"][f[2].rstrip(":")] = int(f[3])
        elif f[0] == "TSTV":
            found["TSTV"] = [int(f[2]), int(f[3]), int(f[5]), int(f[6])]
        elif f[0] == "IDD":
            found["IDD"][f[2]] = int(f[3])
        elif f[0] == "AF":
            found["AF"].append((round(float(f[2]), 6), *map(int, f[3:7])))
        elif f[0] == "PSC":
            # nRefHom nNonRefHom nHets nTs nTv nIndels meanDepth (nSingletons) nHapRef nHapAlt nMissing
            found["PSC"][f[2]] = [*map(int, f[3:9]), float(f[9]), *map(int, f[11:14])]
    return found


@pytest.fixture(scope="module", params=FILES, ids=lambda p: p.name)
def loaded(request, tmp_path_factory):
    out = tmp_path_factory.mktemp("qc") / "out"
    result = run_cli(
        "launch", "--input_pattern", str(request.param), "--output_parquet_dir", str(out), "--no_progress",
        "--infer_headers",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return request.param, json.loads((out / "_manifest.json").read_text())["qc"], out


def test_site_counts_are_bcftools_stats(loaded):
    path, found, _ = loaded
    expected = _bcftools_stats(path)
    run = found["run"]
    assert {key: run[ours] for key, ours in SN.items()} == {key: expected["SN"][key] for key in SN}
    assert [run["ts"], run["tv"], run["ts_first_alt"], run["tv_first_alt"]] == expected["TSTV"]
    assert run["indel_lengths"] == expected["IDD"]
    # the shards add up to the run
    for key in SN.values():
        assert sum(shard[key] for shard in found["shards"].values()) == run[key]


def test_allele_frequency_spectrum_is_bcftools_stats(loaded):
    path, found, _ = loaded
    ours = [
        (b["af"], b["snps"], b["ts"], b["tv"], b["indels"])
        for b in found["run"]["allele_frequency"]
        if b["snps"] + b["indels"]
    ]
    # INFO's AC/AN where the record has them (bcftools stats), else the calls' (stats -s -)
    expected = _bcftools_stats(path)["AF"]
    if ours != expected and found["run"]["samples"]:
        expected = _bcftools_stats(path, "-s", "-")["AF"]
    assert ours == expected


def test_per_sample_counts_are_bcftools_psc(loaded):
    path, found, _ = loaded
    samples = found["run"]["samples"]
    if "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\t" not in bcftools.view("-h", str(path)):
        assert samples == {}  # bcftools stats -s - refuses a file without samples
        return
    expected = _bcftools_stats(path, "-s", "-")["PSC"]
    ours = {
        name: [
            s["hom_ref"], s["hom_alt"], s["het"], s["ts"], s["tv"], s["indels"], s["mean_depth"] or 0.0,
            s["hap_ref"], s["hap_alt"], s["missing"],
        ]
        for name, s in samples.items()
    }  # fmt: skip
    assert ours == expected


@pytest.mark.parametrize(
    ("ref", "alt", "expected"),
    [
        ("A", "G", (qc.SNP, 1)),
        ("A", "A", (qc.REF, 0)),
        ("A", ".", (qc.REF, 0)),
        ("A", "<NON_REF>", (qc.REF, 0)),
        ("A", "<DEL>", (qc.OTHER, 0)),
        ("A", "*", (qc.OVERLAP, 0)),
        ("A", "AT", (qc.INDEL, 1)),
        ("ATG", "A", (qc.INDEL, -2)),
        ("A", "CA", (qc.INDEL, 1)),  # anchored at the end
        ("AC", "GT", (qc.MNP, 2)),
        ("AC", "GC", (qc.SNP, 1)),
        ("ACG", "TT", (qc.OTHER, -3)),
        ("A", "A]1:5]", (qc.BND, 0)),
        ("A", "[1:5[A", (qc.BND, 0)),
    ],
)
def test_allele_types_are_htslibs(ref, alt, expected):
    assert qc.allele_type(ref, alt) == expected
    types, lengths = qc._allele_types(pa.array([ref]), np.array([0]), pa.array([alt]))  # vectorized
    assert (int(types[0]), int(lengths[0])) == expected


def test_counts_of_batches_add_up_to_the_counts_of_the_whole(loaded):
    """Counts of slices of the rows written, added in any order, are the counts of all of them
    (the shard step adds up a bundle's batches, the commit the bundles')."""
    path, found, out = loaded
    table = pa.concat_tables(
        [pq.read_table(f) for f in sorted(out.glob("*/*.parquet"))], promote_options="permissive"
    )
    samples = len(found["run"]["samples"])
    whole = qc.summary(qc.count_batch(table, samples), samples)
    assert {key: whole[key] for key in SN.values()} == {key: found["run"][key] for key in SN.values()}
    third = max(1, table.num_rows // 3)
    parts = [qc.count_batch(table.slice(start, third), samples) for start in (0, third, 2 * third)]
    parts.append(qc.count_batch(table.slice(3 * third), samples))
    forward = backward = {}
    for part in parts:
        forward = qc.add(forward, part)
    for part in reversed(parts):
        backward = qc.add(part, backward)
    assert qc.summary(forward, samples) == whole == qc.summary(backward, samples)
