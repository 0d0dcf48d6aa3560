"""Multi-head attention, the hot path of the transformer denoisers."""

import math

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

from eqdd._typing import typecheck


@typecheck
def dot_product_attention(
    q: Float[Array, "S H E"], k: Float[Array, "S H E"], v: Float[Array, "S H E"]
) -> Float[Array, "S H E"]:
    """Bidirectional scaled dot-product attention over one sequence.

    The softmax is taken in float32 whatever the input dtype.

    Arguments:
        q, k, v: queries, keys and values, each of shape `(S, H, E)`: sequence, heads, head width.

    Returns:
        The attended values, of shape `(S, H, E)` and the dtype of `v`.
    """
    scale = 1.0 / math.sqrt(q.shape[-1])
    logits = jnp.einsum("qhe,khe->hqk", q, k).astype(jnp.float32) * scale
    weights = jax.nn.softmax(logits, axis=-1).astype(v.dtype)
    return jnp.einsum("hqk,khe->qhe", weights, v)
