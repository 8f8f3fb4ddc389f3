"""core/annotations.py: sub-field names from real headers, VEP's allele strings, allele keys."""

from __future__ import annotations

import pyarrow as pa
import pysam
import pytest

from tests.conftest import TESTDATA
from variant_etl.core.annotations import (
    Annotations,
    Annotator,
    allele_key,
    plan_annotations,
    split_field,
    vep_alleles,
)
from variant_etl.core.errors import SchemaError
from variant_etl.core.header import FieldDef

REAL = TESTDATA / "real"


def header_field(path, field_id: str) -> FieldDef:
    record = pysam.VariantFile(str(path)).header.info[field_id]
    return FieldDef(field_id, str(record.number), record.type, record.description)


def test_vep_format_from_a_real_header():
    field = split_field(header_field(REAL / "bcftools" / "split-vep.5.vcf", "CSQ"))
    assert field.names[:4] == ("Allele", "Consequence", "IMPACT", "SYMBOL")
    assert field.columns[:2] == ("allele", "Consequence")
    assert len(field.names) == 84 and field.allele_num_index == field.names.index("ALLELE_NUM")
    assert "gnomAD2_1_AF_raw" in field.columns  # '.' is not a column character
    assert not field.exact_alleles


def test_snpeff_format_from_a_real_header():
    field = split_field(header_field(REAL / "cyvcf2" / "test.vcf.gz", "ANN"))
    assert field.names[0] == "Allele" and field.names[-1] == "ERRORS / WARNINGS / INFO"
    assert field.columns[9:12] == ("HGVS_c", "HGVS_p", "cDNA_pos___cDNA_length")
    assert field.exact_alleles and field.allele_num_index is None


def test_a_format_without_an_allele_sub_field():
    field = split_field(header_field(REAL / "cyvcf2" / "test.vcf.gz", "CSQ"))
    assert field.names[0] == "Consequence" and field.allele_index is None


@pytest.mark.parametrize(
    "definition, message",
    [
        (FieldDef("CSQ", ".", "String", "Consequences, no format"), "lists no sub-fields"),
        (FieldDef("CSQ", "1", "String", "Format: Allele|X"), "Number=1, Type=String"),
        (FieldDef("CSQ", ".", "String", "Format: Allele|a.b|a_b"), "becomes the column 'a_b'"),
    ],
)
def test_unusable_definitions_are_refused(definition, message):
    with pytest.raises(SchemaError, match=message):
        split_field(definition)


def test_unknown_fields_and_clashes_are_refused():
    infos = {"CSQ": FieldDef("CSQ", ".", "String", "Format: Allele|Consequence")}
    with pytest.raises(SchemaError, match="define no INFO ANN .* CSQ"):
        plan_annotations(infos, [], ["ANN"], None, [])
    with pytest.raises(SchemaError, match="clashes with the alternate_bases field 'csq'"):
        plan_annotations(infos, ["csq"], ["CSQ"], None, [])


@pytest.mark.parametrize(
    "ref, alts, written",
    [  # the examples of VEP's documentation ("Complex VCF entries")
        ("G", ["A"], ["A"]),
        ("G", ["GA"], ["A"]),
        ("GA", ["G"], ["-"]),
        ("AT", ["ATT", "A"], ["TT", "-"]),
        ("A", ["AT", "T"], ["AT", "T"]),  # not every allele starts with A: nothing dropped
        ("C", ["<DEL>"], ["DEL"]),
        ("A", ["A]13:123]"], ["A]13"]),
    ],
)
def test_vep_allele_strings(ref, alts, written):
    assert vep_alleles(ref, alts) == written


@pytest.mark.parametrize(
    "key, trimmed",
    [
        ((10, "GC", "AC"), (10, "G", "A")),  # shared last base
        ((10, "CTT", "CT"), (10, "CT", "C")),  # a deletion keeps its first base
        ((10, "AG", "AT"), (11, "G", "T")),  # shared first base
        ((10, "A", "<DEL>"), (10, "A", "<DEL>")),
    ],
)
def test_allele_keys(key, trimmed):
    assert allele_key(*key) == trimmed


def test_a_slice_of_a_batch_is_annotated_like_the_rows_it_holds():
    field = split_field(FieldDef("CSQ", ".", "String", "Format: Allele|Consequence"))
    alt_type = pa.list_(pa.struct([pa.field("alt", pa.string())]))
    batch = pa.RecordBatch.from_pydict(
        {
            "reference_name": ["1", "1", "1"],
            "start_position": [1, 2, 3],
            "reference_bases": ["A", "C", "G"],
            "alternate_bases": pa.array(
                [[{"alt": "T"}], [{"alt": "G"}, {"alt": "T"}], [{"alt": "C"}]], alt_type
            ),
            "CSQ": [["T|x"], ["T|y", "G|z", "A|none"], ["C|w"]],
        }
    )
    annotator = Annotator(Annotations(split=(field,)))
    whole = annotator.apply(batch).slice(1, 2).to_pylist()
    assert annotator.apply(batch.slice(1, 2)).to_pylist() == whole
    assert [a["CSQ"] for a in whole[0]["alternate_bases"]] == [
        [{"allele": "G", "Consequence": "z"}],
        [{"allele": "T", "Consequence": "y"}],
    ]
    assert whole[0]["CSQ"] == ["A|none"] and whole[1]["CSQ"] is None
