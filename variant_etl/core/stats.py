"""The statistics every stage sends to the commit step: what it read, routed, wrote or loaded.
The commit adds them up into ``_manifest.json`` and checks that every input record is
accounted for; a kind it does not expect fails the commit."""

from __future__ import annotations

import dataclasses
import enum


class Kind(enum.Enum):
    READ = "read"  # key: input path; value: records read (malformed included)
    PARSED = "parsed"  # key: input path; value: records that became rows
    # key: input path; value: records loaded with Number=A values matched to the ALTs by index
    # (--allow_malformed_records: too many or too few values; BatchBuilder.match_alt_values)
    MATCHED = "matched"
    # key: input path; value: records loaded with a Number=1 number's first value of several
    # (--allow_incompatible_records; BatchBuilder.cast_values)
    CAST = "cast"
    ROUTED = "routed"  # key: shard suffix; value: records ShardVariants sent to the shard
    ROUTED_CALLS = "routed_calls"  # key: shard suffix; value: calls sent (sample-lookup rows)
    DROPPED = "dropped"  # key: ""; value: records no shard takes
    FILE = "file"  # key: shard suffix; value: a temporary Parquet file (FileInfo dict)
    LOOKUP_FILE = "lookup_file"  # the same, of the sample-lookup output
    MALFORMED_FILE = "malformed_file"  # key: ""; value: a temporary dead-letter file
    BQ_FILE = "bq_file"  # key: shard suffix; value: an Avro load file ({path, rows, records})
    BQ_LOADED = "bq_loaded"  # key: shard suffix; value: {rows, records} loaded or streamed
    LOOKUP_BQ_FILE = "lookup_bq_file"  # the same two, of the sample-lookup tables
    LOOKUP_BQ_LOADED = "lookup_bq_loaded"
    QC = "qc"  # key: shard suffix; value: core.qc counts of rows routed to the shard


@dataclasses.dataclass(frozen=True)
class Stat:
    kind: Kind
    key: str
    value: int | dict
