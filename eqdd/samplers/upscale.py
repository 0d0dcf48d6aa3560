"""Generation from an Upscale ARDM, stage by stage (reference §3.5, Algorithm 3).

Every position starts at the absorbing state `x^(0)`. Stage `s` draws a fresh order per sample and runs
the OA-ARDM policy sampler of `eqdd.samplers.ancestral` over the stage: segment `j` of the stage's policy
calls the network once at `t_in = b_j`, with the input `x^(s+1)` at the revealed positions
(`sigma < b_j`) and `x^(s)` elsewhere, and draws the digits of every position with `b_j <= sigma < b_{j+1}`
from that output. After `D` draws the stage's level is complete and the next stage starts from it. The
default policy `0..D-1` in every stage is the exact sampler (`S·D` network calls).
"""

import jax
import jax.numpy as jnp
from jaxtyping import Array, Int, PRNGKeyArray

from eqdd import outputs
from eqdd._typing import UpscaleDenoiser, typecheck
from eqdd.processes import absorbing, upscale
from eqdd.processes.upscale import UpscaleTransitions
from eqdd.samplers.categorical import sample_categorical


@typecheck
def sample_upscale_stages(
    denoiser: UpscaleDenoiser,
    process: UpscaleTransitions,
    key: PRNGKeyArray,
    num_samples: int,
    num_positions: int,
    *,
    policy: Int[Array, "S P"] | None = None,
) -> Int[Array, "{num_samples} S {num_positions}"]:
    """Generate sequences and keep every level they pass through.

    Arguments:
        denoiser: `(tokens, t, revealed, stage) -> output` (see `eqdd._typing.UpscaleDenoiser`).
        process: the maps and the output parametrisation the model was trained with.
        key: a PRNG key.
        num_samples: how many sequences.
        num_positions: the sequence length `D`.
        policy: `(S, P)` left boundaries, row `s` for stage `s` (see `eqdd.processes.absorbing.segments`;
            plan them with [`eqdd.policy.optimal_stage_policies`][]); `None` means `0..D-1` in every
            stage, one position per network call.

    Returns:
        Int32 levels of shape `(num_samples, S, D)`: `[:, s]` is `x^(s+1)`, the values after stage `s`
        (map them to the data range with [`eqdd.processes.upscale.data_floor`][] to picture them), and
        `[:, -1]` the samples (data classes).
    """
    num_stages = process.num_stages
    if policy is None:
        policy = jnp.tile(jnp.arange(num_positions, dtype=jnp.int32), (num_stages, 1))
    if policy.shape[0] != num_stages:
        raise ValueError(f"the policy has {policy.shape[0]} rows but the process has {num_stages} stages")
    batched_denoiser = jax.vmap(denoiser, in_axes=(0, None, 0, None))
    batched_log_probs = jax.vmap(outputs.stage_log_probs, in_axes=(None, 0, 0, None))

    def generate_stage(parent, stage_inputs):
        stage, stage_policy, stage_key = stage_inputs
        order_key, draw_key = jax.random.split(stage_key)
        sigmas = jax.vmap(absorbing.sample_order, in_axes=(0, None))(
            jax.random.split(order_key, num_samples), num_positions
        )
        lefts, rights = absorbing.segments(stage_policy, num_positions)

        def generate_segment(current, segment):
            left, right, step_key = segment
            output = batched_denoiser(current, stage * num_positions + left, sigmas < left, stage)
            log_probs = batched_log_probs(process, output, parent, stage)
            digits = sample_categorical(step_key, log_probs)
            children = upscale.child_values(process, parent, digits, stage)
            in_segment = (sigmas >= left) & (sigmas < right)
            return jnp.where(in_segment, children, current), None

        segments = (lefts, rights, jax.random.split(draw_key, stage_policy.shape[0]))
        level, _ = jax.lax.scan(generate_segment, parent, segments)
        return level, level

    start = jnp.full((num_samples, num_positions), process.absorbing_state, jnp.int32)
    stages = (jnp.arange(num_stages, dtype=jnp.int32), policy, jax.random.split(key, num_stages))
    _, levels = jax.lax.scan(generate_stage, start, stages)
    return jnp.swapaxes(levels, 0, 1)


@typecheck
def sample_upscale(
    denoiser: UpscaleDenoiser,
    process: UpscaleTransitions,
    key: PRNGKeyArray,
    num_samples: int,
    num_positions: int,
    *,
    policy: Int[Array, "S P"] | None = None,
) -> Int[Array, "{num_samples} {num_positions}"]:
    """Generate sequences (data classes); the last level of [`sample_upscale_stages`][], same arguments.

    Returns:
        Int32 samples of shape `(num_samples, D)`.
    """
    levels = sample_upscale_stages(denoiser, process, key, num_samples, num_positions, policy=policy)
    return levels[:, -1]
