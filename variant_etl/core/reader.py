"""Reading one split into Arrow batches, with a dead-letter list of malformed records."""

from __future__ import annotations

import dataclasses
import functools
import io
from collections.abc import Callable, Iterator

import pyarrow as pa

from variant_etl.core.bgzf import BlockRange, newlines_before
from variant_etl.core.diagnose import diagnose_line
from variant_etl.core.errors import VcfFormatError
from variant_etl.core.header import normalise_header_lines, parse_header, with_extra_lines
from variant_etl.core.records import BatchBuilder, MalformedRecord
from variant_etl.core.schema import VariantSchema
from variant_etl.core.source import (
    READ_ERRORS,
    OpenBinary,
    _count_lines,
    _open_local,
    _read_header_lines,
    _text_stream,
    body_chunks,
    detect_format,
    open_source,
    raw_lines,
    truncated,
)
from variant_etl.core.textparse import Fallback, TextParser

_CHUNK_BYTES = 4 << 20  # text read per TextParser batch
MALFORMED_HINT = (
    ". Hint: fix the record, or pass --allow_malformed_records to write it to _malformed/ "
    "in the output and go on."
)


@dataclasses.dataclass(frozen=True)
class Malformed:
    """A dead-letter entry: where the record is, its text, and why it was refused."""

    file: str
    line: int | None  # None for BCF, which has no lines
    record: int  # 1-based record number in the file
    field: str
    value: str
    reason: str
    raw: str

    def message(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else f"{self.file}: record {self.record}"
        return f"{where}: {self.field}: {self.reason}, got {self.value!r}"


@dataclasses.dataclass
class ReadResult:
    """Filled in while reading: how many records the split held."""

    records_read: int = 0
    records_matched: int = 0  # loaded with Number=A values matched to the ALTs (BatchBuilder)
    records_cast: int = 0  # loaded with a Number=1 number's first value of several (BatchBuilder)


def read_split(
    path: str,
    schema: VariantSchema,
    *,
    one_based: bool,
    allow_malformed: bool,
    batch_rows: int,
    result: ReadResult,
    cast_values: bool = False,
    open_binary: OpenBinary = _open_local,
    extra_header_lines: tuple[str, ...] = (),
    sample_ids: tuple[int, ...] | None = None,
    file_index: int | None = None,
    byte_range: tuple[int, int] | None = None,
    record_base: int = 0,
    fast: bool = True,
) -> Iterator[pa.RecordBatch | Malformed]:
    """Yields RecordBatches and (with allow_malformed) Malformed entries.

    Without allow_malformed the first malformed record raises VcfFormatError,
    whose message names file, line, field and value. With ``file_index`` (merging),
    batches carry a hidden ``_origin`` column: file index and record number (``record_base``
    + the record's index in this split). ``byte_range`` reads the lines of an uncompressed
    file that start in [start, end). ``cast_values`` (--allow_incompatible_records): a
    Number=1 number written with several values keeps the first.

    Text inputs are parsed chunk by chunk by the vectorized ``TextParser``; a chunk it
    cannot reproduce exactly (and BCF, and ``fast=False``) is read by pysam.
    """
    options = dict(
        schema=schema,
        one_based=one_based,
        allow_malformed=allow_malformed,
        cast_values=cast_values,
        batch_rows=batch_rows,
        extra_header_lines=extra_header_lines,
        sample_ids=sample_ids,
        file_index=file_index,
    )
    fmt = detect_format(path, open_binary)
    if not fast or fmt == "bcf":
        yield from _read_pysam(
            path, result=result, open_binary=open_binary, byte_range=byte_range, record_base=record_base,
            **options,
        )  # fmt: skip
        return
    yield from _read_text(path, fmt, result, open_binary, byte_range, record_base, options)


def _read_text(path, fmt, result, open_binary, byte_range, record_base, options) -> Iterator:
    """Reads a text VCF in chunks of lines: TextParser first, pysam for chunks it refuses."""
    with open_binary(path) as raw:
        text = _text_stream(raw, fmt)
        try:
            header_text, count, _ = _read_header_lines(text, path)
        except READ_ERRORS as err:
            raise truncated(path, err) from None
        lines = normalise_header_lines(header_text, path)
        own = parse_header(with_extra_lines(lines, options["extra_header_lines"]), path, count)
        parser = TextParser(
            options["schema"],
            own.infos,
            own.formats,
            own.samples,
            filters=own.filters,
            one_based=options["one_based"],
            sample_ids=options["sample_ids"],
            file_index=options["file_index"],
        )
        lines_before: int | Callable[[], int] = count
        limit = None
        if byte_range is not None and fmt == "gzip":  # bgzip: a range of blocks (core/bgzf.py)
            start, end = byte_range
            text = BlockRange(raw, start, end)
            if start == 0:
                _read_header_lines(text, path)
            else:
                lines_before = functools.cache(lambda: _bgzf_lines_before(path, start, open_binary))
        elif byte_range is not None:
            if fmt != "plain":
                raise ValueError(f"{path}: byte ranges need an uncompressed or bgzipped file")
            start, limit = byte_range
            if start > raw.tell():
                raw.seek(start - 1)
                if raw.read(1) != b"\n":
                    raw.readline()  # that line belongs to the range before
                aligned = raw.tell()
                lines_before = functools.cache(lambda: _count_lines(path, aligned, open_binary))
        header_bytes = "".join(header_text).encode("utf-8")
        records = 0
        chunks = _checked(body_chunks(text, limit, raw.tell() if limit else 0, _CHUNK_BYTES), path)
        for chunk, lines_in_chunk in chunks:
            try:
                batch = parser.parse(chunk, record_base + records)
            except Fallback:
                part = ReadResult()
                shift = _line_shift(lines_before, count)
                yield from _read_pysam(
                    path,
                    result=part,
                    open_binary=lambda _path, data=header_bytes + chunk: io.BytesIO(data),
                    record_base=record_base + records,
                    records_before=records,
                    line_shift=shift,
                    **options,
                )
                records += part.records_read
                result.records_matched += part.records_matched
                result.records_cast += part.records_cast
            else:
                records += batch.num_rows
                if batch.num_rows:
                    yield batch
            lines_before = _advance(lines_before, lines_in_chunk)
        result.records_read = records


def _bgzf_lines_before(path: str, start: int, open_binary: OpenBinary) -> int:
    with open_binary(path) as raw:
        return newlines_before(raw, start)


def _line_shift(lines_before, header_lines: int) -> Callable[[], int]:
    """How far a line number in (header + chunk) is from the same line in the file."""
    return lambda: (lines_before() if callable(lines_before) else lines_before) - header_lines


def _advance(lines_before, lines: int):
    if callable(lines_before):
        return functools.cache(lambda previous=lines_before: previous() + lines)
    return lines_before + lines


def _checked(chunks: Iterator, path: str) -> Iterator:
    """``chunks``, with a read error (truncated or corrupt compressed data) as VcfFormatError."""
    try:
        yield from chunks
    except READ_ERRORS as err:
        raise truncated(path, err) from None


def _read_pysam(
    path: str,
    schema: VariantSchema,
    *,
    one_based: bool,
    allow_malformed: bool,
    cast_values: bool,
    batch_rows: int,
    result: ReadResult,
    open_binary: OpenBinary,
    extra_header_lines: tuple[str, ...],
    sample_ids: tuple[int, ...] | None,
    file_index: int | None,
    byte_range: tuple[int, int] | None = None,
    record_base: int = 0,
    records_before: int = 0,
    line_shift: Callable[[], int] | None = None,
) -> Iterator[pa.RecordBatch | Malformed]:
    """read_split through pysam. ``records_before`` and ``line_shift`` place a chunk read
    on its own (header + lines) in its file, for messages."""
    with open_source(
        path, open_binary, extra_header_lines=extra_header_lines, byte_range=byte_range
    ) as source:
        builder = BatchBuilder(
            schema,
            source.header.samples,
            one_based=one_based,
            sample_ids=sample_ids or None,
            file_index=file_index,
            match_alt_values=allow_malformed,
            cast_values=cast_values,
        )
        pending: list[tuple[int, object, str | None]] = []  # (index, problem, text)
        index = -1
        for index, record in enumerate(source.records()):
            if isinstance(record, Exception):
                problem: object = record
                text = None
            else:
                try:
                    builder.add(record, record_base + index, source.long_integers.pop(index, None))
                except MalformedRecord as err:
                    problem, text = err, record_text(record)
                else:
                    if len(builder) >= batch_rows:
                        yield builder.flush()
                    continue
            pending.append((index, problem, text))
            if not allow_malformed:
                entry = _entries(source, pending, open_binary, records_before, line_shift)[0]
                raise VcfFormatError(entry.message() + MALFORMED_HINT)
        result.records_read = index + 1
        result.records_matched += builder.matched
        result.records_cast += builder.cast
        batch = builder.flush()
        if batch is not None:
            yield batch
        if pending:
            yield from _entries(source, pending, open_binary, records_before, line_shift)


def record_text(record) -> str | None:
    try:
        return str(record).rstrip("\n")
    except UnicodeDecodeError:
        return None


def _entries(source, pending, open_binary: OpenBinary, records_before=0, line_shift=None) -> list[Malformed]:
    lines = {}
    if source.line_map is not None:
        numbers = {source.line_map.line_of(index) for index, _, _ in pending}
        lines = raw_lines(source.path, numbers, open_binary)
    entries = []
    for index, problem, text in pending:
        line = source.line_map.line_of(index) if source.line_map is not None else None
        raw = lines.get(line, text or "")
        if line is not None and line_shift is not None:
            line += line_shift()
        if isinstance(problem, MalformedRecord):
            field, value, reason = problem.field, str(problem.value), problem.reason
            written = _raw_value(raw, field)
            value = value if written is None else written
        elif raw:
            field, value, reason = diagnose_line(raw, source.header)
        else:
            field, value, reason = "record", "", f"htslib could not parse it ({problem})"
        entries.append(
            Malformed(
                file=source.path,
                line=line,
                record=records_before + index + 1,
                field=field,
                value=value,
                reason=reason,
                raw=raw,
            )  # fmt: skip
        )
    return entries


def _raw_value(raw: str, field: str) -> str | None:
    """The value as written in the file (pysam's may be rounded or defaulted)."""
    columns = raw.split("\t")
    if field == "POS" and len(columns) > 1:
        return columns[1]
    if field.startswith("INFO/") and len(columns) > 7:
        for entry in columns[7].split(";"):
            key, _, value = entry.partition("=")
            if key == field[5:]:
                return value
    return None
