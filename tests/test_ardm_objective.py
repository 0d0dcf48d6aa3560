"""The OA-ARDM estimator is exact in expectation: checked by enumeration on tiny problems."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eqdd.objectives import (
    OAARDMObjective,
    oa_ardm_estimate,
    oa_ardm_policy_estimate,
    oa_ardm_policy_log_likelihood,
    oa_ardm_terms,
    step_proposal,
)
from eqdd.processes import AbsorbingProcess
from tests.oracles import TabularDenoiser, all_orders, all_states, log2_prob, random_law, state_index

PROBLEMS = [(2, 2), (3, 2), (3, 3), (4, 2), (4, 3)]  # (D, K)


def _enumerated_elbo(law, x, num_positions, num_classes):
    """E over uniform t and sigma of the stochastic nelbo, by enumerating every (t, sigma)."""
    denoiser = TabularDenoiser(law, num_positions, num_classes)
    orders = jnp.asarray(all_orders(num_positions))
    steps = jnp.arange(num_positions, dtype=jnp.int32)

    def at(sigma, t):
        return oa_ardm_estimate(denoiser, AbsorbingProcess(num_classes), jnp.asarray(x), sigma, t).nelbo

    table = jax.vmap(lambda sigma: jax.vmap(lambda t: at(sigma, t))(steps))(orders)
    return float(jnp.mean(table)), np.asarray(table)


@pytest.mark.parametrize("num_positions,num_classes", PROBLEMS)
@settings(max_examples=4)
@given(seed=st.integers(0, 2**32 - 1))
def test_enumerated_elbo_equals_log_likelihood(num_positions, num_classes, seed):
    rng = np.random.default_rng(seed)
    law = random_law(rng, num_positions, num_classes)
    x = rng.integers(0, num_classes, num_positions)
    with jax.enable_x64(True):
        mean_nelbo, _ = _enumerated_elbo(law, x, num_positions, num_classes)
    # nelbo is in bits per dimension: with exact conditionals the bound is tight.
    assert mean_nelbo * num_positions == pytest.approx(-log2_prob(law, x, num_classes), abs=1e-6)


def test_reweighting_by_remaining_positions_is_what_makes_the_bound_tight():
    # The chain rule along one fixed order is exact for the tabular oracle, and the 1/(D - t)
    # reweighting is needed: the un-reweighted masked cross-entropy (nce) averages to another value.
    num_positions, num_classes = 4, 3
    rng = np.random.default_rng(0)
    law = random_law(rng, num_positions, num_classes)
    x = rng.integers(0, num_classes, num_positions)
    exact = -log2_prob(law, x, num_classes)
    with jax.enable_x64(True):
        denoiser = TabularDenoiser(law, num_positions, num_classes)
        for sigma in all_orders(num_positions)[:6]:
            chain = 0.0
            for t in range(num_positions):
                tokens = np.where(sigma < t, x, num_classes)
                (position,) = np.flatnonzero(sigma == t)
                chain -= float(denoiser(jnp.asarray(tokens), t)[position, x[position]]) / math.log(2)
            assert chain == pytest.approx(exact, abs=1e-9)
        mean_nelbo, table = _enumerated_elbo(law, x, num_positions, num_classes)
    unweighted = table * (num_positions - np.arange(num_positions))[None, :] / num_positions
    assert mean_nelbo * num_positions == pytest.approx(exact, abs=1e-9)
    assert abs(unweighted.mean() * num_positions - exact) > 1e-2


def test_monte_carlo_mean_converges_to_the_likelihood():
    num_positions, num_classes = 4, 3
    rng = np.random.default_rng(7)
    law = random_law(rng, num_positions, num_classes)
    x = jnp.asarray(rng.integers(0, num_classes, num_positions), jnp.int32)
    denoiser = TabularDenoiser(law, num_positions, num_classes, dtype=jnp.float32)
    objective = OAARDMObjective(AbsorbingProcess(num_classes))
    keys = jax.random.split(jax.random.PRNGKey(0), 40_000)
    losses, terms = jax.jit(jax.vmap(lambda k: objective(denoiser, x, k)))(keys)
    samples = np.asarray(terms.nelbo, np.float64)
    exact = -log2_prob(law, np.asarray(x), num_classes) / num_positions
    stderr = samples.std() / math.sqrt(len(samples))
    assert abs(samples.mean() - exact) < 4 * stderr
    assert stderr < 0.01 * exact  # the check above is not vacuous
    # ce_weight 0: the loss is the nelbo itself
    np.testing.assert_array_equal(np.asarray(losses), np.asarray(terms.nelbo))


@settings(max_examples=15)
@given(seed=st.integers(0, 2**31 - 1), t=st.integers(0, 9))
def test_terms_are_consistent(seed, t):
    num_positions, num_classes = 10, 5
    key1, key2, key3 = jax.random.split(jax.random.PRNGKey(seed), 3)
    logits = jax.random.normal(key1, (num_positions, num_classes))
    x = jax.random.randint(key2, (num_positions,), 0, num_classes)
    sigma = jax.random.permutation(key3, num_positions).astype(jnp.int32)
    terms = oa_ardm_terms(AbsorbingProcess(logits.shape[1]), logits, x, sigma, jnp.int32(t))
    log_p = np.asarray(jax.nn.log_softmax(logits))[np.arange(num_positions), np.asarray(x)]
    masked = np.asarray(sigma) >= t
    assert masked.sum() == num_positions - t
    expected_sum_bits = -log_p[masked].sum() / math.log(2)
    np.testing.assert_allclose(terms.nelbo, expected_sum_bits / (num_positions - t), rtol=1e-5)
    np.testing.assert_allclose(terms.step_loss, terms.nelbo / num_positions, rtol=1e-6)
    np.testing.assert_allclose(terms.surrogate, expected_sum_bits / num_positions, rtol=1e-5)
    assert int(terms.t) == t


def test_index_helper_matches_enumeration_order():
    states = all_states(3, 3)
    np.testing.assert_array_equal(state_index(states, 3), np.arange(27))


POLICIES = [np.array([0]), np.array([0, 2]), np.array([0, 1, 3]), np.array([0, 1, 2, 3])]


@pytest.mark.parametrize("policy", POLICIES, ids=str)
def test_policy_estimator_mean_equals_the_expected_code_length(policy):
    # Enumerating every order and segment: the policy estimator's mean is the policy cost built from
    # the exact L_t, and equals the exact code length -log2 p(x | sigma, policy) averaged over sigma.
    num_positions, num_classes = 4, 3
    rng = np.random.default_rng(11)
    law = random_law(rng, num_positions, num_classes)
    x = jnp.asarray(rng.integers(0, num_classes, num_positions), jnp.int32)
    with jax.enable_x64(True):
        denoiser = TabularDenoiser(law, num_positions, num_classes)
        orders = jnp.asarray(all_orders(num_positions))
        policy_array = jnp.asarray(policy, jnp.int32)
        segments = jnp.arange(len(policy), dtype=jnp.int32)

        def estimate(sigma, j):
            return oa_ardm_policy_estimate(
                denoiser, AbsorbingProcess(num_classes), x, sigma, policy_array, j
            ).nelbo

        table = np.asarray(jax.vmap(lambda sigma: jax.vmap(lambda j: estimate(sigma, j))(segments))(orders))
        code_lengths = np.asarray(
            jax.vmap(
                lambda sigma: oa_ardm_policy_log_likelihood(
                    denoiser, AbsorbingProcess(num_classes), x, sigma, policy_array
                )
            )(orders)
        )
        _, full_table = _enumerated_elbo(law, np.asarray(x), num_positions, num_classes)
    exact_step_losses = full_table.mean(axis=0) / num_positions  # L_t, exact
    widths = np.diff(np.append(policy, num_positions))
    expected_cost = float((widths * exact_step_losses[policy]).sum())
    assert table.dtype == code_lengths.dtype == np.float64
    assert table.mean() == pytest.approx(expected_cost, abs=1e-9)
    assert code_lengths.mean() == pytest.approx(expected_cost, abs=1e-9)
    exact = -log2_prob(law, np.asarray(x), num_classes) / num_positions
    if len(policy) == num_positions:  # one position per call: the exact likelihood, for every order
        np.testing.assert_allclose(code_lengths, exact, atol=1e-9)
    # In expectation over the data, parallel generation never beats the entropy (a single x can).
    with jax.enable_x64(True):
        per_state = np.asarray(
            jax.vmap(
                lambda state: jnp.mean(
                    jax.vmap(
                        lambda sigma: oa_ardm_policy_log_likelihood(
                            denoiser, AbsorbingProcess(num_classes), state, sigma, policy_array
                        )
                    )(orders)
                )
            )(jnp.asarray(all_states(num_positions, num_classes)))
        )
    entropy = -(law * np.log2(law)).sum() / num_positions
    expected_rate = (law * per_state).sum()
    if len(policy) == num_positions:
        assert expected_rate == pytest.approx(entropy, abs=1e-9)
    else:
        assert expected_rate > entropy


def test_policy_estimator_monte_carlo_mean_converges():
    num_positions, num_classes = 4, 3
    rng = np.random.default_rng(12)
    law = random_law(rng, num_positions, num_classes)
    x = jnp.asarray(rng.integers(0, num_classes, num_positions), jnp.int32)
    policy = jnp.array([0, 2], jnp.int32)
    denoiser = TabularDenoiser(law, num_positions, num_classes, dtype=jnp.float32)
    objective = OAARDMObjective(AbsorbingProcess(num_classes))
    keys = jax.random.split(jax.random.PRNGKey(0), 40_000)
    segments = jax.random.randint(jax.random.PRNGKey(1), (40_000,), 0, 2)
    samples = jax.jit(jax.vmap(lambda j, k: objective.policy_estimate(denoiser, x, j, k, policy).nelbo))(
        segments, keys
    )
    samples = np.asarray(samples, np.float64)
    with jax.enable_x64(True):
        exact_cost = float(
            jnp.mean(
                jax.vmap(
                    lambda sigma: oa_ardm_policy_log_likelihood(
                        TabularDenoiser(law, num_positions, num_classes),
                        AbsorbingProcess(num_classes),
                        x,
                        sigma,
                        policy,
                    )
                )(jnp.asarray(all_orders(num_positions)))
            )
        )
    stderr = samples.std() / math.sqrt(len(samples))
    assert abs(samples.mean() - exact_cost) < 4 * stderr
    assert stderr < 0.02 * exact_cost


@settings(max_examples=10, deadline=None)
@given(
    seed=st.integers(0, 2**31 - 1),
    elbo_weight=st.sampled_from([0.0, 0.5, 1.0]),
    ce_weight=st.sampled_from([0.0, 1e-4, 1.0]),
)
def test_training_weights_change_the_loss_only(seed, elbo_weight, ce_weight):
    # The loss is elbo_weight·nelbo + ce_weight·nce; the terms (and so every bound) stay the exact ones.
    num_positions, num_classes = 4, 3
    rng = np.random.default_rng(seed)
    law = random_law(rng, num_positions, num_classes)
    denoiser = TabularDenoiser(law, num_positions, num_classes, dtype=jnp.float32)
    x = jnp.asarray(rng.integers(0, num_classes, num_positions), jnp.int32)
    key = jax.random.PRNGKey(seed)
    process = AbsorbingProcess(num_classes)
    loss, terms = OAARDMObjective(process, ce_weight, elbo_weight)(denoiser, x, key)
    _, plain = OAARDMObjective(process)(denoiser, x, key)
    for a, b in zip(terms, plain, strict=True):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(loss, elbo_weight * terms.nelbo + ce_weight * terms.surrogate, rtol=1e-6)


@settings(max_examples=20, deadline=None)
@given(quantile=st.floats(0.0, 1.0, exclude_max=True), num_stages=st.sampled_from([1, 2]))
def test_masked_step_sampling_draws_t_in_proportion_to_its_positions(quantile, num_stages):
    # Step t takes the quantiles of [C(t-1), C(t)) / C(T-1), C the cumulative count of positions the
    # steps score, so its probability is q(t) = (D - t mod D) / C(T-1); its weight is 1 / (T·q(t)).
    num_positions = 5
    num_steps = num_stages * num_positions
    t, weight = _PROPOSAL(jnp.float32(quantile), num_steps, num_positions)
    scored = num_positions - np.arange(num_steps) % num_positions
    cumulative = np.concatenate([[0], np.cumsum(scored)])
    u = np.float32(quantile) * cumulative[-1]
    assert cumulative[int(t)] <= u < cumulative[int(t) + 1]
    np.testing.assert_allclose(weight, cumulative[-1] / (num_steps * scored[int(t)]), rtol=1e-6)


_PROPOSAL = jax.jit(step_proposal, static_argnums=(1, 2))


def _tiny_problem(seed: int) -> tuple[TabularDenoiser, jax.Array, AbsorbingProcess]:
    """A random law over 4 positions of 3 classes as a denoiser, one sequence, and its process."""
    num_positions, num_classes = 4, 3
    rng = np.random.default_rng(seed)
    law = random_law(rng, num_positions, num_classes)
    denoiser = TabularDenoiser(law, num_positions, num_classes, dtype=jnp.float32)
    x = jnp.asarray(rng.integers(0, num_classes, num_positions), jnp.int32)
    return denoiser, x, AbsorbingProcess(num_classes)


@pytest.mark.parametrize("ce_weight,elbo_weight", [(1.0, 0.0), (0.5, 1.0)])
def test_masked_step_sampling_keeps_the_expected_loss_and_the_exact_terms(ce_weight, elbo_weight):
    # At every step t (the middle of its quantile interval) the masked objective returns the uniform
    # objective's terms at t (same key, so same order) and its loss times 1 / (D·q(t)). With the
    # previous test's intervals, the loss's mean over a uniform quantile is exactly the uniform mean.
    num_positions, (denoiser, x, process) = 4, _tiny_problem(0)
    masked = OAARDMObjective(process, ce_weight, elbo_weight, "masked")
    uniform = OAARDMObjective(process, ce_weight, elbo_weight)
    scored = num_positions - np.arange(num_positions)
    edges = np.concatenate([[0], np.cumsum(scored)]) / scored.sum()
    expected_masked, expected_uniform = 0.0, 0.0
    for t in range(num_positions):
        key = jax.random.PRNGKey(t)
        loss, terms = masked(denoiser, x, key, jnp.float32((edges[t] + edges[t + 1]) / 2))
        plain_loss, plain = uniform(denoiser, x, key, jnp.float32((t + 0.5) / num_positions))
        assert int(terms.t) == t
        for a, b in zip(terms, plain, strict=True):
            np.testing.assert_array_equal(a, b)
        probability = scored[t] / scored.sum()
        np.testing.assert_allclose(loss, plain_loss / (num_positions * probability), rtol=1e-6)
        expected_masked += probability * float(loss)
        expected_uniform += float(plain_loss) / num_positions
    np.testing.assert_allclose(expected_masked, expected_uniform, rtol=1e-6)


@pytest.mark.parametrize("power", [0.5, 1.0, 2.0])
def test_the_ce_mask_power_scales_the_cross_entropy_by_the_masked_fraction(power):
    # At every step t: the same terms as without the power, and the loss
    # elbo_weight·nelbo + ce_weight·((D - t) / D)^power·surrogate.
    num_positions, (denoiser, x, process) = 4, _tiny_problem(1)
    powered = OAARDMObjective(process, 0.5, 1.0, ce_mask_power=power)
    plain = OAARDMObjective(process, 0.5, 1.0)
    for t in range(num_positions):
        key, quantile = jax.random.PRNGKey(t), jnp.float32((t + 0.5) / num_positions)
        loss, terms = powered(denoiser, x, key, quantile)
        _, plain_terms = plain(denoiser, x, key, quantile)
        assert int(terms.t) == t
        for a, b in zip(terms, plain_terms, strict=True):
            np.testing.assert_array_equal(a, b)
        fraction = (num_positions - t) / num_positions
        np.testing.assert_allclose(loss, terms.nelbo + 0.5 * fraction**power * terms.surrogate, rtol=1e-6)


def test_an_unknown_step_sampling_is_refused():
    with pytest.raises(ValueError, match="step_sampling must be one of"):
        OAARDMObjective(AbsorbingProcess(3), step_sampling="stratified")
