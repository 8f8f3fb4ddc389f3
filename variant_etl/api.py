"""The public Beam transforms: what ``launch`` is built from, for a pipeline of one's own.

    with beam.Pipeline(options=options) as p:
        (p
         | ReadVcf("gs://bucket/cohort/*.vcf.gz")
         | ShardVariants("sharding_configs/homo_sapiens_default.yaml")
         | WriteToParquet("gs://bucket/out/"))

Each transform validates what it can when it is constructed or applied (patterns, headers,
config, output), with the messages ``launch`` gives. Between two stages the elements are
``VariantBatch`` (core/batch.py, where the contract for a transform of one's own is written).

A writer learns what it must account for from the stages before it: it walks the pipeline
graph back from its input to the ``ReadVcf`` (its inputs, samples, header and dead letters),
``MergeVariants``, ``AnnotateVariants`` and ``ShardVariants`` (their counts and schema). Its
commit then checks that every record read is written, malformed or dropped; when a transform
that is not one of these stands between them (a user's filter), the difference is reported
in the manifest instead (``records_changed_by_other_transforms``). docs/python_api.md.
"""

from __future__ import annotations

import dataclasses
import posixpath
import uuid
from collections.abc import Sequence

import apache_beam as beam
import pyarrow as pa

from variant_etl.core import merge as merge_core
from variant_etl.core.annotations import Annotations
from variant_etl.core.bigquery_tables import parse_output_table
from variant_etl.core.calls import with_hom_ref_column
from variant_etl.core.errors import VariantEtlError
from variant_etl.core.manifest import CommitSpec
from variant_etl.core.options import (
    DEFAULT_SHARDING_CONFIG,
    NULL_NUMERIC_VALUE_REPLACEMENT,
    AnnotationOptions,
    BigQueryOptions,
    HeaderOptions,
    MergeOptions,
    ParquetOptions,
    ReadOptions,
    SchemaOptions,
    bundled_config,
)
from variant_etl.core.progress import ProgressOptions
from variant_etl.core.sample_lookup import PARTITIONING as LOOKUP_PARTITIONING
from variant_etl.core.sample_lookup import lookup_schema
from variant_etl.core.schema import bigquery_fields, field_descriptions
from variant_etl.core.sharding import ShardingConfig, load_sharding_config
from variant_etl.plan import new_run_id, plan_source, started_now
from variant_etl.plan.inputs import source_annotations
from variant_etl.plan.model import SourcePlan
from variant_etl.plan.rules import (
    check_dirs_apart,
    check_merge_options,
    check_output_dir,
    check_sample_lookup_has_samples,
    check_sample_lookup_tables,
    check_table_names,
)
from variant_etl.sinks import tables
from variant_etl.sinks.bigquery import LOOKUP_KINDS, VARIANT_KINDS, LoadToBigQuery, WriteBigQueryRows
from variant_etl.sinks.commit import CommitOutput, WriteMalformed
from variant_etl.sinks.parquet import WriteParquetFiles
from variant_etl.transforms.annotate import Annotate
from variant_etl.transforms.calls import MoveHomRefs, OmitEmptyCalls
from variant_etl.transforms.coders import VariantBatch
from variant_etl.transforms.merge import MergeBuckets
from variant_etl.transforms.read import ReadSplits
from variant_etl.transforms.regions import ReadMergedRegions
from variant_etl.transforms.sample_lookup import ExplodeCalls
from variant_etl.transforms.shard import RouteToShards

__all__ = [
    "AnnotateVariants",
    "MergeVariants",
    "OmitEmptySampleCalls",
    "MoveHomRefCalls",
    "ReadVcf",
    "ShardVariants",
    "WriteOutputs",
    "WriteToBigQuery",
    "WriteToParquet",
]


@beam.typehints.with_output_types(VariantBatch)
class ReadVcf(beam.PTransform):
    """Reads VCF/BCF files into ``VariantBatch`` elements in one merged schema.

    At construction the patterns are expanded, every header is read and merged into one
    schema, and the files are cut into read splits, exactly as ``launch`` does; a bad pattern,
    header or option fails here, with the message ``launch`` prints.

    Args:
      file_pattern: a glob (``data/*.vcf.gz``, ``gs://bucket/cohort/*.bcf``) or a list of globs
        (.vcf, .vcf.gz, .vcf.bgz, .vcf.bz2, .bcf).
      read: coordinates, malformed records, split sizes (``ReadOptions``).
      headers: representative header, incompatible definitions, inference, sample ids
        (``HeaderOptions``).
      schema_options: ``SchemaOptions`` (Number=A fields, call.name, what merges copy to calls).
      merge: ``MergeOptions(strategy="MOVE_TO_CALLS")`` merges the same variant across files:
        window by window when every input is bgzipped and indexed (no shuffle), otherwise with
        ``MergeVariants``'s shuffle.

    After it is applied, ``malformed`` is the PCollection of dead letters (dicts: file, line,
    field, value, reason, text) of ``ReadOptions(allow_malformed_records=True)``, and
    ``counts`` its statistics; the writers pick both up by themselves.

    Example::

        p | ReadVcf("data/*.vcf.gz") | beam.Map(lambda b: b.num_rows)
    """

    def __init__(
        self,
        file_pattern: str | Sequence[str],
        *,
        read: ReadOptions | None = None,
        headers: HeaderOptions | None = None,
        schema_options: SchemaOptions | None = None,
        merge: MergeOptions | None = None,
        source: SourcePlan | None = None,  # launch: the source of its plan
        progress: ProgressOptions | None = None,  # launch: progress lines
    ):
        super().__init__()
        if source is None:
            source = plan_source(
                file_pattern, read=read, headers=headers, schema_options=schema_options, merge=merge
            )
        self.source = source
        self._progress = progress
        self.malformed: beam.PCollection | None = None
        self.counts: beam.PCollection | None = None

    @classmethod
    def from_source(cls, source: SourcePlan, *, progress: ProgressOptions | None = None) -> ReadVcf:
        return cls(source.inputs, source=source, progress=progress)

    @property
    def output_schema(self) -> pa.Schema:
        return self.source.schema.arrow_schema()

    def display_data(self) -> dict:
        source = self.source
        return {
            "inputs": len(source.inputs),
            "first_input": source.inputs[0],
            "read_splits": len(source.splits),
            "merge": source.merge.strategy,
        }

    def expand(self, pbegin):
        source = self.source
        # (Create without its own reshuffle: ReadMergedRegions and ReadSplits spread the splits
        # over the workers themselves, so it was a second shuffle stage before any read)
        if source.region_splits:  # sorted, indexed inputs: read and merge window by window
            read = (
                pbegin
                | "RegionSplits" >> beam.Create(source.region_splits, reshuffle=False)
                | "ReadMergedRegions"
                >> ReadMergedRegions(
                    source.schema,
                    source.read,
                    source.merge,
                    source.ranked_sample_ids(),
                    progress=self._progress,
                )
            )
        else:
            read = (
                pbegin
                | "Splits" >> beam.Create(source.splits, reshuffle=False)
                | "ReadSplits"
                >> ReadSplits(source.schema, source.read, with_origin=True, progress=self._progress)
            )
        self.malformed, self.counts = read.malformed, read.counts
        batches = read.batches
        if source.merge.strategy != "NONE" and not source.region_splits:
            batches = batches | "MergeVariants" >> MergeVariants(
                source.merge.strategy, bucket_size=source.merge.bucket_size
            )
        return batches


@beam.typehints.with_input_types(VariantBatch)
@beam.typehints.with_output_types(VariantBatch)
class MergeVariants(beam.PTransform):
    """Merges the records of one variant across files into one row (calls of every file).

    Rows are shuffled by (reference_name, start // bucket_size) and merged bucket by bucket;
    a bucket is bounded in size, never a whole chromosome. For bgzipped, indexed inputs,
    ``ReadVcf(..., merge=MergeOptions(...))`` merges while reading, without a shuffle.

    Args:
      strategy: ``MOVE_TO_CALLS`` (one row per site, every file's calls) or
        ``MERGE_WITH_NON_VARIANTS`` (also gVCF reference blocks; docs/merging.md).
      bucket_size: bases of the genome merged together.

    Its input must come from a ``ReadVcf`` (whose rows carry their input file, ``_origin``).
    """

    def __init__(
        self, strategy: str = merge_core.MOVE_TO_CALLS, *, bucket_size: int = MergeOptions.bucket_size
    ):
        super().__init__()
        self.options = MergeOptions(strategy=strategy, bucket_size=bucket_size)
        if strategy == "NONE":
            raise VariantEtlError(
                "MergeVariants: strategy NONE merges nothing. Hint: MOVE_TO_CALLS or MERGE_WITH_NON_VARIANTS."
            )
        check_merge_options(self.options, SchemaOptions())

    def expand(self, batches):
        reads = _lineage(batches).reads
        if len(reads) != 1:
            raise VariantEtlError(f"MergeVariants: its input must come from one ReadVcf, found {len(reads)}")
        ranked = reads[0].source.ranked_sample_ids()
        return batches | "MergeBuckets" >> MergeBuckets(self.options, ranked)


@beam.typehints.with_input_types(VariantBatch)
@beam.typehints.with_output_types(VariantBatch)
class AnnotateVariants(beam.PTransform):
    """Splits VEP/SnpEff annotation strings under the alternate allele they describe, and/or
    copies fields of an indexed VCF (e.g. ClinVar) under each matching ALT (docs/annotations.md).

    Args:
      annotation_fields: INFO fields holding annotation strings (``CSQ``, ``ANN``): each
        becomes ``alternate_bases[].<ID>[]`` with one column per sub-field.
      annotate_with: a local, indexed VCF whose ``annotate_fields`` (INFO IDs) are copied.
      infer_annotation_types: type each sub-field of ``annotation_fields`` Integer or Float when
        every value of it is one (one extra pass over the records), as gcp-variant-transforms.
      minimal_vep_alt_matching: match annotation alleles written by VEP ``--minimal`` too.

    The fields are checked against the headers of the ``ReadVcf`` before it when applied.
    """

    def __init__(
        self,
        annotation_fields: Sequence[str] = (),
        *,
        annotate_with: str | None = None,
        annotate_fields: Sequence[str] = (),
        infer_annotation_types: bool = False,
        minimal_vep_alt_matching: bool = False,
        planned: Annotations | None = None,  # launch: checked at plan time
    ):
        super().__init__()
        if planned is None and not annotation_fields and not annotate_with:
            raise VariantEtlError("AnnotateVariants: give annotation_fields and/or annotate_with")
        if annotate_fields and not annotate_with:
            raise VariantEtlError("AnnotateVariants: annotate_fields only apply with annotate_with")
        self._asked = AnnotationOptions(
            tuple(annotation_fields), annotate_with, tuple(annotate_fields),
            infer_annotation_types=infer_annotation_types, minimal_vep_alt_matching=minimal_vep_alt_matching,
        )  # fmt: skip
        self.planned = planned

    def output_schema(self, parsed: pa.Schema) -> pa.Schema:
        return self.planned.output_schema(parsed)

    def expand(self, batches):
        reads = _lineage(batches).reads
        if len(reads) != 1:
            raise VariantEtlError(
                f"AnnotateVariants: its input must come from one ReadVcf, found {len(reads)}"
            )
        source = reads[0].source
        if self.planned is None:
            self.planned = source_annotations(source, self._asked)
        return batches | "Annotate" >> Annotate(self.planned, one_based=source.read.one_based)


@beam.typehints.with_input_types(VariantBatch)
@beam.typehints.with_output_types(VariantBatch)
class ShardVariants(beam.PTransform):
    """Routes each row to its shard by a sharding config (a shard per chromosome or region, a
    residual shard): sets ``VariantBatch.shard`` to the shard's ``table_name_suffix``. Rows no
    shard takes are dropped, and counted.

    Args:
      config: a sharding YAML path, or a loaded ``ShardingConfig`` (default: the bundled
        ``homo_sapiens_default.yaml``).

    After it is applied, ``counts`` holds its statistics (the writers pick them up).
    """

    def __init__(self, config: str | ShardingConfig | None = None):
        super().__init__()
        if not isinstance(config, ShardingConfig):
            config = load_sharding_config(config or bundled_config(DEFAULT_SHARDING_CONFIG))
        self.config = config
        self.counts: beam.PCollection | None = None

    def display_data(self) -> dict:
        return {"sharding_config": self.config.path, "shards": len(self.config.shards)}

    def expand(self, batches):
        reads = _lineage(batches).reads
        one_based = bool(reads) and reads[0].source.read.one_based
        samples = len(reads[0].source.ranked_sample_ids()) if reads else 0
        routed = batches | "RouteToShards" >> RouteToShards(
            self.config, one_based=one_based, count_calls=True, qc_samples=samples
        )
        self.counts = routed.counts
        return routed.batches


@beam.typehints.with_input_types(VariantBatch)
class _Output(beam.PTransform):
    """A writer: the part of WriteOutputs that writes one output's files or rows."""

    sample_lookup = False

    def expand(self, batches):
        return batches | WriteOutputs(self)


class WriteToParquet(_Output):
    """Writes each shard as a directory of sorted, zstd-compressed Parquet files under
    ``output_dir/<table_name_suffix>/``, with ``_manifest.json``, ``__sample_info.parquet``,
    ``_header.vcf``, dead letters in ``_malformed/`` and ``_SUCCESS`` last.

    Files wait in ``output_dir/_temporary/<run_id>/`` and are moved into place by one commit
    step once every count adds up: a reader never sees a partial output. Input that no
    ``ShardVariants`` has routed is sharded with the bundled default config, as ``launch`` does.

    Args:
      output_dir: a local or gs:// directory, new or empty (or ``overwrite=True``).
      compression, row_group_size, rows_per_file: of the Parquet files.
      overwrite: replace what the directory holds, once the new output is complete.
      sample_lookup: write the sample-lookup layout instead (one row per call, sorted by
        sample_id; docs/sample_lookup.md).
      schema: the columns of the batches, when a transform before the writer changes them.

    Applied, it yields one element: the manifest's totals.
    """

    def __init__(
        self,
        output_dir: str,
        *,
        compression: str = ParquetOptions.compression,
        row_group_size: int = ParquetOptions.row_group_rows,
        rows_per_file: int = ParquetOptions.rows_per_file,
        overwrite: bool = False,
        sample_lookup: bool = False,
        schema: pa.Schema | None = None,
        checked: bool = False,  # launch: the plan has checked the directory
        previous_run: str | None = None,  # launch: the run --overwrite replaces, as it saw
    ):
        super().__init__()
        self.options = ParquetOptions(
            output_dir=output_dir,
            compression=compression,
            row_group_rows=row_group_size,
            rows_per_file=rows_per_file,
            overwrite=overwrite,
        )
        self.sample_lookup = sample_lookup
        self.schema = schema
        # What the commit expects to find: the output --overwrite replaces, or none.
        self.previous_run = previous_run
        if not checked:
            flag = "--sample_lookup_parquet_dir" if sample_lookup else "--output_parquet_dir"
            self.previous_run = check_output_dir(output_dir, overwrite, flag)

    def display_data(self) -> dict:
        return {"output_dir": self.options.output_dir, "sample_lookup": self.sample_lookup}

    def _write(self, batches, context: _Context):
        schema = self.schema or context.schema
        temp_dir = context.spec.temp_dir_of(self.options.output_dir)
        name = "WriteSampleLookupParquet" if self.sample_lookup else "WriteParquet"
        return [
            batches
            | name
            >> WriteParquetFiles(
                self.options, temp_dir, shards=context.shards, schema=schema, sample_lookup=self.sample_lookup
            )
        ]


class WriteToBigQuery(_Output):
    """Writes each shard into a BigQuery table ``TABLE__<table_name_suffix>``, integer-range
    partitioned by the shard's spec and clustered on positions, with ``TABLE__sample_info``
    and ``TABLE__vcf_header`` beside them (docs/bigquery.md).

    The tables are created (or, with ``append``, checked) in the pipeline before any row is
    written; rows go as Avro files through one load job per shard (FILE_LOADS, free) or as
    streaming inserts. The run's manifest is written to ``temp_location``.

    Args:
      table: ``PROJECT:DATASET.TABLE`` (or ``DATASET.TABLE`` with ``project``).
      temp_location: where load files wait (gs://bucket/tmp on Dataflow; a local directory on
        the local runner).
      write_method: ``FILE_LOADS`` or ``STREAMING_INSERTS``.
      append, update_schema_on_append, keep_intermediate_files,
      null_numeric_value_replacement: as the ``launch`` options of the same names.
      sample_lookup: write the sample-lookup layout (one row per call, partitioned on
        sample_id) into these tables instead.
    """

    def __init__(
        self,
        table: str,
        *,
        temp_location: str,
        project: str | None = None,
        write_method: str = BigQueryOptions.write_method,
        append: bool = False,
        update_schema_on_append: bool = False,
        keep_intermediate_files: bool = False,
        null_numeric_value_replacement: int = NULL_NUMERIC_VALUE_REPLACEMENT,
        sample_lookup: bool = False,
        options: BigQueryOptions | None = None,  # launch: resolved from its flags
        prepared: bool = False,  # launch: the tables were made before the pipeline
    ):
        super().__init__()
        if options is None:
            project, dataset, name = parse_output_table(table, project)
            run_dir = f"variant_etl-{uuid.uuid4().hex[:12]}"
            options = BigQueryOptions(
                project=project,
                dataset=dataset,
                table=name,
                temp_dir=temp_location.rstrip("/") + "/" + run_dir,
                write_method=write_method,
                append=append,
                update_schema_on_append=update_schema_on_append,
                keep_intermediate_files=keep_intermediate_files,
                null_numeric_value_replacement=null_numeric_value_replacement,
            )
        self.options = options
        self.sample_lookup = sample_lookup
        self.prepared = prepared

    def display_data(self) -> dict:
        return {"table": self.options.table_id("<suffix>"), "sample_lookup": self.sample_lookup}

    def _write(self, batches, context: _Context):
        kinds = LOOKUP_KINDS if self.sample_lookup else VARIANT_KINDS
        prefix = "SampleLookupBigQuery" if self.sample_lookup else "BigQuery"
        schema = lookup_schema(context.schema) if self.sample_lookup else context.schema
        if self.sample_lookup:
            batches = batches | "ExplodeCalls" >> ExplodeCalls()
        if not self.prepared:  # the tables exist before the first row is written
            ready = (
                batches.pipeline
                | f"Start{prefix}" >> beam.Create([None])
                | f"Prepare{prefix}Tables"
                >> beam.Map(_prepare_tables, self, context.spec, context.schema, context.descriptions)
            )
            batches = batches | f"After{prefix}Tables" >> beam.Map(
                lambda element, _: element, beam.pvalue.AsSingleton(ready)
            ).with_output_types(VariantBatch)
        written = batches | f"Write{prefix}" >> WriteBigQueryRows(
            schema, self.options, shards=context.shards, kinds=kinds
        )
        if self.options.write_method == "FILE_LOADS":
            suffixes = [s.suffix for s in context.spec.sharding.shards]
            run_id, fields = context.spec.run.run_id, bigquery_fields(schema)
            written = written | f"LoadTo{prefix}" >> LoadToBigQuery(
                self.options, suffixes, kinds=kinds, run_id=run_id, fields=fields
            )
        return [written]


def _prepare_tables(_, output: WriteToBigQuery, spec: CommitSpec, schema: pa.Schema, descriptions) -> int:
    """Creates (or checks, with append) the tables of one BigQuery output; runs once."""
    fields = bigquery_fields(lookup_schema(schema) if output.sample_lookup else schema, descriptions)
    if output.sample_lookup:
        created = tables.prepare_tables(
            output.options,
            spec.sharding.shards,
            fields,
            partitioning=LOOKUP_PARTITIONING,
            with_sample_info=False,
            run_id=spec.run.run_id,
        )
    else:
        created = tables.prepare_tables(output.options, spec.sharding.shards, fields, run_id=spec.run.run_id)
    return len(created)


@dataclasses.dataclass
class _Lineage:
    """The stages of ours upstream of a PCollection, and whether another transform is there."""

    reads: list[ReadVcf]
    merges: list[MergeVariants]
    annotations: list[AnnotateVariants]
    hom_refs: list[MoveHomRefCalls]
    shards: list[ShardVariants]
    foreign: bool


@beam.typehints.with_input_types(VariantBatch)
@beam.typehints.with_output_types(VariantBatch)
class OmitEmptySampleCalls(beam.PTransform):
    """Leaves out of ``call`` the calls that say nothing: no allele known (``./.``) and every
    FORMAT field missing (gcp-variant-transforms' ``--omit_empty_sample_calls``). The rows stay."""

    def expand(self, batches):
        return batches | "Omit" >> OmitEmptyCalls()


@beam.typehints.with_input_types(VariantBatch)
@beam.typehints.with_output_types(VariantBatch)
class MoveHomRefCalls(beam.PTransform):
    """Moves each homozygous-reference call (``0/0``, ``0|0``, ``0``) out of ``call`` into a
    ``hom_ref_call`` column that keeps its sample_id (and name), as gcp-variant-transforms'
    ``--move_hom_ref_calls``: a cohort's reference calls take a few bytes each. Their FORMAT
    values are dropped; ``export`` writes them back as ``0/0``."""

    def output_schema(self, schema: pa.Schema) -> pa.Schema:
        return with_hom_ref_column(schema)

    def expand(self, batches):
        return batches | "Move" >> MoveHomRefs()


_STAGES = (ReadVcf, MergeVariants, AnnotateVariants, OmitEmptySampleCalls, MoveHomRefCalls, ShardVariants)


def _lineage(pcoll: beam.PCollection) -> _Lineage:
    """Walks the pipeline graph back from ``pcoll`` (construction time, on the driver)."""
    found: dict[int, beam.PTransform] = {}
    foreign = False
    seen: set[int] = set()
    todo = [pcoll]
    while todo:
        applied = getattr(todo.pop(), "producer", None)
        if applied is None or id(applied) in seen:
            continue
        seen.add(id(applied))
        owner, node = None, applied
        while node is not None and owner is None:
            if isinstance(node.transform, _STAGES):
                owner = node.transform
            node = node.parent
        if owner is None:
            foreign = True
        else:
            found[id(owner)] = owner
        todo.extend(value for value in applied.inputs if isinstance(value, beam.pvalue.PCollection))
    stages = list(found.values())
    return _Lineage(
        reads=[s for s in stages if isinstance(s, ReadVcf)],
        merges=[s for s in stages if isinstance(s, MergeVariants)],
        annotations=[s for s in stages if isinstance(s, AnnotateVariants)],
        hom_refs=[s for s in stages if isinstance(s, MoveHomRefCalls)],
        shards=[s for s in stages if isinstance(s, ShardVariants)],
        foreign=foreign,
    )


@dataclasses.dataclass(frozen=True)
class _Context:
    spec: CommitSpec
    schema: pa.Schema  # the columns of the batches the writers get
    descriptions: dict  # of the columns, from the header (BigQuery field descriptions)

    @property
    def shards(self) -> frozenset[str]:
        return frozenset(shard.suffix for shard in self.spec.sharding.shards)


@beam.typehints.with_input_types(VariantBatch)
class WriteOutputs(beam.PTransform):
    """Several outputs of one run (e.g. Parquet and BigQuery, or a variant and a sample-lookup
    directory) with one commit step and one manifest, in each output directory, that accounts
    for all of them: what ``launch`` writes. Each of ``WriteToParquet(...)`` and
    ``WriteToBigQuery(...)`` applied alone is ``WriteOutputs`` of itself.

    Applied, it yields one element: the manifest's totals.
    """

    def __init__(
        self,
        *outputs: _Output,
        run_id: str | None = None,
        started_at: str | None = None,
        claims_held: bool = False,  # launch: it claimed the directories before any work
    ):
        super().__init__()
        self._claims_held = claims_held
        if not outputs:
            raise VariantEtlError("WriteOutputs: give at least one output")
        self._outputs = outputs
        self._run_id = run_id or new_run_id()
        self._started_at = started_now() if started_at is None else started_at
        by_kind: dict[tuple[type, bool], _Output] = {}
        for output in outputs:
            kind = (type(output), output.sample_lookup)
            if kind in by_kind:
                raise VariantEtlError(f"WriteOutputs: two outputs of one kind ({type(output).__name__})")
            by_kind[kind] = output
        self._parquet = by_kind.get((WriteToParquet, False))
        self._lookup = by_kind.get((WriteToParquet, True))
        self._bigquery = by_kind.get((WriteToBigQuery, False))
        self._lookup_bigquery = by_kind.get((WriteToBigQuery, True))
        if self._parquet and self._lookup:
            check_dirs_apart(self._lookup.options, self._parquet.options)

    def expand(self, batches):
        lineage = _lineage(batches)
        if len(lineage.reads) != 1:
            raise VariantEtlError(
                f"{self._name()}: its input must come from one ReadVcf (found {len(lineage.reads)}). "
                "Hint: read all inputs with one ReadVcf([pattern, ...])."
            )
        once = ((lineage.shards, "ShardVariants"), (lineage.annotations, "AnnotateVariants"),
                (lineage.merges, "MergeVariants"), (lineage.hom_refs, "MoveHomRefCalls"))  # fmt: skip
        for stages, what in once:
            if len(stages) > 1:
                raise VariantEtlError(f"{self._name()}: its input comes through {len(stages)} {what}")
        read = lineage.reads[0]
        source = read.source
        if not lineage.shards:  # as launch: the default config
            shard_stage = ShardVariants()
            batches = batches | "ShardVariants" >> shard_stage
        else:
            shard_stage = lineage.shards[0]
        sharding = shard_stage.config
        schema = read.output_schema
        if lineage.annotations:
            schema = lineage.annotations[0].output_schema(schema)
        if lineage.hom_refs:
            schema = lineage.hom_refs[0].output_schema(schema)
        merge_strategy = lineage.merges[0].options.strategy if lineage.merges else source.merge.strategy
        run = dataclasses.replace(
            source.run_info(self._run_id, self._started_at), merge_strategy=merge_strategy
        )
        spec = self._spec(run, sharding, source, strict=not lineage.foreign)
        context = _Context(spec, schema, field_descriptions(source.schema))
        stats = [read.counts, shard_stage.counts]
        for output in self._outputs:
            stats += output._write(batches, context)
        stats.append(read.malformed | "WriteMalformed" >> WriteMalformed(spec.temp_dir))
        return stats | "AllStats" >> beam.Flatten() | "CommitOutput" >> CommitOutput(spec)

    def _name(self) -> str:
        return type(self._outputs[0]).__name__ if len(self._outputs) == 1 else "WriteOutputs"

    def _spec(self, run, sharding: ShardingConfig, source: SourcePlan, *, strict: bool) -> CommitSpec:
        parquet = self._parquet.options if self._parquet else None
        lookup = self._lookup.options if self._lookup else None
        bigquery = self._bigquery.options if self._bigquery else None
        lookup_bigquery = self._lookup_bigquery.options if self._lookup_bigquery else None
        if bigquery is not None:
            check_table_names(bigquery, sharding)
        if lookup_bigquery is not None:
            check_sample_lookup_tables(lookup_bigquery, bigquery, sharding)
        if lookup is not None or lookup_bigquery is not None:
            check_sample_lookup_has_samples(source, lookup is not None)
        directory = parquet or lookup
        temp_dir = (
            None if directory is None else posixpath.join(directory.output_dir, "_temporary", run.run_id)
        )
        return CommitSpec(
            run=run,
            sharding=sharding,
            parquet=parquet,
            sample_lookup=lookup,
            bigquery=bigquery,
            sample_lookup_bigquery=lookup_bigquery,
            temp_dir=temp_dir or (bigquery or lookup_bigquery).temp_dir,
            strict=strict,
            insert_run_rows=bigquery is not None and not self._bigquery.prepared,
            seen=tuple(
                (output.options.output_dir, output.previous_run)
                for output in (self._parquet, self._lookup)
                if output is not None
            ),
            claims_held=self._claims_held,
        )
