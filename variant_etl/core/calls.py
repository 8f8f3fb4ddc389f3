"""Calls moved out of ``call``, as gcp-variant-transforms' options do.

``--omit_empty_sample_calls``: calls that say nothing are left out of ``call``. A call is
empty when its genotype is empty or every allele is missing (``./.``) and each of its FORMAT
fields is missing: null, an empty list or string, or a list of one null. Its sample_id and
phaseset do not count.

``--move_hom_ref_calls``: homozygous-reference calls go to ``hom_ref_call`` (sample ids only)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from variant_etl.core.schema import CALL, CALL_NAME, GENOTYPE, HOM_REF_CALL, PHASESET, SAMPLE_ID

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


def hom_ref_call_type(call_type: pa.DataType) -> pa.DataType:
    """``hom_ref_call``: sample_id (and name, with --include_call_name) of each moved call."""
    struct = call_type.value_type
    fields = [struct.field(SAMPLE_ID)]
    if struct.get_field_index(CALL_NAME) >= 0:
        fields.append(struct.field(CALL_NAME))
    return pa.list_(pa.struct(fields))


def with_hom_ref_column(schema: pa.Schema) -> pa.Schema:
    """The schema with ``hom_ref_call`` just before ``call``, where gcp-variant-transforms has it."""
    if CALL not in schema.names:
        return schema
    at = schema.get_field_index(CALL)
    return schema.insert(at, pa.field(HOM_REF_CALL, hom_ref_call_type(schema.field(CALL).type)))


def move_hom_ref_calls(batch: pa.RecordBatch) -> pa.RecordBatch:
    """``--move_hom_ref_calls``, as gcp-variant-transforms: each call whose genotype is all
    reference alleles (``0/0``, ``0|0``, ``0``) leaves ``call`` for ``hom_ref_call``, which keeps
    only its sample_id (and name); its FORMAT values are dropped. A call without GT, or with a
    missing allele (``0/.``), stays."""
    if CALL not in batch.schema.names:
        return batch
    calls = batch.column(CALL)
    if isinstance(calls, pa.ChunkedArray):
        calls = calls.combine_chunks()
    values = pc.list_flatten(calls)
    parents = pc.list_parent_indices(calls).to_numpy()
    genotypes = values.field(GENOTYPE)
    lengths = pc.fill_null(pc.list_value_length(genotypes), 0).to_numpy()
    alleles = pc.list_flatten(genotypes)
    not_ref = np.asarray(pc.not_equal(alleles, 0).to_numpy(zero_copy_only=False), dtype=bool)
    with_other = np.bincount(pc.list_parent_indices(genotypes).to_numpy()[not_ref], minlength=len(values))
    hom_ref = (lengths > 0) & (with_other == 0)
    kept_type = hom_ref_call_type(calls.type)
    moved = values.filter(pa.array(hom_ref))
    moved = pa.StructArray.from_arrays(
        [moved.field(f.name) for f in kept_type.value_type], fields=list(kept_type.value_type)
    )
    columns = {
        CALL: _lists(parents[~hom_ref], len(calls), values.filter(pa.array(~hom_ref)), calls.is_null()),
        HOM_REF_CALL: _lists(parents[hom_ref], len(calls), moved, None),
    }
    schema = with_hom_ref_column(batch.schema)
    arrays = [columns[f.name] if f.name in columns else batch.column(f.name) for f in schema]
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


def _lists(parents: np.ndarray, rows: int, items: pa.Array, mask) -> pa.Array:
    """Lists of ``items`` (in order), as many in each of ``rows`` as ``parents`` says."""
    counts = np.bincount(parents, minlength=rows)
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int32)
    return pa.ListArray.from_arrays(pa.array(offsets), items, mask=mask)
