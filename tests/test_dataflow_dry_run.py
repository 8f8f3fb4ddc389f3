"""The pipeline translates for Google Cloud Dataflow, offline.

Beam's DataflowRunner with ``--dry_run=True`` (TestOptions; see DataflowRunner.run_pipeline)
does everything a real submission does up to the Dataflow API call: overrides, the portable
pipeline proto, the Docker environment with its staged artifacts (the sdist that
``--setup_file`` builds, locally) and the ``apiclient.Job``; it then returns that job on the
result instead of staging and submitting it.

The inputs are local files: ``launch`` reads every input's header while planning, and gs:// is
unreachable here. (On Dataflow the workers read the inputs, so a real job needs gs:// inputs.)
The output is gs://, with ``--overwrite`` so that planning skips its check that the output
directory is empty, the one other place planning would touch GCS. That only changes what the
commit step does at run time, not the job's shape.
"""

from __future__ import annotations

import io
import json
import tarfile
from unittest import mock

import pytest
from apache_beam.options.pipeline_options import GoogleCloudOptions
from apache_beam.portability.api import beam_runner_api_pb2
from apache_beam.runners.dataflow.dataflow_runner import DataflowRunner
from apache_beam.runners.dataflow.internal import apiclient

from tests.conftest import REPO, run_cli
from variant_etl.cli.launch import launch
from variant_etl.cli.parser import build_parser
from variant_etl.core.options import DEFAULT_SHARDING_CONFIG, bundled_config
from variant_etl.core.sharding import load_sharding_config

INPUTS = str(REPO / "examples" / "data" / "*.vcf.gz")


def dataflow_args(setup_file: str) -> list[str]:
    return [
        "launch", "--input_pattern", INPUTS, "--output_parquet_dir", "gs://bucket/out", "--overwrite",
        "--runner", "DataflowRunner", "--project", "some-project", "--region", "us-central1",
        "--temp_location", "gs://bucket/tmp", "--staging_location", "gs://bucket/staging",
        "--setup_file", setup_file, "--dry_run=True",
    ]  # fmt: skip


@pytest.fixture
def dry_run_job(capsys) -> apiclient.Job:
    """Runs `launch` in this process exactly as `python -m variant_etl launch ...` does, and
    keeps the job DataflowRunner built (a spy: the runner itself is not replaced)."""
    results = []
    run_pipeline = DataflowRunner.run_pipeline

    def spy(self, *args, **kwargs):
        results.append(run_pipeline(self, *args, **kwargs))
        return results[-1]

    args, beam_args = build_parser().parse_known_args(dataflow_args(str(REPO / "setup.py")))
    with mock.patch.object(DataflowRunner, "run_pipeline", spy):
        assert launch(args, beam_args) == 0
    assert "dry run: DataflowRunner translated the job (2 input file(s)" in capsys.readouterr().out
    (result,) = results
    assert result.state == "DONE"
    return result.job


def expected_transforms() -> set[str]:
    return {
        "ReadVcf/Splits", "ReadVcf/ReadSplits/ReadSplit/ParDo(_ReadSplitFn)",
        "ShardVariants/RouteToShards/ShardBatch/ParDo(_ShardBatchFn)",
        "WriteOutputs/WriteParquet/WriteFiles", "WriteOutputs/WriteMalformed/WriteFiles",
        "WriteOutputs/AllStats", "WriteOutputs/CommitOutput/Commit",
    }  # fmt: skip


def staged_artifacts(pipeline: beam_runner_api_pb2.Pipeline) -> dict[str, str]:
    """staged name -> local file, for every artifact of every environment."""
    found = {}
    for env in pipeline.components.environments.values():
        for dep in env.dependencies:
            name = beam_runner_api_pb2.ArtifactStagingToRolePayload.FromString(dep.role_payload).staged_name
            found[name] = beam_runner_api_pb2.ArtifactFilePayload.FromString(dep.type_payload).path
    return found


def test_dry_run_translates_the_whole_pipeline_for_dataflow(dry_run_job):
    job = dry_run_job
    assert job.proto.type_ == job.proto.type_.JOB_TYPE_BATCH
    assert job.proto.name.startswith("beamapp-")
    pipeline = job.proto_pipeline
    names = {t.unique_name for t in pipeline.components.transforms.values()}
    assert expected_transforms() <= names
    # Every step runs in one Docker environment: the Beam SDK image Dataflow uses for this Python.
    (env,) = pipeline.components.environments.values()
    assert env.urn == "beam:env:docker:v1"
    image = beam_runner_api_pb2.DockerPayload.FromString(env.payload).container_image
    assert "_sdk:" in image and "beam_python3" in image
    # --setup_file was built (locally, `setup.py sdist`) into workflow.tar.gz for the workers.
    artifacts = staged_artifacts(pipeline)
    with tarfile.open(artifacts["workflow.tar.gz"]) as sdist:
        members = {name.split("/", 1)[-1] for name in sdist.getnames()}
    assert {"setup.py", "variant_etl/pipeline.py", "sharding_configs/homo_sapiens_default.yaml"} <= members
    options = job.options.get_all_options()
    assert options["region"] == "us-central1" and options["project"] == "some-project"
    assert options["setup_file"] == str(REPO / "setup.py")
    assert options["staging_location"].startswith(f"gs://bucket/staging/{job.proto.name}.")
    assert options["temp_location"].startswith(f"gs://bucket/tmp/{job.proto.name}.")


def test_the_dry_run_job_stages_the_setup_file_and_pipeline_to_gcs(dry_run_job):
    """Goes one step past the dry run: the same job description call a real submission makes
    (DataflowApplicationClient.create_job_description), short of submit_job_description."""
    job = dry_run_job
    uploads: dict[str, bytes] = {}

    # The one mock: DataflowApplicationClient.stage_file is where Beam writes a staged file to
    # GCS (bucket.get_blob + BlobWriter); here it records the path and bytes instead.
    def stage_file(self, gcs_or_local_path, file_name, stream, mime_type=None, total_size=None):
        uploads[f"{gcs_or_local_path}/{file_name}"] = stream.read()

    # --no_auth: the client makes no credential lookup (metadata server, gcloud); with the
    # upload mocked, no client talks to Google anyway.
    job.options.view_as(GoogleCloudOptions).no_auth = True
    with mock.patch.object(apiclient.DataflowApplicationClient, "stage_file", stage_file):
        client = apiclient.DataflowApplicationClient(job.options, job.root_staging_location)
        client.create_job_description(job)

    staging = job.google_cloud_options.staging_location
    assert staging.startswith(f"gs://bucket/staging/{job.proto.name}.")
    assert {f"{staging}/workflow.tar.gz", f"{staging}/pipeline.pb"} <= set(uploads)
    with tarfile.open(fileobj=io.BytesIO(uploads[f"{staging}/workflow.tar.gz"])) as sdist:
        assert any(name.endswith("/variant_etl/pipeline.py") for name in sdist.getnames())
    # What Dataflow would run is our pipeline.
    staged = beam_runner_api_pb2.Pipeline.FromString(uploads[f"{staging}/pipeline.pb"])
    assert expected_transforms() <= {t.unique_name for t in staged.components.transforms.values()}
    # The job request names the staged package for the workers, and carries our options.
    description = json.loads(job.json())
    (pool,) = description["environment"]["workerPools"]
    packages = {p["name"]: p["location"] for p in pool["packages"]}
    assert packages["workflow.tar.gz"] == f"storage.googleapis.com/{staging[5:]}/workflow.tar.gz"
    sdk_options = description["environment"]["sdkPipelineOptions"]["options"]
    assert sdk_options["region"] == "us-central1"
    assert sdk_options["setup_file"] == str(REPO / "setup.py")


def test_launch_dry_run_command_from_the_docs():
    """docs/runners.md's dry-run check, as a user runs it (from the repository root)."""
    result = run_cli(*dataflow_args("./setup.py"))
    assert result.returncode == 0, result.stderr
    shards = len(load_sharding_config(bundled_config(DEFAULT_SHARDING_CONFIG)).shards)
    assert result.stdout == (
        f"dry run: DataflowRunner translated the job (2 input file(s), {shards} shards); "
        "nothing was uploaded or submitted\n"
    )
