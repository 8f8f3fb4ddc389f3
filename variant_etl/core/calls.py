"""``--omit_empty_sample_calls``: calls that say nothing are left out of ``call``, as
gcp-variant-transforms did. A call is empty when its genotype is empty or every allele is
missing (``./.``) and each of its FORMAT fields is missing: null, an empty list or string, or a
list of one null. Its sample_id and phaseset do not count."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from variant_etl.core.schema import CALL, CALL_NAME, GENOTYPE, PHASESET, SAMPLE_ID

_NOT_DATA = (SAMPLE_ID, PHASESET, CALL_NAME)


def omit_empty_calls(batch: pa.RecordBatch) -> pa.RecordBatch:
    """The batch without its empty calls (the rows stay, with fewer calls)."""
    if CALL not in batch.schema.names:
        return batch
    calls = batch.column(CALL)
    if isinstance(calls, pa.ChunkedArray):
        calls = calls.combine_chunks()
    values = pc.list_flatten(calls)  # every call of the batch, as one struct array
    if len(values) == 0:
        return batch
    empty = np.ones(len(values), dtype=bool)
    for index, field in enumerate(values.type):
        if field.name in _NOT_DATA:
            continue
        column = values.field(index)
        empty &= _missing(column, genotype=field.name == GENOTYPE)
    if not empty.any():
        return batch
    keep = pa.array(~empty)
    parents = pc.list_parent_indices(calls).to_numpy()
    counts = np.bincount(parents[~empty], minlength=len(calls))
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int32)
    kept = pa.ListArray.from_arrays(pa.array(offsets), values.filter(keep), mask=calls.is_null())
    return batch.set_column(batch.schema.get_field_index(CALL), batch.schema.field(CALL), kept)


def _missing(column: pa.Array, *, genotype: bool) -> np.ndarray:
    """Per call: the value says nothing."""
    missing = column.is_null().to_numpy(zero_copy_only=False)
    if pa.types.is_list(column.type):
        lengths = pc.fill_null(pc.list_value_length(column), 0).to_numpy()
        items = pc.list_flatten(column)
        parents = pc.list_parent_indices(column).to_numpy()
        if genotype:  # every allele missing (-1)
            known = pc.fill_null(pc.not_equal(items, -1), False).to_numpy(zero_copy_only=False)
        else:
            known = items.is_valid().to_numpy(zero_copy_only=False)
        with_known = np.bincount(parents[known], minlength=len(column)) > 0
        if genotype:
            return missing | ~with_known
        return missing | (lengths == 0) | ((lengths == 1) & ~with_known)
    if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
        return missing | (pc.fill_null(pc.equal(column, ""), False).to_numpy(zero_copy_only=False))
    return missing
