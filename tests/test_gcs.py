"""gs:// end to end on gcp-storage-emulator: inputs read from and outputs written to the
emulator equal a local run's, with anonymous credentials and no metadata server."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from conftest import REPO, VT_VCF, refuse_outbound, run_cli
from test_engines import output

INPUTS = [
    VT_VCF / "valid-4.0.vcf",
    VT_VCF / "invalid-4.0-POS-empty.vcf",  # a malformed record
    REPO / "examples" / "data" / "cohort_189_samples.vcf.gz",  # bgzip, samples
    REPO / "examples" / "data" / "clinvar_subset.vcf.gz",  # bgzip with its .tbi
    REPO / "examples" / "data" / "clinvar_subset.vcf.gz.tbi",
]
OPTIONS = ["--allow_malformed_records", "--allow_incompatible_records", "--read_split_bytes", "20000"]


@pytest.fixture
def bucket(gcs_emulator, monkeypatch):
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    url, _ = gcs_emulator
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", url)
    client = storage.Client(project="p", credentials=AnonymousCredentials())
    name = f"b{len(list(client.list_buckets()))}"
    bucket = client.create_bucket(name)
    for path in INPUTS:
        bucket.blob(f"in/{path.name}").upload_from_filename(str(path))
    return bucket


def _download(bucket, prefix: str, target: Path) -> Path:
    for blob in bucket.list_blobs(prefix=prefix + "/"):
        path = target / blob.name[len(prefix) + 1 :]
        path.parent.mkdir(parents=True, exist_ok=True)
        blob.download_to_filename(str(path))
    return target


def test_a_gcs_run_equals_the_local_run_without_credentials_or_metadata_server(bucket, tmp_path, monkeypatch):
    local_in = tmp_path / "in"
    local_in.mkdir()
    for path in INPUTS:
        shutil.copy(path, local_in / path.name)
    patterns = ["--input_pattern", "{}/*.vcf", "--input_pattern", "{}/*.vcf.gz"]
    local = run_cli(
        "launch", *[p.format(local_in) for p in patterns], *OPTIONS,
        "--output_parquet_dir", str(tmp_path / "out"), "--sample_lookup_parquet_dir", str(tmp_path / "lookup"),
    )  # fmt: skip
    assert local.returncode == 0, local.stderr

    contacted = refuse_outbound(monkeypatch)
    gs = f"gs://{bucket.name}"
    remote = run_cli(
        "launch", *[p.format(f"{gs}/in") for p in patterns], *OPTIONS,
        "--output_parquet_dir", f"{gs}/out", "--sample_lookup_parquet_dir", f"{gs}/lookup",
        "--temp_location", f"{gs}/tmp",
    )  # fmt: skip
    assert remote.returncode == 0, remote.stderr
    assert contacted == []  # no metadata server, nothing but the emulator
    for name in ("out", "lookup"):
        expected = output(tmp_path / name)
        found = output(_download(bucket, name, tmp_path / f"gs-{name}"))
        # The same, but for where the inputs were.
        manifest = found["_manifest.json"]
        for entry in manifest["inputs"]:
            entry["path"] = entry["path"].replace(f"{gs}/in", str(local_in))
        lookup = manifest.get("sample_lookup") or {}
        if lookup.get("parquet_dir"):
            lookup["parquet_dir"] = str(tmp_path / "lookup")
        expected["_manifest.json"]["sample_lookup"]["parquet_dir"] = str(tmp_path / "lookup")
        for name_ in [n for n in found if n.startswith("_malformed/")]:
            found[name_] = found[name_].replace(f"{gs}/in".encode(), str(local_in).encode())
        for row in found["__sample_info.parquet"]:
            row["file_path"] = row["file_path"].replace(f"{gs}/in", str(local_in))
        assert found == expected, name
        assert any(n.endswith(".parquet") and "/" in n for n in expected)
    assert any(n.startswith("_malformed/") for n in output(tmp_path / "out"))
