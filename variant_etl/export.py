"""``python -m variant_etl export``: a Parquet output back to one VCF (bgzipped and
tabix-indexed when it ends in .gz), for some regions and samples."""

from __future__ import annotations

import argparse
import os
import tempfile

import duckdb
import pysam

from variant_etl.core.errors import OutputError, VariantEtlError
from variant_etl.core.header import DEFAULT_FILEFORMAT, VcfHeader, parse_header
from variant_etl.core.layout import HEADER
from variant_etl.core.vcfout import VcfFormatter
from variant_etl.selection import Selection, arrow_reader, sample_table, select

BATCH_ROWS = 10_000


def export_vcf(args: argparse.Namespace) -> int:
    selection = select(args.input_parquet_dir, args.genomic_regions, args.sample_names)
    header = _run_header(args.input_parquet_dir)
    samples = _samples(args.input_parquet_dir, selection)
    written = write_vcf(selection, header, samples, args.output_vcf)
    index = " and its index (.tbi or .csi)" if args.output_vcf.endswith(".gz") else ""
    print(f"wrote {written} records of {len(samples)} sample(s) to {args.output_vcf}{index}")
    return 0


def write_vcf(selection: Selection, header: VcfHeader, samples: list[tuple[int, str]], path: str) -> int:
    compressed = path.endswith(".gz")
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise OutputError(f"--output_vcf {path}: {directory} is not a directory")
    written = 0
    with tempfile.NamedTemporaryFile(
        "w", dir=directory, suffix=".vcf", delete=False, encoding="utf-8"
    ) as out:
        try:
            out.write("\n".join(_header_lines(header, samples)) + "\n")
            if selection.files:
                reader = _sorted_rows(selection, header)
                formatter = VcfFormatter(header, reader.schema, samples, one_based=selection.one_based)
                for batch in reader:
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
    connection = duckdb.connect()
    files = list(selection.files)
    names = arrow_reader(connection.execute("SELECT * FROM read_parquet(?) LIMIT 0", [files]), 1).schema.names
    select_list = ", ".join(f"{selection.call_filter()} AS call" if n == "call" else f'"{n}"' for n in names)
    query = (
        f"SELECT {select_list} FROM read_parquet(?) WHERE {selection.where} "
        "ORDER BY list_position(?, reference_name) NULLS LAST, reference_name, start_position, end_position"
    )
    result = connection.execute(query, [files, *selection.params, list(header.contigs)])
    return arrow_reader(result, BATCH_ROWS)


def _run_header(input_dir: str) -> VcfHeader:
    path = os.path.join(input_dir, HEADER)
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except FileNotFoundError:
        raise OutputError(
            f"{input_dir}: no {HEADER} (written by launch since this version). "
            "Hint: load the inputs again to export them."
        ) from None
    return parse_header(lines, path, len(lines))


def _samples(input_dir: str, selection: Selection) -> list[tuple[int, str]]:
    """(sample_id, name) of the sample columns, ordered by name then file path."""
    rows = sorted(
        (row["sample_name"], row["file_path"], row["sample_id"])
        for row in sample_table(input_dir).to_pylist()
    )
    chosen = {}
    for name, _, sample_id in rows:
        if selection.sample_ids is None or sample_id in selection.sample_ids:
            chosen.setdefault(sample_id, name)
    names = list(chosen.values())
    if len(set(names)) != len(names):
        twice = sorted({n for n in names if names.count(n) > 1})
        raise VariantEtlError(
            f"samples {', '.join(twice[:5])} come from several files with different sample ids "
            "(--sample_name_encoding WITH_FILE_PATH): a VCF cannot hold two columns of one name. "
            "Hint: export them one file at a time with --sample_names."
        )
    return list(chosen.items())


def _header_lines(header: VcfHeader, samples: list[tuple[int, str]]) -> list[str]:
    lines = list(header.lines[:-1]) or [DEFAULT_FILEFORMAT]
    columns = ["#CHROM", "POS", "ID", "REF", "ALT", "QUAL", "FILTER", "INFO"]
    if samples:
        columns += ["FORMAT", *(name for _, name in samples)]
    return [*lines, "\t".join(columns)]
