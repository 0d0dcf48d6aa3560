"""The order-agnostic ARDM objective (reference §2.1-2.3), in the 0-indexed code convention.

For one sequence `x` of length `D`, an order `sigma` and a step `t` in `0..D-1`, one network call on
the corrupted sequence scores all `D - t` masked positions (`sigma >= t`). With
`S = Σ_{sigma >= t} log p(x_k | x_{sigma < t})` in nats:

- `nelbo = -S / ((D - t)·ln 2)` is the stochastic negative ELBO in bits per dimension; its mean over
  uniform `t` and `sigma` is the bound on `-log2 p(x) / D`.
- `step_loss = nelbo / D` is the per-step component `L_t` in bits per dimension; the `L_t` sum to the
  bound over `t` (reference §4.3), and the dynamic-programming policies consume them.
- `nce = -S / (D·ln 2)` is the un-reweighted masked cross-entropy, the small auxiliary term (the
  `surrogate` of [`eqdd.objectives.Terms`][]).
"""

import abc
import math
from collections.abc import Callable
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, Int, PRNGKeyArray

from eqdd import outputs
from eqdd._typing import Denoiser, typecheck
from eqdd.objectives.base import AbstractObjective, Terms, step_at
from eqdd.processes import absorbing
from eqdd.processes.absorbing import AbsorbingProcess


@typecheck
def oa_ardm_terms(
    process: AbsorbingProcess,
    output: Float[Array, "D P"],
    x: Int[Array, " D"],
    sigma: Int[Array, " D"],
    t: Int[Array, ""],
) -> Terms:
    """Score the masked positions of one sequence.

    Arguments:
        process: the absorbing process (which says what the output is).
        output: the denoiser's output for the sequence corrupted at step `t`.
        x: the clean sequence.
        sigma: the order.
        t: the step, in `0..D-1`.

    Returns:
        The [`eqdd.objectives.Terms`][] of the module docstring.
    """
    num_positions = x.shape[0]
    masked_sum = jnp.sum(jnp.where(sigma >= t, outputs.oa_log_prob_of(process, output, x), 0.0))
    nelbo = -masked_sum / ((num_positions - t) * math.log(2.0))
    nce = -masked_sum / (num_positions * math.log(2.0))
    return Terms(nelbo=nelbo, step_loss=nelbo / num_positions, surrogate=nce, t=t)


@typecheck
def oa_ardm_estimate(
    denoiser: Denoiser,
    process: AbsorbingProcess,
    x: Int[Array, " D"],
    sigma: Int[Array, " D"],
    t: Int[Array, ""],
) -> Terms:
    """Corrupt `x` at step `t` of order `sigma`, run the denoiser once and score the result.

    Arguments:
        denoiser: maps a corrupted sequence and `t` to its output (see `process`).
        process: the absorbing process.
        x: the clean sequence.
        sigma: the order.
        t: the step.

    Returns:
        The [`eqdd.objectives.Terms`][] for this `(sigma, t)`.
    """
    output = denoiser(absorbing.corrupt(x, sigma, t, process.absorbing_token), t)
    return oa_ardm_terms(process, output, x, sigma, t)


@typecheck
def oa_ardm_policy_estimate(
    denoiser: Denoiser,
    process: AbsorbingProcess,
    x: Int[Array, " D"],
    sigma: Int[Array, " D"],
    policy: Int[Array, " P"],
    segment: Int[Array, ""],
) -> Terms:
    """Estimate the cost of generating with a policy (reference §4.4, "ELBO with policy").

    Segment `j = segment` runs the network once at `t = b_j`; all masked positions are scored as for
    the full-step bound, and the result is weighted by `(b_{j+1} - b_j)·P`. For a uniform segment
    and order, the mean is `Σ_j (b_{j+1} - b_j)·L_{b_j}`, the policy's cost; with the policy
    `0..D-1` this is the full-step estimator.

    Arguments:
        denoiser: the network.
        process: the absorbing process.
        x: the clean sequence.
        sigma: the order.
        policy: the `P` left boundaries (see [`eqdd.processes.absorbing.segments`][]).
        segment: which segment, in `0..P-1`.

    Returns:
        [`eqdd.objectives.Terms`][] whose `nelbo` is the policy estimate (bits per dimension) and
        whose `step_loss` and `t` are `L_{b_j}` and `b_j`.
    """
    lefts, rights = absorbing.segments(policy, x.shape[0])
    terms = oa_ardm_estimate(denoiser, process, x, sigma, lefts[segment])
    weight = (rights[segment] - lefts[segment]) * policy.shape[0]
    return terms._replace(nelbo=terms.step_loss * weight)


@typecheck
def oa_ardm_policy_log_likelihood(
    denoiser: Denoiser,
    process: AbsorbingProcess,
    x: Int[Array, " D"],
    sigma: Int[Array, " D"],
    policy: Int[Array, " P"],
) -> Float[Array, ""]:
    """The exact code length of `x` under a fixed order and policy, `-log2 p(x | sigma, policy) / D`.

    One network call per segment: segment `j` sees `x` where `sigma < b_j` and pays for the positions
    with `b_j <= sigma < b_{j+1}`. This is the rate an entropy coder achieves (reference §4.4, §5).

    Arguments:
        denoiser: the network.
        process: the absorbing process.
        x: the clean sequence.
        sigma: the order.
        policy: the left boundaries.

    Returns:
        Bits per dimension.
    """
    num_positions = x.shape[0]
    lefts, rights = absorbing.segments(policy, num_positions)

    def add_segment(total, segment):
        left, right = segment
        output = denoiser(absorbing.corrupt(x, sigma, left, process.absorbing_token), left)
        log_p_x = outputs.oa_log_prob_of(process, output, x)
        return total + jnp.sum(jnp.where((sigma >= left) & (sigma < right), log_p_x, 0.0)), None

    total, _ = jax.lax.scan(add_segment, jnp.zeros(()), (lefts, rights))
    return -total / (num_positions * math.log(2.0))


STEP_SAMPLINGS = ("uniform", "masked")


def _positions_scored(t, num_positions: int):
    """How many positions step `t` scores, `D - t mod D` (the masked ones of its stage)."""
    return num_positions - t % num_positions


@typecheck
def step_proposal(
    quantile: Float[Array, ""], num_steps: int, num_positions: int
) -> tuple[Int[Array, ""], Float[Array, ""]]:
    """The step at `quantile` of the distribution `q(t) ∝ D - (t mod D)` (the positions step `t`
    scores) and the importance weight `1 / (num_steps · q(t))` that keeps a loss's mean uniform.

    Arguments:
        quantile: in `[0, 1)` (uniform for a random draw).
        num_steps: the number of steps (`D`, or `S·D` for an Upscale ARDM's stages).
        num_positions: `D`.

    Returns:
        `(t, weight)`.
    """
    scored = _positions_scored(jnp.arange(num_steps), num_positions)
    cumulative = jnp.cumsum(scored)
    t = jnp.searchsorted(cumulative, quantile * cumulative[-1], side="right")
    t = jnp.minimum(t, num_steps - 1).astype(jnp.int32)
    return t, cumulative[-1] / (num_steps * scored[t])


class AbstractARDMObjective(AbstractObjective):
    """What the OA-ARDM and Upscale ARDM objectives share: per example a uniform order `sigma` and a
    uniform step `t` in `0..num_steps(D)-1`, and the loss `elbo_weight · nelbo + ce_weight · nce` (`nce`
    is the `surrogate` of the terms).

    `elbo_weight = 1` trains on the ELBO (each step's masked cross-entropy weighted by `1/(D - t)`);
    `elbo_weight = 0, ce_weight = 1` trains on the plain masked cross-entropy, every masked position
    weighted alike whatever the mask rate, as masked language models train. `ce_mask_power = p`
    multiplies the cross-entropy's weight by `((D - t mod D) / D)^p`, the fraction of positions step `t`
    scores to the power `p`: `p > 0` favours heavily masked sequences (on text8 it trains worse:
    +0.035 bpc at 0.5, +0.064 at 1, `benchmarks/RESULTS.md` round 15). The weights change the
    gradient only: the `terms` (and every reported bound) are the exact estimates either way.

    `step_sampling = "masked"` draws the training step `t` with probability proportional to the number
    of positions it scores (`D - t mod D`) instead of uniformly, and divides the loss by that
    probability's ratio to the uniform one ([`step_proposal`][]): the loss's expectation, so the mean
    gradient, is unchanged, and with the plain masked cross-entropy every example's weight becomes the
    same. On text8 it trains worse than uniform steps (+0.033 bpc at equal time: `benchmarks/RESULTS.md`,
    round 14); an option for other data, off by default.

    Called on one example; the training step `vmap`s it over the batch. A concrete objective gives the
    number of steps and the two estimators at a fixed order ([`terms`][], [`policy_terms`][]).
    """

    ce_weight: eqx.AbstractVar[float]
    elbo_weight: eqx.AbstractVar[float]
    step_sampling: eqx.AbstractVar[str]
    ce_mask_power: eqx.AbstractVar[float]

    def __check_init__(self):
        if self.step_sampling not in STEP_SAMPLINGS:
            raise ValueError(f"step_sampling must be one of {STEP_SAMPLINGS}, got {self.step_sampling!r}")

    @abc.abstractmethod
    def num_steps(self, num_positions: int) -> int:
        """The number of steps `t` (and of `L_t` values) for sequences of `num_positions`."""

    @abc.abstractmethod
    def describe(self) -> dict[str, Any]:
        """What defines the model's likelihood besides the network (JSON; part of the codec's fingerprint)."""

    @abc.abstractmethod
    def terms(
        self, denoiser: Callable, x: Int[Array, " D"], sigma: Int[Array, " D"], t: Int[Array, ""]
    ) -> Terms:
        """The [`eqdd.objectives.Terms`][] at the order `sigma` and the step `t`."""

    @abc.abstractmethod
    def policy_terms(
        self,
        denoiser: Callable,
        x: Int[Array, " D"],
        sigma: Int[Array, " D"],
        policy: Int[Array, "*S P"],
        segment: Int[Array, ""],
    ) -> Terms:
        """The policy-cost estimate at the order `sigma` and the segment index `segment`."""

    @typecheck
    def estimate(
        self, denoiser: Callable, x: Int[Array, " D"], t: Int[Array, ""], key: PRNGKeyArray
    ) -> Terms:
        """The estimates at a given step `t`, with a random order.

        Arguments:
            denoiser: the network.
            x: one clean sequence.
            t: the step, in `0..num_steps(D)-1`.
            key: a PRNG key for `sigma`.

        Returns:
            The [`eqdd.objectives.Terms`][].
        """
        return self.terms(denoiser, x, absorbing.sample_order(key, x.shape[0]), t)

    @typecheck
    def policy_estimate(
        self,
        denoiser: Callable,
        x: Int[Array, " D"],
        segment: Int[Array, ""],
        key: PRNGKeyArray,
        policy: Int[Array, "*S P"],
    ) -> Terms:
        """The policy-cost estimate at a given segment index, with a random order.

        Evaluate it with `eqdd.train.evaluate_bound(functools.partial(objective.policy_estimate,
        policy=policy), ..., num_steps=policy.size)`.

        Arguments:
            denoiser: the network.
            x: one clean sequence.
            segment: the segment index, in `0..policy.size-1`.
            key: a PRNG key for `sigma`.
            policy: the left boundaries (`(P,)` for an OA-ARDM, `(S, P)` for an Upscale ARDM).

        Returns:
            [`eqdd.objectives.Terms`][] whose `nelbo` is the policy estimate (see
            [`eqdd.objectives.oa_ardm_policy_estimate`][], [`eqdd.objectives.upscale_policy_estimate`][]).
        """
        return self.policy_terms(denoiser, x, absorbing.sample_order(key, x.shape[0]), policy, segment)

    @typecheck
    def __call__(
        self,
        denoiser: Callable,
        x: Int[Array, " D"],
        key: PRNGKeyArray,
        quantile: Float[Array, ""] | None = None,
    ) -> tuple[Float[Array, ""], Terms]:
        """Arguments:
            denoiser: the network.
            x: one clean sequence.
            key: a PRNG key for `sigma` (and `t` when no `quantile` is given).
            quantile: optional, in `[0, 1)`: `t = floor(quantile · num_steps(D))`.

        Returns:
            The loss to minimise and the [`eqdd.objectives.Terms`][] behind it.
        """
        order_key, step_key = jax.random.split(key)
        num_positions = x.shape[0]
        num_steps = self.num_steps(num_positions)
        if self.step_sampling == "masked":
            u = jax.random.uniform(step_key) if quantile is None else quantile
            t, weight = step_proposal(u, num_steps, num_positions)
        elif quantile is None:
            t, weight = absorbing.sample_step(step_key, num_steps), 1.0
        else:
            t, weight = step_at(quantile, num_steps), 1.0
        terms = self.estimate(denoiser, x, t, order_key)
        ce_weight = self.ce_weight
        if self.ce_mask_power:
            masked_fraction = _positions_scored(t, num_positions) / num_positions
            ce_weight = ce_weight * masked_fraction**self.ce_mask_power
        return weight * (self.elbo_weight * terms.nelbo + ce_weight * terms.surrogate), terms


class OAARDMObjective(AbstractARDMObjective):
    """The OA-ARDM training loss ([`AbstractARDMObjective`][]): `D` steps, [`oa_ardm_estimate`][] and
    [`oa_ardm_policy_estimate`][] with the process's absorbing token."""

    process: AbsorbingProcess
    ce_weight: float = eqx.field(static=True, default=0.0)
    elbo_weight: float = eqx.field(static=True, default=1.0)
    step_sampling: str = eqx.field(static=True, default="uniform")
    ce_mask_power: float = eqx.field(static=True, default=0.0)

    def num_steps(self, num_positions: int) -> int:
        return num_positions

    def describe(self) -> dict[str, Any]:
        """The absorbing token, and the mixture's size for a logistic-mixture output."""
        mixture = self.process.mixture_components
        return {
            "absorbing_token": self.process.absorbing_token,
            **({"mixture_components": mixture} if mixture else {}),
        }

    def terms(self, denoiser, x, sigma, t) -> Terms:
        return oa_ardm_estimate(denoiser, self.process, x, sigma, t)

    def policy_terms(self, denoiser, x, sigma, policy, segment) -> Terms:
        return oa_ardm_policy_estimate(denoiser, self.process, x, sigma, policy, segment)
