"""gs:// end to end on gcp-storage-emulator: inputs read from and outputs written to the
emulator equal a local run's, with anonymous credentials and no metadata server; `plan`,
`export`, `query` and `report` read gs:// as they read local paths."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pysam
import pytest
from conftest import REAL, REPO, VT_VCF, generate_vcf, refuse_outbound, run_cli
from test_engines import output

INPUTS = [
    VT_VCF / "valid-4.2.vcf",
    VT_VCF / "invalid-4.0-POS-empty.vcf",  # a malformed record
    VT_VCF / "valid-4.0.vcf.bz2",  # bzip2
    REPO / "examples" / "data" / "cohort_189_samples.vcf.gz",  # bgzip, samples
    REPO / "examples" / "data" / "clinvar_subset.vcf.gz",  # bgzip with its .tbi: region splits
    REPO / "examples" / "data" / "clinvar_subset.vcf.gz.tbi",
    REAL / "cyvcf2" / "multi-contig.bcf",  # BCF with its .csi
    REAL / "cyvcf2" / "multi-contig.bcf.csi",
]
PATTERNS = ["*.vcf", "*.vcf.gz", "*.vcf.bz2", "*.bcf"]
OPTIONS = ["--allow_malformed_records", "--allow_incompatible_records", "--read_split_bytes", "20000"]


def _client(url: str):
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    return storage.Client(project="p", credentials=AnonymousCredentials())


@pytest.fixture(scope="module")
def runs(gcs_emulator, tmp_path_factory):
    """The same launch from a local folder to local outputs, and from a bucket (inputs named by
    an --input_file in the bucket) to gs:// outputs."""
    url, _ = gcs_emulator
    tmp = tmp_path_factory.mktemp("gcs")
    local_in = tmp / "in"
    local_in.mkdir()
    for path in INPUTS:
        shutil.copy(path, local_in / path.name)
    csi = local_in / "generated_csi.vcf.gz"  # bgzip with a .csi index
    pysam.tabix_compress(str(generate_vcf(tmp / "generated.vcf", 3000, 3)), str(csi))
    pysam.tabix_index(str(csi), preset="vcf", csi=True)
    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.setenv("STORAGE_EMULATOR_HOST", url)
        client = _client(url)
        bucket = client.create_bucket(f"b{len(list(client.list_buckets()))}")
        for path in sorted(local_in.iterdir()):
            bucket.blob(f"in/{path.name}").upload_from_filename(str(path))
        gs = f"gs://{bucket.name}"
        bucket.blob("inputs.txt").upload_from_string("".join(f"{gs}/in/{p}\n" for p in PATTERNS))

        patterns = [arg for p in PATTERNS for arg in ("--input_pattern", str(local_in / p))]
        local = run_cli(
            "launch", *patterns, *OPTIONS,
            "--output_parquet_dir", str(tmp / "out"), "--sample_lookup_parquet_dir", str(tmp / "lookup"),
        )  # fmt: skip
        assert local.returncode == 0, local.stderr

        contacted = refuse_outbound(monkeypatch)
        remote = run_cli(
            "launch", "--input_file", f"{gs}/inputs.txt", *OPTIONS,
            "--output_parquet_dir", f"{gs}/out", "--sample_lookup_parquet_dir", f"{gs}/lookup",
            "--temp_location", f"{gs}/tmp",
        )  # fmt: skip
        assert remote.returncode == 0, remote.stderr
        assert contacted == []  # no metadata server, nothing but the emulator
        yield {
            "tmp": tmp,
            "local_in": local_in,
            "bucket": bucket,
            "gs": gs,
            "url": url,
            "stderr": remote.stderr,
        }


@pytest.fixture
def emulator(runs, monkeypatch):
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", runs["url"])
    return runs


def _download(bucket, prefix: str, target: Path) -> Path:
    for blob in bucket.list_blobs(prefix=prefix + "/"):
        path = target / blob.name[len(prefix) + 1 :]
        path.parent.mkdir(parents=True, exist_ok=True)
        blob.download_to_filename(str(path))
    return target


def test_a_gcs_run_equals_the_local_run_without_credentials_or_metadata_server(emulator):
    tmp, gs, local_in = emulator["tmp"], emulator["gs"], emulator["local_in"]
    for name in ("out", "lookup"):
        expected = output(tmp / name)
        found = output(_download(emulator["bucket"], name, tmp / f"gs-{name}"))
        # The same, but for where the inputs were.
        manifest = found["_manifest.json"]
        for entry in manifest["inputs"]:
            entry["path"] = entry["path"].replace(f"{gs}/in", str(local_in))
        lookup = manifest.get("sample_lookup") or {}
        if lookup.get("parquet_dir"):
            lookup["parquet_dir"] = str(tmp / "lookup")
        expected["_manifest.json"]["sample_lookup"]["parquet_dir"] = str(tmp / "lookup")
        for name_ in [n for n in found if n.startswith("_malformed/")]:
            found[name_] = found[name_].replace(f"{gs}/in".encode(), str(local_in).encode())
        for row in found["__sample_info.parquet"]:
            row["file_path"] = row["file_path"].replace(f"{gs}/in", str(local_in))
        assert found == expected, name
        assert any(n.endswith(".parquet") and "/" in n for n in expected)
    local = output(tmp / "out")
    assert any(n.startswith("_malformed/") for n in local)
    # every kind of input was read, and the indexed ones were split by region
    inputs = {Path(entry["path"]).name: entry for entry in local["_manifest.json"]["inputs"]}
    assert set(inputs) == {p.name for p in INPUTS if not p.name.endswith((".tbi", ".csi"))} | {
        "generated_csi.vcf.gz"
    }
    assert all(entry["records_parsed"] > 0 for entry in inputs.values()), inputs
    # launch wrote the report into the gs:// output too
    assert emulator["bucket"].blob("out/_report.html").exists(), emulator["stderr"]


def test_plan_reads_gcs_inputs_as_it_reads_local_ones(emulator):
    gs, local_in = emulator["gs"], emulator["local_in"]
    plans = []
    for args in (
        [arg for p in PATTERNS for arg in ("--input_pattern", str(local_in / p))],
        ["--input_file", f"{gs}/inputs.txt"],
    ):
        result = run_cli("plan", *args, *OPTIONS, "--format", "json")
        assert result.returncode == 0, result.stderr
        plans.append(json.loads(result.stdout.replace(f"{gs}/in", str(local_in))))
    local, remote = plans
    assert remote == local
    split = {Path(entry["path"]).name: entry["read_splits"] for entry in local["inputs"]}
    assert split["generated_csi.vcf.gz"] > 1 and split["multi-contig.bcf"] >= 1, split


@pytest.mark.parametrize(  # reading gs:// is what is tested; the selections are tested locally
    "args",
    [
        [],
        ["--sample_names", "NA00001", "--genomic_regions", "chr1:1-200000000", "20"],
    ],
)
def test_export_and_query_read_a_gcs_output_as_the_local_one(emulator, tmp_path, args):
    tmp, gs = emulator["tmp"], emulator["gs"]
    results = {}
    for where, out in (("local", str(tmp / "out")), ("gs", f"{gs}/out")):
        vcf = tmp_path / "result.vcf.gz"
        exported = run_cli("export", "--input_parquet_dir", out, "--output_vcf", str(vcf), *args)
        assert exported.returncode == 0, exported.stderr
        table = tmp_path / "result.parquet"
        queried = run_cli("query", "--input_parquet_dir", out, "--output", str(table), *args)
        assert queried.returncode == 0, queried.stderr
        shown = run_cli("query", "--input_parquet_dir", out, *args, "--limit", "5")
        assert shown.returncode == 0, shown.stderr
        with pysam.BGZFile(str(vcf)) as f:
            text = f.read().decode()
        results[where] = (
            exported.stdout,
            text,
            table.read_bytes(),
            queried.stdout.split(" row(s)")[0],
            shown.stdout,
        )
    assert results["gs"] == results["local"]
    assert results["local"][3] not in ("", "0")


def test_a_pipeline_export_writes_its_parts_under_a_gcs_temp_location(emulator, tmp_path, monkeypatch):
    """export of a gs:// output with Beam options and --temp_location gs://...: the workers write
    the parts to the bucket, the command joins them into the streamed export's file and deletes
    them."""
    tmp, gs, bucket = emulator["tmp"], emulator["gs"], emulator["bucket"]
    streamed, piped = tmp_path / "streamed.vcf.gz", tmp_path / "piped.vcf.gz"
    result = run_cli("export", "--input_parquet_dir", str(tmp / "out"), "--output_vcf", str(streamed))
    assert result.returncode == 0, result.stderr
    before = {blob.name for blob in bucket.list_blobs()}
    from variant_etl.outputs import storage

    written, open_output = [], storage.open_output
    monkeypatch.setattr(storage, "open_output", lambda path: written.append(path) or open_output(path))
    result = run_cli(
        "export", "--input_parquet_dir", f"{gs}/out", "--output_vcf", str(piped),
        "--runner", "DirectRunner", "--temp_location", f"{gs}/tmp",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert piped.read_bytes() == streamed.read_bytes()
    assert written and all(path.startswith(f"{gs}/tmp/variant_etl-export-") for path in written)
    assert {blob.name for blob in bucket.list_blobs()} == before  # the parts are gone
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "piped.vcf.gz",
        "piped.vcf.gz.tbi",
        "streamed.vcf.gz",
        "streamed.vcf.gz.tbi",
    ]


def test_report_of_a_gcs_output_is_the_local_report(emulator, tmp_path):
    tmp, gs = emulator["tmp"], emulator["gs"]
    pages = []
    for out, manifest in (
        (str(tmp / "out"), (tmp / "out" / "_manifest.json").read_text()),
        (f"{gs}/out", emulator["bucket"].blob("out/_manifest.json").download_as_text()),
    ):
        target = tmp_path / "report.html"
        result = run_cli("report", "--input_parquet_dir", out, "--output", str(target))
        assert result.returncode == 0, result.stderr
        page = target.read_text().replace(f"{gs}/", f"{tmp}/")
        run = json.loads(manifest)
        pages.append(page.replace(run["run_id"], "RUN").replace(run["finished_at"], "FINISHED"))
    assert pages[1] == pages[0]
    assert "<svg" in pages[0]


def test_writing_a_file_to_gcs_is_refused_with_a_hint(emulator, tmp_path):
    gs = emulator["gs"]
    result = run_cli("export", "--input_parquet_dir", f"{gs}/out", "--output_vcf", f"{gs}/x.vcf.gz")
    assert result.returncode != 0
    assert "--output_vcf gs://" in result.stderr and "must be a local path" in result.stderr
    assert "Traceback" not in result.stderr
    result = run_cli("query", "--input_parquet_dir", f"{gs}/nothing", "--limit", "1")
    assert result.returncode != 0 and "no _manifest.json" in result.stderr, result.stderr


def test_prefetched_remote_files_read_as_the_files_themselves(emulator):
    from variant_etl.filesystems import Prefetch, open_binary

    gs, local_in = emulator["gs"], emulator["local_in"]
    names = ["clinvar_subset.vcf.gz", "valid-4.2.vcf", "multi-contig.bcf"]
    paths = [f"{gs}/in/{name}" for name in names]
    with Prefetch(paths, head_bytes=1000) as files:  # heads shorter than the files
        for name, path in zip(names, paths):
            data = (local_in / name).read_bytes()
            with files.open(path) as f:
                assert f.read(10) == data[:10]
                assert f.read() == data[10:]
                f.seek(len(data) - 5)
                assert f.read() == data[-5:]
                f.seek(500)
                assert f.read(1000) == data[500:1500]
            assert files.exists(path)
        assert files.exists(f"{gs}/in/clinvar_subset.vcf.gz.tbi")
        assert not files.exists(f"{gs}/in/valid-4.2.vcf.tbi")
        with files.open(str(local_in / names[1])) as f:  # local: the file itself
            assert f.read() == (local_in / names[1]).read_bytes()
    with Prefetch(paths[1:2], head_bytes=10**6) as files, files.open(paths[1]) as f:  # the whole file
        f.seek(0, 2)
        assert f.tell() == len((local_in / names[1]).read_bytes())
    with open_binary(paths[0]) as f:
        assert f.read() == (local_in / names[0]).read_bytes()
