"""The integer limits of VCF and htslib, once."""

from __future__ import annotations

INT32_MIN = -(2**31)
INT32_MAX = 2**31 - 1
# htslib keeps the 8 lowest int32 values for "missing" and "end of vector": a value below
# HTSLIB_INT32_MIN cannot be written to BCF.
HTSLIB_INT32_MIN = INT32_MIN + 8
MAX_POS = INT32_MAX  # VCF positions are 32-bit; htslib itself would read larger ones
