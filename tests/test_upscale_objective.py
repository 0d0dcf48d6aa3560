"""The Upscale ARDM bound, policy estimator and sampler are exact: checked by enumeration on tiny problems."""

import functools
import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from jaxtyping import TypeCheckError
from scipy import stats

from eqdd import policy as policies
from eqdd.objectives import (
    UpscaleObjective,
    upscale_estimate,
    upscale_inputs,
    upscale_policy_estimate,
    upscale_policy_log_likelihood,
)
from eqdd.outputs import stage_log_probs
from eqdd.processes import UpscaleTransitions, upscale
from eqdd.samplers import sample_upscale, sample_upscale_stages
from eqdd.train import TrainState, evaluate_bound, make_train_step
from tests.oracles import (
    UpscaleTabularDenoiser,
    all_orders,
    all_policies,
    all_states,
    random_law,
    state_index,
)

# (D, K, b, variant, parametrization): S = 2, 3, 2, 2 stages
PROBLEMS = [
    (2, 4, 2, "zero", "data"),
    (3, 5, 2, "augmented", "data"),
    (2, 5, 3, "zero", "direct"),
    (3, 4, 2, "augmented", "direct"),
]


def _problem(num_positions, num_classes, branch, variant, parametrization, seed=0, dtype=jnp.float64):
    law = random_law(np.random.default_rng(seed), num_positions, num_classes)
    transitions = UpscaleTransitions(num_classes, branch, variant, parametrization)
    denoiser = UpscaleTabularDenoiser(
        law, num_positions, num_classes, branch, variant, parametrization, dtype=dtype
    )
    return law, transitions, denoiser


def _enumerated_terms(denoiser, transitions, states, num_positions):
    """`(nelbo, step_loss)` of every state at every global step and order: `(states, S·D, D!)` each."""
    orders = jnp.asarray(all_orders(num_positions))
    steps = jnp.arange(transitions.num_stages * num_positions, dtype=jnp.int32)

    def at(x, t, sigma):
        terms = upscale_estimate(denoiser, transitions, x, sigma, t)
        return terms.nelbo, terms.step_loss

    table = jax.vmap(jax.vmap(at, (None, None, 0)), (None, 0, None))
    return jax.tree.map(
        np.asarray, jax.jit(lambda xs: jax.lax.map(lambda x: table(x, steps, orders), xs))(states)
    )


@pytest.mark.parametrize("problem", PROBLEMS, ids=str)
def test_enumerated_elbo_equals_the_log_likelihood_of_every_sequence(problem):
    num_positions, num_classes, _, _, _ = problem
    states = all_states(num_positions, num_classes)
    with jax.enable_x64(True):
        law, transitions, denoiser = _problem(*problem)
        nelbo, step_loss = _enumerated_terms(denoiser, transitions, jnp.asarray(states), num_positions)
    assert nelbo.dtype == np.float64
    # nelbo is in bits per dimension; with exact conditionals the bound is tight for every x
    np.testing.assert_allclose(nelbo.mean(axis=(1, 2)) * num_positions, -np.log2(law), atol=1e-6)
    # the S·D values of L_t sum to the bound
    np.testing.assert_allclose(step_loss.mean(axis=2).sum(axis=1), nelbo.mean(axis=(1, 2)), rtol=1e-12)


def test_one_stage_at_a_time_is_an_oa_ardm_of_that_stage():
    # Stage s's D steps alone give -log2 p(x^(s+1) | x^(s)) / D, times S: the stage's share of the bound.
    problem = PROBLEMS[1]
    num_positions, num_classes, branch, _, _ = problem
    states = all_states(num_positions, num_classes)
    with jax.enable_x64(True):
        law, transitions, denoiser = _problem(*problem)
        nelbo, _ = _enumerated_terms(denoiser, transitions, jnp.asarray(states), num_positions)
    num_stages = transitions.num_stages
    per_stage = nelbo.mean(axis=2).reshape(len(states), num_stages, num_positions).mean(axis=2)
    for stage in range(num_stages):
        # the law of the levels s and s + 1, by grouping the classes' prefixes
        fine = states // branch ** (num_stages - 1 - stage)
        coarse = fine // branch
        joint_fine = np.bincount(
            state_index(fine, num_classes), weights=law, minlength=num_classes**num_positions
        )
        joint_coarse = np.bincount(
            state_index(coarse, num_classes), weights=law, minlength=num_classes**num_positions
        )
        conditional = (
            joint_fine[state_index(fine, num_classes)] / joint_coarse[state_index(coarse, num_classes)]
        )
        np.testing.assert_allclose(
            per_stage[:, stage], -num_stages * np.log2(conditional) / num_positions, atol=1e-9
        )


@pytest.mark.parametrize("problem", PROBLEMS, ids=str)
def test_fixed_order_code_length_is_exact_and_normalised(problem):
    # The code an entropy coder achieves: with one call per step it is -log2 p(x) for every choice of
    # orders (the conditionals are exact); with fewer calls it is still a normalised model of x (the
    # code lengths satisfy Kraft's equality) and costs more than the entropy on average.
    num_positions, num_classes, _, _, _ = problem
    states = all_states(num_positions, num_classes)
    rng = np.random.default_rng(num_positions * num_classes)
    with jax.enable_x64(True):
        law, transitions, denoiser = _problem(*problem, seed=7)
        num_stages = transitions.num_stages
        sigmas = jnp.asarray(np.stack([rng.permutation(num_positions) for _ in range(num_stages)]), jnp.int32)

        @jax.jit
        def code_lengths(policy):
            return jax.vmap(
                lambda x: upscale_policy_log_likelihood(denoiser, transitions, x, sigmas, policy)
            )(jnp.asarray(states))

        full = np.asarray(code_lengths(jnp.tile(jnp.arange(num_positions, dtype=jnp.int32), (num_stages, 1))))
        one_call = np.asarray(code_lengths(jnp.zeros((num_stages, 1), jnp.int32)))
    assert full.dtype == np.float64
    np.testing.assert_allclose(full * num_positions, -np.log2(law), atol=1e-9)
    assert np.exp2(-one_call * num_positions).sum() == pytest.approx(1.0, abs=1e-9)
    entropy = -(law * np.log2(law)).sum()
    assert (law * one_call).sum() * num_positions > entropy + 1e-6
    with pytest.raises(ValueError, match="one order and one policy row per stage"):
        upscale_policy_log_likelihood(
            denoiser,
            transitions,
            jnp.asarray(states[0]),
            sigmas[:1],
            jnp.zeros((1, 1), jnp.int32),
        )


def test_monte_carlo_mean_of_the_objective_converges_to_the_likelihood():
    problem = (3, 5, 2, "augmented", "direct")
    num_positions, num_classes, _, _, _ = problem
    law, transitions, denoiser = _problem(*problem, seed=5, dtype=jnp.float32)
    x = jnp.asarray(np.random.default_rng(5).integers(0, num_classes, num_positions), jnp.int32)
    objective = UpscaleObjective(transitions, ce_weight=0.25)
    keys = jax.random.split(jax.random.PRNGKey(0), 20_000)
    losses, terms = jax.jit(jax.vmap(lambda k: objective(denoiser, x, k)))(keys)
    steps = np.asarray(terms.t)
    assert set(np.unique(steps)) == set(range(transitions.num_stages * num_positions))
    samples = np.asarray(terms.nelbo, np.float64)
    exact = -math.log2(law[state_index(np.asarray(x), num_classes)]) / num_positions
    stderr = samples.std() / math.sqrt(len(samples))
    assert abs(samples.mean() - exact) < 4 * stderr
    assert stderr < 0.02 * exact  # the check above is not vacuous
    np.testing.assert_allclose(losses, terms.nelbo + 0.25 * terms.surrogate, rtol=1e-6)
    # With ce_mask_power, a global step t's cross-entropy weight is scaled by the fraction of the
    # positions its stage still scores, to that power; the terms are the same.
    powered = UpscaleObjective(transitions, ce_weight=0.25, ce_mask_power=2.0)
    powered_losses, powered_terms = jax.jit(jax.vmap(lambda k: powered(denoiser, x, k)))(keys[:50])
    for a, b in zip(powered_terms, jax.tree.map(lambda a: a[:50], terms), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6)  # a different batch, so a different compilation
    fraction = (num_positions - steps[:50] % num_positions) / num_positions
    expected = terms.nelbo[:50] + 0.25 * fraction**2 * terms.surrogate[:50]
    np.testing.assert_allclose(powered_losses, expected, rtol=1e-6)


def test_policy_estimator_mean_equals_the_policy_cost():
    problem = (3, 4, 2, "zero", "data")
    num_positions, num_classes, _, _, _ = problem
    x = jnp.asarray(np.random.default_rng(3).integers(0, num_classes, num_positions), jnp.int32)
    with jax.enable_x64(True):
        law, transitions, denoiser = _problem(*problem, seed=3)
        orders = jnp.asarray(all_orders(num_positions))

        @jax.jit
        def enumerate_policy(policy):
            def at(sigma, u):
                return upscale_policy_estimate(denoiser, transitions, x, sigma, policy, u).nelbo

            indices = jnp.arange(policy.size, dtype=jnp.int32)
            return jax.vmap(jax.vmap(at, (None, 0)), (0, None))(orders, indices)

        nelbo, step_loss = _enumerated_terms(denoiser, transitions, x[None], num_positions)
        stage_policies = [[[0, 2], [0, 1]], [[0], [0]], [[0, 1, 2], [0, 1, 2]]]
        tables = [np.asarray(enumerate_policy(jnp.asarray(p, jnp.int32))) for p in stage_policies]
    exact_step_losses = step_loss[0].mean(axis=1)  # L_t over the S·D global steps
    for rows, table in zip(stage_policies, tables, strict=True):
        assert table.dtype == np.float64
        expected = sum(
            policies.policy_cost(exact_step_losses[stage * num_positions : (stage + 1) * num_positions], row)
            for stage, row in enumerate(rows)
        )
        assert table.mean() == pytest.approx(expected, abs=1e-9)
    # one position per call: the full bound, tight for the exact model
    assert tables[-1].mean() == pytest.approx(float(nelbo.mean()), abs=1e-9)
    exact = -math.log2(law[state_index(np.asarray(x), num_classes)]) / num_positions
    assert tables[-1].mean() == pytest.approx(exact, abs=1e-9)


def test_stage_policies_are_optimal_per_stage_on_sorted_losses():
    num_stages, num_positions = 3, 6
    losses = np.random.default_rng(4).gamma(2.0, 1.0, num_stages * num_positions)
    for budget, (boundaries, cost) in zip(
        [1, 2, 4], policies.optimal_stage_policies(losses, num_stages, [1, 2, 4]), strict=True
    ):
        assert boundaries.shape == (num_stages, budget)
        stage_losses = [np.sort(row)[::-1] for row in losses.reshape(num_stages, num_positions)]
        best = [
            min(policies.policy_cost(row, p) for p in all_policies(num_positions, budget))
            for row in stage_losses
        ]
        for row, stage_boundaries, stage_best in zip(stage_losses, boundaries, best, strict=True):
            assert policies.policy_cost(row, stage_boundaries) == pytest.approx(stage_best, rel=1e-12)
        assert cost == pytest.approx(sum(best), rel=1e-12)
    with pytest.raises(ValueError, match="do not split"):
        policies.optimal_stage_policies(losses[:-1], num_stages, [1])


def _policy_law(denoiser, transitions, num_positions, stage_policies):
    """The exact law of the stage sampler with a policy: for every state x (its levels are a unique path),
    `Π_s mean_sigma Π_j Π_{k in segment j} p_s(digit of x_k | input at b_j)`."""
    num_classes = transitions.num_classes
    states = jnp.asarray(all_states(num_positions, num_classes))
    orders = jnp.asarray(all_orders(num_positions))

    def log_stage(x, sigma, stage, row):
        rights = list(row[1:]) + [num_positions]
        total = 0.0
        for left, right in zip(row, rights, strict=True):
            t = jnp.int32(stage * num_positions + left)
            tokens, revealed, _ = upscale_inputs(transitions, x, sigma, t)
            output = denoiser(tokens, t, revealed, jnp.int32(stage))
            parent = upscale.level_values(transitions, x, stage)
            log_probs = stage_log_probs(transitions, output, parent, stage)
            digit = upscale.stage_digit(transitions, x, stage)
            log_p = jnp.take_along_axis(log_probs, digit[:, None], axis=1)[:, 0]
            total += jnp.sum(jnp.where((sigma >= left) & (sigma < right), log_p, 0.0))
        return total

    def law_of(x):
        probability = 1.0
        for stage, row in enumerate(stage_policies):
            per_order = jax.vmap(lambda sigma, stage=stage, row=row: log_stage(x, sigma, stage, row))(orders)
            probability *= jnp.mean(jnp.exp(per_order))
        return probability

    return np.asarray(jax.jit(jax.vmap(law_of))(states))


@pytest.mark.parametrize(
    "variant,parametrization,stage_policies",
    [("zero", "data", None), ("augmented", "direct", None), ("augmented", "data", [[0], [0], [0]])],
)
def test_stage_sampler_draws_from_the_law_of_the_model(variant, parametrization, stage_policies):
    num_positions, num_classes, branch, count = 2, 5, 2, 60_000
    law = random_law(np.random.default_rng(1), num_positions, num_classes)
    law = 0.5 * law + 0.5 / len(law)  # every state's expected count is large
    transitions = UpscaleTransitions(num_classes, branch, variant, parametrization)
    if stage_policies is None:
        expected = law  # one position per call: the model's law, which is the data's
    else:
        with jax.enable_x64(True):
            exact = UpscaleTabularDenoiser(law, num_positions, num_classes, branch, variant, parametrization)
            expected = _policy_law(exact, transitions, num_positions, stage_policies)
            full = [list(range(num_positions))] * transitions.num_stages
            full_law = _policy_law(exact, transitions, num_positions, full)
        np.testing.assert_allclose(full_law, law, rtol=1e-12)  # the enumeration itself is right
        assert expected.sum() == pytest.approx(1.0, abs=1e-12)
        assert 0.5 * np.abs(expected - law).sum() > 0.01  # a different law, so the test has teeth
    denoiser = UpscaleTabularDenoiser(
        law, num_positions, num_classes, branch, variant, parametrization, dtype=jnp.float32
    )
    policy = None if stage_policies is None else jnp.asarray(stage_policies, jnp.int32)
    levels = np.asarray(
        jax.jit(
            lambda key: sample_upscale_stages(denoiser, transitions, key, count, num_positions, policy=policy)
        )(jax.random.PRNGKey(0))
    )
    samples = levels[:, -1]
    assert levels.shape == (count, transitions.num_stages, num_positions)
    for stage in range(transitions.num_stages):  # every stage wrote the levels of the final sample
        np.testing.assert_array_equal(
            levels[:, stage], upscale.level_values(transitions, jnp.asarray(samples), stage + 1)
        )
    observed = np.bincount(state_index(samples, num_classes), minlength=len(law))
    assert stats.chisquare(observed, expected * count).pvalue > 1e-4


class _TinyUpscaleNet(eqx.Module):
    """A small learnable `UpscaleDenoiser`: token and stage embeddings plus a revealed-mask bias."""

    tokens: jax.Array
    stages: jax.Array
    revealed: jax.Array

    def __init__(self, num_input_classes, num_stages, num_outputs, key):
        keys = jax.random.split(key, 3)
        self.tokens = 0.1 * jax.random.normal(keys[0], (num_input_classes, num_outputs))
        self.stages = 0.1 * jax.random.normal(keys[1], (num_stages, num_outputs))
        self.revealed = 0.1 * jax.random.normal(keys[2], (num_outputs,))

    def __call__(self, tokens, t, revealed, stage):
        return self.tokens[tokens] + self.stages[stage] + revealed[:, None] * self.revealed


def test_the_training_step_and_the_evaluations_accept_an_upscale_model():
    num_positions, batch = 6, 8
    transitions = UpscaleTransitions(16, 4, "augmented", "data")
    objective = UpscaleObjective(transitions, ce_weight=0.5)
    num_steps = objective.num_steps(num_positions)
    model = _TinyUpscaleNet(
        transitions.num_input_classes, transitions.num_stages, transitions.num_outputs, jax.random.PRNGKey(0)
    )
    optimizer = optax.adam(1e-2)
    state = TrainState.create(model, optimizer, jax.random.PRNGKey(1), num_steps)
    step = make_train_step(objective, optimizer, ema_decay=0.9)
    data = np.random.default_rng(0).integers(0, 16, (batch, num_positions)).astype(np.int32)
    state, metrics = step(state, data)
    assert state.step_losses.values.shape == (num_steps,) and np.isfinite(float(metrics["loss"]))
    report = evaluate_bound(
        objective.estimate,
        state.ema_model,
        data,
        num_steps,
        passes=1,
        batch_size=8,
        key=jax.random.PRNGKey(3),
        progress=False,
    )
    assert np.isfinite(report.bpd) and report.step_losses.shape == (num_steps,)
    ((stage_policies, _),) = policies.optimal_stage_policies(np.nan_to_num(report.step_losses), 2, [3])
    parallel = evaluate_bound(
        functools.partial(objective.policy_estimate, policy=jnp.asarray(stage_policies, jnp.int32)),
        state.ema_model,
        data,
        stage_policies.size,
        passes=1,
        batch_size=8,
        key=jax.random.PRNGKey(3),
        progress=False,
    )
    assert np.isfinite(parallel.bpd)


def test_bad_arguments_and_shapes_are_refused():
    transitions = UpscaleTransitions(4, 2)
    denoiser = UpscaleTabularDenoiser(np.full(16, 1 / 16), 2, 4, 2, "zero", "data", dtype=jnp.float32)
    with pytest.raises(ValueError, match="3 rows but the process has 2 stages"):
        sample_upscale(
            denoiser, transitions, jax.random.PRNGKey(0), 2, 2, policy=jnp.zeros((3, 1), jnp.int32)
        )
    with pytest.raises(TypeCheckError):
        UpscaleObjective(transitions)(denoiser, jnp.zeros((2, 2), jnp.int32), jax.random.PRNGKey(0))
    with pytest.raises(TypeCheckError):
        sample_upscale(denoiser, transitions, jax.random.PRNGKey(0), 2, 2, policy=jnp.zeros(2, jnp.int32))
