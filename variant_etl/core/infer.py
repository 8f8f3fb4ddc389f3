"""--infer_headers: definitions for INFO and FORMAT fields used but not declared,
and corrections of declared ones that the values contradict.

One extra pass over the record text of every input. For each undeclared key:
Type is Flag when it never carries a value, Integer when every value is an
integer, Float when every value is a number, String otherwise; Number is 0 for a
flag, 1 when no value ever has more than one item, '.' otherwise.

For a declared key: Integer values that are not all integers make it Float;
numeric values that are not all numbers make it String; a Number=1 key with
several values becomes Number='.'.
"""

from __future__ import annotations

import dataclasses

from variant_etl.core.header import FieldDef


@dataclasses.dataclass
class _Seen:
    flag: bool = True
    integer: bool = True
    number: bool = True
    single: bool = True

    def add(self, value: str | None) -> None:
        if value is None:
            return
        self.flag = False
        items = value.split(",")
        if len(items) > 1:
            self.single = False
        for item in items:
            if item in (".", ""):
                continue
            if self.integer and not _is_int(item):
                self.integer = False
            if self.number and not self.integer and not _is_float(item):
                self.number = False

    def definition(self, field_id: str, *, allow_flag: bool) -> FieldDef:
        description = "Inferred by variant_etl --infer_headers"
        if self.flag and allow_flag:
            return FieldDef(field_id, "0", "Flag", description)
        field_type = "Integer" if self.integer else "Float" if self.number else "String"
        if self.flag:  # a FORMAT key that never had a value
            field_type = "String"
        return FieldDef(field_id, "1" if self.single else ".", field_type, description)


def _is_int(text: str) -> bool:
    try:
        int(text)
    except ValueError:
        return False
    return True


def _is_float(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


class FieldInference:
    """Accumulates what INFO/FORMAT values look like across lines of many files."""

    def __init__(self, declared_infos: dict[str, FieldDef], declared_formats: dict[str, FieldDef]):
        self._declared_infos = declared_infos
        self._declared_formats = declared_formats
        self._infos: dict[str, _Seen] = {}
        self._formats: dict[str, _Seen] = {}

    def add_line(self, line: str) -> None:
        columns = line.rstrip("\r\n").split("\t")
        if len(columns) < 8:
            return  # malformed; the reader reports it
        if columns[7] not in (".", ""):
            for entry in columns[7].split(";"):
                key, eq, value = entry.partition("=")
                if key:
                    self._infos.setdefault(key, _Seen()).add(value if eq else None)
        if len(columns) > 9:
            keys = columns[8].split(":")
            for index, key in enumerate(keys):
                if key == "GT" and "GT" in self._declared_formats:
                    continue
                seen = self._formats.setdefault(key, _Seen())
                for sample in columns[9:]:
                    parts = sample.split(":")
                    if index < len(parts):
                        seen.add(parts[index])

    def definitions(self) -> tuple[dict[str, FieldDef], dict[str, FieldDef]]:
        """Definitions for undeclared keys, and corrected ones for declared keys."""
        infos = {
            k: _corrected(self._declared_infos[k], s)
            if k in self._declared_infos
            else s.definition(k, allow_flag=True)
            for k, s in sorted(self._infos.items())
        }
        formats = {}
        for k, s in sorted(self._formats.items()):
            if k in self._declared_formats:
                formats[k] = _corrected(self._declared_formats[k], s)
            elif k == "GT":
                formats[k] = FieldDef(k, "1", "String", "Genotype")
            else:
                formats[k] = s.definition(k, allow_flag=False)
        changed_infos = {k: f for k, f in infos.items() if self._declared_infos.get(k) != f}
        changed_formats = {k: f for k, f in formats.items() if self._declared_formats.get(k) != f}
        return changed_infos, changed_formats


def _corrected(field: FieldDef, seen: _Seen) -> FieldDef:
    field_type, number = field.type, field.number
    if field_type == "Integer" and not seen.integer:
        field_type = "Float" if seen.number else "String"
    elif field_type == "Float" and not seen.number:
        field_type = "String"
    if number == "1" and not seen.single:
        number = "."
    if (field_type, number) == (field.type, field.number):
        return field
    return FieldDef(field.id, number, field_type, field.description)
