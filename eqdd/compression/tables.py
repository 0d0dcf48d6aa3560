"""Integer probability tables for the entropy coder, identical on every machine for identical inputs.

The coder needs each conditional as integer counts `c_k >= 1` with `Σ_k c_k = 2^PRECISION`; symbol
`k` then costs `PRECISION - log2 c_k` bits. Encoder and decoder must build the *same* table from the
network's float32 probabilities, so the table uses only operations that IEEE 754 rounds exactly:

1. `raw_k = floor(p_k · F)` with `F = 2^PRECISION - K` (a float32 times an integer below 2^24 is
   exact in float64, and `floor` is exact);
2. the integer rest `F - Σ_k raw_k` (small: the float32 probabilities sum to 1 only up to rounding)
   goes to the most probable class (the first one on ties);
3. every class gets one more unit, the floor that keeps every symbol codable.

No `exp`, `log` or floating-point sum enters, so the table does not depend on how NumPy vectorises
them on a given CPU. The cost of the quantisation is negligible: a relative error of about
`1 / (p_k · 2^24)` per probability and at most `K · 2^-24` of mass moved to the floor.
"""

import numpy as np
from jaxtyping import Float32, Int64

from eqdd._typing import typecheck

PRECISION = 24  # bits; constriction's default ANS coder codes categoricals at exactly this precision
_SUM_TOLERANCE = 1e-3


@typecheck
def quantize(
    probabilities: Float32[np.ndarray, "*rows K"], precision: int = PRECISION
) -> Int64[np.ndarray, "*rows K"]:
    """Quantise categorical distributions to integer counts (see the module docstring).

    Arguments:
        probabilities: float32 probabilities over the last axis (each row sums to 1 up to rounding).
        precision: the table's total is `2^precision`.

    Returns:
        Int64 counts, each at least 1, every row summing to `2^precision`.

    Raises:
        ValueError: for values that are not finite or negative, or rows that do not sum to 1.
    """
    num_classes = probabilities.shape[-1]
    free = (1 << precision) - num_classes
    if free < num_classes:
        raise ValueError(f"{num_classes} classes need more than {precision} bits of precision")
    if not np.isfinite(probabilities).all() or (probabilities < 0).any():
        raise ValueError("probabilities must be finite and non-negative")
    if probabilities.size and np.abs(probabilities.sum(-1, dtype=np.float64) - 1.0).max() > _SUM_TOLERANCE:
        raise ValueError("each row of probabilities must sum to 1")
    counts = np.floor(probabilities.astype(np.float64) * free).astype(np.int64)
    most_probable = probabilities.argmax(-1)[..., None]
    rest = free - counts.sum(-1, keepdims=True)
    np.put_along_axis(counts, most_probable, np.take_along_axis(counts, most_probable, -1) + rest, -1)
    return counts + 1
