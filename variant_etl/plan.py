"""Everything decided before the pipeline starts: input files, headers, the
merged schema, the sharding config and the read splits. All that can be
rejected is rejected here, before any worker starts."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import uuid

from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from variant_etl.core.errors import OutputError, VcfFormatError
from variant_etl.core.header import MergedHeader, VcfHeader, merge_headers, missing_definitions
from variant_etl.core.infer import FieldInference
from variant_etl.core.schema import VariantSchema, build_schema
from variant_etl.core.sharding import ShardingConfig, load_sharding_config
from variant_etl.core.source import read_header, record_lines

INDEX_SUFFIXES = (".tbi", ".csi", ".gzi", ".crai", ".bai")
DEFAULT_SHARDING_CONFIG = "homo_sapiens_default.yaml"


def bundled_config(name: str) -> str:
    """Path of a config shipped in sharding_configs/ (installed as package data)."""
    here = os.path.dirname(os.path.abspath(__file__))
    for folder in (os.path.join(here, "sharding_configs"), os.path.join(here, "..", "sharding_configs")):
        candidate = os.path.normpath(os.path.join(folder, name))
        if os.path.exists(candidate):
            return candidate
    return name


def open_binary(path: str):
    """Opens any path Beam knows (local, gs://, ...) without decompressing it."""
    return FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED)


@dataclasses.dataclass(frozen=True)
class ReadSplit:
    """A unit of reading: for now a whole file."""

    path: str
    samples: tuple[str, ...]
    # Definitions this file lacks but the merged schema has (from other inputs or inference).
    extra_header_lines: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True)
class ReadOptions:
    one_based: bool = False
    allow_malformed_records: bool = False
    batch_rows: int = 10_000


@dataclasses.dataclass(frozen=True)
class ParquetOptions:
    output_dir: str
    compression: str = "zstd"
    row_group_rows: int = 100_000
    rows_per_file: int = 2_000_000


@dataclasses.dataclass(frozen=True)
class Plan:
    inputs: tuple[str, ...]
    headers: tuple[VcfHeader, ...]
    merged: MergedHeader
    schema: VariantSchema
    sharding: ShardingConfig
    splits: tuple[ReadSplit, ...]
    read: ReadOptions
    parquet: ParquetOptions | None
    run_id: str

    @property
    def temp_dir(self) -> str:
        return FileSystems.join(self.parquet.output_dir, "_temporary", self.run_id)

    def describe(self) -> dict:
        """A JSON-able summary (what `plan` / `--dry_run` prints)."""
        return {
            "inputs": [{"path": h.path, "samples": len(h.samples)} for h in self.headers],
            "schema": str(self.schema.arrow_schema()).splitlines(),
            "sharding_config": self.sharding.path,
            "shards": [
                {
                    "table_name_suffix": s.suffix,
                    "regions": [str(r) for r in s.regions] or ["residual"],
                    "partitioning": s.partitioning.to_bigquery(),
                }
                for s in self.sharding.shards
            ],
            "splits": len(self.splits),
            "output_parquet_dir": self.parquet.output_dir if self.parquet else None,
        }


def expand_inputs(patterns: list[str], input_file: str | None) -> tuple[str, ...]:
    """Expands --input_pattern globs and the patterns listed in --input_file."""
    all_patterns = list(patterns)
    if input_file:
        try:
            with FileSystems.open(input_file, compression_type=CompressionTypes.UNCOMPRESSED) as f:
                listed = f.read().decode("utf-8").splitlines()
        except OSError as err:
            raise VcfFormatError(f"--input_file {input_file}: cannot be read ({err})") from None
        listed = [line.strip() for line in listed if line.strip() and not line.startswith("#")]
        if not listed:
            raise VcfFormatError(f"--input_file {input_file}: lists no file pattern")
        all_patterns += listed
    paths: list[str] = []
    for pattern, result in zip(all_patterns, FileSystems.match(all_patterns)):
        found = [m.path for m in result.metadata_list if not m.path.endswith(INDEX_SUFFIXES)]
        if not found:
            raise VcfFormatError(
                f"input pattern {pattern!r} matches no file. Hint: quote the pattern so the "
                "shell does not expand it, and check the path."
            )
        paths += found
    return tuple(sorted(dict.fromkeys(paths)))


def make_plan(
    *,
    input_patterns: list[str],
    input_file: str | None,
    sharding_config_path: str | None,
    read: ReadOptions,
    parquet: ParquetOptions | None,
    infer_headers: bool = False,
) -> Plan:
    inputs = expand_inputs(input_patterns, input_file)
    headers = tuple(read_header(path, open_binary) for path in inputs)
    merged = merge_headers(list(headers))
    if infer_headers:
        merged = _with_inferred_fields(merged, inputs)
    schema = build_schema(merged)
    sharding = load_sharding_config(sharding_config_path or bundled_config(DEFAULT_SHARDING_CONFIG))
    if parquet is not None:
        _check_output_dir(parquet.output_dir)
    max_samples = max((len(h.samples) for h in headers), default=0)
    # Keep a batch near a million values, whether they are sites or calls.
    batch_rows = max(100, min(read.batch_rows, 1_000_000 // max(1, max_samples)))
    read = dataclasses.replace(read, batch_rows=batch_rows)
    splits = tuple(ReadSplit(h.path, h.samples, missing_definitions(h, merged)) for h in headers)
    return Plan(
        inputs=inputs,
        headers=headers,
        merged=merged,
        schema=schema,
        sharding=sharding,
        splits=splits,
        read=read,
        parquet=parquet,
        run_id=uuid.uuid4().hex[:12],
    )


def _with_inferred_fields(merged: MergedHeader, inputs: tuple[str, ...]) -> MergedHeader:
    """Adds definitions for INFO/FORMAT keys the records use but no header declares."""
    inference = FieldInference(set(merged.infos), set(merged.formats))
    for path in inputs:
        try:
            for line in record_lines(path, open_binary):
                inference.add_line(line)
        except (OSError, EOFError) as err:
            raise VcfFormatError(f"{path}: cannot be read to infer headers ({err})") from None
    infos, formats = inference.definitions()
    if infos or formats:
        found = [f"INFO/{k} ({f.type}, Number={f.number})" for k, f in infos.items()]
        found += [f"FORMAT/{k} ({f.type}, Number={f.number})" for k, f in formats.items()]
        logging.getLogger(__name__).warning("--infer_headers: inferred %s", ", ".join(found))
    return dataclasses.replace(merged, infos={**merged.infos, **infos}, formats={**merged.formats, **formats})


def _check_output_dir(output_dir: str) -> None:
    manifest = FileSystems.join(output_dir, "_manifest.json")
    if FileSystems.exists(manifest):
        raise OutputError(
            f"{output_dir} already holds a completed run ({manifest} exists). "
            "Hint: choose a new --output_parquet_dir, or delete the old output first."
        )
    if FileSystems.exists(output_dir):
        leftovers = FileSystems.match([FileSystems.join(output_dir, "*")])[0].metadata_list
        if leftovers:
            names = sorted({os.path.basename(m.path.rstrip("/")) for m in leftovers})
            if any(name != "_temporary" for name in names):
                raise OutputError(
                    f"{output_dir} is not empty ({', '.join(names[:5])}...). "
                    "Hint: choose a new --output_parquet_dir, or delete it first."
                )


def plan_json(plan: Plan) -> str:
    return json.dumps(plan.describe(), indent=2)
