"""What a denoiser's output means: the distributions each model's network parametrises, in one place
for the objectives, the samplers and the codec.

- OA-ARDM: `K` logits per position, a categorical over the data classes ([`log_prob_of`][],
  [`oa_probs`][]).
- Upscale ARDM: the stage distribution over the `b` candidate children of each position's current
  value, from `K` data logits or `S·b` direct ones ([`stage_log_probs`][]; the maps are
  [`eqdd.processes.upscale`][]).
- GGM: the classifier's `K` logits plus the noise law's log-probabilities, the time-`t` conditional
  ([`classifier_log_probs`][]).
"""

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, Int

from eqdd._typing import typecheck
from eqdd.processes import glauber
from eqdd.processes.glauber import GlauberProcess
from eqdd.processes.upscale import UpscaleTransitions, prefix, valid_digits


def log_prob_of(logits: Float[Array, "D K"], x: Int[Array, " D"]) -> Float[Array, " D"]:
    """An OA-ARDM's `log p(x_k)` at every position, in at least float32 (float64 logits stay float64)."""
    log_probs = jax.nn.log_softmax(logits.astype(jnp.promote_types(logits.dtype, jnp.float32)), axis=-1)
    return jnp.take_along_axis(log_probs, x[:, None], axis=-1)[:, 0]


def oa_probs(logits: Float[Array, "*B D K"]) -> Float[Array, "*B D K"]:
    """An OA-ARDM's categorical probabilities, in float32 (what the codec quantises)."""
    return jax.nn.softmax(logits.astype(jnp.float32), axis=-1)


def _children_log_masses(transitions: UpscaleTransitions, logits: Float[Array, "D K"]) -> Float[Array, "D C"]:
    """The log-mass of every child of every parent at every stage, from data logits (unnormalised).

    Level `S` holds the logits; each coarser level's log-masses are the `logsumexp` of `b` consecutive
    entries of the finer level (padded to a multiple of `b` with the lowest finite float), which is the
    cumulative map summing the probabilities of the classes below each value. Stage `s`'s block is the
    padded level `s + 1`, `counts[s]` rows of `b` children; the blocks are concatenated in stage order.
    """
    low = jnp.finfo(logits.dtype).min
    level, blocks = logits, []
    for stage in range(transitions.num_stages - 1, -1, -1):
        num_parents = transitions.counts[stage]
        width = num_parents * transitions.branch_factor
        padded = jnp.pad(level, ((0, 0), (0, width - level.shape[1])), constant_values=low)
        blocks.append(padded)
        level = jax.nn.logsumexp(padded.reshape(logits.shape[0], num_parents, -1), axis=-1)
    return jnp.concatenate(blocks[::-1], axis=1)


def _data_digit_logits(transitions: UpscaleTransitions, logits, parent, stage):
    """Unnormalised digit log-masses of the data parametrisation: each child's data classes, summed."""
    branch = transitions.branch_factor
    starts = [0]
    for num_parents in transitions.counts[:-2]:
        starts.append(starts[-1] + num_parents * branch)
    first = jnp.asarray(starts, jnp.int32)[stage] + prefix(transitions, parent, stage) * branch
    children = first[:, None] + jnp.arange(branch, dtype=jnp.int32)
    return jnp.take_along_axis(_children_log_masses(transitions, logits), children, axis=1)


@typecheck
def stage_log_probs(
    transitions: UpscaleTransitions,
    output: Float[Array, "D K_out"],
    parent: Int[Array, " D"],
    stage: Int[Array, ""] | int,
    parametrization: str,
) -> Float[Array, "D b"]:
    """The model's `log p(x^(s+1) | x^(s))` at every position, over the `b` candidate children.

    Entry `d` is the log-probability of the child `child_values(parent, d, stage)`; children that do not
    exist get `-inf`, and each row sums to 1 in probability (see the module docstring).

    Arguments:
        transitions: the maps.
        output: the network's output, `K` logits over data classes (`"data"`) or `S·b` (`"direct"`).
        parent: the level-`s` values `x^(s)` of the positions.
        stage: `s`, in `0..S-1`.
        parametrization: `"data"` or `"direct"`.

    Returns:
        Log-probabilities of shape `(D, b)`, in at least float32.
    """
    expected = transitions.num_outputs(parametrization)
    if output.shape[-1] != expected:
        raise ValueError(
            f"the {parametrization} parametrisation needs {expected} outputs per position, "
            f"got {output.shape[-1]}"
        )
    output = output.astype(jnp.promote_types(output.dtype, jnp.float32))
    if parametrization == "data":
        logits = _data_digit_logits(transitions, output, parent, stage)
    else:
        rows = output.reshape(output.shape[0], transitions.num_stages, transitions.branch_factor)
        logits = jax.lax.dynamic_index_in_dim(rows, stage, axis=1, keepdims=False)
    logits = jnp.where(valid_digits(transitions, parent, stage), logits, -jnp.inf)
    return jax.nn.log_softmax(logits, axis=-1)


@typecheck
def classifier_log_probs(process: GlauberProcess, logits: Float[Array, " K"]) -> Float[Array, " K"]:
    """The estimate `log p̂_t(· | s) = log_softmax(f + log ν)` of the time-`t` conditional at `i_t`.

    Arguments:
        process: the forward process.
        logits: the classifier's `K` logits at position `i_t`.

    Returns:
        Normalised log-probabilities over the `K` classes.
    """
    return jax.nn.log_softmax(logits + glauber.noise_log_probs(process))
