"""Step budgets for parallel generation: optimal policies by dynamic programming (reference §4).

A **policy** for `D` steps and a budget of `K` network calls is a strictly increasing array of `K`
left boundaries `0 = b_0 < b_1 < … < b_{K-1} < D` (with `b_K = D` implied). Segment `j` runs the
network once at step `b_j` and generates the `b_{j+1} - b_j` positions of the segment from that one
output, which costs `(b_{j+1} - b_j) · L_{b_j}` bits per dimension, where `L_t` are the per-step
losses (they sum to the full-step bound). The optimal policy minimises the total

    cost(b) = Σ_j (b_{j+1} - b_j) · L_{b_j}.

With `C_k(t)` the best cost of reaching step `t` in `k` calls, `C_k(t) = min_{s<t} C_{k-1}(s) +
(t - s)·L_s`. For a fixed `k` each source `s` contributes the line `x ↦ C_{k-1}(s) + (x - s)·L_s`,
so a layer is a lower envelope of lines queried at `x = t`: a Li Chao tree gives it in
`O(D log D)` for *any* `L`, hence `O(K·D log D)` for every budget up to `K` at once, exactly. (When
`L` is non-increasing the cost is a Monge array, which is why the paper sorts its estimates; the
algorithm here needs no such assumption.) The reference's `O(K·D^2)` recursion is kept as
[`eqdd.policy.reference_policy_costs`][], the oracle of the tests and the baseline of the benchmark.
"""

import math

import numba
import numpy as np
from jaxtyping import ArrayLike, Float, Int

from eqdd._typing import typecheck

_NONE = -1


@numba.njit(cache=True, inline="always")
def _line(previous, losses, s, x):
    return previous[s] + (x - s) * losses[s]


@numba.njit(cache=True)
def _dynamic_program(losses, max_budget):
    """Layers 1..max_budget of the recursion; returns (cost of reaching D per budget, argmins)."""
    num_steps = losses.shape[0]
    previous = np.full(num_steps + 1, np.inf)
    previous[0] = 0.0
    current = np.empty(num_steps + 1)
    final_costs = np.full(max_budget + 1, np.inf)
    argmins = np.full((max_budget + 1, num_steps + 1), _NONE, np.int32)
    tree = np.empty(4 * num_steps + 4, np.int64)  # the line (source step) kept at each node
    for k in range(1, max_budget + 1):
        tree[:] = _NONE
        current[:] = np.inf
        for t in range(1, num_steps + 1):
            # insert the line of source s = t - 1 over the query range x in [1, D]
            line = t - 1
            if previous[line] < np.inf:
                node, lo, hi = 1, 1, num_steps
                while True:
                    kept = tree[node]
                    if kept == _NONE:
                        tree[node] = line
                        break
                    mid = (lo + hi) // 2
                    if _line(previous, losses, line, mid) < _line(previous, losses, kept, mid):
                        tree[node], line = line, kept
                        kept = tree[node]
                    if lo == hi:
                        break
                    if _line(previous, losses, line, lo) < _line(previous, losses, kept, lo):
                        node, hi = 2 * node, mid
                    elif _line(previous, losses, line, hi) < _line(previous, losses, kept, hi):
                        node, lo = 2 * node + 1, mid + 1
                    else:
                        break
            # query the lower envelope at x = t
            node, lo, hi = 1, 1, num_steps
            best, best_source = np.inf, _NONE
            while tree[node] != _NONE:
                value = _line(previous, losses, tree[node], t)
                if value < best or (value == best and tree[node] < best_source):
                    best, best_source = value, tree[node]
                if lo == hi:
                    break
                mid = (lo + hi) // 2
                if t <= mid:
                    node, hi = 2 * node, mid
                else:
                    node, lo = 2 * node + 1, mid + 1
            current[t] = best
            argmins[k, t] = best_source
        final_costs[k] = current[num_steps]
        previous, current = current, previous  # current[0] stays inf: k >= 1 calls never end at 0
    return final_costs, argmins


@numba.njit(cache=True)
def _backtrack(argmins, budget, num_steps):
    """The left boundaries of the optimal path with `budget` calls, read back from the argmins."""
    boundaries = np.empty(budget, np.int64)
    t = num_steps
    for k in range(budget, 0, -1):
        t = argmins[k, t]
        boundaries[k - 1] = t
    return boundaries


def _check_losses(step_losses) -> np.ndarray:
    losses = np.asarray(step_losses, np.float64)
    if losses.ndim != 1 or losses.size == 0:
        raise ValueError(f"step_losses must be a non-empty 1-D array, got shape {losses.shape}")
    if not np.isfinite(losses).all():
        raise ValueError("step_losses must be finite; fill steps never observed before planning a policy")
    return losses


def _check_budget(budget: int, num_steps: int) -> None:
    if not 1 <= budget <= num_steps:
        raise ValueError(f"a budget must be between 1 and the number of steps {num_steps}, got {budget}")


@typecheck
def optimal_policies(
    step_losses: Float[ArrayLike, " D"], budgets: list[int] | tuple[int, ...]
) -> list[tuple[Int[np.ndarray, " K"], float]]:
    """The optimal policy and its cost for each budget, from one pass of the dynamic program.

    Arguments:
        step_losses: `L_t` for `t = 0..D-1` (bits per dimension per step).
        budgets: numbers of network calls, each in `1..D`.

    Returns:
        For each budget, `(boundaries, cost)`: the `K` left boundaries (int64, starting at 0) and the
        total cost in the units of `step_losses`.
    """
    losses = _check_losses(step_losses)
    for budget in budgets:
        _check_budget(budget, losses.size)
    final_costs, argmins = _dynamic_program(losses, max(budgets))
    return [(_backtrack(argmins, budget, losses.size), float(final_costs[budget])) for budget in budgets]


@typecheck
def optimal_policy(step_losses: Float[ArrayLike, " D"], budget: int) -> tuple[Int[np.ndarray, " K"], float]:
    """The optimal policy for one budget (see [`eqdd.policy.optimal_policies`][]).

    Arguments:
        step_losses: `L_t` for `t = 0..D-1`.
        budget: the number of network calls, in `1..D`.

    Returns:
        `(boundaries, cost)`.
    """
    return optimal_policies(step_losses, [budget])[0]


@typecheck
def fill_unseen(step_losses: np.ndarray, seen: np.ndarray, num_stages: int = 1) -> np.ndarray:
    """Tracked `L_t` ready for planning: a step never observed gets the straight line between the
    nearest observed steps of its stage (the nearest one's value past the stage's first or last
    observed step; the largest observed value in a stage with none). `L_t` changes slowly with `t`
    inside a stage, and long processes (audio: `S·D` = 16,384 steps) leave many steps unobserved.

    Arguments:
        step_losses: the tracked `L_t`, `t = 0..S·D-1`.
        seen: which steps were observed.
        num_stages: `S` (stage `s` owns steps `s·D..s·D+D-1`).

    Returns:
        `L_t` for every step, the observed ones unchanged.

    Raises:
        ValueError: when no step was observed.
    """
    step_losses, seen = np.asarray(step_losses, np.float64), np.asarray(seen, bool)
    if not seen.any():
        raise ValueError("the run has no tracked step losses; train it for some steps first")
    filled = np.full((num_stages, step_losses.size // num_stages), step_losses[seen].max())
    steps = np.arange(filled.shape[1])
    stages = zip(filled, step_losses.reshape(filled.shape), seen.reshape(filled.shape), strict=True)
    for row, losses, observed in stages:
        if observed.any():
            row[:] = np.interp(steps, steps[observed], losses[observed])
    return filled.reshape(-1)


def optimal_stage_policies(
    step_losses: Float[ArrayLike, " T"], num_stages: int, budgets: list[int] | tuple[int, ...]
) -> list[tuple[Int[np.ndarray, "S K"], float]]:
    """Per-stage optimal policies of an Upscale ARDM, the same budget in every stage (reference §4.2, §4.4).

    The `T = S·D` step losses are split into `S` stages of `D` steps (stage `s` owns `L_{s·D..s·D+D-1}`);
    each stage's losses are sorted in decreasing order ([`monotone_step_losses`][]) and planned on their
    own, as the paper does.

    Arguments:
        step_losses: `L_t` for the global steps `t = 0..S·D-1`.
        num_stages: `S`.
        budgets: network calls per stage, each in `1..D`.

    Returns:
        For each budget, `(boundaries, cost)`: the `(S, K)` left boundaries (row `s` for stage `s`) and the
        total planned cost over the stages (on the sorted losses).
    """
    losses = _check_losses(step_losses)
    if num_stages < 1 or losses.size % num_stages:
        raise ValueError(f"{losses.size} step losses do not split into {num_stages} stages")
    per_stage = [
        optimal_policies(monotone_step_losses(row), budgets) for row in losses.reshape(num_stages, -1)
    ]
    return [
        (
            np.stack([stage[i][0] for stage in per_stage]),
            math.fsum(stage[i][1] for stage in per_stage),
        )
        for i in range(len(budgets))
    ]


def reference_policy_costs(step_losses, max_budget: int) -> np.ndarray:
    """The reference's `O(K·D^2)` dynamic program (one dense min-plus product per budget).

    Slow and memory-hungry (a `(D+1)^2` matrix); kept as the oracle for tests and the baseline of
    `benchmarks/policy_speed.py`.

    Arguments:
        step_losses: `L_t` for `t = 0..D-1`.
        max_budget: the largest budget.

    Returns:
        `costs[k]`, the optimal cost with exactly `k` calls, for `k = 0..max_budget` (`costs[0]` is inf).
    """
    losses = _check_losses(step_losses)
    _check_budget(max_budget, losses.size)
    source = np.arange(losses.size + 1)[:, None]
    target = np.arange(losses.size + 1)[None, :]
    padded = np.append(losses, 0.0)  # the row of source D has no valid target
    matrix = np.where(target > source, (target - source) * padded[:, None], np.inf)
    layer = np.full(losses.size + 1, np.inf)
    layer[0] = 0.0
    costs = [np.inf]
    for _ in range(max_budget):
        layer = (layer[:, None] + matrix).min(axis=0)
        costs.append(layer[-1])
    return np.array(costs)


def naive_policy(num_steps: int, budget: int) -> np.ndarray:
    """Equally spaced boundaries (rounded), the baseline: `round(linspace(0, D, K + 1))[:-1]`.

    Arguments:
        num_steps: `D`.
        budget: `K`, in `1..D`.

    Returns:
        The `K` left boundaries (int64).
    """
    _check_budget(budget, num_steps)
    return np.round(np.linspace(0, num_steps, budget + 1)).astype(np.int64)[:-1]


def check_policy(boundaries, num_steps: int) -> np.ndarray:
    """Return `boundaries` as int64 after checking it is a policy for `num_steps` steps.

    Raises:
        ValueError: naming what is wrong (not starting at 0, not strictly increasing, out of range).
    """
    boundaries = np.asarray(boundaries)
    if boundaries.ndim != 1 or boundaries.size == 0 or not np.issubdtype(boundaries.dtype, np.integer):
        raise ValueError(f"a policy is a non-empty 1-D integer array, got {boundaries!r}")
    if boundaries[0] != 0:
        raise ValueError(f"a policy starts at step 0, got {boundaries[0]}")
    if (np.diff(boundaries) <= 0).any():
        raise ValueError("a policy's boundaries must be strictly increasing")
    if boundaries[-1] >= num_steps:
        raise ValueError(f"a policy's boundaries must be below the number of steps {num_steps}")
    return boundaries.astype(np.int64)


def policy_cost(step_losses, boundaries) -> float:
    """The cost `Σ_j (b_{j+1} - b_j) · L_{b_j}` of a policy under (possibly other) step losses.

    Use it to score a policy found on training `L_t` against validation or test `L_t`.

    Arguments:
        step_losses: `L_t` for `t = 0..D-1`.
        boundaries: the policy's left boundaries.

    Returns:
        The cost, in the units of `step_losses`.
    """
    losses = _check_losses(step_losses)
    boundaries = check_policy(boundaries, losses.size)
    widths = np.diff(np.append(boundaries, losses.size))
    return math.fsum(widths * losses[boundaries])


def monotone_step_losses(step_losses) -> np.ndarray:
    """Sort `L_t` in decreasing order, as the paper does before planning (reference §4.2).

    A calibrated model has non-increasing `L_t`; sorting removes estimation noise that the dynamic
    program would otherwise exploit.
    """
    return np.sort(_check_losses(step_losses))[::-1].copy()
