"""BigQuery names and the client, Beam-free: the sink (sinks/bigquery.py) and ``export`` (which
reads the tables back) both use them. See docs/bigquery.md."""

from __future__ import annotations

import os
import re

from variant_etl.core.errors import OutputError

EMULATOR_ENV = "BIGQUERY_EMULATOR_HOST"
# [PROJECT(: or .)]DATASET.TABLE, split before each part is checked on its own.
_TABLE_SHAPE = re.compile(r"(?:(.+)[:.])?([^:.]+)\.([^:.]+)", re.DOTALL)
# Google Cloud project ids: 6-30 lowercase letters, digits and hyphens, starting with a letter
# and not ending with a hyphen; domain-scoped ones start with 'example.com:'.
_PROJECT_RE = re.compile(r"(?:[a-z0-9](?:[a-z0-9.-]{0,61}[a-z0-9])?:)?[a-z][a-z0-9-]{4,28}[a-z0-9]")
# Stricter than BigQuery's table names (which allow Unicode letters, '-' and ' '), so that every
# name is safe unquoted in SQL, as a file name and in a URL.
_NAME_RE = re.compile(r"[A-Za-z0-9_]+")
MAX_DATASET_NAME_LENGTH = 1024
MAX_TABLE_NAME_LENGTH = 1024


def parse_output_table(
    text: str, default_project: str | None, *, option: str = "--output_table"
) -> tuple[str, str, str]:
    """'PROJECT:DATASET.TABLE' (or PROJECT.DATASET.TABLE, or DATASET.TABLE with --project).

    Every part is checked here, before any request is made: the names go into request URLs
    and table ids unquoted.
    """
    match = _TABLE_SHAPE.fullmatch(text)
    if not match:
        raise OutputError(f"{option} must look like PROJECT:DATASET.TABLE, got {shown(text)}")
    project, dataset, table = match.groups()
    for what, name, limit in (
        ("dataset", dataset, MAX_DATASET_NAME_LENGTH),
        ("table", table, MAX_TABLE_NAME_LENGTH),
    ):
        if not _NAME_RE.fullmatch(name) or len(name) > limit:
            raise OutputError(
                f"{option} {shown(text)}: the {what} name may only contain letters, digits and '_' "
                f"(at most {limit} characters), got {shown(name)}"
            )
    source = option if project else "--project"
    project = project or default_project
    if not project:
        raise OutputError(
            f"{option} {shown(text)} names no project. Hint: PROJECT:DATASET.TABLE, or --project"
        )
    if not _PROJECT_RE.fullmatch(project):
        raise OutputError(
            f"{source}: {shown(project)} is not a Google Cloud project id (6 to 30 lowercase letters, "
            "digits and hyphens, starting with a letter; optionally after 'domain.com:')"
        )
    return project, dataset, table


def shown(text: str, limit: int = 60) -> str:
    """repr() of a name for a message: one line, and long names cut short."""
    return repr(text) if len(text) <= limit else f"{text[:limit]!r}... ({len(text)} characters)"


def make_client(project: str):
    """A BigQuery client; with BIGQUERY_EMULATOR_HOST set, one for that emulator."""
    from google.cloud import bigquery

    host = os.environ.get(EMULATOR_ENV)
    if host:
        from google.api_core.client_options import ClientOptions
        from google.auth.credentials import AnonymousCredentials

        endpoint = host if host.startswith("http") else f"http://{host}"
        return bigquery.Client(
            project=project,
            credentials=AnonymousCredentials(),
            client_options=ClientOptions(api_endpoint=endpoint),
        )
    return bigquery.Client(project=project)


def header_fields() -> list[dict]:
    """TABLE__vcf_header: each run's VCF header (its definitions as merged for the schema), a row a line."""
    return [
        {"name": "run_id", "type": "STRING", "mode": "NULLABLE"},
        {"name": "ingestion_datetime", "type": "TIMESTAMP", "mode": "NULLABLE"},
        {"name": "coordinates", "type": "STRING", "mode": "NULLABLE"},  # as in _manifest.json
        {"name": "line_number", "type": "INT64", "mode": "NULLABLE"},
        {"name": "line", "type": "STRING", "mode": "NULLABLE"},
    ]


def sample_info_fields() -> list[dict]:
    """gcp-variant-transforms' TABLE__sample_info (its data/schema/sample_info.json), so that runs
    append to the tables it made."""
    return [
        {"name": "sample_id", "type": "INT64", "mode": "NULLABLE"},
        {"name": "sample_name", "type": "STRING", "mode": "NULLABLE"},
        {"name": "file_path", "type": "STRING", "mode": "NULLABLE"},
        {"name": "ingestion_datetime", "type": "TIMESTAMP", "mode": "NULLABLE"},
    ]
