"""VCF header model: reading, normalising and merging headers of many files.

Real files are messier than htslib accepts, so the header text is normalised here
before pysam sees it (see ``normalise_header_lines``).
"""

from __future__ import annotations

import dataclasses
import re

from variant_etl.core.errors import HeaderConflictError, VcfFormatError

TYPES = ("Integer", "Float", "Flag", "Character", "String")
_NUMBER_RE = re.compile(r"^(\d+|A|R|G|\.)$")
_STRUCTURED_RE = re.compile(r"^##(\w+)=<(.*)>\s*$")
MANDATORY_COLUMNS = ("#CHROM", "POS", "ID", "REF", "ALT", "QUAL", "FILTER", "INFO")
DEFAULT_FILEFORMAT = "##fileformat=VCFv4.3"


@dataclasses.dataclass(frozen=True)
class FieldDef:
    """One ##INFO or ##FORMAT definition."""

    id: str
    number: str  # '0', '1', ..., 'A', 'R', 'G' or '.'
    type: str  # one of TYPES
    description: str = ""

    @property
    def is_list(self) -> bool:
        return self.number not in ("0", "1")


@dataclasses.dataclass(frozen=True)
class VcfHeader:
    """What a file's header says, plus where its records start."""

    path: str
    infos: dict[str, FieldDef]
    formats: dict[str, FieldDef]
    filters: tuple[str, ...]
    contigs: tuple[str, ...]
    samples: tuple[str, ...]
    lines: tuple[str, ...]  # normalised header lines, '#CHROM' line last
    physical_header_lines: int  # lines before the first record in the original file
    body_offset: int | None = None  # byte offset of the first record (uncompressed text only)
    # length= of the ##contig lines that have one (as htslib reads it: a positive integer)
    contig_lengths: dict[str, int] = dataclasses.field(default_factory=dict)


def parse_structured(value: str) -> dict[str, str]:
    """Parses the inside of ``<ID=X,Number=1,Description="a, \\"b\\"">``."""
    out: dict[str, str] = {}
    i, n = 0, len(value)
    while i < n:
        eq = value.find("=", i)
        if eq < 0:
            break
        key = value[i:eq].strip()
        i = eq + 1
        if i < n and value[i] == '"':
            i += 1
            chars = []
            while i < n and value[i] != '"':
                if value[i] == "\\" and i + 1 < n:
                    i += 1
                chars.append(value[i])
                i += 1
            out[key] = "".join(chars)
            i += 1  # closing quote
            comma = value.find(",", i)
            i = n if comma < 0 else comma + 1
        else:
            comma = value.find(",", i)
            end = n if comma < 0 else comma
            out[key] = value[i:end].strip()
            i = end + 1
    return out


def normalise_header_lines(raw_lines: list[str], path: str) -> list[str]:
    """Applies the fixes gcp-variant-transforms tolerates, so htslib accepts the header.

    Drops blank lines and CR characters, adds a missing ``##fileformat`` line, and
    strips whitespace after the last sample name on the ``#CHROM`` line.
    """
    lines = [line.rstrip("\r\n") for line in raw_lines]
    lines = [line for line in lines if line.strip()]
    if not lines or not lines[-1].startswith("#CHROM"):
        raise VcfFormatError(
            f"{path}: no '#CHROM' header line found before the first record. "
            "Hint: every VCF needs a tab-separated '#CHROM POS ID REF ALT QUAL FILTER INFO' line."
        )
    lines[-1] = lines[-1].rstrip()
    if not lines[0].startswith("##fileformat="):
        lines.insert(0, DEFAULT_FILEFORMAT)
    return lines


def definition_line(kind: str, field: FieldDef) -> str:
    """The ``##INFO=<...>`` / ``##FORMAT=<...>`` line for a definition."""
    description = field.description.replace("\\", "\\\\").replace('"', '\\"')
    return f'##{kind}=<ID={field.id},Number={field.number},Type={field.type},Description="{description}">'


def header_overrides(header: VcfHeader, merged: MergedHeader) -> tuple[str, ...]:
    """Definition lines the merged header has and this file's header lacks or defines
    otherwise; htslib parses the file with them, so values are typed as the schema says."""
    lines = [definition_line("INFO", f) for k, f in merged.infos.items() if not _same(header.infos.get(k), f)]
    lines += [
        definition_line("FORMAT", f) for k, f in merged.formats.items() if not _same(header.formats.get(k), f)
    ]
    return tuple(lines)


def redefines_own(header: VcfHeader, merged: MergedHeader) -> bool:
    """True when the merged schema changes a definition this file declares itself."""
    return any(k in merged.infos and not _same(f, merged.infos[k]) for k, f in header.infos.items()) or any(
        k in merged.formats and not _same(f, merged.formats[k]) for k, f in header.formats.items()
    )


def _same(mine: FieldDef | None, merged: FieldDef) -> bool:
    return mine is not None and (mine.number, mine.type) == (merged.number, merged.type)


def with_extra_lines(lines: list[str], extra: tuple[str, ...]) -> list[str]:
    """Replaces (or adds) the definitions in ``extra``, just before the #CHROM line."""
    if not extra:
        return lines
    replaced = {_definition_key(line) for line in extra}
    kept = [line for line in lines[:-1] if _definition_key(line) not in replaced]
    return [*kept, *extra, lines[-1]]


def run_header_lines(headers: list[VcfHeader], merged: MergedHeader) -> list[str]:
    """The header of a whole run: the first input's lines, with the merged INFO/FORMAT
    definitions and every input's contigs and filters; its '#CHROM' line last."""
    lines = with_extra_lines(list(headers[0].lines), header_overrides(headers[0], merged))
    seen = {_meta_key(line) for line in lines}
    added = []
    for header in headers[1:]:
        for line in header.lines[:-1]:
            key = _meta_key(line)
            if key is not None and key[0] in ("contig", "FILTER", "INFO", "FORMAT") and key not in seen:
                seen.add(key)
                added.append(line)
    return [*lines[:-1], *added, lines[-1]]


def _meta_key(line: str) -> tuple[str, str] | None:
    match = _STRUCTURED_RE.match(line)
    return (match.group(1), parse_structured(match.group(2)).get("ID", "")) if match else None


def _definition_key(line: str) -> tuple[str, str] | None:
    key = _meta_key(line)
    return key if key is not None and key[0] in ("INFO", "FORMAT") else None


def htslib_header_lines(lines: list[str]) -> list[str]:
    """The header as given to htslib: INFO Number=G (valid VCF, but htslib cannot
    size it outside FORMAT) becomes Number=. there; our schema keeps G."""
    return [
        line.replace(",Number=G,", ",Number=.,") if line.startswith("##INFO=<") else line for line in lines
    ]


def parse_header(lines: list[str], path: str, physical_header_lines: int) -> VcfHeader:
    """Builds a VcfHeader from normalised header lines."""
    infos: dict[str, FieldDef] = {}
    formats: dict[str, FieldDef] = {}
    filters: list[str] = []
    contigs: list[str] = []
    lengths: dict[str, int] = {}
    for lineno, line in enumerate(lines[:-1], start=1):
        match = _STRUCTURED_RE.match(line)
        if not match:
            continue
        kind, body = match.groups()
        attrs = parse_structured(body)
        if kind in ("INFO", "FORMAT"):
            target = infos if kind == "INFO" else formats
            target[attrs.get("ID", "")] = _field_def(kind, attrs, path, lineno)
        elif kind == "FILTER" and "ID" in attrs:
            filters.append(attrs["ID"])
        elif kind == "contig" and "ID" in attrs:
            contigs.append(attrs["ID"])
            length = attrs.get("length", "")
            if length.isdigit() and int(length) > 0:
                lengths[attrs["ID"]] = int(length)
    columns = lines[-1].split("\t")
    if tuple(columns[:8]) != MANDATORY_COLUMNS:
        raise VcfFormatError(
            f"{path}: header line {physical_header_lines}: expected the columns "
            f"{' '.join(MANDATORY_COLUMNS)} separated by tabs, got {lines[-1][:200]!r}"
        )
    samples = tuple(columns[9:])
    _check_samples(samples, path, physical_header_lines)
    return VcfHeader(
        path=path,
        infos=infos,
        formats=formats,
        filters=tuple(filters),
        contigs=tuple(contigs),
        samples=samples,
        lines=tuple(lines),
        physical_header_lines=physical_header_lines,
        contig_lengths=lengths,
    )


def _field_def(kind: str, attrs: dict[str, str], path: str, lineno: int) -> FieldDef:
    where = f"{path}: ##{kind} line {lineno}"
    field_id = attrs.get("ID", "")
    if not field_id:
        raise VcfFormatError(f"{where}: missing ID")
    number = attrs.get("Number", ".")
    if number == "-1":  # VCF 4.0 spelling of '.'
        number = "."
    if not _NUMBER_RE.match(number):
        raise VcfFormatError(
            f"{where} ({field_id}): Number must be an integer, A, R, G or '.', got {number!r}"
        )
    field_type = attrs.get("Type", "String")
    if field_type not in TYPES:
        raise VcfFormatError(
            f"{where} ({field_id}): Type must be one of {', '.join(TYPES)}, got {field_type!r}"
        )
    if field_type == "Flag":
        number = "0"
    return FieldDef(field_id, number, field_type, attrs.get("Description", ""))


def _check_samples(samples: tuple[str, ...], path: str, lineno: int) -> None:
    seen: set[str] = set()
    for name in samples:
        if not name.strip():
            raise VcfFormatError(f"{path}: header line {lineno}: empty sample name in the #CHROM line")
        if name in seen:
            raise VcfFormatError(
                f"{path}: header line {lineno}: sample name {name!r} appears twice. "
                "Hint: rename one of the samples (e.g. bcftools reheader)."
            )
        seen.add(name)


@dataclasses.dataclass(frozen=True)
class Resolution:
    """A definition used that is not what every header declares: the files disagree, or
    --infer_headers defined or corrected it from the values."""

    kind: str  # "INFO" or "FORMAT"
    field: FieldDef  # the definition used
    # each definition the headers give (Number and Type), with the files giving it
    declared: tuple[tuple[FieldDef, tuple[str, ...]], ...]
    why: str
    inferred: bool = False  # by --infer_headers, from the records' values

    def describe(self) -> str:
        """One line: 'INFO/AF: Number=A,Type=Integer -> Number=.,Type=Float (why)'."""
        declared = [f"Number={f.number},Type={f.type}" for f, _ in self.declared]
        if len(self.declared) > 1:
            declared = [f"{d} in {len(paths)} file(s)" for d, (_, paths) in zip(declared, self.declared)]
        used = f"Number={self.field.number},Type={self.field.type}"
        declared_text = " or ".join(declared) or "not declared"
        return f"{self.kind}/{self.field.id}: {declared_text} -> {used} ({self.why})"


@dataclasses.dataclass(frozen=True)
class MergedHeader:
    """The union of all input headers: one schema for every file."""

    infos: dict[str, FieldDef]
    formats: dict[str, FieldDef]
    samples: tuple[str, ...]
    has_samples: bool
    resolutions: tuple[Resolution, ...] = ()  # definitions used that not every header gives


def merge_headers(headers: list[VcfHeader], *, allow_incompatible: bool = False) -> MergedHeader:
    """Merges field definitions: equal kept, Integer+Float -> Float, else an error naming the
    first conflict (or, with ``allow_incompatible``, the widest definition: see ``_resolve``).
    Every field the files define differently is listed in ``resolutions``."""
    merged: dict[str, dict[str, FieldDef]] = {"INFO": {}, "FORMAT": {}}
    resolutions = []
    for kind in ("INFO", "FORMAT"):
        # per field: each distinct (Number, Type), its first definition and the files giving it
        seen: dict[str, dict[tuple[str, str], tuple[FieldDef, list[str]]]] = {}
        for header in headers:
            for field_id, field in (header.infos if kind == "INFO" else header.formats).items():
                variants = seen.setdefault(field_id, {})
                variants.setdefault((field.number, field.type), (field, []))[1].append(header.path)
        for field_id, variants in seen.items():
            (first, first_paths), *others = variants.values()
            result = first
            for other, paths in others:
                result = _merge_field(kind, result, first_paths[0], other, paths[0], allow_incompatible)
            merged[kind][field_id] = dataclasses.replace(result, description=first.description)
            if others:
                declared = tuple((f, tuple(paths)) for f, paths in variants.values())
                resolutions.append(Resolution(kind, merged[kind][field_id], declared, "the files disagree"))
    samples = dict.fromkeys(name for header in headers for name in header.samples)
    return MergedHeader(
        infos=merged["INFO"],
        formats=merged["FORMAT"],
        samples=tuple(samples),
        has_samples=bool(samples),
        resolutions=tuple(resolutions),
    )


def representative_header(representative: VcfHeader, headers: list[VcfHeader]) -> MergedHeader:
    """--representative_header_file: its definitions for every input; samples from the inputs."""
    samples = dict.fromkeys(name for header in headers for name in header.samples)
    resolutions = []
    for kind, used in (("INFO", representative.infos), ("FORMAT", representative.formats)):
        for field_id, field in used.items():
            own: dict[tuple[str, str], tuple[FieldDef, list[str]]] = {}
            for header in headers:
                theirs = (header.infos if kind == "INFO" else header.formats).get(field_id)
                if theirs is not None and (theirs.number, theirs.type) != (field.number, field.type):
                    own.setdefault((theirs.number, theirs.type), (theirs, []))[1].append(header.path)
            if own:
                declared = tuple((f, tuple(paths)) for f, paths in own.values())
                resolutions.append(Resolution(kind, field, declared, "--representative_header_file"))
    return MergedHeader(
        infos=dict(representative.infos),
        formats=dict(representative.formats),
        samples=tuple(samples),
        has_samples=bool(samples),
        resolutions=tuple(resolutions),
    )


def _merge_field(
    kind: str, a: FieldDef, a_path: str, b: FieldDef, b_path: str, allow_incompatible: bool
) -> FieldDef:
    if a.type == b.type and a.number == b.number:
        return a
    if {a.type, b.type} == {"Integer", "Float"} and a.number == b.number:
        return dataclasses.replace(a, type="Float")
    if not allow_incompatible:
        what = "Type" if a.type != b.type else "Number"
        raise HeaderConflictError(_conflict(kind, a, a_path, b, b_path, what))
    return _resolve(a, b)


def _resolve(a: FieldDef, b: FieldDef) -> FieldDef:
    """--allow_incompatible_records: a definition that can hold the values of both.

    Type: Integer+Float -> Float; a Flag against a valued type, or any other pair -> String.
    Number: different counts -> '.' (a list of any length).
    """
    if a.type == b.type:
        field_type = a.type
    elif {a.type, b.type} == {"Integer", "Float"}:
        field_type = "Float"
    else:
        field_type = "String"
    if field_type == "Flag":
        number = "0"
    elif a.number == b.number and "0" not in (a.number, b.number):
        number = a.number
    elif {a.number, b.number} <= {"0", "1"}:
        number = "1"
    else:
        number = "."
    return FieldDef(a.id, number, field_type, a.description or b.description)


def _conflict(kind: str, a: FieldDef, a_path: str, b: FieldDef, b_path: str, what: str) -> str:
    return (
        f"{kind} field {a.id!r} has incompatible definitions: "
        f"Number={a.number},Type={a.type} in {a_path} but "
        f"Number={b.number},Type={b.type} in {b_path} ({what} differs). "
        "Hint: make the two headers agree (e.g. bcftools reheader), pass "
        "--representative_header_file with the definitions to use, or pass "
        "--allow_incompatible_records to widen the definition and cast the values."
    )
