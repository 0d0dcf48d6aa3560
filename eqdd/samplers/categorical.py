"""Categorical sampling without float32 tail truncation.

`jax.random.categorical` adds Gumbel noise `-log(-log(u))` with a float32 `u` on a grid of `2^-23`:
the noise can never exceed about 15.9, so rare classes are drawn less often than they should be
and the effective temperature drops. Here the draw is an exponential race,
`argmax(logits - log E)` with `E ~ Exp(1)` per class, and `E` is built from 64 random bits so that
both of its tails keep full float32 relative precision:

- with probability 1/2, `E = -log(w)` (the upper half, `E > ln 2`);
- otherwise `E = -log1p(-w)` (the lower half, `E <= ln 2`);

where `w` is uniform on `(0, 1/2]` with float32 relative precision down to `2^-64`. The smallest
representable `E` is then about `5e-20` (noise up to about 44) instead of `1.2e-7`.
"""

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, Int, PRNGKeyArray, UInt32

from eqdd import outputs
from eqdd._typing import typecheck

_TWO_TO_MINUS_32 = 2.0**-32


@typecheck
def exponential_from_bits(high: UInt32[Array, "*S"], low: UInt32[Array, "*S"]) -> Float[Array, "*S"]:
    """Map 64 uniform random bits to an `Exp(1)` sample with full relative precision in both tails.

    Arguments:
        high, low: independent uniform 32-bit words; the top bit of `high` picks the half.

    Returns:
        Float32 samples of `Exp(1)`, strictly positive.
    """
    lower_half = (high >> 31) == 1
    high_bits = (high & jnp.uint32(0x7FFFFFFF)).astype(jnp.float32)
    low_bits = low.astype(jnp.float32) + 0.5
    # w in (0, 1/2]: 31 high bits, refined by 32 low bits where the high ones are all zero.
    w = (high_bits + low_bits * _TWO_TO_MINUS_32) * _TWO_TO_MINUS_32
    return jnp.where(lower_half, -jnp.log1p(-w), -jnp.log(w))


@typecheck
def sample_exponential(key: PRNGKeyArray, shape: tuple[int, ...]) -> Float[Array, "*S"]:
    """Draw `Exp(1)` samples of the given shape (see the module docstring).

    Arguments:
        key: a JAX PRNG key.
        shape: the output shape.

    Returns:
        Float32 samples of `Exp(1)`.
    """
    bits = jax.random.bits(key, (2, *shape), dtype=jnp.uint32)
    return exponential_from_bits(bits[0], bits[1])


@typecheck
def sample_categorical(key: PRNGKeyArray, logits: Float[Array, "*B K"]) -> Int[Array, "*B"]:
    """Draw one class per row of `logits` (unnormalised log-probabilities over the last axis).

    Arguments:
        key: a JAX PRNG key.
        logits: log-probabilities up to a constant; `-inf` marks impossible classes.

    Returns:
        Int32 class indices of shape `logits.shape[:-1]`.
    """
    race = logits.astype(jnp.float32) - jnp.log(sample_exponential(key, logits.shape))
    return jnp.argmax(race, axis=-1).astype(jnp.int32)


@typecheck
def sample_logistic_mixture(
    key: PRNGKeyArray, params: Float[Array, "*B P"], num_classes: int
) -> Int[Array, "*B"]:
    """Draw one class per row from a mixture of discretised logistics (see
    [`eqdd.outputs.mixture_log_prob_of`][] for the parameters and the bins).

    A component by an exponential race on the mixture logits, then a logistic value
    `mean + scale·log(E1/E2)` (`E1, E2 ~ Exp(1)` independent: their log-ratio is a standard logistic,
    with both tails at full float32 precision), then its bin; the outer bins reach to `±∞`, so the draw
    is exact for the discretised law.

    Arguments:
        key: a JAX PRNG key.
        params: `3M` mixture parameters per row.
        num_classes: `K`, the bins of `[-1, 1]`.

    Returns:
        Int32 classes in `0..K-1`, of shape `params.shape[:-1]`.
    """
    component_key, value_key = jax.random.split(key)
    log_weights, means, log_scales = outputs.mixture_parameters(params)
    component = sample_categorical(component_key, log_weights)[..., None]
    mean = jnp.take_along_axis(means, component, axis=-1)[..., 0]
    scale = jnp.exp(jnp.take_along_axis(log_scales, component, axis=-1)[..., 0])
    races = sample_exponential(value_key, (2, *mean.shape))
    value = mean + scale * (jnp.log(races[0]) - jnp.log(races[1]))
    bins = jnp.round((value + 1.0) * (num_classes - 1) / 2.0)
    return jnp.clip(bins, 0, num_classes - 1).astype(jnp.int32)
