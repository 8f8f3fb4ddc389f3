"""BigQuery writing, in the pipeline: each shard's rows become Avro files in the temp
location, and one load job per shard appends them to the table created before the run
(FILE_LOADS, free); or rows are streamed (STREAMING_INSERTS). The tables themselves are made
and checked on the driver (sinks/tables.py). See docs/bigquery.md.
"""

from __future__ import annotations

import uuid

import apache_beam as beam
import fastavro
import pyarrow as pa
from apache_beam.io.filesystems import FileSystems
from apache_beam.transforms.window import GlobalWindows

from variant_etl.core.batch import VariantBatch
from variant_etl.core.bigquery_rows import bigquery_rows, json_safe
from variant_etl.core.bigquery_tables import make_client
from variant_etl.core.errors import OutputError
from variant_etl.core.options import BigQueryOptions
from variant_etl.core.schema import avro_schema, bigquery_fields, without_record_counts
from variant_etl.core.stats import Kind, Stat
from variant_etl.sinks.parquet import check_element
from variant_etl.sinks.tables import RUN_LABEL, add_fields, merged_fields, restore_fields

# (load file, loaded) stat kinds of the variant tables and of the sample-lookup tables
VARIANT_KINDS = (Kind.BQ_FILE, Kind.BQ_LOADED)
LOOKUP_KINDS = (Kind.LOOKUP_BQ_FILE, Kind.LOOKUP_BQ_LOADED)


class _WriteAvroFn(beam.DoFn):
    """Sharded VariantBatches -> Avro load files, one per (shard, file key)."""

    def __init__(self, schema: pa.Schema, options: BigQueryOptions, shards: frozenset[str], kind: Kind):
        self._schema = schema
        self._options = options
        self._shards = shards
        self._kind = kind

    def setup(self):
        self._fields = bigquery_fields(self._schema)
        self._parsed: dict[str, dict] = {}  # shard -> Avro schema of its load files

    def _avro(self, shard: str) -> dict:
        """A new table's files hold the run's columns; an appended table's hold its every column
        in its order (plus those the run adds), so a run that lacks some of them loads too."""
        if shard not in self._parsed:
            fields = self._fields
            if self._options.append:
                table = make_client(self._options.project).get_table(self._options.table_id(shard))
                fields = merged_fields([f.to_api_repr() for f in table.schema], fields)
            self._parsed[shard] = fastavro.parse_schema(avro_schema(fields))
        return self._parsed[shard]

    def start_bundle(self):
        self._pending: dict[tuple[str, str], list[pa.RecordBatch]] = {}
        self._key: str | None = None

    def process(self, element: VariantBatch):
        check_element(element, self._schema, self._shards, "WriteToBigQuery")
        if element.key != self._key:  # the keys before are complete
            for shard, key in sorted(self._pending):
                yield self._flush(shard, key)
            self._key = element.key
        if element.num_rows:
            self._pending.setdefault((element.shard, element.key), []).append(element.batch)

    def finish_bundle(self):
        for shard, key in sorted(self._pending):
            yield GlobalWindows.windowed_value(self._flush(shard, key))

    def _flush(self, shard: str, key: str) -> Stat:
        batches = self._pending.pop((shard, key))
        path = FileSystems.join(self._options.temp_dir, shard, f"{uuid.uuid4().hex}.avro")
        rows = records = 0
        with FileSystems.create(path) as sink:
            writer = fastavro.write.Writer(sink, self._avro(shard), codec="deflate")
            for batch in batches:
                batch, batch_records = without_record_counts(batch)
                records += batch_records
                for row in bigquery_rows(batch, self._options.null_numeric_value_replacement):
                    writer.write(row)
                rows += batch.num_rows
            writer.flush()
        return Stat(self._kind, shard, {"path": path, "rows": rows, "records": records})


class _StreamRowsFn(beam.DoFn):
    """Sharded VariantBatches -> tabledata.insertAll, 500 rows a request."""

    def __init__(self, schema: pa.Schema, options: BigQueryOptions, shards: frozenset[str], kind: Kind):
        self._schema = schema
        self._options = options
        self._shards = shards
        self._kind = kind

    def setup(self):
        self._client = make_client(self._options.project)

    def process(self, element: VariantBatch):
        check_element(element, self._schema, self._shards, "WriteToBigQuery")
        if not element.num_rows:
            return
        batch, records = without_record_counts(element.batch)
        rows = [json_safe(r) for r in bigquery_rows(batch, self._options.null_numeric_value_replacement)]
        table_id = self._options.table_id(element.shard)
        for start in range(0, len(rows), 500):
            errors = self._client.insert_rows_json(table_id, rows[start : start + 500])
            if errors:
                raise OutputError(f"{table_id}: BigQuery refused streamed rows: {str(errors)[:1000]}")
        yield Stat(self._kind, element.shard, {"rows": len(rows), "records": records})


class WriteBigQueryRows(beam.PTransform):
    """Sharded VariantBatches -> Avro load files (one Stat each), or streamed rows (a Stat per
    batch). ``kinds`` are the stat kinds (VARIANT_KINDS, or LOOKUP_KINDS for the
    sample-lookup tables)."""

    def __init__(
        self,
        schema: pa.Schema,
        options: BigQueryOptions,
        *,
        shards: frozenset[str],
        kinds: tuple[Kind, Kind] = VARIANT_KINDS,
    ):
        super().__init__()
        self._schema = schema
        self._options = options
        self._shards = shards
        self._kinds = kinds

    def expand(self, batches):
        file_kind, loaded_kind = self._kinds
        if self._options.write_method == "STREAMING_INSERTS":
            fn = _StreamRowsFn(self._schema, self._options, self._shards, loaded_kind)
            return batches | "StreamRows" >> beam.ParDo(fn)
        return batches | "WriteAvro" >> beam.ParDo(
            _WriteAvroFn(self._schema, self._options, self._shards, file_kind)
        )


class _LoadFn(beam.DoFn):
    """Every shard's Avro files -> one load job per shard (appending to the created table)."""

    def __init__(
        self,
        options: BigQueryOptions,
        suffixes: list[str],
        kinds: tuple[Kind, Kind],
        run_id: str,
        fields: list[dict],
    ):
        self._options = options
        self._suffixes = suffixes
        self._kinds = kinds
        self._run_id = run_id
        self._fields = fields

    def process(self, stats: list[Stat]):
        from google.cloud import bigquery

        file_kind, loaded_kind = self._kinds
        client = make_client(self._options.project)
        files: dict[str, list[dict]] = {suffix: [] for suffix in self._suffixes}
        for stat in stats:
            if stat.kind is not file_kind:
                raise OutputError(f"the BigQuery load step got {stat!r}; this is a bug, please report it")
            files[stat.key].append(stat.value)
        loaded: list[str] = []
        config = bigquery.LoadJobConfig(
            source_format=bigquery.SourceFormat.AVRO,
            use_avro_logical_types=True,
            write_disposition=bigquery.WriteDisposition.WRITE_APPEND,
            labels={RUN_LABEL: self._run_id} if self._run_id else None,  # the run's rows, per table
        )
        prefix = f"variant_etl_{self._run_id}_" if self._run_id else None
        for suffix in self._suffixes:
            shard_files = sorted(files[suffix], key=lambda f: f["path"])
            table_id = self._options.table_id(suffix)
            before, done = None, []
            try:
                # --update_schema_on_append: every table gets the run's new columns (rows or
                # not, so all shards keep one set of columns) just before its rows; a failed
                # load takes them away again, so the table is as it was.
                if self._options.update_schema_on_append:
                    before = add_fields(client, client.get_table(table_id), self._fields)
                self._load(client, table_id, [f["path"] for f in shard_files], config, prefix, done)
            except Exception as err:
                raise OutputError(self._failed(client, err, loaded, suffix, before, done)) from None
            if shard_files:
                loaded.append(suffix)
                counts = {
                    "rows": sum(f["rows"] for f in shard_files),
                    "records": sum(f["records"] for f in shard_files),
                }
                yield Stat(loaded_kind, suffix, counts)
        if not self._options.keep_intermediate_files:
            paths = [f["path"] for infos in files.values() for f in infos]
            if paths:
                FileSystems.delete(paths)

    @staticmethod
    def _load(client, table_id: str, paths: list[str], config, prefix: str | None, done: list) -> None:
        """One load job of every file (gs://), or one per local file (DirectRunner: uploaded
        through the API), each appended to ``done`` once in."""
        if paths and all(p.startswith("gs://") for p in paths):
            client.load_table_from_uri(paths, table_id, job_config=config, job_id_prefix=prefix).result()
            done += paths
            return
        for path in paths:
            with FileSystems.open(path) as source:
                job = client.load_table_from_file(source, table_id, job_config=config, job_id_prefix=prefix)
                job.result()
            done.append(path)

    def _failed(self, client, err, loaded: list[str], suffix: str, before, done: list) -> str:
        """The error of a failed load, after taking away the columns the run added to that table
        (unless some of its rows went in: then they stay, and the message says so)."""
        table_id = self._options.table_id(suffix)
        message = (
            f"loading into BigQuery failed ({err}). "
            f"Shards loaded before the failure: {', '.join(loaded) or 'none'}."
        )
        if done:
            return message + f" {suffix}: {len(done)} of its load files went in before the failure."
        left = restore_fields(client, table_id, before) if before is not None else ""
        if left:
            return message + f" {table_id} keeps columns this run added that could not be removed: {left}."
        return message + f" {table_id} and the shards after it are as they were."


class LoadToBigQuery(beam.PTransform):
    """All Avro file stats -> load jobs; yields a loaded Stat (rows, records) per shard."""

    def __init__(
        self,
        options: BigQueryOptions,
        suffixes: list[str],
        *,
        kinds: tuple[Kind, Kind] = VARIANT_KINDS,
        run_id: str = "",
        fields: list[dict] = (),
    ):
        super().__init__()
        self._fn = _LoadFn(options, suffixes, kinds, run_id, list(fields))

    def expand(self, stats):
        return stats | "Gather" >> beam.combiners.ToList() | "Load" >> beam.ParDo(self._fn)
