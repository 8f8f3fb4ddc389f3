"""End to end: `launch --annotation_fields` and `--annotate_with`, read back with DuckDB and
checked against pysam's reading of the input and of the annotation file."""

from __future__ import annotations

import json

import duckdb
import pysam
import pytest

from tests.conftest import TESTDATA, run_cli
from tests.test_launch import check_manifest_adds_up

REAL = TESTDATA / "real"
SPLIT_VEP = REAL / "bcftools" / "split-vep.5.vcf"  # VEP CSQ with ALLELE_NUM
GEMINI = REAL / "cyvcf2" / "test.vcf.gz"  # SnpEff ANN, and a CSQ without an Allele sub-field
CLINVAR = REAL / "ensembl-vep" / "input.vcf.gz"  # 50 ClinVar records, tabix-indexed

HANDMADE = """\
##fileformat=VCFv4.2
##INFO=<ID=CSQ,Number=.,Type=String,Description="Consequence annotations from Ensembl VEP. Format: Allele|Consequence|SYMBOL">
##INFO=<ID=VN,Number=.,Type=String,Description="VEP with --allele_number. Format: Allele|Consequence|ALLELE_NUM">
##contig=<ID=1>
#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO
1\t100\t.\tAT\tATT,A\t.\t.\tCSQ=TT|ins|G1,-|del|G1,TT|ins|G2,X|other|G3
1\t200\t.\tA\tAT,T\t.\t.\tCSQ=T|snv|G1,AT|ins|
1\t300\t.\tG\t<DEL>\t.\t.\tCSQ=DEL|sv|G4
1\t400\t.\tC\tT\t.\t.\tCSQ=T|a|b|c
1\t500\t.\tC\tT,G\t.\t.\tVN=T|x|2,G|y|1,T|z|7,T|w|
1\t600\t.\tC\tT\t.\t.\t.
1\t700\t.\tA\tAT,AAT\t.\t.\tCSQ=AT|full1|,AAT|full2|
1\t800\t.\tA\tAT,AAT\t.\t.\tCSQ=T|vep1|,AT|vep2|
"""


def launch(out, *inputs, extra=(), merged=False):
    args = ["launch", "--output_parquet_dir", str(out)]
    for path in inputs:
        args += ["--input_pattern", str(path)]
    result = run_cli(*args, *extra)
    assert result.returncode == 0, result.stderr
    if not merged:  # a merged row holds several records
        check_manifest_adds_up(out)
    return result


def rows(out) -> list[dict]:
    query = f"SELECT * FROM read_parquet('{out}/*/*.parquet') ORDER BY reference_name, start_position"
    return duckdb.connect().sql(query).to_arrow_table().to_pylist()


def test_vep_strings_go_under_their_allele(tmp_path, write_vcf):
    out = tmp_path / "out"
    launch(out, write_vcf("vep.vcf", HANDMADE), extra=("--annotation_fields", "CSQ", "VN"))
    found = {row["start_position"] + 1: row for row in rows(out)}

    def under(pos, field):
        return [[tuple(a.values()) for a in (alt[field] or [])] for alt in found[pos]["alternate_bases"]]

    assert under(100, "CSQ") == [[("TT", "ins", "G1"), ("TT", "ins", "G2")], [("-", "del", "G1")]]
    assert found[100]["CSQ"] == ["X|other|G3"]  # matches no ALT: kept as written
    assert under(200, "CSQ") == [[("AT", "ins", None)], [("T", "snv", "G1")]]  # no shared base
    assert under(300, "CSQ") == [[("DEL", "sv", "G4")]]
    assert under(400, "CSQ") == [[]] and found[400]["CSQ"] == ["T|a|b|c"]  # one sub-field too many
    # ALLELE_NUM wins over the allele string; out of range or empty, the allele string decides
    assert under(500, "VN") == [[("G", "y", "1"), ("T", "z", "7"), ("T", "w", None)], [("T", "x", "2")]]
    assert found[500]["VN"] is None and under(600, "CSQ") == [[]] and found[600]["CSQ"] is None
    # the ALTs as written place both strings, VEP's rule one: read as written
    assert under(700, "CSQ") == [[("AT", "full1", None)], [("AAT", "full2", None)]]
    assert under(800, "CSQ") == [[("T", "vep1", None)], [("AT", "vep2", None)]]  # VEP's rule


def annotation_strings(path, field):
    """{(chrom, pos, ref, alts): the field's strings} as pysam reads them."""
    with pysam.VariantFile(str(path)) as vcf:
        return {(r.chrom, r.pos, r.ref, r.alts): list(r.info.get(field, ())) for r in vcf}


def test_real_vep_output_with_allele_numbers(tmp_path):
    out = tmp_path / "out"
    launch(out, SPLIT_VEP, extra=("--annotation_fields", "CSQ"))
    expected = annotation_strings(SPLIT_VEP, "CSQ")
    found = rows(out)
    assert len(found) == len(expected) == 9
    names = split_names(SPLIT_VEP, "CSQ")
    for row in found:
        alts = tuple(a["alt"] for a in row["alternate_bases"])
        strings = expected[(row["reference_name"], row["start_position"] + 1, row["reference_bases"], alts)]
        placed = []
        for number, alt in enumerate(row["alternate_bases"], start=1):
            for annotation in alt["CSQ"] or []:
                assert annotation["ALLELE_NUM"] == str(number)  # VEP's own allele number
                placed.append("|".join(v or "" for v in annotation.values()))
        assert row["CSQ"] is None and sorted(placed) == sorted(strings)
        columns = [name.replace(".", "_") for name in names[1:]]  # '.' is not a column character
        assert list(row["alternate_bases"][0]["CSQ"][0]) == ["allele", *columns]


def split_names(path, field):
    description = pysam.VariantFile(str(path)).header.info[field].description
    return description.split("Format: ")[1].split("|")


def test_real_snpeff_and_gemini_output(tmp_path):
    out = tmp_path / "out"
    launch(out, GEMINI, extra=("--annotation_fields", "ANN", "CSQ"))
    ann, csq = annotation_strings(GEMINI, "ANN"), annotation_strings(GEMINI, "CSQ")
    found = rows(out)
    assert len(found) == len(ann) == 115
    total = 0
    for row in found:
        key = (row["reference_name"], row["start_position"] + 1, row["reference_bases"])
        key += (tuple(a["alt"] for a in row["alternate_bases"]),)
        placed_ann, placed_csq = [], []
        for alt in row["alternate_bases"]:
            for annotation in alt["ANN"] or []:
                assert annotation["allele"] == alt["alt"]  # SnpEff writes the ALT as it is
                placed_ann.append("|".join(v or "" for v in annotation.values()))
            # this CSQ names no allele: it goes to the only ALT there is
            placed_csq += ["|".join(v or "" for v in a.values()) for a in alt["CSQ"] or []]
        assert sorted(placed_ann + (row["ANN"] or [])) == sorted(ann[key])
        assert sorted(placed_csq + (row["CSQ"] or [])) == sorted(csq[key])
        total += len(placed_ann)
    assert total == sum(len(v) for v in ann.values()) == 1054  # all matched


def test_export_writes_the_annotation_strings_back(tmp_path):
    out = tmp_path / "out"
    launch(out, GEMINI, extra=("--annotation_fields", "ANN", "CSQ"))
    exported = tmp_path / "back.vcf.gz"
    result = run_cli("export", "--input_parquet_dir", str(out), "--output_vcf", str(exported))
    assert result.returncode == 0, result.stderr
    before, after = annotation_strings(GEMINI, "ANN"), annotation_strings(exported, "ANN")
    assert before.keys() == after.keys()
    assert all(sorted(before[k]) == sorted(after[k]) for k in before)
    assert annotation_strings(GEMINI, "CSQ") == annotation_strings(exported, "CSQ")  # one ALT each


def clinvar_input(path) -> tuple[str, dict]:
    """An input made from the ClinVar records, written differently, with the CLNSIG each ALT
    must get (from pysam's reading of the ClinVar file, by exact allele)."""
    with pysam.VariantFile(str(CLINVAR)) as clinvar:
        records = list(clinvar)
    lines, expected = [], {}
    for number, r in enumerate(records[:12]):
        chrom, alt = r.chrom, r.alts[0]
        significance = list(r.info["CLNSIG"])
        if number % 4 == 1:  # 'chr' prefix: the annotation file has none
            chrom = "chr" + chrom
        if number % 4 == 2 and len(r.ref) == 1 and len(alt) == 1:  # padded, plus an unknown ALT
            other = next(b for b in "ACGT" if b not in (r.ref, alt))
            lines.append(f"{chrom}\t{r.pos}\t.\t{r.ref}G\t{alt}G,{other}G\t.\t.\t.")
            expected[(chrom, r.pos)] = [significance, None]
            continue
        if number % 4 == 3:  # same position, another ALT: no match
            other = next(b for b in "ACGT" if b not in (r.ref, alt))
            lines.append(f"{chrom}\t{r.pos}\t.\t{r.ref[0]}\t{other}\t.\t.\t.")
            expected[(chrom, r.pos)] = [None]
            continue
        lines.append(f"{chrom}\t{r.pos}\t.\t{r.ref}\t{alt}\t.\t.\t.")
        expected[(chrom, r.pos)] = [significance]
    contigs = sorted({line.split("\t")[0] for line in lines})
    header = ["##fileformat=VCFv4.2", *[f"##contig=<ID={c}>" for c in contigs]]
    header.append("#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO")
    path.write_text("\n".join(header + lines) + "\n")
    return str(path), expected


def test_clinvar_fields_by_exact_allele(tmp_path):
    source, expected = clinvar_input(tmp_path / "calls.vcf")
    out = tmp_path / "out"
    launch(out, source, extra=("--annotate_with", str(CLINVAR), "--annotate_fields", "CLNSIG,ALLELEID"))
    found = {(row["reference_name"], row["start_position"] + 1): row for row in rows(out)}
    assert found.keys() == expected.keys()
    for key, significance in expected.items():
        assert [alt["CLNSIG"] for alt in found[key]["alternate_bases"]] == significance, key
    with pysam.VariantFile(str(CLINVAR)) as clinvar:
        allele_ids = {r.pos: r.info["ALLELEID"] for r in clinvar}
    matched = [(k, row) for k, row in found.items() if row["alternate_bases"][0]["CLNSIG"]]
    assert len(matched) == 9
    assert all(row["alternate_bases"][0]["ALLELEID"] == allele_ids[pos] for (_, pos), row in matched)
    schema = json.loads((out / "_manifest.json").read_text())
    assert schema["totals"]["rows_written"] == 12


@pytest.mark.parametrize(
    "extra, message",
    [
        (("--annotation_fields", "ANN"), "--annotation_fields ANN: the input headers define no INFO ANN"),
        (("--annotate_fields", "CLNSIG"), "--annotate_fields only applies with --annotate_with"),
        (("--annotate_with", str(CLINVAR)), "name the INFO fields to copy with --annotate_fields"),
        (("--annotate_with", str(CLINVAR), "--annotate_fields", "NOPE"), "defines no INFO NOPE"),
        (("--annotate_with", str(SPLIT_VEP), "--annotate_fields", "X"), "has no .tbi/.csi index"),
        (("--annotate_with", "gs://bucket/clinvar.vcf.gz", "--annotate_fields", "X"), "must be a local file"),
        (("--infer_annotation_types",), "--infer_annotation_types only applies with --annotation_fields"),
        (
            ("--minimal_vep_alt_matching", "true"),
            "--minimal_vep_alt_matching only applies with --annotation_fields",
        ),
    ],
)
def test_annotation_option_errors(tmp_path, extra, message):
    result = run_cli(
        "launch", "--input_pattern", str(CLINVAR), "--output_parquet_dir", str(tmp_path / "o"), *extra
    )
    assert result.returncode == 2 and message in result.stderr, result.stderr
    assert "Traceback" not in result.stderr and not (tmp_path / "o").exists()


def test_annotations_in_bigquery(bq):
    """Nested twice (alternate_bases[].ANN[]): the load files and the table schema carry it."""
    result = bq.launch("ann", GEMINI, extra=("--annotation_fields", "ANN"))
    assert result.returncode == 0, result.stderr
    ann = annotation_strings(GEMINI, "ANN")
    genes = sorted(s.split("|")[3] for strings in ann.values() for s in strings)
    found = bq.query(
        f"SELECT x.Gene_Name FROM {bq.dataset}.ann__chr1 v, UNNEST(v.alternate_bases) a, UNNEST(a.ANN) x"
    )
    assert sorted(gene for (gene,) in found) == genes and len(genes) == 1054
    table = bq.client.get_table(f"test-project.{bq.dataset}.ann__chr1")
    alternate_bases = next(f for f in table.schema if f.name == "alternate_bases")
    nested = next(f for f in alternate_bases.fields if f.name == "ANN")
    assert nested.mode == "REPEATED" and nested.field_type == "RECORD"
    assert [f.name for f in nested.fields][:3] == ["allele", "Annotation", "Annotation_Impact"]


def test_annotations_after_merging(tmp_path, write_vcf):
    """Merged rows are annotated once, from the merged record's strings."""
    body = HANDMADE.replace(
        "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO",
        "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\t{name}",
    )
    lines = [line if line.startswith("#") else line + "\tGT\t0/1" for line in body.splitlines()]
    first = write_vcf("a.vcf", "\n".join(lines).format(name="A") + "\n")
    second = write_vcf("b.vcf", "\n".join(lines).format(name="B") + "\n")
    out = tmp_path / "out"
    launch(
        out,
        first,
        second,
        extra=("--annotation_fields", "CSQ", "--variant_merge_strategy", "MOVE_TO_CALLS"),
        merged=True,
    )
    found = {row["start_position"] + 1: row for row in rows(out)}
    assert len(found) == 8 and all(len(row["call"]) == 2 for row in found.values())
    alts = found[100]["alternate_bases"]
    assert [[a["Consequence"] for a in alt["CSQ"]] for alt in alts] == [["ins", "ins"], ["del"]]
    assert found[100]["CSQ"] == ["X|other|G3"]


MINIMAL = """\
##fileformat=VCFv4.2
##INFO=<ID=CSQ,Number=.,Type=String,Description="Consequence annotations from Ensembl VEP. Format: Allele|Consequence">
##contig=<ID=1>
#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO
1\t100\t.\tAT\tTT,A\t.\t.\tCSQ=T|snv,-|del
1\t200\t.\tCT\tCTT,TT\t.\t.\tCSQ=T|either
1\t300\t.\tGAC\tGTC\t.\t.\tCSQ=T|mnv,GTC|written
"""


def test_minimal_vep_alt_matching_places_vep_minimal_alleles(tmp_path, write_vcf):
    """VEP --minimal writes each ALT without what it shares with REF (AT>TT is 'T', AT>A '-');
    gcp-variant-transforms' --minimal_vep_alt_matching places them, unless two ALTs of the
    record have the same form (CT>CTT and CT>TT are both 'T'): such a string stays top-level."""
    vcf = write_vcf("minimal.vcf", MINIMAL)
    placed = {}
    for name, extra in (("plain", ()), ("minimal", ("--minimal_vep_alt_matching", "true"))):
        launch(tmp_path / name, vcf, extra=("--annotation_fields", "CSQ", *extra))
        placed[name] = {
            row["start_position"] + 1: (
                [[a["Consequence"] for a in alt["CSQ"] or []] for alt in row["alternate_bases"]],
                row["CSQ"],
            )
            for row in rows(tmp_path / name)
        }
    assert placed["plain"] == {
        100: ([[], []], ["T|snv", "-|del"]),
        200: ([[], []], ["T|either"]),
        300: ([["written"]], ["T|mnv"]),
    }
    assert placed["minimal"] == {
        100: ([["snv"], ["del"]], None),
        200: ([[], []], ["T|either"]),  # ambiguous
        300: ([["mnv", "written"]], None),  # in the order written
    }


def test_infer_annotation_types_types_sub_fields_from_their_values(tmp_path):
    """As gcp-variant-transforms' --infer_annotation_types: a sub-field whose every value is an
    integer is Integer, a number Float, else String; the values are pysam's strings, typed."""
    out = tmp_path / "typed"
    launch(out, SPLIT_VEP, extra=("--annotation_fields", "CSQ", "--infer_annotation_types"))
    names = split_names(SPLIT_VEP, "CSQ")
    described = (
        duckdb.sql(f"SELECT alternate_bases[1].CSQ[1] AS c FROM read_parquet('{out}/*/*.parquet') LIMIT 0")
        .to_arrow_table()
        .schema.field("c")
        .type
    )
    types = {described.field(i).name: str(described.field(i).type) for i in range(described.num_fields)}
    assert types["STRAND"] == "int64" and types["ALLELE_NUM"] == "int64" and types["HGNC_ID"] == "int64"
    assert types["gnomAD_AF"] == "double" and types["AF"] == "double"
    assert types["allele"] == "string" and types["SIFT"] == "string" and types["DISTANCE"] == "string"
    strings = annotation_strings(SPLIT_VEP, "CSQ")
    checked = 0
    for row in rows(out):
        key = (row["reference_name"], row["start_position"] + 1, row["reference_bases"],
               tuple(a["alt"] for a in row["alternate_bases"]))  # fmt: skip
        ours = [a for alt in row["alternate_bases"] for a in alt["CSQ"] or []]
        theirs = [dict(zip(names, s.split("|"))) for s in strings[key]]
        assert len(ours) == len(theirs)
        for typed, text in zip(ours, theirs):
            for column, name in zip(typed, names):
                value = text[name]
                if types[column] == "int64":
                    assert typed[column] == (int(value) if value else None)
                elif types[column] == "double":
                    assert typed[column] == (float(value) if value else None)
                    checked += bool(value)
    assert checked > 100
    # export writes the numbers back (in their shortest form)
    back = tmp_path / "back.vcf"
    assert run_cli("export", "--input_parquet_dir", str(out), "--output_vcf", str(back)).returncode == 0
    exported = annotation_strings(back, "CSQ")
    for key, texts in strings.items():
        for ours, theirs in zip(exported[key], texts):
            for a, b in zip(ours.split("|"), theirs.split("|")):
                assert a == b or float(a) == float(b)
