"""--infer_headers: definitions for INFO and FORMAT fields used but not declared,
and corrections of declared ones that the values contradict.

One extra pass over the record text of every input. For each undeclared key, as
gcp-variant-transforms infers it: Type is Flag when it never carries a value,
Integer when every value is an integer, Float when every value is a number,
String otherwise; Number is 0 for a flag, '.' for an INFO key with values, and
for a FORMAT key 1 when no value ever has more than one item, '.' otherwise.

For a declared key (as gcp-variant-transforms' inference): Integer values that
are not all integers make it Float; numeric values that are not all numbers make
it String; a Number=1 key with several values, or a Number=A/R/G key whose value
counts do not match the record's alleles, becomes Number='.' (a list of any
length, a top-level column).
"""

from __future__ import annotations

import dataclasses
import re

from variant_etl.core.header import FieldDef, Resolution
from variant_etl.core.records import genotype_count

_COUNTED = ("A", "R", "G")


@dataclasses.dataclass
class _Seen:
    flag: bool = True
    integer: bool = True
    number: bool = True
    single: bool = True
    # Number=A, R, G: whether every value had as many items as the record's alleles ask for
    fits: dict = dataclasses.field(default_factory=lambda: dict.fromkeys(_COUNTED, True))

    def add(self, value: str | None, n_alts: int, ploidy: int | None = None) -> None:
        if value is None:
            return
        self.flag = False
        items = value.split(",")
        if len(items) > 1:
            self.single = False
        present = False
        for item in items:
            if item in (".", ""):
                continue
            present = True
            if self.integer and not _is_int(item):
                self.integer = False
            if self.number and not self.integer and not _is_float(item):
                self.number = False
        if present:
            n = len(items)
            # ALT '.' with one Number=A value loads (the value of a monomorphic site)
            self.fits["A"] &= n == n_alts or (n_alts == 0 and n == 1)
            self.fits["R"] &= n == n_alts + 1
            ploidies = (ploidy,) if ploidy else (1, 2)
            self.fits["G"] &= n in {genotype_count(n_alts + 1, p) for p in ploidies}

    def definition(self, field_id: str, *, info: bool) -> FieldDef:
        description = "Inferred by variant_etl --infer_headers"
        if self.flag and info:
            return FieldDef(field_id, "0", "Flag", description)
        field_type = "Integer" if self.integer else "Float" if self.number else "String"
        if self.flag:  # a FORMAT key that never had a value
            field_type = "String"
        # an INFO key with values is a list, as gcp-variant-transforms infers it (and so its
        # tables have it); a FORMAT key a list only if some value has several items
        number = "." if info or not self.single else "1"
        return FieldDef(field_id, number, field_type, description)

    def corrected(self, field: FieldDef) -> tuple[FieldDef, list[str]]:
        """The declared definition, or the one its values need; and why it changed."""
        field_type, number, why = field.type, field.number, []
        if field_type == "Integer" and not self.integer:
            field_type = "Float" if self.number else "String"
            why.append("values that are not integers")
        elif field_type == "Float" and not self.number:
            field_type = "String"
            why.append("values that are not numbers")
        if number == "1" and not self.single:
            number = "."
            why.append("several values")
        elif number in _COUNTED and not self.fits[number]:
            number = "."
            why.append(f"value counts that do not match Number={field.number}")
        if not why:
            return field, why
        return FieldDef(field.id, number, field_type, field.description), why


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
        n_alts = 0 if columns[4] in (".", "") else columns[4].count(",") + 1
        if columns[7] not in (".", ""):
            for entry in columns[7].split(";"):
                key, eq, value = entry.partition("=")
                if key:
                    self._infos.setdefault(key, _Seen()).add(value if eq else None, n_alts)
        if len(columns) > 9:
            keys = columns[8].split(":")
            gt_at = keys.index("GT") if "GT" in keys else None
            samples = [sample.split(":") for sample in columns[9:]]
            ploidies = [_ploidy(parts, gt_at) for parts in samples]
            for index, key in enumerate(keys):
                if key == "GT" and "GT" in self._declared_formats:
                    continue
                seen = self._formats.setdefault(key, _Seen())
                for parts, ploidy in zip(samples, ploidies):
                    if index < len(parts):
                        seen.add(parts[index], n_alts, ploidy)

    def resolutions(self) -> list[Resolution]:
        """A definition for each undeclared key, and a corrected one for each declared key
        whose values contradict it."""
        found = []
        for kind, seen, declared in (
            ("INFO", self._infos, self._declared_infos),
            ("FORMAT", self._formats, self._declared_formats),
        ):
            for key, values in sorted(seen.items()):
                if key in declared:
                    field, why = values.corrected(declared[key])
                    if why:
                        reason = "the records have " + " and ".join(why)
                        found.append(Resolution(kind, field, ((declared[key], ()),), reason, inferred=True))
                elif kind == "FORMAT" and key == "GT":
                    genotype = FieldDef(key, "1", "String", "Genotype")
                    found.append(Resolution(kind, genotype, (), "the genotype", inferred=True))
                else:
                    field = values.definition(key, info=kind == "INFO")
                    found.append(Resolution(kind, field, (), "inferred from the values", inferred=True))
        return found


def _ploidy(parts: list[str], gt_at: int | None) -> int | None:
    """The call's ploidy, from its GT ('0/1': 2); None without one, or for a lone '.'."""
    if gt_at is None or gt_at >= len(parts) or parts[gt_at] in (".", ""):
        return None
    return len(re.split(r"[/|]", parts[gt_at].lstrip("/|")))
