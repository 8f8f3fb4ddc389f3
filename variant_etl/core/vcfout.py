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
import math
from collections.abc import Iterator

import numpy as np
import pyarrow as pa

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
        self._sample_index = {sample_id: i for i, (sample_id, _) in enumerate(samples)}
        names = set(table_schema.names)
        alt_type = table_schema.field(s.ALTERNATE_BASES).type.value_type
        alt_names = {alt_type.field(i).name for i in range(alt_type.num_fields)}
        call_names: set[str] = set()
        if s.CALL in names:
            call_type = table_schema.field(s.CALL).type.value_type
            call_names = {call_type.field(i).name for i in range(call_type.num_fields)}
        # --move_hom_ref_calls kept only the sample of a 0/0 call: it is written back as 0/0
        self._hom_ref = dict.fromkeys(call_names) | {s.GENOTYPE: [0, 0]}
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

    def lines(self, batch: pa.RecordBatch) -> Iterator[str]:
        for row in batch.to_pylist():
            yield self._line(row)

    def _line(self, row: dict) -> str:
        pos = row[s.START_POSITION] + (0 if self._one_based else 1)
        ref = row[s.REFERENCE_BASES]
        alts = row[s.ALTERNATE_BASES] or []
        columns = [
            row[s.REFERENCE_NAME],
            str(pos),
            ";".join(row[s.NAMES]) if row[s.NAMES] else ".",
            ref,
            ",".join(a[s.ALT] or "." for a in alts) if alts else ".",  # NULL: ALT '.' with values
            "." if row[s.QUALITY] is None else _number(row[s.QUALITY], "Float"),
            ";".join(row[s.FILTER]) if row[s.FILTER] else ".",
            self._info_text(row, pos, ref, alts),
        ]
        if self._samples:
            calls = row.get(s.CALL) or []
            if row.get(s.HOM_REF_CALL):
                calls = calls + [self._hom_ref | {s.SAMPLE_ID: c[s.SAMPLE_ID]} for c in row[s.HOM_REF_CALL]]
            columns += self._calls(calls)
        return "\t".join(columns)

    def _info_text(self, row: dict, pos: int, ref: str, alts: list[dict]) -> str:
        entries = []
        # END only where it says more than REF does (the table does not keep a redundant one)
        if self._end and row[s.END_POSITION] != pos - 1 + len(ref):
            entries.append(f"END={row[s.END_POSITION]}")
        for field in self._info:
            if field.where == "split":
                value = _annotation_strings(alts, row.get(field.column), field.column) or None
            elif field.where == "alt":
                value = [a[field.column] for a in alts]
                if all(v is None for v in value):
                    continue
            else:
                value = row[field.column]
            if value is None:
                continue
            if field.definition.type == "Flag":
                if value:
                    entries.append(field.id)
                continue
            entries.append(f"{field.id}={_value(value, field.definition.type)}")
        return ";".join(entries) if entries else "."

    def _calls(self, calls: list[dict]) -> list[str]:
        by_sample: list[dict | None] = [None] * len(self._samples)
        for call in calls:
            index = self._sample_index.get(call[s.SAMPLE_ID])
            if index is not None:
                by_sample[index] = call
        present = [c for c in by_sample if c is not None]
        keys: list[tuple[str, object]] = []
        if any(c[s.GENOTYPE] for c in present):
            keys.append(("GT", None))
        for field in self._formats:
            if any(c[field.column] is not None for c in present):
                keys.append((field.id, field))
        if self._ps and any(_is_phase_number(c[s.PHASESET]) for c in present):
            keys.append(("PS", None))
        if not keys:
            keys.append(("GT", None))  # a FORMAT column needs a key; every call is missing
        out = [":".join(k for k, _ in keys)]
        for call in by_sample:
            if call is None:
                out.append(".")
                continue
            values = []
            for key, field in keys:
                if key == "GT":
                    values.append(_genotype(call[s.GENOTYPE], call[s.PHASESET]))
                elif key == "PS":
                    values.append(call[s.PHASESET] if _is_phase_number(call[s.PHASESET]) else ".")
                elif field.definition is CALL_FILTER:
                    values.append(";".join(call[s.FILTER]) if call[s.FILTER] else ".")
                else:
                    value = call[field.column]
                    values.append("." if value is None else _value(value, field.definition.type))
            while len(values) > 1 and values[-1] == ".":
                values.pop()  # trailing missing values may be left out
            out.append(":".join(values))
        return out


def _is_annotation_list(data_type: pa.DataType) -> bool:
    return pa.types.is_list(data_type) and pa.types.is_struct(data_type.value_type)


def _annotation_strings(alts: list[dict], unmatched: list[str] | None, column: str) -> list[str]:
    """The annotation strings of a record: those of each ALT in order, then those of none."""
    strings = [
        "|".join(_annotation_text(v) for v in annotation.values())
        for alt in alts
        for annotation in alt[column] or ()
    ]
    return strings + list(unmatched or ())


def _annotation_text(value) -> str:
    """A sub-field as text; typed ones (--infer_annotation_types) in their shortest form."""
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(value) if value != int(value) or abs(value) >= 1e15 else str(int(value))
    return str(value)


def _line_id(line: str) -> str:
    return parse_structured(line.rstrip()[len("##INFO=<") : -1]).get("ID", "")


def _is_phase_number(phaseset: str | None) -> bool:
    return phaseset is not None and phaseset != "*"


def _genotype(alleles: list[int], phaseset: str | None) -> str:
    if not alleles:
        return "."
    separator = "|" if phaseset is not None else "/"
    return separator.join("." if a < 0 else str(a) for a in alleles)


def _value(value, field_type: str) -> str:
    if isinstance(value, list):
        return ",".join("." if v is None else _number(v, field_type) for v in value) if value else "."
    return _number(value, field_type)


def _number(value, field_type: str) -> str:
    if field_type == "Float" or isinstance(value, float):
        if math.isfinite(value) and value == int(value) and abs(value) < 1e15:
            return "-0" if value == 0 and math.copysign(1, value) < 0 else str(int(value))
        return str(np.float32(value))  # the shortest text that reads back as the same float32
    return str(value)
