"""Multi-head attention, the hot path of the transformer denoisers, behind interchangeable backends.

Every backend computes the same function of one sequence, with the same masking rule (query `i` sees
key `j` iff `key_mask[j]` and `segment_ids[i] == segment_ids[j]`) and the same convention for a query
that sees no key (its output is zero):

- `"auto"` (the default): `"reference"` on a CPU, where it is the fastest (17% more training tokens per
  second than `"xla"` for the text8 default, `benchmarks/text8_recipes.py`), `"xla"` elsewhere.
- `"reference"`: einsum and softmax in float32, materialising the `(H, S, S)` scores. The oracle.
- `"xla"`: `jax.nn.dot_product_attention(implementation="xla")`. It runs everywhere.
- `"cudnn"`: `jax.nn.dot_product_attention(implementation="cudnn")`, NVIDIA GPUs only. cuDNN's fused
  attention takes 16-bit inputs only, so this backend computes in bfloat16 and casts the result back.
- `"pallas"`: eqdd's flash-attention kernel (`eqdd.denoisers.flash_attention`), with the sequence padded
  to a multiple of the block size and the padding masked out; interpret mode on the CPU.
"""

import math
from typing import Literal

import jax
import jax.numpy as jnp
from jaxtyping import Array, Bool, Float, Int

from eqdd._typing import typecheck
from eqdd.denoisers.flash_attention import flash_attention

Backend = Literal["auto", "reference", "xla", "cudnn", "pallas"]
BACKENDS: tuple[str, ...] = ("auto", "reference", "xla", "cudnn", "pallas")
DEFAULT_BACKEND: Backend = "auto"
PALLAS_BLOCK = 64


def _allowed(
    num_positions: int, key_mask: Bool[Array, " S"] | None, segment_ids: Int[Array, " S"] | None
) -> Bool[Array, "S S"] | None:
    """Which query may see which key; `None` when every query sees every key (no masking to do)."""
    if key_mask is None and segment_ids is None:
        return None
    allowed = jnp.ones((num_positions, num_positions), bool)
    if key_mask is not None:
        allowed = allowed & key_mask[None, :]
    if segment_ids is not None:
        allowed = allowed & (segment_ids[:, None] == segment_ids[None, :])
    return allowed


def _reference(q, k, v, allowed):
    scale = 1.0 / math.sqrt(q.shape[-1])
    logits = jnp.einsum("qhe,khe->hqk", q, k).astype(jnp.float32) * scale
    if allowed is None:
        weights = jax.nn.softmax(logits, axis=-1)
    else:
        weights = jax.nn.softmax(jnp.where(allowed, logits, -1e30), axis=-1) * allowed
    return jnp.einsum("hqk,khe->qhe", weights.astype(v.dtype), v)


def _fused(q, k, v, allowed, implementation):
    dtype = v.dtype
    if implementation == "cudnn":
        q, k, v = (x.astype(jnp.bfloat16) for x in (q, k, v))
    if allowed is None:
        return jax.nn.dot_product_attention(q, k, v, implementation=implementation).astype(dtype)
    out = jax.nn.dot_product_attention(q, k, v, mask=allowed[None], implementation=implementation)
    return (out * allowed.any(axis=-1)[:, None, None]).astype(dtype)


def _pallas(q, k, v, key_mask, segment_ids):
    num_positions = q.shape[0]
    pad = -num_positions % PALLAS_BLOCK
    segments = jnp.zeros(num_positions, jnp.int32) if segment_ids is None else segment_ids.astype(jnp.int32)
    kv_segments = segments if key_mask is None else jnp.where(key_mask, segments, -1)
    # Padded queries (segment -2) and padded keys (segment -1) never meet anything real.
    q_segments = jnp.pad(segments, (0, pad), constant_values=-2)
    kv_segments = jnp.pad(kv_segments, (0, pad), constant_values=-1)
    q, k, v = (jnp.pad(x, ((0, pad), (0, 0), (0, 0))).transpose(1, 0, 2) for x in (q, k, v))
    interpret = jax.default_backend() == "cpu"
    out = flash_attention(q, k, v, q_segments, kv_segments, PALLAS_BLOCK, PALLAS_BLOCK, interpret)
    return out.transpose(1, 0, 2)[:num_positions]


@typecheck
def dot_product_attention(
    q: Float[Array, "S H E"],
    k: Float[Array, "S H E"],
    v: Float[Array, "S H E"],
    *,
    key_mask: Bool[Array, " S"] | None = None,
    segment_ids: Int[Array, " S"] | None = None,
    backend: str = DEFAULT_BACKEND,
) -> Float[Array, "S H E"]:
    """Bidirectional scaled dot-product attention over one sequence (vmap it for batches).

    Arguments:
        q, k, v: queries, keys and values, each of shape `(S, H, E)`: sequence, heads, head width.
        key_mask: which keys may be attended to (default: all), e.g. `False` on padding.
        segment_ids: non-negative segment numbers of packed sequences; attention stays within a
            segment (default: one segment).
        backend: one of `BACKENDS` (see the module docstring).

    Returns:
        The attended values, of shape `(S, H, E)` and the dtype of `v`; zero where a query sees no key.
    """
    if backend == "auto":
        backend = "reference" if jax.default_backend() == "cpu" else "xla"
    if backend == "pallas":
        return _pallas(q, k, v, key_mask, segment_ids)
    allowed = _allowed(q.shape[0], key_mask, segment_ids)
    if backend == "reference":
        return _reference(q, k, v, allowed)
    if backend in ("xla", "cudnn"):
        return _fused(q, k, v, allowed, backend)
    raise ValueError(f"unknown attention backend {backend!r}; choose one of {', '.join(BACKENDS)}")
