from __future__ import annotations

import contextlib
import gc
import gzip
import io
import locale
import logging
import os
import subprocess
import sys
import tempfile
import traceback
import warnings
from pathlib import Path

import pysam.bcftools as bcftools
import pytest

REPO = Path(__file__).resolve().parent.parent
TESTDATA = REPO.parent / "shared" / "testdata"
VT_VCF = TESTDATA / "vt" / "vcf"
REAL = TESTDATA / "real"


def bcftools_query(path: Path, fmt: str) -> str:
    """`bcftools query -f FMT` (the bcftools built into pysam, so no system package is
    needed): an independent reading, not our reader."""
    with _readable_by_bcftools(path) as source:
        return bcftools.query("-f", fmt, source)


def bcftools_view(path: Path) -> str:
    """The file as bcftools writes it back (`bcftools view`): values as htslib reads them."""
    with _readable_by_bcftools(path) as source:
        return bcftools.view(source)


@contextlib.contextmanager
def _readable_by_bcftools(path: Path):
    text = Path(path).read_bytes()
    # bcftools reads neither bzip2 nor headers with a leading blank line, so hand it
    # the decompressed text with blank lines removed.
    if text[:3] == b"BZh":
        import bz2

        text = bz2.decompress(text)
    elif text[:2] == b"\x1f\x8b" and not _is_bcf(path):
        text = gzip.decompress(text)
    if _is_bcf(path):
        yield str(path)
        return
    # ... nor a trailing tab after the last sample name (also tolerated by us).
    lines = [line for line in text.split(b"\n") if line.strip()]
    lines = [line.rstrip() if line.startswith(b"#CHROM") else line for line in lines]
    with tempfile.NamedTemporaryFile(suffix=".vcf", delete=False) as f:
        f.write(b"\n".join(lines) + b"\n")
    try:
        yield f.name
    finally:
        os.unlink(f.name)


def bcftools_positions(path: Path) -> list[tuple[str, int]]:
    """(CHROM, POS) of every record, read by bcftools."""
    output = bcftools_query(path, "%CHROM\t%POS\n")
    rows = [line.split("\t") for line in output.splitlines()]
    return [(chrom, int(pos)) for chrom, pos in rows]


def _is_bcf(path: Path) -> bool:
    with open(path, "rb") as f:
        head = f.read(2)
    if head == b"\x1f\x8b":
        with gzip.open(path) as f:
            return f.read(3) == b"BCF"
    return head == b"BC"


@pytest.fixture
def write_vcf(tmp_path):
    """Writes a small VCF from lines (tabs as given) and returns its path."""

    def write(name: str, text: str, *, compress: str | None = None) -> str:
        data = text.encode("utf-8")
        path = tmp_path / name
        if compress == "gzip":
            data = gzip.compress(data)
        elif compress == "bzip2":
            import bz2

            data = bz2.compress(data)
        path.write_bytes(data)
        return str(path)

    return write


def generate_vcf(out: Path, variants: int, samples: int) -> Path:
    """A realistic VCF from the shared benchmark generator (deterministic: seed 42)."""
    generator = REPO.parent / "shared" / "bench" / "gen_vcf.py"
    subprocess.run(
        [sys.executable, str(generator), "--variants", str(variants), "--samples", str(samples),
         "--seed", "42", "--out", str(out)],
        check=True,
    )  # fmt: skip
    return out


MUTATION_BYTES = b"\t\n:;,=|/.0123456789-+eExACGT<>*\r\xff\x00 "


def mutate(rng, data: bytes) -> bytes:
    """1 to 6 random byte edits (replace, insert, delete) with bytes that matter to a VCF."""
    edited = bytearray(data)
    for _ in range(rng.randint(1, 6)):
        at = rng.randrange(len(edited))
        action = rng.random()
        if action < 0.4:
            edited[at] = rng.choice(MUTATION_BYTES)
        elif action < 0.7:
            edited.insert(at, rng.choice(MUTATION_BYTES))
        else:
            del edited[at]
    return bytes(edited)


def run_cli(*args: str, env_extra: dict | None = None) -> subprocess.CompletedProcess:
    """Runs `python -m variant_etl ARGS` from the repository root, in this process:
    `variant_etl.cli.main(ARGS)` with what a new process would have (its own stdout and stderr
    at the file-descriptor level, so Beam's workers and the CLI's own dup2() of fd 2 are
    captured; the environment plus env_extra; the repository as working directory; Python's
    default logging and warning settings). A traceback ends it with exit code 1, as it ends
    `python -m`. The result reads as that of subprocess.run(..., capture_output=True, text=True).

    The few tests about the process itself (exit codes of `python -m variant_etl`, the console
    script, a killed run) use run_cli_process."""
    from variant_etl.cli import main

    with _as_a_new_process(env_extra) as captured:
        try:
            returncode = main(list(args))
        except SystemExit as exit:  # how `python -m` turns SystemExit into an exit code
            if exit.code is None or isinstance(exit.code, int):
                returncode = exit.code or 0
            else:
                print(exit.code, file=sys.stderr)
                returncode = 1
        except Exception:
            traceback.print_exc()
            returncode = 1
    # launch keeps the collector off the objects that exist before its pipeline: it must give
    # them back, or this process (the whole test session) would never collect them again
    assert gc.get_freeze_count() == 0, f"{args[:1]} left {gc.get_freeze_count():,} objects frozen"
    return subprocess.CompletedProcess(
        ["python", "-m", "variant_etl", *args], returncode, captured["stdout"], captured["stderr"]
    )


def run_cli_process(*args: str, env_extra: dict | None = None, module: str = "variant_etl"):
    """Runs `python -m variant_etl ARGS` as a user would: a new process (of this Python, not the
    one on PATH), from the repository root."""
    env = dict(os.environ, **(env_extra or {}))
    return subprocess.run(
        [sys.executable, "-m", module, *args], capture_output=True, text=True, env=env, cwd=REPO
    )


# The warning filters of a Python started without -W or PYTHONWARNINGS (pytest adds its own).
_NEW_PROCESS_WARNING_FILTERS = [
    ("default", None, DeprecationWarning, "__main__", 0),
    ("ignore", None, DeprecationWarning, None, 0),
    ("ignore", None, PendingDeprecationWarning, None, 0),
    ("ignore", None, ImportWarning, None, 0),
    ("ignore", None, ResourceWarning, None, 0),
]


def _show_warning(message, category, filename, lineno, file=None, line=None):
    sys.stderr.write(warnings.formatwarning(message, category, filename, lineno, line))


@contextlib.contextmanager
def _as_a_new_process(env_extra: dict | None):
    captured: dict[str, str] = {}
    sys.stdout.flush()
    sys.stderr.flush()
    streams = sys.stdout, sys.stderr
    saved_fds = {fd: os.dup(fd) for fd in (1, 2)}
    files = {fd: tempfile.TemporaryFile() for fd in (1, 2)}
    environ, cwd = dict(os.environ), os.getcwd()
    root, beam = logging.getLogger(), logging.getLogger("apache_beam")
    logging_state = root.handlers[:], root.level, beam.level
    try:
        for fd, file in files.items():
            os.dup2(file.fileno(), fd)
        # Unbuffered, so that what the CLI, Beam's threads and its worker processes write to
        # one descriptor keeps its order.
        sys.stdout, sys.stderr = (
            io.TextIOWrapper(
                io.FileIO(fd, "w", closefd=False),
                encoding=like.encoding,
                errors=like.errors,
                write_through=True,
            )  # fmt: skip
            for fd, like in ((1, sys.__stdout__), (2, sys.__stderr__))
        )
        os.environ.update(env_extra or {})
        os.chdir(REPO)
        root.handlers, root.level = [], logging.WARNING
        beam.setLevel(logging.NOTSET)
        with warnings.catch_warnings():
            warnings.filters[:] = _NEW_PROCESS_WARNING_FILTERS
            warnings.showwarning = _show_warning
            yield captured
    finally:
        for stream in (sys.stdout, sys.stderr):
            stream.flush()
        sys.stdout, sys.stderr = streams
        for fd, saved in saved_fds.items():
            os.dup2(saved, fd)
            os.close(saved)
        for fd, name in ((1, "stdout"), (2, "stderr")):
            files[fd].seek(0)
            # as subprocess.run(text=True) reads a pipe: the locale's encoding, universal newlines
            captured[name] = io.TextIOWrapper(files[fd], encoding=locale.getpreferredencoding(False)).read()
        os.chdir(cwd)
        os.environ.clear()
        os.environ.update(environ)
        root.handlers, root.level = logging_state[0], logging_state[1]
        beam.setLevel(logging_state[2])


EMULATOR_REQUIREMENTS = REPO / "tests" / "bqemulator-requirements.txt"


def cache_dir() -> Path:
    """Where the tests keep what they build once per machine (emulators, Prism, virtualenvs)."""
    return Path(os.environ.get("VARIANT_ETL_CACHE", Path.home() / ".cache" / "variant_etl"))


def _emulator_venv() -> Path:
    """A virtualenv with the emulator, made once per machine (cached by requirements)."""
    import hashlib
    import sys

    digest = hashlib.sha256(EMULATOR_REQUIREMENTS.read_bytes()).hexdigest()[:12]
    venv = cache_dir() / f"bqemulator-{digest}"
    python = venv / "bin" / "python"
    if not (venv / "ready").exists():
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
        subprocess.run(
            [str(python), "-m", "pip", "install", "-q", "-r", str(EMULATOR_REQUIREMENTS)],
            check=True,
        )
        # Put the bundled DuckDB extensions where DuckDB looks, so nothing is downloaded.
        subprocess.run(
            [
                str(python),
                "-c",
                "from duckdb_extensions import import_extension as i; i('spatial'); i('avro')",
            ],
            check=True,
        )
        (venv / "ready").write_text("ok\n")
    return venv


@pytest.fixture(scope="session")
def bigquery_emulator():
    """A bqemulator process on 127.0.0.1 (REST); yields 'host:port' and stops it afterwards."""
    import socket
    import time
    import urllib.request

    venv = _emulator_venv()
    ports = []
    for _ in range(2):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            ports.append(s.getsockname()[1])
    log = open(Path(tempfile.gettempdir()) / f"bqemulator-{ports[0]}.log", "w")
    process = subprocess.Popen(
        [str(venv / "bin" / "bqemulator"), "start", "--rest-host", "127.0.0.1", "--rest-port", str(ports[0]),
         "--grpc-host", "127.0.0.1", "--grpc-port", str(ports[1]), "--project", "test-project",
         "--log-level", "warning"],
        stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    host = f"127.0.0.1:{ports[0]}"
    deadline = time.time() + 120
    while True:
        try:
            urllib.request.urlopen(f"http://{host}/bigquery/v2/projects/test-project/datasets", timeout=2)
            break
        except Exception:
            if process.poll() is not None or time.time() > deadline:
                log.close()
                raise RuntimeError(f"bqemulator did not start; see {log.name}") from None
            time.sleep(0.5)
    yield host
    process.terminate()
    process.wait(timeout=30)
    log.close()


class BigQuerySession:
    """A client on the emulator, a fresh dataset, and a launcher wired to both."""

    def __init__(self, host: str, temp: Path):
        import uuid

        from variant_etl.core.bigquery_tables import make_client

        self.host, self._temp = host, temp
        self.client = make_client("test-project")  # on the emulator: BIGQUERY_EMULATOR_HOST is set
        self.dataset = f"ds_{uuid.uuid4().hex[:8]}"
        self.client.create_dataset(self.dataset)

    def launch(self, table, *inputs, extra=()):
        import uuid

        args = ["launch", "--output_table", f"test-project:{self.dataset}.{table}",
                "--temp_location", str(self._temp / f"tmp-{uuid.uuid4().hex[:6]}")]  # fmt: skip
        for path in inputs:
            args += ["--input_pattern", str(path)]
        return run_cli(*args, *extra, env_extra={"BIGQUERY_EMULATOR_HOST": self.host})

    def query(self, sql):
        return [tuple(row.values()) for row in self.client.query(sql).result()]

    def tables(self, base):
        return sorted(
            t.table_id for t in self.client.list_tables(self.dataset) if t.table_id.startswith(base + "__")
        )


@pytest.fixture
def bq(bigquery_emulator, tmp_path, monkeypatch):
    """A BigQuerySession of its own for the test."""
    monkeypatch.setenv("BIGQUERY_EMULATOR_HOST", bigquery_emulator)
    return BigQuerySession(bigquery_emulator, tmp_path)


@pytest.fixture(scope="session")
def shared_launch(tmp_path_factory):
    """`launch ARGS --output_parquet_dir DIR`, run once per session for all the tests that
    launch exactly ARGS and only read the output: shared_launch(*ARGS) -> (result, DIR).
    A test that changes an output (a second launch into it, --overwrite, ...) makes its own."""
    root = tmp_path_factory.mktemp("shared")
    runs: dict[tuple[str, ...], tuple[subprocess.CompletedProcess, Path]] = {}

    def launch(*args) -> tuple[subprocess.CompletedProcess, Path]:
        key = tuple(str(arg) for arg in args)
        if key not in runs:
            out = root / f"run{len(runs):03d}" / "out"
            runs[key] = run_cli("launch", *key, "--output_parquet_dir", str(out)), out
        return runs[key]

    return launch


@pytest.fixture(scope="session")
def corpus_output(shared_launch):
    """`launch --infer_headers --allow_malformed_records` of one file of shared/testdata (name
    relative to TESTDATA), checked to have succeeded: its output directory. Launched once for
    test_all_test_files (the load) and test_export (the round trip)."""

    def output(name: str) -> Path:
        result, out = shared_launch(
            "--input_pattern", TESTDATA / name, "--infer_headers", "--allow_malformed_records"
        )
        assert result.returncode == 0, result.stderr
        return out

    return output


def pytest_collection_modifyitems(items):
    """Every test that uses the emulator is marked `bigquery` (-m "not bigquery" skips them)."""
    for item in items:
        if "bigquery_emulator" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.bigquery)


@pytest.fixture(scope="session")
def gcs_emulator():
    """A gcp-storage-emulator process (in memory) on 127.0.0.1; yields (its URL, its request
    log). Clients find it through STORAGE_EMULATOR_HOST."""
    import socket
    import time
    import urllib.request

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log_path = Path(tempfile.gettempdir()) / f"gcs-emulator-{port}.log"
    log = open(log_path, "w")
    process = subprocess.Popen(
        [sys.executable, "-u", "-m", "gcp_storage_emulator", "start", "--host", "127.0.0.1", "--port", str(port), "--in-memory"],
        stdout=log, stderr=subprocess.STDOUT, env=dict(os.environ, PYTHONUNBUFFERED="1"),
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    while True:
        try:
            urllib.request.urlopen(f"{url}/storage/v1/b", timeout=2)
            break
        except Exception:
            if process.poll() is not None or time.time() > deadline:
                log.close()
                raise RuntimeError(f"gcp-storage-emulator did not start; see {log_path}") from None
            time.sleep(0.2)
    yield url, log_path
    process.terminate()
    process.wait(timeout=30)
    log.close()


def prism_binary() -> Path:
    """Beam's Prism runner, built from the Go module registry at the Beam version installed,
    once per machine (``go install``; about 2.5 minutes)."""
    import apache_beam

    directory = cache_dir() / f"prism-{apache_beam.__version__}"
    binary = directory / "prism"
    if not binary.exists():
        module = f"github.com/apache/beam/sdks/v2/go/cmd/prism@v{apache_beam.__version__}"
        subprocess.run(["go", "install", module], check=True, env=dict(os.environ, GOBIN=str(directory)))
    return binary


@contextlib.contextmanager
def worker_pool(python: Path, env: dict, cwd: Path | None = None):
    """Beam's EXTERNAL worker pool, run by ``python`` (it starts SDK workers with the `python`
    on the PATH of ``env``), on a free port of 127.0.0.1; yields the port."""
    import socket
    import time

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    process = subprocess.Popen(
        [str(python), "-m", "apache_beam.runners.worker.worker_pool_main", f"--service_port={port}"],
        cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.time() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.time() > deadline or process.poll() is not None:
                    raise RuntimeError("the Beam worker pool did not start") from None
                time.sleep(0.3)
        yield port
    finally:
        process.terminate()
        process.wait(timeout=30)


def this_environment() -> dict:
    """os.environ with this Python's bin directory first on PATH (for a worker pool)."""
    return dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")


def refuse_outbound(monkeypatch) -> list:
    """Every socket connection but to 127.0.0.1 is refused from now on; returns the list of
    the addresses refused."""
    import socket

    refused = []
    connect = socket.socket.connect

    def loopback_only(self, address):
        if isinstance(address, tuple) and address[0] not in ("127.0.0.1", "::1", "localhost"):
            refused.append(address)
            raise ConnectionRefusedError(f"outbound connection to {address} refused by the test")
        return connect(self, address)

    monkeypatch.setattr(socket.socket, "connect", loopback_only)
    return refused
