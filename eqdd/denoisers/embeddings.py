"""Fixed sinusoidal features for positions and diffusion steps."""

import math

import jax.numpy as jnp
from jaxtyping import Array, Float

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
