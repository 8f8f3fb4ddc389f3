"""variant_etl: VCF/BCF -> sharded, partitioned Parquet (and BigQuery) tables on Apache Beam.

This file is also what Dataflow's --setup_file needs to install the package on workers.
"""

import setuptools

setuptools.setup(
    name="variant_etl",
    version="0.1.0",
    description="Load VCF/BCF files into sharded, partitioned tables with Apache Beam",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.10",
    packages=setuptools.find_packages(include=["variant_etl", "variant_etl.*"])
    + ["variant_etl.sharding_configs"],
    package_dir={"variant_etl.sharding_configs": "sharding_configs"},
    package_data={"variant_etl.sharding_configs": ["*.yaml"]},
    install_requires=[
        "apache-beam[gcp]>=2.60,<3",
        "pysam>=0.22,<0.30",
        "pyarrow>=14,<26",
        "pyyaml>=6,<7",
        "fastavro>=1.9,<2",
        "google-cloud-bigquery>=3.20,<4",
        "pyfarmhash>=0.4,<1",
        "numpy>=1.24",
        "duckdb>=1.1",  # the query and export commands
        "fsspec>=2023.1",  # DuckDB reads gs:// outputs through it (over pyarrow's GCS client)
        "deflate>=0.8,<1",  # libdeflate: export's BGZF blocks
    ],
    extras_require={
        "test": ["pytest>=8", "duckdb>=1.1", "ruff>=0.6", "hypothesis>=6", "gcp-storage-emulator>=2024.0"],
    },
    entry_points={"console_scripts": ["variant-etl=variant_etl.cli:process_main"]},
)
