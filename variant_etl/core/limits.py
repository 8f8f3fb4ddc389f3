"""The integer limits of VCF and htslib, once."""

from __future__ import annotations

INT32_MIN = -(2**31)
INT32_MAX = 2**31 - 1
INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
# htslib keeps the 8 lowest int32 values for "missing" and "end of vector": a value below
# HTSLIB_INT32_MIN cannot be written to BCF.
HTSLIB_INT32_MIN = INT32_MIN + 8
# htslib reads POS as 64-bit in text VCF (HTS_POS_MAX): large plant and amphibian genomes have
# chromosomes longer than 2^31. INFO/END beyond 2^31 is the record's end too (core/source.py).
MAX_POS = ((2**31 - 1) << 32) | (2**31 - 1)
