"""What an output consists of besides the variants: the names of its files (Parquet) and
tables (BigQuery), known to the writers and to ``export``/``query``, which read them."""

from __future__ import annotations

MANIFEST = "_manifest.json"
SUCCESS = "_SUCCESS"
MALFORMED_DIR = "_malformed"
# A file, not a directory, so that read_parquet('out/*/*.parquet') reads variants only.
SAMPLE_INFO = "__sample_info.parquet"
HEADER = "_header.vcf"  # the run's VCF header (merged definitions), for export
REPORT = "_report.html"  # written after local runs (outputs/report.py)
REPORT_PARTITIONS = "_report_partitions.csv"  # beside it: every non-empty partition
# The run that owns the directory (sinks/claims.py), and, in a run's temporary directory, what
# its commit is about to do (sinks/commit.py): a run that takes over a dead one reads both.
CLAIM = "_CLAIM.json"
TEMPORARY = "_temporary"
JOURNAL = "_commit.json"

# BigQuery: TABLE__<suffix> for each shard, and these two next to them.
SAMPLE_INFO_SUFFIX = "sample_info"
HEADER_SUFFIX = "vcf_header"  # the run's header lines, one row each (docs/export.md)
