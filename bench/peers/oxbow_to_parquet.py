"""oxbow (Rust, noodles) -> Parquet, streaming its Arrow batches. Usage: IN.vcf OUT.parquet"""

import sys

import oxbow
import pyarrow as pa
import pyarrow.parquet as pq

source = oxbow.from_vcf(sys.argv[1], samples="*")
writer = None
for batch in source.batches():
    batch = pa.record_batch(batch)
    writer = writer or pq.ParquetWriter(sys.argv[2], batch.schema, compression="zstd")
    writer.write_batch(batch)
writer.close()
