"""Annotations, applied to parsed batches before sharding (docs/annotations.md).

Two kinds:

* ``--annotation_fields CSQ ANN``: INFO fields of VEP/SnpEff annotation strings
  (``allele|sub-field|...``, one per transcript, comma-separated). Each string goes under the
  alternate allele it describes, as ``alternate_bases[].CSQ[]`` records with one STRING field
  per sub-field the header's description names. Strings that match no alternate allele stay in
  the top-level INFO column, as written, so nothing is lost.
* ``--annotate_with FILE --annotate_fields CLNSIG ...``: INFO fields of an indexed VCF (e.g.
  ClinVar) copied under each alternate allele it has a record for, matched on the exact allele
  (chromosome, position, REF, ALT after trimming the bases REF and ALT share).
"""

from __future__ import annotations

import dataclasses
import functools
import re

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from variant_etl.core import schema as s
from variant_etl.core.errors import SchemaError
from variant_etl.core.header import FieldDef, parse_header

ALLELE = "allele"  # the column of an annotation's own allele (as in gcp-variant-transforms)
ALLELE_NUM = "ALLELE_NUM"  # VEP --allele_number: 1-based index of the ALT an annotation is for
_SNPEFF = "functional annotations"  # how SnpEff's ANN description starts
_SYMBOLIC = re.compile(r"^<(.*)>$")
_BREAKEND = re.compile(r"^(.*[\[\]].*):.*[\[\]].*$")
# Records of the annotation file fetched in one go cover variants at most this far apart.
LOOKUP_GAP = 100_000


@dataclasses.dataclass(frozen=True)
class SplitField:
    """An INFO field of annotation strings, e.g. VEP's CSQ."""

    id: str
    column: str  # the top-level INFO column, and the field under alternate_bases
    names: tuple[str, ...]  # sub-field names as the header lists them
    columns: tuple[str, ...]  # their column names
    exact_alleles: bool  # SnpEff writes the ALT as it is; VEP drops a first base all alleles share
    # per sub-field: String, or (--infer_annotation_types) Integer or Float when every value is one
    types: tuple[str, ...] = ()

    @property
    def allele_index(self) -> int | None:
        return self.columns.index(ALLELE) if ALLELE in self.columns else None

    @property
    def allele_num_index(self) -> int | None:
        return self.names.index(ALLELE_NUM) if ALLELE_NUM in self.names else None

    def arrow_type(self) -> pa.DataType:
        types = self.types or ("String",) * len(self.columns)
        return pa.list_(pa.struct([pa.field(c, _ARROW_TYPES[t]) for c, t in zip(self.columns, types)]))


_ARROW_TYPES = {"String": pa.string(), "Integer": pa.int64(), "Float": pa.float64()}
_INTEGER = re.compile(r"[+-]?[0-9]+")
_FLOAT = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?")


class AnnotationTypes:
    """--infer_annotation_types, as gcp-variant-transforms: a sub-field whose every value (in
    every input) is an integer is Integer, else a number Float, else String; empty values do not
    count, and a sub-field with none stays String."""

    def __init__(self, fields: list[SplitField]):
        self._fields = {f.id: f for f in fields}
        # per field: for each sub-field, [seen a value, all integers, all numbers]
        self._seen = {f.id: [[False, True, True] for _ in f.names] for f in fields}

    def add(self, field_id: str, value: str) -> None:
        """One INFO value of annotation strings (``a|b|c,d|e|f``)."""
        seen = self._seen[field_id]
        for annotation in value.split(","):
            parts = annotation.split("|")
            if len(parts) != len(seen):
                continue  # not an annotation of this format: it stays a string anyway
            for state, part in zip(seen, parts):
                if not part:
                    continue
                state[0] = True
                if state[1] and not _INTEGER.fullmatch(part):
                    state[1] = False
                if state[2] and not state[1] and not _FLOAT.fullmatch(part):
                    state[2] = False

    def typed(self, field: SplitField) -> SplitField:
        types = []
        for column, (seen, integer, number) in zip(field.columns, self._seen[field.id]):
            numeric = seen and column != ALLELE and (integer or number)
            types.append(("Integer" if integer else "Float") if numeric else "String")
        return dataclasses.replace(field, types=tuple(types))


def split_field(field: FieldDef) -> SplitField:
    """The sub-fields an annotation INFO field's description lists after ``Format:`` (VEP) or
    ``Functional annotations:`` (SnpEff), separated by ``|``."""
    where = f"--annotation_fields {field.id}"
    if field.type != "String" or field.number != ".":
        raise SchemaError(
            f"{where}: INFO {field.id} is Number={field.number}, Type={field.type}; annotation "
            "strings are Number=., Type=String"
        )
    description = field.description
    first_bar = description.find("|")
    if first_bar < 0:
        raise SchemaError(
            f"{where}: the header's Description of INFO {field.id} lists no sub-fields "
            f"(expected 'Format: Allele|Consequence|...'), it is {description!r}"
        )
    start = description.rfind(":", 0, first_bar) + 1
    names = tuple(name.strip(" '\"") for name in description[start:].split("|"))
    columns = [s.sanitize_name(name) for name in names]
    if columns[0].lower() == ALLELE:
        columns[0] = ALLELE
    taken: dict[str, str] = {}
    for name, column in zip(names, columns):
        if not name or column.lower() in taken:
            other = taken.get(column.lower(), "")
            raise SchemaError(
                f"{where}: the sub-field {name!r} of INFO {field.id} "
                + (f"becomes the column {column!r}, as {other!r} does" if name else "has no name")
            )
        taken[column.lower()] = name
    return SplitField(
        id=field.id,
        column=s.sanitize_name(field.id),
        names=names,
        columns=tuple(columns),
        exact_alleles=description.lower().startswith(_SNPEFF),
    )


def vep_alleles(ref: str, alts: list[str]) -> list[str]:
    """The allele strings VEP writes for one record's ALTs (see _Alleles.vep)."""
    return _Alleles(
        pa.array([ref]), pa.array(alts, pa.string()), np.zeros(len(alts), np.int64)
    ).vep.to_pylist()


@dataclasses.dataclass
class _Alleles:
    """The alternate alleles of a batch, flattened: ``alt_row`` is the row of each."""

    refs: pa.Array
    alts: pa.Array
    alt_row: np.ndarray

    @property
    def offsets(self) -> np.ndarray:
        return np.searchsorted(self.alt_row, np.arange(len(self.refs) + 1))

    @functools.cached_property
    def vep(self) -> pa.Array:
        """The allele strings VEP writes: the first base is dropped when REF and every ALT
        start with it (an ALT left empty is ``-``); ``<ID>`` is written ``ID`` and a breakend
        up to its mate's position."""
        ref_first = pc.take(pc.utf8_slice_codeunits(self.refs, 0, 1), pa.array(self.alt_row))
        shares = pc.fill_null(pc.equal(pc.utf8_slice_codeunits(self.alts, 0, 1), ref_first), False)
        differs = np.bincount(
            self.alt_row, weights=~shares.to_numpy(zero_copy_only=False), minlength=len(self.refs)
        )
        trim = pc.and_(pa.array((differs == 0)[self.alt_row]), pc.not_equal(ref_first, ""))
        trimmed = pc.utf8_slice_codeunits(self.alts, 1)
        forms = pc.if_else(trim, pc.if_else(pc.equal(trimmed, ""), "-", trimmed), self.alts)
        for pattern in (_SYMBOLIC.pattern, _BREAKEND.pattern):
            special = pc.fill_null(pc.match_substring_regex(self.alts, pattern), False)
            forms = pc.if_else(special, pc.replace_substring_regex(self.alts, pattern, r"\1"), forms)
        return forms

    def keys(self, forms: pa.Array) -> pa.Array:
        """'row<NUL>allele' for each allele form: matched against the annotations' own."""
        return _row_keys(self.alt_row, forms)


def _row_keys(rows: np.ndarray, values: pa.Array) -> pa.Array:
    return pc.binary_join_element_wise(pc.cast(pa.array(rows), pa.string()), values, "\x00")


@dataclasses.dataclass(frozen=True)
class LookupField:
    """An INFO field of the --annotate_with file, copied under each matching ALT."""

    column: str
    field: FieldDef  # as the annotation file defines it

    @property
    def arrow_type(self) -> pa.DataType:
        value_type = s.FieldColumn(self.column, self.field).value_type
        return value_type if self.field.number in ("0", "1", "A", "R") else pa.list_(value_type)


@dataclasses.dataclass(frozen=True)
class Annotations:
    """What --annotation_fields and --annotate_with ask for (decided at plan time)."""

    split: tuple[SplitField, ...] = ()
    lookup_path: str | None = None
    lookup: tuple[LookupField, ...] = ()
    # --minimal_vep_alt_matching: an annotation allele no rule places is matched to the ALT whose
    # REF/ALT difference it is (VEP --minimal), when exactly one ALT of the record has it
    minimal_alt_matching: bool = False

    def alternate_bases_fields(self) -> list[pa.Field]:
        fields = [pa.field(f.column, f.arrow_type()) for f in self.split]
        return fields + [pa.field(f.column, f.arrow_type) for f in self.lookup]

    def output_schema(self, parsed: pa.Schema) -> pa.Schema:
        """The schema of annotated rows: the parsed one with the new alternate_bases fields."""
        index = parsed.get_field_index(s.ALTERNATE_BASES)
        struct = parsed.field(index).type.value_type
        annotated = pa.list_(pa.struct([*struct, *self.alternate_bases_fields()]))
        return parsed.set(index, pa.field(s.ALTERNATE_BASES, annotated))


def plan_annotations(
    infos: dict[str, FieldDef],
    alt_columns: list[str],
    split_ids: list[str],
    lookup_path: str | None,
    lookup_ids: list[str],
) -> Annotations | None:
    """Checks the requested fields against the headers; ``alt_columns`` are the fields
    alternate_bases already has."""
    if not split_ids and not lookup_path:
        return None
    split = []
    for field_id in split_ids:
        if field_id not in infos:
            known = sorted(f.id for f in infos.values() if f.number == "." and f.type == "String")
            raise SchemaError(
                f"--annotation_fields {field_id}: the input headers define no INFO {field_id} "
                f"(list-of-string INFO fields they define: {', '.join(known) or 'none'})"
            )
        split.append(split_field(infos[field_id]))
    lookup = []
    if lookup_path:
        lookup = _lookup_fields(lookup_path, lookup_ids)
    taken = {name.lower(): f"the alternate_bases field {name!r}" for name in alt_columns}
    for column, what in [(f.column, f"--annotation_fields {f.id}") for f in split] + [
        (f.column, f"--annotate_fields {f.field.id}") for f in lookup
    ]:
        if column.lower() in taken:
            raise SchemaError(
                f"{what} becomes alternate_bases.{column}, which clashes with {taken[column.lower()]} "
                "(names are compared case-insensitively). Hint: leave it out, or rename the field "
                "in one of the files"
            )
        taken[column.lower()] = what
    return Annotations(tuple(split), lookup_path, tuple(lookup))


def _lookup_fields(path: str, ids: list[str]) -> list[LookupField]:
    import pysam

    from variant_etl.core.regions import index_of

    if index_of(path) is None:
        raise SchemaError(
            f"--annotate_with {path}: has no .tbi/.csi index. Hint: bgzip it and run tabix -p vcf"
        )
    try:
        with pysam.VariantFile(path) as annotation_file:
            lines = str(annotation_file.header).splitlines()
            header = parse_header(lines, path, len(lines))
    except (OSError, ValueError) as err:
        raise SchemaError(f"--annotate_with {path}: cannot be read as an indexed VCF ({err})") from None
    if not ids:
        raise SchemaError(f"--annotate_with {path}: name the INFO fields to copy with --annotate_fields")
    fields = []
    for field_id in ids:
        field = header.infos.get(field_id)
        if field is None:
            raise SchemaError(
                f"--annotate_fields {field_id}: {path} defines no INFO {field_id} "
                f"(it defines {', '.join(sorted(header.infos)) or 'none'})"
            )
        if field.number == "G":
            raise SchemaError(
                f"--annotate_fields {field_id}: Number=G fields are per genotype, not per allele"
            )
        fields.append(LookupField(s.sanitize_name(field_id), field))
    return fields


class Annotator:
    """Applies the annotations to batches; holds the annotation file open (one per worker)."""

    def __init__(self, annotations: Annotations, *, one_based: bool = False):
        self._annotations = annotations
        self._one_based = one_based
        self._file = None

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def apply(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        alternate_bases = batch.column(s.ALTERNATE_BASES)
        alt_values = pc.list_flatten(alternate_bases)  # a slice's values, from its first
        alleles = _Alleles(
            batch.column(s.REFERENCE_BASES),
            pc.struct_field(alt_values, s.ALT),
            pc.list_parent_indices(alternate_bases).to_numpy(),
        )
        alt_offsets = alleles.offsets
        children = [alt_values.field(i) for i in range(alt_values.type.num_fields)]
        fields = list(alt_values.type)
        columns = {}
        for field in self._annotations.split:
            per_alt, unmatched = _split(
                batch.column(field.column), field, alleles, self._annotations.minimal_alt_matching
            )
            children.append(per_alt)
            fields.append(pa.field(field.column, per_alt.type))
            columns[field.column] = unmatched
        if self._annotations.lookup:
            for lookup_field, values in zip(self._annotations.lookup, self._lookup(batch, alleles)):
                children.append(values)
                fields.append(pa.field(lookup_field.column, lookup_field.arrow_type))
        structs = pa.StructArray.from_arrays(children, fields=fields)
        mask = alternate_bases.is_null() if alternate_bases.null_count else None
        annotated = pa.ListArray.from_arrays(pa.array(alt_offsets, pa.int32()), structs, mask=mask)
        names = batch.schema.names
        arrays = [columns.get(name, batch.column(i)) for i, name in enumerate(names)]
        arrays[names.index(s.ALTERNATE_BASES)] = annotated
        return pa.RecordBatch.from_arrays(arrays, names=names)

    def _lookup(self, batch: pa.RecordBatch, alleles: _Alleles) -> list[pa.Array]:
        """One array per lookup field, aligned with the batch's alternate alleles."""
        import pysam

        refs = alleles.refs.to_pylist()
        alts, offsets = alleles.alts.to_pylist(), alleles.offsets
        rows_alts = [alts[offsets[r] : offsets[r + 1]] for r in range(batch.num_rows)]
        if self._file is None:
            self._file = pysam.VariantFile(self._annotations.lookup_path)
            self._contigs = set(self._file.index.keys()) if self._file.index is not None else set()
        chroms = batch.column(s.REFERENCE_NAME).to_pylist()
        starts = batch.column(s.START_POSITION).to_numpy() - (1 if self._one_based else 0)
        wanted: dict[tuple, list[int]] = {}  # (chrom, pos, ref, alt), trimmed -> alt numbers
        number = 0
        for chrom, start, ref, row_alts in zip(chroms, starts.tolist(), refs, rows_alts):
            for alt in row_alts:
                wanted.setdefault((chrom, *allele_key(start, ref, alt)), []).append(number)
                number += 1
        found: dict[tuple, tuple] = {}  # key -> (record, its alt index)
        for chrom, begin, end in _windows(chroms, starts, refs):
            contig = self._contig(chrom)
            if contig is None:
                continue
            for record in self._file.fetch(contig, begin, end):
                for index, alt in enumerate(record.alts or ()):
                    key = (chrom, *allele_key(record.start, record.ref, alt))
                    if key in wanted and key not in found:
                        found[key] = (record, index)
        out = []
        for lookup_field in self._annotations.lookup:
            values: list = [None] * number
            for key, (record, index) in found.items():
                value = _info_value(record, lookup_field.field, index)
                for alt_number in wanted[key]:
                    values[alt_number] = value
            out.append(pa.array(values, lookup_field.arrow_type))
        return out

    def _contig(self, chrom: str) -> str | None:
        """The annotation file's name of a contig: as given, or with/without a 'chr' prefix."""
        for name in (chrom, chrom[3:] if chrom.startswith("chr") else "chr" + chrom):
            if name in self._contigs:
                return name
        return None


def allele_key(start: int, ref: str, alt: str) -> tuple[int, str, str]:
    """(0-based start, REF, ALT) without the bases they share at the end, then at the start
    (at least one base stays): the same variant written with more context matches."""
    if not alt or alt[0] in "<*" or "[" in alt or "]" in alt or alt == ".":
        return start, ref, alt
    while len(ref) > 1 and len(alt) > 1 and ref[-1] == alt[-1]:
        ref, alt = ref[:-1], alt[:-1]
    while len(ref) > 1 and len(alt) > 1 and ref[0] == alt[0]:
        ref, alt, start = ref[1:], alt[1:], start + 1
    return start, ref, alt


def _windows(chroms: list[str], starts: np.ndarray, refs: list[str]):
    """(chrom, 0-based begin, end) regions that cover every row, rows closer than LOOKUP_GAP
    sharing one."""
    spans: dict[str, list[tuple[int, int]]] = {}
    for chrom, start, ref in zip(chroms, starts.tolist(), refs):
        spans.setdefault(chrom, []).append((start, start + max(1, len(ref))))
    for chrom, chrom_spans in spans.items():
        chrom_spans.sort()
        begin, end = chrom_spans[0]
        for start, stop in chrom_spans[1:]:
            if start - end > LOOKUP_GAP:
                yield chrom, begin, end
                begin, end = start, stop
            else:
                end = max(end, stop)
        yield chrom, begin, end


def _info_value(record, field: FieldDef, alt_index: int):
    if field.type == "Flag":
        return field.id in record.info
    value = record.info.get(field.id)
    if value is None:
        return None
    if field.number == "A":
        return value[alt_index] if alt_index < len(value) else None
    if field.number == "R":
        return value[alt_index + 1] if alt_index + 1 < len(value) else None
    if isinstance(value, tuple):
        return list(value) if field.number != "1" else value[0]
    return [value] if field.number not in ("0", "1") else value


def _split(column: pa.Array, field: SplitField, alleles: _Alleles, minimal: bool = False):
    """(a list of annotation records per ALT, the strings matching no ALT per row)."""
    alt_offsets = alleles.offsets
    n_alts = int(alt_offsets[-1])
    strings = pc.list_flatten(column)
    row_of = pc.list_parent_indices(column).to_numpy()
    parts = pc.split_pattern(strings, "|")
    whole = pc.equal(pc.list_value_length(parts), len(field.names)).to_numpy(zero_copy_only=False)
    alt_number = np.full(len(strings), -1, dtype=np.int64)  # the ALT each string is for
    if field.allele_num_index is not None:
        alt_number = _by_allele_num(parts, whole, field.allele_num_index, row_of, alt_offsets)
    if field.allele_index is not None:
        todo = np.flatnonzero(whole & (alt_number < 0))
        if len(todo):
            alt_number[todo] = _by_allele(parts, todo, field, alleles, row_of)
        todo = np.flatnonzero(whole & (alt_number < 0))
        if minimal and len(todo):
            alt_number[todo] = _by_minimal_allele(parts, todo, field, alleles, row_of)
    elif field.allele_num_index is None:  # no allele to match: only a single ALT can be meant
        single = (alt_offsets[row_of + 1] - alt_offsets[row_of]) == 1
        alt_number = np.where(whole & single, alt_offsets[row_of], -1)
    matched = np.flatnonzero(alt_number >= 0)
    matched = matched[np.argsort(alt_number[matched], kind="stable")]
    taken = pc.take(parts, pa.array(matched, pa.int64()))
    subfields = []
    struct = field.arrow_type().value_type
    for k in range(len(field.names)):
        values = pc.list_element(taken, k) if len(matched) else pa.array([], pa.string())
        values = pc.if_else(pc.equal(values, ""), pa.scalar(None, pa.string()), values)
        subfields.append(values.cast(struct.field(k).type))  # typed: every value was checked
    records = pa.StructArray.from_arrays(subfields, fields=list(struct))
    counts = np.bincount(alt_number[matched], minlength=n_alts)
    per_alt = _lists(counts, records)
    unmatched = np.flatnonzero(alt_number < 0)
    kept = pc.take(strings, pa.array(unmatched, pa.int64()))
    return per_alt, _lists(np.bincount(row_of[unmatched], minlength=len(column)), kept)


def _lists(counts: np.ndarray, values: pa.Array) -> pa.ListArray:
    """A list array of ``counts[i]`` consecutive values each; empty lists are null."""
    offsets = np.zeros(len(counts) + 1, dtype=np.int32)
    np.cumsum(counts, out=offsets[1:])
    return pa.ListArray.from_arrays(pa.array(offsets), values, mask=pa.array(counts == 0))


def _by_allele_num(parts, whole, index: int, row_of, alt_offsets) -> np.ndarray:
    out = np.full(len(whole), -1, dtype=np.int64)
    rows = np.flatnonzero(whole)
    if not len(rows):
        return out
    text = pc.list_element(pc.take(parts, pa.array(rows, pa.int64())), index)
    digits = pc.fill_null(pc.match_substring_regex(text, r"^[0-9]{1,9}$"), False)
    numbers = pc.fill_null(pc.cast(pc.if_else(digits, text, "0"), pa.int64()), 0).to_numpy()
    row = row_of[rows]
    in_range = (numbers >= 1) & (numbers <= alt_offsets[row + 1] - alt_offsets[row])
    out[rows[in_range]] = alt_offsets[row[in_range]] + numbers[in_range] - 1
    return out


def minimal_allele(ref: str, alt: str) -> str:
    """What VEP --minimal writes for one ALT: the ALT without the bases it shares with REF at
    the start, then at the end ('-' when nothing is left)."""
    lead = 0
    while lead < min(len(ref), len(alt)) and ref[lead] == alt[lead]:
        lead += 1
    trail = 0
    while trail + lead < min(len(ref), len(alt)) and ref[-1 - trail] == alt[-1 - trail]:
        trail += 1
    return alt[lead : len(alt) - trail] or "-"


def _by_minimal_allele(parts, todo, field: SplitField, alleles: _Alleles, row_of) -> np.ndarray:
    """--minimal_vep_alt_matching: the ALT number of each annotation string in ``todo`` whose
    allele is the minimal form of exactly one ALT of its record, or -1 (none, or ambiguous:
    REF C, ALTs CT and T are both 'T')."""
    refs = alleles.refs.to_pylist()
    forms = [
        minimal_allele(refs[row], alt) if alt is not None and not alt.startswith(("<", "*")) else None
        for row, alt in zip(alleles.alt_row.tolist(), alleles.alts.to_pylist())
    ]
    keys = _row_keys(alleles.alt_row, pa.array(forms, pa.string())).to_pylist()
    first: dict[str, int] = {}
    for number, key in enumerate(keys):
        if key is not None:
            first[key] = -2 if key in first else number  # -2: more than one ALT
    allele = pc.list_element(pc.take(parts, pa.array(todo, pa.int64())), field.allele_index)
    wanted = _row_keys(row_of[todo], allele).to_pylist()
    return np.array([max(first.get(key, -1), -1) for key in wanted], dtype=np.int64)


def _by_allele(parts, todo, field: SplitField, alleles: _Alleles, row_of) -> np.ndarray:
    """The ALT number of each annotation string in ``todo`` by its allele, or -1. A record's
    strings are read by VEP's rule or as the ALTs written, whichever places more of them (ties
    go to the rule of the tool the header names): some annotators write the ALT itself under a
    VEP-style header."""
    allele = pc.list_element(pc.take(parts, pa.array(todo, pa.int64())), field.allele_index)
    rows = row_of[todo]
    wanted = _row_keys(rows, allele)
    as_written = pc.fill_null(pc.index_in(wanted, value_set=alleles.keys(alleles.alts)), -1).to_numpy()
    by_vep = pc.fill_null(pc.index_in(wanted, value_set=alleles.keys(alleles.vep)), -1).to_numpy()
    rule, other = (as_written, by_vep) if field.exact_alleles else (by_vep, as_written)
    n_rows = len(alleles.refs)
    placed_rule = np.bincount(rows, weights=rule >= 0, minlength=n_rows)
    placed_other = np.bincount(rows, weights=other >= 0, minlength=n_rows)
    return np.where((placed_other > placed_rule)[rows], other, rule)
