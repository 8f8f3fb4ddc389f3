"""``python -m variant_etl export``: a Parquet output or BigQuery tables back to one VCF
(bgzipped and tabix-indexed when it ends in .gz), for some regions and samples."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable, Sequence

import pyarrow as pa
import pysam

from variant_etl.core.errors import OutputError, VariantEtlError
from variant_etl.core.header import DEFAULT_FILEFORMAT, VcfHeader, parse_header
from variant_etl.core.layout import HEADER
from variant_etl.core.options import NULL_NUMERIC_VALUE_REPLACEMENT
from variant_etl.core.vcfout import VcfFormatter
from variant_etl.outputs import storage
from variant_etl.outputs.selection import Selection, arrow_reader, choose_samples, sample_table, select

BATCH_ROWS = 10_000


def export_vcf(
    output_vcf: str,
    *,
    input_parquet_dir: str | None = None,
    input_table: str | None = None,
    genomic_regions: Sequence[str] = (),
    sample_names: Sequence[str] = (),
    project: str | None = None,
    null_numeric_value_replacement: int | None = None,
    regions_by_start_position: bool = False,
) -> tuple[int, int]:
    """Writes the variants of a Parquet output (``input_parquet_dir``) or of a launch's BigQuery
    tables (``input_table``, PROJECT:DATASET.TABLE) that overlap ``genomic_regions`` (1-based,
    inclusive: ``chr1:100-200``), with the calls of ``sample_names`` (default: all), to
    ``output_vcf`` (.vcf.gz: bgzipped and indexed). Returns (records written, samples)."""
    if (input_parquet_dir is None) == (input_table is None):
        raise VariantEtlError("export: give one of input_parquet_dir and input_table")
    for option, value in (
        ("project", project),
        ("null_numeric_value_replacement", null_numeric_value_replacement),
    ):
        if value is not None and not input_table:
            raise VariantEtlError(
                f"--{option} only applies with --input_table (it says how to read BigQuery tables). "
                f"Hint: remove --{option}."
            )
    regions, names = list(genomic_regions), list(sample_names)
    if input_table:
        from variant_etl.outputs.bigquery_source import read_tables

        source = read_tables(
            input_table,
            regions,
            names,
            project=project,
            null_numeric_value=(
                NULL_NUMERIC_VALUE_REPLACEMENT
                if null_numeric_value_replacement is None
                else null_numeric_value_replacement
            ),
            batch_rows=BATCH_ROWS,
            by_start=regions_by_start_position,
        )
        header, samples, schema, batches, one_based = (
            source.header, source.samples, source.schema, source.batches, source.one_based
        )  # fmt: skip
    else:
        selection = select(input_parquet_dir, regions, names, by_start=regions_by_start_position)
        header = _run_header(input_parquet_dir)
        samples = choose_samples(sample_table(input_parquet_dir).to_pylist(), selection.sample_ids)
        reader = _sorted_rows(selection, header) if selection.files else None
        schema, batches, one_based = (reader.schema if reader else None), (reader or ()), selection.one_based
    written = write_vcf(header, samples, schema, batches, output_vcf, one_based=one_based)
    return written, len(samples)


def write_vcf(
    header: VcfHeader,
    samples: list[tuple[int, str]],
    schema: pa.Schema | None,
    batches: Iterable[pa.RecordBatch],
    path: str,
    *,
    one_based: bool,
) -> int:
    """Writes the header and the rows (sorted as the file is to be indexed); ``schema`` is
    that of the rows (None: there are none)."""
    storage.local_target(path, "--output_vcf")
    compressed = path.endswith(".gz")
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise OutputError(f"--output_vcf {path}: {directory} is not a directory")
    written = 0
    formatter = VcfFormatter(header, schema, samples, one_based=one_based) if schema is not None else None
    with tempfile.NamedTemporaryFile(
        "w", dir=directory, suffix=".vcf", delete=False, encoding="utf-8"
    ) as out:
        try:
            out.write("\n".join(_header_lines(header, samples, formatter)) + "\n")
            for batch in batches:
                for line in formatter.lines(batch):
                    out.write(line + "\n")
                written += batch.num_rows
        except BaseException:
            os.unlink(out.name)
            raise
    try:
        if compressed:
            pysam.tabix_compress(out.name, path, force=True)
            try:
                pysam.tabix_index(path, preset="vcf", force=True)
            except OSError:  # positions beyond 2^29 need a CSI index
                pysam.tabix_index(path, preset="vcf", force=True, csi=True)
        else:
            os.replace(out.name, path)
    finally:
        if os.path.exists(out.name):
            os.unlink(out.name)
    return written


def _sorted_rows(selection: Selection, header: VcfHeader):
    """The selected rows as Arrow batches, in the header's contig order, then by position."""
    import duckdb

    connection = duckdb.connect()
    source, files = storage.shard_scan(connection, selection.files)
    names = arrow_reader(connection.execute(f"SELECT * FROM {source} LIMIT 0", files), 1).schema.names
    select_list = ", ".join(f"{selection.call_filter()} AS call" if n == "call" else f'"{n}"' for n in names)
    numbered, files = storage.shard_scan(connection, selection.files, numbered=True)
    query = (
        f"SELECT {select_list} FROM {numbered} WHERE {selection.where} "
        "ORDER BY list_position(?, reference_name) NULLS LAST, reference_name, start_position, end_position, "
        # records at one position: by alleles, as the BigQuery export does (bigquery_export.py),
        # then as they are in the output (DuckDB's sort is not stable)
        "reference_bases, coalesce(array_to_string([a.alt for a in alternate_bases], ','), ''), "
        "list_position(?, filename), file_row_number"
    )
    result = connection.execute(query, [*files, *selection.params, list(header.contigs), *files])
    return arrow_reader(result, BATCH_ROWS)


def _run_header(input_dir: str) -> VcfHeader:
    path = os.path.join(input_dir, HEADER)
    try:
        lines = storage.read_text(path).splitlines()
    except FileNotFoundError:
        raise OutputError(
            f"{input_dir}: no {HEADER} (written by launch since this version). "
            "Hint: load the inputs again to export them."
        ) from None
    return parse_header(lines, path, len(lines))


def _header_lines(
    header: VcfHeader, samples: list[tuple[int, str]], formatter: VcfFormatter | None
) -> list[str]:
    lines = list(header.lines[:-1]) or [DEFAULT_FILEFORMAT]
    if formatter is not None:
        lines = formatter.header_lines(lines)
    columns = ["#CHROM", "POS", "ID", "REF", "ALT", "QUAL", "FILTER", "INFO"]
    if samples:
        columns += ["FORMAT", *(name for _, name in samples)]
    return [*lines, "\t".join(columns)]
