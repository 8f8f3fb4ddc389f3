"""pysam records -> Arrow record batches in the output schema, with validation.

A record that breaks a rule raises ``MalformedRecord`` before anything of it is
appended, so a batch never holds half a record.
"""

from __future__ import annotations

import json
import math
import re

import farmhash
import pyarrow as pa

from variant_etl.core import schema as s
from variant_etl.core.limits import MAX_POS
from variant_etl.core.schema import FieldColumn, VariantSchema

_INT64_MAX = 2**63
# VCF asks for A, C, G, T or N; reference FASTAs (and REFs copied from them) also hold IUPAC codes
_REF_BASES = re.compile(r"[ACGTNRYSWKMBDHVUacgtnryswkmbdhvu]+")
_UNDECLARED = "field is not declared in any input header (Hint: --infer_headers)"


def sample_id(name: str, file_path: str | None = None) -> int:
    """The 64-bit sample id gcp-variant-transforms uses, so tables can be joined:
    farmhash fingerprint64 of the JSON list ``[name]``, modulo 2^63. With a file path
    (--sample_name_encoding WITH_FILE_PATH) the name is ``<path, non-word chars as _>_<name>``."""
    if file_path:
        name = re.sub(r"\W", "_", file_path) + "_" + name
    return farmhash.fingerprint64(json.dumps([name])) % _INT64_MAX


class MalformedRecord(Exception):
    """One record breaks a rule; ``field`` and ``value`` say where."""

    def __init__(self, field: str, value: object, reason: str):
        super().__init__(f"{field}: {reason}, got {value!r}")
        self.field = field
        self.value = value
        self.reason = reason


class BatchBuilder:
    """Accumulates validated records column by column; ``flush`` gives a RecordBatch."""

    def __init__(
        self,
        schema: VariantSchema,
        samples: tuple[str, ...],
        *,
        one_based: bool = False,
        sample_ids: tuple[int, ...] | None = None,
        file_index: int | None = None,
        match_alt_values: bool = False,
        cast_values: bool = False,
    ):
        self.schema = schema
        # --allow_malformed_records, as gcp-variant-transforms: a Number=A value of an
        # alternate_bases field with too many or too few values is matched to the ALTs by index
        # (extra values dropped, missing ones NULL) instead of making the record malformed;
        # ``matched`` counts those records, for the manifest.
        self.match_alt_values = match_alt_values
        self.matched = 0
        # --allow_incompatible_records, as gcp-variant-transforms: a number field declared
        # Number=1 (or 0) that has several values keeps the first; ``cast`` counts those records.
        self.cast_values = cast_values
        self.cast = 0
        self.arrow_schema = schema.arrow_schema()
        if file_index is not None:  # merging: keep where each row came from
            self.arrow_schema = self.arrow_schema.append(pa.field(s.ORIGIN, pa.int64()))
        self.file_index = file_index
        self.one_based = one_based
        self.samples = samples
        self.sample_ids = list(sample_ids) if sample_ids is not None else [sample_id(n) for n in samples]
        self._infos = schema.infos
        self._alt_ids = {c.field.id for c in schema.alt_columns}
        self._moved_ids = {c.field.id for c in schema.moved_info_columns}
        self._formats = schema.formats
        self._reset()

    def __len__(self) -> int:
        return len(self._cols[s.REFERENCE_NAME])

    def _reset(self) -> None:
        self._cols: dict[str, list] = {
            name: [] for name in (s.REFERENCE_NAME, s.START_POSITION, s.END_POSITION,
                                  s.REFERENCE_BASES, s.NAMES, s.QUALITY, s.FILTER)
        }  # fmt: skip
        self._info: dict[str, list] = {c.name: [] for c in self.schema.info_columns}
        self._alt_offsets = [0]
        self._alts: list = []
        self._alt_info: dict[str, list] = {c.name: [] for c in self.schema.alt_columns}
        self._call_offsets = [0]
        self._call: dict[str, list] = {
            name: [] for name in (s.SAMPLE_ID, s.CALL_NAME, s.GENOTYPE, s.PHASESET)
        }
        self._call_fields: dict[str, list] = {
            c.name: [] for c in self.schema.call_columns + self.schema.moved_info_columns
        }
        self._call_quality: list = []
        self._call_filter: list = []
        self._origin: list[int] = []

    def add(self, record, index: int = 0, long=None) -> None:
        """Validates and appends one pysam VariantRecord (``index``: its number in the file;
        ``long``: its Integer values beyond 32 bits, which htslib reads as missing, as written:
        core/source.py's LongIntegers)."""
        try:
            self._add(record, index, long)
        except UnicodeDecodeError as err:  # pysam decodes each string as it is read
            raise MalformedRecord("record", "", f"holds bytes that are not UTF-8 ({err.reason})") from None

    def _add(self, record, index: int, long) -> None:
        # Everything is read (and decoded) before anything is appended.
        chrom, ref, ident = record.chrom, record.ref, record.id
        pos = record.pos
        if pos < 1:
            raise MalformedRecord("POS", pos, "expected a positive integer")
        if pos > MAX_POS:
            raise MalformedRecord("POS", pos, f"expected at most {MAX_POS} (htslib's largest position)")
        if not _REF_BASES.fullmatch(ref):
            raise MalformedRecord("REF", ref, "expected bases (A, C, G, T, N or IUPAC codes)")
        alts = record.alts or ()
        n_alts = len(alts)
        if not alts and self._one_value_for_no_alt(record):
            # ALT '.' with a Number=A value (AC=0, as several tools write monomorphic sites):
            # there is no ALT to put it under, so it gets an alternate_bases entry of its own,
            # whose alt is NULL (export writes ALT '.' and the value back).
            alts, n_alts = (None,), 1
        info_values, alt_values, moved_values, matched, cast = self._info_values(record, n_alts, long)
        calls = self._calls(record, long) if self.schema.with_calls else None
        filters = list(record.filter.keys())

        # the record is valid: from here on it is appended
        self.matched += matched
        self.cast += cast or (calls is not None and calls[2])
        cols = self._cols
        cols[s.REFERENCE_NAME].append(chrom)
        cols[s.START_POSITION].append(pos if self.one_based else pos - 1)
        cols[s.END_POSITION].append(record.stop if long is None or long.end is None else long.end)
        cols[s.REFERENCE_BASES].append(ref)
        cols[s.NAMES].append(ident.split(";") if ident else [])
        cols[s.QUALITY].append(record.qual)
        cols[s.FILTER].append(filters)
        if self.file_index is not None:
            self._origin.append(self.file_index << s.ORIGIN_FILE_SHIFT | index)
        for name, value in info_values.items():
            self._info[name].append(value)
        self._alts.extend(alts)
        for name, values in alt_values.items():
            self._alt_info[name].extend(values)
        self._alt_offsets.append(len(self._alts))
        if calls is not None:
            call_cols, field_cols, _ = calls
            for name, values in call_cols.items():
                self._call[name].extend(values)
            for name, values in field_cols.items():
                self._call_fields[name].extend(values)
            n_calls = len(call_cols[s.SAMPLE_ID])
            for name, value in moved_values.items():
                self._call_fields[name].extend([value] * n_calls)
            if self.schema.options.copy_quality_to_calls:
                self._call_quality.extend([record.qual] * n_calls)
            if self.schema.options.copy_filter_to_calls:
                self._call_filter.extend([filters] * n_calls)
            self._call_offsets.append(len(self._call[s.SAMPLE_ID]))

    def _one_value_for_no_alt(self, record) -> bool:
        """Some Number=A INFO value of the record (which has no ALT) is one value, not missing."""
        for key, value in record.info.items():
            column = self._infos.get(key)
            if column is not None and column.field.number == "A":
                values = value if value.__class__ is tuple else (value,)
                if len(values) == 1 and values[0] is not None:
                    return True
        return False

    def _info_values(self, record, n_alts: int, long=None) -> tuple[dict, dict, dict, bool, bool]:
        """(top-level, alternate_bases and moved INFO values, whether Number=A values were
        matched to the ALTs, whether a value was cast to its single number)."""
        info_values: dict[str, object] = {c.name: None for c in self.schema.info_columns}
        alt_values: dict[str, list] = {c.name: [None] * n_alts for c in self.schema.alt_columns}
        moved_values: dict[str, object] = {c.name: None for c in self.schema.moved_info_columns}
        matched = cast = False
        items = record.info.items()
        if long is not None and long.info:  # values htslib read as missing, as written
            items = {**dict(items), **long.info}.items()
        for key, value in items:
            if key in s.INFO_CONSUMED:
                continue
            column = self._infos.get(key)
            if column is None:
                raise MalformedRecord(f"INFO/{key}", value, _UNDECLARED)
            if self.match_alt_values and key in self._alt_ids and n_alts:
                value, changed = _matched_to_alts(value, n_alts)
                matched = matched or changed
            if self.cast_values and _several_for_one(column.field, value):
                value, cast = value[0], True
            value = _checked(column, value, n_alts, f"INFO/{key}")
            if key in self._alt_ids:
                alt_values[column.name] = list(value)
            elif key in self._moved_ids:
                moved_values[column.name] = value
            else:
                info_values[column.name] = value
        return info_values, alt_values, moved_values, matched, cast

    def _calls(self, record, long=None) -> tuple[dict[str, list], dict[str, list], bool]:
        """(call columns, FORMAT columns, whether a value was cast to its single number)."""
        n_alts = len(record.alts or ())
        present = list(record.format.keys())
        for key in present:
            if key not in self._formats and key not in s.FORMAT_CONSUMED:
                raise MalformedRecord(f"FORMAT/{key}", key, _UNDECLARED)
        n_samples = len(self.samples)
        if len(record.samples) != n_samples:  # htslib reads a line cut after INFO as sample-less
            found = len(record.samples)
            raise MalformedRecord("FORMAT", "", f"{found} sample column(s), but the header names {n_samples}")
        genotypes: list = []
        phasesets: list = []
        field_cols: dict[str, list] = {c.name: [] for c in self.schema.call_columns}
        # (column, its values, how to convert) for the FORMAT keys this record has
        present_columns = [
            (self._formats[k], field_cols[self._formats[k].name], _format_converter(self._formats[k]))
            for k in present
            if k in self._formats
        ]
        cast = False
        gt_at = present.index("GT") if "GT" in present else None
        ps_at = present.index("PS") if "PS" in present else None
        for index, sample in enumerate(record.samples.values()):
            phaseset = None
            gt = None
            if gt_at is not None:
                gt = sample["GT"]
                if None in gt:
                    _check_missing_alleles(record, index, self.samples[index], n_alts)
                    genotypes.append([s.MISSING_GENOTYPE if a is None else a for a in gt])
                else:
                    genotypes.append(gt)
                if len(gt) > 1 and sample.phased:
                    phaseset = "*"
            else:
                genotypes.append(())
            if ps_at is not None:
                ps = sample["PS"]
                if ps is not None:
                    phaseset = str(ps)
            phasesets.append(phaseset)
            # a lone '.' says nothing of the ploidy
            ploidy = len(gt) if gt and gt != (None,) else None
            for column, values, convert in present_columns:
                value = sample[column.field.id]
                if long is not None and (column.field.id, index) in long.format:
                    value = long.format[(column.field.id, index)]
                if value is not None and (convert is not None or column.field.number in _COUNTED):
                    where = f"FORMAT/{column.field.id} of {self.samples[index]}"
                    if self.cast_values and _several_for_one(column.field, value):
                        value, cast = value[0], True
                    if convert is not None:
                        value = convert(value, where)
                    else:
                        _check_count(column.field.number, value, n_alts, ploidy, where)
                values.append(value)
        for column in self.schema.call_columns:
            if column.field.id not in present:
                field_cols[column.name].extend([None] * n_samples)
        call_cols = {
            s.SAMPLE_ID: self.sample_ids,
            s.CALL_NAME: self.samples,
            s.GENOTYPE: genotypes,
            s.PHASESET: phasesets,
        }
        return call_cols, field_cols, cast

    def flush(self) -> pa.RecordBatch | None:
        """Returns the rows added since the last flush, or None if there are none."""
        if not len(self):
            return None
        cols = self._cols
        arrays = [
            pa.array(cols[s.REFERENCE_NAME], pa.string()),
            pa.array(cols[s.START_POSITION], pa.int64()),
            pa.array(cols[s.END_POSITION], pa.int64()),
            pa.array(cols[s.REFERENCE_BASES], pa.string()),
            self._alternate_bases(),
            pa.array(cols[s.NAMES], pa.list_(pa.string())),
            pa.array(cols[s.QUALITY], pa.float64()),
            pa.array(cols[s.FILTER], pa.list_(pa.string())),
        ]
        if self.schema.with_calls:
            arrays.append(self._call_array())
        for column in self.schema.info_columns:
            arrays.append(pa.array(self._info[column.name], column.arrow_type))
        if self.file_index is not None:
            arrays.append(pa.array(self._origin, pa.int64()))
        batch = pa.RecordBatch.from_arrays(arrays, schema=self.arrow_schema)
        self._reset()
        return batch

    def _alternate_bases(self) -> pa.Array:
        children = [pa.array(self._alts, pa.string())]
        children += [pa.array(self._alt_info[c.name], c.value_type) for c in self.schema.alt_columns]
        struct_type = self.schema.alternate_bases_type().value_type
        structs = pa.StructArray.from_arrays(children, fields=list(struct_type))
        return pa.ListArray.from_arrays(pa.array(self._alt_offsets, pa.int32()), structs)

    def _call_array(self) -> pa.Array:
        call = self._call
        options = self.schema.options
        children = [pa.array(call[s.SAMPLE_ID], pa.int64())]
        if options.include_call_name:
            children.append(pa.array(call[s.CALL_NAME], pa.string()))
        children += [
            pa.array(call[s.GENOTYPE], pa.list_(pa.int64())),
            pa.array(call[s.PHASESET], pa.string()),
        ]
        if options.copy_quality_to_calls:
            children.append(pa.array(self._call_quality, pa.float64()))
        if options.copy_filter_to_calls:
            children.append(pa.array(self._call_filter, pa.list_(pa.string())))
        children += [
            pa.array(self._call_fields[c.name], c.arrow_type)
            for c in self.schema.call_columns + self.schema.moved_info_columns
        ]
        structs = pa.StructArray.from_arrays(children, fields=self.schema.call_fields())
        return pa.ListArray.from_arrays(pa.array(self._call_offsets, pa.int32()), structs)


def _several_for_one(field, value) -> bool:
    """A number (or flag) declared Number=1 or 0 that has several values."""
    return (
        value.__class__ is tuple
        and len(value) > 1
        and not field.is_list
        and field.type not in ("String", "Character")
    )


def _matched_to_alts(value, n_alts: int) -> tuple[tuple, bool]:
    """A Number=A value as one value per ALT, by index: (values, whether any was added or
    dropped). All-missing values stay as they are."""
    values = value if value.__class__ is tuple else (value,)
    if len(values) == n_alts or _all_missing(values):
        return values, False
    return (values + (None,) * n_alts)[:n_alts], True


def _checked(column: FieldColumn, value, n_alts: int, where: str):
    """Checks the value count against Number and normalises the value's shape."""
    field = column.field
    values = value if isinstance(value, tuple) else (value,)
    number = field.number
    if field.type == "Flag":
        return bool(value) if value is not None else None
    if number == "1" or number == "0":
        if len(values) > 1 and field.type in ("String", "Character"):
            # htslib splits strings on commas; a Number=1 string keeps them as written.
            return ",".join("." if v is None else str(v) for v in values)
        if len(values) != 1:
            raise MalformedRecord(where, _vcf_text(values), "Number=1: expected 1 value")
        return _scalar(column, values[0], where)
    if number in _COUNTED:
        _check_count(number, values, n_alts, None, where)
    if number == "A" and len(values) != n_alts:
        values = (None,) * n_alts
    return [_scalar(column, v, where) for v in values]


def _format_converter(column: FieldColumn):
    """None when pysam's value can be stored as is; else a function that checks its shape."""
    field = column.field
    if field.is_list:
        return None
    if field.type in ("String", "Character"):
        return _joined_string
    return _single_number


def _joined_string(value, where: str):
    # htslib splits strings on commas; a Number=1 string keeps them as written.
    if value.__class__ is tuple:
        return ",".join("." if v is None else str(v) for v in value)
    return value


def _single_number(value, where: str):
    if value.__class__ is tuple:
        if len(value) != 1:
            raise MalformedRecord(where, _vcf_text(value), "Number=1: expected 1 value")
        return value[0]
    return value


def _check_missing_alleles(record, index: int, name: str, n_alts: int) -> None:
    """pysam turns both '.' and an allele index beyond the ALT alleles into None; only the
    first is a missing call. The second cannot be stored faithfully, so it is malformed."""
    columns = str(record).rstrip("\n").split("\t")
    keys = columns[8].split(":")
    parts = columns[9 + index].split(":")
    gt_text = parts[keys.index("GT")] if keys.index("GT") < len(parts) else "."
    # VCF 4.4 lets the first allele have a phasing mark of its own: '|0/1', '/1|.'
    alleles = gt_text[1:] if gt_text.startswith(("/", "|")) else gt_text
    for allele in re.split(r"[/|]", alleles):
        if allele != "." and (not allele.isdigit() or int(allele) > n_alts):
            raise MalformedRecord(
                f"FORMAT/GT of {name}",
                gt_text,
                f"allele {allele} does not exist (the record has {n_alts} ALT allele(s))",
            )


def genotype_count(n_alleles: int, ploidy: int) -> int:
    """Values of a Number=G field: one per unordered genotype of ``ploidy`` alleles."""
    return math.comb(n_alleles + ploidy - 1, ploidy)


def _genotype_counts(n_alts: int, ploidy: int | None = None) -> tuple[int, ...]:
    """Allowed Number=G counts; without a GT to tell the ploidy, haploid or diploid."""
    if ploidy is not None:
        return (genotype_count(n_alts + 1, ploidy),)
    return (n_alts + 1, genotype_count(n_alts + 1, 2))


_COUNTED = ("A", "R", "G")


def _check_count(number: str, value, n_alts: int, ploidy: int | None, where: str) -> None:
    """Checks a Number=A/R/G value count (htslib checks none of them); ``ploidy``: the
    call's, for a FORMAT value, or None (an INFO value, or a call without GT)."""
    values = value if value.__class__ is tuple else (value,)
    if _all_missing(values):
        return
    if number == "A" and len(values) != n_alts:
        raise MalformedRecord(where, _vcf_text(values), f"Number=A: expected {n_alts} value(s), one per ALT")
    if number == "R" and len(values) != n_alts + 1:
        raise MalformedRecord(
            where, _vcf_text(values), f"Number=R: expected {n_alts + 1} value(s), REF and each ALT"
        )
    if number == "G" and len(values) not in _genotype_counts(n_alts, ploidy):
        expected = " or ".join(map(str, _genotype_counts(n_alts, ploidy)))
        raise MalformedRecord(
            where, _vcf_text(values), f"Number=G: expected {expected} value(s), one per genotype"
        )


def _all_missing(values: tuple) -> bool:
    return all(v is None for v in values)


def _scalar(column: FieldColumn, value, where: str):
    if value is None:
        return None
    field_type = column.field.type
    if isinstance(value, str) and field_type in ("Float", "Integer"):
        try:
            return float(value) if field_type == "Float" else int(value)
        except ValueError:
            raise MalformedRecord(where, value, f"Type={field_type}: expected a number") from None
    if field_type == "Float":
        return float(value)
    if field_type == "Integer":
        if isinstance(value, float):
            if math.isnan(value) or value != int(value):
                raise MalformedRecord(where, value, "Type=Integer: expected an integer")
            return int(value)
        return value
    return str(value)


def _vcf_text(values: tuple) -> str:
    return ",".join("." if v is None else str(v) for v in values)
