import pytest

from variant_etl.core.errors import HeaderConflictError, VcfFormatError
from variant_etl.core.header import (
    FieldDef,
    merge_headers,
    normalise_header_lines,
    parse_header,
    parse_structured,
)

CHROM = "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO"


def header(path, *lines, samples=()):
    chrom = CHROM + ("\tFORMAT\t" + "\t".join(samples) if samples else "")
    all_lines = normalise_header_lines(["##fileformat=VCFv4.2", *lines, chrom], path)
    return parse_header(all_lines, path, len(all_lines))


def test_parse_structured_handles_quotes_commas_and_escapes():
    attrs = parse_structured('ID=X,Number=1,Type=String,Description="a, \\"quoted\\" b",Source=me')
    assert attrs == {
        "ID": "X",
        "Number": "1",
        "Type": "String",
        "Description": 'a, "quoted" b',
        "Source": "me",
    }


def test_normalise_fixes_what_gcp_variant_transforms_tolerates():
    lines = ["\n", '##INFO=<ID=DP,Number=1,Type=Integer,Description="d">\r\n', CHROM + "\tFORMAT\tS1\t\n"]
    assert normalise_header_lines(lines, "f.vcf") == [
        "##fileformat=VCFv4.3",
        '##INFO=<ID=DP,Number=1,Type=Integer,Description="d">',
        CHROM + "\tFORMAT\tS1",
    ]


def test_missing_chrom_line_is_an_error():
    with pytest.raises(VcfFormatError, match="f.vcf: no '#CHROM' header line"):
        normalise_header_lines(["##fileformat=VCFv4.2\n"], "f.vcf")


@pytest.mark.parametrize(
    "line, message",
    [
        (
            '##INFO=<ID=X,Number=Z,Type=Integer,Description="">',
            "Number must be an integer, A, R, G or '.', got 'Z'",
        ),
        ('##INFO=<ID=X,Number=1,Type=Long,Description="">', "Type must be one of"),
        ('##FORMAT=<Number=1,Type=Integer,Description="">', "missing ID"),
    ],
)
def test_bad_definitions(line, message):
    with pytest.raises(VcfFormatError, match=message):
        header("f.vcf", line)


def test_duplicate_and_empty_sample_names():
    with pytest.raises(VcfFormatError, match="sample name 'A' appears twice"):
        header("f.vcf", samples=("A", "B", "A"))
    with pytest.raises(VcfFormatError, match="empty sample name"):
        parse_header(["##fileformat=VCFv4.2", CHROM + "\tFORMAT\tA\t\tB"], "f.vcf", 2)


def test_wrong_mandatory_columns():
    with pytest.raises(VcfFormatError, match="expected the columns"):
        parse_header(["##fileformat=VCFv4.2", "#CHROM\tPOS\tREF"], "f.vcf", 2)


def test_flags_have_number_0_and_vcf40_minus_one_is_dot():
    h = header(
        "f.vcf",
        '##INFO=<ID=DB,Number=0,Type=Flag,Description="">',
        '##INFO=<ID=AF,Number=-1,Type=Float,Description="">',
    )
    assert h.infos["DB"] == FieldDef("DB", "0", "Flag", "")
    assert h.infos["AF"].number == "."


def test_merge_integer_and_float_gives_float_and_keeps_union():
    a = header("a.vcf", '##INFO=<ID=X,Number=1,Type=Integer,Description="">', samples=("S1",))
    b = header(
        "b.vcf",
        '##INFO=<ID=X,Number=1,Type=Float,Description="">',
        '##INFO=<ID=Y,Number=A,Type=String,Description="">',
        samples=("S2", "S1"),
    )
    merged = merge_headers([a, b])
    assert merged.infos["X"].type == "Float"
    assert set(merged.infos) == {"X", "Y"}
    assert merged.samples == ("S1", "S2")


@pytest.mark.parametrize(
    "first, second, what",
    [
        ("Number=1,Type=Integer", "Number=1,Type=String", "Type differs"),
        ("Number=1,Type=Float", "Number=A,Type=Float", "Number differs"),
    ],
)
def test_merge_conflicts_name_the_field_and_both_files(first, second, what):
    a = header("a.vcf", f'##INFO=<ID=X,{first},Description="">')
    b = header("b.vcf", f'##INFO=<ID=X,{second},Description="">')
    with pytest.raises(HeaderConflictError) as err:
        merge_headers([a, b])
    message = str(err.value)
    assert "INFO field 'X'" in message and "a.vcf" in message and "b.vcf" in message and what in message
