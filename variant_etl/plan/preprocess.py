"""`preprocess`: what gcp-variant-transforms' vcf_to_bq_preprocess reported, before any load.

Reads every input's header (the plan's prefetching read: cheap on thousands of files) and
writes a TSV report in VT's layout: each INFO/FORMAT field the files define differently, the
definitions with up to 5 files each, and the definition a load with --allow_incompatible_records
would use. With --report_all_conflicts, it also reads every record: the definitions
--infer_headers would add or correct, and the records a load would refuse as malformed.
--resolved_headers_path writes a header with the resolved definitions, to give a load as
--representative_header_file.
"""

from __future__ import annotations

import dataclasses

from apache_beam.io.filesystems import FileSystems

from variant_etl.core.header import FieldDef, Resolution, run_header_lines
from variant_etl.core.options import HeaderOptions
from variant_etl.core.reader import Malformed, ReadResult, read_split
from variant_etl.filesystems import open_binary
from variant_etl.plan.inputs import plan_source
from variant_etl.plan.model import SourcePlan

FILES_PER_DEFINITION = 5  # as VT's report
_PAD = " "  # an empty cell, as VT fills them


@dataclasses.dataclass(frozen=True)
class Preprocessed:
    conflicts: tuple[Resolution, ...]
    inferred: tuple[Resolution, ...] | None  # None: not looked for (no --report_all_conflicts)
    malformed: tuple[Malformed, ...] | None


def preprocess(
    patterns: list[str],
    input_file: str | None,
    *,
    report_path: str,
    resolved_headers_path: str | None = None,
    report_all_conflicts: bool = False,
) -> Preprocessed:
    headers = HeaderOptions(allow_incompatible_records=True, infer_headers=report_all_conflicts)
    source = plan_source(patterns, input_file, headers=headers)
    resolutions = source.merged.resolutions
    found = Preprocessed(
        conflicts=tuple(r for r in resolutions if not r.inferred),
        inferred=tuple(r for r in resolutions if r.inferred and r.field.id != "GT")
        if report_all_conflicts
        else None,
        malformed=tuple(_malformed(source)) if report_all_conflicts else None,
    )
    _write(report_path, report_text(found))
    if resolved_headers_path:
        _write(resolved_headers_path, "".join(line + "\n" for line in resolved_header_lines(source)))
    return found


def _malformed(source: SourcePlan):
    """Every record a load with these definitions would refuse."""
    read = dataclasses.replace(source.read, allow_malformed_records=True)
    for split in source.splits:
        for item in read_split(
            split.path,
            source.schema,
            one_based=read.one_based,
            allow_malformed=True,
            batch_rows=read.batch_rows,
            result=ReadResult(),
            open_binary=open_binary,
            extra_header_lines=split.extra_header_lines,
            byte_range=split.byte_range,
        ):
            if isinstance(item, Malformed):
                yield item


def resolved_header_lines(source: SourcePlan) -> list[str]:
    """The run's header (every input's contigs and filters, the resolved definitions) with a
    sample-less '#CHROM' line: a --representative_header_file for the load."""
    lines = run_header_lines(list(source.headers), source.merged)
    return [*lines[:-1], "\t".join(lines[-1].split("\t")[:8])]


def report_text(found: Preprocessed) -> str:
    """VT's report: a section per kind of problem, 'No ... Found.' for an empty one."""
    conflicts = []
    for kind in ("INFO", "FORMAT"):
        for r in sorted((r for r in found.conflicts if r.kind == kind), key=lambda r: r.field.id):
            conflicts += _conflict_rows(r)
    text = _section("Header Conflicts", "ID\tCategory\tConflicts\tFile Paths\tProposed Resolution", conflicts)
    if found.inferred is not None:
        rows = [
            f"{r.field.id}\t{kind}\t{_definition(r.field)}"
            for kind in ("INFO", "FORMAT")
            for r in sorted((r for r in found.inferred if r.kind == kind), key=lambda r: r.field.id)
        ]
        text += _section("Inferred Headers", "ID\tCategory\tProposed Resolution", rows)
    if found.malformed is not None:
        rows = [
            f"{m.file}\t{m.raw.replace(chr(9), ' ')}\t{_where(m)}{m.field}: {m.reason}, got {m.value!r}"
            for m in sorted(found.malformed, key=lambda m: (m.file, m.record))
        ]
        text += _section("Malformed Records", "File Path\tVariant Record\tError Message", rows)
    return text


def _where(malformed: Malformed) -> str:
    return f"line {malformed.line}: " if malformed.line else f"record {malformed.record}: "


def _conflict_rows(resolution: Resolution) -> list[str]:
    rows = []
    declared = sorted(resolution.declared, key=lambda d: (d[0].number, d[0].type))
    for number, (field, paths) in enumerate(declared):
        files = sorted(paths)[:FILES_PER_DEFINITION]
        if number == 0:
            first = [resolution.field.id, resolution.kind, _definition(field), files[0]]
            rows.append("\t".join([*first, _definition(resolution.field)]))
        else:
            rows.append("\t".join([_PAD, _PAD, _definition(field), files[0], _PAD]))
        rows += ["\t".join([_PAD, _PAD, _PAD, path, _PAD]) for path in files[1:]]
    return rows


def _definition(field: FieldDef) -> str:
    return f"num={field.number} type={field.type}"


def _section(title: str, columns: str, rows: list[str]) -> str:
    if not rows:
        return f"No {title} Found.\n\n"
    return "".join(line + "\n" for line in (title, columns, *rows)) + "\n"


def _write(path: str, text: str) -> None:
    with FileSystems.create(path) as f:
        f.write(text.encode("utf-8"))
