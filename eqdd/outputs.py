"""What a denoiser's output means: the distributions each model's network parametrises, in one place
for the objectives, the samplers and the codec.

- OA-ARDM: `K` logits per position, a categorical over the data classes ([`log_prob_of`][],
  [`oa_probs`][]), or a logistic mixture (below), as its [`eqdd.processes.AbsorbingProcess`][] says
  ([`oa_log_prob_of`][]).
- Upscale ARDM: the stage distribution over the `b` candidate children of each position's current
  value, from `K` data logits or `S·b` direct ones ([`stage_log_probs`][]; the maps and the choice
  between the two are [`eqdd.processes.UpscaleTransitions`][]).
- GGM: the classifier's `K` logits plus the noise law's log-probabilities, the time-`t` conditional
  ([`classifier_log_probs`][]).
- Audio OA-ARDM (the paper's baseline for `K = 2^16`): a mixture of `M` discretised logistics per
  position from `3M` outputs ([`mixture_log_prob_of`][], [`mixture_log_probs`][]), so the network never
  emits `K` logits.
"""

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, Int

from eqdd._typing import typecheck
from eqdd.processes import glauber
from eqdd.processes.absorbing import AbsorbingProcess
from eqdd.processes.glauber import GlauberProcess
from eqdd.processes.upscale import UpscaleTransitions, prefix, valid_digits


def log_prob_of(logits: Float[Array, "D K"], x: Int[Array, " D"]) -> Float[Array, " D"]:
    """An OA-ARDM's `log p(x_k)` at every position, in at least float32 (float64 logits stay float64)."""
    log_probs = jax.nn.log_softmax(logits.astype(jnp.promote_types(logits.dtype, jnp.float32)), axis=-1)
    return jnp.take_along_axis(log_probs, x[:, None], axis=-1)[:, 0]


def oa_probs(logits: Float[Array, "*B D K"]) -> Float[Array, "*B D K"]:
    """An OA-ARDM's categorical probabilities, in float32 (what the codec quantises)."""
    return jax.nn.softmax(logits.astype(jnp.float32), axis=-1)


@typecheck
def oa_log_prob_of(
    process: AbsorbingProcess, output: Float[Array, "D P"], x: Int[Array, " D"]
) -> Float[Array, " D"]:
    """An OA-ARDM's `log p(x_k)` at every position, for either of its outputs.

    Arguments:
        process: the absorbing process, which says what the output is.
        output: the network's output, `K` logits or `3M` mixture parameters per position.
        x: the classes.

    Returns:
        Log-probabilities, in at least float32.
    """
    if process.mixture_components:
        return mixture_log_prob_of(output, x, process.num_classes)
    return log_prob_of(output, x)


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
) -> Float[Array, "D b"]:
    """The model's `log p(x^(s+1) | x^(s))` at every position, over the `b` candidate children.

    Entry `d` is the log-probability of the child `child_values(parent, d, stage)`; children that do not
    exist get `-inf`, and each row sums to 1 in probability (see the module docstring).

    Arguments:
        transitions: the maps and the output parametrisation.
        output: the network's output, `K` logits over data classes (`"data"`) or `S·b` (`"direct"`).
        parent: the level-`s` values `x^(s)` of the positions.
        stage: `s`, in `0..S-1`.

    Returns:
        Log-probabilities of shape `(D, b)`, in at least float32.
    """
    expected = transitions.num_outputs
    if output.shape[-1] != expected:
        raise ValueError(
            f"the {transitions.parametrization} parametrisation needs {expected} outputs per position, "
            f"got {output.shape[-1]}"
        )
    output = output.astype(jnp.promote_types(output.dtype, jnp.float32))
    if transitions.parametrization == "data":
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


def _log1mexp(a: Float[Array, "*S"]) -> Float[Array, "*S"]:
    """`log(1 - e^a)` for `a < 0`, accurate on both sides of `-log 2`; `a` is kept below zero so that the
    unused branch of a `where` never produces an infinite gradient."""
    a = jnp.minimum(a, -1e-30)
    near = a > -0.6931  # each branch gets a safe argument where the other is used
    return jnp.where(
        near, jnp.log(-jnp.expm1(jnp.where(near, a, -1.0))), jnp.log1p(-jnp.exp(jnp.where(near, -1.0, a)))
    )


def _log_bin_masses(
    k: Int[Array, "*S"], means: Float[Array, "*S"], log_scales: Float[Array, "*S"], num_classes: int
) -> Float[Array, "*S"]:
    """`log P(k)` of a logistic discretised into `num_classes` equal bins of `[-1, 1]`, the outer bins
    reaching to `±∞` (so the `K` masses sum to one exactly)."""
    half = 1.0 / (num_classes - 1)
    centre = 2.0 * k / (num_classes - 1) - 1.0
    inverse = jnp.exp(-log_scales)
    upper, lower = (centre + half - means) * inverse, (centre - half - means) * inverse
    # log(σ(u) - σ(l)), from whichever side of the logistic keeps the difference accurate; for a bin far
    # narrower than the logistic (u - l < 1e-4, where float32 cannot resolve the difference) the density
    # at the bin's centre times its width, exact to a relative (u - l)²/24
    left = jax.nn.log_sigmoid(upper) + _log1mexp(jax.nn.log_sigmoid(lower) - jax.nn.log_sigmoid(upper))
    right = jax.nn.log_sigmoid(-lower) + _log1mexp(jax.nn.log_sigmoid(-upper) - jax.nn.log_sigmoid(-lower))
    z = (centre - means) * inverse
    midpoint = jnp.log(2.0 * half) - log_scales - z - 2.0 * jax.nn.softplus(-z)
    middle = jnp.where(upper - lower < 1e-4, midpoint, jnp.where(upper + lower > 0, right, left))
    return jnp.where(
        k == 0, jax.nn.log_sigmoid(upper), jnp.where(k == num_classes - 1, jax.nn.log_sigmoid(-lower), middle)
    )


@typecheck
def mixture_parameters(params: Float[Array, "*B P"]) -> tuple[Float[Array, "*B M"], ...]:
    """A mixture's normalised log-weights, means and log-scales (clamped at -7, as PixelCNN++), each
    `(*B, M)` with `P = 3M`, in at least float32."""
    params = params.astype(jnp.promote_types(params.dtype, jnp.float32))
    logits, means, log_scales = jnp.split(params, 3, axis=-1)
    return jax.nn.log_softmax(logits, axis=-1), means, jnp.maximum(log_scales, -7.0)


def _mixture(params: Float[Array, "D P"]) -> tuple[Float[Array, "D 1 M"], ...]:
    """[`mixture_parameters`][] with an axis for the classes, each `(D, 1, M)`."""
    return tuple(a[:, None, :] for a in mixture_parameters(params))


@typecheck
def mixture_log_prob_of(
    params: Float[Array, "D P"], x: Int[Array, " D"], num_classes: int
) -> Float[Array, " D"]:
    """`log p(x_k)` at every position under a mixture of `M` discretised logistics.

    Arguments:
        params: per position, `P = 3M` values: `M` mixture logits, `M` means (on `[-1, 1]`, where
            class `k` sits at `2k/(K-1) - 1`) and `M` log-scales.
        x: the classes.
        num_classes: `K`, at least 2.

    Returns:
        Log-probabilities, in at least float32.
    """
    log_weights, means, log_scales = _mixture(params)
    masses = _log_bin_masses(x[:, None, None], means, log_scales, num_classes)
    return jax.nn.logsumexp(log_weights + masses, axis=-1)[:, 0]


@typecheck
def mixture_log_probs(params: Float[Array, "D P"], num_classes: int) -> Float[Array, "D K"]:
    """The whole table `log p(k)` for `k = 0..K-1` at every position (for small `K`, or one position at a
    time: it holds `D·K·M` values); see [`mixture_log_prob_of`][]."""
    log_weights, means, log_scales = _mixture(params)
    classes = jnp.arange(num_classes)[None, :, None]
    return jax.nn.logsumexp(log_weights + _log_bin_masses(classes, means, log_scales, num_classes), axis=-1)
