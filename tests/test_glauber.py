"""The Glauber forward process: schedules, the closed form of `x_t | x_0`, and step-by-step simulation."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jaxtyping import TypeCheckError
from scipy import stats

from eqdd.processes import GlauberProcess, glauber, unigram_law
from tests.oracles import all_states, embed_law, glauber_forward_laws, glauber_site_kernel, state_index

# (kernel, schedule, L, V, sweeps, kappa, vocab law)
SETTINGS = [
    ("flip", "round_robin", 3, 3, 2, 0.5, [0.5, 0.3, 0.2]),
    ("flip", "permutation", 4, 2, 2, 0.3, [0.9, 0.1]),
    ("replace", "round_robin", 3, 2, 2, 0.5, [0.5, 0.5]),
    ("replace", "permutation", 4, 2, 2, 0.3, [0.7, 0.3]),
]


def _process(kernel, schedule, num_positions, sweeps, kappa, law, seed=0):
    return GlauberProcess(np.asarray(law), num_positions, sweeps, kappa, schedule, kernel, schedule_seed=seed)


@pytest.mark.parametrize("schedule", ["round_robin", "permutation"])
def test_every_sweep_visits_every_position_once_and_counts_agree(schedule):
    process = _process("flip", schedule, 5, 3, 0.5, np.ones(4))
    positions = np.array([int(glauber.position(process, t)) for t in range(process.num_steps)])
    for sweep in positions.reshape(3, 5):
        assert sorted(sweep) == list(range(5))
    if schedule == "round_robin":
        np.testing.assert_array_equal(positions, np.arange(15) % 5)
    for t in range(process.num_steps + 1):
        counted = np.bincount(positions[:t], minlength=5)
        np.testing.assert_array_equal(glauber.visit_counts(process, t), counted)


def test_permutation_schedule_is_a_function_of_its_seed():
    def order(seed):
        return np.asarray(_process("flip", "permutation", 8, 3, 0.5, np.ones(3), seed).visit_order)

    np.testing.assert_array_equal(order(1), order(1))
    assert not np.array_equal(order(1), order(2))
    assert len({tuple(sweep) for sweep in order(1)}) > 1  # a fresh permutation per sweep


@pytest.mark.parametrize("setting", SETTINGS, ids=lambda s: f"{s[0]}-{s[1]}")
def test_closed_form_marginal_equals_exact_propagation(setting):
    # The product of the closed-form per-position marginals is the law of x_t obtained by applying the
    # site kernel step by step to a point mass at x_0, at every t (float64, to 1e-12).
    kernel, schedule, num_positions, vocab_size, sweeps, kappa, law = setting
    with jax.enable_x64(True):
        process = _process(kernel, schedule, num_positions, sweeps, kappa, law)
        num_classes = process.num_classes
        site_kernel = glauber_site_kernel(kernel, kappa, np.asarray(law))
        for b in range(num_classes):
            np.testing.assert_allclose(
                np.exp(glauber.transition_log_probs(process, b)), site_kernel[:, b], rtol=1e-12
            )
        positions = [int(glauber.position(process, t)) for t in range(process.num_steps)]
        x0 = np.arange(num_positions) % vocab_size
        point_mass = np.zeros(vocab_size**num_positions)
        point_mass[state_index(x0, vocab_size)] = 1.0
        exact = glauber_forward_laws(
            embed_law(point_mass, num_positions, vocab_size, num_classes),
            positions,
            site_kernel,
            num_positions,
        )
        states = all_states(num_positions, num_classes)
        for t in range(process.num_steps + 1):
            marginals = np.exp(np.asarray(glauber.marginal_log_probs(process, jnp.asarray(x0), t)))
            closed_form = marginals[np.arange(num_positions), states].prod(axis=1)
            np.testing.assert_allclose(closed_form, exact[t], atol=1e-12)


def _pooled_pvalue(observed, probabilities):
    expected = probabilities * observed.sum() / probabilities.sum()
    rare = expected < 5  # pooled into one bin, for the chi-square approximation
    if rare.any():
        observed = np.append(observed[~rare], observed[rare].sum())
        expected = np.append(expected[~rare], expected[rare].sum())
    return stats.chisquare(observed, expected).pvalue


@pytest.mark.parametrize("setting", [SETTINGS[0], SETTINGS[3]], ids=lambda s: f"{s[0]}-{s[1]}")
def test_step_by_step_simulation_matches_the_closed_form(setting):
    # 20000 chains simulated with `forward_step` and the closed-form sampler, both against the exact
    # closed-form law of x_t over all K^L states (chi-square at a fixed seed, p > 1e-4).
    kernel, schedule, num_positions, _, sweeps, kappa, law = setting
    process = _process(kernel, schedule, num_positions, sweeps, kappa, law)
    num_classes, count, t = process.num_classes, 20_000, process.num_steps - 2
    x0 = jnp.arange(num_positions, dtype=jnp.int32) % len(law)

    def simulate(key):
        def step(x, inputs):
            s, step_key = inputs
            return glauber.forward_step(process, x, s, glauber.sample_noise(process, step_key)), None

        x, _ = jax.lax.scan(step, x0, (jnp.arange(t, dtype=jnp.int32), jax.random.split(key, t)))
        return x

    keys = jax.random.split(jax.random.PRNGKey(0), count)
    simulated = np.asarray(jax.jit(jax.vmap(simulate))(keys))
    direct = np.asarray(jax.jit(jax.vmap(lambda k: glauber.sample_marginal(process, x0, t, k)))(keys))
    marginals = np.exp(np.asarray(glauber.marginal_log_probs(process, x0, t), np.float64))
    states = all_states(num_positions, num_classes)
    expected = marginals[np.arange(num_positions), states].prod(axis=1)
    for samples in (simulated, direct):
        observed = np.bincount(state_index(samples, num_classes), minlength=len(expected))
        assert _pooled_pvalue(observed, expected) > 1e-4


def test_classes_and_the_noise_law():
    flip = _process("flip", "round_robin", 4, 2, 0.25, [3.0, 1.0])
    replace = _process("replace", "round_robin", 4, 2, 0.25, [3.0, 1.0])
    assert (flip.num_classes, flip.query_token, flip.num_input_classes) == (2, 2, 3)
    assert (replace.num_classes, replace.phi_token, replace.query_token, replace.num_input_classes) == (
        3,
        2,
        3,
        4,
    )
    assert flip.num_steps == replace.num_steps == 8
    np.testing.assert_allclose(np.exp(glauber.noise_log_probs(flip)), [0.75, 0.25], rtol=1e-6)
    np.testing.assert_allclose(np.exp(glauber.noise_log_probs(replace)), [0.5625, 0.1875, 0.25], rtol=1e-6)
    x = jnp.array([0, 1, 1, 0])
    np.testing.assert_array_equal(glauber.with_query(flip, x, 5), [0, 2, 1, 0])
    # flip: z = φ keeps the token, any other z is written; replace writes φ itself
    np.testing.assert_array_equal(glauber.forward_step(flip, x, 1, jnp.int32(2)), x)
    np.testing.assert_array_equal(glauber.forward_step(flip, x, 1, jnp.int32(0)), [0, 0, 1, 0])
    np.testing.assert_array_equal(glauber.forward_step(replace, x, 1, jnp.int32(2)), [0, 2, 1, 0])


def test_unigram_law_keeps_a_floor():
    law = unigram_law(np.array([0, 10, 30, 60]), floor=1e-3)
    assert law.sum() == pytest.approx(1.0, abs=1e-15)
    assert law[0] == pytest.approx(1e-3, abs=1e-15)
    np.testing.assert_allclose(law[1:], 0.996 * np.array([0.1, 0.3, 0.6]) + 1e-3)
    with pytest.raises(ValueError, match="floor must lie in"):
        unigram_law(np.array([1, 2]), floor=0.5)
    with pytest.raises(ValueError, match="non-negative with a positive total"):
        unigram_law(np.array([0, 0]))


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match=r"kappa = Π\(φ\) must lie in \(0, 1\)"):
        GlauberProcess(np.ones(3), 4, kappa=1.0)
    with pytest.raises(ValueError, match="must lie in"):
        GlauberProcess(np.ones(3), 4, kappa=0.0)
    with pytest.raises(ValueError, match="unknown kernel 'mask'; choose one of flip, replace"):
        GlauberProcess(np.ones(3), 4, kernel="mask")
    with pytest.raises(ValueError, match="unknown schedule 'random'"):
        GlauberProcess(np.ones(3), 4, schedule="random")
    with pytest.raises(ValueError, match="strictly positive"):
        GlauberProcess(np.array([1.0, 0.0, 1.0]), 4)
    with pytest.raises(ValueError, match="num_sweeps >= 1"):
        GlauberProcess(np.ones(3), 4, num_sweeps=0)


def test_shapes_are_checked():
    process = GlauberProcess(np.ones(3), 4)
    with pytest.raises(TypeCheckError):
        glauber.marginal_log_probs(process, jnp.zeros((2, 4), jnp.int32), 1)
    with pytest.raises(TypeCheckError):
        glauber.marginal_log_probs(process, jnp.zeros(4), 1)  # float tokens
    with pytest.raises(TypeCheckError):
        glauber.posterior_log_probs(process, jnp.zeros((3, 1)), 0)
