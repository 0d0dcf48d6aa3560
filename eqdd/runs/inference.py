"""What a loaded [`Run`][eqdd.runs.registry.Run] does after training, whatever its kind: plan step
budgets, sample (with a budget, around given positions), and measure its bound on any data. The one
place that dispatches on the process (OA-ARDM, Upscale ARDM, GGM); `eqdd sample`, `eqdd evaluate` and
the experiments call it.
"""

import functools
from collections.abc import Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from eqdd import policy as policies
from eqdd.config import ConfigError
from eqdd.objectives import GGMObjective, OAARDMObjective, UpscaleObjective
from eqdd.runs import text8_ggm
from eqdd.runs.registry import Run
from eqdd.runs.text8 import per_character
from eqdd.samplers import sample_oa_ardm, sample_upscale_stages
from eqdd.train.evaluate import BoundReport, evaluate_bound


def _check_budgets(run: Run) -> None:
    if isinstance(run.objective, GGMObjective):
        raise ConfigError(
            f"a run of {run.experiment} has no step budget: its sampler and bound take its "
            f"T = {run.num_steps} steps; leave out --budget"
        )


def plan_policies(run: Run, budgets: Sequence[int], given: int = 0) -> dict[int, np.ndarray]:
    """The DP policies (paper §4) of `budgets` network calls per stage, planned on the run's tracked
    `L_t` sorted per stage; budgets above the number of steps per stage are capped to it.

    Arguments:
        run: an OA-ARDM or Upscale ARDM run.
        budgets: network calls per stage.
        given: positions known before sampling starts (OA-ARDM infilling): the policies then cover the
            steps `given..D-1` only, and start at `given`.

    Returns:
        `{budget: left boundaries}`, `(P,)` for an OA-ARDM and `(S, P)` for an Upscale ARDM.

    Raises:
        ConfigError: for a GGM run, or `given` with an Upscale ARDM or not below `D`.
        ValueError: for a budget below 1.
    """
    _check_budgets(run)
    stages = run.objective.num_stages
    if given and (stages > 1 or not 0 < given < run.num_positions):
        raise ValueError(
            f"given positions ({given}) need an OA-ARDM run and fewer than D = {run.num_positions}"
        )
    losses = run.planning_losses[given:]
    per_stage = losses.size // stages
    budgets = sorted({min(budget, per_stage) for budget in budgets})
    if not budgets:
        return {}
    planned = policies.optimal_stage_policies(losses, stages, budgets)
    return {
        budget: boundaries[0] + given if stages == 1 else boundaries
        for budget, (boundaries, _) in zip(budgets, planned, strict=True)
    }


def default_sample_budget(run: Run) -> int | None:
    """The budget runs are sampled with unless told otherwise: an image run's own `sample_budget`
    (`None` when it is 0), `None` (one network call per step) for text runs."""
    return (run.config.sample_budget or None) if run.kind == "images" else None


def draw(
    run: Run,
    key: jax.Array,
    num_samples: int,
    policy: np.ndarray | None = None,
    known: np.ndarray | None = None,
    known_tokens: np.ndarray | None = None,
) -> np.ndarray:
    """Samples of the run's model with every level of their generation.

    Arguments:
        run: any run.
        key: a PRNG key.
        num_samples: how many.
        policy: left boundaries from [`plan_policies`][] (`None`: one network call per step).
        known: which of the `D` positions are given (OA-ARDM and GGM runs), the same for every sample.
        known_tokens: their values.

    Returns:
        Int32 `(N, S, D)`: each sample's `S` levels (the Upscale ARDM's stages; `S = 1` otherwise), the
        last one the sample.

    Raises:
        ConfigError: for a policy with a GGM run, or given positions with an Upscale ARDM run.
    """
    objective, size = run.objective, run.num_positions
    if not num_samples:
        return np.zeros((0, run.objective.num_stages, size), np.int32)
    policy = None if policy is None else jnp.asarray(policy)
    if known is not None:
        known, known_tokens = jnp.asarray(known), jnp.asarray(known_tokens, jnp.int32)
    if isinstance(objective, UpscaleObjective):
        if known is not None:
            raise ConfigError("infilling needs an OA-ARDM or a GGM run, not an Upscale ARDM")
        sample = eqx.filter_jit(sample_upscale_stages)
        return np.asarray(sample(run.model, objective.transitions, key, num_samples, size, policy=policy))
    if isinstance(objective, OAARDMObjective):
        sample = eqx.filter_jit(sample_oa_ardm)
        drawn = sample(
            run.model,
            objective.process,
            key,
            num_samples,
            size,
            policy=policy,
            known=known,
            known_tokens=known_tokens,
        )
        return np.asarray(drawn)[:, None]
    if policy is not None:
        _check_budgets(run)
    return text8_ggm.sample(run.config, run.model, objective.process, key, num_samples, known, known_tokens)[
        :, None
    ]


def evaluate(
    run: Run,
    chunks: np.ndarray,
    policy: np.ndarray | None = None,
    *,
    passes: int,
    batch_size: int,
    key: jax.Array,
    progress: bool = True,
) -> tuple[BoundReport, int]:
    """The run's bound on `chunks` ([`eqdd.train.evaluate_bound`][]): its full bound, or the bound of a
    policy from [`plan_policies`][]; a text run's in bits per character, whatever its tokens.

    Returns:
        The report and the network calls per example the bound is for.
    """
    if policy is None:
        estimate, num_steps = run.objective.estimate, run.num_steps
    else:
        policy = jnp.asarray(policy)
        estimate, num_steps = functools.partial(run.objective.policy_estimate, policy=policy), policy.size
    if run.kind == "text":
        estimate = per_character(estimate, run.config.chars_per_token)
    report = evaluate_bound(
        estimate,
        run.model,
        chunks,
        num_steps,
        passes=passes,
        batch_size=batch_size,
        key=key,
        progress=progress,
    )
    return report, num_steps
