"""pysam records -> Arrow rows: values, shapes and the malformed-record rules."""

import pytest

from variant_etl.core.errors import VcfFormatError
from variant_etl.core.header import merge_headers
from variant_etl.core.options import SchemaOptions
from variant_etl.core.reader import Malformed, ReadResult, read_split
from variant_etl.core.records import sample_id
from variant_etl.core.schema import build_schema
from variant_etl.core.source import read_header

HEADER = """##fileformat=VCFv4.2
##INFO=<ID=DP,Number=1,Type=Integer,Description="Depth">
##INFO=<ID=AF,Number=A,Type=Float,Description="Allele frequency">
##INFO=<ID=CIPOS,Number=2,Type=Integer,Description="Confidence">
##INFO=<ID=DB,Number=0,Type=Flag,Description="dbSNP">
##INFO=<ID=END,Number=1,Type=Integer,Description="End">
##INFO=<ID=my.key,Number=1,Type=String,Description="Needs sanitizing">
##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">
##FORMAT=<ID=GQ,Number=1,Type=Integer,Description="Quality">
##FORMAT=<ID=AD,Number=R,Type=Integer,Description="Depths">
##FORMAT=<ID=PS,Number=1,Type=Integer,Description="Phase set">
#CHROM	POS	ID	REF	ALT	QUAL	FILTER	INFO	FORMAT	S1	S2
"""


def read(path, *, one_based=False, allow=True, options=None):
    schema = build_schema(merge_headers([read_header(path)]), options)
    items = list(
        read_split(
            path, schema, one_based=one_based, allow_malformed=allow, batch_rows=2, result=ReadResult()
        )
    )
    rows = [row for item in items if not isinstance(item, Malformed) for row in item.to_pylist()]
    return rows, [item for item in items if isinstance(item, Malformed)]


def test_values_and_nesting(write_vcf):
    path = write_vcf(
        "a.vcf",
        HEADER
        + "1\t100\trs1;rs2\tA\tC,G\t29.5\tq10;s50\tDP=7;AF=0.25,0.5;DB;my.key=x\tGT:GQ:AD\t0|1:30:1,2,3\t./.:.:.\n"
        + "1\t200\t.\tAT\t.\t.\t.\tEND=250;CIPOS=-5,5\tGT:PS\t0/0:7\t0|0:.\n",
    )
    rows, bad = read(path)
    assert bad == []
    first, second = rows
    assert first["reference_name"] == "1"
    assert (first["start_position"], first["end_position"]) == (99, 100)
    assert first["names"] == ["rs1", "rs2"]
    assert first["quality"] == 29.5
    assert first["filter"] == ["q10", "s50"]
    assert first["alternate_bases"] == [{"alt": "C", "AF": 0.25}, {"alt": "G", "AF": 0.5}]
    assert first["DP"] == 7 and first["DB"] is True and first["my_key"] == "x"
    assert first["CIPOS"] is None
    assert first["call"][0] == {
        "sample_id": sample_id("S1"), "genotype": [0, 1], "phaseset": "*",
        "GQ": 30, "AD": [1, 2, 3],
    }  # fmt: skip
    assert first["call"][1]["genotype"] == [-1, -1] and first["call"][1]["phaseset"] is None
    assert (second["start_position"], second["end_position"]) == (199, 250)  # END gives the end
    assert "END" not in second
    assert second["alternate_bases"] == [] and second["quality"] is None and second["filter"] == []
    assert second["CIPOS"] == [-5, 5]
    assert [c["phaseset"] for c in second["call"]] == ["7", "*"]  # PS value, else '*' if phased
    assert second["DB"] is None


def test_schema_options(write_vcf):
    path = write_vcf(
        "a.vcf",
        HEADER + "1\t100\t.\tA\tC,G\t29.5\tq10;s50\tDP=7;AF=0.25,0.5;my.key=x\tGT:GQ\t0|1:30\t./.:.\n",
    )
    options = SchemaOptions(
        split_alternate_allele_info_fields=False,
        include_call_name=True,
        copy_quality_to_calls=True,
        copy_filter_to_calls=True,
        info_keys_to_move_to_calls_regex="DP|my\\..*",
    )
    rows, bad = read(path, options=options)
    row = rows[0]
    assert row["AF"] == [0.25, 0.5] and row["alternate_bases"] == [{"alt": "C"}, {"alt": "G"}]
    assert "DP" not in row and "my_key" not in row
    assert row["call"][1] == {
        "sample_id": sample_id("S2"), "name": "S2", "genotype": [-1, -1], "phaseset": None,
        "quality": 29.5, "filter": ["q10", "s50"], "GQ": None, "AD": None, "DP": 7, "my_key": "x",
    }  # fmt: skip


def test_moving_an_info_key_onto_a_format_name_is_refused(write_vcf):
    from variant_etl.core.errors import SchemaError

    path = write_vcf(
        "a.vcf",
        HEADER.replace(
            "##FORMAT=<ID=GQ", '##FORMAT=<ID=DP,Number=1,Type=Integer,Description="d">\n##FORMAT=<ID=GQ'
        ),
    )
    with pytest.raises(
        SchemaError,
        match="INFO field 'DP' matches --info_keys_to_move_to_calls_regex 'D.', but the calls already have the FORMAT field 'DP'",
    ):
        build_schema(merge_headers([read_header(path)]), SchemaOptions(info_keys_to_move_to_calls_regex="D."))


def test_one_based_changes_only_start(write_vcf):
    path = write_vcf("a.vcf", HEADER + "1\t100\t.\tAC\tC\t.\t.\t.\tGT\t0/1\t0/0\n")
    rows, _ = read(path, one_based=True)
    assert (rows[0]["start_position"], rows[0]["end_position"]) == (100, 101)


def test_sample_id_is_gcp_variant_transforms_hash():
    # farmhash fingerprint64 of '["NA00001"]' modulo 2^63
    assert sample_id("NA00001") == 1461155635506253861


@pytest.mark.parametrize(
    "record, field, value, reason",
    [
        ("1\t100\t.\tA\tC\t.\t.\tDP=1,2\tGT\t0/1\t0/0", "INFO/DP", "1,2", "Number=1: expected 1 value"),
        ("1\t100\t.\tA\tC\t.\t.\tXX=1\tGT\t0/1\t0/0", "INFO/XX", "1", "not declared in any input header"),
        (
            "1\t100\t.\tA\tC\t.\t.\t.\tGT:ZZ\t0/1:1\t0/0:2",
            "FORMAT/ZZ",
            "ZZ",
            "not declared in any input header",
        ),
        ("1\t\t.\tA\tC\t.\t.\t.\tGT\t0/1\t0/0", "POS", "", "expected a positive integer"),
        ("1\t100\t.\tA\tC\t.\t.\t.\tGT:GQ\t0/1:1:2:3\t0/0", "sample S1", "0/1:1:2:3", "has 4 sub-fields"),
        ("1\t100\t.\tA\t.\t.\t.\t.\tGT\t0/1\t0/0", "FORMAT/GT of S1", "0/1", "allele 1 does not exist"),
        ("1\t100\t.\tA\tC\t.\t.\t.\tGT\t0/1", "line", None, "expected 11 tab-separated columns, found 10"),
    ],
)
def test_malformed_records_name_line_field_and_value(write_vcf, record, field, value, reason):
    good = "1\t50\t.\tA\tC\t.\t.\t.\tGT\t0/1\t0/0\n"
    path = write_vcf("bad.vcf", HEADER + good + record + "\n" + good)
    rows, bad = read(path)
    assert len(rows) == 2 and len(bad) == 1
    entry = bad[0]
    assert (entry.file, entry.line, entry.record, entry.field) == (path, 14, 2, field)
    assert reason in entry.reason
    if value is not None:
        assert entry.value == value
    assert entry.raw == record
    with pytest.raises(VcfFormatError, match=f"{path}:14: {field}: .*--allow_malformed_records"):
        read(path, allow=False)


def test_number_a_values_are_matched_to_the_alts_with_allow_malformed_records(write_vcf):
    """gcp-variant-transforms' rule: too few values get NULLs, extra ones are dropped; without
    --allow_malformed_records the record is refused."""
    path = write_vcf(
        "bad.vcf",
        HEADER
        + "1\t100\t.\tA\tC,G\t.\t.\tAF=0.5\tGT\t0/1\t0/0\n"
        + "1\t101\t.\tA\tC\t.\t.\tAF=0.25,0.75\tGT\t0/1\t0/0\n",
    )
    rows, bad = read(path)
    assert bad == []
    assert [[a["AF"] for a in r["alternate_bases"]] for r in rows] == [[0.5, None], [0.25]]
    with pytest.raises(VcfFormatError, match=f"{path}:13: INFO/AF: Number=A: expected 2 value"):
        read(path, allow=False)
