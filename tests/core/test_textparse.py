"""The vectorized text parser against pysam (the reference), batch for batch.

Every text file in shared/testdata, read through the plan the CLI makes (with
--infer_headers, as test_all_test_files does), must give identical rows, dead-letter
entries and counts whether its chunks go through TextParser or through pysam.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from tests.conftest import REAL, TESTDATA, VT_VCF, generate_vcf, mutate
from variant_etl.core import reader, textparse
from variant_etl.core.errors import VcfFormatError
from variant_etl.core.options import MergeOptions, ReadOptions, SchemaOptions
from variant_etl.core.reader import Malformed, ReadResult, read_split
from variant_etl.core.schema import ORIGIN
from variant_etl.plan import make_plan

FILES = sorted(
    str(p.relative_to(TESTDATA))
    for folder in (REAL, VT_VCF)
    for p in folder.rglob("*")
    if p.suffix in (".vcf", ".gz", ".bz2") and p.name != "failed_body_sample_011.vcf"
)


def read_all(plan, split, *, fast: bool, allow_malformed: bool = True):
    result = ReadResult()
    items = list(
        read_split(
            split.path,
            plan.schema,
            one_based=False,
            allow_malformed=allow_malformed,
            batch_rows=plan.read.batch_rows,
            result=result,
            extra_header_lines=split.extra_header_lines,
            sample_ids=split.sample_ids,
            byte_range=split.byte_range,
            file_index=split.file_index if plan.merge.strategy != "NONE" else None,
            fast=fast,
        )
    )
    batches = [item for item in items if isinstance(item, pa.RecordBatch)]
    malformed = [item for item in items if isinstance(item, Malformed)]
    table = pa.Table.from_batches(batches, schema=batches[0].schema) if batches else None
    return table, malformed, result.records_read


def assert_same(slow, fast):
    slow_table, slow_malformed, slow_count = slow
    fast_table, fast_malformed, fast_count = fast
    assert fast_count == slow_count
    assert fast_malformed == slow_malformed
    assert (fast_table is None) == (slow_table is None)
    if slow_table is not None:
        assert fast_table.schema == slow_table.schema
        # repr, so that NaN equals NaN
        assert repr(fast_table.to_pylist()) == repr(slow_table.to_pylist())


def plan_for(path: Path, tmp_path: Path, **options):
    return make_plan(
        input_patterns=[str(path)],
        input_file=None,
        sharding_config_path=None,
        read=ReadOptions(**options.pop("read", {})),
        parquet=None,
        infer_headers=options.pop("infer_headers", True),
        schema_options=options.pop("schema_options", None),
        merge=options.pop("merge", None),
    )


@pytest.fixture
def fallbacks(monkeypatch):
    """Records every chunk TextParser hands to pysam, and why."""
    seen: list[str] = []
    parse = textparse.TextParser.parse

    def spy(self, chunk, first_index=0, **per_row):
        try:
            return parse(self, chunk, first_index, **per_row)
        except textparse.Fallback as err:
            seen.append(str(err))
            raise

    monkeypatch.setattr(textparse.TextParser, "parse", spy)
    return seen


@pytest.mark.parametrize("name", FILES)
def test_every_test_file_parses_as_pysam_does(tmp_path, name, monkeypatch):
    monkeypatch.setattr(reader, "_CHUNK_BYTES", 4096)  # many chunks, so fallbacks mix with fast ones
    plan = plan_for(TESTDATA / name, tmp_path)
    for split in plan.splits:
        assert_same(read_all(plan, split, fast=False), read_all(plan, split, fast=True))


def write_generated(tmp_path: Path, variants: int, samples: int) -> Path:
    return generate_vcf(tmp_path / f"gen_{variants}x{samples}.vcf", variants, samples)


@pytest.mark.parametrize("samples", [0, 7])
@pytest.mark.parametrize(
    "schema_options",
    [
        SchemaOptions(),
        SchemaOptions(
            split_alternate_allele_info_fields=False,
            include_call_name=True,
            copy_quality_to_calls=True,
            copy_filter_to_calls=True,
            info_keys_to_move_to_calls_regex="AN|DB",
        ),
    ],
    ids=["default", "all-options"],
)
def test_generated_file_is_parsed_without_pysam(tmp_path, fallbacks, samples, schema_options, monkeypatch):
    """The benchmark generator's records (typed INFO, per-ALT fields, every FORMAT field)
    all take the fast path, and give what pysam gives."""
    monkeypatch.setattr(reader, "_CHUNK_BYTES", 64 << 10)
    path = write_generated(tmp_path, 3000, samples)
    # the merge options need MOVE_TO_CALLS, whose reads add the hidden _origin column
    merge = MergeOptions("MOVE_TO_CALLS") if schema_options.copy_quality_to_calls else None
    plan = plan_for(path, tmp_path, schema_options=schema_options, infer_headers=False, merge=merge)
    (split,) = plan.splits
    fast = read_all(plan, split, fast=True)
    assert fallbacks == []
    assert fast[2] == 3000
    assert_same(read_all(plan, split, fast=False), fast)


EDGE_HEADER = """##fileformat=VCFv4.2
##contig=<ID=1,length=1000>
##INFO=<ID=DP,Number=1,Type=Integer,Description="d">
##INFO=<ID=AF,Number=A,Type=Float,Description="d">
##INFO=<ID=S,Number=1,Type=String,Description="d">
##INFO=<ID=SL,Number=.,Type=String,Description="d">
##INFO=<ID=END,Number=1,Type=Integer,Description="d">
##INFO=<ID=F,Number=0,Type=Flag,Description="d">
##INFO=<ID=G,Number=G,Type=Integer,Description="d">
##FILTER=<ID=q10,Description="d">
##FORMAT=<ID=GT,Number=1,Type=String,Description="d">
##FORMAT=<ID=AD,Number=R,Type=Integer,Description="d">
##FORMAT=<ID=PL,Number=G,Type=Integer,Description="d">
##FORMAT=<ID=DP,Number=1,Type=Integer,Description="d">
##FORMAT=<ID=GQ,Number=1,Type=Float,Description="d">
##FORMAT=<ID=FT,Number=1,Type=String,Description="d">
##FORMAT=<ID=FL,Number=.,Type=String,Description="d">
##FORMAT=<ID=PS,Number=1,Type=Integer,Description="d">
#CHROM	POS	ID	REF	ALT	QUAL	FILTER	INFO	FORMAT	s1	s2	s3
"""
EDGE_RECORDS = [
    # missing values, trailing sub-fields left out, whole samples missing
    "1\t10\trs1;rs2\tA\tC,G\t0.1\tq10;PASS\tDP=5;AF=0.1,.;S=.;SL=a,.,b;F;G=1,2,3\tGT:AD:DP:GQ:FT\t0/1:1,2,0:3:4.1:.\t./.\t.",
    # phased, phase sets, haploid and triploid calls
    "1\t20\trs1;rs1\tA\tT\t.\t.\tS=a,b\tGT:AD:PS\t1|0:.:5\t0|1:.,.:.\t.|.",
    "1\t30\t.\tA\t.\t1e3\tPASS\tEND=40\tGT:AD\t0\t.\t.",
    "1\t30\t.\tAC\tA\t3.3\tPASS\t.\tGT:FL\t0/1:x,.,y\t1/1\t0|1|1",
    # FORMAT keys in another order, GT absent
    "1\t31\t.\tAC\tA,<DEL>\t007\tPASS\tDP=-12\tDP:GQ:FT\t1:2:a,b\t.:.:.\t3",
    "1\t40\t.\tA\tC\t1.5\tPASS\tAF=0.25\tGT:DP\t0/1:1\t0/0:2\t./1:3",
    # Number=G: one value per genotype of the call's ploidy; without GT, haploid or diploid
    "1\t60\t.\tA\tC\t1\tPASS\t.\tGT:PL\t0/1:0,1,2\t1:3,4\t0/1/1:1,2,3,4",
    "1\t61\t.\tA\tC,G\t1\tPASS\t.\tPL\t0,1,2\t0,1,2,3,4,5\t.",
    "1\t62\t.\tA\tC\t1\tPASS\t.\tGT:PL:AD\t.:0,1,2:.\t./.:.:1,2\t0/0",
]
# Each must go to pysam (and is read as pysam reads it).
EDGE_FALLBACKS = [
    "1\t50\t.\tA\tC,G\t1\tPASS\tAF=0.1\tGT\t0/1\t0/1\t0/1",  # Number=A count
    "1\t50\t.\tA\tC\t1\tPASS\tDP=0x10\tGT\t0/1\t0/1\t0/1",  # hexadecimal
    "1\t50\t.\tA\tC\tnan\tPASS\t.\tGT\t0/1\t0/1\t0/1",  # NaN quality
    "1\t50\t.\tA\tC\t1\tPASS\tDP=2147483647;F=1\tGT\t0/1\t0/1\t0/1",  # a flag with a value
    "1\t50\t.\tA\tC\t1\tPASS\t.\tGT\t0/2\t0/1\t0/1",  # allele 2 does not exist
    "1\t50\t.\tA\tC\t1\tPASS\t.\tGT\t0|1/1\t0/1\t0/1",  # mixed phasing
    "1\t50\t.\tA\tC\t1\tPASS\tDP=1;DP=2\tGT\t0/1\t0/1\t0/1",  # a key twice
    "1\t50\t.\tA\tC\t1\tPASS\tXX=1\tGT\t0/1\t0/1\t0/1",  # undeclared
    "1\t50\t.\tA\tC\t1\tPASS\t.\tGT:DP\t0/1:1:2\t0/1\t0/1",  # more values than keys
    "1\t50\t.\tA\tC\t1\tPASS\t.\tDP:GT\t1:0/1\t0/1\t0/1",  # GT not first
    "1\t0\t.\tA\tC\t1\tPASS\t.\tGT\t0/1\t0/1\t0/1",  # POS 0
    "1\t50\t.\tA\tC\t1\tPASS\tEND=10\tGT\t0/1\t0/1\t0/1",  # END before POS
    "1\t50\t.\tA\tC\t1\tPASS\t.\tGT\t0/1\t0/1",  # a column short
    "1\t50\t.\tA\tC\t1\tPASS\t.\tGT\t0/1\t0/1\t\xff",  # not UTF-8
    "1\t50\t.\tA\tC\t1\tPASS\t.\tGT:AD\t0/1:1,2,3\t0/1\t0/1",  # FORMAT Number=R count
    "1\t50\t.\tA\tC\t1\tPASS\t.\tGT:PL\t0/1:0,1\t0/1\t0/1",  # FORMAT Number=G count
    "1\t50\t.\tA\tC\t1\tPASS\t.\tPL\t0,1,2,3\t.\t.",  # neither haploid nor diploid
    "1\t50\t.\tA1\tC\t1\tPASS\t.\tGT\t0/1\t0/1\t0/1",  # REF not bases
    "1\t50\t.\tR\tC\t1\tPASS\t.\tGT\t0/1\t0/1\t0/1",  # an IUPAC code: pysam path
    "1\t9223372036854775807\t.\tA\tC\t1\tPASS\t.\tGT\t0/1\t0/1\t0/1",  # POS beyond htslib's HTS_POS_MAX
]


@pytest.mark.parametrize("line", EDGE_RECORDS)
def test_edge_records_take_the_fast_path(tmp_path, fallbacks, line):
    path = tmp_path / "edge.vcf"
    path.write_bytes((EDGE_HEADER + line + "\n").encode("latin-1"))
    plan = plan_for(path, tmp_path, infer_headers=False)
    fast = read_all(plan, plan.splits[0], fast=True)
    assert fallbacks == []
    assert_same(read_all(plan, plan.splits[0], fast=False), fast)


@pytest.mark.parametrize("line", EDGE_FALLBACKS)
def test_edge_records_go_to_pysam(tmp_path, fallbacks, line):
    path = tmp_path / "edge.vcf"
    path.write_bytes((EDGE_HEADER + EDGE_RECORDS[5] + "\n" + line + "\n").encode("latin-1"))
    plan = plan_for(path, tmp_path, infer_headers=False)
    fast = read_all(plan, plan.splits[0], fast=True)
    assert len(fallbacks) == 1
    assert_same(read_all(plan, plan.splits[0], fast=False), fast)


def test_error_in_a_later_chunk_names_its_line(tmp_path, monkeypatch):
    """A chunk pysam reads on its own still reports the line number in the whole file."""
    monkeypatch.setattr(reader, "_CHUNK_BYTES", 256)
    good = EDGE_RECORDS[5]
    bad = "1\t50\t.\tA\tC\t1\tPASS\tDP=1,2\tGT\t0/1\t0/1\t0/1"  # Number=1 count: malformed
    lines = [good] * 40 + ["\n" * 3 + good, bad] + [good] * 10
    path = tmp_path / "edge.vcf"
    path.write_text(EDGE_HEADER + "\n".join(lines) + "\n")
    plan = plan_for(path, tmp_path, infer_headers=False)
    header_lines = EDGE_HEADER.count("\n")
    bad_line = header_lines + 40 + 3 + 2  # 40 good, 3 blank lines, a good one, then the bad one
    _, malformed, count = read_all(plan, plan.splits[0], fast=True)
    assert count == 52
    assert [(m.line, m.record, m.field) for m in malformed] == [(bad_line, 42, "INFO/DP")]
    assert malformed[0].raw == bad
    assert read_all(plan, plan.splits[0], fast=False)[1] == malformed
    with pytest.raises(VcfFormatError, match=rf"edge.vcf:{bad_line}: INFO/DP: Number=1"):
        read_all(plan, plan.splits[0], fast=True, allow_malformed=False)


def test_byte_ranges_split_the_same_way(tmp_path, fallbacks):
    path = write_generated(tmp_path, 2000, 3)
    plan = plan_for(path, tmp_path, infer_headers=False, read={"split_bytes": 50_000})
    assert len(plan.splits) > 3
    whole = plan_for(path, tmp_path, infer_headers=False)
    tables = [read_all(plan, split, fast=True)[0] for split in plan.splits]
    assert fallbacks == []
    expected = read_all(whole, whole.splits[0], fast=False)[0]
    assert repr(pa.concat_tables(tables).to_pylist()) == repr(expected.to_pylist())


def test_bgzip_block_ranges_read_every_record_once(tmp_path, fallbacks, monkeypatch):
    """A bgzipped file read as ranges of BGZF blocks gives the rows of the whole file, in
    order; a malformed record in a later range names its line in the whole file."""
    import pysam

    from variant_etl.core.bgzf import block_starts

    plain = write_generated(tmp_path, 3000, 3)
    lines = plain.read_text().splitlines(keepends=True)
    bad_at = len(lines) - 100
    columns = lines[bad_at].split("\t")
    columns[7] = "XX=1;" + columns[7]  # undeclared
    lines[bad_at] = "\t".join(columns)
    plain.write_text("".join(lines))
    path = tmp_path / "gen.vcf.gz"
    pysam.tabix_compress(str(plain), str(path))
    plan = plan_for(path, tmp_path, infer_headers=False)
    (whole,) = plan.splits
    with open(path, "rb") as raw:
        starts = block_starts(raw, path.stat().st_size, 30_000)
    assert len(starts) > 5
    ranges = list(zip(starts, starts[1:] + [path.stat().st_size]))
    results = [read_all(plan, dataclasses.replace(whole, byte_range=r), fast=True) for r in ranges]
    expected = read_all(plan, whole, fast=False)
    assert sum(r[2] for r in results) == expected[2] == 3000
    got = pa.concat_tables([r[0] for r in results if r[0] is not None])
    assert repr(got.to_pylist()) == repr(expected[0].to_pylist())
    malformed = [m for r in results for m in r[1]]
    assert [(m.line, m.field) for m in malformed] == [(bad_at + 1, "INFO/XX")]
    assert [(m.line, m.field) for m in expected[1]] == [(bad_at + 1, "INFO/XX")]


@pytest.mark.parametrize("inputs, window", [("merge", 10_000_000), ("gvcf", 64)])
@pytest.mark.parametrize("keep_overlapping", [False, True])
@pytest.mark.parametrize("chunk_bytes", [4 << 20, 1])
def test_indexed_windows_parse_as_pysam_does(
    tmp_path, monkeypatch, fallbacks, inputs, window, keep_overlapping, chunk_bytes
):
    """Merging indexed inputs reads each window's lines through tabix into TextParser (in
    chunks of about chunk_bytes); the tables and counts equal pysam's reading of the same
    windows."""
    from tests.test_merge import GVCFS, MERGE_FILES, indexed_copies
    from variant_etl.core import regions

    monkeypatch.setattr(regions, "CHUNK_BYTES", chunk_bytes)

    copies = indexed_copies(tmp_path, MERGE_FILES if inputs == "merge" else GVCFS)
    plan = make_plan(
        input_patterns=[str(p) for p in copies],
        input_file=None,
        sharding_config_path=None,
        read=ReadOptions(),
        parquet=None,
        merge=MergeOptions("MOVE_TO_CALLS", window),
    )
    assert plan.region_splits

    def read(split):
        counts: dict[str, int] = {}
        items = list(
            regions.read_region(
                split, plan.schema, one_based=False, allow_malformed=True,
                keep_overlapping=keep_overlapping, counts=counts,
            )
        )  # fmt: skip
        assert not [t for t in items if not isinstance(t, pa.Table)]
        if not items:
            return "[]", counts
        table = pa.concat_tables(items)
        return repr(table.sort_by(ORIGIN).to_pylist()), counts

    groups, parses = [], [0]
    parse = regions._FastWindow._parse
    text_parse = regions.TextParser.parse

    def counted(self, *args, **kwargs):
        parses[0] += 1
        return text_parse(self, *args, **kwargs)

    monkeypatch.setattr(regions.TextParser, "parse", counted)
    monkeypatch.setattr(
        regions._FastWindow,
        "_parse",
        lambda self, members: groups.append(len(members)) or parse(self, members),
    )
    fast = [read(split) for split in plan.region_splits]
    # the gVCFs of a window parse together (their headers define the same fields)
    assert fallbacks == [] and max(groups) > (inputs == "gvcf")
    assert (parses[0] > len(groups)) == (chunk_bytes == 1)  # a line a chunk: several a group
    monkeypatch.setattr(regions._FastWindow, "add", lambda *args: False)
    assert [read(split) for split in plan.region_splits] == fast


def _generated_parser(tmp_path: Path, records: int):
    """A generated file of ``records`` x 3 samples, its plan, a TextParser of its header and its
    body lines."""
    from variant_etl.core.source import read_header

    path = write_generated(tmp_path, records, 3)
    header = read_header(str(path))
    plan = plan_for(path, tmp_path, infer_headers=False)
    parser = textparse.TextParser(
        plan.schema, header.infos, header.formats, header.samples, filters=header.filters
    )
    body = b"".join(line for line in path.read_bytes().splitlines(keepends=True) if not line.startswith(b"#"))
    return path, plan, parser, body


@pytest.mark.parametrize("seed", range(3))
def test_parser_never_crashes_on_mutated_bytes(tmp_path, seed):
    """Random byte edits of valid records: TextParser gives a batch or hands the chunk back
    (Fallback); any other exception would crash a worker. A batch it gives must be what pysam
    reads from the same text, without a malformed record."""
    import random

    path, plan, parser, body = _generated_parser(tmp_path, 60)
    rng = random.Random(seed)
    outcomes = {"batch": 0, "fallback": 0}
    for _ in range(400):
        chunk = mutate(rng, body)
        if not chunk.endswith(b"\n"):
            chunk += b"\n"
        try:
            batch = parser.parse(bytes(chunk))
        except textparse.Fallback:
            outcomes["fallback"] += 1
        else:
            assert batch.schema == parser.arrow_schema
            outcomes["batch"] += 1
            mutated = tmp_path / "mutated.vcf"
            mutated.write_bytes(_header_bytes(path) + bytes(chunk))
            table, malformed, count = read_all(
                plan, dataclasses.replace(plan.splits[0], path=str(mutated)), fast=False
            )
            assert malformed == [] and count == batch.num_rows
            assert repr(table.to_pylist()) == repr(pa.Table.from_batches([batch]).to_pylist())
    assert outcomes["fallback"] > 0 and outcomes["batch"] > 0


def _header_bytes(path: Path) -> bytes:
    return b"".join(line for line in path.read_bytes().splitlines(keepends=True) if line.startswith(b"#"))


@pytest.mark.parametrize(
    "texts, from_bytes",
    [
        (["0/1", "1|0", "./.", ".|.", "0/0", "2/1"], True),  # two one-digit alleles each: read from bytes
        (["0/1", "1", "./.", "0/1/2", "10/1", "."], False),  # other shapes: None, the split path reads them
    ],
)
def test_diploid_genotypes_read_from_bytes_as_the_split_path_reads_them(texts, from_bytes):
    n_alts = np.array([12, 12, 12], np.int64)  # 3 records x 2 samples
    fast = textparse._diploid_genotypes(pa.array(texts), n_alts, len(texts))
    general = textparse._any_genotypes(pa.array(texts), np.ones(len(texts), bool), n_alts, len(texts))
    if from_bytes:
        assert fast[0].equals(general[0]) and fast[1].equals(general[1])
    else:
        assert fast is None
    with pytest.raises(textparse.Fallback, match="allele index"):  # an allele beyond the ALTs
        textparse._diploid_genotypes(pa.array(["0/3", "0/0"]), np.array([2], np.int64), 2)


@pytest.mark.parametrize(
    "edit",
    [lambda b: b"\n" + b, lambda b: b.replace(b"\n", b"\n\n", 2), lambda b: b + b"\n", lambda b: b[:-1]],
)
def test_a_chunk_with_calls_and_an_empty_line_or_no_last_newline_goes_to_pysam(tmp_path, edit):
    """An empty line first, inside or last, or a last line without its newline: pysam reads
    the chunk (and says what is wrong); the same lines without the edit parse here."""
    _, _, parser, body = _generated_parser(tmp_path, 20)
    assert parser.parse(body).num_rows == 20
    with pytest.raises(textparse.Fallback, match="empty line"):
        parser.parse(edit(body))
