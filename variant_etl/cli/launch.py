"""``launch``: the plan made, the BigQuery tables prepared, the pipeline run on the runner the
options name (DirectRunner by default), progress printed, a failed run cleaned up, the
summary and the report written."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import gc
import io
import json
import os
import shutil
import sys
import tempfile
import uuid

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems
from apache_beam.options.pipeline_options import (
    DebugOptions,
    DirectOptions,
    GoogleCloudOptions,
    PipelineOptions,
    StandardOptions,
    TestOptions,
)
from apache_beam.runners.portability.fn_api_runner import fn_runner
from apache_beam.transforms.environments import EmbeddedPythonGrpcEnvironment

from variant_etl.cli.planning import make_plan_of, print_plan
from variant_etl.core.errors import WRAPPED_ERROR
from variant_etl.core.layout import HEADER_SUFFIX, MANIFEST, SAMPLE_INFO_SUFFIX, TEMPORARY
from variant_etl.core.progress import ProgressOptions, ProgressPrinter
from variant_etl.core.run import header_rows, sample_info_rows
from variant_etl.core.sample_lookup import PARTITIONING, lookup_schema
from variant_etl.core.schema import bigquery_fields, field_descriptions
from variant_etl.filesystems import open_binary
from variant_etl.filesystems.claims import Claim, acquire, delete_tree, read_claim, release, remove_empty_dirs
from variant_etl.filesystems.claims import take_over as take_over_claim
from variant_etl.outputs.report import write_report
from variant_etl.pipeline import build
from variant_etl.plan.render import shown_shards
from variant_etl.plan.rules import check_output_dir
from variant_etl.sinks.commit import clean_up_dead_run
from variant_etl.sinks.tables import delete_tables, finish_tables, insert_run_rows, prepare_tables


def _beam_options(beam_args: list[str], *, verbose: bool = False, shuffles: bool = False):
    options = PipelineOptions(beam_args)
    if "--default_sdk_harness_log_level" not in " ".join(beam_args) and not verbose:
        # Worker processes log each failure with Beam's traceback; we print the cause ourselves.
        options = PipelineOptions(beam_args + ["--default_sdk_harness_log_level=CRITICAL"])
    standard = options.view_as(StandardOptions)
    if standard.runner is None:
        standard.runner = "DirectRunner"
    if _runner_name(options) in ("prismrunner", "prism"):
        # Beam shares one Prism job server per process, made with the options of the first
        # pipeline that asked (Beam's own DirectRunner asks, without --prism_location): each
        # launch gets its own, from its own options.
        options.view_as(DebugOptions).add_experiment("disable_prism_server_singleton")
    if standard.runner in ("DirectRunner", "direct"):
        direct = options.view_as(DirectOptions)
        if "--direct_num_workers" not in " ".join(beam_args):
            direct.direct_num_workers = 0  # all local cores
        if "--direct_running_mode" not in " ".join(beam_args):
            # Threads: the parsing, sharding and Parquet writing run in pyarrow with the GIL
            # released, and threads skip the ~3 s it takes to start Beam worker processes. A
            # merge through a shuffle keeps processes: 3 x 100k x 10 samples peak at 2.7 GB in
            # the largest process, 3.3-3.6 GB with threads (the 24 GB once measured with
            # threads was the half-element bug _FnApiRunner works around).
            direct.direct_running_mode = "multi_processing" if shuffles else "multi_threading"
    return options


def launch(args: argparse.Namespace, beam_args: list[str]) -> int:
    plan = make_plan_of(args)
    for name in ("temp_location", "project"):  # ours and Beam's
        if getattr(args, name):
            beam_args = [*beam_args, f"--{name}={getattr(args, name)}"]
    shuffles = plan.merge.strategy != "NONE" and not plan.region_splits
    if args.dry_run:  # Beam's own option: only DataflowRunner acts on it
        beam_args = [*beam_args, "--dry_run=True"]
    options = _beam_options(beam_args, verbose=args.verbose, shuffles=shuffles)
    dry_run = _dataflow_dry_run(options)
    if args.dry_run and not dry_run:
        print_plan(plan, args.format)
        return 0
    claims = _Claims(plan)
    if not dry_run:
        plan = claims.take(args.take_over)
    try:
        with _collector_off_the_modules():
            return _run(plan, options, args, claims, dry_run)
    finally:
        claims.release()


def _run(plan, options, args, claims, dry_run: bool) -> int:
    created = [] if dry_run else _prepare_bigquery(plan)
    progress = None if dry_run or args.no_progress else _progress(plan, options, args.progress_interval)
    try:
        with _worker_stderr(show=args.verbose):
            with beam.Pipeline(runner=_local_runner(options), options=options) as p:
                build(p, plan, progress=progress.options if progress else None, claims_held=claims.held)
        if progress is not None:
            progress.stop()
        if dry_run:
            print(
                f"dry run: DataflowRunner translated the job ({len(plan.inputs)} input file(s), "
                f"{len(plan.sharding.shards)} shards); nothing was uploaded or submitted"
            )
            return 0
        if plan.bigquery is not None:
            insert_run_rows(plan.bigquery, SAMPLE_INFO_SUFFIX, sample_info_rows(plan.run_info()))
            insert_run_rows(plan.bigquery, HEADER_SUFFIX, header_rows(plan.run_info()))
            finish_tables(plan.bigquery, created, plan.run_id)
    except BaseException:
        _remove_temporary(plan)
        claims.release()
        if created:
            delete_tables(plan.bigquery, created, plan.run_id)  # a retry starts clean
        raise
    finally:
        if progress is not None:
            progress.close()
    manifest_dir = (
        plan.parquet.output_dir
        if plan.parquet
        else (plan.sample_lookup.output_dir if plan.sample_lookup else plan.temp_dir)
    )
    with _remote(manifest_dir) as f:
        manifest = json.load(f)
    _print_summary(plan, manifest)
    if plan.parquet is not None:
        try:  # the run is complete and committed: a report that fails must not fail it
            print(f"report: {write_report(plan.parquet.output_dir)}", file=sys.stderr)
        except Exception as err:
            print(f"warning: {plan.parquet.output_dir}/_report.html not written ({err})", file=sys.stderr)
    return 0


@contextlib.contextmanager
def _collector_off_the_modules():
    """While the pipeline and the report run, the objects that exist before them (Beam's ~1,800
    modules, their functions and classes: about a million) are left out of the garbage
    collector's full passes, which otherwise walk them all each time (1M sites: 0.27 -> 0.13 s
    of collection)."""
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()  # (a caller in the same process, a test, gets its collector back whole)


def run_export_parts(pieces: list, writer, *, beam_args: list[str]) -> None:
    """``export`` with Beam options: a pipeline calls ``writer`` (outputs/export.PartWriter) on
    each piece of the export, spread over the workers; the command joins the parts."""
    options = _beam_options(beam_args)
    with beam.Pipeline(runner=_local_runner(options), options=options) as p:
        _ = (
            p
            | "Pieces" >> beam.Create(pieces, reshuffle=False)
            | "Distribute" >> beam.Reshuffle()
            | "WritePart" >> beam.Map(writer)
        )


def export_parts_dir(beam_args: list[str]) -> str | None:
    """Where a pipeline export's workers write the parts: under --temp_location when given
    (workers elsewhere see it), else beside the output (None)."""
    temp = PipelineOptions(beam_args).view_as(GoogleCloudOptions).temp_location
    return f"{temp.rstrip('/')}/variant_etl-export-{uuid.uuid4().hex}" if temp else None


_LOCAL_RUNNERS = ("directrunner", "direct", "bundlebaseddirectrunner", "switchingdirectrunner")


def _runner_name(options) -> str:
    """The runner the options name, as Beam matches it: the class name, lower case."""
    return (options.view_as(StandardOptions).runner or "").rsplit(".", 1)[-1].lower()


def _local_runner(options):
    """``DirectRunner`` (the default) as the tests run it: Beam's in-process FnApiRunner.
    Beam's own DirectRunner would first try Prism, which it downloads from GitHub and runs
    when the pipeline allows (Beam 2.77): a binary fetched at run time, on an engine not tested
    here. Other runners: None, so Beam picks the one the options name."""
    if _runner_name(options) not in ("directrunner", "direct", "switchingdirectrunner"):
        return None
    from apache_beam.portability.api import beam_provision_api_pb2
    from apache_beam.runners.portability.portable_runner import JobServiceHandle

    encoded = JobServiceHandle.encode_pipeline_options(options.get_all_options())
    provision = beam_provision_api_pb2.ProvisionInfo(pipeline_options=encoded)
    return _FnApiRunner(provision_info=fn_runner.ExtendedProvisionInfo(provision))


# Longer than any run: the timer's first flush never comes.
NO_TIMED_FLUSH_MS = 2**31 - 1


class _FnApiRunner(fn_runner.FnApiRunner):
    """Beam's FnApiRunner, with its worker threads' output flushed whole elements at a time.

    In ``multi_threading`` mode each worker thread also flushes its output buffer every
    second from a timer thread, whatever it is writing: an element being encoded then goes
    out in two data messages. The runner decodes each message of a shuffle's input on its
    own, and the half element decodes as garbage: GroupingBuffer.append allocated until the
    kernel killed the run at 24 GB (1 run in 2 of a 100-file merge, whose commit gathered a
    10 MB element). Without the timer, outputs flush at element boundaries (every 10 MB).
    """

    def run_pipeline(self, pipeline, options):
        with _short_state_sampling():
            direct = options.view_as(DirectOptions)
            if direct.direct_running_mode != "multi_threading":
                return super().run_pipeline(pipeline, options)
            # else FnApiRunner makes its threads' environment itself, with the timer
            self._default_environment = EmbeddedPythonGrpcEnvironment(
                data_buffer_time_limit_ms=NO_TIMED_FLUSH_MS
            )
            direct.direct_running_mode = None
            try:
                return super().run_pipeline(pipeline, options)
            finally:
                direct.direct_running_mode = "multi_threading"


# Beam's state sampler (the per-step timings of its metrics) wakes every 200 ms at most, and a
# bundle's end waits for it to wake and stop ("may have to wait up to sampling_period_ms", its
# own comment): a worker idle for up to 0.2 s at the end of every bundle.
LOCAL_SAMPLING_PERIOD_MS = 10


@contextlib.contextmanager
def _short_state_sampling():
    """Local runs sample every LOCAL_SAMPLING_PERIOD_MS: a bundle's end waits that long at most."""
    from apache_beam.runners.worker import statesampler

    defaults = statesampler.StateSampler.__init__.__defaults__
    statesampler.StateSampler.__init__.__defaults__ = (LOCAL_SAMPLING_PERIOD_MS,)
    try:
        yield
    finally:
        statesampler.StateSampler.__init__.__defaults__ = defaults


class _Progress:
    """Progress lines while a local run reads: a directory the readers write into, and the
    thread that prints what they wrote (on the real stderr, which _worker_stderr holds back)."""

    def __init__(self, plan, interval: float):
        self.options = ProgressOptions(tempfile.mkdtemp(prefix="variant_etl-progress-"), interval)
        self._out = os.fdopen(os.dup(2), "w", encoding="utf-8", errors="replace")
        self._printer = ProgressPrinter(
            self.options, self._out, splits_per_file=plan.splits_per_input(), windows=len(plan.region_splits)
        ).start()
        self._stopped = False

    def stop(self) -> None:
        self._stopped = True
        self._printer.stop()

    def close(self) -> None:
        if not self._stopped:  # a failed run: no summary line, just no more lines
            self._printer.stop_quietly()
        self._out.close()
        shutil.rmtree(self.options.directory, ignore_errors=True)


def _progress(plan, options, interval: float) -> _Progress | None:
    return _Progress(plan, interval) if _runner_name(options) in _LOCAL_RUNNERS else None


def _dataflow_dry_run(options) -> bool:
    """Beam's ``--dry_run=True``: DataflowRunner builds the job and returns before staging and
    submitting it (other runners ignore the option). Beam tests the option's string for truth."""
    dataflow = _runner_name(options) in ("dataflow", "dataflowrunner")
    return bool(options.view_as(TestOptions).dry_run) and dataflow


def _prepare_bigquery(plan) -> list[str]:
    if plan.bigquery is None:
        return []
    descriptions = field_descriptions(plan.schema)
    fields = bigquery_fields(plan.output_schema(), descriptions)
    created = prepare_tables(plan.bigquery, plan.sharding.shards, fields, run_id=plan.run_id)
    if plan.sample_lookup_bigquery is None:
        return created
    lookup_fields = bigquery_fields(lookup_schema(plan.output_schema()), descriptions)
    try:
        created += prepare_tables(
            plan.sample_lookup_bigquery,
            plan.sharding.shards,
            lookup_fields,
            partitioning=PARTITIONING,
            with_sample_info=False,
            run_id=plan.run_id,
        )
    except BaseException:
        delete_tables(plan.bigquery, created, plan.run_id)
        raise
    return created


def _print_summary(plan, manifest: dict) -> None:
    totals = manifest["totals"]
    print(
        f"read {totals['records_read']:,} records from {len(plan.inputs):,} file(s): "
        f"{totals['rows_written']:,} rows written, {totals['malformed']:,} malformed, "
        f"{totals['dropped_no_matching_shard']:,} dropped (no matching shard)"
    )
    shown, rest = shown_shards([s for s in manifest["shards"] if s["rows"] or s.get("bigquery_rows")])
    for shard in shown:
        where = f"{len(shard['files']):,} file(s)" if plan.parquet else shard["bigquery_table"]
        rows = shard["rows"] or shard.get("bigquery_rows")
        print(f"  {shard['table_name_suffix']}: {rows:,} rows in {where}")
    if rest:
        rows = sum(s["rows"] or s.get("bigquery_rows") or 0 for s in rest)
        print(
            f"  ... and {len(rest):,} more shards ({rest[0]['table_name_suffix']} to "
            f"{rest[-1]['table_name_suffix']}): {rows:,} rows (the manifest and report list all)"
        )
    if totals.get("number_a_values_matched"):
        print(
            f"{totals['number_a_values_matched']:,} record(s) had more or fewer Number=A values than ALTs: "
            "loaded with the values matched to the ALTs by index (--allow_malformed_records; "
            "number_a_values_matched in the manifest)"
        )
    if totals.get("several_values_cast_to_first"):
        print(
            f"{totals['several_values_cast_to_first']:,} record(s) had several values for a Number=1 "
            "number: loaded with the first (--allow_incompatible_records; several_values_cast_to_first "
            "in the manifest)"
        )
    if plan.parquet is not None:
        out = plan.parquet.output_dir
        print(f"output: {out}/  (manifest: {out}/{MANIFEST})")
        # DuckDB's Python package comes with ours (pip does not install its command-line tool)
        print(
            'query:  python -c "import duckdb; duckdb.sql(\\"SELECT reference_name, count(*) '
            f"FROM read_parquet('{out}/*/*.parquet') GROUP BY 1 ORDER BY 1\\\").show()\""
        )
    if plan.bigquery is not None:
        bq = plan.bigquery
        loaded = totals.get("rows_loaded_to_bigquery")
        print(f"BigQuery: {bq.project}.{bq.dataset}.{bq.table}__<suffix>, {_count(loaded)} rows")
    if plan.sample_lookup is not None:
        out = plan.sample_lookup.output_dir
        print(
            f"sample lookup: {out}/<table_name_suffix>/*.parquet, "
            f"{totals['sample_lookup_rows_written']:,} rows (one per call), sorted by sample_id"
        )
    if plan.sample_lookup_bigquery is not None:
        bq = plan.sample_lookup_bigquery
        loaded = totals.get("sample_lookup_rows_loaded_to_bigquery")
        print(f"sample lookup tables: {bq.project}.{bq.dataset}.{bq.table}__<suffix>, {_count(loaded)} rows")


def _count(value) -> str:
    return f"{value:,}" if isinstance(value, int) else str(value)


def _remove_temporary(plan) -> None:
    """A failed run leaves no partial output: its own temporary files go, and the directories
    it created if they are empty. Nothing else: ``_temporary/`` may hold another run's files."""
    with contextlib.suppress(Exception):
        own = [plan.temp_dir] + ([plan.bigquery.temp_dir] if plan.bigquery else [])
        outs = [options.output_dir for options, _ in plan.parquet_outputs()]
        own += [FileSystems.join(out, TEMPORARY, plan.run_id) for out in outs]
        for path in dict.fromkeys(own):
            delete_tree(path)
        remove_empty_dirs([FileSystems.join(out, TEMPORARY) for out in outs])


class _Claims:
    """The claims of a launch on its output directories (sinks/claims.py): taken before any
    work, given up at its end, whether it succeeded or not."""

    def __init__(self, plan):
        self._plan = plan
        self._claimed: list[str] = []
        self._created: list[str] = []  # directories the claims made
        self.held = False

    def take(self, take_over: str | None):
        """Claims every output directory, or none; returns the plan with what it saw in them."""
        plan = self._plan
        try:
            for options, flag in plan.parquet_outputs():
                out = options.output_dir
                claim = Claim.new(plan.run_id)
                holder = read_claim(out) if take_over else None
                if holder is not None and holder.run_id == take_over:
                    take_over_claim(out, take_over, claim, flag)
                    self._claimed.append(out)
                    removed = clean_up_dead_run(out, take_over)
                    extra = f" and {len(removed)} file(s) of its unfinished commit" if removed else ""
                    print(f"took over {out} from {holder.describe()}: removed its temporary files{extra}",
                          file=sys.stderr)  # fmt: skip
                else:
                    self._created += acquire(out, claim, flag)
                    self._claimed.append(out)
            seen = []
            for options, flag in plan.parquet_outputs():  # checked again: no other run can change it now
                out = options.output_dir
                seen.append((out, check_output_dir(out, options.overwrite, flag, claimed_by=plan.run_id)))
        except BaseException:
            self.release()
            raise
        self.held = bool(self._claimed)
        self._plan = dataclasses.replace(plan, seen=tuple(seen))
        return self._plan

    def release(self) -> None:
        for out in self._claimed:
            with contextlib.suppress(Exception):
                release(out, self._plan.run_id)
        self._claimed = []
        remove_empty_dirs(self._created)  # deepest first; only if empty
        self._created = []


@contextlib.contextmanager
def _worker_stderr(*, show: bool):
    """Holds back what Beam's worker processes print to stderr (each failure's full
    traceback, unconditionally). Shown on --verbose, or when the failure is not ours."""
    if show:
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as held:
        os.dup2(held.fileno(), 2)
        try:
            yield
        except Exception as err:
            if not WRAPPED_ERROR.search(str(err)):
                os.dup2(saved, 2)
                held.seek(0)
                sys.stderr.write(held.read().decode("utf-8", errors="replace"))
            raise
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)


def _remote(out: str):
    with open_binary(f"{out}/{MANIFEST}") as f:
        return io.StringIO(f.read().decode("utf-8"))
