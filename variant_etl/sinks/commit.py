"""The commit step: once every write is done, the stats are added up into ``_manifest.json``
(core/manifest.py: every record accounted for, or nothing is committed), the temporary files
are moved into place, and ``_SUCCESS`` is written last. Also the dead-letter writer."""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections import Counter

import apache_beam as beam
import pyarrow.parquet as pq
from apache_beam.io.filesystems import FileSystems
from apache_beam.transforms.window import GlobalWindows

from variant_etl.core.errors import OutputError
from variant_etl.core.layout import (
    HEADER,
    HEADER_SUFFIX,
    MALFORMED_DIR,
    MANIFEST,
    SAMPLE_INFO,
    SAMPLE_INFO_SUFFIX,
    SUCCESS,
)
from variant_etl.core.manifest import CommitSpec, build_manifest
from variant_etl.core.run import header_rows, sample_info_rows, sample_info_table
from variant_etl.core.stats import Kind, Stat
from variant_etl.sinks.tables import insert_run_rows


class _WriteMalformedFn(beam.DoFn):
    """Writes a bundle's dead-letter entries as one JSON-lines file."""

    def __init__(self, temp_dir: str):
        self._temp_dir = temp_dir

    def start_bundle(self):
        self._entries: list[dict] = []

    def process(self, entry: dict):
        self._entries.append(entry)

    def finish_bundle(self):
        if not self._entries:
            return
        entries = sorted(self._entries, key=lambda e: (e["file"], e["record"]))
        path = FileSystems.join(self._temp_dir, MALFORMED_DIR, f"{uuid.uuid4().hex}.jsonl")
        with FileSystems.create(path) as sink:
            for entry in entries:
                sink.write((json.dumps(entry, ensure_ascii=False) + "\n").encode("utf-8"))
        by_input = dict(Counter(e["file"] for e in entries))
        self._entries = []
        info = {
            "temp_path": path,
            "rows": len(entries),
            "by_input": by_input,
            "first": [entries[0]["file"], entries[0]["record"]],
        }
        yield GlobalWindows.windowed_value(Stat(Kind.MALFORMED_FILE, "", info))


class WriteMalformed(beam.PTransform):
    """Dead-letter entries -> temporary JSON-lines files; one stat per file."""

    def __init__(self, temp_dir: str):
        super().__init__()
        self._temp_dir = temp_dir

    def expand(self, entries):
        return entries | "WriteFiles" >> beam.ParDo(_WriteMalformedFn(self._temp_dir))


def _remove_previous_output(out: str) -> None:
    """--overwrite: everything but this run's temporary files goes, markers first."""
    for marker in (SUCCESS, MANIFEST):
        path = FileSystems.join(out, marker)
        if FileSystems.exists(path):
            FileSystems.delete([path])
    if not FileSystems.exists(out):
        return
    if "://" not in out:  # local: directories are real, remove them whole
        for name in os.listdir(out):
            if name != "_temporary":
                path = os.path.join(out, name)
                shutil.rmtree(path) if os.path.isdir(path) else os.remove(path)
        return
    temporary = FileSystems.join(out, "_temporary") + "/"
    old = [m.path for m in FileSystems.match([FileSystems.join(out, "**")])[0].metadata_list]
    old = [path for path in old if not path.startswith(temporary)]
    if old:
        FileSystems.delete(old)


def _move(renames: list[tuple[str, str]]) -> None:
    """Moves the files into place; on a second try, only those not moved yet."""
    if not renames:
        return
    try:
        FileSystems.rename([src for src, _ in renames], [dst for _, dst in renames])
        return
    except Exception:  # BeamIOError: some sources are gone, moved by an earlier attempt
        pass
    moved = {src: not FileSystems.exists(src) for src, _ in renames}
    left = [(src, dst) for src, dst in renames if not moved[src]]
    lost = [dst for src, dst in renames if moved[src] and not FileSystems.exists(dst)]
    if lost:
        raise OutputError(
            f"{lost[0]}: neither its temporary file nor the file itself exists; nothing more is moved"
        )
    if left:
        FileSystems.rename([src for src, _ in left], [dst for _, dst in left])


class _CommitFn(beam.DoFn):
    def __init__(self, spec: CommitSpec):
        self._spec = spec

    def process(self, stats: list[Stat]):
        manifest, renames = build_manifest(self._spec, stats)
        spec = self._spec
        # (output directory, its temporary directory): the variant output, the sample lookup
        outputs = [(p.output_dir, spec.temp_dir_of(p.output_dir))
                   for p in (spec.parquet, spec.sample_lookup) if p is not None]  # fmt: skip
        if spec.insert_run_rows:  # the tables were loaded: their companions' rows
            insert_run_rows(spec.bigquery, SAMPLE_INFO_SUFFIX, sample_info_rows(spec.run))
            insert_run_rows(spec.bigquery, HEADER_SUFFIX, header_rows(spec.run))
        if not outputs:
            with FileSystems.create(FileSystems.join(spec.temp_dir, MANIFEST)) as sink:
                sink.write(json.dumps(manifest, indent=2).encode("utf-8"))
            yield manifest["totals"]
            return
        # Each step can be run again: a runner retries a failed commit bundle.
        for out, temp_dir in outputs:
            removed = FileSystems.join(temp_dir, "_previous_output_removed")
            overwrite = spec.parquet.overwrite if spec.parquet else spec.sample_lookup.overwrite
            if overwrite and not FileSystems.exists(removed):
                _remove_previous_output(out)
                FileSystems.create(removed).close()
        for directory in sorted({final.rsplit("/", 1)[0] for _, final in renames}):
            if not FileSystems.exists(directory):
                FileSystems.mkdirs(directory)
        _move(renames)
        for out, _ in outputs:
            with FileSystems.create(FileSystems.join(out, SAMPLE_INFO)) as sink:
                pq.write_table(sample_info_table(spec.run), sink, compression="zstd")
        if spec.parquet is not None:
            with FileSystems.create(FileSystems.join(spec.parquet.output_dir, HEADER)) as sink:
                sink.write(("\n".join(spec.run.header_lines) + "\n").encode("utf-8"))
        for out, _ in outputs:
            with FileSystems.create(FileSystems.join(out, MANIFEST)) as sink:
                sink.write(json.dumps(manifest, indent=2).encode("utf-8"))
        for out, _ in outputs:
            with FileSystems.create(FileSystems.join(out, SUCCESS)):
                pass  # written last: a directory without it is not a finished run
        for out, temp_dir in outputs:
            temp_root = FileSystems.join(out, "_temporary")
            if FileSystems.exists(temp_dir):
                FileSystems.delete([temp_dir])
            if (
                FileSystems.exists(temp_root)
                and not FileSystems.match([FileSystems.join(temp_root, "*")])[0].metadata_list
            ):
                FileSystems.delete([temp_root])
        yield manifest["totals"]


class CommitOutput(beam.PTransform):
    """All stats -> renames and _manifest.json (runs once, after every write); yields the totals."""

    def __init__(self, spec: CommitSpec):
        super().__init__()
        self._spec = spec

    def expand(self, stats):
        return stats | "Gather" >> beam.combiners.ToList() | "Commit" >> beam.ParDo(_CommitFn(self._spec))
