"""Baseline: the cyvcf2 + pyarrow script users write by hand (full schema: typed INFO,
ALT list, calls with every FORMAT field). Usage: cyvcf2_to_parquet.py IN.vcf OUT.parquet"""

import sys

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from cyvcf2 import VCF

TYPES = {
    "Integer": pa.int64(),
    "Float": pa.float64(),
    "Flag": pa.bool_(),
    "String": pa.string(),
    "Character": pa.string(),
}


def main(src: str, dst: str, batch: int = 50_000) -> None:
    vcf = VCF(src)
    infos = [h.info() for h in vcf.header_iter() if h["HeaderType"] == "INFO"]
    formats = [h.info() for h in vcf.header_iter() if h["HeaderType"] == "FORMAT" and h["ID"] != "GT"]
    writer = None
    rows = {k: [] for k in ["chrom", "pos", "id", "ref", "alt", "qual", "filter", "genotype"]}
    rows.update({f"info_{i['ID']}": [] for i in infos})
    rows.update({f"format_{f['ID']}": [] for f in formats})

    def flush():
        nonlocal writer
        arrays = {k: pa.array(v) for k, v in rows.items()}
        table = pa.table(arrays)
        writer = writer or pq.ParquetWriter(dst, table.schema, compression="zstd")
        writer.write_table(table.cast(writer.schema))
        for v in rows.values():
            v.clear()

    for v in vcf:
        rows["chrom"].append(v.CHROM)
        rows["pos"].append(v.POS)
        rows["id"].append(v.ID)
        rows["ref"].append(v.REF)
        rows["alt"].append(v.ALT)
        rows["qual"].append(v.QUAL)
        rows["filter"].append(v.FILTER)
        rows["genotype"].append(v.genotype.array()[:, :-1].tolist() if vcf.samples else None)
        for i in infos:
            value = v.INFO.get(i["ID"])
            if i["Number"] not in ("0", "1") and value is not None:
                value = list(value) if isinstance(value, tuple) else [value]
            rows[f"info_{i['ID']}"].append(value)
        for f in formats:
            value = v.format(f["ID"]) if vcf.samples else None
            rows[f"format_{f['ID']}"].append(None if value is None else np.asarray(value).tolist())
        if len(rows["chrom"]) >= batch:
            flush()
    if rows["chrom"] or writer is None:
        flush()
    writer.close()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
