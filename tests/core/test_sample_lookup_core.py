"""core/sample_lookup.py: calls to rows, on small Arrow tables."""

from __future__ import annotations

import pyarrow as pa
import pytest

from variant_etl.core.sample_lookup import calls_per_row, explode_calls, lookup_schema, sorted_by_sample

CALL = pa.struct([("sample_id", pa.int64()), ("genotype", pa.list_(pa.int64()))])
SCHEMA = pa.schema(
    [("reference_name", pa.string()), ("start_position", pa.int64()), ("end_position", pa.int64()),
     ("call", pa.list_(CALL)), ("DP", pa.int64())]
)  # fmt: skip
VARIANTS = pa.table(
    {
        "reference_name": ["1", "1", "1", "2"],
        "start_position": [9, 4, 7, 1],
        "end_position": [10, 5, 8, 2],
        "call": [
            [{"sample_id": 7, "genotype": [0, 1]}, {"sample_id": 3, "genotype": [1, 1]}],
            [{"sample_id": 7, "genotype": [-1, -1]}],
            [],  # a variant without calls: no row
            None,
        ],
        "DP": [1, 2, 3, 4],
    },
    schema=SCHEMA,
)


def test_lookup_schema_puts_sample_id_before_a_single_call():
    assert lookup_schema(SCHEMA).names == [
        "reference_name",
        "start_position",
        "end_position",
        "sample_id",
        "call",
        "DP",
    ]
    assert lookup_schema(SCHEMA).field("call").type == CALL


@pytest.mark.parametrize(
    "offset, length, expected",
    [
        (0, 4, [(7, 9, [0, 1], 1), (3, 9, [1, 1], 1), (7, 4, [-1, -1], 2)]),
        (1, 2, [(7, 4, [-1, -1], 2)]),  # a slice: offsets of the list and of the columns agree
        (2, 2, []),
    ],
)
def test_explode_calls(offset, length, expected):
    rows = explode_calls(VARIANTS.slice(offset, length))
    found = [(r["sample_id"], r["start_position"], r["call"]["genotype"], r["DP"]) for r in rows.to_pylist()]
    assert found == expected
    assert rows.column("sample_id").to_pylist() == [r["call"]["sample_id"] for r in rows.to_pylist()]
    assert calls_per_row(VARIANTS.slice(offset, length)).sum() == len(expected)


def test_sorted_by_sample_then_position():
    rows = sorted_by_sample(explode_calls(VARIANTS))
    assert [(r["sample_id"], r["start_position"]) for r in rows.to_pylist()] == [(3, 9), (7, 4), (7, 9)]


def test_sites_only_rows_have_no_calls():
    sites = VARIANTS.drop_columns(["call"])
    assert calls_per_row(sites).tolist() == [0, 0, 0, 0]
