"""Generation from an OA-ARDM: the D-step ancestral sampler and its parallel (policy) form.

A policy is a strictly increasing list of left boundaries `0 = b_0 < b_1 < … < b_{K-1} < D`; with
`b_K = D`, segment `j` makes one network call at `t = b_j` and draws every position with
`b_j <= sigma < b_{j+1}` independently from it. The default policy `0, 1, …, D-1` is the exact
ancestral sampler of the paper (Algorithm 1): one position per call.

Infilling (zero-shot, paper §3): positions whose values are given come first in every order, so the
model completes them as it would have had it generated them itself; with `k` given positions a policy
may start at `b_0 = k` (steps before it have nothing left to draw).
"""

import jax
import jax.numpy as jnp
from jaxtyping import Array, Bool, Float, Int, PRNGKeyArray

from eqdd._typing import Denoiser, typecheck
from eqdd.processes import absorbing
from eqdd.processes.absorbing import AbsorbingProcess
from eqdd.samplers.categorical import sample_categorical, sample_logistic_mixture


@typecheck
def sample_oa_ardm(
    denoiser: Denoiser,
    process: AbsorbingProcess,
    key: PRNGKeyArray,
    num_samples: int,
    num_positions: int,
    *,
    policy: Int[Array, " P"] | None = None,
    known: Bool[Array, " {num_positions}"] | None = None,
    known_tokens: Int[Array, " {num_positions}"] | None = None,
) -> Int[Array, "{num_samples} {num_positions}"]:
    """Generate sequences, each with its own random order, optionally around given positions.

    Arguments:
        denoiser: maps a corrupted sequence and `t` to its output (`K` logits or mixture parameters
            per position, as `process` says).
        process: the absorbing process the model was trained with.
        key: a PRNG key.
        num_samples: how many sequences.
        num_positions: the sequence length `D`.
        policy: left boundaries of the segments (see the module docstring); `None` means
            `0, 1, …, D-1`, one position per network call.
        known: which positions are given (the same for every sample); `None` for none.
        known_tokens: their values (ignored where not `known`).

    Returns:
        Int32 samples of shape `(num_samples, D)`, equal to `known_tokens` where `known`.
    """
    if (known is None) != (known_tokens is None):
        raise ValueError("infilling needs both `known` and `known_tokens`")
    absorbing_token = process.absorbing_token
    if known is None:
        known = jnp.zeros(num_positions, bool)
        known_tokens = jnp.full(num_positions, absorbing_token, jnp.int32)
    # Only the positions of a segment are drawn: at most `width` of them, the positions at steps
    # `left, ..., left + width - 1` of each order (one per call for the default policy).
    width = 1 if policy is None else num_positions
    if policy is None:
        policy = jnp.arange(num_positions, dtype=jnp.int32)
    lefts, rights = absorbing.segments(policy, num_positions)
    order_key, draw_key = jax.random.split(key)
    sigmas = jax.vmap(absorbing.sample_order, in_axes=(0, None))(
        jax.random.split(order_key, num_samples), num_positions
    )
    # by_step[n, s]: the position generated at step s; given positions first, each group in sigma's order
    by_step = jnp.argsort(jnp.where(known, sigmas, sigmas + num_positions), axis=1)
    batched_denoiser = jax.vmap(denoiser, in_axes=(0, None))
    rows = jnp.arange(num_samples)[:, None]

    def generate_segment(x, segment):
        left, right, step_key = segment
        steps = left + jnp.arange(width)
        positions = by_step[:, steps % num_positions]  # distinct positions: width <= D
        output = batched_denoiser(x, left)[rows, positions]
        draws = _draw(process, step_key, output)
        chosen = jnp.where((steps < right) & ~known[positions], draws, x[rows, positions])
        return x.at[rows, positions].set(chosen), None

    start = jnp.broadcast_to(jnp.where(known, known_tokens, absorbing_token), (num_samples, num_positions))
    segments = (lefts, rights, jax.random.split(draw_key, policy.shape[0]))
    samples, _ = jax.lax.scan(generate_segment, start, segments)
    return samples


def _draw(process: AbsorbingProcess, key: PRNGKeyArray, output: Float[Array, "*B P"]) -> Int[Array, "*B"]:
    """One class per row of the network's output, from the distribution the process says it is."""
    if process.mixture_components:
        return sample_logistic_mixture(key, output, process.num_classes)
    return sample_categorical(key, output)
