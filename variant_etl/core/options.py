"""Every option of the pipeline, with its default, once. The command line takes its defaults
and choices from here, the public transforms take these classes, and the plan, transforms and
sinks read them. Beam-free: ``export``, ``query`` and ``validate-config`` import it without
importing Beam."""

from __future__ import annotations

import dataclasses
import os

from variant_etl.core.limits import INT32_MIN

DEFAULT_SHARDING_CONFIG = "homo_sapiens_default.yaml"
MERGE_STRATEGIES = ("NONE", "MOVE_TO_CALLS", "MERGE_WITH_NON_VARIANTS")
SAMPLE_NAME_ENCODINGS = ("WITHOUT_FILE_PATH", "WITH_FILE_PATH")
BIGQUERY_WRITE_METHODS = ("FILE_LOADS", "STREAMING_INSERTS")
PARQUET_COMPRESSIONS = ("zstd", "snappy", "none")
# BigQuery lists cannot hold NULL: a missing number inside a list is written as this.
NULL_NUMERIC_VALUE_REPLACEMENT = INT32_MIN
PROGRESS_INTERVAL = 10.0  # seconds between progress lines


def bundled_config(name: str) -> str:
    """Path of a config shipped in sharding_configs/ (installed as package data)."""
    package = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # variant_etl/
    installed = os.path.join(package, "sharding_configs")
    for folder in (installed, os.path.join(package, "..", "sharding_configs")):
        candidate = os.path.normpath(os.path.join(folder, name))
        if os.path.exists(candidate):
            return candidate
    return name


@dataclasses.dataclass(frozen=True)
class ReadOptions:
    """How records are read (``--use_1_based_coordinate``, ``--allow_malformed_records``,
    ``--read_split_bytes``)."""

    one_based: bool = False  # start_position is POS as written instead of 0-based
    allow_malformed_records: bool = False  # dead letters instead of a failed run
    # a Number=1 number written with several values keeps the first (the plan sets it from
    # --allow_incompatible_records)
    cast_values: bool = False
    batch_rows: int = 10_000  # rows of an Arrow batch (fewer for many samples: the plan decides)
    split_bytes: int = 64 * 2**20  # uncompressed VCFs above this are read in parallel ranges
    # Whole files are read together, up to this many and this many bytes on disk a group.
    group_files: int = 100
    group_bytes: int = 8 * 2**20


@dataclasses.dataclass(frozen=True)
class HeaderOptions:
    """How the inputs' headers become one schema."""

    representative_header_file: str | None = None  # its definitions for every input
    allow_incompatible_records: bool = False  # widen conflicting definitions
    infer_headers: bool = False  # one extra pass: define fields used but not declared
    sample_name_encoding: str = "WITHOUT_FILE_PATH"  # or WITH_FILE_PATH: the id hashes the path too


@dataclasses.dataclass(frozen=True)
class SchemaOptions:
    """Schema choices made by flags."""

    split_alternate_allele_info_fields: bool = True  # Number=A INFO under alternate_bases
    include_call_name: bool = False  # call.name next to call.sample_id
    copy_quality_to_calls: bool = False  # call.quality: the record's QUAL
    copy_filter_to_calls: bool = False  # call.filter: the record's FILTER
    info_keys_to_move_to_calls_regex: str | None = None  # matching INFO fields go into calls


@dataclasses.dataclass(frozen=True)
class MergeOptions:
    strategy: str = "NONE"  # one of MERGE_STRATEGIES
    bucket_size: int = 10_000_000  # bp of a merge key: bounds the memory of one group


@dataclasses.dataclass(frozen=True)
class AnnotationOptions:
    """``--annotation_fields`` (VEP/SnpEff strings split under their ALT) and ``--annotate_with``
    (an indexed VCF whose ``--annotate_fields`` are copied under each matching ALT)."""

    annotation_fields: tuple[str, ...] = ()
    annotate_with: str | None = None
    annotate_fields: tuple[str, ...] = ()
    # gcp-variant-transforms' options for annotation_fields: sub-fields typed from their values
    # (one extra pass over the records), and VEP --minimal allele matching
    infer_annotation_types: bool = False
    minimal_vep_alt_matching: bool = False

    def __bool__(self) -> bool:
        return bool(self.annotation_fields or self.annotate_with)


@dataclasses.dataclass(frozen=True)
class ParquetOptions:
    output_dir: str
    compression: str = "zstd"  # one of PARQUET_COMPRESSIONS
    row_group_rows: int = 100_000
    rows_per_file: int = 2_000_000
    overwrite: bool = False  # replace what the directory holds, at commit time


@dataclasses.dataclass(frozen=True)
class BigQueryOptions:
    project: str
    dataset: str
    table: str  # base name: shard tables are <table>__<suffix>
    temp_dir: str  # where Avro load files go
    write_method: str = "FILE_LOADS"  # one of BIGQUERY_WRITE_METHODS
    append: bool = False
    update_schema_on_append: bool = False
    keep_intermediate_files: bool = False
    null_numeric_value_replacement: int = NULL_NUMERIC_VALUE_REPLACEMENT

    def table_id(self, suffix: str) -> str:
        return f"{self.project}.{self.dataset}.{self.table}__{suffix}"
