"""Samplers draw from the distributions they claim: exact laws, chi-square tests at fixed seeds."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from eqdd import outputs
from eqdd.processes import AbsorbingProcess
from eqdd.samplers import sample_categorical, sample_exponential, sample_oa_ardm
from eqdd.samplers.categorical import exponential_from_bits, sample_logistic_mixture
from tests.oracles import TabularDenoiser, all_orders, all_states, random_law, state_index

_categorical = jax.jit(lambda key, logits: sample_categorical(key, jnp.broadcast_to(logits, (200_000, 6))))


@settings(max_examples=8)
@given(seed=st.integers(0, 2**31 - 1), scale=st.floats(0.1, 6.0))
def test_categorical_matches_its_probabilities(seed, scale):
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=6) * scale
    draws = np.asarray(_categorical(jax.random.PRNGKey(seed), jnp.asarray(logits, jnp.float32)))
    probs = np.exp(logits - logits.max())
    probs /= probs.sum()
    observed = np.bincount(draws, minlength=6)
    expected = probs * len(draws)
    rare = expected < 5  # pooled into one bin, for the chi-square approximation
    if rare.any():
        observed = np.append(observed[~rare], observed[rare].sum())
        expected = np.append(expected[~rare], expected[rare].sum())
    assert stats.chisquare(observed, expected).pvalue > 1e-4


def test_impossible_classes_are_never_drawn():
    logits = jnp.array([0.0, -jnp.inf, 1.0, -jnp.inf])
    draws = np.asarray(sample_categorical(jax.random.PRNGKey(0), jnp.broadcast_to(logits, (50_000, 4))))
    assert set(np.unique(draws)) == {0, 2}


def test_exponential_is_exp1():
    samples = np.asarray(sample_exponential(jax.random.PRNGKey(3), (400_000,)), np.float64)
    assert samples.min() > 0
    assert stats.kstest(samples, "expon").pvalue > 1e-3
    # both tails, where float32 uniforms lose resolution, have the right mass
    for threshold in (1e-4, 1e-3):
        count = np.sum(samples < threshold)
        expected = len(samples) * -math.expm1(-threshold)
        assert abs(count - expected) < 5 * math.sqrt(expected)
    count = np.sum(samples > 10.0)
    expected = len(samples) * math.exp(-10.0)
    assert abs(count - expected) < 5 * math.sqrt(expected) + 1


def test_exponential_tails_reach_far_beyond_float32_gumbel():
    # jax.random.categorical's Gumbel noise is capped near 15.9 (u on a 2^-23 grid); here the
    # exponential can be as small as ~5e-20 (noise -log E up to ~44) and as large as ~44.
    words = jnp.array([0, 0x80000000, 0x7FFFFFFF, 0xFFFFFFFF], jnp.uint32)
    low = jnp.array([0, 0, 0xFFFFFFFF, 0xFFFFFFFF], jnp.uint32)
    e = np.asarray(exponential_from_bits(words, low), np.float64)
    assert e[0] > 43  # upper tail: w = 2^-65
    assert 0 < e[1] < 1e-19  # lower tail: w = 2^-65, E = -log1p(-w)
    assert e[2] == pytest.approx(math.log(2), rel=1e-6)  # w = 1/2 from either side
    assert e[3] == pytest.approx(math.log(2), rel=1e-6)
    gumbel_cap = -math.log(-math.log1p(-(2.0**-23)))
    assert -math.log(e[1]) > 2.5 * gumbel_cap


def _exact_tabular_sampler(law, num_positions, num_classes, policy, count, seed):
    denoiser = TabularDenoiser(law, num_positions, num_classes, dtype=jnp.float32)
    process = AbsorbingProcess(num_classes)
    sample = jax.jit(lambda key: sample_oa_ardm(denoiser, process, key, count, num_positions, policy=policy))
    return np.asarray(sample(jax.random.PRNGKey(seed)))


def _chi_square_pvalue(samples, expected_law, num_classes):
    observed = np.bincount(state_index(samples, num_classes), minlength=len(expected_law))
    return stats.chisquare(observed, expected_law * len(samples)).pvalue


@pytest.mark.parametrize("seed", [0, 1])
def test_ancestral_sampling_reproduces_an_exact_tabular_model(seed):
    num_positions, num_classes = 3, 3
    law = random_law(np.random.default_rng(seed), num_positions, num_classes)
    law = 0.5 * law + 0.5 / len(law)  # keep every state's expected count large for the test
    samples = _exact_tabular_sampler(law, num_positions, num_classes, None, 60_000, seed)
    assert samples.shape == (60_000, num_positions)
    assert _chi_square_pvalue(samples, law, num_classes) > 1e-4
    tv = 0.5 * np.abs(np.bincount(state_index(samples, num_classes), minlength=27) / len(samples) - law).sum()
    assert tv < 0.02


def test_one_call_policy_draws_every_position_independently():
    # A single segment [0, D) samples every position from its marginal: the product law.
    num_positions, num_classes = 3, 3
    law = random_law(np.random.default_rng(5), num_positions, num_classes)
    law = 0.5 * law + 0.5 / len(law)
    joint = law.reshape((num_classes,) * num_positions)
    marginals = [
        joint.sum(axis=tuple(a for a in range(num_positions) if a != k)) for k in range(num_positions)
    ]
    product = np.einsum("a,b,c->abc", *marginals).reshape(-1)
    samples = _exact_tabular_sampler(law, num_positions, num_classes, jnp.array([0], jnp.int32), 60_000, 2)
    assert _chi_square_pvalue(samples, product, num_classes) > 1e-4
    assert 0.5 * np.abs(product - law).sum() > 0.05  # the two laws differ, so the test has teeth


def _policy_law(law, num_positions, num_classes, policy):
    """The exact law of the policy sampler: mean over orders of Π_j Π_{k in segment j} p(x_k | x_{<b_j})."""
    with jax.enable_x64(True):
        denoiser = TabularDenoiser(law, num_positions, num_classes)
        states = all_states(num_positions, num_classes)
        rights = np.append(policy[1:], num_positions)
        result = np.zeros(len(states))
        for sigma in all_orders(num_positions):
            for index, x in enumerate(states):
                log_p = 0.0
                for left, right in zip(policy, rights, strict=True):
                    logits = np.asarray(denoiser(jnp.asarray(np.where(sigma < left, x, num_classes)), left))
                    in_segment = (sigma >= left) & (sigma < right)
                    log_p += logits[np.arange(num_positions), x][in_segment].sum()
                result[index] += math.exp(log_p)
    return result / math.factorial(num_positions)


def test_policy_sampling_draws_from_the_law_the_policy_defines():
    num_positions, num_classes = 3, 3
    law = random_law(np.random.default_rng(8), num_positions, num_classes)
    law = 0.5 * law + 0.5 / len(law)
    policy = np.array([0, 2])
    expected = _policy_law(law, num_positions, num_classes, policy)
    assert expected.sum() == pytest.approx(1.0, abs=1e-12)
    assert 0.5 * np.abs(expected - law).sum() > 0.01  # a different law from the data's
    samples = _exact_tabular_sampler(
        law, num_positions, num_classes, jnp.asarray(policy, jnp.int32), 60_000, 4
    )
    assert _chi_square_pvalue(samples, expected, num_classes) > 1e-4


@pytest.mark.parametrize("policy", [None, (1,), (1, 2)])
def test_infilling_draws_from_the_conditional_law(policy):
    # With the exact tabular denoiser, giving position 1 and generating the rest (one call per step, or a
    # policy starting after the given position) draws from the law's conditional given x_1; one call for
    # both remaining positions draws them independently from their conditional marginals.
    num_positions, num_classes, given = 3, 3, 2
    law = random_law(np.random.default_rng(11), num_positions, num_classes)
    law = 0.5 * law + 0.5 / len(law)
    joint = law.reshape((num_classes,) * num_positions)[:, given, :]
    conditional = joint / joint.sum()
    if policy == (1,):
        conditional = np.outer(conditional.sum(axis=1), conditional.sum(axis=0))
    denoiser = TabularDenoiser(law, num_positions, num_classes, dtype=jnp.float32)
    known = jnp.array([False, True, False])
    tokens = jnp.array([0, given, 0], jnp.int32)
    steps = None if policy is None else jnp.asarray(policy, jnp.int32)
    draw = jax.jit(
        lambda key: sample_oa_ardm(
            denoiser,
            AbsorbingProcess(num_classes),
            key,
            40_000,
            num_positions,
            policy=steps,
            known=known,
            known_tokens=tokens,
        )
    )
    samples = np.asarray(draw(jax.random.PRNGKey(7)))
    assert (samples[:, 1] == given).all()
    observed = np.bincount(samples[:, 0] * num_classes + samples[:, 2], minlength=num_classes**2)
    assert stats.chisquare(observed, conditional.reshape(-1) * len(samples)).pvalue > 1e-4
    unconditional = law.reshape((num_classes,) * num_positions).sum(axis=1).reshape(-1)
    assert 0.5 * np.abs(conditional.reshape(-1) - unconditional).sum() > 0.02  # the test has teeth


def test_infilling_needs_both_the_mask_and_the_tokens():
    denoiser = TabularDenoiser(np.full(8, 1 / 8), 3, 2, dtype=jnp.float32)
    with pytest.raises(ValueError, match="both"):
        sample_oa_ardm(denoiser, AbsorbingProcess(2), jax.random.PRNGKey(0), 2, 3, known=jnp.ones(3, bool))


_mixture_draws = jax.jit(
    lambda key, params: sample_logistic_mixture(key, jnp.broadcast_to(params, (200_000, params.shape[0])), 7)
)


@settings(max_examples=6)
@given(seed=st.integers(0, 2**31 - 1))
def test_the_logistic_mixture_sampler_draws_the_discretised_law(seed):
    # Three components over K = 7 bins, some mass in both outer bins: the draws' frequencies against the
    # law computed by `eqdd.outputs.mixture_log_probs` (an independent, closed-form route).
    rng = np.random.default_rng(seed)
    params = np.concatenate([rng.normal(size=3), rng.uniform(-1.3, 1.3, 3), rng.uniform(-2.5, -0.5, 3)])
    params = jnp.asarray(params, jnp.float32)
    draws = np.asarray(_mixture_draws(jax.random.PRNGKey(seed), params))
    probs = np.exp(np.asarray(outputs.mixture_log_probs(params[None], 7), np.float64))[0]
    observed, expected = np.bincount(draws, minlength=7), probs / probs.sum() * len(draws)
    rare = expected < 5
    if rare.any():
        observed = np.append(observed[~rare], observed[rare].sum())
        expected = np.append(expected[~rare], expected[rare].sum())
    assert stats.chisquare(observed, expected).pvalue > 1e-4


def test_an_oa_ardm_with_a_mixture_output_samples_its_classes():
    # A denoiser whose mixture puts all but 1e-7 of the mass on class 2k+1 at position k (the narrowest
    # logistic, scale e^-7, is 1/36 of a bin at K = 64): the sampler must map the mixture back to those
    # classes and keep the given positions.
    num_classes, num_positions = 64, 6
    means = 2.0 * (2 * jnp.arange(num_positions) + 1) / (num_classes - 1) - 1.0

    def denoiser(tokens, t):
        weights = jnp.zeros((num_positions, 1))
        return jnp.concatenate([weights, means[:, None], jnp.full((num_positions, 1), -12.0)], axis=1)

    process = AbsorbingProcess(num_classes, mixture_components=1)
    known = jnp.arange(num_positions) == 0
    drawn = sample_oa_ardm(
        denoiser,
        process,
        jax.random.PRNGKey(0),
        3,
        num_positions,
        known=known,
        known_tokens=jnp.full(num_positions, 40, jnp.int32),
    )
    expected = np.where(np.asarray(known), 40, 2 * np.arange(num_positions) + 1)
    np.testing.assert_array_equal(np.asarray(drawn), np.broadcast_to(expected, (3, num_positions)))
