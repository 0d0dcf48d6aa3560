"""The GGM reverse sampler: exact on a tiny enumerable problem, and its sampling controls."""

import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jaxtyping import TypeCheckError
from scipy import stats

from eqdd.outputs import classifier_log_probs
from eqdd.processes import GlauberProcess, glauber
from eqdd.samplers import reverse_step_log_probs, sample_ggm, top_p_filter
from tests.oracles import (
    TabularClassifier,
    glauber_chain_laws,
    glauber_exact_problem,
    glauber_stationary_law,
    random_law,
    state_index,
)

NUM_POSITIONS, VOCAB_SIZE, SWEEPS = 3, 3, 2  # T = 2L
_sample = eqx.filter_jit(sample_ggm)


def _tiny_process(kernel, schedule, seed):
    rng = np.random.default_rng(seed)
    vocab_law = rng.dirichlet(np.ones(VOCAB_SIZE)) + 0.05
    return rng, GlauberProcess(vocab_law, NUM_POSITIONS, SWEEPS, 0.5, schedule, kernel, schedule_seed=seed)


def _reverse_laws(process, table, start, temperature=1.0, fraction=1.0, top_p=1.0):
    return glauber_chain_laws(process, table, start, reverse_step_log_probs, temperature, fraction, top_p)


def _tv(p, q):
    return 0.5 * np.abs(p - q).sum()


@pytest.mark.parametrize("schedule", ["round_robin", "permutation"])
@pytest.mark.parametrize("kernel", ["flip", "replace"])
@settings(max_examples=2)
@given(seed=st.integers(0, 2**31 - 1))
def test_bayes_optimal_reverse_steps_reproduce_the_data_law(kernel, schedule, seed):
    # L = V = 3, T = 2L, an arbitrary data law: the exact Bayes-optimal classifier (from enumerated
    # marginals), run through the library's reverse step as a distribution over all states from the true
    # law of x_T, gives back every intermediate law and the data law (TV < 1e-6).
    with jax.enable_x64(True):
        rng, process = _tiny_process(kernel, schedule, seed)
        law = random_law(rng, NUM_POSITIONS, VOCAB_SIZE)
        _, laws, table = glauber_exact_problem(process, law)
        reverse = _reverse_laws(process, table, laws[-1])
        stationary = glauber_stationary_law(process)
        from_prior = _reverse_laws(process, table, stationary)
    for t in range(process.num_steps + 1):
        assert _tv(reverse[process.num_steps - t], laws[t]) < 1e-6
    # Starting from ν^L instead costs at most the prior mismatch (the reverse chain is one Markov kernel).
    mismatch = _tv(laws[-1], stationary)
    assert _tv(from_prior[-1], laws[0]) <= mismatch + 1e-12
    if kernel == "replace":  # every position has been overwritten: x_T ~ Π^L exactly
        assert mismatch < 1e-12
    else:  # a flip keeps a token with probability κ^sweeps = 1/4: the start is not exact
        assert mismatch > 1e-3


def _chi_square_pvalue(samples, law, num_classes):
    observed = np.bincount(state_index(samples, num_classes), minlength=len(law))
    expected = law * len(samples)
    rare = expected < 5
    if rare.any():
        observed = np.append(observed[~rare], observed[rare].sum())
        expected = np.append(expected[~rare], expected[rare].sum())
    return stats.chisquare(observed, expected).pvalue


@pytest.mark.parametrize(
    "kernel,schedule,temperature,fraction,top_p",
    [
        ("flip", "permutation", 1.0, 1.0, 1.0),
        ("replace", "round_robin", 1.0, 1.0, 1.0),
        ("flip", "round_robin", 1.5, 0.5, 0.8),
    ],
)
def test_sampler_draws_the_law_of_its_reverse_chain(kernel, schedule, temperature, fraction, top_p):
    # sample_ggm (scan over steps, query placement, which steps are tempered, exact draws) against the
    # enumerated law of the same chain from ν^L, by a chi-square test at a fixed seed.
    with jax.enable_x64(True):
        rng, process = _tiny_process(kernel, schedule, 3)
        _, _, table = glauber_exact_problem(process, random_law(rng, NUM_POSITIONS, VOCAB_SIZE))
        start = glauber_stationary_law(process)
        exact = _reverse_laws(process, table, start, temperature, fraction, top_p)
    process = GlauberProcess(
        np.asarray(process.vocab_law), NUM_POSITIONS, SWEEPS, 0.5, schedule, kernel, schedule_seed=3
    )
    classifier = TabularClassifier(jnp.asarray(np.maximum(table, -1e30), jnp.float32))
    sample = jax.jit(
        lambda key: sample_ggm(
            classifier,
            process,
            key,
            20_000,
            NUM_POSITIONS,
            temperature=temperature,
            temperature_fraction=fraction,
            top_p=top_p,
        )
    )
    samples = np.asarray(sample(jax.random.PRNGKey(0)))
    assert _chi_square_pvalue(samples, exact[-1], process.num_classes) > 1e-4


def test_infilling_never_changes_known_positions():
    _, process = _tiny_process("flip", "round_robin", 0)
    table = jax.random.normal(jax.random.PRNGKey(0), (process.num_steps, 4**NUM_POSITIONS, VOCAB_SIZE)) * 3
    known = jax.random.bernoulli(jax.random.PRNGKey(1), 0.5, (500, NUM_POSITIONS))
    tokens = jax.random.randint(jax.random.PRNGKey(2), (500, NUM_POSITIONS), 0, VOCAB_SIZE)
    samples = _sample(
        TabularClassifier(table),
        process,
        jax.random.PRNGKey(3),
        500,
        NUM_POSITIONS,
        known=known,
        known_tokens=tokens,
    )
    np.testing.assert_array_equal(np.where(known, samples, -1), np.where(known, tokens, -1))
    assert np.any(np.where(known, -1, samples) != np.where(known, -1, tokens))  # the rest is sampled
    # one mask for every sample broadcasts
    shared = _sample(
        TabularClassifier(table),
        process,
        jax.random.PRNGKey(4),
        50,
        NUM_POSITIONS,
        known=jnp.array([True, False, True]),
        known_tokens=jnp.array([2, 0, 1]),
    )
    np.testing.assert_array_equal(shared[:, [0, 2]], np.broadcast_to([2, 1], (50, 2)))


@settings(max_examples=20)
@given(seed=st.integers(0, 2**31 - 1), top_p=st.floats(0.01, 0.99), scale=st.floats(0.1, 4.0))
def test_top_p_keeps_the_smallest_set_with_enough_mass(seed, top_p, scale):
    with jax.enable_x64(True):
        log_probs = jax.nn.log_softmax(jax.random.normal(jax.random.PRNGKey(seed), (8,), jnp.float64) * scale)
        filtered = np.asarray(top_p_filter(log_probs, top_p))
    probs = np.exp(np.asarray(log_probs))
    kept = np.isfinite(filtered)
    mass = probs[kept].sum()
    assert mass >= top_p
    assert mass - probs[kept].min() < top_p  # dropping the least likely kept class falls short: smallest
    assert not (~kept).any() or probs[~kept].max() <= probs[kept].min()  # the most likely classes
    np.testing.assert_allclose(np.exp(filtered[kept]), probs[kept] / mass, rtol=1e-12)


@pytest.mark.parametrize("kernel", ["flip", "replace"])
def test_temperature_one_and_top_p_one_leave_the_posterior_unchanged(kernel):
    with jax.enable_x64(True):
        _, process = _tiny_process(kernel, "round_robin", 0)
        logits = jax.random.normal(jax.random.PRNGKey(0), (process.num_classes,), jnp.float64)
        b = jnp.int32(1)
        posterior = glauber.posterior_log_probs(process, classifier_log_probs(process, logits), b)
        np.testing.assert_allclose(reverse_step_log_probs(process, logits, b), posterior, rtol=1e-14)
        np.testing.assert_allclose(
            reverse_step_log_probs(process, logits, b, 1.0, 1.0), posterior, rtol=1e-14
        )
        np.testing.assert_allclose(top_p_filter(posterior, 1.0), posterior, rtol=0)
        # a temperature raises the posterior to the power 1/τ
        hot = np.exp(np.asarray(reverse_step_log_probs(process, logits, b, 2.0)))
        expected = np.exp(np.asarray(posterior) / 2.0)
        np.testing.assert_allclose(hot, expected / expected.sum(), rtol=1e-12)
        # the posterior is p̂ times the likelihood of b
        nu = np.exp(np.asarray(glauber.noise_log_probs(process)))
        likelihood = np.exp(np.asarray(glauber.transition_log_probs(process, b)))
    p_hat = np.exp(np.asarray(logits)) * nu
    np.testing.assert_allclose(np.exp(posterior), p_hat * likelihood / (p_hat * likelihood).sum(), rtol=1e-12)


def test_temperature_fraction_zero_is_no_temperature():
    _, process = _tiny_process("flip", "round_robin", 0)
    table = jax.random.normal(jax.random.PRNGKey(0), (process.num_steps, 4**NUM_POSITIONS, VOCAB_SIZE))
    classifier, key = TabularClassifier(table), jax.random.PRNGKey(5)
    plain = _sample(classifier, process, key, 200, NUM_POSITIONS)
    np.testing.assert_array_equal(
        _sample(classifier, process, key, 200, NUM_POSITIONS, temperature=3.0, temperature_fraction=0.0),
        plain,
    )
    assert not np.array_equal(_sample(classifier, process, key, 200, NUM_POSITIONS, temperature=3.0), plain)


def test_bad_arguments_are_refused():
    _, process = _tiny_process("flip", "round_robin", 0)
    classifier = TabularClassifier(jnp.zeros((process.num_steps, 4**NUM_POSITIONS, VOCAB_SIZE)))
    key = jax.random.PRNGKey(0)
    with pytest.raises(ValueError, match=f"sequences of {NUM_POSITIONS} tokens, not {NUM_POSITIONS + 1}"):
        sample_ggm(classifier, process, key, 2, NUM_POSITIONS + 1)
    with pytest.raises(ValueError, match="top_p must lie in"):
        sample_ggm(classifier, process, key, 2, NUM_POSITIONS, top_p=0.0)
    with pytest.raises(ValueError, match="temperature must be positive"):
        sample_ggm(classifier, process, key, 2, NUM_POSITIONS, temperature=0.0)
    with pytest.raises(ValueError, match="temperature_fraction must lie in"):
        sample_ggm(classifier, process, key, 2, NUM_POSITIONS, temperature_fraction=1.5)
    with pytest.raises(ValueError, match="needs both"):
        sample_ggm(classifier, process, key, 2, NUM_POSITIONS, known=jnp.ones(3, bool))
    with pytest.raises(TypeCheckError):
        reverse_step_log_probs(process, jnp.zeros((VOCAB_SIZE, 1)), jnp.int32(0))
    assert math.isfinite(float(top_p_filter(jnp.zeros(3), 0.5)[0]))
