#!/usr/bin/env bash
# Runs variant_etl end to end on the example data shipped in examples/data/
# (a ClinVar subset on every human chromosome, and a 189-sample cohort),
# on Beam's DirectRunner, and shows how to query the result.
# Usage: ./run_local.sh [output_dir]      (after: pip install -e '.[test]')
set -euo pipefail
cd "$(dirname "$0")"
out="${1:-out/example}"
rm -rf "$out"
# What the run will do (inputs, read splits, shards, estimated rows), before any work:
python -m variant_etl plan --input_pattern 'examples/data/*.vcf.gz'
echo
python -m variant_etl launch \
  --input_pattern 'examples/data/*.vcf.gz' \
  --output_parquet_dir "$out" \
  --sharding_config_path sharding_configs/homo_sapiens_default.yaml
echo
echo "Parquet shards: $out/<table_name_suffix>/*.parquet; counts: $out/_manifest.json"
echo "Report (open in a browser): $out/_report.html"
echo "Rows per chromosome, read back with DuckDB:"
python - "$out" <<'PY'
import sys

import duckdb

out = sys.argv[1]
query = f"""
    SELECT reference_name, count(*) AS variants, sum(len(call)) AS calls
    FROM read_parquet('{out}/*/*.parquet')
    GROUP BY reference_name ORDER BY variants DESC LIMIT 5
"""
for row in duckdb.connect().execute(query).fetchall():
    print("  ", row)
PY
echo
echo "Try: python -c \"import duckdb; print(duckdb.sql(\\\"SELECT * FROM read_parquet('$out/chr1/*.parquet') LIMIT 3\\\"))\""
