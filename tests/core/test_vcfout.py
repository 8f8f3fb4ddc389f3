"""The vectorized VCF formatting against plain Python, value by value."""

from __future__ import annotations

import math

import numpy as np
import pyarrow as pa
import pytest

from variant_etl.core.vcfout import _float_text, _int_text


def python_float(value: float) -> str:
    """What htslib writes back for a 32-bit float it read: integral values without a fraction,
    else the shortest text that reads back as the same float32 (Python's repr rules)."""
    if math.isfinite(value) and value == int(value) and abs(value) < 1e15:
        return "-0" if value == 0 and math.copysign(1, value) < 0 else str(int(value))
    return str(np.float32(value))


EDGES = [0.0, -0.0, 0.1, 1e-5, 1e-4, 0.0001234, 0.5, 100.0, 999999.94, 1e6, 1000000.5, 123456789.0,
         1e15, 1e16, 1.5e20, 3.4e38, 1e-45, float("inf"), float("-inf"), float("nan"), -2.5, -1e-7]  # fmt: skip


@pytest.mark.parametrize("seed", range(3))
def test_floats_are_written_as_python_writes_their_float32(seed):
    rng = np.random.default_rng(seed)
    scale = 10.0 ** rng.integers(-9, 22, 20_000)
    values = np.concatenate([rng.standard_normal(20_000) * scale, rng.integers(-500, 500, 2_000), EDGES])
    values = values.astype(np.float32).astype(np.float64)  # the values the readers keep
    array = pa.array(list(values) + [None])
    assert _float_text(array).to_pylist() == [python_float(v) for v in values] + [None]


def test_integers_small_and_large_missing_and_genotype_alleles():
    values = [0, 1, -1, 65534, 65535, None, -2, 2**40, -(2**40)]
    assert _int_text(pa.array(values[:6])).to_pylist() == ["0", "1", "-1", "65534", "65535", None]
    assert _int_text(pa.array(values)).to_pylist() == [None if v is None else str(v) for v in values]
    # GT: negative alleles are missing, whether the values fit the table or not
    assert _int_text(pa.array([0, -1, 2, None]), ".").to_pylist() == ["0", ".", "2", None]
    assert _int_text(pa.array([0, -1, 70000]), ".").to_pylist() == ["0", ".", "70000"]
    assert _int_text(pa.array([], pa.int64())).to_pylist() == []
    assert _int_text(pa.array([None], pa.int64())).to_pylist() == [None]
