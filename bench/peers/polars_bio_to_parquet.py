"""polars-bio (Rust, DataFusion) -> Parquet. Usage: IN.vcf OUT.parquet"""

import sys

import polars_bio as pb

pb.read_vcf(sys.argv[1]).write_parquet(sys.argv[2], compression="zstd")
