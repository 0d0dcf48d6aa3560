"""Generation from a Glauber Generative Model: time-dependent heat-bath (Glauber) dynamics.

Start from the stationary law, `x_T ~ ν^L` (`u^L` for flip, `Π^L` for replace), then for `t = T-1, …, 0`
make one network call on `x_{t+1}` with position `i = i_t` replaced by the query token, and resample
that position from the reverse step

    q(a) ∝ p̂_t(a | s) · P(x_{t+1}^i = b | x_t^i = a),     p̂_t = softmax(f + log ν),   b = x_{t+1}^i,

sharpened by a temperature (dividing `log q`), then restricted to its top-p set, then drawn exactly with
the exponential race of [`eqdd.samplers.sample_categorical`][]. With a perfect classifier and the true
law of `x_T` this reproduces the data law exactly; starting from `ν^L` instead costs the prior mismatch
(the flip kernel keeps a token with probability `κ^sweeps`).

Zero-shot infilling: known positions hold their values from the start and are never resampled.
"""

import jax
import jax.numpy as jnp
from jaxtyping import Array, Bool, Float, Int, PRNGKeyArray

from eqdd import outputs
from eqdd._typing import Denoiser, typecheck
from eqdd.processes import glauber
from eqdd.processes.glauber import GlauberProcess
from eqdd.samplers.categorical import sample_categorical


def _check_top_p(top_p: float) -> None:
    if not 0.0 < top_p <= 1.0:
        raise ValueError(f"top_p must lie in (0, 1], got {top_p}")


@typecheck
def top_p_filter(log_probs: Float[Array, " K"], top_p: float) -> Float[Array, " K"]:
    """Keep the smallest set of most likely classes whose mass is at least `top_p`, renormalised.

    Classes are ranked by probability (ties by index); a class is kept when the mass of the classes
    ranked above it is below `top_p`, so the most likely class is always kept.

    Arguments:
        log_probs: normalised log-probabilities.
        top_p: the mass to keep, in `(0, 1]`; 1 returns `log_probs` unchanged.

    Returns:
        Normalised log-probabilities, `-inf` outside the kept set.
    """
    _check_top_p(top_p)
    if top_p == 1.0:
        return log_probs
    order = jnp.argsort(-log_probs, stable=True)
    ranked = jnp.exp(log_probs[order])
    mass_above = jnp.cumsum(ranked) - ranked
    keep = jnp.zeros(log_probs.shape, bool).at[order].set(mass_above < top_p)
    return jax.nn.log_softmax(jnp.where(keep, log_probs, -jnp.inf))


@typecheck
def reverse_step_log_probs(
    process: GlauberProcess,
    logits: Float[Array, " K"],
    b: Int[Array, ""],
    temperature: Float[Array, ""] | float = 1.0,
    top_p: float = 1.0,
) -> Float[Array, " K"]:
    """The distribution of `x_t^{i_t}` given `x_{t+1}`: one reverse (heat-bath) step.

    The kernel is the same at every step, so `t` enters only through the logits (and, in
    [`eqdd.samplers.sample_ggm`][], through which steps are tempered).

    Arguments:
        process: the forward process.
        logits: the classifier's `K` logits at `i_t` for the input `x_{t+1}` with the query at `i_t`.
        b: `x_{t+1}^{i_t}`.
        temperature: divides `log q` before renormalising; 1 leaves it unchanged.
        top_p: the top-p mass, applied after the temperature ([`eqdd.samplers.top_p_filter`][]); 1 keeps
            everything.

    Returns:
        Normalised log-probabilities over the `K` classes.
    """
    posterior = glauber.posterior_log_probs(process, outputs.classifier_log_probs(process, logits), b)
    return top_p_filter(jax.nn.log_softmax(posterior / temperature), top_p)


@typecheck
def sample_ggm(
    denoiser: Denoiser,
    process: GlauberProcess,
    key: PRNGKeyArray,
    num_samples: int,
    num_positions: int,
    *,
    temperature: float = 1.0,
    temperature_fraction: float = 1.0,
    top_p: float = 1.0,
    known: Bool[Array, "*N {num_positions}"] | None = None,
    known_tokens: Int[Array, "*N {num_positions}"] | None = None,
) -> Int[Array, "{num_samples} {num_positions}"]:
    """Generate sequences with `T` network calls (one per step), optionally infilling known positions.

    Arguments:
        denoiser: the classifier network, `(tokens, t) -> logits (L, K)`.
        process: the forward process the network was trained on.
        key: a PRNG key.
        num_samples: how many sequences.
        num_positions: the sequence length `L`, which must be the process's.
        temperature: the sampling temperature, positive.
        temperature_fraction: the temperature applies to the first `round(fraction·T)` denoising steps
            (`t = T-1` downwards) and 1 to the rest; the paper's images use 0.5.
        top_p: the top-p mass of every step, in `(0, 1]`.
        known: which positions are given (shape `(L,)` or `(num_samples, L)`); `None` for none.
        known_tokens: their values, tokens in `X` (same shape as `known`; ignored where not known).

    Returns:
        Int32 samples of shape `(num_samples, L)`. Under the replace kernel a position may hold `φ` (class
        `V`) if the network gives it mass at the last visit.

    Raises:
        ValueError: for `num_positions` other than the process's `L`, or an option out of its range.
    """
    if num_positions != process.num_positions:
        raise ValueError(
            f"the process generates sequences of {process.num_positions} tokens, not {num_positions}"
        )
    _check_top_p(top_p)
    if temperature <= 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    if not 0.0 <= temperature_fraction <= 1.0:
        raise ValueError(f"temperature_fraction must lie in [0, 1], got {temperature_fraction}")
    if (known is None) != (known_tokens is None):
        raise ValueError("infilling needs both `known` and `known_tokens`")
    num_steps = process.num_steps
    shape = (num_samples, num_positions)
    if known is None:
        known, known_tokens = jnp.zeros(shape, bool), jnp.zeros(shape, jnp.int32)
    known = jnp.broadcast_to(known, shape)
    known_tokens = jnp.broadcast_to(known_tokens, shape).astype(jnp.int32)
    num_tempered = round(temperature_fraction * num_steps)
    batched_denoiser = jax.vmap(denoiser, in_axes=(0, None))
    step = jax.vmap(reverse_step_log_probs, in_axes=(None, 0, 0, None, None))

    def denoise(x, inputs):
        t, step_key = inputs
        i = glauber.position(process, t)
        logits = batched_denoiser(jax.vmap(glauber.with_query, in_axes=(None, 0, None))(process, x, t), t)
        tempered = num_steps - 1 - t < num_tempered
        step_temperature = jnp.where(tempered, temperature, 1.0).astype(logits.dtype)
        draws = sample_categorical(step_key, step(process, logits[:, i], x[:, i], step_temperature, top_p))
        return x.at[:, i].set(jnp.where(known[:, i], x[:, i], draws)), None

    start_key, steps_key = jax.random.split(key)
    noise = jnp.broadcast_to(glauber.noise_log_probs(process), (*shape, process.num_classes))
    start = jnp.where(known, known_tokens, sample_categorical(start_key, noise))
    steps = jnp.arange(num_steps - 1, -1, -1, dtype=jnp.int32)
    samples, _ = jax.lax.scan(denoise, start, (steps, jax.random.split(steps_key, num_steps)))
    return samples
