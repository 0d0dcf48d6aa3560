"""The Upscale ARDM objective (reference §3.4-3.5, Algorithm 4), in the 0-indexed code convention.

An Upscale ARDM is a stack of `S` OA-ARDMs over the same `D` positions, stage `s` generating the level
`s + 1` values from the level `s` ones (`eqdd.processes.upscale`). One global step `t` in `0..S·D-1` names a
stage `s = t // D` and a step within it, `t_in = t mod D`. With an order `sigma`, the network sees
`x^(s+1)` at the `t_in` positions with `sigma < t_in` and `x^(s)` elsewhere, and one call scores the
`D - t_in` others: with `Σ = Σ_{sigma >= t_in} log p(x^(s+1)_k | ·)` in nats,

- `nelbo = -S·Σ / ((D - t_in)·ln 2)`, bits per dimension; its mean over uniform `t` and `sigma` is the
  bound on `-log2 p(x) / D` (the paper's `S·D·ℒ_t`, per dimension);
- `step_loss = nelbo / (S·D)`, the per-step component `L_t`: the `S·D` values sum to the bound, and stage
  `s` owns `L_{s·D}, …, L_{s·D + D - 1}` (plan policies with [`eqdd.policy.optimal_stage_policies`][]);
- `nce = -Σ / (D·ln 2)`, the un-reweighted masked cross-entropy of the stage.

The terms are [`eqdd.objectives.Terms`][] with the global `t`, so the training step, its `L_t` tracker
(over `S·D` steps) and `eqdd.train.evaluate_bound` (with `num_steps = S·D`) serve both models.
"""

import math
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Bool, Float, Int

from eqdd import outputs
from eqdd._typing import UpscaleDenoiser, typecheck
from eqdd.objectives.ardm import AbstractARDMObjective
from eqdd.objectives.base import Terms
from eqdd.processes import absorbing, upscale
from eqdd.processes.upscale import UpscaleTransitions


@typecheck
def upscale_inputs(
    transitions: UpscaleTransitions, x: Int[Array, " D"], sigma: Int[Array, " D"], t: Int[Array, ""]
) -> tuple[Int[Array, " D"], Bool[Array, " D"], Int[Array, ""]]:
    """The network input at the global step `t`: `(tokens, revealed, stage)`.

    Arguments:
        transitions: the maps.
        x: the clean sequence.
        sigma: the stage's order.
        t: the global step, in `0..S·D-1`.

    Returns:
        `tokens` (`x^(s+1)` where `revealed`, `x^(s)` elsewhere), `revealed = sigma < t_in` and `stage`.
    """
    num_positions = x.shape[0]
    stage, t_in = t // num_positions, t % num_positions
    revealed = absorbing.revealed_mask(sigma, t_in)
    tokens = jnp.where(
        revealed,
        upscale.level_values(transitions, x, stage + 1),
        upscale.level_values(transitions, x, stage),
    )
    return tokens, revealed, stage


def _digit_log_likelihoods(transitions, output, x, stage) -> Float[Array, " D"]:
    """`log p(x^(s+1)_k | ·)` in nats at every position: the log-probability of the digit of `x_k` that
    stage `s` reveals, given its level-`s` parent."""
    parent = upscale.level_values(transitions, x, stage)
    log_probs = outputs.stage_log_probs(transitions, output, parent, stage)
    digit = upscale.stage_digit(transitions, x, stage)
    return jnp.take_along_axis(log_probs, digit[:, None], axis=-1)[:, 0]


@typecheck
def upscale_terms(
    transitions: UpscaleTransitions,
    output: Float[Array, "D K_out"],
    x: Int[Array, " D"],
    sigma: Int[Array, " D"],
    t: Int[Array, ""],
) -> Terms:
    """Score the positions of one sequence that are not yet revealed at the global step `t`.

    Arguments:
        transitions: the maps and the output parametrisation.
        output: the denoiser's output for the input of step `t` (see [`upscale_inputs`][]).
        x: the clean sequence (data classes).
        sigma: the stage's order.
        t: the global step, in `0..S·D-1`.

    Returns:
        The [`eqdd.objectives.Terms`][] of the module docstring.
    """
    num_positions, num_stages = x.shape[0], transitions.num_stages
    stage, t_in = t // num_positions, t % num_positions
    log_p = _digit_log_likelihoods(transitions, output, x, stage)
    masked_sum = jnp.sum(jnp.where(sigma >= t_in, log_p, 0.0))
    nelbo = -num_stages * masked_sum / ((num_positions - t_in) * math.log(2.0))
    nce = -masked_sum / (num_positions * math.log(2.0))
    return Terms(nelbo=nelbo, step_loss=nelbo / (num_stages * num_positions), surrogate=nce, t=t)


@typecheck
def upscale_estimate(
    denoiser: UpscaleDenoiser,
    transitions: UpscaleTransitions,
    x: Int[Array, " D"],
    sigma: Int[Array, " D"],
    t: Int[Array, ""],
) -> Terms:
    """Build the input of global step `t` with order `sigma`, run the denoiser once and score the result.

    Arguments:
        denoiser: `(tokens, t, revealed, stage) -> output` (see `eqdd._typing.UpscaleDenoiser`).
        transitions: the maps and the output parametrisation.
        x: the clean sequence.
        sigma: the stage's order.
        t: the global step, in `0..S·D-1`; the denoiser is given this global `t`.

    Returns:
        The [`eqdd.objectives.Terms`][] for this `(sigma, t)`.
    """
    tokens, revealed, stage = upscale_inputs(transitions, x, sigma, t)
    output = denoiser(tokens, t, revealed, stage)
    return upscale_terms(transitions, output, x, sigma, t)


@typecheck
def upscale_policy_estimate(
    denoiser: UpscaleDenoiser,
    transitions: UpscaleTransitions,
    x: Int[Array, " D"],
    sigma: Int[Array, " D"],
    policy: Int[Array, "S P"],
    index: Int[Array, ""],
) -> Terms:
    """Estimate the cost of generating with one policy per stage (reference §4.4, Upscale version).

    Row `s` of `policy` holds stage `s`'s `P` left boundaries (the same budget in every stage). The index
    `u` in `0..S·P-1` names stage `s = u // P` and its segment `j = u mod P`; the network runs once at
    `t_in = b_j` and the estimate is `L_{s·D + b_j}·(b_{j+1} - b_j)·S·P`. For uniform `u` and `sigma` its
    mean is the policy's cost `Σ_s Σ_j (b_{j+1} - b_j)·L_{s·D + b_j}`; with every row `0..D-1` it is the
    full-step bound.

    Arguments:
        denoiser: the network.
        transitions: the maps and the output parametrisation.
        x: the clean sequence.
        sigma: the stage's order.
        policy: `(S, P)` left boundaries.
        index: `u`, in `0..S·P-1`.

    Returns:
        [`eqdd.objectives.Terms`][] whose `nelbo` is the policy estimate (bits per dimension) and whose
        `step_loss` and `t` are `L_{s·D + b_j}` and `s·D + b_j`.
    """
    num_positions, (num_stages, budget) = x.shape[0], policy.shape
    if num_stages != transitions.num_stages:
        raise ValueError(
            f"the policy has {num_stages} rows but the process has {transitions.num_stages} stages"
        )
    stage, segment = index // budget, index % budget
    lefts, rights = absorbing.segments(policy[stage], num_positions)
    t = stage * num_positions + lefts[segment]
    terms = upscale_estimate(denoiser, transitions, x, sigma, t)
    weight = (rights[segment] - lefts[segment]) * num_stages * budget
    return terms._replace(nelbo=terms.step_loss * weight)


@typecheck
def upscale_policy_log_likelihood(
    denoiser: UpscaleDenoiser,
    transitions: UpscaleTransitions,
    x: Int[Array, " D"],
    sigmas: Int[Array, "S D"],
    policy: Int[Array, "S P"],
) -> Float[Array, ""]:
    """The exact code length of `x` under fixed orders and policies, `-log2 p(x | sigmas, policy) / D`.

    Stage `s` is an OA-ARDM with the order `sigmas[s]` and the left boundaries `policy[s]`: its segment
    `j` makes one network call at `t_in = b_j` (input `x^(s+1)` where `sigma < b_j`, `x^(s)` elsewhere)
    and pays for the digits of the positions with `b_j <= sigma < b_{j+1}`. The stages multiply, so
    this is the rate an entropy coder achieves (reference §3.5, §5); with every row `0..D-1` it is
    `-log2 p(x) / D` of the model with those orders.

    Arguments:
        denoiser: the network.
        transitions: the maps and the output parametrisation.
        x: the clean sequence.
        sigmas: `(S, D)`, one order per stage.
        policy: `(S, P)` left boundaries, one row per stage.

    Returns:
        Bits per dimension.
    """
    num_positions, num_stages = x.shape[0], transitions.num_stages
    if sigmas.shape[0] != num_stages or policy.shape[0] != num_stages:
        raise ValueError(
            f"one order and one policy row per stage are needed ({num_stages}), got {sigmas.shape[0]} "
            f"and {policy.shape[0]}"
        )

    def add_stage(total, stage_inputs):
        stage, sigma, stage_policy = stage_inputs

        def add_segment(total, segment):
            left, right = segment
            t = stage * num_positions + left
            tokens, revealed, _ = upscale_inputs(transitions, x, sigma, t)
            log_p = _digit_log_likelihoods(transitions, denoiser(tokens, t, revealed, stage), x, stage)
            return total + jnp.sum(jnp.where((sigma >= left) & (sigma < right), log_p, 0.0)), None

        return jax.lax.scan(add_segment, total, absorbing.segments(stage_policy, num_positions))

    stages = (jnp.arange(num_stages, dtype=jnp.int32), sigmas, policy)
    total, _ = jax.lax.scan(add_stage, jnp.zeros(()), stages)
    return -total / (num_positions * math.log(2.0))


class UpscaleObjective(AbstractARDMObjective):
    """The Upscale ARDM training loss ([`eqdd.objectives.AbstractARDMObjective`][]): `S·D` global steps,
    [`upscale_estimate`][] and [`upscale_policy_estimate`][] (policies of shape `(S, P)`). Track `L_t` over
    [`num_steps`][] steps."""

    transitions: UpscaleTransitions
    ce_weight: float = eqx.field(static=True, default=0.0)
    elbo_weight: float = eqx.field(static=True, default=1.0)
    step_sampling: str = eqx.field(static=True, default="uniform")
    ce_mask_power: float = eqx.field(static=True, default=0.0)

    @property
    def num_stages(self) -> int:
        return self.transitions.num_stages

    def num_steps(self, num_positions: int) -> int:
        """`S·D`, the number of global steps (and of `L_t` values)."""
        return self.transitions.num_stages * num_positions

    def describe(self) -> dict[str, Any]:
        """What defines the likelihood besides the network (for the codec's fingerprint): the classes,
        branch factor, variant and parametrisation."""
        transitions = self.transitions
        return {
            "upscale": [transitions.num_classes, transitions.branch_factor, transitions.variant],
            "parametrization": transitions.parametrization,
        }

    def terms(self, denoiser, x, sigma, t) -> Terms:
        return upscale_estimate(denoiser, self.transitions, x, sigma, t)

    def policy_terms(self, denoiser, x, sigma, policy, segment) -> Terms:
        return upscale_policy_estimate(denoiser, self.transitions, x, sigma, policy, segment)
