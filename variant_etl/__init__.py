"""variant_etl: VCF/BCF files into sharded, partitioned Parquet and BigQuery tables, as Apache
Beam transforms (docs/python_api.md) and as a command (``python -m variant_etl``).

    import apache_beam as beam
    import variant_etl

    with beam.Pipeline() as p:
        (p
         | variant_etl.ReadVcf("data/*.vcf.gz")
         | variant_etl.ShardVariants("sharding_configs/homo_sapiens_default.yaml")
         | variant_etl.WriteToParquet("out/"))

The transforms import Beam when first used: ``import variant_etl`` alone does not, so the
commands that run no pipeline start fast.
"""

from __future__ import annotations

import importlib

# public name -> the module that defines it
_PUBLIC = {
    "ReadVcf": "variant_etl.api",
    "MergeVariants": "variant_etl.api",
    "AnnotateVariants": "variant_etl.api",
    "OmitEmptySampleCalls": "variant_etl.api",
    "MoveHomRefCalls": "variant_etl.api",
    "ShardVariants": "variant_etl.api",
    "WriteToParquet": "variant_etl.api",
    "WriteToBigQuery": "variant_etl.api",
    "WriteOutputs": "variant_etl.api",
    "VariantBatch": "variant_etl.core.batch",
    "ReadOptions": "variant_etl.core.options",
    "HeaderOptions": "variant_etl.core.options",
    "SchemaOptions": "variant_etl.core.options",
    "MergeOptions": "variant_etl.core.options",
    "ShardingConfig": "variant_etl.core.sharding",
    "load_sharding_config": "variant_etl.core.sharding",
    "VariantEtlError": "variant_etl.core.errors",
}

__all__ = sorted(_PUBLIC)


def __getattr__(name: str):
    if name not in _PUBLIC:
        raise AttributeError(f"module 'variant_etl' has no attribute {name!r}")
    value = getattr(importlib.import_module(_PUBLIC[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
