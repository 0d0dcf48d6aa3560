"""Optimal step budgets: exact against brute force and the reference dynamic program."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from eqdd import policy
from tests.oracles import all_policies

_losses = st.floats(0.0, 10.0, allow_nan=False, allow_infinity=False)


def _brute_force(losses, budget):
    return min(policy.policy_cost(losses, p) for p in all_policies(len(losses), budget))


def test_reference_fixture():
    losses = np.array([5.0, 4.0, 3.0, 2.85, 2.80])
    results = policy.optimal_policies(losses, [1, 2, 3, 4, 5])
    np.testing.assert_allclose([cost for _, cost in results], [25, 19, 18, 17.7, 17.65], rtol=1e-12)
    np.testing.assert_array_equal(results[1][0], [0, 2])
    np.testing.assert_array_equal(results[4][0], [0, 1, 2, 3, 4])


@settings(max_examples=40)
@given(data=st.data(), num_steps=st.integers(1, 8), monotone=st.booleans())
def test_optimal_against_brute_force(data, num_steps, monotone):
    losses = data.draw(hnp.arrays(np.float64, num_steps, elements=_losses))
    if monotone:
        losses = policy.monotone_step_losses(losses)
    budgets = list(range(1, num_steps + 1))
    reference = policy.reference_policy_costs(losses, num_steps)
    for budget, (boundaries, cost) in zip(budgets, policy.optimal_policies(losses, budgets), strict=True):
        assert reference[budget] == pytest.approx(_brute_force(losses, budget), rel=1e-12, abs=1e-12)
        assert len(boundaries) == budget
        policy.check_policy(boundaries, num_steps)
        assert cost == pytest.approx(policy.policy_cost(losses, boundaries), rel=1e-12, abs=1e-12)
        assert cost == pytest.approx(_brute_force(losses, budget), rel=1e-12, abs=1e-12)


@pytest.mark.parametrize("num_steps,monotone", [(60, True), (60, False), (250, True), (97, False)])
def test_optimal_against_the_reference_dynamic_program(num_steps, monotone):
    rng = np.random.default_rng(num_steps)
    losses = rng.gamma(2.0, 1.0, num_steps)
    if monotone:
        losses = policy.monotone_step_losses(losses)
    budgets = list(range(1, num_steps + 1))
    expected = policy.reference_policy_costs(losses, num_steps)
    results = policy.optimal_policies(losses, budgets)
    np.testing.assert_allclose([c for _, c in results], expected[1:], rtol=1e-12)
    for boundaries, cost in results:
        assert policy.policy_cost(losses, boundaries) == pytest.approx(cost, rel=1e-12)


@settings(max_examples=20)
@given(losses=hnp.arrays(np.float64, 40, elements=_losses))
def test_cost_falls_with_the_budget_from_D_L0_to_the_full_bound(losses):
    # For non-increasing L_t (the paper sorts its estimates) more calls never cost more bits. (With
    # arbitrary L_t and exactly K calls they can: L = [0, 1, 1, ...] costs 0 with one call.)
    losses = policy.monotone_step_losses(losses)
    results = policy.optimal_policies(losses, list(range(1, 41)))
    costs = np.array([c for _, c in results])
    assert (np.diff(costs) <= 1e-12 * np.maximum(1.0, costs[:-1])).all()
    assert costs[0] == pytest.approx(40 * losses[0], rel=1e-12, abs=1e-12)
    assert costs[-1] == pytest.approx(losses.sum(), rel=1e-12, abs=1e-12)
    np.testing.assert_array_equal(results[-1][0], np.arange(40))


@settings(max_examples=20)
@given(losses=hnp.arrays(np.float64, 50, elements=_losses), budget=st.integers(1, 50))
def test_optimal_is_never_worse_than_naive(losses, budget):
    naive = policy.naive_policy(50, budget)
    assert len(naive) == budget and naive[0] == 0
    policy.check_policy(naive, 50)
    _, cost = policy.optimal_policy(losses, budget)
    assert cost <= policy.policy_cost(losses, naive) * (1 + 1e-12) + 1e-12


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="between 1 and the number of steps 3"):
        policy.optimal_policy(np.ones(3), 4)
    with pytest.raises(ValueError, match="must be finite"):
        policy.optimal_policy(np.array([1.0, np.nan]), 1)
    with pytest.raises(ValueError, match="starts at step 0"):
        policy.policy_cost(np.ones(4), [1, 2])
    with pytest.raises(ValueError, match="strictly increasing"):
        policy.policy_cost(np.ones(4), [0, 2, 2])
    with pytest.raises(ValueError, match="below the number of steps 4"):
        policy.policy_cost(np.ones(4), [0, 4])


@settings(max_examples=30)
@given(
    values=hnp.arrays(np.float64, 12, elements=st.floats(0.0, 10.0)),
    seen=hnp.arrays(bool, 12),
    num_stages=st.sampled_from([1, 2, 3]),
)
def test_unseen_steps_are_interpolated_inside_their_stage(values, seen, num_stages):
    if not seen.any():
        with pytest.raises(ValueError, match="no tracked step losses"):
            policy.fill_unseen(values, seen, num_stages)
        return
    filled = policy.fill_unseen(values, seen, num_stages)
    np.testing.assert_array_equal(filled[seen], values[seen])
    length = 12 // num_stages
    for stage in range(num_stages):
        losses, observed = (
            values[stage * length : (stage + 1) * length],
            seen[stage * length : (stage + 1) * length],
        )
        row = filled[stage * length : (stage + 1) * length]
        if not observed.any():  # nothing to go on: the largest observed value of the run
            np.testing.assert_array_equal(row, values[seen].max())
            continue
        known = np.flatnonzero(observed)
        for t in np.flatnonzero(~observed):
            left, right = known[known < t], known[known > t]
            if left.size and right.size:  # on the line between the nearest observed neighbours
                a, b = left[-1], right[0]
                expected = losses[a] + (losses[b] - losses[a]) * (t - a) / (b - a)
            else:  # past the stage's first or last observed step: the nearest one's value
                expected = losses[(right if right.size else left)[0 if right.size else -1]]
            np.testing.assert_allclose(row[t], expected, rtol=1e-12, atol=1e-12)
