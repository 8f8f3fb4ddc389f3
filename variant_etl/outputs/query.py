"""``query``: the variants of a Parquet output that overlap ``--genomic_regions``, with the calls
of ``--sample_names`` and the ``--columns`` asked for, read by DuckDB and printed as a table or
written to CSV/Parquet. The region condition is on reference_name/start_position/end_position,
so DuckDB skips the row groups whose min/max statistics cannot match (files are sorted by
position). Names and positions are bound parameters; column names are checked against the
Parquet schema before they reach the SQL text."""

from __future__ import annotations

import difflib
import os
import shutil
import sys
from collections.abc import Sequence

from variant_etl.core.errors import OutputError, VariantEtlError
from variant_etl.outputs import storage
from variant_etl.outputs.selection import Selection, select

SITE_COLUMNS = (
    "reference_name",
    "start_position",
    "end_position",
    "reference_bases",
    "alternate_bases.alt",
    "names",
    "quality",
    "filter",
)
# What a VCF user may type, for the hint (docs/schema.md maps every VCF field to a column)
_VCF_NAMES = {
    "chrom": "reference_name", "pos": "start_position", "id": "names", "ref": "reference_bases",
    "alt": "alternate_bases.alt", "qual": "quality", "call.gt": "call.genotype", "call.ps": "call.phaseset",
}  # fmt: skip
OUTPUT_FORMATS = {".csv": "(FORMAT csv, HEADER)", ".parquet": "(FORMAT parquet, COMPRESSION zstd)"}


def query(
    input_parquet_dir: str,
    *,
    genomic_regions: Sequence[str] = (),
    sample_names: Sequence[str] = (),
    columns: Sequence[str] | None = None,
    output: str | None = None,
    limit: int | None = None,
    regions_by_start_position: bool = False,
) -> int | None:
    """Prints the selected rows as a table, or with ``output`` (.csv or .parquet) writes them
    there and returns how many."""
    import duckdb

    selection = select(
        input_parquet_dir, list(genomic_regions), list(sample_names), by_start=regions_by_start_position
    )
    target = _output_format(output) if output else None  # checked before any reading
    if output:
        storage.local_target(output, "--output")
    connection = duckdb.connect()
    sql, params = query_sql(
        input_parquet_dir, selection, connection, columns=list(columns) if columns else None, limit=limit
    )
    try:
        if target:
            path = output.replace("'", "''")  # COPY takes no parameter for its target
            (rows,) = connection.execute(f"COPY ({sql}) TO '{path}' {target}", params).fetchone()
            return rows
        width = shutil.get_terminal_size((200, 24)).columns
        connection.sql(sql, params=params).show(max_rows=limit or 20, max_width=width)
    except duckdb.Error as err:
        message = str(err).splitlines()[0]
        raise VariantEtlError(f"query of {input_parquet_dir} failed: {message}") from None
    finally:
        sys.stdout.flush()
    return None


def query_sql(
    input_dir: str, selection: Selection, connection, *, columns: list[str] | None, limit: int | None
) -> tuple[str, list]:
    """The SELECT statement to run on the DuckDB ``connection``, and its parameters."""
    if not selection.files:
        raise OutputError(f"{input_dir}: the output holds no variants (no shard file)")
    fields = parquet_fields(selection.files[0])
    if not columns:
        columns = [name for name in SITE_COLUMNS if name.split(".")[0] in fields]
        if selection.sample_ids is not None and "call" in fields:
            columns.append("call")
    exprs = ", ".join(
        f"{_column_sql(name, fields, selection, input_dir)} AS {_quote(name)}" for name in columns
    )
    source, params = storage.shard_scan(connection, selection.files)
    sql = f"SELECT {exprs} FROM {source} WHERE {selection.where}"
    params += selection.params
    if limit:
        sql += " LIMIT ?"
        params.append(limit)
    return sql, params


def parquet_fields(path: str) -> dict[str, list[str] | None]:
    """Top-level column -> its sub-fields when it is a list of records (alternate_bases, call)."""
    import pyarrow as pa

    fields = {}
    for field in storage.read_schema(path):
        kind = field.type
        if pa.types.is_list(kind) and pa.types.is_struct(kind.value_type):
            fields[field.name] = [child.name for child in kind.value_type]
        else:
            fields[field.name] = None
    return fields


def _column_sql(name: str, fields: dict[str, list[str] | None], selection: Selection, input_dir: str) -> str:
    parent, _, child = name.partition(".")
    if parent in fields and (not child or child in (fields[parent] or ())):
        column = selection.call_filter() if parent == "call" else _quote(parent)
        if not child:
            return column
        return f"[x.{_quote(child)} FOR x IN {column}]"
    known = [*fields, *(f"{p}.{c}" for p, children in fields.items() for c in children or ())]
    close = (
        [k for k in known if k.lower() == name.lower()]
        or [k for k in (_VCF_NAMES.get(name.lower()),) if k in known]
        or difflib.get_close_matches(name, known, n=1)
        or [k for k in known if k.lower().startswith(name.lower())]
    )
    guess = f"did you mean {close[0]!r}? " if close else ""
    raise VariantEtlError(
        f"--columns: no column {name!r} in {input_dir}. Hint: {guess}its columns are {', '.join(known)}"
    )


def _output_format(path: str) -> str:
    extension = os.path.splitext(path)[1].lower()
    if extension not in OUTPUT_FORMATS:
        raise VariantEtlError(
            f"--output: {path!r} must end in .csv or .parquet. Hint: leave --output out to print a table"
        )
    return OUTPUT_FORMATS[extension]


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'
