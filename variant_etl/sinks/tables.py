"""BigQuery tables, on the driver before and after the pipeline: check the dataset and the
tables, create one integer-range-partitioned, clustered table per shard (range partitioning
can only be set at creation), add columns on --update_schema_on_append, insert a run's
sample_info and header rows, delete what a failed run created. See docs/bigquery.md.
"""

from __future__ import annotations

from variant_etl.core.bigquery_tables import header_fields, make_client, sample_info_fields
from variant_etl.core.errors import OutputError
from variant_etl.core.layout import HEADER_SUFFIX, SAMPLE_INFO_SUFFIX
from variant_etl.core.options import BigQueryOptions
from variant_etl.core.partitioning import RangePartitioning
from variant_etl.core.sharding import Shard

CLUSTERING = ["start_position", "end_position"]
# Labels of the tables a run creates: which run, and whether it is still loading them. A run
# appending refuses tables another run is still loading; a failed run deletes only its own.
RUN_LABEL = "variant_etl_run_id"
STATE_LABEL = "variant_etl_state"


def table_resource(
    table_id: str,
    fields: list[dict],
    shard: Shard | None,
    description: str = "",
    *,
    partitioning: RangePartitioning | None = None,
    run_id: str = "",
):
    """The table to create: schema, integer-range partitioning (the shard's on start_position,
    or ``partitioning``) and clustering on positions."""
    from google.cloud import bigquery

    table = bigquery.Table(table_id, schema=[bigquery.SchemaField.from_api_repr(f) for f in fields])
    if shard is not None:
        spec = partitioning or shard.partitioning
        table.range_partitioning = bigquery.RangePartitioning(
            field=spec.column,
            range_=bigquery.PartitionRange(start=spec.start, end=spec.end, interval=spec.interval),
        )
        table.clustering_fields = CLUSTERING
    table.description = description
    if run_id:
        table.labels = {RUN_LABEL: run_id, STATE_LABEL: "loading"}
    return table


def prepare_tables(
    options: BigQueryOptions,
    shards: tuple[Shard, ...],
    fields: list[dict],
    *,
    partitioning: RangePartitioning | None = None,
    with_sample_info: bool = True,
    run_id: str = "",
) -> list[str]:
    """Pre-flight checks, then table creation. Returns the ids of tables this run created.

    The sample-lookup tables pass their ``partitioning`` (on sample_id) and no sample_info.
    """
    from google.api_core import exceptions

    client = make_client(options.project)
    dataset_id = f"{options.project}.{options.dataset}"
    try:
        client.get_dataset(dataset_id)
    except exceptions.NotFound:
        raise OutputError(
            f"BigQuery dataset {dataset_id} does not exist. Hint: create it first "
            f"(bq mk --dataset {options.project}:{options.dataset})."
        ) from None
    wanted = [(options.table_id(s.suffix), fields, s) for s in shards]
    header_table = (options.table_id(HEADER_SUFFIX), header_fields(), None)
    if with_sample_info:  # the variant tables' companions
        wanted += [(options.table_id(SAMPLE_INFO_SUFFIX), sample_info_fields(), None), header_table]
    existing = {}
    for table_id, _, _ in wanted:
        try:
            existing[table_id] = client.get_table(table_id)
        except exceptions.NotFound:
            pass
    if not options.append and existing:
        names = ", ".join(sorted(existing))
        raise OutputError(
            f"BigQuery table(s) already exist: {names}. Hint: pass --append to add rows to them, "
            "choose another --output_table, or delete them."
        )
    if options.append:
        # Tables loaded before the header table existed lack only it: it is created.
        missing = [table_id for table_id, _, _ in wanted if table_id not in existing]
        if missing and (missing != [header_table[0]] or not with_sample_info):
            raise OutputError(
                f"--append needs every table to exist; missing: {', '.join(missing)}. "
                "Hint: run once without --append to create them."
            )
        for table in existing.values():
            labels = table.labels or {}
            if labels.get(STATE_LABEL) == "loading" and labels.get(RUN_LABEL) != run_id:
                raise OutputError(
                    f"BigQuery table {table.full_table_id} is being loaded by run {labels.get(RUN_LABEL)}, "
                    "which created it: an append now would mix the two runs' rows with a run that may "
                    "still fail and delete its tables. Hint: wait for that run to end; if it died, "
                    "delete the tables it created (they hold part of it) and load again."
                )
        update = options.update_schema_on_append
        streamed = options.write_method == "STREAMING_INSERTS"
        for table_id, table_fields, shard in wanted:
            if table_id in existing:
                add_now = streamed or shard is None
                _check_append_schema(client, existing[table_id], table_fields, update, add_now)
        if missing:
            client.create_table(table_resource(*header_table, "Loaded by variant_etl"))
        return []
    created = []
    try:
        for table_id, table_fields, shard in wanted:
            description = "Loaded by variant_etl"
            resource = table_resource(
                table_id, table_fields, shard, description, partitioning=partitioning, run_id=run_id
            )
            try:
                client.create_table(resource)
            except exceptions.Conflict:
                raise OutputError(_created_meanwhile(client, table_id)) from None
            created.append(table_id)
    except BaseException:
        delete_tables(options, created, run_id)
        raise
    return created


def _created_meanwhile(client, table_id: str) -> str:
    """Two runs into one --output_table, both seeing no table: the second to create one stops."""
    try:
        other = (client.get_table(table_id).labels or {}).get(RUN_LABEL, "unknown")
    except Exception:
        other = "unknown"
    return (
        f"BigQuery table {table_id} was created by another run (run {other}) while this run prepared "
        "its tables: two runs must not load one --output_table. This run deleted the tables it had "
        "created and loaded nothing. Hint: wait for that run, then rerun with --append, or choose "
        "another --output_table."
    )


def finish_tables(options: BigQueryOptions, table_ids: list[str], run_id: str) -> None:
    """The run loaded its tables: they lose the 'loading' state (an append may come)."""
    client = make_client(options.project)
    for table_id in table_ids:
        table = client.get_table(table_id)
        labels = table.labels or {}
        if labels.get(RUN_LABEL) == run_id and labels.get(STATE_LABEL) == "loading":
            table.labels = {**labels, STATE_LABEL: "complete"}
            client.update_table(table, ["labels"])


def _check_append_schema(client, table, fields: list[dict], update: bool, add_now: bool) -> None:
    """The table must hold every column we write, with the same type and mode, unless
    --update_schema_on_append adds the missing ones: a shard table loaded by load jobs gets
    them with its rows (``add_fields`` in the load step, undone if the load fails); tables
    that get rows inserted (streamed rows, sample_info, header) get them now (``add_now``)."""
    have = [f.to_api_repr() for f in table.schema]
    missing = _missing_fields(have, fields, table.full_table_id, "")
    if missing and not update:
        raise OutputError(
            f"{table.full_table_id} lacks column(s) {', '.join(missing)}. "
            "Hint: pass --update_schema_on_append to add them."
        )
    if missing and add_now:
        add_fields(client, table, fields)


def merged_fields(have: list[dict], want: list[dict]) -> list[dict]:
    """The table's columns ``have`` in its order, with the run's new columns (and new fields
    inside its RECORDs, e.g. a new FORMAT key under call) after them: the table once the run's
    columns are added, and the columns of the run's load files."""
    by_name = {f["name"]: f for f in want}
    merged = []
    for field in have:
        new = by_name.get(field["name"])
        if new is not None and _kind(field) == "RECORD" and _kind(new) == "RECORD":
            field = {**field, "fields": merged_fields(field["fields"], new["fields"])}
        merged.append(field)
    names = {f["name"] for f in have}
    return merged + [f for f in want if f["name"] not in names]


def add_fields(client, table, fields: list[dict]) -> list[dict] | None:
    """Adds to ``table`` the columns of ``fields`` it lacks: top-level ones by DDL, fields inside
    a RECORD by a schema patch (which DDL cannot do). Returns the schema before, or None if
    nothing was missing."""
    from google.cloud import bigquery

    have = [f.to_api_repr() for f in table.schema]
    merged = merged_fields(have, fields)
    if merged == have:
        return None
    names = {f["name"] for f in have}
    table_sql = f"`{table.project}.{table.dataset_id}.{table.table_id}`"
    for field in fields:
        if field["name"] not in names:
            client.query(
                f"ALTER TABLE {table_sql} ADD COLUMN IF NOT EXISTS {field['name']} {_ddl_type(field)}"
            ).result()
    current = client.get_table(table.reference)
    if [f.to_api_repr() for f in current.schema] != merged:
        current.schema = [bigquery.SchemaField.from_api_repr(f) for f in merged]
        client.update_table(current, ["schema"])
    return have


def restore_fields(client, table_id: str, before: list[dict]) -> str:
    """Undoes ``add_fields`` after a failed load: drops the columns it added, puts back the
    RECORDs as they were. Returns what could not be undone ('' if all was)."""
    from google.cloud import bigquery

    table = client.get_table(table_id)
    names = {f["name"] for f in before}
    table_sql = f"`{table.project}.{table.dataset_id}.{table.table_id}`"
    left = []
    for field in table.schema:
        if field.name not in names:
            try:
                client.query(f"ALTER TABLE {table_sql} DROP COLUMN IF EXISTS {field.name}").result()
            except Exception:
                left.append(field.name)
    table = client.get_table(table_id)
    kept = [f.to_api_repr() for f in table.schema]
    if kept != before:  # fields added inside RECORDs (and what a DROP left in the schema)
        undropped = [f for f in kept if f["name"] in left]
        try:
            table.schema = [bigquery.SchemaField.from_api_repr(f) for f in before + undropped]
            client.update_table(table, ["schema"])
        except Exception:
            left += _nested_paths(kept, before)
    return ", ".join(left)


def _nested_paths(have: list[dict], before: list[dict]) -> list[str]:
    """Fields inside RECORDs of ``have`` that ``before`` lacks, as record.field."""
    old = {f["name"]: f for f in before}
    paths = []
    for field in have:
        if field["name"] in old and _kind(field) == "RECORD":
            names = {f["name"] for f in old[field["name"]].get("fields", [])}
            paths += [f"{field['name']}.{f['name']}" for f in field["fields"] if f["name"] not in names]
    return paths


def _ddl_type(field: dict) -> str:
    if field["type"] == "RECORD":
        members = ", ".join(f"{f['name']} {_ddl_type(f)}" for f in field["fields"])
        inner = f"STRUCT<{members}>"
    else:
        inner = field["type"]
    return f"ARRAY<{inner}>" if field.get("mode") == "REPEATED" else inner


def _missing_fields(have: list[dict], want: list[dict], table_id: str, prefix: str) -> list[str]:
    """Paths of fields in ``want`` that ``have`` lacks; an error if a field differs in type."""
    by_name = {f["name"]: f for f in have}
    missing = []
    for field in want:
        old = by_name.get(field["name"])
        path = prefix + field["name"]
        if old is None:
            missing.append(path)
        elif not _same_kind(old, field) or old.get("mode", "NULLABLE") != field.get("mode", "NULLABLE"):
            raise OutputError(
                f"{table_id}: column {path!r} is {old.get('mode', 'NULLABLE')} {_kind(old)} in the table but "
                f"{field.get('mode', 'NULLABLE')} {_kind(field)} in this run. Hint: load into a new table."
            )
        elif _kind(field) == "RECORD":
            missing += _missing_fields(old.get("fields", []), field["fields"], table_id, path + ".")
    return missing


def _same_kind(old: dict, new: dict) -> bool:
    """The column takes the values of the field. The only time columns are the run tables'
    ingestion_datetime: TIMESTAMP (gcp-variant-transforms' type, and ours since) or DATETIME
    (ours before), both written as UTC text."""
    return _kind(old) == _kind(new) or {_kind(old), _kind(new)} == {"DATETIME", "TIMESTAMP"}


def _kind(field: dict) -> str:
    return {"INTEGER": "INT64", "FLOAT": "FLOAT64", "BOOLEAN": "BOOL", "STRUCT": "RECORD"}.get(
        field["type"], field["type"]
    )


def insert_run_rows(options: BigQueryOptions, suffix: str, rows: list[dict]) -> None:
    """The <table>__sample_info or <table>__vcf_header rows of a run (a few hundred at most:
    inserted directly)."""
    if not rows:
        return
    client = make_client(options.project)
    table_id = options.table_id(suffix)
    for start in range(0, len(rows), 500):
        errors = client.insert_rows_json(table_id, rows[start : start + 500])
        if errors:
            raise OutputError(f"{table_id}: BigQuery refused {suffix} rows: {str(errors)[:500]}")


def delete_tables(options: BigQueryOptions, table_ids: list[str], run_id: str = "") -> None:
    """Deletes tables a failed run created; with ``run_id``, only those still labelled with it."""
    from google.api_core import exceptions

    client = make_client(options.project)
    for table_id in table_ids:
        if run_id:
            try:
                if (client.get_table(table_id).labels or {}).get(RUN_LABEL) != run_id:
                    continue
            except exceptions.NotFound:
                continue
        client.delete_table(table_id, not_found_ok=True)
