"""Opening one VCF/BCF input: compression detection, header normalisation, and a
pysam reader fed through a pipe.

htslib only reads bgzip, plain text and BCF, and rejects headers that
gcp-variant-transforms accepted (a blank first line, no ``##fileformat``, a
trailing tab after the last sample). So text inputs are decompressed here (gzip,
bgzip, bzip2 or none), their header is normalised, blank body lines and CRs are
removed, and the result is streamed to pysam through an OS pipe by a feeder
thread. BCF is streamed as is. Line numbers of the original file are kept so
errors can name them.
"""

from __future__ import annotations

import bisect
import bz2
import contextlib
import dataclasses
import gzip
import os
import re
import threading
import zlib
from collections.abc import Callable, Iterator
from typing import BinaryIO

import numpy as np
import pysam

from variant_etl.core.errors import VcfFormatError
from variant_etl.core.header import (
    VcfHeader,
    htslib_header_lines,
    normalise_header_lines,
    parse_header,
    with_extra_lines,
)
from variant_etl.core.limits import HTSLIB_INT32_MIN, INT32_MAX, INT64_MAX, INT64_MIN, MAX_POS
from variant_etl.core.records import MalformedRecord

OpenBinary = Callable[[str], BinaryIO]
_CHUNK = 1 << 20

pysam.set_verbosity(0)  # htslib warnings go to stderr; we report problems ourselves


# What reading a damaged compressed file raises (zlib.error is no OSError)
READ_ERRORS = (OSError, EOFError, zlib.error)


def _open_local(path: str) -> BinaryIO:
    return open(path, "rb")


def detect_format(path: str, open_binary: OpenBinary = _open_local) -> str:
    """Returns 'gzip', 'bzip2', 'bcf' or 'plain' from the file's first bytes."""
    with open_binary(path) as raw:
        magic = raw.read(4)
    if magic[:2] == b"\x1f\x8b":
        with open_binary(path) as raw, gzip.GzipFile(fileobj=raw) as unzipped:
            try:
                head = unzipped.read(3)
            except READ_ERRORS as err:
                raise truncated(path, err) from None
        return "bcf" if head == b"BCF" else "gzip"
    if magic[:3] == b"BZh":
        return "bzip2"
    if magic[:3] == b"BCF":
        return "bcf"
    return "plain"


def _text_stream(raw: BinaryIO, fmt: str) -> BinaryIO:
    if fmt == "gzip":
        return gzip.GzipFile(fileobj=raw)  # reads every member, so bgzip too
    if fmt == "bzip2":
        return bz2.BZ2File(raw)
    return raw


def _read_header_lines(stream: BinaryIO, path: str) -> tuple[list[str], int, bytes]:
    """Reads up to and including '#CHROM'. Returns lines, physical line count, rest."""
    lines: list[str] = []
    count = 0
    while True:
        line = stream.readline()
        if not line:
            break
        count += 1
        text = line.decode("utf-8", errors="replace")
        if text.startswith("#CHROM"):
            lines.append(text)
            return lines, count, b""
        if text.startswith("#") or not text.strip():
            lines.append(text)
            continue
        if not lines and (b"\x00" in line or "\ufffd" in text):
            raise VcfFormatError(
                f"{path}: not a VCF or BCF file (it starts with binary data, {line[:12]!r}). "
                "Hint: inputs must be VCF text (plain, gzip, bgzip or bzip2) or BCF."
            )
        # A record before any #CHROM line: let normalise_header_lines raise.
        break
    if count == 0:
        raise VcfFormatError(
            f"{path}: the file is empty. Hint: a VCF holds at least its header, which ends with "
            "the '#CHROM POS ID REF ALT QUAL FILTER INFO' line."
        )
    normalise_header_lines(lines, path)
    raise AssertionError("unreachable")  # pragma: no cover


def read_header(path: str, open_binary: OpenBinary = _open_local) -> VcfHeader:
    """Reads and normalises the header of a VCF or BCF file (any compression).

    Text inputs are decompressed only up to the '#CHROM' line, without the pipe and
    thread a ``VcfSource`` needs (the plan reads every input's header); BCF goes
    through pysam. Gives the same header, and the same errors, as ``open_source``.
    """
    fmt = detect_format(path, open_binary)
    if fmt == "bcf":
        with open_source(path, open_binary) as source:
            return source.header
    with open_binary(path) as raw:
        try:
            raw_lines, count, _ = _read_header_lines(_text_stream(raw, fmt), path)
        except READ_ERRORS as err:
            raise truncated(path, err) from None
        body_offset = raw.tell() if fmt == "plain" else None
    lines = normalise_header_lines(raw_lines, path)
    header = dataclasses.replace(parse_header(lines, path, count), body_offset=body_offset)
    _check_htslib_accepts(lines, path)
    return header


def _check_htslib_accepts(lines: list[str], path: str) -> None:
    """htslib refuses some headers we parse (samples without FORMAT, a '#x' line...):
    let it parse the header text from memory (a data: URL), as the reader would."""
    text = "\n".join(htslib_header_lines(lines)) + "\n"
    try:
        pysam.VariantFile("data:," + text).close()
    except (OSError, ValueError):
        raise VcfFormatError(
            f"{path}: htslib cannot read this file (it rejects the header). "
            "Hint: check the ##fileformat line, lines that start with a single '#', and that the "
            "'#CHROM' line has a FORMAT column before the sample names."
        ) from None


class _LineMap:
    """Maps a record's index to its line number in the original file.

    ``lines_before`` is the number of lines before the first record read: the header's,
    or for a byte range that starts later in the file, a function that counts them (only
    called when a message needs a line number).
    """

    def __init__(self, lines_before: int | Callable[[], int]):
        self._lines_before = lines_before
        self._gap_starts: list[int] = []  # record index after which blank lines were dropped
        self._gap_totals: list[int] = []  # cumulative blank lines before that record

    def add_blank_lines(self, next_record_index: int, count: int) -> None:
        total = (self._gap_totals[-1] if self._gap_totals else 0) + count
        if self._gap_starts and self._gap_starts[-1] == next_record_index:
            self._gap_totals[-1] = total
        else:
            self._gap_starts.append(next_record_index)
            self._gap_totals.append(total)

    @property
    def header_lines(self) -> int:
        if callable(self._lines_before):
            self._lines_before = self._lines_before()
        return self._lines_before

    def line_of(self, record_index: int) -> int:
        k = bisect.bisect_right(self._gap_starts, record_index)
        blanks = self._gap_totals[k - 1] if k else 0
        return self.header_lines + record_index + 1 + blanks


class VcfSource:
    """An open input: ``header``, and ``records()`` yielding pysam records or errors."""

    def __init__(
        self,
        path: str,
        open_binary: OpenBinary = _open_local,
        *,
        extra_header_lines: tuple[str, ...] = (),
        byte_range: tuple[int, int] | None = None,
    ):
        self.path = path
        self._open_binary = open_binary
        self.format = detect_format(path, open_binary)
        self._feeder_error: BaseException | None = None
        # record index -> the value htslib would silently read as missing (found by the feeder)
        self._overflows: dict[int, MalformedRecord] = {}
        # record index -> its Integer values beyond 32 bits, which htslib reads as missing
        self.long_integers: dict[int, LongIntegers] = {}
        self._stop = threading.Event()
        read_fd, self._write_fd = os.pipe()
        self._read_fd = read_fd
        self._raw = open_binary(path)
        if self.format == "bcf":
            self._thread = threading.Thread(target=self._feed_raw, daemon=True)
            self._thread.start()
            self._variant_file = self._open_pysam(read_fd)
            text = str(self._variant_file.header).splitlines()
            self.header = parse_header(normalise_header_lines(text, path), path, 0)
            self.line_map = None
        else:
            self._text = _text_stream(self._raw, self.format)
            try:
                raw_lines, count, _ = _read_header_lines(self._text, path)
            except READ_ERRORS as err:
                self._close_fds(read_fd)
                raise truncated(path, err) from None
            except VcfFormatError:
                self._close_fds(read_fd)
                raise
            lines = normalise_header_lines(raw_lines, path)
            body_offset = self._raw.tell() if self.format == "plain" else None
            self.header = dataclasses.replace(parse_header(lines, path, count), body_offset=body_offset)
            self.line_map = _LineMap(count)
            limit = None
            if byte_range is not None:
                if self.format != "plain":
                    self._close_fds(read_fd)
                    raise ValueError(f"{path}: byte ranges need an uncompressed file")
                start, limit = byte_range
                if start > body_offset:
                    self._raw.seek(start - 1)
                    if self._raw.read(1) != b"\n":
                        self._raw.readline()  # that line belongs to the range before
                    aligned = self._raw.tell()
                    self.line_map = _LineMap(lambda: _count_lines(path, aligned, open_binary))
            # Definitions other inputs declare (or --infer_headers found) are added so that
            # htslib types the values as the schema does.
            typed_lines = with_extra_lines(lines, extra_header_lines)
            self._integers = _IntegerFields(parse_header(typed_lines, path, count))
            pysam_lines = htslib_header_lines(typed_lines)
            header_bytes = ("\n".join(pysam_lines) + "\n").encode("utf-8")
            self._thread = threading.Thread(target=self._feed_text, args=(header_bytes, limit), daemon=True)
            self._thread.start()
            self._variant_file = self._open_pysam(read_fd)

    def _close_fds(self, read_fd: int) -> None:
        os.close(read_fd)
        os.close(self._write_fd)
        self._raw.close()

    def _open_pysam(self, read_fd: int) -> pysam.VariantFile:
        try:
            return pysam.VariantFile(read_fd, "r")
        except (OSError, ValueError) as err:
            self.close()
            raise VcfFormatError(
                f"{self.path}: htslib cannot read this file ({err}). {self._feeder_message()}"
            ) from None

    def _feeder_message(self) -> str:
        return f"Reading the file failed: {self._feeder_error}" if self._feeder_error else ""

    def location(self, record_index: int) -> str:
        """'file:line' for text inputs, 'file: record N' for BCF."""
        if self.line_map is None:
            return f"{self.path}: record {record_index + 1}"
        return f"{self.path}:{self.line_map.line_of(record_index)}"

    def _feed_raw(self) -> None:
        with self._feeding() as out:
            while chunk := self._raw.read(_CHUNK):
                out.write(chunk)

    def _feed_text(self, header_bytes: bytes, limit: int | None) -> None:
        """Header, then the body's lines; with ``limit``, the lines that start before it."""
        with self._feeding() as out:
            out.write(header_bytes)
            records = 0
            offset = self._raw.tell() if limit is not None else 0
            for chunk, _ in body_chunks(self._text, limit, offset, _CHUNK):
                records = self._write_body(out, chunk, records)
                if self._stop.is_set():
                    return

    def _write_body(self, out: BinaryIO, chunk: bytes, records: int) -> int:
        if b"\r" in chunk:
            chunk = chunk.replace(b"\r\n", b"\n")
        if chunk.startswith(b"\n") or b"\n\n" in chunk:
            kept = []
            for line in chunk.split(b"\n")[:-1]:
                if line.strip():
                    kept.append(line)
                    records += 1
                else:
                    self.line_map.add_blank_lines(records, 1)
            chunk = b"\n".join(kept) + b"\n" if kept else b""
        else:
            records += chunk.count(b"\n")
        if _LONG_NUMBER.search(chunk):  # rare: look closer before htslib sees it
            malformed, long = self._integers.scan(chunk, records - chunk.count(b"\n"))
            self._overflows.update(malformed)
            self.long_integers.update(long)
        out.write(chunk)
        return records

    @contextlib.contextmanager
    def _feeding(self) -> Iterator[BinaryIO]:
        out = os.fdopen(self._write_fd, "wb", buffering=_CHUNK)
        try:
            yield out
        except BrokenPipeError:
            pass  # the reader stopped early (error or close): nothing to report
        except (*READ_ERRORS, ValueError) as err:
            self._feeder_error = err
        finally:
            with contextlib.suppress(OSError):
                out.close()

    def records(self) -> Iterator[pysam.VariantRecord | Exception]:
        """Yields each record, or the exception htslib raised for an unparsable line."""
        variant_file = self._variant_file
        index = -1
        while True:
            index += 1
            try:
                record = next(variant_file)
            except StopIteration:
                break
            except (OSError, ValueError) as err:
                if self._feeder_error is not None:
                    break
                yield err
                continue
            yield self._overflows.pop(index, record)
        self._thread.join()
        if self._feeder_error is not None:
            raise truncated(self.path, self._feeder_error)

    def close(self) -> None:
        self._stop.set()
        if getattr(self, "_variant_file", None) is not None:
            self._variant_file.close()
            self._variant_file = None
        with contextlib.suppress(OSError):
            os.close(self._read_fd)  # unblocks the feeder if pysam kept the pipe open
        self._thread.join(timeout=10)
        self._raw.close()

    def __enter__(self) -> VcfSource:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def open_source(
    path: str,
    open_binary: OpenBinary = _open_local,
    *,
    extra_header_lines: tuple[str, ...] = (),
    byte_range: tuple[int, int] | None = None,
) -> VcfSource:
    return VcfSource(path, open_binary, extra_header_lines=extra_header_lines, byte_range=byte_range)


def body_chunks(text: BinaryIO, limit: int | None, offset: int, size: int) -> Iterator[tuple[bytes, int]]:
    """(bytes of complete lines, their line count) read from ``text``; with ``limit``, only
    the lines that start before it (``offset``: the position of the next byte of ``text``)."""
    carry = b""
    while piece := text.read(size):
        chunk_start = offset - len(carry)
        offset += len(piece)
        cut = piece.rfind(b"\n") + 1
        if not cut:  # no line ends in this piece
            carry += piece
            continue
        chunk = b"".join((carry, memoryview(piece)[:cut]))  # (one copy of the text, not three)
        carry = piece[cut:]
        if limit is not None and chunk_start + len(chunk) > limit:
            keep = limit - chunk_start
            if keep > 0:
                chunk = chunk[: chunk.index(b"\n", keep - 1) + 1]
                yield chunk, newlines(chunk)
            return
        yield chunk, newlines(chunk)
    if carry and (limit is None or offset - len(carry) < limit):
        yield carry + b"\n", 1


def newlines(text: bytes) -> int:
    """The newlines in ``text`` (numpy: a quarter of the time of ``bytes.count``)."""
    return int(np.count_nonzero(np.frombuffer(text, np.uint8) == 10))


# a value of 10 digits or more (2^31 has 10), not a part of a name like ENSG00000026486
_LONG_NUMBER = re.compile(rb"(?<=[=,:\t])[+-]?\d{10,}(?=[,;:\t\n]|$)")
_INT32 = (HTSLIB_INT32_MIN, INT32_MAX)
_INTEGER = re.compile(r"[+-]?\d+")


@dataclasses.dataclass
class LongIntegers:
    """A record's Integer values beyond 32 bits, as written: htslib reads them as missing (with
    only a warning on stderr), our INT64 columns hold them. ``end``: its INFO/END, the end of a
    record on a chromosome longer than 2^31."""

    end: int | None = None
    info: dict[str, tuple] = dataclasses.field(default_factory=dict)
    format: dict[tuple[str, int], tuple] = dataclasses.field(default_factory=dict)  # (key, sample)


class _IntegerFields:
    """Finds the records with Integer INFO/FORMAT values beyond 32 bits (LongIntegers), and those
    with a value beyond 64 bits, or an END before POS or beyond htslib's positions (malformed)."""

    def __init__(self, header: VcfHeader):
        self._info = {k for k, f in header.infos.items() if f.type == "Integer"}
        self._format = {k for k, f in header.formats.items() if f.type == "Integer"}
        self._samples = header.samples

    def scan(self, chunk: bytes, first_index: int) -> tuple[dict[int, MalformedRecord], dict]:
        """(record index -> why it is malformed, record index -> its long values)."""
        malformed, found = {}, {}
        for offset, line in enumerate(chunk.split(b"\n")[:-1]):
            if _LONG_NUMBER.search(line):
                try:
                    long = self._long_values(line.decode("utf-8", errors="replace").split("\t"))
                except MalformedRecord as err:
                    malformed[first_index + offset] = err
                else:
                    if long is not None:
                        found[first_index + offset] = long
        return malformed, found

    def _long_values(self, columns: list[str]) -> LongIntegers | None:
        long = LongIntegers()
        if len(columns) > 7:
            for entry in columns[7].split(";"):
                key, _, text = entry.partition("=")
                if key in self._info:
                    values = _values(text, f"INFO/{key}")
                    if values is not None:
                        long.info[key] = values
        if len(columns) > 9:
            keys = columns[8].split(":")
            for number, (name, column) in enumerate(zip(self._samples, columns[9:])):
                for key, text in zip(keys, column.split(":")):
                    if key in self._format:
                        values = _values(text, f"FORMAT/{key} of {name}")
                        if values is not None:
                            long.format[(key, number)] = values
        if "END" in long.info:
            end = long.info.pop("END")[0]
            if end is None or end > MAX_POS or not columns[1].isdigit() or end < int(columns[1]):
                raise MalformedRecord("INFO/END", end, f"expected a position from POS to {MAX_POS}")
            long.end = end
        return long if long.end is not None or long.info or long.format else None


def _values(text: str, field: str) -> tuple | None:
    """The integers of a value ('.' as None) if one is beyond 32 bits, else None."""
    items = text.split(",")
    if not any(_INTEGER.fullmatch(v) and not _INT32[0] <= int(v) <= _INT32[1] for v in items):
        return None
    if not all(v == "." or _INTEGER.fullmatch(v) for v in items):
        return None  # not integers: the reader says why
    values = tuple(None if v == "." else int(v) for v in items)
    if any(v is not None and not INT64_MIN <= v <= INT64_MAX for v in values):
        why = f"Type=Integer: expected 64-bit integers ({INT64_MIN} to {INT64_MAX})"
        raise MalformedRecord(field, text, why)
    return values


def truncated(path: str, err: BaseException) -> VcfFormatError:
    return VcfFormatError(
        f"{path}: the file is truncated or corrupt ({err}). "
        "Hint: check it with 'gzip -t' or 'bgzip -t', or re-download it."
    )


def _count_lines(path: str, end: int, open_binary: OpenBinary) -> int:
    """Lines that end before byte ``end`` of an uncompressed file."""
    count = 0
    with open_binary(path) as raw:
        remaining = end
        while remaining > 0:
            chunk = raw.read(min(_CHUNK, remaining))
            if not chunk:
                break
            count += chunk.count(b"\n")
            remaining -= len(chunk)
    return count


def record_lines(path: str, open_binary: OpenBinary = _open_local) -> Iterator[str]:
    """The record lines of a text VCF, as written (none for BCF, whose header is complete)."""
    fmt = detect_format(path, open_binary)
    if fmt == "bcf":
        return
    with open_binary(path) as raw:
        try:
            for line in _text_stream(raw, fmt):
                if line.startswith(b"#") or not line.strip():
                    continue
                yield line.decode("utf-8", errors="replace")
        except READ_ERRORS as err:
            raise truncated(path, err) from None


def raw_lines(path: str, line_numbers: set[int], open_binary: OpenBinary = _open_local) -> dict[int, str]:
    """Re-reads the original text of the given lines (1-based), for dead-letter entries."""
    fmt = detect_format(path, open_binary)
    if fmt == "bcf" or not line_numbers:
        return {}
    found: dict[int, str] = {}
    last = max(line_numbers)
    with open_binary(path) as raw:
        stream = _text_stream(raw, fmt)
        for number, line in enumerate(stream, start=1):
            if number in line_numbers:
                found[number] = line.decode("utf-8", errors="replace").rstrip("\r\n")
            if number >= last:
                break
    return found
