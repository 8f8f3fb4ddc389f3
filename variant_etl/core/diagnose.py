"""Names the field of a record line htslib refused, so the error can say what to fix."""

from __future__ import annotations

from variant_etl.core.header import VcfHeader
from variant_etl.core.limits import MAX_POS


def diagnose_line(line: str, header: VcfHeader) -> tuple[str, str, str]:
    """Returns (field, value, reason) for a line htslib could not parse."""
    columns = line.split("\t")
    expected = 8 + (1 + len(header.samples) if header.samples else 0)
    if len(columns) < 8 or (header.samples and len(columns) != expected):
        return (
            "line",
            line[:200],
            f"expected {expected} tab-separated columns, found {len(columns)}",
        )
    pos = columns[1]
    if not pos.strip().isdigit() or int(pos) < 1:
        return "POS", pos, "expected a positive integer"
    if int(pos) > MAX_POS:
        return "POS", pos, f"expected at most {MAX_POS} (htslib's largest position)"
    ref = columns[3]
    if not ref or any(c not in "ACGTNacgtn*." for c in ref):
        return "REF", ref, "expected bases A, C, G, T or N"
    qual = columns[5]
    if qual != ".":
        try:
            float(qual)
        except ValueError:
            return "QUAL", qual, "expected a number or '.'"
    for entry in columns[7].split(";"):
        key, _, value = entry.partition("=")
        field = header.infos.get(key)
        if field and value and field.type in ("Integer", "Float"):
            bad = _first_non_numeric(value, field.type)
            if bad is not None:
                return f"INFO/{key}", bad, f"Type={field.type}: expected a number"
    if header.samples:
        keys = columns[8].split(":")
        for name, sample in zip(header.samples, columns[9:]):
            parts = sample.split(":")
            if len(parts) > len(keys):
                return (
                    f"sample {name}",
                    sample,
                    f"has {len(parts)} sub-fields but FORMAT {columns[8]!r} lists {len(keys)}",
                )
            for key, value in zip(keys, parts):
                field = header.formats.get(key)
                if field and field.type in ("Integer", "Float"):
                    bad = _first_non_numeric(value, field.type)
                    if bad is not None:
                        return f"FORMAT/{key} of {name}", bad, f"Type={field.type}: expected a number"
    return "record", line[:200], "htslib could not parse this line"


def _first_non_numeric(value: str, field_type: str) -> str | None:
    for item in value.split(","):
        if item in (".", ""):
            continue
        try:
            int(item) if field_type == "Integer" else float(item)
        except ValueError:
            return item
    return None
