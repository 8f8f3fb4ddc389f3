"""The sample-lookup layout: one row per call instead of one row per variant.

gcp-variant-transforms' ``--sample_lookup_optimized_output_table`` tables had every column
of the variant table, with ``call`` turned from a REPEATED RECORD into a single RECORD
(``UNNEST(call)``: one row per call, a variant without calls gives none) and
``call.sample_id`` copied to a top-level ``sample_id`` column just before ``call``, on
which the tables are integer-range partitioned over ``[0, 2^63-1)``. The same columns here,
for Parquet and BigQuery. See docs/sample_lookup.md.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from variant_etl.core.partitioning import MAX_RANGE_END, RangePartitioning, partitioning_for
from variant_etl.core.schema import (
    CALL,
    END_POSITION,
    HOM_REF_CALL,
    REFERENCE_NAME,
    SAMPLE_ID,
    START_POSITION,
)

# sample ids are farmhash fingerprints modulo 2^63: the whole non-negative int64 range
PARTITIONING: RangePartitioning = partitioning_for(MAX_RANGE_END, column=SAMPLE_ID)
# Rows within a file: a sample's calls together (row-group statistics on sample_id prune a
# per-sample query), in position order within a sample.
SORT_KEYS = [
    (SAMPLE_ID, "ascending"),
    (REFERENCE_NAME, "ascending"),
    (START_POSITION, "ascending"),
    (END_POSITION, "ascending"),
]


def lookup_schema(variant_schema: pa.Schema) -> pa.Schema:
    """The variant columns, with ``sample_id`` and a single ``call`` struct in place of the list."""
    fields = []
    for field in variant_schema:
        if field.name == HOM_REF_CALL:  # --move_hom_ref_calls: those calls have no row here
            continue
        if field.name == CALL:
            call = field.type.value_type
            fields.append(pa.field(SAMPLE_ID, call.field(SAMPLE_ID).type))
            fields.append(pa.field(CALL, call))
        else:
            fields.append(field)
    return pa.schema(fields)


def calls_per_row(rows: pa.RecordBatch | pa.Table) -> np.ndarray:
    """Number of calls of each row (0 without a ``call`` column: sites-only)."""
    if CALL not in rows.schema.names:
        return np.zeros(rows.num_rows, dtype=np.int64)
    lengths = pc.fill_null(pc.list_value_length(rows.column(CALL)), 0)
    return lengths.to_numpy().astype(np.int64)


def explode_calls(rows: pa.RecordBatch | pa.Table) -> pa.Table:
    """One row per call, in the input's order (variant by variant, calls in sample order).

    ``rows`` must not hold hidden columns (``_records``): strip them first.
    """
    table = pa.Table.from_batches([rows]) if isinstance(rows, pa.RecordBatch) else rows
    table = table.combine_chunks()
    schema = lookup_schema(table.schema)
    calls = table.column(CALL).chunks[0] if table.num_rows else pa.array([], table.schema.field(CALL).type)
    parents = pc.list_parent_indices(calls)
    flat = pc.list_flatten(calls)  # StructArray, one item per call
    sample_ids = flat.flatten()[flat.type.get_field_index(SAMPLE_ID)]
    variants = table.drop_columns([CALL]).take(parents)  # (hom_ref_call is not in the schema)
    columns = []
    for field in schema:
        if field.name == SAMPLE_ID:
            columns.append(sample_ids)
        elif field.name == CALL:
            columns.append(flat)
        else:
            columns.append(variants.column(field.name))
    return pa.Table.from_arrays(columns, schema=schema)


def sorted_by_sample(table: pa.Table) -> pa.Table:
    """Rows ordered by (sample_id, reference_name, start_position, end_position); a stable
    sort, so equal keys keep the input's order and output stays deterministic."""
    if table.num_rows < 2:
        return table
    return table.take(pc.sort_indices(table, sort_keys=SORT_KEYS))
