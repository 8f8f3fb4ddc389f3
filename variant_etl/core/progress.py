"""Progress of a local run: readers write small JSON files, the launching process prints them.

DirectRunner may run the readers in other processes (``multi_processing``), whose stderr
``launch`` holds back; files in a local directory reach the launcher whatever the mode. Each
read split (or merge window) has one file, named after its key and rewritten in place every
``interval`` seconds and when it finishes, so a retried split replaces its own numbers instead
of adding to them.
"""

from __future__ import annotations

import dataclasses
import json
import os
import threading
import time
from typing import TextIO

from variant_etl.core.options import PROGRESS_INTERVAL


@dataclasses.dataclass(frozen=True)
class ProgressOptions:
    directory: str  # local: only runners whose workers share the launcher's disk get one
    interval: float = PROGRESS_INTERVAL  # seconds between a split's writes, and between lines


class ProgressWriter:
    """The records one split has read so far."""

    def __init__(self, options: ProgressOptions | None, key: str, paths: list[str]):
        self._options = options
        self._key = key
        self._paths = paths
        self._records = 0
        self._written_at = time.monotonic()

    def add(self, records: int) -> None:
        self._records += records
        if self._options is not None and time.monotonic() - self._written_at >= self._options.interval:
            self._write(done=False)

    def done(self, records: int | None = None) -> None:
        if records is not None:
            self._records = records
        if self._options is not None:
            self._write(done=True)

    def _write(self, *, done: bool) -> None:
        self._written_at = time.monotonic()
        path = os.path.join(self._options.directory, f"{self._key}.json")
        temporary = f"{path}.{os.getpid()}.{threading.get_ident()}.tmp"
        try:
            with open(temporary, "w", encoding="utf-8") as f:
                json.dump({"records": self._records, "done": done, "paths": self._paths}, f)
            os.replace(temporary, path)  # the reader of these files never sees half of one
        except OSError:
            pass  # progress is only shown, never needed: a full disk must not fail the run


@dataclasses.dataclass(frozen=True)
class Snapshot:
    records: int
    files_done: int
    units_done: int  # splits or merge windows finished


def snapshot(directory: str, splits_per_file: dict[str, int]) -> Snapshot:
    """Adds up the progress files; a file is done when all its splits are."""
    records = units = 0
    finished: dict[str, int] = {}
    try:
        names = os.listdir(directory)
    except OSError:
        names = []
    for name in names:
        if not name.endswith(".json"):
            continue
        try:
            with open(os.path.join(directory, name), encoding="utf-8") as f:
                entry = json.load(f)
        except (OSError, ValueError):
            continue  # removed meanwhile
        records += entry["records"]
        if entry["done"]:
            units += 1
            for path in entry["paths"]:
                finished[path] = finished.get(path, 0) + 1
    files = sum(1 for path, count in finished.items() if count >= splits_per_file.get(path, 1))
    return Snapshot(records, files, units)


class ProgressPrinter:
    """A thread printing ``progress: 3/10 files, 1,234,567 records, 95,000 records/s`` lines."""

    def __init__(
        self,
        options: ProgressOptions,
        out: TextIO,
        *,
        splits_per_file: dict[str, int],
        windows: int = 0,  # merging indexed inputs: progress counts windows, not files
    ):
        self._options = options
        self._out = out
        self._splits = splits_per_file
        self._windows = windows
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="variant_etl-progress", daemon=True)
        self._started = time.monotonic()
        self._last = (self._started, 0)

    def start(self) -> ProgressPrinter:
        os.makedirs(self._options.directory, exist_ok=True)
        self._started = time.monotonic()
        self._last = (self._started, 0)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self._options.interval):
            now, found = time.monotonic(), snapshot(self._options.directory, self._splits)
            then, before = self._last
            rate = (found.records - before) / max(now - then, 1e-9)
            self._last = (now, found.records)
            self._print(f"{self._done(found)}, {found.records:,} records, {rate:,.0f} records/s")

    def stop(self) -> Snapshot:
        """Stops the thread and prints the last line: what every reader reported."""
        self._stop.set()
        self._thread.join()
        found = snapshot(self._options.directory, self._splits)
        seconds = time.monotonic() - self._started
        self._print(
            f"done, {self._done(found)}, {found.records:,} records in {seconds:.1f} s, "
            f"{found.records / max(seconds, 1e-9):,.0f} records/s"
        )
        return found

    def stop_quietly(self) -> None:
        self._stop.set()
        self._thread.join()

    def _done(self, found: Snapshot) -> str:
        if self._windows:
            return f"{found.units_done}/{self._windows} windows"
        return f"{found.files_done}/{len(self._splits)} files"

    def _print(self, line: str) -> None:
        try:
            self._out.write(f"progress: {line}\n")
            self._out.flush()
        except (OSError, ValueError):
            pass
