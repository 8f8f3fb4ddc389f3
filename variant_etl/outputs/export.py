"""``python -m variant_etl export``: a Parquet output or BigQuery tables back to one VCF
(bgzipped and tabix-indexed when it ends in .gz), for some regions and samples."""

from __future__ import annotations

import collections
import json
import os
import tempfile
import uuid
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pyarrow as pa
import pysam

from variant_etl.core import bgzf
from variant_etl.core.errors import OutputError, VariantEtlError
from variant_etl.core.header import DEFAULT_FILEFORMAT, VcfHeader, parse_header
from variant_etl.core.layout import HEADER
from variant_etl.core.options import NULL_NUMERIC_VALUE_REPLACEMENT
from variant_etl.core.vcfout import VcfFormatter
from variant_etl.outputs import storage
from variant_etl.outputs.scan import VALUES_IN_FLIGHT, Piece, ordered_batches, plan_pieces
from variant_etl.outputs.selection import choose_samples, sample_table, select

THREADS = 2  # batches formatted and compressed at once
# Values (calls, or rows without samples) in a piece of a pipeline export: about 30 s of one
# worker's formatting and compression.
VALUES_PER_PIECE = 5_000_000


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
    run_parts: Callable[[list[Piece], PartWriter], None] | None = None,
    parts_dir: str | None = None,
) -> tuple[int, int]:
    """Writes the variants of a Parquet output (``input_parquet_dir``) or of a launch's BigQuery
    tables (``input_table``, PROJECT:DATASET.TABLE) that overlap ``genomic_regions`` (1-based,
    inclusive: ``chr1:100-200``), with the calls of ``sample_names`` (default: all), to
    ``output_vcf`` (.vcf.gz: bgzipped and indexed). Returns (records written, samples).

    ``run_parts``: the export cut into pieces (scan.plan_pieces), each written to its own part
    by ``run_parts(pieces, writer)`` (e.g. a Beam pipeline that calls the writer on each piece,
    cli/launch.py), under ``parts_dir`` (default: a directory beside ``output_vcf``), and the
    parts joined here."""
    if (input_parquet_dir is None) == (input_table is None):
        raise VariantEtlError("export: give one of input_parquet_dir and input_table")
    if run_parts is not None and input_table:
        raise VariantEtlError(
            "export --input_table runs no pipeline (BigQuery sorts and streams the rows). "
            "Hint: leave out the Beam options (--runner ...)."
        )
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
            batch_values=VALUES_IN_FLIGHT,
            by_start=regions_by_start_position,
        )
        header, samples, schema, batches, one_based = (
            source.header, source.samples, source.schema, source.batches, source.one_based
        )  # fmt: skip
    else:
        selection = select(input_parquet_dir, regions, names, by_start=regions_by_start_position)
        header = _run_header(input_parquet_dir)
        samples = choose_samples(sample_table(input_parquet_dir).to_pylist(), selection.sample_ids)
        schema = storage.read_schema(selection.files[0]) if selection.files else None
        one_based = selection.one_based
        if run_parts is not None:
            pieces = plan_pieces(selection.files, header.contigs, selection.regions, VALUES_PER_PIECE)
            hidden = f".{os.path.basename(output_vcf)}.parts-{uuid.uuid4().hex}"
            parts_dir = parts_dir or os.path.join(os.path.dirname(os.path.abspath(output_vcf)), hidden)
            writer = PartWriter(header, samples, schema, one_based, output_vcf.endswith(".gz"), parts_dir)
            try:
                if pieces:
                    run_parts(pieces, writer)
                written = _write_file(output_vcf, header, samples, schema, one_based, writer.joined(pieces))
            finally:
                storage.delete_dir(parts_dir)
            return written, len(samples)
        batches = ordered_batches(selection.files, header.contigs, selection.regions)
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
    that of the rows (None: there are none). Batches are formatted (and their text compressed)
    two at a time in threads (the Arrow kernels and libdeflate release the GIL), a bounded
    number ahead of the file."""
    return _write_file(path, header, samples, schema, one_based, lambda encode, out: _write_rows(
        VcfFormatter(header, schema, samples, one_based=one_based), encode, batches, out
    ))  # fmt: skip


def _write_rows(formatter: VcfFormatter, encode, batches: Iterable[pa.RecordBatch], out) -> int:
    def piece(batch: pa.RecordBatch) -> bytes:
        return encode(_text(formatter.text(batch)))

    written = 0
    with ThreadPoolExecutor(THREADS) as pool:
        pending: collections.deque = collections.deque()
        for batch in batches:
            written += batch.num_rows
            pending.append(pool.submit(piece, batch))
            if len(pending) > THREADS:
                out.write(pending.popleft().result())
        while pending:
            out.write(pending.popleft().result())
    return written


def _write_file(path: str, header: VcfHeader, samples, schema, one_based: bool, body) -> int:
    """The file at ``path``: the header, what ``body(encode, out)`` writes (it returns the
    records it wrote), the end-of-file block; then its index. Written to a temporary name
    first, so a failed export leaves nothing."""
    storage.local_target(path, "--output_vcf")
    compressed = path.endswith(".gz")
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise OutputError(f"--output_vcf {path}: {directory} is not a directory")
    formatter = VcfFormatter(header, schema, samples, one_based=one_based) if schema is not None else None
    encode = bgzf.compress if compressed else bytes
    with tempfile.NamedTemporaryFile("wb", dir=directory, suffix=".part", delete=False) as out:
        try:
            out.write(encode("\n".join(_header_lines(header, samples, formatter)).encode() + b"\n"))
            written = body(encode, out) if formatter is not None else 0
            if compressed:
                out.write(bgzf.EOF_BLOCK)
        except BaseException:
            out.close()
            os.unlink(out.name)
            raise
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(out.name, 0o666 & ~umask)  # as an open() of the path would have made it
        os.replace(out.name, path)
        if compressed:
            try:
                pysam.tabix_index(path, preset="vcf", force=True)
            except OSError:  # positions beyond 2^29 need a CSI index
                pysam.tabix_index(path, preset="vcf", force=True, csi=True)
    except BaseException:
        for name in (out.name, path):
            if os.path.exists(name):
                os.unlink(name)
        raise
    return written


class PartWriter:
    """Writes one piece of an export (scan.Piece) to ``parts_dir``: its text, in whole bgzip
    blocks when the export is compressed, then ``NNNNNN.json`` with its record count. What the
    workers of a pipeline export call on each piece; ``joined`` puts the parts together."""

    def __init__(self, header, samples, schema, one_based: bool, compressed: bool, parts_dir: str):
        self.header, self.samples, self.schema = header, samples, schema
        self.one_based, self.compressed, self.parts_dir = one_based, compressed, parts_dir
        self._formatter: VcfFormatter | None = None

    def __getstate__(self):
        return {**self.__dict__, "_formatter": None}

    def part(self, number: int) -> str:
        return f"{self.parts_dir}/{number:06d}.part"

    def __call__(self, piece: Piece) -> int:
        if self._formatter is None:
            self._formatter = VcfFormatter(self.header, self.schema, self.samples, one_based=self.one_based)
        encode = bgzf.compress if self.compressed else bytes
        records = 0
        # one batch at a time: the workers are the parallelism here (with _write_rows' two
        # threads each, DirectRunner's export of 10k x 2,500 took 1.06 GB instead of 787 MB)
        with storage.open_output(self.part(piece.number)) as out:
            for batch in piece.batches():
                records += batch.num_rows
                out.write(encode(_text(self._formatter.text(batch))))
        storage.write_text(self.part(piece.number) + ".json", json.dumps({"records": records}))
        return records

    def joined(self, pieces: list[Piece]):
        """The ``body`` of _write_file that copies the parts, in order."""

        def body(_encode, out) -> int:
            written = 0
            for piece in pieces:
                try:
                    written += json.loads(storage.read_text(self.part(piece.number) + ".json"))["records"]
                except FileNotFoundError:
                    raise OutputError(
                        f"export: piece {piece.number} ({piece.contig}) of {len(pieces)} was not written "
                        f"to {self.parts_dir}: the pipeline did not finish"
                    ) from None
                with storage.open_input(self.part(piece.number)) as part:
                    while chunk := part.read(1 << 22):
                        out.write(chunk)
            return written

        return body


def _text(lines: pa.Array) -> memoryview:
    """The text of a string array of lines (its data buffer, between its first and last offset)."""
    if len(lines) == 0:
        return memoryview(b"")
    offsets = np.frombuffer(lines.buffers()[1], np.int32, len(lines) + 1, lines.offset * 4)
    return memoryview(lines.buffers()[2])[offsets[0] : offsets[-1]]


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
