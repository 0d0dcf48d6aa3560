"""A Pallas flash-attention kernel with segment masking, forward and backward.

The kernel works on one sequence laid out as `(H, S, E)` (heads, positions, head width) with `S` a
multiple of both block sizes; `eqdd.denoisers.attention` pads to that and vmaps over batches. Query
position `i` may attend to key position `j` exactly when `q_segments[i] == kv_segments[j]`, which
expresses key padding (give padded keys a segment no query has), packed sequences, or both.

The softmax is computed online (FlashAttention-2): scores, running maxima, normalisers and
accumulators are float32 whatever the input dtype, and the output is cast back to the input dtype. A
query row with no allowed key returns zeros, and its gradients are zero. The backward pass recomputes
the probabilities block by block from the saved log-normalisers, in two kernels (one for `dq`, one for
`dk` and `dv`), so memory stays linear in `S`.

On the CPU the kernels run in Pallas's interpret mode (for tests); on a GPU they compile through
Pallas's Triton lowering.
"""

import functools
import math

import jax
import jax.numpy as jnp
from jax.experimental import pallas as pl

_NEG = -1e30  # a finite "minus infinity" for masked scores, so that no inf - inf = nan arises


def _scores(q, k, q_segments, kv_segments, scale):
    """Scaled float32 scores of a query block against a key block, and where they are allowed."""
    s = jax.lax.dot_general(q, k, (((1,), (1,)), ((), ())), preferred_element_type=jnp.float32) * scale
    allowed = q_segments[:, None] == kv_segments[None, :]
    return jnp.where(allowed, s, _NEG), allowed


def _forward_kernel(q_ref, k_ref, v_ref, qs_ref, ks_ref, o_ref, lse_ref, *, block_k, scale):
    q = q_ref[...]
    q_segments = qs_ref[...]
    block_q, width = q.shape

    def body(j, carry):
        m, norm, acc = carry
        keys = pl.ds(pl.multiple_of(j * block_k, block_k), block_k)
        s, allowed = _scores(q, k_ref[keys, :], q_segments, ks_ref[keys], scale)
        m_new = jnp.maximum(m, s.max(axis=-1))
        p = jnp.where(allowed, jnp.exp(s - m_new[:, None]), 0.0)
        alpha = jnp.exp(m - m_new)
        v = v_ref[keys, :]
        pv = jax.lax.dot_general(
            p.astype(v.dtype), v, (((1,), (0,)), ((), ())), preferred_element_type=jnp.float32
        )
        return m_new, alpha * norm + p.sum(axis=-1), alpha[:, None] * acc + pv

    init = (
        jnp.full((block_q,), _NEG, jnp.float32),
        jnp.zeros((block_q,), jnp.float32),
        jnp.zeros((block_q, width), jnp.float32),
    )
    m, norm, acc = jax.lax.fori_loop(0, k_ref.shape[0] // block_k, body, init)
    has_key = norm > 0
    safe_norm = jnp.where(has_key, norm, 1.0)
    o_ref[...] = (acc / safe_norm[:, None]).astype(o_ref.dtype)
    lse_ref[...] = jnp.where(has_key, m + jnp.log(safe_norm), 0.0)


def _probabilities(q, k, q_segments, kv_segments, lse, scale):
    s, allowed = _scores(q, k, q_segments, kv_segments, scale)
    return jnp.where(allowed, jnp.exp(s - lse[:, None]), 0.0)


def _dq_kernel(q_ref, k_ref, v_ref, qs_ref, ks_ref, do_ref, lse_ref, delta_ref, dq_ref, *, block_k, scale):
    q, do, lse, delta = q_ref[...], do_ref[...], lse_ref[...], delta_ref[...]
    q_segments = qs_ref[...]

    def body(j, dq):
        keys = pl.ds(pl.multiple_of(j * block_k, block_k), block_k)
        k, v = k_ref[keys, :], v_ref[keys, :]
        p = _probabilities(q, k, q_segments, ks_ref[keys], lse, scale)
        dp = jax.lax.dot_general(do, v, (((1,), (1,)), ((), ())), preferred_element_type=jnp.float32)
        ds = p * (dp - delta[:, None])
        return dq + jax.lax.dot_general(
            ds.astype(k.dtype), k, (((1,), (0,)), ((), ())), preferred_element_type=jnp.float32
        )

    dq = jax.lax.fori_loop(0, k_ref.shape[0] // block_k, body, jnp.zeros(q.shape, jnp.float32))
    dq_ref[...] = (dq * scale).astype(dq_ref.dtype)


def _dkv_kernel(
    q_ref, k_ref, v_ref, qs_ref, ks_ref, do_ref, lse_ref, delta_ref, dk_ref, dv_ref, *, block_q, scale
):
    k, v = k_ref[...], v_ref[...]
    kv_segments = ks_ref[...]

    def body(i, carry):
        dk, dv = carry
        rows = pl.ds(pl.multiple_of(i * block_q, block_q), block_q)
        q, do = q_ref[rows, :], do_ref[rows, :]
        p = _probabilities(q, k, qs_ref[rows], kv_segments, lse_ref[rows], scale)
        dv = dv + jax.lax.dot_general(
            p.astype(do.dtype), do, (((0,), (0,)), ((), ())), preferred_element_type=jnp.float32
        )
        dp = jax.lax.dot_general(do, v, (((1,), (1,)), ((), ())), preferred_element_type=jnp.float32)
        ds = p * (dp - delta_ref[rows][:, None])
        dk = dk + jax.lax.dot_general(
            ds.astype(q.dtype), q, (((0,), (0,)), ((), ())), preferred_element_type=jnp.float32
        )
        return dk, dv

    zeros = jnp.zeros(k.shape, jnp.float32)
    dk, dv = jax.lax.fori_loop(0, q_ref.shape[0] // block_q, body, (zeros, zeros))
    dk_ref[...] = (dk * scale).astype(dk_ref.dtype)
    dv_ref[...] = dv.astype(dv_ref.dtype)


def _output(like, shape, dtype):
    """The shape of a kernel output that varies over `shard_map`'s manual axes as `like` does."""
    return jax.ShapeDtypeStruct(shape, dtype, manual_axis_type=jax.typeof(like).manual_axis_type)


def _specs(num_positions, width, block):
    """Block specs: a block of rows of an `(H, S, E)` array, the whole `(S, E)` of one head, and
    the same two for per-position `(H, S)` or `(S,)` vectors."""
    return dict(
        rows=pl.BlockSpec((None, block, width), lambda h, i: (h, i, 0)),
        whole=pl.BlockSpec((None, num_positions, width), lambda h, i: (h, 0, 0)),
        row_vector=pl.BlockSpec((None, block), lambda h, i: (h, i)),
        whole_vector=pl.BlockSpec((None, num_positions), lambda h, i: (h, 0)),
        segment_rows=pl.BlockSpec((block,), lambda h, i: (i,)),
        segment_whole=pl.BlockSpec((num_positions,), lambda h, i: (0,)),
    )


def _forward(q, k, v, q_segments, kv_segments, block_q, block_k, interpret):
    heads, num_positions, width = q.shape
    if num_positions % block_q or num_positions % block_k:
        raise ValueError(
            f"the sequence length {num_positions} must be a multiple of block_q ({block_q}) and "
            f"block_k ({block_k}); pad it (eqdd.denoisers.attention does)"
        )
    specs = _specs(num_positions, width, block_q)
    return pl.pallas_call(
        functools.partial(_forward_kernel, block_k=block_k, scale=1.0 / math.sqrt(width)),
        out_shape=(_output(q, q.shape, q.dtype), _output(q, (heads, num_positions), jnp.float32)),
        grid=(heads, num_positions // block_q),
        in_specs=[
            specs["rows"],
            specs["whole"],
            specs["whole"],
            specs["segment_rows"],
            specs["segment_whole"],
        ],
        out_specs=(specs["rows"], specs["row_vector"]),
        interpret=interpret,
        name="eqdd_flash_attention_forward",
    )(q, k, v, q_segments, kv_segments)


@functools.partial(jax.custom_vjp, nondiff_argnums=(5, 6, 7))
def flash_attention(q, k, v, q_segments, kv_segments, block_q=64, block_k=64, interpret=False):
    """Attention of one sequence, `softmax(q kᵀ/√E) v` restricted to equal segments.

    Arguments:
        q, k, v: arrays of shape `(H, S, E)`; `S` must be a multiple of `block_q` and `block_k`.
        q_segments, kv_segments: int32 arrays of shape `(S,)`; query `i` sees key `j` iff they are equal.
        block_q, block_k: the query and key block sizes.
        interpret: run the kernels in Pallas's interpret mode (required on the CPU).

    Returns:
        The attended values, shape `(H, S, E)`, dtype of `q`; zero rows where a query sees no key.
    """
    return _forward(q, k, v, q_segments, kv_segments, block_q, block_k, interpret)[0]


def _flash_forward(q, k, v, q_segments, kv_segments, block_q, block_k, interpret):
    out, lse = _forward(q, k, v, q_segments, kv_segments, block_q, block_k, interpret)
    return out, (q, k, v, q_segments, kv_segments, out, lse)


def _flash_backward(block_q, block_k, interpret, residuals, d_out):
    q, k, v, q_segments, kv_segments, out, lse = residuals
    heads, num_positions, width = q.shape
    scale = 1.0 / math.sqrt(width)
    delta = jnp.einsum("hse,hse->hs", d_out.astype(jnp.float32), out.astype(jnp.float32))
    inputs = (q, k, v, q_segments, kv_segments, d_out, lse, delta)

    q_specs = _specs(num_positions, width, block_q)
    dq = pl.pallas_call(
        functools.partial(_dq_kernel, block_k=block_k, scale=scale),
        out_shape=_output(q, q.shape, q.dtype),
        grid=(heads, num_positions // block_q),
        in_specs=[
            q_specs["rows"],
            q_specs["whole"],
            q_specs["whole"],
            q_specs["segment_rows"],
            q_specs["segment_whole"],
            q_specs["rows"],
            q_specs["row_vector"],
            q_specs["row_vector"],
        ],
        out_specs=q_specs["rows"],
        interpret=interpret,
        name="eqdd_flash_attention_dq",
    )(*inputs)

    k_specs = _specs(num_positions, width, block_k)
    dk, dv = pl.pallas_call(
        functools.partial(_dkv_kernel, block_q=block_q, scale=scale),
        out_shape=(_output(k, k.shape, k.dtype), _output(v, v.shape, v.dtype)),
        grid=(heads, num_positions // block_k),
        in_specs=[
            k_specs["whole"],
            k_specs["rows"],
            k_specs["rows"],
            k_specs["segment_whole"],
            k_specs["segment_rows"],
            k_specs["whole"],
            k_specs["whole_vector"],
            k_specs["whole_vector"],
        ],
        out_specs=(k_specs["rows"], k_specs["rows"]),
        interpret=interpret,
        name="eqdd_flash_attention_dkv",
    )(*inputs)
    return dq, dk, dv, None, None


flash_attention.defvjp(_flash_forward, _flash_backward)
