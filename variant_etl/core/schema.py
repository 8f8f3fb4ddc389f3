"""The output table's columns, defined once from the merged header.

Coordinates: ``start_position`` is 0-based and ``end_position`` is exclusive
(half-open ``[start, end)``), as in gcp-variant-transforms. With
``--use_1_based_coordinate`` only ``start_position`` changes (POS as written);
the 1-based inclusive end equals the 0-based exclusive end, so ``end_position``
is the same in both conventions.

Layout (names and nesting as in gcp-variant-transforms):

    reference_name, start_position, end_position, reference_bases,
    alternate_bases[] {alt, <Number=A INFO fields>},
    names[], quality, filter[],
    call[] {sample_id, name, genotype[], phaseset, <FORMAT fields but GT, PS>},
    <other INFO fields, END excepted: it is end_position>
"""

from __future__ import annotations

import dataclasses
import re

import pyarrow as pa
import pyarrow.compute as pc

from variant_etl.core.errors import SchemaError
from variant_etl.core.header import FieldDef, MergedHeader
from variant_etl.core.options import SchemaOptions

REFERENCE_NAME = "reference_name"
START_POSITION = "start_position"
END_POSITION = "end_position"
REFERENCE_BASES = "reference_bases"
ALTERNATE_BASES = "alternate_bases"
ALT = "alt"
NAMES = "names"
QUALITY = "quality"
FILTER = "filter"
CALL = "call"
HOM_REF_CALL = "hom_ref_call"  # --move_hom_ref_calls: sample_id (and name) of the 0/0 calls
SAMPLE_ID = "sample_id"
CALL_NAME = "name"
GENOTYPE = "genotype"
PHASESET = "phaseset"

FIXED_COLUMNS = (
    REFERENCE_NAME, START_POSITION, END_POSITION, REFERENCE_BASES,
    ALTERNATE_BASES, NAMES, QUALITY, FILTER, CALL,
)  # fmt: skip
ORIGIN = "_origin"  # hidden, while merging: input file index << 40 | record index
ORIGIN_FILE_SHIFT = 40
RECORDS = "_records"  # hidden, after merging: input records that make up the row
# INFO fields that are columns already or consumed by one.
INFO_CONSUMED = ("END",)
# FORMAT fields that are call columns already.
FORMAT_CONSUMED = ("GT", "PS")
MISSING_GENOTYPE = -1

_ARROW_TYPES = {
    "Integer": pa.int64(),
    "Float": pa.float64(),
    "Flag": pa.bool_(),
    "Character": pa.string(),
    "String": pa.string(),
}
_INVALID_CHARS = re.compile(r"[^A-Za-z0-9_]")


def sanitize_name(name: str) -> str:
    """Makes a VCF field ID a valid column name: ``[A-Za-z][A-Za-z0-9_]*``."""
    clean = _INVALID_CHARS.sub("_", name)
    if not clean or not clean[0].isalpha():
        clean = "field_" + clean
    return clean


@dataclasses.dataclass(frozen=True)
class FieldColumn:
    """A column that holds one INFO or FORMAT field."""

    name: str
    field: FieldDef

    @property
    def value_type(self) -> pa.DataType:
        return _ARROW_TYPES[self.field.type]

    @property
    def arrow_type(self) -> pa.DataType:
        return pa.list_(self.value_type) if self.field.is_list else self.value_type


@dataclasses.dataclass(frozen=True)
class VariantSchema:
    """Columns of the variant table, in output order."""

    info_columns: tuple[FieldColumn, ...]  # top-level INFO columns
    alt_columns: tuple[FieldColumn, ...]  # Number=A INFO fields, under alternate_bases
    call_columns: tuple[FieldColumn, ...]  # FORMAT fields, under call
    with_calls: bool
    options: SchemaOptions = SchemaOptions()
    moved_info_columns: tuple[FieldColumn, ...] = ()  # INFO fields copied into each call

    @property
    def infos(self) -> dict[str, FieldColumn]:
        return {c.field.id: c for c in self.info_columns + self.alt_columns + self.moved_info_columns}

    @property
    def formats(self) -> dict[str, FieldColumn]:
        return {c.field.id: c for c in self.call_columns}

    def alternate_bases_type(self) -> pa.DataType:
        fields = [pa.field(ALT, pa.string())]
        # One struct per alternate allele, so a Number=A field holds one value here.
        fields += [pa.field(c.name, c.value_type) for c in self.alt_columns]
        return pa.list_(pa.struct(fields))

    def call_fields(self) -> list[pa.Field]:
        fields = [pa.field(SAMPLE_ID, pa.int64())]
        if self.options.include_call_name:
            fields.append(pa.field(CALL_NAME, pa.string()))
        fields += [pa.field(GENOTYPE, pa.list_(pa.int64())), pa.field(PHASESET, pa.string())]
        if self.options.copy_quality_to_calls:
            fields.append(pa.field(QUALITY, pa.float64()))
        if self.options.copy_filter_to_calls:
            fields.append(pa.field(FILTER, pa.list_(pa.string())))
        fields += [pa.field(c.name, c.arrow_type) for c in self.call_columns]
        fields += [pa.field(c.name, c.arrow_type) for c in self.moved_info_columns]
        return fields

    def call_type(self) -> pa.DataType:
        return pa.list_(pa.struct(self.call_fields()))

    def arrow_schema(self) -> pa.Schema:
        fields = [
            pa.field(REFERENCE_NAME, pa.string()),
            pa.field(START_POSITION, pa.int64()),
            pa.field(END_POSITION, pa.int64()),
            pa.field(REFERENCE_BASES, pa.string()),
            pa.field(ALTERNATE_BASES, self.alternate_bases_type()),
            pa.field(NAMES, pa.list_(pa.string())),
            pa.field(QUALITY, pa.float64()),
            pa.field(FILTER, pa.list_(pa.string())),
        ]
        if self.with_calls:
            fields.append(pa.field(CALL, self.call_type()))
        fields += [pa.field(c.name, c.arrow_type) for c in self.info_columns]
        return pa.schema(fields)


def build_schema(header: MergedHeader, options: SchemaOptions | None = None) -> VariantSchema:
    """Derives the columns from the merged header; rejects names that would collide."""
    options = options or SchemaOptions()
    regex = options.info_keys_to_move_to_calls_regex
    move = re.compile(regex) if regex else None
    info_columns, alt_columns, call_columns, moved = [], [], [], []
    for field in header.infos.values():
        if field.id in INFO_CONSUMED:
            continue
        column = FieldColumn(sanitize_name(field.id), field)
        if move is not None and move.fullmatch(field.id):
            moved.append(column)
        elif field.number == "A" and options.split_alternate_allele_info_fields:
            alt_columns.append(column)
        else:
            info_columns.append(column)
    for field in header.formats.values():
        if field.id in FORMAT_CONSUMED:
            continue
        call_columns.append(FieldColumn(sanitize_name(field.id), field))
    format_names = {c.name.lower(): c.field.id for c in call_columns}
    for column in moved:
        if column.name.lower() in format_names:
            raise SchemaError(
                f"INFO field {column.field.id!r} matches --info_keys_to_move_to_calls_regex "
                f"{options.info_keys_to_move_to_calls_regex!r}, but the calls already have the FORMAT "
                f"field {format_names[column.name.lower()]!r}. Hint: narrow the regex."
            )
    _check_unique("top-level column", FIXED_COLUMNS, info_columns, "INFO")
    _check_unique("alternate_bases field", (ALT,), alt_columns, "INFO")
    call_fixed = [f.name for f in VariantSchema((), (), (), True, options).call_fields()]
    _check_unique("call field", tuple(call_fixed), call_columns + moved, "FORMAT or moved INFO")
    return VariantSchema(
        info_columns=tuple(info_columns),
        alt_columns=tuple(alt_columns),
        call_columns=tuple(call_columns),
        with_calls=header.has_samples,
        options=options,
        moved_info_columns=tuple(moved),
    )


def _check_unique(what: str, fixed: tuple[str, ...], columns: list[FieldColumn], kind: str) -> None:
    # BigQuery column names are case-insensitive, so compare lower-cased.
    taken = {name.lower(): f"the fixed column {name!r}" for name in fixed}
    for column in columns:
        key = column.name.lower()
        if key in taken:
            raise SchemaError(
                f"{kind} field {column.field.id!r} becomes the {what} {column.name!r}, "
                f"which clashes with {taken[key]} (names are compared case-insensitively). "
                "Hint: rename the field in the input headers."
            )
        taken[key] = f"{kind} field {column.field.id!r}"


def without_record_counts(rows):
    """(rows without the hidden ``_records`` and ``_origin`` columns, input records they hold).

    ``rows`` is a RecordBatch or Table; unmerged rows hold one record each.
    """
    if ORIGIN in rows.schema.names:
        rows = rows.drop_columns([ORIGIN])
    if RECORDS not in rows.schema.names:
        return rows, rows.num_rows
    records = int(pc.sum(rows.column(RECORDS)).as_py() or 0)
    return rows.drop_columns([RECORDS]), records


# BigQuery and Avro encodings of the same columns (from the Arrow schema, so there is one list).
_BIGQUERY_TYPES = {
    pa.int64(): "INT64",
    pa.float64(): "FLOAT64",
    pa.bool_(): "BOOL",
    pa.string(): "STRING",
    pa.timestamp("us"): "DATETIME",
}
# Avro types of BigQuery's column types, in both spellings tables.get may return.
_AVRO_TYPES = {
    **dict.fromkeys(("INT64", "INTEGER"), "long"),
    **dict.fromkeys(("FLOAT64", "FLOAT"), "double"),
    **dict.fromkeys(("BOOL", "BOOLEAN"), "boolean"),
    "STRING": "string",
}


def bigquery_fields(
    schema: pa.Schema | list[pa.Field], descriptions: dict[str, str] | None = None
) -> list[dict]:
    """BigQuery schema (REST API form): lists become REPEATED, structs RECORD."""
    fields = []
    for field in schema:
        item_type, mode = field.type, "NULLABLE"
        if pa.types.is_list(item_type):
            item_type, mode = item_type.value_type, "REPEATED"
        entry = {"name": field.name, "mode": mode}
        if pa.types.is_struct(item_type):
            entry["type"] = "RECORD"
            entry["fields"] = bigquery_fields(list(item_type), descriptions)
        else:
            entry["type"] = _BIGQUERY_TYPES[item_type]
        if descriptions and descriptions.get(field.name):
            entry["description"] = descriptions[field.name][:1024]
        fields.append(entry)
    return fields


def avro_schema(fields: list[dict], name: str = "variant") -> dict:
    """Avro record schema for BigQuery load files of these columns (REST form, as
    ``bigquery_fields`` gives them and tables.get returns them), in their order: scalars
    nullable, REPEATED an array (BigQuery REPEATED fields are never NULL, only empty). A column
    the rows lack is written NULL, or empty if REPEATED, so a file can hold a table's every
    column whatever the run read."""
    counter = iter(range(1_000_000))

    def avro_field(field: dict) -> dict:
        if field["type"] in ("RECORD", "STRUCT"):
            item = {
                "type": "record",
                "name": f"{field['name']}_{next(counter)}",
                "fields": [avro_field(f) for f in field["fields"]],
            }
        else:
            item = _AVRO_TYPES[field["type"]]
        if field.get("mode") == "REPEATED":
            return {"name": field["name"], "type": {"type": "array", "items": item}, "default": []}
        return {"name": field["name"], "type": ["null", item], "default": None}

    return {"type": "record", "name": name, "fields": [avro_field(f) for f in fields]}


def field_descriptions(schema: VariantSchema) -> dict[str, str]:
    """Column name -> the VCF header's Description, for BigQuery column descriptions."""
    columns = schema.info_columns + schema.alt_columns + schema.call_columns + schema.moved_info_columns
    return {c.name: c.field.description for c in columns}
