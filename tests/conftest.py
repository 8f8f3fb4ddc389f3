from __future__ import annotations

import contextlib
import gzip
import os
import subprocess
import sys
import tempfile
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
    """Runs `python -m variant_etl ...` as a user would."""
    env = dict(os.environ, **(env_extra or {}))
    return subprocess.run(
        ["python", "-m", "variant_etl", *args], capture_output=True, text=True, env=env, cwd=REPO
    )


EMULATOR_REQUIREMENTS = REPO / "tests" / "bqemulator-requirements.txt"


def _emulator_venv() -> Path:
    """A virtualenv with the emulator, made once per machine (cached by requirements)."""
    import hashlib
    import sys

    digest = hashlib.sha256(EMULATOR_REQUIREMENTS.read_bytes()).hexdigest()[:12]
    root = Path(os.environ.get("VARIANT_ETL_CACHE", Path.home() / ".cache" / "variant_etl"))
    venv = root / f"bqemulator-{digest}"
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


@pytest.fixture
def bq(bigquery_emulator, tmp_path):
    """A client on the emulator, a fresh dataset, and a launcher wired to both."""
    import uuid

    from variant_etl.core.bigquery_tables import make_client

    os.environ["BIGQUERY_EMULATOR_HOST"] = bigquery_emulator
    client = make_client("test-project")
    dataset = f"ds_{uuid.uuid4().hex[:8]}"
    client.create_dataset(dataset)

    class Session:
        def __init__(self):
            self.client = client
            self.dataset = dataset
            self.host = bigquery_emulator

        def launch(self, table, *inputs, extra=()):
            args = ["launch", "--output_table", f"test-project:{dataset}.{table}",
                    "--temp_location", str(tmp_path / f"tmp-{uuid.uuid4().hex[:6]}")]  # fmt: skip
            for path in inputs:
                args += ["--input_pattern", str(path)]
            return run_cli(*args, *extra, env_extra={"BIGQUERY_EMULATOR_HOST": bigquery_emulator})

        def query(self, sql):
            return [tuple(row.values()) for row in client.query(sql).result()]

        def tables(self, base):
            return sorted(
                t.table_id for t in client.list_tables(dataset) if t.table_id.startswith(base + "__")
            )

    return Session()
