"""The commit step: once every write is done, the stats are added up into ``_manifest.json``
(core/manifest.py: every record accounted for, or nothing is committed), the temporary files
are moved into place, and ``_SUCCESS`` is written last. Also the dead-letter writer."""

from __future__ import annotations

import json
import os
import uuid
from collections import Counter

import apache_beam as beam
import pyarrow.parquet as pq
from apache_beam.io.filesystems import FileSystems
from apache_beam.transforms.window import GlobalWindows

from variant_etl.core import qc
from variant_etl.core.errors import OutputError
from variant_etl.core.layout import (
    HEADER,
    HEADER_SUFFIX,
    JOURNAL,
    MALFORMED_DIR,
    MANIFEST,
    SAMPLE_INFO,
    SAMPLE_INFO_SUFFIX,
    SUCCESS,
    TEMPORARY,
)
from variant_etl.core.manifest import CommitSpec, build_manifest, files_of
from variant_etl.core.options import ParquetOptions
from variant_etl.core.run import header_rows, sample_info_rows, sample_info_table
from variant_etl.core.stats import Kind, Stat
from variant_etl.filesystems.claims import (
    Claim,
    acquire,
    delete_tree,
    listed_files,
    read_claim,
    read_manifest,
    release,
    remove_empty_dirs,
)
from variant_etl.sinks.tables import finish_tables, insert_run_rows


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


def _exists(path: str) -> bool:
    return os.path.lexists(path) if "://" not in path else FileSystems.exists(path)


def _delete_existing(paths: list[str]) -> None:
    paths = [path for path in paths if _exists(path)]
    if paths:
        FileSystems.delete(paths)


def _read_json(path: str) -> dict | None:
    """A JSON file of ours, or None if it is missing or was cut short by a kill."""
    if not _exists(path):
        return None
    with FileSystems.open(path) as f:
        data = f.read()
    try:
        return json.loads(data.decode("utf-8"))
    except (ValueError, UnicodeDecodeError):
        return None


def _write_whole(path: str, data: bytes, staging_dir: str) -> None:
    """Writes ``path`` so that it appears whole or not at all: staged, then renamed."""
    staged = FileSystems.join(staging_dir, f"{uuid.uuid4().hex}.staged")
    with FileSystems.create(staged) as sink:
        sink.write(data)
    FileSystems.rename([staged], [path])


def _move(renames: list[tuple[str, str]]) -> None:
    """Moves the files into place; on a second try, only those not moved yet."""
    if not renames:
        return
    try:
        FileSystems.rename([src for src, _ in renames], [dst for _, dst in renames])
        return
    except Exception:  # BeamIOError: some sources are gone, moved by an earlier attempt
        pass
    moved = {src: not _exists(src) for src, _ in renames}
    left = [(src, dst) for src, dst in renames if not moved[src]]
    lost = [dst for src, dst in renames if moved[src] and not _exists(dst)]
    if lost:
        raise OutputError(
            f"{lost[0]}: neither its temporary file nor the file itself exists; nothing more is moved"
        )
    if left:
        FileSystems.rename([src for src, _ in left], [dst for _, dst in left])


def _under(out: str, path: str) -> bool:
    return path.startswith(out.rstrip("/") + "/")


def _relative(out: str, path: str) -> str:
    return path[len(out.rstrip("/")) + 1 :]


class _Output:
    """One output directory of the commit, and this run's files in it."""

    def __init__(self, spec: CommitSpec, options: ParquetOptions, renames: list[tuple[str, str]]):
        self.options = options
        self.out = options.output_dir
        self.current: dict | None = None  # the manifest in place when the commit starts
        self.flag = "--sample_lookup_parquet_dir" if options is spec.sample_lookup else "--output_parquet_dir"
        self.temp_dir = spec.temp_dir_of(self.out)
        self.renames = [(src, dst) for src, dst in renames if _under(self.out, dst)]
        self.journal_path = FileSystems.join(self.temp_dir, JOURNAL)
        self.removed_marker = FileSystems.join(self.temp_dir, "_previous_output_removed")

    def committed(self, run_id: str) -> bool:
        """Its manifest is this run's: a retry has only the last steps to do."""
        return self.current is not None and self.current.get("run_id") == run_id


def commit_files(spec: CommitSpec, manifest: dict, renames: list[tuple[str, str]]) -> None:
    """Puts a run's files in place. Every step can be run again (a runner retries a failed
    commit bundle), and a kill between any two steps leaves either the previous complete
    output or no ``_SUCCESS`` and no ``_manifest.json``:

    1. the claims: held by this run, or taken now; another run's stops the commit;
    2. each directory is checked to be what the plan saw (empty, or the output --overwrite
       replaces, and nothing else), then what the commit will do is written to the run's
       temporary directory (``_commit.json``: a run taking over after a kill reads it);
    3. the previous output goes, ``_SUCCESS`` and ``_manifest.json`` first;
    4. the files are moved, then ``__sample_info.parquet`` and ``_header.vcf`` written, then
       ``_manifest.json`` (staged and renamed: whole or absent), then ``_SUCCESS``;
    5. the run's temporary directory goes, and the claims (if the commit took them).
    """
    run_id = spec.run.run_id
    outputs = [_Output(spec, options, renames) for options in (spec.parquet, spec.sample_lookup) if options]
    taken = []  # claims this commit took: given back if it stops before changing anything
    try:
        for output in outputs:
            holder = read_claim(output.out)
            if holder is not None and holder.run_id == run_id:
                continue
            if spec.claims_held:
                what = f"is now claimed by {holder.describe()}" if holder else "is no longer claimed by it"
                raise OutputError(
                    f"{output.flag} {output.out} {what}, though this run ({run_id}) claimed it at its "
                    "start; nothing was moved. Hint: a run given --take_over that run id took it over."
                )
            acquire(output.out, Claim.new(run_id), output.flag)
            taken.append(output.out)
        for output in outputs:
            output.current = read_manifest(output.out)
        pending = [output for output in outputs if not output.committed(run_id)]
        for output in pending:
            if _read_json(output.journal_path) is None:  # not a retry: check, then say what comes
                previous = _check_unchanged(output, spec.previous_run(output.out))
                journal = {
                    "run_id": run_id,
                    "previous_run": previous["run_id"] if previous else None,
                    "previous_files": files_of(previous, output.out) if previous else [],
                    "renames": output.renames,
                }
                _write_whole(output.journal_path, json.dumps(journal).encode("utf-8"), output.temp_dir)
    except Exception:
        for out in taken:
            release(out, run_id)
        raise
    for output in pending:
        journal = _read_json(output.journal_path)
        if journal["previous_files"] and not _exists(output.removed_marker):
            _remove_previous_output(output.out, journal["previous_files"])
            FileSystems.create(output.removed_marker).close()
    moves = [move for output in pending for move in output.renames]
    for directory in sorted({final.rsplit("/", 1)[0] for _, final in moves}):
        if not _exists(directory):
            FileSystems.mkdirs(directory)
    _move(moves)
    for output in pending:
        with FileSystems.create(FileSystems.join(output.out, SAMPLE_INFO)) as sink:
            pq.write_table(sample_info_table(spec.run), sink, compression="zstd")
        if output.options is spec.parquet:
            with FileSystems.create(FileSystems.join(output.out, HEADER)) as sink:
                sink.write(("\n".join(spec.run.header_lines) + "\n").encode("utf-8"))
    data = json.dumps(manifest, indent=2).encode("utf-8")
    for output in pending:
        _write_whole(FileSystems.join(output.out, MANIFEST), data, output.temp_dir)
    for output in outputs:
        with FileSystems.create(FileSystems.join(output.out, SUCCESS)):
            pass  # written last: a directory without it is not a finished run
    for output in outputs:
        delete_tree(output.temp_dir)
        remove_empty_dirs([FileSystems.join(output.out, TEMPORARY)])
        if not spec.claims_held:
            release(output.out, run_id)


def _check_unchanged(output: _Output, seen: str | None) -> dict | None:
    """The directory holds what the plan saw, or the commit stops before it changes anything.
    Returns the manifest of the output it replaces (--overwrite), or None."""
    current = output.current
    current_run = current.get("run_id") if current else None
    if current_run != seen:
        now = f"now holds the completed output of run {current_run}" if current else "no longer holds it"
        was = f"the output of run {seen}, which --overwrite replaces" if seen else "no completed output"
        raise OutputError(
            f"{output.flag} {output.out} changed while this run ran: its plan saw {was}, and it {now}. "
            "Nothing was moved. Hint: another run wrote into it; rerun once it is done."
        )
    own = set(files_of(current, output.out)) if current else set()
    foreign = [name for name in listed_files(output.out) if name not in own]
    if foreign:
        raise OutputError(
            f"{output.flag} {output.out} changed while this run ran: it holds {len(foreign)} file(s) "
            f"no run of its plan wrote ({', '.join(foreign[:3])}{', ...' if len(foreign) > 3 else ''}). "
            "Nothing was moved. Hint: another process writes into it; move those files away and rerun."
        )
    return current


def _remove_previous_output(out: str, names: list[str]) -> None:
    """--overwrite: the replaced run's files, its markers first; nothing else. Its directories
    go if they are empty then."""
    first = [name for name in (SUCCESS, MANIFEST) if name in names]
    _delete_existing([FileSystems.join(out, name) for name in first])
    _delete_existing([FileSystems.join(out, name) for name in names if name not in first])
    directories = sorted({name.rsplit("/", 1)[0] for name in names if "/" in name}, reverse=True)
    remove_empty_dirs([FileSystems.join(out, name) for name in directories])


def clean_up_dead_run(out: str, run_id: str) -> list[str]:
    """After taking over the claim of run ``run_id``, which died: its temporary files go, and
    so does what its commit had put in place if the commit did not finish; an output left whole
    but for its ``_SUCCESS`` gets it back. Returns what was removed from the output itself
    (relative paths)."""
    temp_dir = FileSystems.join(out, TEMPORARY, run_id)
    journal = _read_json(FileSystems.join(temp_dir, JOURNAL))
    current = read_manifest(out)
    removed: list[str] = []
    if journal is not None and current is None:
        # Its commit had begun and not finished: the output it replaced (if any) had lost its
        # markers already, so what is left of both goes.
        names = set(journal["previous_files"]) | {SUCCESS, MANIFEST, SAMPLE_INFO, HEADER}
        names |= {_relative(out, dst) for src, dst in journal["renames"] if not _exists(src)}
        removed = sorted(name for name in names if _exists(FileSystems.join(out, name)))
        _remove_previous_output(out, sorted(names))  # also the directories they leave empty
    elif current is not None and not _exists(FileSystems.join(out, SUCCESS)):
        # A complete output without its last marker: the dead run's (killed just before
        # _SUCCESS), or the one it was to replace (killed just after removing its _SUCCESS,
        # before any of its files). Either is whole: it gets _SUCCESS back.
        previous = journal["previous_run"] if journal else None
        if current.get("run_id") in (run_id, previous) and journal is not None:
            FileSystems.create(FileSystems.join(out, SUCCESS)).close()
    delete_tree(temp_dir)
    remove_empty_dirs([FileSystems.join(out, TEMPORARY)])
    return removed


class _CommitFn(beam.DoFn):
    def __init__(self, spec: CommitSpec):
        self._spec = spec

    def process(self, stats: list[Stat]):
        manifest, renames = build_manifest(self._spec, stats)
        spec = self._spec
        if spec.insert_run_rows:  # the tables were loaded: their companions' rows
            insert_run_rows(spec.bigquery, SAMPLE_INFO_SUFFIX, sample_info_rows(spec.run))
            insert_run_rows(spec.bigquery, HEADER_SUFFIX, header_rows(spec.run))
            suffixes = [shard.suffix for shard in spec.sharding.shards]
            tables = [spec.bigquery.table_id(s) for s in [*suffixes, SAMPLE_INFO_SUFFIX, HEADER_SUFFIX]]
            if spec.sample_lookup_bigquery is not None:
                tables += [spec.sample_lookup_bigquery.table_id(s) for s in suffixes]
            finish_tables(spec.bigquery, tables, spec.run.run_id)
        if spec.parquet is None and spec.sample_lookup is None:
            with FileSystems.create(FileSystems.join(spec.temp_dir, MANIFEST)) as sink:
                sink.write(json.dumps(manifest, indent=2).encode("utf-8"))
        else:
            commit_files(spec, manifest, renames)
        yield manifest["totals"]


class _GatherStats(beam.CombineFn):
    """All stats as one list, the counts of each (kind, key) added up on the way. A 100-file
    merge sends a count per file per window (64,000): as a plain list they made one 10 MB
    element."""

    def create_accumulator(self):
        # {(kind, key): count}, {shard: QC counts}, and every other stat (or stray element) as sent
        return {}, {}, []

    def add_input(self, accumulator, stat):
        counts, qc_counts, others = accumulator
        if isinstance(stat, Stat) and type(stat.value) is int:
            counts[stat.kind, stat.key] = counts.get((stat.kind, stat.key), 0) + stat.value
        elif isinstance(stat, Stat) and stat.kind is Kind.QC:
            qc_counts[stat.key] = qc.add(qc_counts.get(stat.key, {}), stat.value)
        else:
            others.append(stat)
        return accumulator

    def merge_accumulators(self, accumulators):
        counts, qc_counts, others = self.create_accumulator()
        for more_counts, more_qc, more_others in accumulators:
            for key, count in more_counts.items():
                counts[key] = counts.get(key, 0) + count
            for key, value in more_qc.items():
                qc_counts[key] = qc.add(qc_counts.get(key, {}), value)
            others.extend(more_others)
        return counts, qc_counts, others

    def extract_output(self, accumulator):
        counts, qc_counts, others = accumulator
        gathered = [Stat(kind, key, count) for (kind, key), count in counts.items()]
        return gathered + [Stat(Kind.QC, key, value) for key, value in qc_counts.items()] + others


class CommitOutput(beam.PTransform):
    """All stats -> renames and _manifest.json (runs once, after every write); yields the totals."""

    def __init__(self, spec: CommitSpec):
        super().__init__()
        self._spec = spec

    def expand(self, stats):
        gathered = stats | "Gather" >> beam.CombineGlobally(_GatherStats())
        return gathered | "Commit" >> beam.ParDo(_CommitFn(self._spec))
