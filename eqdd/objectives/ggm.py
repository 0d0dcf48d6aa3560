"""The Glauber Generative Model objective: binary classification, and a likelihood bound in bits.

Notation of [`eqdd.processes.glauber`][]: `K` classes, retention `r`, noise law `ν`, `i = i_t`,
`a = x_t^i`, `b = x_{t+1}^i`, `s = x^{-i}` (the same in `x_t` and `x_{t+1}`). The network sees `x_{t+1}`
with position `i` replaced by the query token, and `t`; its `K` logits `f` at position `i` are one binary
classifier per candidate token.

- **Flip**: "is the token `b` shown at `i` signal (`z = φ`, kept) or noise?". One-sample loss
  `BCE(f_b, 1[z = φ])`; closed form over `z`: `κ·BCE(f_a, 1) + (1 - κ)·Σ_b u(b)·BCE(f_b, 0)`.
- **Replace**: the shown token is always noise, so the true old token `a` (label 1) is contrasted with
  the noise draw `z` (label 0): `BCE(f_a, 1) + BCE(f_z, 0)`; closed form
  `BCE(f_a, 1) + Σ_b Π(b)·BCE(f_b, 0)`.

Both are `w₊·BCE(f_a, 1) + w₋·Σ_b ν(b)·BCE(f_b, 0)` in closed form, `(w₊, w₋) = (κ, 1 - κ)` (flip) or
`(1, 1)` (replace), whose minimiser is `f*_b = log(w₊·p_t(b|s)) - log(w₋·ν(b))`; hence the estimate
`p̂_t = softmax(f + log ν)` of the time-`t` conditional `p_t(· | s)`.

The bound (derived in `shared/reference/ggm.md`): `-log p(x_0) ≤ Σ_{t<T} E_q[KL_t] + KL(q(x_T|x_0) ‖ ν^L)`
with `KL_t = KL(q(x_t^i | b, x_0^i) ‖ p(x_t^i | x_{t+1}))`, both sides of the KL given by Bayes' rule
with the site kernel ([`eqdd.processes.glauber.posterior_log_probs`][]); at `t = 0` the forward posterior
is a point mass and `KL_0 = -log p(x_0^i | x_1)`. All terms are in closed form. Units: `nelbo` and
`step_loss` are bits per token; `nelbo = T·step_loss + prior`, whose mean over a uniform `t` and the
forward draws is the bound divided by `L`, and the `step_loss` at each `t` averaged and summed over `t`
give the bound without its prior term.
"""

import math

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, Int, PRNGKeyArray

from eqdd import outputs
from eqdd._typing import Denoiser, typecheck
from eqdd.objectives.base import AbstractObjective, Terms, step_at
from eqdd.processes import glauber
from eqdd.processes.glauber import GlauberProcess


def _weights(process: GlauberProcess) -> tuple[float, float]:
    """`(w₊, w₋)`, the weights of the positive and negative terms of the closed-form loss."""
    return (process.kappa, 1.0 - process.kappa) if process.kernel == "flip" else (1.0, 1.0)


def _kl(log_q: Float[Array, " K"], log_p: Float[Array, " K"]) -> Float[Array, ""]:
    """`KL(q ‖ p)` with `0·log 0 = 0`, safe to differentiate where `q = 0`."""
    support = log_q > -jnp.inf
    return jnp.sum(jnp.where(support, jnp.exp(log_q) * jnp.where(support, log_q - log_p, 0.0), 0.0))


@typecheck
def expected_classifier_loss(
    process: GlauberProcess, logits: Float[Array, " K"], a: Int[Array, ""]
) -> Float[Array, ""]:
    """The binary cross-entropy averaged over the noise draw `z` in closed form (the default loss).

    Arguments:
        process: the forward process.
        logits: the classifier's logits at `i_t`.
        a: `x_t^{i_t}`, the token before the step.

    Returns:
        `w₊·BCE(f_a, 1) + w₋·Σ_b ν(b)·BCE(f_b, 0)` in nats (module docstring).
    """
    positive, negative = _weights(process)
    nu = jnp.exp(glauber.noise_log_probs(process))
    return positive * jax.nn.softplus(-logits[a]) + negative * jnp.sum(nu * jax.nn.softplus(logits))


@typecheck
def sampled_classifier_loss(
    process: GlauberProcess, logits: Float[Array, " K"], a: Int[Array, ""], z: Int[Array, ""]
) -> Float[Array, ""]:
    """The binary cross-entropy for one noise draw `z`; its mean over `z ~ Π` is the closed form.

    Arguments:
        process: the forward process.
        logits: the classifier's logits at `i_t`.
        a: `x_t^{i_t}`.
        z: the noise draw of the step (`V` is `φ`).

    Returns:
        `BCE(f_b, 1[z = φ])` with `b = x_{t+1}^{i_t}` (flip) or `BCE(f_a, 1) + BCE(f_z, 0)` (replace), nats.
    """
    kept = z == process.phi_token
    if process.kernel == "flip":
        shown = logits[jnp.where(kept, a, z)]
        return jnp.where(kept, jax.nn.softplus(-shown), jax.nn.softplus(shown))
    return jax.nn.softplus(-logits[a]) + jax.nn.softplus(logits[z])


@typecheck
def step_kl(
    process: GlauberProcess, logits: Float[Array, " K"], marginal: Float[Array, " K"], b: Int[Array, ""]
) -> Float[Array, ""]:
    """One step's term of the bound, `KL(q(x_t^i | b, x_0^i) ‖ p(x_t^i | x_{t+1}))`, in nats.

    Arguments:
        process: the forward process.
        logits: the classifier's logits at `i = i_t` for the input `x_{t+1}` (query at `i`) and `t`.
        marginal: `log q(x_t^i | x_0^i)` (a row of [`eqdd.processes.glauber.marginal_log_probs`][]).
        b: `x_{t+1}^i`.

    Returns:
        The KL divergence between the forward posterior and the model's reverse step.
    """
    forward = glauber.posterior_log_probs(process, marginal, b)
    reverse = glauber.posterior_log_probs(process, outputs.classifier_log_probs(process, logits), b)
    return _kl(forward, reverse)


@typecheck
def prior_kl(process: GlauberProcess, x0: Int[Array, " L"]) -> Float[Array, ""]:
    """The prior term `KL(q(x_T | x_0) ‖ ν^L)` in nats, a sum over positions.

    Arguments:
        process: the forward process.
        x0: the clean sequence.

    Returns:
        The KL divergence; it vanishes when every position is forgotten (replace, or `κ → 0`).
    """
    final = glauber.marginal_log_probs(process, x0, process.num_steps)
    log_nu = glauber.noise_log_probs(process)
    return jnp.sum(jax.vmap(_kl, in_axes=(0, None))(final, log_nu))


def _logits_at(
    denoiser: Denoiser, process: GlauberProcess, x: Int[Array, " L"], t: Int[Array, ""]
) -> Float[Array, " K"]:
    """The network's logits at `i_t` for `x_{t+1}` (or `x_t`: they differ only at `i_t`, which is hidden)."""
    return denoiser(glauber.with_query(process, x, t), t)[glauber.position(process, t)]


@typecheck
def ggm_step_kl(
    denoiser: Denoiser,
    process: GlauberProcess,
    x0: Int[Array, " L"],
    x_next: Int[Array, " L"],
    t: Int[Array, ""],
) -> Float[Array, ""]:
    """The bound's term at step `t` for a given `x_{t+1}` (one network call), in nats.

    Arguments:
        denoiser: the classifier network, `(tokens, t) -> logits (L, K)`.
        process: the forward process.
        x0: the clean sequence.
        x_next: `x_{t+1}`.
        t: the step, in `0..T-1`.

    Returns:
        `KL_t` (module docstring); its mean over `x_{t+1} ~ q(· | x_0)` summed over `t` plus
        [`eqdd.objectives.prior_kl`][] is the bound on `-log p(x_0)`.
    """
    i = glauber.position(process, t)
    marginal = glauber.marginal_log_probs(process, x0, t)[i]
    return step_kl(process, _logits_at(denoiser, process, x_next, t), marginal, x_next[i])


@typecheck
def ggm_terms(
    denoiser: Denoiser,
    process: GlauberProcess,
    x0: Int[Array, " L"],
    t: Int[Array, ""],
    key: PRNGKeyArray,
    closed_form: bool = True,
) -> Terms:
    """Draw `x_t ~ q(· | x_0)` in closed form and one forward step, run the network once and score it.

    Arguments:
        denoiser: the classifier network, `(tokens, t) -> logits (L, K)`.
        process: the forward process.
        x0: the clean sequence, tokens in `X`.
        t: the step, in `0..T-1`.
        key: a PRNG key for `x_t` and the noise draw.
        closed_form: the loss averaged over the noise draw in closed form (default), or its one-sample form.

    Returns:
        The [`eqdd.objectives.Terms`][] at `t`; its `surrogate` is the classifier's binary cross-entropy in
        nats (the training loss), `nelbo` and `step_loss` are in bits per token (module docstring).
    """
    state_key, noise_key = jax.random.split(key)
    i = glauber.position(process, t)
    x_t = glauber.sample_marginal(process, x0, t, state_key)
    z = glauber.sample_noise(process, noise_key)
    x_next = glauber.forward_step(process, x_t, t, z)
    logits = _logits_at(denoiser, process, x_next, t)
    if closed_form:
        bce = expected_classifier_loss(process, logits, x_t[i])
    else:
        bce = sampled_classifier_loss(process, logits, x_t[i], z)
    to_bits = 1.0 / (process.num_positions * math.log(2.0))
    marginal = glauber.marginal_log_probs(process, x0, t)[i]
    step_loss = step_kl(process, logits, marginal, x_next[i]) * to_bits
    nelbo = process.num_steps * step_loss + prior_kl(process, x0) * to_bits
    return Terms(nelbo=nelbo, step_loss=step_loss, surrogate=bce, t=t)


@typecheck
def ggm_bound_estimate(
    denoiser: Denoiser, process: GlauberProcess, x0: Int[Array, " L"], key: PRNGKeyArray
) -> Float[Array, ""]:
    """An unbiased one-sample estimate of the bound on `-log2 p(x_0) / L`: `T·KL_t + prior` at a uniform `t`.

    Arguments:
        denoiser: the classifier network.
        process: the forward process.
        x0: the clean sequence.
        key: a PRNG key for `t`, `x_t` and the noise draw.

    Returns:
        Bits per token.
    """
    step_key, key = jax.random.split(key)
    t = jax.random.randint(step_key, (), 0, process.num_steps, dtype=jnp.int32)
    return ggm_terms(denoiser, process, x0, t, key).nelbo


class GGMObjective(AbstractObjective):
    """The GGM training loss: the BCE averaged over `timesteps_per_sequence` uniform steps per sequence.

    Called on one example, like [`eqdd.objectives.OAARDMObjective`][]; the training step `vmap`s it
    over the batch. Every field of the returned terms has one entry per step (shape `(timesteps,)`).
    """

    process: GlauberProcess
    timesteps_per_sequence: int = eqx.field(static=True, default=32)
    closed_form: bool = eqx.field(static=True, default=True)

    def __check_init__(self):
        if self.timesteps_per_sequence < 1:
            raise ValueError(f"timesteps_per_sequence must be at least 1, got {self.timesteps_per_sequence}")

    def num_steps(self, num_positions: int) -> int:
        """`T`, the number of steps `t` (and of `L_t` values), for sequences of the process's length.

        Raises:
            ValueError: when `num_positions` is not the process's `L`.
        """
        if num_positions != self.process.num_positions:
            raise ValueError(
                f"the process is defined on sequences of {self.process.num_positions}, not {num_positions}"
            )
        return self.process.num_steps

    @typecheck
    def estimate(
        self, denoiser: Denoiser, x: Int[Array, " L"], t: Int[Array, ""], key: PRNGKeyArray
    ) -> Terms:
        """The terms at a given step `t` (the `estimate` that `eqdd.train.evaluate_bound` takes).

        **Arguments:**

        - `denoiser`: the network.
        - `x`: one clean sequence.
        - `t`: the step, in `0..T-1`.
        - `key`: a PRNG key for the forward draws.

        **Returns:**

        The [`eqdd.objectives.Terms`][] at `t`, scalar fields.
        """
        return ggm_terms(denoiser, self.process, x, t, key, self.closed_form)

    @typecheck
    def __call__(
        self,
        denoiser: Denoiser,
        x: Int[Array, " L"],
        key: PRNGKeyArray,
        quantile: Float[Array, ""] | None = None,
    ) -> tuple[Float[Array, ""], Terms]:
        """**Arguments:**

        - `denoiser`: the network.
        - `x`: one clean sequence of length `L`.
        - `key`: a PRNG key for the forward draws (and the steps when no `quantile` is given).
        - `quantile`: optional, in `[0, 1)`: the `n` steps are then `floor((i + quantile) / n · T)`
          for `i` in `0..n-1`, one in each `n`-th of the range.

        **Returns:**

        The loss to minimise (the mean BCE over the steps) and the [`eqdd.objectives.Terms`][] of each.
        """
        if x.shape[0] != self.process.num_positions:
            raise ValueError(
                f"the sequence has {x.shape[0]} tokens but the process has {self.process.num_positions}"
            )
        step_key, key = jax.random.split(key)
        count = self.timesteps_per_sequence
        if quantile is None:
            steps = jax.random.randint(step_key, (count,), 0, self.process.num_steps, dtype=jnp.int32)
        else:
            steps = step_at((jnp.arange(count) + quantile) / count, self.process.num_steps)
        keys = jax.random.split(key, self.timesteps_per_sequence)
        terms = jax.vmap(lambda t, k: self.estimate(denoiser, x, t, k))(steps, keys)
        return jnp.mean(terms.surrogate), terms
