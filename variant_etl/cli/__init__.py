"""Command line: ``python -m variant_etl <command>`` (also ``variant-etl``).

Commands: ``launch`` runs the pipeline; ``plan`` (or ``launch --dry_run``) prints what launch
would do; ``report`` writes an HTML report of an output; ``validate-config`` checks a sharding
YAML; ``export`` writes an output back to VCF; ``query`` selects from an output with DuckDB.
Options this parser does not know (``--runner``, ``--project``, ``--direct_num_workers``, ...)
go to Beam, if Beam knows them: anything else is an error, as is an option that has no effect
with the others given.

The package: ``parser`` (the options, one group per stage, defaults from core/options.py),
``rules`` (Beam's options, combinations), ``planning`` (arguments -> Plan), ``commands`` (what
each command does and prints), ``launch`` (running the pipeline). Only ``launch`` and
``plan`` import Beam.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import os
import sys

from variant_etl.core.errors import WRAPPED_ERROR, VariantEtlError


def _anonymous_gcs_for_an_emulator() -> None:
    if os.environ.get("STORAGE_EMULATOR_HOST"):  # else Beam is not imported here: a fast start
        from variant_etl.filesystems import anonymous_gcs_for_an_emulator

        anonymous_gcs_for_an_emulator()


@contextlib.contextmanager
def _collector_off():
    """No garbage collection while the command's modules load: loading Beam makes about a
    million objects that live as long as the process, and the full collections their number
    sets off find nothing (0.4 s of a launch's start)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def process_main() -> int:
    """The process's entry point (``variant-etl``, ``python -m variant_etl``): ``main``, then
    everything left marked permanent, so that the interpreter's exit does not run full
    garbage collections over Beam's modules (~0.45 s of every command that imported it)."""
    code = main()
    gc.freeze()
    return code


def main(argv: list[str] | None = None) -> int:
    """Runs one command; returns its exit code: 0, 2 for an error of ours found before the
    run (one line ``error: ...`` on stderr), 1 for one raised while running."""
    from variant_etl.cli import commands
    from variant_etl.cli.rules import parse_args

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        with _collector_off():
            _anonymous_gcs_for_an_emulator()
            args, beam_args = parse_args(argv)
            commands.load(args.command)
        if not getattr(args, "verbose", False):
            # Beam's workers log every failure with its traceback; we print the cause ourselves.
            logging.getLogger("apache_beam").setLevel(logging.CRITICAL)
        return commands.run(args, beam_args)
    except VariantEtlError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except Exception as err:  # Beam wraps worker exceptions; show ours without the traceback
        match = WRAPPED_ERROR.search(str(err))
        if match:
            print(f"error: {match.group(2)}", file=sys.stderr)
            return 1
        raise
