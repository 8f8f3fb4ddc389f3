"""Property-based round trips: hypothesis writes valid VCFs, and what we read back (with the
fast parser, with pysam, and through the whole pipeline) is what was written.

The truth is the generated values themselves, not a second reading: a record is drawn as
plain Python values (``Record``, ``Call``), rendered to VCF text, and every row read back is
compared field by field with the values drawn.
"""

from __future__ import annotations

import dataclasses
import json
import tempfile
from collections import Counter
from pathlib import Path

import duckdb
import farmhash
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import run_cli
from tests.test_launch import check_manifest_adds_up
from variant_etl.core.options import ReadOptions
from variant_etl.core.reader import Malformed, ReadResult, read_split
from variant_etl.core.schema import VariantSchema
from variant_etl.plan import make_plan

CONTIGS = ("chr1", "chr2", "chrX", "7")
MAX_POS = 2**31 - 1
# VCF integers are 32-bit; the 8 lowest values are reserved by BCF (missing, end of vector, ...)
MIN_INT = -(2**31) + 8
HEADER = (
    "##fileformat=VCFv4.2\n"
    + "".join(f"##contig=<ID={contig}>\n" for contig in CONTIGS)
    + '##INFO=<ID=DP,Number=1,Type=Integer,Description="Total depth">\n'
    '##INFO=<ID=AF,Number=A,Type=Float,Description="Allele frequency">\n'
    '##INFO=<ID=DB,Number=0,Type=Flag,Description="dbSNP membership">\n'
    '##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">\n'
    '##FORMAT=<ID=DP,Number=1,Type=Integer,Description="Read depth">\n'
    '##FORMAT=<ID=AD,Number=R,Type=Integer,Description="Allelic depths">\n'
)


@dataclasses.dataclass(frozen=True)
class Call:
    alleles: tuple[int | None, ...]  # None for '.'
    phased: bool
    dp: int | None
    ad: tuple[int | None, ...] | None  # None for '.'
    drop_trailing_missing: bool  # VCF lets trailing missing FORMAT values be left out


@dataclasses.dataclass(frozen=True)
class Record:
    chrom: str
    pos: int
    ids: tuple[str, ...]
    ref: str
    alts: tuple[str, ...]
    qual: float | None
    qual_text: str
    passed: bool
    info: tuple[tuple[str, object], ...]  # (key, value) in file order; DB's value is True
    format_keys: tuple[str, ...]
    calls: tuple[Call, ...]


@dataclasses.dataclass(frozen=True)
class Vcf:
    samples: tuple[str, ...]
    records: tuple[Record, ...]

    def text(self) -> str:
        columns = ["#CHROM", "POS", "ID", "REF", "ALT", "QUAL", "FILTER", "INFO"]
        if self.samples:
            columns += ["FORMAT", *self.samples]
        lines = [HEADER + "\t".join(columns)]
        lines += [render_record(record) for record in self.records]
        return "\n".join(lines) + "\n"


# Strategies ------------------------------------------------------------------------------

bases = st.text("ACGT", min_size=1, max_size=5)
positions = st.one_of(st.integers(1, 1000), st.integers(1, MAX_POS), st.integers(MAX_POS - 10, MAX_POS))
integers = st.one_of(st.integers(0, 100), st.integers(MIN_INT, MAX_POS))
# Exactly representable in the 32-bit floats VCF values are read as.
frequencies = st.integers(0, 8).map(lambda k: k / 8)
qualities = st.integers(0, 4_000_000).map(lambda k: k / 4)
float_formats = st.sampled_from(["{!r}", "{:.2f}", "{:.8e}"])
sample_names = st.text("ABCXYZabcxyz0123456789_.-", min_size=1, max_size=8)


@st.composite
def genotypes(draw, n_alts: int) -> tuple[tuple[int | None, ...], bool]:
    """GT alleles (haploid to triploid, '.' as None) and whether they are phased."""
    allele = st.one_of(st.none(), st.integers(0, n_alts))
    alleles = tuple(draw(st.lists(allele, min_size=1, max_size=3)))
    phased = len(alleles) > 1 and draw(st.booleans())
    return alleles, phased


@st.composite
def calls(draw, n_alts: int, format_keys: tuple[str, ...]) -> Call:
    alleles, phased = draw(genotypes(n_alts))
    dp = draw(st.one_of(st.none(), integers)) if "DP" in format_keys else None
    ad = None
    if "AD" in format_keys:
        values = st.lists(st.one_of(st.none(), integers), min_size=n_alts + 1, max_size=n_alts + 1)
        ad = draw(st.one_of(st.none(), values.map(tuple)))
    return Call(alleles, phased, dp, ad, drop_trailing_missing=draw(st.booleans()))


@st.composite
def infos(draw, n_alts: int) -> tuple[tuple[str, object], ...]:
    """A subset of DP, AF (one value per ALT allele, some '.') and DB, in any order."""
    candidates = {
        "DP": st.one_of(st.none(), integers),
        "DB": st.just(True),
    }
    if n_alts:
        one_af = st.one_of(st.none(), frequencies)
        candidates["AF"] = st.lists(one_af, min_size=n_alts, max_size=n_alts).map(tuple)
    keys = draw(st.lists(st.sampled_from(sorted(candidates)), unique=True))
    return tuple((key, draw(candidates[key])) for key in keys)


@st.composite
def records(draw, n_samples: int) -> Record:
    ref = draw(bases)
    if draw(st.integers(0, 9)) == 0:
        alts = ()  # ALT '.'
    else:
        alts = tuple(draw(st.lists(bases.filter(lambda b: b != ref), min_size=1, max_size=4, unique=True)))
    qual = draw(st.one_of(st.none(), qualities))
    qual_text = "." if qual is None else draw(float_formats).format(qual)
    format_keys = ()
    if n_samples:
        format_keys = ("GT", *draw(st.lists(st.sampled_from(["DP", "AD"]), unique=True)))
    return Record(
        chrom=draw(st.sampled_from(CONTIGS)),
        pos=draw(positions),
        ids=tuple(draw(st.lists(st.integers(1, 10**9).map(lambda n: f"rs{n}"), max_size=2, unique=True))),
        ref=ref,
        alts=alts,
        qual=qual,
        qual_text=qual_text,
        passed=draw(st.booleans()),
        info=draw(infos(len(alts))),
        format_keys=format_keys,
        calls=tuple(draw(calls(len(alts), format_keys)) for _ in range(n_samples)),
    )


@st.composite
def vcfs(draw, max_records: int = 60) -> Vcf:
    samples = tuple(draw(st.lists(sample_names, max_size=4, unique=True)))
    drawn = draw(st.lists(records(len(samples)), max_size=max_records))
    if drawn and draw(st.booleans()):  # the same record twice
        drawn.insert(draw(st.integers(0, len(drawn))), draw(st.sampled_from(drawn)))
    return Vcf(samples, tuple(drawn))


# Rendering -------------------------------------------------------------------------------


def missing_or(value, render=str) -> str:
    return "." if value is None else render(value)


def render_call(call: Call, format_keys: tuple[str, ...]) -> str:
    values = []
    for key in format_keys:
        if key == "GT":
            values.append(("|" if call.phased else "/").join(map(missing_or, call.alleles)))
        elif key == "DP":
            values.append(missing_or(call.dp))
        elif key == "AD":
            values.append(missing_or(call.ad, lambda ad: ",".join(map(missing_or, ad))))
    while call.drop_trailing_missing and len(values) > 1 and values[-1] == ".":
        values.pop()
    return ":".join(values)


def render_record(record: Record) -> str:
    info = []
    for key, value in record.info:
        if key == "DB":
            info.append(key)
        elif key == "AF":
            info.append("AF=" + ",".join(missing_or(v, "{!r}".format) for v in value))
        else:
            info.append(f"{key}={missing_or(value)}")
    fields = [
        record.chrom,
        str(record.pos),
        ";".join(record.ids) or ".",
        record.ref,
        ",".join(record.alts) or ".",
        record.qual_text,
        "PASS" if record.passed else ".",
        ";".join(info) or ".",
    ]
    if record.calls:
        fields.append(":".join(record.format_keys))
        fields += [render_call(call, record.format_keys) for call in record.calls]
    return "\t".join(fields)


# Expected rows ---------------------------------------------------------------------------


def genotype(call: Call) -> list[int]:
    return [-1 if allele is None else allele for allele in call.alleles]


def whole_missing(ad):
    """A wholly missing list ('.') may be read as NULL or as [NULL]; both mean the same."""
    return None if ad is None or list(ad) == [None] else list(ad)


def sample_id(name: str) -> int:
    # gcp-variant-transforms' id (docs/schema.md), computed here from its definition
    return farmhash.fingerprint64(json.dumps([name])) % 2**63


def expected_row(record: Record, samples: tuple[str, ...]) -> dict:
    info = dict(record.info)
    af = info.get("AF") or (None,) * len(record.alts)
    row = {
        "reference_name": record.chrom,
        "start_position": record.pos - 1,
        "end_position": record.pos - 1 + len(record.ref),
        "reference_bases": record.ref,
        "alternate_bases": [{"alt": alt, "AF": f} for alt, f in zip(record.alts, af)],
        "names": list(record.ids),
        "quality": record.qual,
        "filter": ["PASS"] if record.passed else [],
        "DP": info.get("DP"),
        "DB": info.get("DB"),
    }
    if samples:
        row["call"] = [
            {
                "sample_id": sample_id(name),
                "genotype": genotype(call),
                "phaseset": "*" if call.phased else None,
                "DP": call.dp,
                "AD": whole_missing(call.ad),
            }
            for name, call in zip(samples, record.calls)
        ]
    return row


def comparable(row: dict) -> dict:
    row = dict(row)
    if "call" in row:
        row["call"] = [dict(call, AD=whole_missing(call["AD"])) for call in row["call"]]
    return row


# Properties ------------------------------------------------------------------------------


def plan_for(path: Path):
    return make_plan(
        input_patterns=[str(path)],
        input_file=None,
        sharding_config_path=None,
        read=ReadOptions(),
        parquet=None,
    )


def read_table(
    path: Path,
    schema: VariantSchema,
    *,
    fast: bool,
    batch_rows: int = 1000,
    byte_range: tuple[int, int] | None = None,
) -> tuple[pa.Table | None, int]:
    result = ReadResult()
    items = list(
        read_split(
            str(path),
            schema,
            one_based=False,
            allow_malformed=False,
            batch_rows=batch_rows,
            result=result,
            byte_range=byte_range,
            fast=fast,
        )
    )
    assert not [item for item in items if isinstance(item, Malformed)]
    batches = [item for item in items if isinstance(item, pa.RecordBatch)]
    table = pa.Table.from_batches(batches, schema=batches[0].schema) if batches else None
    return table, result.records_read


@pytest.mark.slow
@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(vcf=vcfs(), batch_rows=st.sampled_from([1000, 7, 1]))
def test_both_readers_give_back_the_generated_records(vcf, batch_rows):
    """Every record, in file order, with its values as drawn; the fast parser and pysam
    give equal tables."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "generated.vcf"
        path.write_text(vcf.text())
        schema = plan_for(path).schema
        fast_table, fast_count = read_table(path, schema, fast=True, batch_rows=batch_rows)
        slow_table, slow_count = read_table(path, schema, fast=False, batch_rows=batch_rows)

    expected = [expected_row(record, vcf.samples) for record in vcf.records]
    assert fast_count == slow_count == len(vcf.records)
    for table in (fast_table, slow_table):
        rows = table.to_pylist() if table is not None else []
        assert len(rows) == len(expected)
        if table is not None:
            assert ("call" in table.column_names) == bool(vcf.samples)
        for index, (row, want) in enumerate(zip(rows, expected)):
            got = comparable({key: row[key] for key in want})
            assert got == want, f"record {index}: {render_record(vcf.records[index])}"
    if fast_table is not None:
        assert fast_table.schema == slow_table.schema
        assert fast_table.to_pylist() == slow_table.to_pylist()


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(vcf=vcfs(), data=st.data())
def test_byte_ranges_of_a_file_give_its_rows_once(vcf, data):
    """Cut anywhere in the body (as --read_split_bytes does), the ranges' rows, one after
    another, are the whole file's rows, with both readers."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "generated.vcf"
        path.write_text(vcf.text())
        plan = plan_for(path)
        body, size = plan.headers[0].body_offset, path.stat().st_size
        cuts = data.draw(st.lists(st.integers(body, size), max_size=4, unique=True))
        bounds = [body, *sorted(cuts), size]
        for fast in (True, False):
            whole, count = read_table(path, plan.schema, fast=fast)
            rows, counts = [], 0
            for byte_range in zip(bounds, bounds[1:]):
                table, part_count = read_table(path, plan.schema, fast=fast, byte_range=byte_range)
                rows += table.to_pylist() if table is not None else []
                counts += part_count
            assert counts == count == len(vcf.records)
            assert rows == (whole.to_pylist() if whole is not None else [])


def site(reference_name, start_position, reference_bases, alts, genotypes) -> tuple:
    return (reference_name, start_position, reference_bases, tuple(alts), tuple(genotypes))


@pytest.mark.slow
@settings(
    max_examples=5,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(vcf=vcfs(max_records=30), split_bytes=st.sampled_from([None, 300]))
def test_the_pipeline_writes_every_generated_record_once(vcf, split_bytes):
    """`launch` writes each record once (sites and genotypes as drawn), whole or in byte
    ranges, and the manifest adds up."""
    # The bundled default config shards chr1..chr22, chrX, chrY (with or without 'chr') and
    # sends everything else to 'residual', so every record is written somewhere.
    expected = Counter(
        site(r.chrom, r.pos - 1, r.ref, r.alts, (tuple(genotype(c)) for c in r.calls)) for r in vcf.records
    )
    with tempfile.TemporaryDirectory() as tmp:
        source, out = Path(tmp) / "generated.vcf", Path(tmp) / "out"
        source.write_text(vcf.text())
        split = ["--read_split_bytes", str(split_bytes)] if split_bytes else []
        result = run_cli("launch", "--input_pattern", str(source), "--output_parquet_dir", str(out), *split)
        assert result.returncode == 0, result.stderr
        totals = check_manifest_adds_up(out)["totals"]
        got = Counter()
        if list(out.glob("*/*.parquet")):
            call = "call" if vcf.samples else "[]"
            sql = (
                f"SELECT reference_name, start_position, reference_bases, alternate_bases, {call}"
                f" FROM read_parquet('{out}/*/*.parquet')"
            )
            for name, start, ref, alts, row_calls in duckdb.connect().execute(sql).fetchall():
                got[
                    site(
                        name,
                        start,
                        ref,
                        (a["alt"] for a in alts),
                        (tuple(c["genotype"]) for c in row_calls),
                    )
                ] += 1
    assert got == expected
    assert totals["records_read"] == totals["rows_written"] == len(vcf.records)
    assert totals["malformed"] == totals["dropped_no_matching_shard"] == 0
