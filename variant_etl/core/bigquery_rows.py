"""Arrow rows -> rows BigQuery accepts (see docs/bigquery.md).

BigQuery refuses NULL inside a REPEATED field, so missing values inside lists
(`AD=.,5`) are replaced, never dropped (dropping would shift the values of a
Number=R/A/G field onto the wrong alleles): numbers by --null_numeric_value_replacement
(default -2147483648), strings by '.' (VCF's own missing value). A list whose every value is
missing (`HQ=.,.`) becomes empty, as gcp-variant-transforms writes it. NULL scalars stay NULL.
"""

from __future__ import annotations

import math

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

NULL_STRING = "."


def without_nulls_in_lists(array: pa.Array, numeric: int, *, in_list: bool = False) -> pa.Array:
    """Replaces NULL items of every list (at any depth); NULL lists become empty."""
    data_type = array.type
    if pa.types.is_list(data_type):
        offsets = array.offsets
        if array.null_count:
            lengths = pc.fill_null(pc.list_value_length(array), 0)
            offsets = pa.array([0, *pc.cumulative_sum(lengths).to_pylist()], pa.int32())
            values = pc.list_flatten(array)
        else:
            values = array.values.slice(offsets[0].as_py(), offsets[-1].as_py() - offsets[0].as_py())
            offsets = pc.subtract(offsets, offsets[0])
        if values.null_count and not (pa.types.is_list(values.type) or pa.types.is_struct(values.type)):
            offsets, values = _all_missing_as_empty(offsets, values)
        items = without_nulls_in_lists(values, numeric, in_list=True)
        return pa.ListArray.from_arrays(offsets, items, type=data_type)
    if pa.types.is_struct(data_type):
        children = [without_nulls_in_lists(array.field(i), numeric) for i in range(data_type.num_fields)]
        mask = array.is_null() if array.null_count else None
        return pa.StructArray.from_arrays(children, fields=list(data_type), mask=mask)
    if not in_list or array.null_count == 0:
        return array
    if pa.types.is_string(data_type):
        return pc.fill_null(array, NULL_STRING)
    if pa.types.is_boolean(data_type):
        return pc.fill_null(array, False)
    return pc.fill_null(array, pa.scalar(numeric).cast(data_type))


def _all_missing_as_empty(offsets: pa.Array, values: pa.Array) -> tuple[pa.Array, pa.Array]:
    """Lists whose every value is missing (`HQ=.,.`) become empty, as gcp-variant-transforms
    writes them: nothing to replace, and no value can shift onto another allele."""
    bounds = np.asarray(offsets.to_numpy(zero_copy_only=False), dtype=np.int64)
    valid = np.concatenate([[0], np.cumsum(values.is_valid().to_numpy(zero_copy_only=False))])
    lengths = np.diff(bounds)
    empty = (valid[bounds[1:]] - valid[bounds[:-1]] == 0) & (lengths > 0)
    if not empty.any():
        return offsets, values
    lengths[empty] = 0
    kept = np.repeat(~empty, np.diff(bounds))
    new_offsets = pa.array(np.concatenate([[0], np.cumsum(lengths)]), pa.int32())
    return new_offsets, values.filter(pa.array(kept))


def bigquery_rows(batch: pa.RecordBatch, numeric: int) -> list[dict]:
    """Plain Python rows ready for an Avro load file."""
    arrays = [without_nulls_in_lists(column, numeric) for column in batch.columns]
    return pa.RecordBatch.from_arrays(arrays, schema=batch.schema).to_pylist()


def json_safe(value):
    """For streaming inserts: JSON has no NaN/Infinity; BigQuery reads them as strings."""
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, list):
        return [json_safe(v) for v in value]
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    return value


def with_nulls_in_lists(array: pa.Array, numeric: int, *, in_list: bool = False) -> pa.Array:
    """What ``without_nulls_in_lists`` did, undone as far as BigQuery lets us tell: numbers equal
    to the replacement inside lists become NULL again, and empty lists NULL (BigQuery keeps no
    NULL list). Strings stay '.', which VCF reads as missing anyway."""
    data_type = array.type
    if pa.types.is_list(data_type):
        offsets = array.offsets
        first, last = offsets[0].as_py(), offsets[-1].as_py()
        items = with_nulls_in_lists(array.values.slice(first, last - first), numeric, in_list=True)
        lengths = pc.fill_null(pc.list_value_length(array), 0)
        mask = pc.or_kleene(array.is_null(), pc.equal(lengths, 0))
        return pa.ListArray.from_arrays(pc.subtract(offsets, first), items, mask=mask)
    if pa.types.is_struct(data_type):
        children = [with_nulls_in_lists(array.field(i), numeric) for i in range(data_type.num_fields)]
        names = [data_type.field(i).name for i in range(data_type.num_fields)]
        mask = array.is_null() if array.null_count else None
        return pa.StructArray.from_arrays(children, names=names, mask=mask)
    if not in_list or not (pa.types.is_integer(data_type) or pa.types.is_floating(data_type)):
        return array
    replaced = pc.equal(array, pa.scalar(numeric).cast(data_type))
    return pc.if_else(replaced, pa.scalar(None, data_type), array)


def from_bigquery_rows(batch: pa.RecordBatch, numeric: int) -> pa.RecordBatch:
    """Rows read back from BigQuery, with the NULLs of ``with_nulls_in_lists``."""
    arrays = [with_nulls_in_lists(column, numeric) for column in batch.columns]
    return pa.RecordBatch.from_arrays(arrays, names=batch.schema.names)
