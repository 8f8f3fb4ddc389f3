"""gcp-variant-transforms' own small integration tests, run here: each test's options become a
`launch` into the BigQuery emulator and a Parquet directory at once, and each of its BigQuery SQL
assertions is run on the emulator's tables and, translated to DuckDB, on the Parquet files. The
expectations (tests/data/vt_small_tests.json) are VT's; where we differ on purpose, DIFFERENCES
says why, and the test asserts what we give instead (docs/migrating_from_gcp_variant_transforms.md lists them).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import duckdb
import pytest

from tests.conftest import VT_VCF

ALL_CASES = json.loads((Path(__file__).parent / "data" / "vt_small_tests.json").read_text())["cases"]
CASES = ALL_CASES
# VT's bucket held one file for each of these patterns of its input_files/combine_input.
COMBINE_INPUT = ["valid-4.1-large.vcf", "valid-4.2.vcf"]

# Where we differ from VT on purpose: (test file, start of the query) -> (our result, why).
# Each is in docs/migrating_from_gcp_variant_transforms.md. Besides these, NUM_OUTPUT_TABLES is one more in
# BigQuery: we also write <table>__vcf_header (the runs' header lines, which export uses).
CALL_IN_HEADER_ORDER = (
    "ARRAY<STRUCT<sample_id INT64, name STRING, genotype ARRAY<INT64>, phaseset STRING, "
    "GQ INT64, DP INT64, HQ ARRAY<INT64>>>"
)
DIFFERENCES = {
    ("valid_4_0_gz", "SELECT data_type FROM `{DATASET_ID}.INFORMATION_SCHEMA.COLUMNS`  WHERE table_name = '{TABLE_ID}__chr20' AND  column_name='call'"): (
        {"data_type": CALL_IN_HEADER_ORDER},
        "the FORMAT fields in call are in the header's order (VT's follow htslib's ID dictionary, "
        "where FORMAT/DP comes first because INFO/DP was defined first)",
    ),
    ("valid_4_0_bz2", "SELECT data_type FROM `{DATASET_ID}.INFORMATION_SCHEMA.COLUMNS`  WHERE table_name = '{TABLE_ID}__chr20' AND  column_name='call'"): (
        {"data_type": CALL_IN_HEADER_ORDER},
        "the FORMAT fields in call are in the header's order (as valid_4_0_gz)",
    ),
    ("option_null_numeric_value_replacement", "SELECT COUNT(0) AS num_rows FROM `{DATASET_ID}.{TABLE_ID}__chrY`  WHERE 100000 IN UNNEST(AF)"): (
        {"num_rows": 0},
        "AF=nan stays NaN (BigQuery FLOAT64 holds it); VT turned NaN into NULL, and into "
        "--null_numeric_value_replacement inside a list",
    ),
}  # fmt: skip


def vt_options(options: dict, tmp: Path) -> list[str]:
    """A VT test's options as our command line (VT's spellings: they are accepted as such)."""
    args = []
    for key, value in options.items():
        if key == "input_pattern":
            args += ["--input_pattern", str(VT_VCF / value)]
        elif key == "input_file":
            listing = tmp / "input_file"
            listing.write_text("".join(f"{VT_VCF / name}\n" for name in COMBINE_INPUT))
            args += ["--input_file", str(listing)]
        elif key == "representative_header_file":
            args += ["--representative_header_file", str(VT_VCF / value)]
        elif key == "update_schema":
            args += ["--update_schema_on_append"]
        elif value is True:
            args += [f"--{key}"]
        else:
            args += [f"--{key}", str(value)]
    return args


def unshadowed(query: str) -> str:
    """``FROM t, t.call AS call``: BigQuery takes ``call.x`` for the alias, the emulator (DuckDB)
    finds it ambiguous with the column. The alias is renamed, which changes nothing in BigQuery."""
    for field in re.findall(r",\s*\w+\.(\w+)\s+(?:as|AS)\s+(\w+)", query):
        if field[0] == field[1]:
            name = field[0]
            query = re.sub(rf"(?<![\w.]){name}\b", f"{name}_", query)  # not t.call, call.HQ
    return query


def parquet_sql(query: str, outs: list[Path]) -> str | None:
    """A VT assertion's BigQuery SQL on the Parquet outputs of the test's steps so far (an append
    to a table is a second output directory read with the first), or None where it asks about
    BigQuery itself (INFORMATION_SCHEMA)."""
    if "INFORMATION_SCHEMA" in query:
        return None

    def table(match: re.Match) -> str:
        suffix = match.group(1)
        if suffix == "sample_info":
            files = [out / "__sample_info.parquet" for out in outs]
        else:
            files = [out / suffix / "*.parquet" for out in outs if (out / suffix).is_dir()]
        if files:
            return "read_parquet([" + ", ".join(f"'{f}'" for f in files) + "], union_by_name=true)"
        written = next(f for out in outs for f in sorted(out.glob("*/*.parquet")))
        return f"(SELECT * FROM read_parquet('{written}') LIMIT 0)"  # the columns, no rows

    sql = re.sub(r"`\{DATASET_ID\}\.\{TABLE_ID\}__(\w+)`", table, unshadowed(query))
    # A REPEATED column is never NULL in BigQuery (absent is []), a Parquet list column is.
    sql = re.sub(
        r"COUNT\((\w+)\)", r"COUNT(CASE WHEN \1 IS NOT NULL OR typeof(\1) LIKE '%[]' THEN 1 END)", sql
    )
    # BigQuery's correlated join `t.call AS c` is DuckDB's UNNEST(t.call) AS _(c).
    sql = re.sub(r",\s*(\w+)\.(\w+)\s+(?:as|AS)\s+(\w+)", r", UNNEST(\1.\2) AS _\3(\3)", sql)
    sql = re.sub(r"('?\w+'?)\s+IN\s+UNNEST\s*\(([\w.]+)\)", r"list_contains(\2, \1)", sql)
    return sql


def parquet_tables(out: Path) -> int:
    """VT's NUM_OUTPUT_TABLES on the Parquet output: the shards (written or not) and sample_info."""
    manifest = json.loads((out / "_manifest.json").read_text())
    return len(manifest["shards"]) + (out / "__sample_info.parquet").exists()


def one_row(rows: list[tuple], names: list[str]) -> dict:
    assert len(rows) == 1, f"expected one row, got {rows}"
    return dict(zip(names, rows[0]))


@pytest.mark.parametrize("case", CASES, ids=[c["file"] for c in CASES])
def test_variant_transforms_small_test(case, bq, tmp_path):
    table = case["file"]
    outs = []
    failures = []
    for number, step in enumerate(case["steps"]):
        out = tmp_path / f"out{number}"
        outs.append(out)
        args = vt_options(step["options"], tmp_path)
        result = bq.launch(table, *[], extra=(*args, "--output_parquet_dir", str(out)))
        assert result.returncode == 0, f"{step['name']}: {result.stderr}"
        for query, expected in step["checks"]:
            expected = DIFFERENCES.get((table, query), (expected,))[0]
            if query == "NUM_OUTPUT_TABLES":
                assert len(bq.tables(table)) == expected["num_tables"] + 1  # and __vcf_header, see above
                assert parquet_tables(out) == expected["num_tables"]
                continue
            sql = unshadowed(query).replace("{DATASET_ID}", bq.dataset).replace("{TABLE_ID}", table)
            job = bq.client.query(sql).result()
            rows = [tuple(row.values()) for row in job]
            got = one_row(rows, [f.name for f in job.schema])
            if got != pytest.approx(expected):  # VT writes decimals; Floats are htslib's 32-bit ones
                failures.append(f"BQ {step['name']}: {query} -> {got} != {expected}")
            translated = parquet_sql(query, outs)
            if translated is not None:
                try:
                    relation = duckdb.sql(translated)
                    got = one_row(relation.fetchall(), relation.columns)
                except Exception as err:
                    got = err
                if got != pytest.approx(expected):
                    failures.append(f"PQ {step['name']}: {translated} -> {got} != {expected}")
    assert not failures, "\n".join(failures)


def test_every_difference_is_one_of_variant_transforms_assertions():
    assertions = {(c["file"], query) for c in ALL_CASES for step in c["steps"] for query, _ in step["checks"]}
    assert set(DIFFERENCES) <= assertions
