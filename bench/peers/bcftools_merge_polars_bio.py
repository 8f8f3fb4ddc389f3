"""The merge case done with peers: `bcftools merge` (htslib's, as built into pysam) of the
indexed inputs, then polars-bio -> Parquet. Usage: 'IN*.vcf.gz' OUT.parquet"""

import glob
import os
import sys
import tempfile

import polars_bio as pb
import pysam.bcftools

inputs = sorted(glob.glob(sys.argv[1]))
with tempfile.TemporaryDirectory() as tmp:
    merged = os.path.join(tmp, "merged.vcf")
    pysam.bcftools.merge("-m", "none", "-o", merged, *inputs, catch_stdout=False)
    pb.read_vcf(merged).write_parquet(sys.argv[2], compression="zstd")
