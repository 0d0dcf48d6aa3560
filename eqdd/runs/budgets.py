"""What the image and audio experiments do after training, in one place: the test bound of the DP policy
of every asked budget, samples drawn with the run's sampling budget, and the stages of one sample's
generation."""

import functools
import time

import jax
import jax.numpy as jnp
import numpy as np

from eqdd.processes import absorbing, upscale
from eqdd.runs import inference, session
from eqdd.runs.registry import Run


def budget_bounds(
    run: Run, test: np.ndarray, key: jax.Array, unit: str, note: str = ""
) -> dict[int, dict[str, float]]:
    """The test bound of the DP policy of each budget of the run's `--budgets` (network calls per stage,
    planned on its tracked `L_t`), printed as [`eqdd.runs.session.evaluate`][] prints.

    Returns:
        `{budget: {"calls", "bpd", "stderr"}}`; `calls` counts all stages.
    """
    asked = [int(b) for b in run.config.budgets.split(",") if b]
    bounds = {}
    for budget, boundaries in inference.plan_policies(run, asked).items():
        policy = jnp.asarray(boundaries)
        report, _ = session.evaluate(
            run.config,
            functools.partial(run.objective.policy_estimate, policy=policy),
            run.model,
            test,
            policy.size,
            key,
            f"{unit} with {policy.size} network calls (DP policy)",
            note,
        )
        bounds[budget] = {"calls": policy.size, "bpd": report.bpd, "stderr": report.stderr}
    return bounds


def draw_samples(run: Run, key: jax.Array, what: str) -> tuple[np.ndarray, int, float]:
    """`--num-samples` samples with the DP policy of `--sample-budget` calls per stage (0: one call per
    step), with every level of their generation ([`eqdd.runs.inference.draw`][]).

    Returns:
        The levels `(N, S, D)`, the network calls per sample (0 when none was drawn) and the seconds.
    """
    if not run.config.num_samples:
        return inference.draw(run, key, 0), 0, 0.0
    begin = time.perf_counter()
    policy, calls = None, run.num_steps
    if run.config.sample_budget:
        policy = inference.plan_policies(run, [run.config.sample_budget]).popitem()[1]
        calls = policy.size
    drawn = inference.draw(run, key, run.config.num_samples, policy)
    seconds = time.perf_counter() - begin
    print(f"sampled {len(drawn)} {what} with {calls} network calls in {seconds:.1f} s", flush=True)
    return drawn, calls, seconds


def generation_stages(
    run: Run, levels: np.ndarray, key: jax.Array, num_steps: int, blank: int
) -> list[tuple[str, np.ndarray]]:
    """The stages of one sample's generation (its levels `(S, D)` from [`eqdd.runs.inference.draw`][]),
    each as data values `(D,)` with a title.

    Upscale: the sample after every stage, each coarse value shown as the smallest data value it stands
    for. OA: `num_steps` evenly spaced steps with the unrevealed variables set to `blank`; the sampler
    reveals variables in a uniformly random order drawn independently of their values, so masking the
    finished sample with a fresh order (from `key`) gives states distributed like the sampler's own.
    """
    if run.objective.num_stages > 1:
        transitions = run.objective.transitions
        return [
            (
                f"after stage {stage + 1} of {len(levels)}",
                np.asarray(upscale.data_floor(transitions, jnp.asarray(level), stage + 1)),
            )
            for stage, level in enumerate(levels)
        ]
    drawn = levels[-1]
    sigma = np.asarray(absorbing.sample_order(key, drawn.size))
    steps = np.linspace(0, drawn.size, num_steps).round().astype(int)
    return [(f"{t} of {drawn.size} revealed", np.where(sigma < t, drawn, blank)) for t in steps]
