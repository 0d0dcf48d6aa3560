"""The entropy coder: constriction's rANS stack, fed the exact integer tables of `quantize`.

`constriction.stream.stack.AnsCoder` (32-bit words, 64-bit state) codes a categorical at 24 bits of
precision. It takes float weights and quantises them itself; its fast ("not perfect") quantiser
sets the left cumulative of symbol `i` to `floor(W_i · s) + i`, where `W_i` is the sum of the weights
before `i` and `s = (2^24 - K) / Σ weights`. Given the weights `c - 1` of a table `c` from
[`eqdd.compression.quantize`][] (integers, so `Σ weights = 2^24 - K`, `s = 1` and every sum is
exact in floating point), it rebuilds exactly `c`: the coder codes with our table, bit for bit.

ANS is a stack: [`push`][eqdd.compression.ans.push] codes symbols so that
[`pop`][eqdd.compression.ans.pop] returns them in the order they were given, and a later `push` is
popped first.
"""

import math

import constriction
import numpy as np
from jaxtyping import Int, Int64, Integer, UInt32

from eqdd._typing import typecheck
from eqdd.compression.tables import PRECISION

_CATEGORICAL = constriction.stream.model.Categorical(perfect=False)


def new_coder(words: UInt32[np.ndarray, " W"] | None = None) -> constriction.stream.stack.AnsCoder:
    """An ANS stack: empty for encoding, or holding `words` for decoding."""
    if words is None:
        return constriction.stream.stack.AnsCoder()
    return constriction.stream.stack.AnsCoder(np.ascontiguousarray(words, dtype=np.uint32))


def _weights(counts: np.ndarray) -> np.ndarray:
    return (counts - 1).astype(np.float64)


@typecheck
def push(
    coder: constriction.stream.stack.AnsCoder,
    symbols: Integer[np.ndarray, " N"],
    counts: Int64[np.ndarray, "N K"],
) -> None:
    """Code `symbols[i]` with the table `counts[i]`, so that one `pop` returns them in this order.

    Arguments:
        coder: the ANS stack.
        symbols: classes in `0..K-1`.
        counts: one table per symbol, from [`eqdd.compression.quantize`][].
    """
    if symbols.size:
        coder.encode_reverse(symbols.astype(np.int32), _CATEGORICAL, _weights(counts))


@typecheck
def narrow(
    symbols: Integer[np.ndarray, " N"], counts: Int64[np.ndarray, "N K"]
) -> tuple[Int64[np.ndarray, " N"], Int64[np.ndarray, "N k"]]:
    """The same symbols as indices into three-entry tables that [`push`][] codes into exactly the same
    words: a coding step depends only on a symbol's count and the counts before it, so table `c` and
    symbol `s` become `[Σ_{i<s} c_i, c_s, rest]` and index 1 (`[c_s, 1, rest - 1]` and 0 when nothing is
    before, `[1, before - 1, c_s]` and 2 when nothing is after; every count of a table of `K > 3` classes
    is at least 1, so those stay positive). Tables of at most 3 classes are returned as they are.

    So an encoder can keep 3 counts a symbol, not `K`, until it pushes them all.

    Arguments:
        symbols: classes in `0..K-1`.
        counts: one table per symbol, from [`eqdd.compression.quantize`][].

    Returns:
        The indices and their tables, for [`push`][].
    """
    symbols = symbols.astype(np.int64)
    if counts.shape[1] <= 3:
        return symbols, counts
    rows = np.arange(symbols.size)
    count = counts[rows, symbols]
    before = np.cumsum(counts, 1)[rows, symbols] - count
    after = (1 << PRECISION) - before - count
    tables = np.stack([before, count, after], 1)
    indices = np.ones(symbols.size, np.int64)
    first, last = before == 0, after == 0
    tables[first] = np.stack([count[first], np.ones_like(count[first]), after[first] - 1], 1)
    tables[last] = np.stack([np.ones_like(count[last]), before[last] - 1, count[last]], 1)
    indices[first], indices[last] = 0, 2
    return indices, tables


@typecheck
def pop(coder: constriction.stream.stack.AnsCoder, counts: Int64[np.ndarray, "N K"]) -> Int[np.ndarray, " N"]:
    """Decode one symbol per table, in the order they were pushed.

    Arguments:
        coder: the ANS stack.
        counts: the same tables the encoder used.

    Returns:
        The symbols (int32).
    """
    if not counts.shape[0]:
        return np.zeros(0, np.int32)
    return coder.decode(_CATEGORICAL, _weights(counts))


@typecheck
def ideal_bits(symbols: Integer[np.ndarray, " N"], counts: Int64[np.ndarray, "N K"]) -> float:
    """The information content `Σ_i -log2(counts[i, symbols[i]] / 2^PRECISION)` of symbols under their tables.

    An ANS coder achieves it to within its final state (at most 64 bits per message).
    """
    chosen = np.take_along_axis(counts, symbols[:, None].astype(np.int64), -1)[:, 0]
    return math.fsum(PRECISION - np.log2(chosen))
