"""Convolutions as sums of shifted matrix products, for networks called inside loops.

XLA's CPU backend runs a convolution inside a `lax.scan` or `while` body many times slower than the
same convolution outside one, and every sampler of the library calls its network from a scan. A
stride-1 convolution is the sum over kernel taps of a matrix product with the input shifted by the
tap's offset; written that way, loops keep the speed of plain calls (`benchmarks/conv_in_loops.py`:
with jax 0.10.2 on 2 CPU cores, a width-3 convolution of 64 to 128 channels over 4 x 2,048 samples is
11x slower in a scan than plainly, and the shifted products 23x faster than it in the scan, 1.8x
plainly; `benchmarks/RESULTS.md`). [`convolve`][] computes an `eqx.nn.Conv`'s output so,
from its own weights, so the modules keep Equinox's layers and initialisation.
"""

import itertools

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, Float

from eqdd._typing import typecheck


@typecheck
def convolve(conv: eqx.nn.Conv, x: Float[Array, " C *S"]) -> Float[Array, " O *T"]:
    """`conv(x)` (zero padding, stride 1, one group), as a sum of shifted matrix products.

    Arguments:
        conv: an Equinox convolution of any number of spatial dimensions.
        x: its input, channels first.

    Returns:
        The same output as `conv(x)`, up to the order of the floating-point sums.

    Raises:
        ValueError: for strides, groups or a padding mode other than zeros.
    """
    if any(s != 1 for s in conv.stride) or conv.groups != 1 or conv.padding_mode != "ZEROS":
        raise ValueError("convolve takes stride-1, one-group convolutions with zero padding")
    padded = jnp.pad(x, ((0, 0), *conv.padding))
    taps = conv.weight.shape[2:]
    sizes = [n - d * (k - 1) for n, d, k in zip(padded.shape[1:], conv.dilation, taps, strict=True)]
    total = None
    for offsets in itertools.product(*(range(k) for k in taps)):
        window = padded[
            (
                slice(None),
                *(slice(o * d, o * d + n) for o, d, n in zip(offsets, conv.dilation, sizes, strict=True)),
            )
        ]
        term = jnp.einsum("oc,c...->o...", conv.weight[(slice(None), slice(None), *offsets)], window)
        total = term if total is None else total + term
    return total + conv.bias if conv.use_bias else total
