"""Upscale ARDM transitions and output parametrisations, against the reference's dense matrices."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from jaxtyping import TypeCheckError

from eqdd.outputs import stage_log_probs
from eqdd.processes import UpscaleTransitions, upscale
from tests.oracles import upscale_reference_matrices

VARIANTS = ["zero", "augmented"]

_problems = st.tuples(st.integers(2, 300), st.integers(2, 20), st.sampled_from(VARIANTS))


@functools.partial(jax.jit, static_argnums=0)
def _tables(transitions):
    """Every map of the library on every data class, stages and levels as traced integers.

    Row `s` of the per-stage tables is about each class's level-`s` value (its parent at stage `s`).
    """
    num_stages, branch = transitions.num_stages, transitions.branch_factor
    classes = jnp.arange(transitions.num_classes, dtype=jnp.int32)
    stages = jnp.arange(num_stages, dtype=jnp.int32)
    levels = jax.vmap(lambda level: upscale.level_values(transitions, classes, level))(
        jnp.arange(num_stages + 1, dtype=jnp.int32)
    )
    parents = levels[:-1]
    digits = jnp.broadcast_to(jnp.arange(branch, dtype=jnp.int32), (transitions.num_classes, branch))

    def per_stage(parent, stage):
        return {
            "coarse": upscale.coarsen(
                transitions, upscale.level_values(transitions, classes, stage + 1), stage + 1
            ),
            "digit": upscale.stage_digit(transitions, classes, stage),
            "own_child": upscale.child_values(
                transitions, parent, upscale.stage_digit(transitions, classes, stage), stage
            ),
            "children": upscale.child_values(
                transitions, jnp.broadcast_to(parent[:, None], digits.shape), digits, stage
            ),
            "valid": upscale.valid_digits(transitions, parent, stage),
            "consistent": upscale.consistent_values(transitions, parent, stage),
            "floor": upscale.data_floor(transitions, parent, stage),
        }

    return levels, jax.vmap(per_stage)(parents, stages)


@settings(max_examples=8)
@given(problem=_problems)
@example(problem=(256, 4, "zero"))  # CIFAR's Upscale-4: 4 stages
@example(problem=(256, 2, "augmented"))  # the reference's example: 511 classes, absorbing 510
@example(problem=(125, 5, "zero"))  # 5^3: ceil(log K / log b) in floats says 4 stages
def test_transitions_match_the_reference_matrices_and_the_digit_arithmetic(problem):
    num_classes, branch, variant = problem
    transitions = UpscaleTransitions(num_classes, branch, variant)
    matrices, cum, absorbing = upscale_reference_matrices(num_classes, branch, variant)
    levels, stages = jax.tree.map(np.asarray, _tables(transitions))
    num_stages = transitions.num_stages
    assert num_stages == len(matrices)
    assert branch**num_stages >= num_classes > branch ** (num_stages - 1)
    assert (transitions.absorbing_state, transitions.num_input_classes) == (absorbing, cum.shape[1])
    classes = np.arange(num_classes)

    # the cumulative maps are the reference's cumulative products, and the composition of the one-stage
    # maps; composing every stage sends every class to the absorbing state
    for level in range(num_stages + 1):
        np.testing.assert_array_equal(levels[level], cum[num_stages - level][:, :num_classes].argmax(axis=0))
    for stage in range(num_stages):
        np.testing.assert_array_equal(stages["coarse"][stage], levels[stage])
        # P[t - 1][coarse, value] = 1 with t = S - s digits removed after the map
        assert (matrices[num_stages - 1 - stage][levels[stage], levels[stage + 1]] == 1).all()
    np.testing.assert_array_equal(levels[0], absorbing)

    # every level's image is what the digit arithmetic says
    images = [set(row.tolist()) for row in levels]
    assert images[num_stages] == set(range(num_classes))
    for level in range(num_stages):
        removed = branch ** (num_stages - level)
        if variant == "zero":  # the classes whose `S - l` lowest digits are zero
            assert images[level] == {k for k in range(num_classes) if k % removed == 0}
        else:  # a new block of consecutive indices per level, after the data, absorbing last
            assert images[level] == set(
                range(transitions.offsets[level], transitions.offsets[level] + -(-num_classes // removed))
            )
            assert min(images[level]) > max(images[level + 1])
        assert len(images[level]) == -(-num_classes // removed) == transitions.counts[level]
    if variant == "augmented":
        assert set().union(*images) == set(range(transitions.num_input_classes))

    for stage in range(num_stages):
        parents = levels[stage]
        # the consistent values are the preimage of the parent: its row of the one-stage matrix
        np.testing.assert_array_equal(
            stages["consistent"][stage], matrices[num_stages - 1 - stage][parents] == 1
        )
        # ... and exactly the children with valid digits
        for row in np.unique(parents, return_index=True)[1]:
            children = stages["children"][stage, row][stages["valid"][stage, row]]
            assert set(children.tolist()) == set(np.flatnonzero(stages["consistent"][stage, row]).tolist())
        # a class's next level is its parent's child at the class's digit
        divisor = branch ** (num_stages - 1 - stage)
        np.testing.assert_array_equal(stages["digit"][stage], (classes // divisor) % branch)
        np.testing.assert_array_equal(stages["own_child"][stage], levels[stage + 1])
        np.testing.assert_array_equal(
            stages["floor"][stage], (classes // (divisor * branch)) * divisor * branch
        )


@functools.partial(jax.jit, static_argnums=0)
def _stage_log_probs_at_every_level(transitions, outputs):
    """`stage_log_probs` of every stage `s`, with each class's level-`s` value as the parent: `(S, K, b)`."""
    classes = jnp.arange(transitions.num_classes, dtype=jnp.int32)

    def at(output, stage):
        parent = upscale.level_values(transitions, classes, stage)
        return stage_log_probs(transitions, output, parent, stage)

    return jax.vmap(at)(outputs, jnp.arange(transitions.num_stages, dtype=jnp.int32))


def _paper_stage_probs(logits, parent, stage, matrices, cum):
    """`θ^(s) ∝ (P^T x^(s)) ⊙ (P̄ θ)` over the level-(s + 1) values, with the reference's dense matrices."""
    num_stages, size = len(matrices), cum.shape[1]
    probs = np.zeros(size)
    probs[: len(logits)] = np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum()
    future = cum[num_stages - 1 - stage] @ probs
    possible = matrices[num_stages - 1 - stage][parent]
    return future * possible / (future * possible).sum()


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("num_classes,branch", [(8, 2), (10, 3), (6, 9)])
def test_data_parametrisation_is_the_paper_formula(num_classes, branch, variant):
    transitions = UpscaleTransitions(num_classes, branch, variant)
    matrices, cum, _ = upscale_reference_matrices(num_classes, branch, variant)
    levels, stages = jax.tree.map(np.asarray, _tables(transitions))
    logits = (
        np.random.default_rng(num_classes * branch).normal(size=(len(matrices), num_classes, num_classes)) * 3
    )
    with jax.enable_x64(True):
        log_probs = np.asarray(_stage_log_probs_at_every_level(transitions, jnp.asarray(logits)))
    assert log_probs.dtype == np.float64
    for stage in range(transitions.num_stages):
        valid = stages["valid"][stage]
        assert np.isneginf(log_probs[stage][~valid]).all() and np.isfinite(log_probs[stage][valid]).all()
        for row, parent in enumerate(levels[stage]):
            expected = _paper_stage_probs(logits[stage, row], parent, stage, matrices, cum)
            children = stages["children"][stage, row][valid[row]]
            np.testing.assert_allclose(
                np.exp(log_probs[stage, row][valid[row]]), expected[children], rtol=1e-12
            )
            assert expected[children].sum() == pytest.approx(1.0, abs=1e-12)


@settings(max_examples=4)
@given(problem=_problems, seed=st.integers(0, 2**31 - 1))
@example(problem=(256, 4, "zero"), seed=0)
@example(problem=(5, 2, "augmented"), seed=1)
def test_data_and_direct_parametrisations_give_every_path_the_same_probability(problem, seed):
    # A path is the sequence of levels x^(1..S) of one class. Data logits θ used at every stage give the
    # path the probability softmax(θ)[k] (the stage conditionals telescope). Direct logits built from the
    # data conditionals along the path give it the same probability; they are shifted by a constant per
    # row, put a finite logit on impossible digits (the direct parametrisation masks them), and hold noise
    # in the other stages' rows.
    num_classes, branch, variant = problem
    transitions = UpscaleTransitions(num_classes, branch, variant)
    num_stages = transitions.num_stages
    rng = np.random.default_rng(seed)
    theta = rng.normal(size=num_classes) * 4
    classes = np.arange(num_classes)
    digits = (classes[None, :] // branch ** np.arange(num_stages - 1, -1, -1)[:, None]) % branch  # (S, K)
    with jax.enable_x64(True):
        outputs = jnp.broadcast_to(jnp.asarray(theta), (num_stages, num_classes, num_classes))
        data = np.asarray(_stage_log_probs_at_every_level(transitions, outputs))  # (S, K, b)
        direct_outputs = rng.normal(size=(num_stages, num_classes, num_stages, branch))
        for stage in range(num_stages):
            shifted = np.where(np.isfinite(data[stage]), data[stage], -50.0) + rng.normal(
                size=(num_classes, 1)
            )
            direct_outputs[stage, :, stage] = shifted
        direct_outputs = jnp.asarray(direct_outputs.reshape(num_stages, num_classes, -1))
        direct_transitions = UpscaleTransitions(num_classes, branch, variant, "direct")
        direct = np.asarray(_stage_log_probs_at_every_level(direct_transitions, direct_outputs))
    path_data = np.take_along_axis(data, digits[:, :, None], axis=2)[:, :, 0].sum(axis=0)
    path_direct = np.take_along_axis(direct, digits[:, :, None], axis=2)[:, :, 0].sum(axis=0)
    log_softmax = theta - np.log(np.exp(theta - theta.max()).sum()) - theta.max()
    np.testing.assert_allclose(path_data, log_softmax, atol=1e-9)
    np.testing.assert_allclose(path_direct, path_data, atol=1e-9)


def test_large_class_counts_need_no_dense_matrix():
    transitions = UpscaleTransitions(2**16, 16)
    assert transitions.num_stages == 4 and transitions.num_outputs == 2**16
    assert UpscaleTransitions(2**16, 16, parametrization="direct").num_outputs == 64
    x = jnp.array([0, 1, 4095, 65535, 40000], jnp.int32)
    np.testing.assert_array_equal(upscale.level_values(transitions, x, 1), (np.asarray(x) >> 12) << 12)
    np.testing.assert_array_equal(upscale.stage_digit(transitions, x, 3), np.asarray(x) % 16)
    logits = jax.random.normal(jax.random.PRNGKey(0), (5, 2**16))
    parent = upscale.level_values(transitions, x, 2)
    log_probs = jax.jit(stage_log_probs, static_argnums=0)(transitions, logits, parent, 2)
    np.testing.assert_allclose(jax.nn.logsumexp(log_probs, axis=-1), 0.0, atol=1e-5)
    augmented = UpscaleTransitions(2**16, 2, "augmented")
    assert augmented.num_input_classes == 2**17 - 1 and augmented.absorbing_state == 2**17 - 2


def test_data_parametrisation_survives_extreme_logits_and_has_finite_gradients():
    # Log-space masses keep a child far below float32's smallest probability finite (the reference adds
    # 1e-10 to the probabilities instead).
    transitions = UpscaleTransitions(4, 2)
    logits = jnp.array([[0.0, 0.0, -200.0, -300.0]])
    log_prob, grad = jax.value_and_grad(lambda z: stage_log_probs(transitions, z, jnp.array([0]), 0)[0, 1])(
        logits
    )
    assert float(log_prob) == pytest.approx(-200.0 - np.log(2.0), abs=1e-3)
    assert np.isfinite(np.asarray(grad)).all()


def test_bad_arguments_are_refused_clearly():
    with pytest.raises(ValueError, match="branch_factor"):
        UpscaleTransitions(256, 1)
    with pytest.raises(ValueError, match="num_classes"):
        UpscaleTransitions(1, 2)
    with pytest.raises(ValueError, match="unknown variant"):
        UpscaleTransitions(256, 4, "text")
    with pytest.raises(ValueError, match="unknown parametrization 'digits'; choose one of data, direct"):
        UpscaleTransitions(8, 2, parametrization="digits")
    transitions = UpscaleTransitions(8, 2, parametrization="direct")
    with pytest.raises(ValueError, match="needs 6 outputs"):
        stage_log_probs(transitions, jnp.zeros((3, 8)), jnp.zeros(3, jnp.int32), 0)


def test_shapes_are_checked():
    transitions = UpscaleTransitions(8, 2)
    with pytest.raises(TypeCheckError):
        stage_log_probs(transitions, jnp.zeros((3, 8)), jnp.zeros(4, jnp.int32), 0)
    with pytest.raises(TypeCheckError):
        upscale.level_values(transitions, jnp.zeros(3), 1)
