"""Option and config mistakes: one line naming the option and the fix, exit 2, before any work.

Every case runs the command line as a user does. None gets as far as reading a record: the
errors come from parsing the options or from the plan. BIGQUERY_EMULATOR_HOST points at a
closed port, so a case that wrongly reached BigQuery would fail on the connection instead.
"""

from __future__ import annotations

import json

import pytest

from tests.conftest import VT_VCF, run_cli
from variant_etl import filesystems
from variant_etl.core.errors import OutputError, VcfFormatError
from variant_etl.core.options import ParquetOptions, ReadOptions
from variant_etl.plan import make_plan
from variant_etl.plan import rules as plan_rules

VCF = str(VT_VCF / "valid-4.0.vcf")
NOWHERE = {"BIGQUERY_EMULATOR_HOST": "127.0.0.1:9"}
TABLE = "my-project:dataset.table"


def one_line_error(*args: str) -> str:
    """Runs the command; checks it failed with one `error:` line and no traceback."""
    result = run_cli(*args, env_extra=NOWHERE)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


# --- options neither we nor Beam know -----------------------------------------------------


@pytest.mark.parametrize(
    "args, message",
    [
        (["--overwite"], "unknown option --overwite. Hint: did you mean --overwrite?"),
        (
            ["--allow_malformed_record"],
            "unknown option --allow_malformed_record. Hint: did you mean --allow_malformed_records?",
        ),
        # No abbreviations: a prefix of ours could also be meant for one of Beam's.
        (
            ["--output_parquet", "o"],
            "unknown option --output_parquet. Hint: did you mean --output_parquet_dir?",
        ),
        (["--ouput_table=x"], "unknown option --ouput_table. Hint: did you mean --output_table?"),
        (["--runer", "DirectRunner"], "unknown option --runer. Hint: did you mean --runner?"),
        (["--direct_num_worker=2"], "did you mean --direct_num_workers?"),
        (["--direct_running_mod", "multi_threading"], "did you mean --direct_running_mode?"),
        (["--zzzz"], "unknown option --zzzz. Hint: see --help"),
        (["--verbose=loud"], "argument --verbose: expected true or false, got 'loud'"),
        (
            ["--direct_num_workers", "two"],
            "argument --direct_num_workers: invalid int value: 'two' (a Beam option)",
        ),
        (["--parquet_compression", "lz4"], "argument --parquet_compression: invalid choice: 'lz4'"),
        (["--parquet_rows_per_file", "-3"], "argument --parquet_rows_per_file: expected a positive integer"),
        (["--input_pattern"], "argument --input_pattern: expected one argument"),
        # An unquoted glob, expanded by the shell: the second file would be dropped.
        ([str(VT_VCF / "valid-4.1.vcf")], "unexpected argument '" + str(VT_VCF / "valid-4.1.vcf") + "'"),
        (["--", "x"], "unexpected argument 'x'"),
    ],
)
def test_unknown_or_bad_option(tmp_path, args, message):
    line = one_line_error(
        "launch", "--input_pattern", VCF, "--output_parquet_dir", str(tmp_path / "o"), *args
    )
    assert message in line
    assert not (tmp_path / "o").exists()


def test_unknown_option_never_shows_its_value():
    line = one_line_error("plan", "--input_pattern", VCF, "--s3_secret_acess_key=hunter2-secret")
    assert "unknown option --s3_secret_acess_key. Hint: did you mean --s3_secret_access_key?" in line
    assert "hunter2" not in line


@pytest.mark.parametrize(
    "args, message",
    [
        (["--foo"], "unknown option --foo. Hint: see --help"),
        (["--runner", "DirectRunner"], "unknown option --runner"),  # nothing runs: no Beam options
        (["a.yaml", "b.yaml"], "unexpected argument 'b.yaml'"),
    ],
)
def test_validate_config_takes_no_other_option(args, message):
    assert message in one_line_error("validate-config", *args)


@pytest.mark.parametrize(
    ("command", "message"),
    [
        ("lanch", "no command 'lanch': did you mean 'launch'?"),
        ("valdate-config", "no command 'valdate-config': did you mean 'validate-config'?"),
        ("exprt", "no command 'exprt': did you mean 'export'?"),
        (
            "xyz",
            "no command 'xyz': the commands are launch, plan, preprocess, report, validate-config, export",
        ),
    ],
)
def test_unknown_command_names_the_nearest(command, message):
    assert message in one_line_error(command)


def test_beam_options_still_pass_in_both_forms():
    beam = [
        "--runner", "DirectRunner", "--direct_num_workers", "2", "--direct_running_mode=multi_threading",
        "--project", "my-project", "--region=us-central1", "--temp_location", "/tmp/t",
        "--setup_file=./setup.py", "--job_endpoint", "localhost:8099", "--environment_type=LOOPBACK",
        "--environment_config", "x", "--dry_run=True", "--default_sdk_harness_log_level", "INFO",
        "--staging_location=gs://bucket/staging", "--experiments", "a", "--experiments=b",
        "--sdk_harness_log_level_overrides", "{}", "--",
    ]  # fmt: skip
    result = run_cli("plan", "--format", "json", "--input_pattern", VCF, *beam, env_extra=NOWHERE)
    assert result.returncode == 0, result.stderr
    (entry,) = json.loads(result.stdout)["inputs"]
    assert (entry["path"], entry["samples"], entry["records"]) == (VCF, 3, 5)


# --- options that do nothing with the others given ------------------------------------------


@pytest.mark.parametrize(
    "args, message",
    [
        (
            ["--append"],
            "--append only applies with --output_table (it adds rows to existing BigQuery tables). "
            "Hint: add --output_table PROJECT:DATASET.TABLE, or remove --append.",
        ),
        (["--update_schema_on_append"], "--update_schema_on_append only applies with --output_table"),
        (["--keep_intermediate_files"], "--keep_intermediate_files only applies with --output_table"),
        # given at its default value: still given, still pointless
        (
            ["--bigquery_write_method", "FILE_LOADS"],
            "--bigquery_write_method only applies with --output_table",
        ),
        (
            ["--null_numeric_value_replacement=0"],
            "--null_numeric_value_replacement only applies with --output_table",
        ),
        (
            ["--output_table", TABLE, "--update_schema_on_append"],
            "--update_schema_on_append only applies with --append (it adds new columns to the tables "
            "appended to). Hint: add --append, or remove --update_schema_on_append.",
        ),
        (
            [
                "--output_table",
                TABLE,
                "--keep_intermediate_files",
                "--bigquery_write_method=STREAMING_INSERTS",
            ],
            "--keep_intermediate_files keeps the Avro load files of --bigquery_write_method FILE_LOADS; "
            "STREAMING_INSERTS writes none. Hint: remove one of them.",
        ),
        (
            ["--merge_bucket_size", "1000"],
            "--merge_bucket_size only applies with --variant_merge_strategy MOVE_TO_CALLS or "
            "MERGE_WITH_NON_VARIANTS (got NONE)",
        ),
        (  # already checked by the plan
            ["--copy_quality_to_calls"],
            "--copy_quality_to_calls only apply with --variant_merge_strategy MOVE_TO_CALLS (got NONE)",
        ),
    ],
)
def test_pointless_option_with_parquet_output(tmp_path, args, message):
    line = one_line_error(
        "launch", "--input_pattern", VCF, "--output_parquet_dir", str(tmp_path / "o"), *args
    )
    assert message in line
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize(
    "args, message",
    [
        (
            ["--overwrite"],
            "--overwrite only applies with --output_parquet_dir or --sample_lookup_parquet_dir (it "
            "replaces what the Parquet output directory holds). Hint: add --output_parquet_dir DIR or "
            "--sample_lookup_parquet_dir DIR, or remove --overwrite.",
        ),
        (
            ["--parquet_compression", "snappy"],
            "--parquet_compression only applies with --output_parquet_dir or --sample_lookup_parquet_dir",
        ),
        (
            ["--parquet_row_group_size", "10"],
            "--parquet_row_group_size only applies with --output_parquet_dir or --sample_lookup_parquet_dir",
        ),
        (
            ["--parquet_rows_per_file=10"],
            "--parquet_rows_per_file only applies with --output_parquet_dir or --sample_lookup_parquet_dir",
        ),
    ],
)
def test_pointless_option_with_bigquery_output(tmp_path, args, message):
    line = one_line_error(
        "launch",
        "--input_pattern",
        VCF,
        "--output_table",
        TABLE,
        "--temp_location",
        str(tmp_path / "t"),
        *args,
    )
    assert message in line


# --- inputs that cannot be read, outputs that cannot be written -----------------------------


def test_input_that_is_a_directory(tmp_path):
    folder = tmp_path / "calls.vcf"
    folder.mkdir()
    line = one_line_error("plan", "--input_pattern", str(folder))
    assert f"input {folder} is a directory, not a VCF/BCF file" in line
    assert f"--input_pattern '{folder}/*.vcf.gz'" in line


def test_representative_header_that_cannot_be_opened(tmp_path):
    missing = tmp_path / "header.vcf"
    line = one_line_error("plan", "--input_pattern", VCF, "--representative_header_file", str(missing))
    assert f"--representative_header_file {missing} cannot be opened (No such file or directory)" in line


def test_input_that_cannot_be_opened(monkeypatch):
    # Tests run as root, for whom chmod forbids nothing: the opener refuses instead.
    def refuse(path):
        raise PermissionError(13, "Permission denied", path)

    monkeypatch.setattr(filesystems, "open_binary", refuse)
    with pytest.raises(VcfFormatError, match=f"^input {VCF} cannot be opened \\(Permission denied\\)$"):
        make_plan(
            input_patterns=[VCF], input_file=None, sharding_config_path=None, read=ReadOptions(), parquet=None
        )


@pytest.mark.parametrize("under", ["", "out", "out/deeper"])
def test_output_dir_that_is_or_is_under_a_file(tmp_path, under):
    file = tmp_path / "taken"
    file.write_text("not a directory\n")
    out = file / under if under else file
    line = one_line_error("launch", "--input_pattern", VCF, "--output_parquet_dir", str(out))
    which = "is" if not under else f"is under {file}, which is"
    assert f"--output_parquet_dir {out} {which} a file, not a directory" in line
    assert file.read_text() == "not a directory\n"


def test_output_dir_that_is_a_file_even_with_overwrite(tmp_path):
    file = tmp_path / "taken"
    file.write_text("x")
    line = one_line_error("launch", "--input_pattern", VCF, "--output_parquet_dir", str(file), "--overwrite")
    assert "is a file, not a directory" in line


def test_output_dir_that_is_not_writable(tmp_path, monkeypatch):
    monkeypatch.setattr(plan_rules.os, "access", lambda path, mode: False)
    out = tmp_path / "new" / "out"
    with pytest.raises(OutputError, match="its nearest existing ancestor, .* is not writable by this user"):
        make_plan(
            input_patterns=[VCF],
            input_file=None,
            sharding_config_path=None,
            read=ReadOptions(),
            parquet=ParquetOptions(output_dir=str(out)),
        )


# --- config and names ---------------------------------------------------------------------


def test_sharding_config_with_a_python_tag_is_refused_not_run(tmp_path):
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.yaml"
    evil.write_text(f'- !!python/object/apply:os.system ["touch {marker}"]\n')
    for command in (
        ["validate-config", str(evil)],
        [
            "launch",
            "--input_pattern",
            VCF,
            "--output_parquet_dir",
            str(tmp_path / "o"),
            "--sharding_config_path",
            str(evil),
        ],
    ):
        line = one_line_error(*command)
        assert f"error: {evil}: not valid YAML (could not determine a constructor for the tag" in line
        assert "python/object/apply:os.system" in line
    assert not marker.exists()


@pytest.mark.parametrize(
    "table, message",
    [
        (
            "my-project:dataset.t`; DROP TABLE x; --",
            "the table name may only contain letters, digits and '_'",
        ),
        ("`my-project`:dataset.t", "is not a Google Cloud project id"),
        ("my-project:data set.t", "the dataset name may only contain"),
        (
            "my-project:dataset.t\n",
            "the table name may only contain letters, digits and '_' (at most 1024 characters), got 't\\n'",
        ),
        (
            f"my-project:dataset.{'t' * 1020}",
            "table_name_suffix 'chr1' gives a table name of 1026 characters",
        ),
    ],
)
def test_bad_output_table_fails_before_any_request(tmp_path, table, message):
    line = one_line_error(
        "launch", "--input_pattern", VCF, "--output_table", table, "--temp_location", str(tmp_path / "t")
    )
    assert message in line
    assert len(line) < 400


# --- no credentials or environment values in what a run leaves ------------------------------

SECRETS = {
    "GOOGLE_APPLICATION_CREDENTIALS": "/tmp/secret-token-XYZ.json",
    "AWS_SECRET_ACCESS_KEY": "AKIAsecret-token-XYZ-aws",
    "AZURE_STORAGE_CONNECTION_STRING": "AccountKey=secret-token-XYZ-azure",
    "VARIANT_ETL_TEST_SECRET": "secret-token-XYZ-other",
}
MANIFEST_KEYS = {
    "variant_etl_manifest_version", "run_id", "finished_at", "sharding_config", "coordinates",
    "variant_merge_strategy", "inputs", "shards", "malformed", "dropped_no_matching_shard",
    "sample_info", "sample_lookup", "totals", "qc",
}  # fmt: skip


@pytest.mark.parametrize("verbose", [False, True])
def test_no_environment_value_in_output_logs_or_manifest(tmp_path, verbose):
    out = tmp_path / "out"
    args = ["launch", "--input_pattern", VCF, "--output_parquet_dir", str(out), "--allow_malformed_records"]
    result = run_cli(*args, *(["--verbose"] if verbose else []), env_extra=SECRETS)
    assert result.returncode == 0, result.stderr
    assert "secret-token-XYZ" not in result.stdout + result.stderr
    files = [path for path in out.rglob("*") if path.is_file()]
    assert {"_manifest.json", "_SUCCESS", "__sample_info.parquet"} <= {path.name for path in files}
    for path in files:
        assert b"secret-token-XYZ" not in path.read_bytes(), path
    manifest = json.loads((out / "_manifest.json").read_text())
    assert set(manifest) == MANIFEST_KEYS
    assert [entry["path"] for entry in manifest["inputs"]] == [VCF]
