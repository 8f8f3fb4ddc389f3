"""What ``export --input_table PROJECT:DATASET.TABLE`` reads from BigQuery: the shard tables
``TABLE__<suffix>`` that ``launch`` wrote, the samples of ``TABLE__sample_info`` and the header of
``TABLE__vcf_header`` (definitions made from the table schema for what it does not define, or for
everything when there is no such table: tables of older versions or of gcp-variant-transforms).

Regions and samples are applied in the SQL, as bound query parameters: the SQL text holds only
table and column names, which come from BigQuery's own listing and are checked before use."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator

import pyarrow as pa

from variant_etl.core import schema as s
from variant_etl.core.bigquery_rows import from_bigquery_rows
from variant_etl.core.bigquery_tables import make_client, parse_output_table, shown
from variant_etl.core.errors import OutputError
from variant_etl.core.header import (
    DEFAULT_FILEFORMAT,
    FieldDef,
    VcfHeader,
    definition_line,
    merge_headers,
    parse_header,
    run_header_lines,
    with_extra_lines,
)
from variant_etl.core.layout import HEADER_SUFFIX, SAMPLE_INFO_SUFFIX
from variant_etl.outputs.selection import choose_samples, region_bounds, sample_ids_named

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_VCF_TYPES = {"INT64": "Integer", "INTEGER": "Integer", "FLOAT64": "Float", "FLOAT": "Float",
              "STRING": "String", "BOOL": "Flag", "BOOLEAN": "Flag"}  # fmt: skip
_ARROW_TYPES = {"Integer": pa.int64(), "Float": pa.float64(), "String": pa.string(), "Flag": pa.bool_()}
# call fields that are not FORMAT fields (quality and filter come back as QUAL/FT: core/vcfout.py)
_CALL_FIXED = (s.SAMPLE_ID, s.CALL_NAME, s.GENOTYPE, s.PHASESET, s.QUALITY, s.FILTER)


@dataclasses.dataclass
class TableRows:
    header: VcfHeader
    samples: list[tuple[int, str]]  # (sample_id, name) of the sample columns
    schema: pa.Schema
    batches: Iterator[pa.RecordBatch]
    one_based: bool


def read_tables(
    text: str,
    regions: list[str],
    sample_names: list[str],
    *,
    project: str | None,
    null_numeric_value: int,
    batch_values: int,
    by_start: bool = False,
) -> TableRows:
    from google.api_core import exceptions
    from google.cloud import bigquery

    project, dataset, table = parse_output_table(text, project, option="--input_table")
    region_bounds(regions, one_based=False, by_start=by_start)  # bad regions: refused before any request
    client = make_client(project)
    base = f"{project}.{dataset}.{table}"

    def rows(sql: str, params=()) -> list[dict]:
        config = bigquery.QueryJobConfig(query_parameters=list(params))
        return [dict(row.items()) for row in client.query(sql, job_config=config).result()]

    shard_tables, has_header_table = _shard_tables(client, text, project, dataset, table)
    # The columns as a query sees them (the emulator's table metadata misses columns added by
    # ALTER TABLE; LIMIT 0 reads nothing), with the column descriptions of the table.
    first = shard_tables[0]
    columns = client.query(f"SELECT * FROM `{_sql_id(first)}` LIMIT 0").result().schema
    fields = _described([f.to_api_repr() for f in columns], [f.to_api_repr() for f in first.schema])
    header, one_based = _header(rows, base, has_header_table, shard_tables, fields)

    sample_rows = rows(f"SELECT sample_id, sample_name, file_path FROM `{base}__{SAMPLE_INFO_SUFFIX}`")
    sample_ids = sample_ids_named(sample_rows, sample_names, base) if sample_names else None
    samples = choose_samples(sample_rows, sample_ids)
    sql, params = _variants_sql(
        [_sql_id(t) for t in shard_tables],
        [f["name"] for f in fields],
        region_bounds(regions, one_based=one_based, by_start=by_start),
        sample_ids,
        list(header.contigs),
    )

    def batches() -> Iterator[pa.RecordBatch]:
        try:
            job = client.query(sql, job_config=bigquery.QueryJobConfig(query_parameters=params))
            # pages of about batch_values calls: a page of 10,000 rows of 2,500 samples is 2.5 GB
            page_rows = max(16, min(10_000, batch_values // max(len(samples), 1)))
            for batch in job.result(page_size=page_rows).to_arrow_iterable():
                if batch.num_rows:
                    yield from_bigquery_rows(batch, null_numeric_value)
        except exceptions.GoogleAPICallError as err:
            raise OutputError(f"the query of {base}__* failed: {str(err).splitlines()[0]}") from None

    return TableRows(header, samples, arrow_schema(fields), batches(), one_based)


def _shard_tables(client, text: str, project: str, dataset: str, table: str) -> tuple[list, bool]:
    """The TABLE__<suffix> tables (same columns in each), and whether TABLE__vcf_header exists."""
    from google.api_core import exceptions

    base = f"{project}.{dataset}.{table}"
    try:
        listed = sorted(t.table_id for t in client.list_tables(f"{project}.{dataset}"))
    except exceptions.NotFound:
        raise OutputError(
            f"--input_table {shown(text)}: dataset {project}.{dataset} does not exist"
        ) from None
    prefix = f"{table}__"
    suffixes = [name[len(prefix) :] for name in listed if name.startswith(prefix)]
    if SAMPLE_INFO_SUFFIX not in suffixes:
        raise OutputError(
            f"--input_table {shown(text)}: no table {base}__{SAMPLE_INFO_SUFFIX}, so not the output of "
            "a completed `variant_etl launch`. Hint: pass the --output_table of a run that finished."
        )
    shard_tables = []
    for suffix in suffixes:
        if suffix in (SAMPLE_INFO_SUFFIX, HEADER_SUFFIX):
            continue
        if not _NAME.fullmatch(suffix):
            raise OutputError(f"{base}__{shown(suffix)}: not a name launch writes; remove or rename it")
        shard_tables.append(client.get_table(f"{base}__{suffix}"))
    if not shard_tables:
        raise OutputError(f"--input_table {shown(text)}: no shard tables {base}__<suffix>")
    first = shard_tables[0]
    for other in shard_tables[1:]:
        if [f.name for f in other.schema] != [f.name for f in first.schema]:
            raise OutputError(
                f"{_sql_id(other)} has other columns than {_sql_id(first)}. "
                "Hint: --append --update_schema_on_append gives every shard table the same columns."
            )
    return shard_tables, HEADER_SUFFIX in suffixes


def _header(rows, base: str, has_header_table: bool, shard_tables: list, fields: list[dict]):
    """(header, one_based): the stored header(s) of TABLE__vcf_header, else one made from the
    contigs and filters of the rows; either way with definitions from the schema for the
    columns it does not define."""
    stored = []
    if has_header_table:
        stored = rows(
            f"SELECT run_id, coordinates, line_number, line FROM `{base}__{HEADER_SUFFIX}` "
            "ORDER BY ingestion_datetime, run_id, line_number"
        )
    if stored:
        header, one_based = _stored_header(stored, f"{base}__{HEADER_SUFFIX}")
    else:
        # Contigs and filters, so that the header defines what the records use.
        union = " UNION ALL ".join(f"SELECT reference_name, filter FROM `{_sql_id(t)}`" for t in shard_tables)
        contigs = rows(f"SELECT DISTINCT reference_name AS c FROM ({union}) ORDER BY 1")
        filters = rows(f"SELECT DISTINCT f FROM ({union}) AS v, UNNEST(v.filter) AS f ORDER BY 1")
        header = _minimal_header([r["c"] for r in contigs], [r["f"] for r in filters], base)
        # gcp-variant-transforms describes start_position, and says when it is 1-based
        one_based = "1-based" in (_field(fields, s.START_POSITION).get("description") or "")
    return _with_schema_definitions(header, fields, made=not stored), one_based


def _variants_sql(
    tables: list[str],
    columns: list[str],
    regions: list[tuple[str, tuple[int, int] | None]],
    sample_ids: tuple[int, ...] | None,
    contigs: list[str],
):
    """One query over every shard table, sorted by the header's contig order, then position."""
    from google.cloud import bigquery

    for name in columns:
        if not _NAME.fullmatch(name):
            raise OutputError(f"{tables[0]}: column {shown(name)} is not one launch writes")
    params = [bigquery.ArrayQueryParameter("contig_order", "STRING", contigs)]
    clauses = []
    for i, (contig, bounds) in enumerate(regions):
        params.append(bigquery.ScalarQueryParameter(f"contig_{i}", "STRING", contig))
        if bounds is None:
            clauses.append(f"reference_name = @contig_{i}")
            continue
        params += [
            bigquery.ScalarQueryParameter(f"last_start_{i}", "INT64", bounds[0]),
            bigquery.ScalarQueryParameter(f"end_after_{i}", "INT64", bounds[1]),
            bigquery.ScalarQueryParameter(f"first_start_{i}", "INT64", bounds[2]),
        ]
        clauses.append(
            f"(reference_name = @contig_{i} AND start_position <= @last_start_{i} "
            f"AND end_position > @end_after_{i} AND start_position >= @first_start_{i})"
        )
    where = f" WHERE {' OR '.join(clauses)}" if clauses else ""
    selected = []
    for name in columns:
        if name == s.CALL and sample_ids is not None:
            selected.append(
                "ARRAY(SELECT c FROM UNNEST(call) AS c WHERE c.sample_id IN UNNEST(@sample_ids)) AS call"
            )
        else:
            selected.append(f"`{name}`")
    if sample_ids is not None:
        params.append(bigquery.ArrayQueryParameter("sample_ids", "INT64", list(sample_ids)))
    branches = " UNION ALL ".join(f"SELECT {', '.join(selected)} FROM `{t}`{where}" for t in tables)
    ranked = ", ".join(f"v.`{name}`" for name in columns)
    outer = ", ".join(f"`{name}`" for name in columns)
    rank = "(SELECT o FROM UNNEST(@contig_order) AS x WITH OFFSET AS o WHERE x = v.reference_name)"
    # records at one position: by alleles, as the Parquet export does (export.py)
    alleles = "ARRAY_TO_STRING(ARRAY(SELECT a.alt FROM UNNEST(v.alternate_bases) AS a), ',')"
    sql = (
        f"SELECT {outer} FROM (SELECT {ranked}, IFNULL({rank}, ARRAY_LENGTH(@contig_order)) AS contig_rank, "
        f"IFNULL({alleles}, '') AS alleles FROM ({branches}) AS v) "
        "ORDER BY contig_rank, reference_name, start_position, end_position, reference_bases, alleles"
    )
    return sql, params


def _sql_id(table) -> str:
    return f"{table.project}.{table.dataset_id}.{table.table_id}"


def _minimal_header(contigs: list[str], filters: list[str], where: str) -> VcfHeader:
    lines = [DEFAULT_FILEFORMAT]
    lines += [f'##FILTER=<ID={f},Description="{f}">' for f in filters if f != "PASS"]
    lines += [f"##contig=<ID={c}>" for c in contigs if c]
    lines.append("\t".join(("#CHROM", "POS", "ID", "REF", "ALT", "QUAL", "FILTER", "INFO")))
    return parse_header(lines, where, len(lines))


def _stored_header(rows: list[dict], where: str) -> tuple[VcfHeader, bool]:
    """The header of TABLE__vcf_header: that of its one run, or of several runs (--append)
    merged as launch merges the headers of its inputs."""
    runs: dict[str, list[str]] = {}
    for row in rows:
        runs.setdefault(row["run_id"], []).append(row["line"])
    coordinates = {row["coordinates"] for row in rows}
    if len(coordinates) > 1:
        raise OutputError(
            f"{where}: runs with different coordinates ({', '.join(sorted(coordinates))}) appended to "
            "the same tables; their positions cannot be told apart"
        )
    headers = [parse_header(lines, where, len(lines)) for lines in runs.values()]
    if len(headers) > 1:
        lines = run_header_lines(headers, merge_headers(headers, allow_incompatible=True))
        headers = [parse_header(lines, where, len(lines))]
    return headers[0], coordinates.pop().startswith("1-based")


def _with_schema_definitions(header: VcfHeader, fields: list[dict], *, made: bool) -> VcfHeader:
    """The header, plus INFO/FORMAT definitions made from the table schema for the columns it
    does not define (names, BigQuery types and modes, column descriptions); ``made``: a header
    made here, which also needs END, GT and PS (stored headers say whether the run had them)."""
    infos = {s.sanitize_name(i) for i in header.infos}
    formats = {s.sanitize_name(i) for i in header.formats}
    extra = []
    if made:
        extra.append(FieldDef("END", "1", "Integer", "End position of the variant"))
    for field in fields:
        name = field["name"]
        if name == s.ALTERNATE_BASES:
            extra += [
                _definition(f, "A")
                for f in field.get("fields", [])
                if f["name"] != s.ALT and f["name"] not in infos
            ]
        elif name not in s.FIXED_COLUMNS and name not in infos:
            extra.append(_definition(field, None))
    extra_formats = []
    call = _field(fields, s.CALL)
    if call and made:
        for fid, number, kind, text in (
            ("GT", "1", "String", "Genotype"),
            ("PS", "1", "Integer", "Phase set"),
        ):
            if fid not in header.formats:
                extra_formats.append(FieldDef(fid, number, kind, text))
    for f in call.get("fields", []):
        if f["name"] not in _CALL_FIXED and f["name"] not in formats | infos:
            extra_formats.append(_definition(f, None))
    lines = [definition_line("INFO", d) for d in extra if d is not None]
    lines += [definition_line("FORMAT", d) for d in extra_formats if d is not None]
    if not lines:
        return header
    merged = with_extra_lines(list(header.lines), tuple(lines))
    return parse_header(merged, header.path, len(merged))


def _definition(field: dict, number: str | None) -> FieldDef | None:
    kind = _VCF_TYPES.get(field["type"])
    if kind is None or (kind == "Flag" and (number or field.get("mode") == "REPEATED")):
        return None  # a RECORD, or a list of booleans: nothing VCF can define
    if number is None:
        number = "0" if kind == "Flag" else ("." if field.get("mode") == "REPEATED" else "1")
    return FieldDef(field["name"], number, kind, field.get("description") or "")


def _described(fields: list[dict], described: list[dict]) -> list[dict]:
    by_name = {f["name"]: f for f in described}
    out = []
    for field in fields:
        known = by_name.get(field["name"], {})
        field = {**field, "description": known.get("description")}
        if field.get("fields"):
            field["fields"] = _described(field["fields"], known.get("fields", []))
        out.append(field)
    return out


def _field(fields: list[dict], name: str) -> dict:
    return next((f for f in fields if f["name"] == name), {})


def arrow_schema(fields: list[dict]) -> pa.Schema:
    """The Arrow schema of rows of a table with these BigQuery fields (REST API form)."""

    def arrow_type(field: dict) -> pa.DataType:
        if field["type"] in ("RECORD", "STRUCT"):
            item = pa.struct([pa.field(f["name"], arrow_type(f)) for f in field.get("fields", [])])
        elif field["type"] in ("DATETIME", "TIMESTAMP", "DATE"):
            item = pa.string()
        else:
            item = _ARROW_TYPES.get(_VCF_TYPES.get(field["type"], ""), pa.string())
        return pa.list_(item) if field.get("mode") == "REPEATED" else item

    return pa.schema([pa.field(f["name"], arrow_type(f)) for f in fields])
