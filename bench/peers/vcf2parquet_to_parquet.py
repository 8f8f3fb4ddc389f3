"""vcf2parquet (Rust, noodles + arrow2). Usage: IN.vcf OUT.parquet"""

import sys

import pyvcf2parquet

pyvcf2parquet.convert_vcf(sys.argv[1], sys.argv[2], compression=pyvcf2parquet.Compression.Zstd)
