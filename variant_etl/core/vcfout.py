"""Rows of the variant table back to VCF text: the inverse of the readers.

Values come back as htslib would write them from the values read: floats at 32 bits in
their shortest form, '.' for missing values, GT from the allele indexes and the phase set.

What a merged output holds in its calls besides FORMAT fields comes back as FORMAT fields (VCF
has no other place for a per-sample value): INFO fields moved into the calls
(--info_keys_to_move_to_calls_regex) under their own ID and definition, ``call.quality`` as
``QUAL`` and ``call.filter`` as ``FT`` (the spec's per-sample filter key; ';'-separated).
"""

from __future__ import annotations

import dataclasses
import functools
import math

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from variant_etl.core import schema as s
from variant_etl.core.header import FieldDef, VcfHeader, definition_line, parse_structured
from variant_etl.core.schema import sanitize_name


@dataclasses.dataclass(frozen=True)
class _Field:
    id: str
    column: str  # its name in the table
    # 'info' (top level), 'alt' (under alternate_bases), 'call', or 'split': annotation strings
    # split under alternate_bases (--annotation_fields), those matching no ALT at the top level
    where: str
    definition: FieldDef


CALL_QUALITY = FieldDef("QUAL", "1", "Float", "QUAL of the record this call comes from (call.quality)")
CALL_FILTER = FieldDef("FT", "1", "String", "FILTER of the record this call comes from (call.filter)")


class VcfFormatter:
    """Formats batches of the variant table as VCF record lines.

    ``header``: the run's header (its INFO/FORMAT definitions say which columns are fields);
    ``samples``: (sample_id, name) of the sample columns to write, in order.
    """

    def __init__(
        self, header: VcfHeader, table_schema: pa.Schema, samples: list[tuple[int, str]], *, one_based
    ):
        self._one_based = one_based
        self._samples = samples
        names = set(table_schema.names)
        alt_type = table_schema.field(s.ALTERNATE_BASES).type.value_type
        alt_names = {alt_type.field(i).name for i in range(alt_type.num_fields)}
        call_names: set[str] = set()
        if s.CALL in names:
            call_type = table_schema.field(s.CALL).type.value_type
            call_names = {call_type.field(i).name for i in range(call_type.num_fields)}
        self._info: list[_Field] = []
        for field in header.infos.values():
            if field.id in s.INFO_CONSUMED:
                continue
            column = sanitize_name(field.id)
            if column in alt_names and _is_annotation_list(alt_type.field(column).type):
                self._info.append(_Field(field.id, column, "split", field))
            elif column in names:
                self._info.append(_Field(field.id, column, "info", field))
            elif column in alt_names and column != s.ALT:
                self._info.append(_Field(field.id, column, "alt", field))
        self._end = "END" in header.infos
        self._formats = [
            _Field(f.id, sanitize_name(f.id), "call", f)
            for f in header.formats.values()
            if f.id not in s.FORMAT_CONSUMED and sanitize_name(f.id) in call_names
        ]
        self._ps = "PS" in header.formats
        # Per-call values that are not FORMAT fields of the header: they become FORMAT fields.
        taken = {f.column for f in self._formats} | {f.id for f in header.formats.values()}
        self._moved: list[_Field] = []
        for field in header.infos.values():
            column = sanitize_name(field.id)
            if field.id not in s.INFO_CONSUMED and column not in names | alt_names and column in call_names:
                if column not in taken and field.id not in taken:
                    self._moved.append(_Field(field.id, column, "call", field))
        for column, definition in ((s.QUALITY, CALL_QUALITY), (s.FILTER, CALL_FILTER)):
            if column in call_names and column not in taken and definition.id not in taken:
                self._moved.append(_Field(definition.id, column, "call", definition))
        self._formats += self._moved

    def header_lines(self, lines: list[str]) -> list[str]:
        """The run's header lines (without '#CHROM'), with the definitions of the per-call values
        that become FORMAT fields, in place of the INFO definitions of moved fields."""
        moved = {f.id for f in self._moved}
        kept = [line for line in lines if not (line.startswith("##INFO=<") and _line_id(line) in moved)]
        return kept + [definition_line("FORMAT", f.definition) for f in self._moved]

    def text(self, batch: pa.RecordBatch) -> pa.Array:
        """The record lines of ``batch``, each ending in a newline, as one string array (its
        data buffer is the text). Vectorized: a column or a call field at a time."""
        if batch.num_rows == 0:
            return pa.array([], pa.string())
        shift = 0 if self._one_based else 1
        starts = batch.column(s.START_POSITION)
        alts = batch.column(s.ALTERNATE_BASES)
        columns = [
            batch.column(s.REFERENCE_NAME),
            pc.cast(pc.add(starts, shift), pa.string()),
            _joined(batch.column(s.NAMES), ";"),
            batch.column(s.REFERENCE_BASES),
            # NULL alt: ALT '.' holding values; no alternate_bases: '.'
            _joined(
                _list_of(alts, _fill(_empty_to_null(pc.struct_field(pc.list_flatten(alts), s.ALT)))), ","
            ),
            _fill(_float_text(batch.column(s.QUALITY))),
            _joined(batch.column(s.FILTER), ";"),
            self._info_column(batch, shift),
        ]
        if self._samples:
            columns += self._sample_columns(batch)
        lines = pc.binary_join_element_wise(*columns, "\t")
        return pc.binary_join_element_wise(lines, "\n", "").cast(pa.string())

    def _info_column(self, batch: pa.RecordBatch, shift: int) -> pa.Array:
        entries = []
        if self._end:
            # END only where it says more than REF does (the table does not keep a redundant one)
            ends = batch.column(s.END_POSITION)
            implied = pc.add(batch.column(s.START_POSITION), pc.utf8_length(batch.column(s.REFERENCE_BASES)))
            implied = pc.add(implied, shift - 1)
            entries.append(
                _entry("END", pc.if_else(pc.equal(ends, implied), None, pc.cast(ends, pa.string())))
            )
        alts = batch.column(s.ALTERNATE_BASES)
        for field in self._info:
            kind = field.definition.type
            if field.where == "split":
                value = self._annotation_column(batch, field.column)
            elif field.where == "alt":
                values = pc.struct_field(pc.list_flatten(alts), field.column)
                present = _any_per_row(pc.list_parent_indices(alts), pc.is_valid(values), len(batch))
                value = pc.if_else(
                    present, _joined(_list_of(alts, _fill(_scalar_text(values, kind))), ","), None
                )
            else:
                column = batch.column(field.column)
                if kind == "Flag":
                    entries.append(pc.if_else(pc.fill_null(column, False), field.id, None))
                    continue
                value = _value_text(column, kind)
            entries.append(_entry(field.id, value))
        if not entries:
            return pa.array(["."] * len(batch), pa.string())
        return _fill(_empty_to_null(_join_present(entries, ";")))

    def _annotation_column(self, batch: pa.RecordBatch, column: str) -> pa.Array:
        """The annotation strings of each record: those of each ALT in order, then those of
        none (the top-level column); NULL where there are none."""
        alts = batch.column(s.ALTERNATE_BASES)
        per_alt = pc.struct_field(pc.list_flatten(alts), column)
        annotations = pc.list_flatten(per_alt)
        rows = [np.asarray(pc.list_parent_indices(alts))[np.asarray(pc.list_parent_indices(per_alt))]]
        texts = [_annotation_texts(annotations)]
        if column in batch.schema.names:
            unmatched = batch.column(column)
            rows.append(np.asarray(pc.list_parent_indices(unmatched)))
            texts.append(_fill(pc.list_flatten(unmatched)))
        row = np.concatenate(rows)
        order = np.argsort(row, kind="stable")
        strings = pa.concat_arrays([t.cast(pa.string()) for t in texts]).take(pa.array(order))
        counts = np.bincount(row, minlength=len(batch))
        lists = pa.ListArray.from_arrays(_offsets(counts), strings)
        return pc.if_else(pa.array(counts > 0), pc.binary_join(lists, ","), None)

    def _sample_columns(self, batch: pa.RecordBatch) -> list[pa.Array]:
        """FORMAT and one column per sample: a call's values for the keys any call of its record
        has, trailing missing values left out; '.' for a sample without a call."""
        n_rows, n_samples = len(batch), len(self._samples)
        ids = pa.array([sample_id for sample_id, _ in self._samples], pa.int64())
        if s.CALL in batch.schema.names:
            calls_list = batch.column(s.CALL)
            calls = pc.list_flatten(calls_list)
            rows = np.asarray(pc.list_parent_indices(calls_list))
            where = pc.index_in(pc.struct_field(calls, s.SAMPLE_ID), value_set=ids)
        else:
            calls, rows, where = None, np.zeros(0, np.int64), pa.array([], pa.int32())
        chosen = np.asarray(pc.is_valid(where), dtype=bool)
        # (key, its text per call, the calls with a value)
        keys: list[tuple[str, pa.Array, np.ndarray]] = [("GT", pa.array([], pa.string()), np.zeros(0, bool))]
        if calls is not None:
            genotypes = pc.struct_field(calls, s.GENOTYPE)
            phased = pc.is_valid(pc.struct_field(calls, s.PHASESET))
            keys[0] = ("GT", _genotype_text(genotypes, phased), _non_empty(genotypes))
            for field in self._formats:
                values = pc.struct_field(calls, field.column)
                if field.definition is CALL_FILTER:
                    text = _joined(values, ";")
                else:
                    text = _fill(_value_text(values, field.definition.type))
                keys.append((field.id, text, np.asarray(pc.is_valid(values))))
            if self._ps:
                phaseset = pc.struct_field(calls, s.PHASESET)
                number = pc.fill_null(pc.not_equal(phaseset, "*"), False)
                keys.append(("PS", _fill(pc.if_else(number, phaseset, None)), np.asarray(number)))
        # --move_hom_ref_calls kept only the sample of a 0/0 call: it is written back as 0/0
        hom_rows, hom_where = np.zeros(0, np.int64), pa.array([], pa.int32())
        if s.HOM_REF_CALL in batch.schema.names:
            hom = batch.column(s.HOM_REF_CALL)
            hom_rows = np.asarray(pc.list_parent_indices(hom))
            hom_where = pc.index_in(pc.struct_field(pc.list_flatten(hom), s.SAMPLE_ID), value_set=ids)
        hom_chosen = np.asarray(pc.is_valid(hom_where))
        # which keys each record has: any chosen call with a value (a 0/0 call has a GT)
        has = [_any_per_row(rows, chosen & valued, n_rows) for _, _, valued in keys]
        has[0] |= _any_per_row(hom_rows, hom_chosen, n_rows)
        has[0] |= ~np.logical_or.reduce(has)  # a FORMAT column needs a key; every call is missing: GT
        format_column = _format_names([k for k, _, _ in keys], np.stack(has))
        cells_parts, slots_parts = [], []
        if calls is not None and len(rows):
            cells_parts.append(_cells(keys, [h[rows] for h in has]).filter(pa.array(chosen)))
            slots_parts.append(rows[chosen] * n_samples + np.asarray(where.filter(pa.array(chosen))))
        if len(hom_rows):
            cells_parts.append(pa.array(["0/0"] * int(hom_chosen.sum()), pa.string()))
            slots_parts.append(
                hom_rows[hom_chosen] * n_samples + np.asarray(hom_where.filter(pa.array(hom_chosen)))
            )
        return [format_column, _sample_texts(cells_parts, slots_parts, n_rows, n_samples)]


def _cells(keys: list[tuple[str, pa.Array, np.ndarray]], present: list[np.ndarray]) -> pa.Array:
    """Each call's values of the keys its record has (``present``: key x call), ':'-joined,
    trailing missing values left out (never the first key)."""
    first = np.argmax(np.stack(present), axis=0)
    trailing = np.ones(len(present[0]), bool)
    kept: list[np.ndarray] = [None] * len(keys)
    for i in reversed(range(len(keys))):
        dot = np.asarray(pc.equal(keys[i][1], "."))
        drop = present[i] & trailing & dot & (first != i)
        trailing &= dot | ~present[i]
        kept[i] = present[i] & ~drop
    parts = [pc.if_else(pa.array(k), text, None) for k, (_, text, _) in zip(kept, keys)]
    # Every call keeps its record's first key, so no row is all NULL, where 'skip' loses rows.
    cells = pc.binary_join_element_wise(*parts, ":", null_handling="skip")
    return cells if len(cells) == len(first) else _join_present(parts, ":")


def _sample_texts(cells: list[pa.Array], slots: list[np.ndarray], n_rows: int, n_samples: int) -> pa.Array:
    """Per record, its samples' cells tab-joined: each cell at its slot (record x sample), '.'
    where a sample has no call (a later cell of a slot wins)."""
    grid = np.full(n_rows * n_samples, -1, np.int64)
    if cells:
        texts = pa.concat_arrays([c.cast(pa.string()) for c in cells])
        grid[np.concatenate(slots)] = np.arange(len(texts))
        taken = texts.take(pa.array(grid, mask=grid < 0))
    else:
        taken = pa.nulls(n_rows * n_samples, pa.string())
    offsets = np.arange(0, n_rows * n_samples + 1, n_samples, dtype=np.int32)
    return pc.binary_join(pa.ListArray.from_arrays(offsets, _fill(taken)), "\t")


def _join_present(parts: list[pa.Array], separator: str) -> pa.Array:
    """The strings of each row that are not NULL, joined ('' where all are NULL). Not
    binary_join_element_wise's null_handling='skip': pyarrow 25 drops the rows of NULLs only."""
    ended = [pc.binary_join_element_wise(part, separator, "") for part in parts]  # 'value;' or NULL
    return pc.utf8_slice_codeunits(pc.binary_join_element_wise(*ended, "", null_handling="replace"), 0, -1)


def _offsets(counts: np.ndarray) -> pa.Array:
    offsets = np.zeros(len(counts) + 1, np.int32)
    np.cumsum(counts, out=offsets[1:])
    return pa.array(offsets)


def _counts(lists: pa.Array) -> np.ndarray:
    """Elements per list, 0 for a NULL list."""
    return np.asarray(pc.fill_null(pc.list_value_length(lists), 0))


def _list_of(lists: pa.Array, values: pa.Array) -> pa.Array:
    """``values`` (one per element of ``lists``) as lists of the rows of ``lists``."""
    return pa.ListArray.from_arrays(_offsets(_counts(lists)), values, mask=pc.is_null(lists))


def _any_per_row(rows: np.ndarray, flags, n_rows: int) -> np.ndarray:
    flags = np.asarray(flags, dtype=bool)
    return np.bincount(np.asarray(rows)[flags], minlength=n_rows)[:n_rows] > 0


def _non_empty(lists: pa.Array) -> np.ndarray:
    return np.asarray(pc.fill_null(pc.greater(pc.list_value_length(lists), 0), False))


def _fill(strings: pa.Array) -> pa.Array:
    return pc.fill_null(strings, ".") if strings.null_count else strings


def _empty_to_null(strings: pa.Array) -> pa.Array:
    return pc.if_else(pc.equal(strings, ""), None, strings)


def _entry(key: str, values: pa.Array) -> pa.Array:
    """``KEY=value``, NULL where the value is."""
    return pc.binary_join_element_wise(key, values, "=")


def _joined(lists: pa.Array, separator) -> pa.Array:
    """Each list's strings joined ('.' for a NULL element), '.' for an empty or NULL list."""
    values = pc.list_flatten(lists)
    return _join_lists(
        lists, _fill(values.cast(pa.string()) if pa.types.is_string(values.type) else values), separator
    )


def _join_lists(lists: pa.Array, texts: pa.Array, separator) -> pa.Array:
    """The ``texts`` (one per element of ``lists``, none NULL) of each list joined, '.' for an
    empty or NULL list."""
    counts = _counts(lists)
    joined = pc.binary_join(pa.ListArray.from_arrays(_offsets(counts), texts), separator)
    empty = counts == 0
    return pc.if_else(pa.array(empty), ".", joined) if empty.any() else joined


def _value_text(values: pa.Array, kind: str) -> pa.Array:
    """A column's values as VCF text: lists joined by ',' ('.' for a missing element, '.' for
    an empty list); NULL where there is no value."""
    if pa.types.is_list(values.type) or pa.types.is_large_list(values.type):
        joined = _join_lists(values, _fill(_scalar_text(pc.list_flatten(values), kind)), ",")
        return pc.if_else(pc.is_null(values), None, joined) if values.null_count else joined
    return _scalar_text(values, kind)


def _scalar_text(values: pa.Array, kind: str) -> pa.Array:
    if pa.types.is_floating(values.type) or kind == "Float" and pa.types.is_integer(values.type):
        return _float_text(values)
    if pa.types.is_boolean(values.type):
        return pc.if_else(values, "True", "False")
    if pa.types.is_string(values.type) or pa.types.is_large_string(values.type):
        return values.cast(pa.string())
    if pa.types.is_integer(values.type):
        return _int_text(values)
    return pc.cast(values, pa.string())


@functools.lru_cache(maxsize=2)
def _numbers(missing: str | None) -> pa.Array:
    """The text of -1 (``missing`` if given) to 65534: where small numbers take their text from."""
    return pa.array([missing or "-1", *map(str, range((1 << 16) - 1))], pa.string())


def _int_text(values: pa.Array, missing: str | None = None) -> pa.Array:
    """Integers as text (``missing``: the text of negative ones, the missing alleles of GT);
    small ones looked up in a table, three times faster than Arrow's cast."""
    if len(values) > values.null_count:
        low, high = pc.min_max(values).values()
        if low.as_py() >= -1 and high.as_py() < (1 << 16) - 1:
            return _numbers(missing).take(pc.add(values, 1))
    texts = pc.cast(values, pa.string())
    return texts if missing is None else pc.if_else(pc.less(values, 0), missing, texts)


def _float_text(values: pa.Array) -> pa.Array:
    """Floats as their 32-bit value's shortest text (what htslib read), integral ones without
    a fraction: Arrow's own formatting where it writes what Python does, Python's elsewhere."""
    doubles = pc.cast(values, pa.float64())
    x = np.asarray(pc.fill_null(doubles, 0.0))
    size = np.abs(x)
    with np.errstate(invalid="ignore"):
        integral = np.isfinite(x) & (x == np.trunc(x)) & (size < 1e15)
    plain = np.isfinite(x) & ~integral & (size >= 1e-4) & (size < 1e6)
    text = pc.cast(pc.cast(doubles, pa.float32()), pa.string())
    whole = pc.cast(pa.array(np.where(integral, x, 0).astype(np.int64)), pa.string())
    text = pc.if_else(pa.array(integral), whole, text)
    other = np.flatnonzero(~integral & ~plain & np.asarray(pc.is_valid(doubles)))
    negative_zero = np.flatnonzero(integral & (x == 0) & np.signbit(x))
    if len(other) or len(negative_zero):
        texts = text.to_pylist()
        for i in other:
            texts[i] = _float_number(float(x[i]))
        for i in negative_zero:
            texts[i] = "-0"
        text = pa.array(texts, pa.string())
    return pc.if_else(pc.is_null(doubles), None, text)


def _genotype_text(genotypes: pa.Array, phased: pa.Array) -> pa.Array:
    """GT from the allele indexes ('.' for -1), '|' when the call has a phase set."""
    alleles = pc.list_flatten(genotypes)
    texts = _int_text(alleles, ".")
    separator = pc.if_else(phased, "|", "/") if pc.any(phased).as_py() else "/"
    return _join_lists(genotypes, texts, separator)


def _format_names(keys: list[str], has: np.ndarray) -> pa.Array:
    """The FORMAT column: the keys each record has (``has``: key x record), ':'-joined."""
    codes = np.zeros(has.shape[1], np.int64)
    for i in range(len(keys)):
        codes |= has[i].astype(np.int64) << i
    unique, inverse = np.unique(codes, return_inverse=True)
    names = [":".join(k for i, k in enumerate(keys) if code >> i & 1) for code in unique]
    return pa.array(names, pa.string()).take(pa.array(inverse.ravel()))


def _annotation_texts(annotations: pa.Array) -> pa.Array:
    """Each annotation struct as its '|'-joined sub-fields (typed ones in their shortest form)."""
    if len(annotations) == 0:
        return pa.array([], pa.string())
    parts = []
    for i in range(annotations.type.num_fields):
        values = pc.struct_field(annotations, i)
        if pa.types.is_floating(values.type):
            values = pa.array([_annotation_text(v) for v in values.to_pylist()], pa.string())
        elif not pa.types.is_string(values.type):
            values = pc.cast(values, pa.string())
        parts.append(pc.fill_null(values, ""))
    return pc.binary_join_element_wise(*parts, "|")


def _is_annotation_list(data_type: pa.DataType) -> bool:
    return pa.types.is_list(data_type) and pa.types.is_struct(data_type.value_type)


def _annotation_text(value) -> str:
    """A sub-field as text; typed ones (--infer_annotation_types) in their shortest form."""
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(value) if value != int(value) or abs(value) >= 1e15 else str(int(value))
    return str(value)


def _line_id(line: str) -> str:
    return parse_structured(line.rstrip()[len("##INFO=<") : -1]).get("ID", "")


def _float_number(value: float) -> str:
    if math.isfinite(value) and value == int(value) and abs(value) < 1e15:
        return "-0" if value == 0 and math.copysign(1, value) < 0 else str(int(value))
    return str(np.float32(value))  # the shortest text that reads back as the same float32
