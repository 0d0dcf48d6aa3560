"""What every objective is: the contract the training step, evaluation and tools rely on.

An objective is called on one example, `objective(denoiser, x, key, quantile) -> (loss, terms)` (the
training step `vmap`s it over the batch; the optional `quantile` places the example's steps in their
range, which lets the step stratify them over the batch), estimates its bound at a given step,
`objective.estimate(denoiser, x, t, key) -> terms` (what [`eqdd.train.evaluate_bound`][] averages), and
says how many steps `t` it has for an example of `D` variables, `objective.num_steps(D)` (the length of
the tracked `L_t`).
"""

import abc
from typing import NamedTuple

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, Float, Int, PRNGKeyArray


class Terms(NamedTuple):
    """What an objective reports for one example at one step `t`; an objective that scores several
    steps per example (the GGM) gives every field a leading axis of steps.

    Attributes:
        nelbo: the estimate of the bound on `-log2 p(x) / D` (bits per dimension), unbiased over a
            uniform `t`.
        step_loss: the step's term `L_t` (bits per dimension), tracked per `t` for step budgets.
        surrogate: the objective's other training quantity, logged beside `nelbo`: the un-reweighted
            masked cross-entropy of the ARDMs (bits per dimension), the binary cross-entropy of the GGM's
            classifier (nats).
        t: the step.
    """

    nelbo: Float[Array, "*N"]
    step_loss: Float[Array, "*N"]
    surrogate: Float[Array, "*N"]
    t: Int[Array, "*N"]


def step_at(quantile: Float[Array, "*N"], num_steps: int) -> Int[Array, "*N"]:
    """The step `floor(quantile · num_steps)` in `0..num_steps-1` for quantiles in `[0, 1)`."""
    return jnp.clip(jnp.floor(quantile * num_steps), 0, num_steps - 1).astype(jnp.int32)


class AbstractObjective(eqx.Module):
    """The base of every objective (see the module docstring)."""

    @property
    def num_stages(self) -> int:
        """`S`: the stages an example is generated in (the Upscale ARDM's), 1 for the other models."""
        return 1

    @abc.abstractmethod
    def num_steps(self, num_positions: int) -> int:
        """The number of steps `t` (and of `L_t` values) for examples of `num_positions` variables."""

    @abc.abstractmethod
    def estimate(self, denoiser, x: Int[Array, " D"], t: Int[Array, ""], key: PRNGKeyArray) -> Terms:
        """The [`Terms`][eqdd.objectives.Terms] at the step `t`, the rest of the randomness from `key`."""

    @abc.abstractmethod
    def __call__(
        self, denoiser, x: Int[Array, " D"], key: PRNGKeyArray, quantile: Float[Array, ""] | None = None
    ) -> tuple[Float[Array, ""], Terms]:
        """The loss to minimise for one example and the [`Terms`][eqdd.objectives.Terms] behind it.

        With `quantile` in `[0, 1)` the example's step is `floor(quantile · num_steps(D))` instead of a
        uniform draw from `key`; a uniform `quantile` gives the same distribution of steps, and quantiles
        spread evenly over a batch stratify its steps (fewer batches all of easy or all of hard steps).
        """
