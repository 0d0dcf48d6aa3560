"""The GGM objective: its optimum is the Bayes classifier, and its bound is exact in expectation."""

import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jaxtyping import TypeCheckError

from eqdd.objectives import (
    GGMObjective,
    expected_classifier_loss,
    ggm_bound_estimate,
    ggm_step_kl,
    prior_kl,
    sampled_classifier_loss,
)
from eqdd.outputs import classifier_log_probs
from eqdd.processes import GlauberProcess, glauber
from eqdd.samplers import reverse_step_log_probs
from tests.oracles import (
    TabularClassifier,
    all_states,
    embed_law,
    glauber_chain_laws,
    glauber_exact_problem,
    glauber_forward_laws,
    glauber_site_kernel,
    glauber_stationary_law,
    random_law,
    state_index,
)

NUM_POSITIONS, VOCAB_SIZE, SWEEPS = 3, 3, 2  # T = 2L


def _tiny_process(kernel, seed, schedule="round_robin"):
    rng = np.random.default_rng(seed)
    vocab_law = rng.dirichlet(np.ones(VOCAB_SIZE)) + 0.05
    return rng, GlauberProcess(vocab_law, NUM_POSITIONS, SWEEPS, 0.5, schedule, kernel, schedule_seed=seed)


def _step_inputs(process, laws):
    """For every step and state `x_t`: the classifier's input row, `a = x_t^{i_t}` and the mass of `x_t`."""
    states = all_states(NUM_POSITIONS, process.num_classes)
    rows, olds = [], []
    for t in range(process.num_steps):
        inputs = np.asarray(jax.vmap(glauber.with_query, (None, 0, None))(process, jnp.asarray(states), t))
        rows.append(state_index(inputs, process.num_classes + 1))
        olds.append(states[:, int(glauber.position(process, t))])
    return np.array(rows), np.array(olds), laws[:-1]


def _exact_conditionals(process, laws):
    """`p_t(b | s)` for every step and classifier input, and the mass `P(s)` of each input."""
    rows, olds, weights = _step_inputs(process, laws)
    shape = (process.num_steps, (process.num_classes + 1) ** NUM_POSITIONS)
    joint = np.zeros((*shape, process.num_classes))
    steps = np.broadcast_to(np.arange(process.num_steps)[:, None], rows.shape)
    np.add.at(joint, (steps, rows, olds), weights)
    context = joint.sum(-1)
    return joint / np.maximum(context, 1e-300)[..., None], context


@pytest.mark.parametrize("kernel", ["flip", "replace"])
@settings(max_examples=5)
@given(seed=st.integers(0, 2**31 - 1))
def test_closed_form_loss_is_the_mean_of_the_one_sample_loss(kernel, seed):
    with jax.enable_x64(True):
        rng, process = _tiny_process(kernel, seed)
        logits = jnp.asarray(rng.normal(size=process.num_classes) * 3)
        a = jnp.int32(rng.integers(VOCAB_SIZE))
        pi = np.append(0.5 * np.asarray(process.vocab_law), 0.5)  # z over X ∪ {φ}, φ = V
        mean = sum(pi[z] * float(sampled_classifier_loss(process, logits, a, jnp.int32(z))) for z in range(4))
        assert float(expected_classifier_loss(process, logits, a)) == pytest.approx(mean, rel=1e-12)


@pytest.mark.parametrize("kernel", ["flip", "replace"])
def test_minimising_the_loss_with_a_tabular_classifier_reaches_the_bayes_optimum(kernel):
    # The exact expected loss (over t, x_0 and x_t, enumerated) of a table of logits indexed by (t, input),
    # minimised with Adam: the classifier's p̂_t = softmax(f + log ν) becomes the exact conditional
    # p_t(· | s), the loss reaches the Bayes-optimal table's, and the reverse chain reproduces the data.
    rng, process = _tiny_process(kernel, 11)
    law = random_law(rng, NUM_POSITIONS, VOCAB_SIZE)
    with jax.enable_x64(True):
        _, laws, bayes_table = glauber_exact_problem(process, law)
    rows, olds, weights = (jnp.asarray(v) for v in _step_inputs(process, laws))
    per_step = jax.vmap(jax.vmap(lambda f, a: expected_classifier_loss(process, f, a)))

    def expected_loss(table):
        logits = table[jnp.arange(process.num_steps)[:, None], rows]
        return jnp.sum(weights * per_step(logits, olds)) / process.num_steps

    # A short second-moment memory keeps the steps large while the replace kernel's φ logits head for -inf.
    optimizer = optax.adam(optax.cosine_decay_schedule(0.3, 600), b2=0.9)

    @jax.jit
    def train(table):
        def step(carry, _):
            table, state = carry
            grads = jax.grad(expected_loss)(table)
            updates, state = optimizer.update(grads, state)
            return (optax.apply_updates(table, updates), state), None

        (table, _), _ = jax.lax.scan(step, (table, optimizer.init(table)), None, length=600)
        return table

    table = train(jnp.zeros(bayes_table.shape, jnp.float32))
    bayes_loss = float(expected_loss(jnp.asarray(np.maximum(bayes_table, -80.0), jnp.float32)))
    assert float(expected_loss(table)) - bayes_loss < 1e-5
    conditionals, context = _exact_conditionals(process, laws)
    learned = np.exp(np.asarray(jax.vmap(jax.vmap(lambda f: classifier_log_probs(process, f)))(table)))
    tv = 0.5 * np.abs(learned - conditionals).sum(-1)
    assert (context * tv).sum() / process.num_steps < 2e-3  # mean over t and s ~ P(s) of TV(p̂_t, p_t)
    with jax.enable_x64(True):
        data = glauber_chain_laws(process, np.asarray(table, np.float64), laws[-1], reverse_step_log_probs)[
            -1
        ]
    assert 0.5 * np.abs(data - laws[0]).sum() < 1e-2


def _exact_bounds_bits(classifier, process, x0s):
    """`Σ_t E_{x_{t+1} | x_0}[KL_t] + prior` per `x_0` in bits, every `x_{t+1}` enumerated (oracle laws)."""
    num_classes, num_steps = process.num_classes, process.num_steps
    positions = [int(glauber.position(process, t)) for t in range(num_steps)]
    site_kernel = glauber_site_kernel(process.kernel, process.kappa, np.asarray(process.vocab_law))
    states = jnp.asarray(all_states(NUM_POSITIONS, num_classes))

    def kl_table(x0):  # (T, K^L): KL_t for every x_{t+1}
        def at(t):
            return jax.vmap(lambda x_next: ggm_step_kl(classifier, process, x0, x_next, t))(states)

        return jax.vmap(at)(jnp.arange(num_steps, dtype=jnp.int32))

    x0s = jnp.asarray(x0s, jnp.int32)
    kls = np.asarray(jax.jit(jax.vmap(kl_table))(x0s))
    priors = np.asarray(jax.jit(jax.vmap(lambda x0: prior_kl(process, x0)))(x0s))
    bounds = []
    for x0, kl, prior in zip(np.asarray(x0s), kls, priors, strict=True):
        point_mass = np.zeros(VOCAB_SIZE**NUM_POSITIONS)
        point_mass[state_index(x0, VOCAB_SIZE)] = 1.0
        start = embed_law(point_mass, NUM_POSITIONS, VOCAB_SIZE, num_classes)
        laws = glauber_forward_laws(start, positions, site_kernel, NUM_POSITIONS)[1:]  # x_1 .. x_T
        bounds.append(prior + np.sum(np.where(laws > 0, laws * kl, 0.0)))
    return np.array(bounds) / math.log(2.0)


@pytest.mark.parametrize("kernel", ["flip", "replace"])
@pytest.mark.parametrize("classifier_kind", ["bayes", "random"])
def test_exact_bound_is_above_the_model_code_length_for_every_sequence(kernel, classifier_kind):
    # The bound holds for any classifier and every x: Σ_t E[KL_t] + prior >= -log2 p(x) under the model's
    # own reverse chain from ν^L (its law enumerated exactly).
    with jax.enable_x64(True):
        rng, process = _tiny_process(kernel, 5, "permutation")
        law = random_law(rng, NUM_POSITIONS, VOCAB_SIZE)
        _, _, table = glauber_exact_problem(process, law)
        if classifier_kind == "random":
            table = rng.normal(size=table.shape) * 2
        start = glauber_stationary_law(process)
        model_law = glauber_chain_laws(process, table, start, reverse_step_log_probs)[-1]
        sequences = all_states(NUM_POSITIONS, VOCAB_SIZE)
        bounds = _exact_bounds_bits(TabularClassifier(jnp.asarray(table)), process, sequences)
    code_lengths = -np.log2(model_law[state_index(sequences, process.num_classes)])
    assert np.all(np.isfinite(bounds))
    assert np.all(bounds >= code_lengths - 1e-9)


@pytest.mark.parametrize("kernel", ["flip", "replace"])
def test_monte_carlo_estimates_match_their_exact_means(kernel):
    # The objective's per-step terms (4 steps per sequence) and `ggm_bound_estimate`, averaged over random
    # keys, against the exact bound and the exact expected BCE (every t and x_t enumerated).
    rng, process = _tiny_process(kernel, 2)
    law = random_law(rng, NUM_POSITIONS, VOCAB_SIZE)
    x0 = np.array([2, 0, 1])
    with jax.enable_x64(True):
        _, _, table = glauber_exact_problem(process, law)
        table = np.maximum(table, -80.0)
        exact_bound = _exact_bounds_bits(TabularClassifier(jnp.asarray(table)), process, x0[None])[0]
        exact_bound /= NUM_POSITIONS
        point_mass = np.zeros(VOCAB_SIZE**NUM_POSITIONS)
        point_mass[state_index(x0, VOCAB_SIZE)] = 1.0
        _, laws, _ = glauber_exact_problem(process, point_mass)
        rows, olds, weights = _step_inputs(process, laws)
        per_state = jax.vmap(jax.vmap(lambda f, a: expected_classifier_loss(process, f, a)))
        losses = per_state(jnp.asarray(table[np.arange(process.num_steps)[:, None], rows]), jnp.asarray(olds))
        exact_bce = float(np.sum(weights * np.asarray(losses))) / process.num_steps
    classifier = TabularClassifier(jnp.asarray(table, jnp.float32))
    x0 = jnp.asarray(x0, jnp.int32)
    closed = GGMObjective(process, timesteps_per_sequence=4)
    sampled = GGMObjective(process, timesteps_per_sequence=4, closed_form=False)

    def estimates(key):  # one compilation for all four estimators
        closed_loss, terms = closed(classifier, x0, key)
        sampled_loss, sampled_terms = sampled(classifier, x0, key)
        bound = ggm_bound_estimate(classifier, process, x0, key)
        return closed_loss, sampled_loss, jnp.mean(terms.nelbo), jnp.mean(sampled_terms.nelbo), bound

    samples = jax.jit(jax.vmap(estimates))(jax.random.split(jax.random.PRNGKey(0), 10_000))
    for estimator, exact in zip(
        samples, (exact_bce, exact_bce, exact_bound, exact_bound, exact_bound), strict=True
    ):
        estimator = np.asarray(estimator, np.float64)
        stderr = estimator.std() / math.sqrt(len(estimator))
        assert abs(estimator.mean() - exact) < 4 * stderr
        assert stderr < 0.05 * exact  # the check above is not vacuous


class _TinyDenoiser(eqx.Module):
    """A small differentiable classifier: token embeddings mixed across positions, plus a step bias."""

    embedding: jax.Array
    mixing: jax.Array
    step_bias: jax.Array

    def __init__(self, process, key):
        keys = jax.random.split(key, 3)
        num_positions, num_classes = process.num_positions, process.num_classes
        self.embedding = jax.random.normal(keys[0], (process.num_input_classes, num_classes))
        self.mixing = jax.random.normal(keys[1], (num_positions, num_positions))
        self.step_bias = jax.random.normal(keys[2], (process.num_steps, num_classes))

    def __call__(self, tokens, t):
        return self.mixing @ self.embedding[tokens] + self.step_bias[t]


@pytest.mark.parametrize("kernel,closed_form", [("flip", True), ("replace", False)])
def test_objective_terms_shapes_and_gradients(kernel, closed_form):
    _, process = _tiny_process(kernel, 0)
    objective = GGMObjective(process, timesteps_per_sequence=5, closed_form=closed_form)
    model = _TinyDenoiser(process, jax.random.PRNGKey(0))
    batch = jnp.array([[0, 1, 2], [2, 2, 0]], jnp.int32)
    keys = jax.random.split(jax.random.PRNGKey(1), 2)

    def mean_loss(model):  # as in the training step
        losses, terms = eqx.filter_vmap(objective, in_axes=(None, 0, 0))(model, batch, keys)
        return jnp.mean(losses), terms

    @eqx.filter_jit
    def run(model):
        (loss, terms), grads = eqx.filter_value_and_grad(mean_loss, has_aux=True)(model)
        priors = jax.vmap(lambda x: prior_kl(process, x))(batch)
        one = objective.estimate(model, batch[0], jnp.int32(3), keys[0])  # for eqdd.train.evaluate_bound
        return loss, terms, grads, priors, one

    loss, terms, grads, priors, one = run(model)
    assert all(field.shape == (2, 5) for field in terms)
    assert np.all((np.asarray(terms.t) >= 0) & (np.asarray(terms.t) < process.num_steps))
    np.testing.assert_allclose(loss, np.mean(terms.surrogate), rtol=1e-6)
    prior_bits = np.asarray(priors)[:, None] / (NUM_POSITIONS * math.log(2))
    np.testing.assert_allclose(terms.nelbo, process.num_steps * terms.step_loss + prior_bits, rtol=1e-5)
    assert np.all(np.asarray(terms.step_loss) >= -1e-7)
    assert all(np.all(np.isfinite(g)) for g in jax.tree.leaves(grads))
    assert one.nelbo.shape == () and int(one.t) == 3


def test_a_quantile_spreads_a_sequences_steps_one_in_each_share_of_the_range():
    _, process = _tiny_process("flip", 0)
    objective = GGMObjective(process, timesteps_per_sequence=3)
    model = _TinyDenoiser(process, jax.random.PRNGKey(0))
    x = jnp.array([0, 1, 2], jnp.int32)
    for quantile in (0.0, 0.4, 0.999):
        _, terms = objective(model, x, jax.random.PRNGKey(1), jnp.float32(quantile))
        expected = np.floor((np.arange(3) + np.float32(quantile)) / 3 * process.num_steps)
        np.testing.assert_array_equal(terms.t, expected)


def test_bad_arguments_are_refused():
    _, process = _tiny_process("flip", 0)
    with pytest.raises(ValueError, match="timesteps_per_sequence must be at least 1"):
        GGMObjective(process, timesteps_per_sequence=0)
    model = _TinyDenoiser(process, jax.random.PRNGKey(0))
    with pytest.raises(ValueError, match="the sequence has 4 tokens but the process has 3"):
        GGMObjective(process)(model, jnp.zeros(4, jnp.int32), jax.random.PRNGKey(0))
    with pytest.raises(TypeCheckError):
        expected_classifier_loss(process, jnp.zeros((VOCAB_SIZE, 2)), jnp.int32(0))
