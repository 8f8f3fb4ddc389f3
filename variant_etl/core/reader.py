"""Reading one split into Arrow batches, with a dead-letter list of malformed records."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import pyarrow as pa

from variant_etl.core.diagnose import diagnose_line
from variant_etl.core.errors import VcfFormatError
from variant_etl.core.records import BatchBuilder, MalformedRecord
from variant_etl.core.schema import VariantSchema
from variant_etl.core.source import OpenBinary, _open_local, open_source, raw_lines

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


def read_split(
    path: str,
    schema: VariantSchema,
    *,
    one_based: bool,
    allow_malformed: bool,
    batch_rows: int,
    result: ReadResult,
    open_binary: OpenBinary = _open_local,
    extra_header_lines: tuple[str, ...] = (),
    sample_ids: tuple[int, ...] | None = None,
    file_index: int | None = None,
    byte_range: tuple[int, int] | None = None,
    record_base: int = 0,
) -> Iterator[pa.RecordBatch | Malformed]:
    """Yields RecordBatches and (with allow_malformed) Malformed entries.

    Without allow_malformed the first malformed record raises VcfFormatError,
    whose message names file, line, field and value. With ``file_index`` (merging),
    batches carry a hidden ``_origin`` column: file index and record number (``record_base``
    + the record's index in this split). ``byte_range`` reads the lines of an uncompressed
    file that start in [start, end).
    """
    with open_source(
        path, open_binary, extra_header_lines=extra_header_lines, byte_range=byte_range
    ) as source:
        builder = BatchBuilder(
            schema,
            source.header.samples,
            one_based=one_based,
            sample_ids=sample_ids or None,
            file_index=file_index,
        )
        pending: list[tuple[int, object, str | None]] = []  # (index, problem, text)
        index = -1
        for index, record in enumerate(source.records()):
            if isinstance(record, Exception):
                problem: object = record
                text = None
            else:
                try:
                    builder.add(record, record_base + index)
                except MalformedRecord as err:
                    problem, text = err, str(record).rstrip("\n")
                else:
                    if len(builder) >= batch_rows:
                        yield builder.flush()
                    continue
            pending.append((index, problem, text))
            if not allow_malformed:
                entry = _entries(source, pending, open_binary)[0]
                raise VcfFormatError(entry.message() + MALFORMED_HINT)
        result.records_read = index + 1
        batch = builder.flush()
        if batch is not None:
            yield batch
        if pending:
            yield from _entries(source, pending, open_binary)


def _entries(source, pending, open_binary: OpenBinary) -> list[Malformed]:
    lines = {}
    if source.line_map is not None:
        numbers = {source.line_map.line_of(index) for index, _, _ in pending}
        lines = raw_lines(source.path, numbers, open_binary)
    entries = []
    for index, problem, text in pending:
        line = source.line_map.line_of(index) if source.line_map is not None else None
        raw = lines.get(line, text or "")
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
                record=index + 1,
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
