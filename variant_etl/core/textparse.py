"""A vectorized parser for VCF text: a chunk of record lines -> one Arrow RecordBatch.

pysam (htslib) is the reference parser. This one does the same work with pyarrow
compute kernels over a whole chunk at once, for the records whose values it can
reproduce exactly as htslib reads them (32-bit floats, the missing value '.', END
setting end_position). Anything else, such as a value htslib would type otherwise, a
count that does not match Number=, an undeclared field or bytes that are not UTF-8,
raises ``Fallback`` and the caller reads the chunk with pysam, which also writes the
error messages. ``tests/test_textparse.py`` checks both parsers give identical batches
on every test file.
"""

from __future__ import annotations

import functools
import io
import re

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from variant_etl.core import schema as s
from variant_etl.core.header import FieldDef
from variant_etl.core.limits import MAX_POS
from variant_etl.core.records import genotype_count, sample_id
from variant_etl.core.schema import VariantSchema

_SITE_COLUMNS = ("CHROM", "POS", "ID", "REF", "ALT", "QUAL", "FILTER", "INFO")
# INFO/FORMAT integers as htslib reads them (32 bits; beyond, it reads missing with a warning:
# refused here, in both readers, rather than lost).
_STRING_TYPES = ("String", "Character")
_FILTER_NAME = re.compile(r"[0-9A-Za-z_.-]+")
# Contig names as VCF 4.3 allows them
_CONTIG_NAME = re.compile(r"[0-9A-Za-z!#$%&+./:;?@^_|~-][0-9A-Za-z!#$%&*+./:;=?@^_|~-]*")


CALLS = "_calls"  # in the columns of a chunk: the text of each call, row-major


class Fallback(Exception):
    """The chunk holds something only the reference parser reads exactly."""


def _require(condition: bool, why: str) -> None:
    if not condition:
        raise Fallback(why)


class TextParser:
    """Parses chunks of one file's record lines into batches of the output schema.

    ``file_infos``/``file_formats`` are the definitions htslib would use for this file
    (its header plus the extra lines it is given); a field is parsed here only when
    they agree with the schema's definition.
    """

    def __init__(
        self,
        schema: VariantSchema,
        file_infos: dict[str, FieldDef],
        file_formats: dict[str, FieldDef],
        samples: tuple[str, ...],
        *,
        filters: tuple[str, ...] = (),
        one_based: bool = False,
        sample_ids: tuple[int, ...] | None = None,
        file_index: int | None = None,
    ):
        self.schema = schema
        self._filters = {"PASS", *filters}
        self.arrow_schema = schema.arrow_schema()
        if file_index is not None:
            self.arrow_schema = self.arrow_schema.append(pa.field(s.ORIGIN, pa.int64()))
        self.file_index = file_index
        self.one_based = one_based
        self.samples = samples
        ids = sample_ids if sample_ids else tuple(sample_id(n) for n in samples)
        self._sample_ids = np.array(ids, dtype=np.int64)
        alt_ids = {c.field.id for c in schema.alt_columns}
        moved_ids = {c.field.id for c in schema.moved_info_columns}
        self._infos = {}  # key -> (column, 'alt' | 'moved' | 'info')
        for key, column in schema.infos.items():
            if _same(file_infos.get(key), column.field):
                kind = "alt" if key in alt_ids else "moved" if key in moved_ids else "info"
                self._infos[key] = (column, kind)
        end = file_infos.get("END")
        self._end_ok = end is not None and (end.number, end.type) == ("1", "Integer")
        self._formats = {k: c for k, c in schema.formats.items() if _same(file_formats.get(k), c.field)}
        ps = file_formats.get("PS")
        self._ps_ok = ps is not None and (ps.number, ps.type) == ("1", "Integer")
        self._column_names = list(_SITE_COLUMNS) + (["FORMAT", *samples] if samples else [])

    def parse(
        self,
        chunk: bytes,
        first_index: int = 0,
        *,
        origin: np.ndarray | None = None,
        sample_ids: np.ndarray | None = None,
    ) -> pa.RecordBatch:
        """``chunk``: complete record lines. ``first_index``: the first record's number
        (for ``_origin``). Raises Fallback when pysam must read the chunk.

        Lines of several files with the same definitions (and sample count) parse as one
        chunk when each row's ``origin`` and each call's ``sample_ids`` (row-major) are given."""
        _require(b"\r" not in chunk, "carriage return")
        _require(b"\x00" not in chunk, "NUL byte")  # htslib ends the line there
        # pyarrow reads '0x10' as 16 where htslib stops at the 'x': leave such chunks to pysam
        _require(not _hexadecimal(chunk), "hexadecimal")
        if self.samples:
            columns = self._split_lines(chunk)
        else:
            table = self._read_table(chunk)
            columns = {name: _one_array(table.column(i)) for i, name in enumerate(self._column_names)}
        n = len(columns["CHROM"])
        chrom, ref = columns["CHROM"], columns["REF"]
        _require(_no_empty(chrom) and _no_empty(ref), "empty CHROM or REF")
        _require(n == 0 or pc.all(pc.match_substring_regex(ref, "^[ACGTNacgtn]+$")).as_py(), "REF bases")
        pos = _integers(columns["POS"])
        _require(n == 0 or (pc.min(pos).as_py() >= 1 and pc.max(pos).as_py() <= MAX_POS), "POS range")
        alts = _split_or_empty(columns["ALT"], ",")
        _require(_no_empty(alts.values) and not _any_equal(alts.values, "."), "odd ALT")
        n_alts = np.diff(alts.offsets.to_numpy()).astype(np.int64)
        quality = _floats(_dot_as_null(columns["QUAL"]))
        filters = _split_or_empty(columns["FILTER"], ";")
        # htslib adds undeclared FILTERs and contigs to its header, and refuses odd names: pysam decides
        undeclared = set(pc.unique(filters.values).to_pylist()) - self._filters
        _require(all(map(_FILTER_NAME.fullmatch, undeclared)), "odd FILTER")
        _require(all(map(_CONTIG_NAME.fullmatch, pc.unique(chrom).to_pylist())), "odd CHROM")
        info = self._info(columns["INFO"], n, n_alts, alts)
        pos_np = pos.to_numpy()
        end = pos_np - 1 + pc.binary_length(ref).to_numpy().astype(np.int64)
        if info.end_rows is not None:
            _require(bool(np.all(info.end_values >= pos_np[info.end_rows])), "END before POS")
            end[info.end_rows] = info.end_values

        arrays = [
            chrom,
            pa.array(pos_np if self.one_based else pos_np - 1, pa.int64()),
            pa.array(end, pa.int64()),
            ref,
            self._alternate_bases(alts, n_alts, info.alt_children),
            _split_or_empty(columns["ID"], ";"),
            quality,
            filters,
        ]
        if self.schema.with_calls:
            arrays.append(self._calls(columns, n, n_alts, quality, filters, info.moved, sample_ids))
        arrays += [info.columns[c.name] for c in self.schema.info_columns]
        if self.file_index is not None:
            if origin is None:
                numbers = first_index + np.arange(n, dtype=np.int64)
                origin = (self.file_index << s.ORIGIN_FILE_SHIFT) | numbers
            arrays.append(pa.array(origin, pa.int64()))
        return pa.RecordBatch.from_arrays(arrays, schema=self.arrow_schema)

    def _split_lines(self, chunk: bytes) -> dict[str, pa.Array]:
        """The site columns and FORMAT of each line, and under CALLS the text of every call in
        row-major order. With many samples this is split out of the lines (a split on tabs of
        the samples' part), not read as a table of one column per sample: 2,500 columns read
        as tables, joined and taken back into row order cost four times as much."""
        ends = np.flatnonzero(np.frombuffer(chunk, np.uint8) == 10)
        # (no empty line: told by the line ends, where `b"\n\n" in chunk` took 3.6 ms a 4 MB chunk)
        empty_line = len(ends) == 0 or ends[0] == 0 or bool(np.any(np.diff(ends) == 1))
        _require(chunk.endswith(b"\n") and not empty_line, "empty line")
        offsets = np.zeros(len(ends) + 1, np.int32)
        offsets[1:] = ends + 1
        # each line with its newline (the offsets of one buffer), taken off the last column
        lines = pa.StringArray.from_buffers(len(ends), pa.py_buffer(offsets), pa.py_buffer(chunk))
        try:
            lines.validate(full=True)
        except pa.ArrowInvalid as err:
            raise Fallback(f"lines: {err}") from None
        fields = pc.split_pattern(lines, "\t", max_splits=len(_SITE_COLUMNS) + 1)
        _require(_all_equal(pc.list_value_length(fields), len(_SITE_COLUMNS) + 2), "columns")
        names = [*_SITE_COLUMNS, "FORMAT"]
        columns = {name: pc.list_element(fields, i) for i, name in enumerate(names)}
        samples = pc.list_element(fields, len(names))
        calls = pc.split_pattern(pc.utf8_slice_codeunits(samples, 0, -1), "\t")  # less the newline
        _require(_all_equal(pc.list_value_length(calls), len(self.samples)), "columns")
        columns[CALLS] = calls.values
        return columns

    def _read_table(self, chunk: bytes) -> pa.Table:
        names = self._column_names
        try:
            return pacsv.read_csv(
                io.BytesIO(chunk),
                read_options=pacsv.ReadOptions(column_names=names, block_size=max(len(chunk), 1) + 1),
                parse_options=pacsv.ParseOptions(delimiter="\t", quote_char=False, escape_char=False),
                convert_options=pacsv.ConvertOptions(
                    column_types=dict.fromkeys(names, pa.string()), strings_can_be_null=False
                ),
            )
        except (pa.ArrowInvalid, UnicodeDecodeError) as err:
            raise Fallback(f"table: {err}") from None

    def _info(self, text: pa.Array, n: int, n_alts: np.ndarray, alts: pa.ListArray) -> _Info:
        result = _Info(n, self.schema)
        entries = pc.split_pattern(text, ";")
        parents = pc.list_parent_indices(entries).to_numpy()
        pairs = pc.split_pattern(pc.list_flatten(entries), "=", max_splits=1)
        offsets = pairs.offsets.to_numpy()
        has_value = np.diff(offsets) == 2
        encoded = pc.dictionary_encode(pairs.values.take(pa.array(offsets[:-1])))
        codes = encoded.indices.to_numpy()
        dots = 0
        for code, key in enumerate(encoded.dictionary.to_pylist()):
            where = np.flatnonzero(codes == code)
            rows = parents[where]
            _require(not np.any(np.diff(rows) == 0), f"INFO/{key} twice")
            if key == ".":
                dots = len(rows)
                continue
            with_value = has_value[where]
            # the text after '=' in the rows that have the key, null in the others
            index = np.full(n, -1, dtype=np.int64)
            index[rows] = np.where(with_value, offsets[where] + 1, -1)
            values = pairs.values.take(_indices(index))
            if key == "END":
                _require(self._end_ok and with_value.all(), "END")
                result.end_rows = rows
                result.end_values = _integers(values.take(pa.array(rows))).to_numpy(zero_copy_only=False)
                # an END beyond 32 bits (a chromosome longer than 2^31) is kept, as far as htslib
                # can place a record
                _require(bool(np.all(result.end_values <= MAX_POS)), "END beyond htslib's positions")
                continue
            _require(key in self._infos, f"INFO/{key} not parsed here")
            if key == "SVLEN":
                symbolic = pc.match_substring(alts.values, "<").to_numpy(zero_copy_only=False)
                _require(not symbolic.any(), "SVLEN with symbolic alleles sets the end")
            column, kind = self._infos[key]
            present = np.zeros(n, dtype=bool)
            present[rows] = True
            typed = _info_values(column.field, values, present, with_value, n_alts)
            if kind == "alt":
                result.alt_children[column.name] = _alt_child(typed, present, n_alts)
            else:
                (result.moved if kind == "moved" else result.columns)[column.name] = typed
        _require(dots == np.count_nonzero(pc.equal(text, ".").to_numpy(zero_copy_only=False)), "'.' in INFO")
        return result

    def _alternate_bases(self, alts: pa.ListArray, n_alts: np.ndarray, children: dict) -> pa.Array:
        total = len(alts.values)
        arrays = [alts.values]
        arrays += [children.get(c.name, pa.nulls(total, c.value_type)) for c in self.schema.alt_columns]
        struct_type = self.schema.alternate_bases_type().value_type
        structs = pa.StructArray.from_arrays(arrays, fields=list(struct_type))
        return pa.ListArray.from_arrays(alts.offsets, structs)

    def _calls(self, columns, n, n_alts, quality, filters, moved, sample_ids=None) -> pa.Array:
        n_samples = len(self.samples)
        call_row = np.repeat(np.arange(n), n_samples)
        n_calls = len(call_row)
        children = [pa.array(np.tile(self._sample_ids, n) if sample_ids is None else sample_ids, pa.int64())]
        if self.schema.options.include_call_name:
            children.append(pa.array(list(self.samples) * n, pa.string()))
        fields = _CallFields(self, columns, n, n_samples, call_row, n_alts) if n_samples else None
        genotype, phaseset = _genotypes(fields, n_alts, n_calls)
        children += [genotype, phaseset]
        if self.schema.options.copy_quality_to_calls:
            children.append(quality.take(pa.array(call_row)))
        if self.schema.options.copy_filter_to_calls:
            children.append(filters.take(pa.array(call_row)))
        for column in self.schema.call_columns:
            if fields is None or column.field.id not in fields.keys:
                children.append(pa.nulls(n_calls, column.arrow_type))
            else:
                children.append(fields.values(column))
        for column in self.schema.moved_info_columns:
            row_values = moved.get(column.name, pa.nulls(n, column.arrow_type))
            children.append(row_values.take(pa.array(call_row)))
        structs = pa.StructArray.from_arrays(children, fields=self.schema.call_fields())
        if n_samples:
            offsets = np.arange(0, n_calls + 1, n_samples, dtype=np.int32)
        else:
            offsets = np.zeros(n + 1, dtype=np.int32)
        return pa.ListArray.from_arrays(pa.array(offsets, pa.int32()), structs)


class _Info:
    """INFO parsed from a chunk: top-level columns, alternate_bases children, moved columns, END."""

    def __init__(self, n: int, schema: VariantSchema):
        self.columns = {c.name: pa.nulls(n, c.arrow_type) for c in schema.info_columns}
        self.alt_children: dict[str, pa.Array] = {}
        self.moved: dict[str, pa.Array] = {}
        self.end_rows: np.ndarray | None = None
        self.end_values: np.ndarray | None = None


class _CallFields:
    """The FORMAT sub-fields of every call of a chunk, calls in row-major order."""

    def __init__(
        self, parser: TextParser, columns, n: int, n_samples: int, call_row: np.ndarray, n_alts: np.ndarray
    ):
        self._call_alts = n_alts[call_row]
        formats = pc.dictionary_encode(columns["FORMAT"])
        format_keys = [text.split(":") for text in formats.dictionary.to_pylist()]
        for keys in format_keys:
            _require(len(set(keys)) == len(keys), "FORMAT key twice")
            for key in keys:
                _require(key in parser._formats or key == "GT" or (key == "PS" and parser._ps_ok), key)
            _require("GT" not in keys or keys[0] == "GT", "GT not first")
        self.keys = {key for keys in format_keys for key in keys}
        self._format_keys = format_keys
        self._call_format = formats.indices.to_numpy()[call_row]
        parts = pc.split_pattern(columns[CALLS], ":")
        self._offsets = parts.offsets.to_numpy()
        self._count = np.diff(self._offsets)
        self._parts = parts.values
        _require(_no_empty(self._parts), "empty FORMAT value")
        key_counts = np.array([len(keys) for keys in format_keys])[self._call_format]
        _require(not np.any(self._count > key_counts), "more values than FORMAT keys")

    def text(self, key: str) -> tuple[pa.Array, np.ndarray]:
        """The value of ``key`` per call ('.' where the call leaves it out), null where the
        record's FORMAT lacks it; and the mask of calls whose FORMAT has it."""
        position = np.array([keys.index(key) if key in keys else -1 for keys in self._format_keys])
        at = position[self._call_format]
        in_format = at >= 0
        present = in_format & (self._count > at)
        values = self._parts.take(_indices(np.where(present, self._offsets[:-1] + at, -1)))
        if np.any(in_format & ~present):
            values = pc.if_else(pa.array(in_format & ~present), pa.scalar("."), values)
        return values, in_format

    def values(self, column) -> pa.Array:
        text, _ = self.text(column.field.id)
        field = column.field
        if field.is_list:
            lists = pc.split_pattern(text, ",")
            if field.number in ("A", "R", "G"):
                self._check_counts(field, text, lists)
            typed = _typed(lists.values, field.type)
            return pa.ListArray.from_arrays(lists.offsets, typed, mask=pc.is_null(text))
        return _typed(text, field.type)

    def _check_counts(self, field, text: pa.Array, lists: pa.ListArray) -> None:
        """Number=A/R/G value counts (pysam writes the message of a wrong one)."""
        counts = np.diff(lists.offsets.to_numpy())
        given = pc.fill_null(pc.not_equal(text, "."), False).to_numpy(zero_copy_only=False)
        alleles = self._call_alts + 1
        if field.number == "A":
            ok = counts == alleles - 1
        elif field.number == "R":
            ok = counts == alleles
        else:
            ploidy = self._ploidy
            diploid = alleles * (alleles + 1) // 2
            ok = np.where(
                ploidy > 0,
                counts == _genotype_counts(alleles, ploidy),
                (counts == alleles) | (counts == diploid),
            )
        _require(bool(np.all(ok | ~given)), f"FORMAT/{field.id} Number={field.number} count")

    @functools.cached_property
    def _ploidy(self) -> np.ndarray:
        """Alleles in each call's GT; 0 where it has none or a lone '.'."""
        if "GT" not in self.keys:
            return np.zeros(len(self._call_alts), np.int64)
        text, _ = self.text("GT")
        ploidy = pc.add(pc.add(pc.count_substring(text, "/"), pc.count_substring(text, "|")), 1)
        unknown = pc.fill_null(pc.equal(text, "."), True)
        return pc.if_else(unknown, 0, ploidy).to_numpy(zero_copy_only=False).astype(np.int64)


def _genotype_counts(alleles: np.ndarray, ploidy: np.ndarray) -> np.ndarray:
    """C(alleles + ploidy - 1, ploidy) per call, from a table of the few pairs there are."""
    if len(alleles) == 0:
        return np.zeros(0, np.int64)
    table = np.array(
        [
            [min(genotype_count(a, p), 2**62) if a else 0 for p in range(int(ploidy.max()) + 1)]
            for a in range(int(alleles.max()) + 1)
        ],
        dtype=np.int64,
    )
    return table[alleles, ploidy]


def _genotypes(fields: _CallFields | None, n_alts: np.ndarray, n_calls: int) -> tuple[pa.Array, pa.Array]:
    if fields is None or "GT" not in fields.keys:
        genotype = pa.ListArray.from_arrays(
            pa.array(np.zeros(n_calls + 1, np.int32)), pa.array([], pa.int64())
        )
        phaseset = pa.nulls(n_calls, pa.string())
    else:
        text, in_format = fields.text("GT")
        diploid = _diploid_genotypes(text, n_alts, n_calls)
        if diploid is not None:  # every call 'a/b' or 'a|b': two alleles each (Number=G counts)
            fields.__dict__["_ploidy"] = np.full(n_calls, 2, np.int64)
        genotype, phaseset = diploid or _any_genotypes(text, in_format, n_alts, n_calls)
    if fields is not None and "PS" in fields.keys:
        text, _ = fields.text("PS")
        ps = pc.cast(_integers(_dot_as_null(text)), pa.string())
        phaseset = pc.coalesce(ps, phaseset)
    return genotype, phaseset


def _any_genotypes(
    text: pa.Array, in_format: np.ndarray, n_alts: np.ndarray, n_calls: int
) -> tuple[pa.Array, pa.Array]:
    phased = pc.match_substring(text, "|")
    _require(not pc.any(pc.and_(phased, pc.match_substring(text, "/"))).as_py(), "mixed phasing")
    alleles = pc.split_pattern(pc.replace_substring(text, "|", "/"), "/")
    counts = np.diff(alleles.offsets.to_numpy())
    allele_text = alleles.values
    _require(not pc.any(pc.starts_with(allele_text, "-")).as_py(), "signed allele")
    missing = pc.equal(allele_text, ".")
    numbers = _integers(pc.if_else(missing, pa.scalar("0"), allele_text)).to_numpy(zero_copy_only=False)
    call_of_allele = np.repeat(np.arange(n_calls), counts)
    n_samples = n_calls // len(n_alts) if len(n_alts) else 1
    allowed = n_alts[call_of_allele // n_samples]
    _require(not np.any((numbers < 0) | (numbers > allowed)), "allele index")
    numbers = np.where(missing.to_numpy(zero_copy_only=False), s.MISSING_GENOTYPE, numbers)
    genotype = pa.ListArray.from_arrays(alleles.offsets, pa.array(numbers, pa.int64()))
    star = pc.and_(phased, pa.array(counts > 1))
    phaseset = pc.if_else(pc.and_(star, pa.array(in_format)), pa.scalar("*"), pa.scalar(None, pa.string()))
    return genotype, phaseset


def _diploid_genotypes(text: pa.Array, n_alts: np.ndarray, n_calls: int) -> tuple[pa.Array, pa.Array] | None:
    """(genotype, phaseset) read straight from the bytes when every call's GT is two one-digit
    alleles ('0/1', '1|0', './.'), the usual case: four times faster than splitting the text.
    None when any is not (the general path reads those)."""
    if n_calls == 0 or text.null_count or len(text) != n_calls:
        return None
    offsets = np.frombuffer(text.buffers()[1], np.int32, n_calls + 1, text.offset * 4)
    if not np.all(np.diff(offsets) == 3):
        return None
    starts = offsets[:-1]
    data = np.frombuffer(text.buffers()[2], np.uint8)
    first, separator, second = data[starts], data[starts + 1], data[starts + 2]
    phased = separator == ord("|")
    if not np.all(phased | (separator == ord("/"))):
        return None
    alleles = np.empty(2 * n_calls, np.int64)
    for k, digits in enumerate((first, second)):
        missing = digits == ord(".")
        numbers = digits.astype(np.int64) - ord("0")
        if not np.all(missing | ((numbers >= 0) & (numbers <= 9))):
            return None
        alleles[k::2] = np.where(missing, s.MISSING_GENOTYPE, numbers)
    n_samples = n_calls // len(n_alts)
    allowed = np.repeat(n_alts, 2 * n_samples)
    _require(not np.any(alleles > allowed), "allele index")
    genotype = pa.ListArray.from_arrays(
        pa.array(np.arange(0, 2 * n_calls + 1, 2, dtype=np.int32)), pa.array(alleles)
    )
    phaseset = pc.if_else(pa.array(phased), pa.scalar("*"), pa.scalar(None, pa.string()))
    return genotype, phaseset


def _info_values(
    field: FieldDef, text: pa.Array, present: np.ndarray, with_value: np.ndarray, n_alts: np.ndarray
) -> pa.Array:
    """Typed values of one INFO field per row (``text``: after '=', null in rows without it)."""
    if field.type == "Flag":
        _require(not with_value.any(), f"INFO/{field.id}: a Flag with a value")
        return pa.array(present, pa.bool_(), mask=~present)
    _require(with_value.all() and _no_empty(text), f"INFO/{field.id} without a value")
    if not field.is_list:
        _require(field.number == "1", "Number=0")
        return _typed(text, field.type)
    lists = pc.split_pattern(text, ",")
    counts = np.diff(lists.offsets.to_numpy())[present]
    if field.number == "A":
        _require(np.array_equal(counts, n_alts[present]), "Number=A count")
    elif field.number == "R":
        _require(np.array_equal(counts, n_alts[present] + 1), "Number=R count")
    return pa.ListArray.from_arrays(lists.offsets, _typed(lists.values, field.type), mask=pa.array(~present))


def _alt_child(lists: pa.ListArray, present: np.ndarray, n_alts: np.ndarray) -> pa.Array:
    """One value per alternate allele of every row; null in rows without the field."""
    alt_starts = np.concatenate([[0], np.cumsum(n_alts)])
    slot_row = np.repeat(np.arange(len(n_alts)), n_alts)
    slot_k = np.arange(alt_starts[-1]) - alt_starts[:-1][slot_row]
    first = lists.offsets.to_numpy()[:-1].astype(np.int64)
    has = present[slot_row]
    return lists.values.take(_indices(np.where(has, first[slot_row] + slot_k, -1)))


def _typed(text: pa.Array, field_type: str) -> pa.Array:
    """Strings as written; numbers with '.' as null, floats rounded to 32 bits as htslib does."""
    if field_type in _STRING_TYPES:
        return text
    _require(_no_empty(text), "empty value")
    numbers = _dot_as_null(text)
    if field_type == "Integer":
        return _integers(numbers)  # beyond 32 bits too, as the pysam path (core/source.py)
    return _floats(numbers)


def _integers(text: pa.Array) -> pa.Array:
    """Casts; a value htslib would not read as an integer ('1,2', '1.5', '') is an error."""
    try:
        return pc.cast(text, pa.int64())
    except pa.ArrowInvalid:
        raise Fallback("not an integer") from None


def _floats(text: pa.Array) -> pa.Array:
    try:
        values = pc.cast(text, pa.float64())
    except pa.ArrowInvalid:
        raise Fallback("not a number") from None
    _require(not pc.any(pc.invert(pc.is_finite(values))).as_py(), "nan or inf")
    return pc.cast(pc.cast(values, pa.float32(), safe=False), pa.float64())


def _split_or_empty(text: pa.Array, separator: str) -> pa.ListArray:
    """Splits each value; '.' gives an empty list."""
    lists = pc.split_pattern(text, separator)
    dot = pc.equal(text, ".").to_numpy(zero_copy_only=False)
    if not dot.any():
        return lists
    offsets = lists.offsets.to_numpy()
    counts = np.where(dot, 0, np.diff(offsets))
    keep = np.repeat(~dot, np.diff(offsets))
    values = lists.values.slice(offsets[0], offsets[-1] - offsets[0]).filter(pa.array(keep))
    new_offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int32)
    return pa.ListArray.from_arrays(pa.array(new_offsets), values)


def _hexadecimal(chunk: bytes) -> bool:
    """'0x' or '0X' anywhere (numpy: `in` takes 8 ms a 4 MB chunk, as '0' is everywhere): the
    x's, then the bytes before them (one pass over the chunk, not four). Most chunks have no x
    at all, which ``in`` tells in 0.05 ms."""
    if b"x" not in chunk and b"X" not in chunk:
        return False
    data = np.frombuffer(chunk, np.uint8)
    after = np.flatnonzero((data[1:] | 0x20) == ord("x"))
    return bool(np.any(data[after] == ord("0")))


def _one_array(column: pa.ChunkedArray) -> pa.Array:
    return column.chunk(0) if column.num_chunks == 1 else column.combine_chunks()


def _all_equal(values: pa.Array, wanted: int) -> bool:
    return len(values) == 0 or pc.min_max(values).as_py() == {"min": wanted, "max": wanted}


def _indices(index: np.ndarray) -> pa.Array:
    """Take indices with -1 as null."""
    return pa.array(index, pa.int64(), mask=index < 0)


def _dot_as_null(text: pa.Array) -> pa.Array:
    return pc.if_else(pc.equal(text, "."), pa.scalar(None, pa.string()), text)


def _no_empty(text: pa.Array) -> bool:
    return len(text) == 0 or pc.min(pc.binary_length(text)).as_py() != 0


def _any_equal(text: pa.Array, value: str) -> bool:
    return bool(pc.any(pc.equal(text, value)).as_py())


def _same(own: FieldDef | None, wanted: FieldDef) -> bool:
    return own is not None and (own.number, own.type) == (wanted.number, wanted.type)
