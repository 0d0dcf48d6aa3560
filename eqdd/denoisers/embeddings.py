"""Fixed sinusoidal features for positions and diffusion steps."""

import math

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, Int

from eqdd._typing import typecheck


@typecheck
def sinusoidal_angles(values: Float[Array, " N"], width: int, max_scale: float = 1e4) -> Float[Array, "N W"]:
    """`values[n]·ω_i` for the `width/2` geometrically spaced frequencies `ω_i` from 1 down to
    `1/max_scale`: the angles behind [`sinusoidal_features`][] and rotary embeddings."""
    if width % 2:
        raise ValueError(f"sinusoidal features need an even width, got {width}")
    half = width // 2
    frequencies = jnp.exp(-math.log(max_scale) * jnp.arange(half) / max(half - 1, 1))
    return values[:, None] * frequencies[None, :]


@typecheck
def sinusoidal_features(
    values: Float[Array, " N"], width: int, max_scale: float = 1e4
) -> Float[Array, "N {width}"]:
    """Sine and cosine features of `values` at geometrically spaced frequencies.

    Arguments:
        values: the positions or (rescaled) steps to embed.
        width: the feature width; must be even.
        max_scale: the longest wavelength, `2π·max_scale`.

    Returns:
        An array of shape `(N, width)`: `width/2` sines then `width/2` cosines.
    """
    angles = sinusoidal_angles(values, width, max_scale)
    return jnp.concatenate([jnp.sin(angles), jnp.cos(angles)], axis=-1)


def step_embedding(
    mlp: tuple[eqx.nn.Linear, eqx.nn.Linear], t: Int[Array, ""] | int, num_steps: int, width: int
) -> Float[Array, " E"]:
    """The denoisers' embedding of the step `t`: sinusoidal features of `t·1000/num_steps` (so every
    process's steps span the same range) through a two-layer MLP with a swish between.

    Arguments:
        mlp: the two layers, `width -> hidden -> E`.
        t: the step.
        num_steps: the number of steps (the largest `t` plus one).
        width: the features' width, the first layer's input.

    Returns:
        The embedding, the second layer's output.
    """
    first, second = mlp
    scaled_t = jnp.asarray(t, jnp.float32)[None] * (1000.0 / num_steps)
    return second(jax.nn.swish(first(sinusoidal_features(scaled_t, width)[0])))
