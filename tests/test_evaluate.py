"""The evaluator's stratified steps: evenly spread in every pass, uniform for every chunk."""

import jax
import jax.numpy as jnp
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from eqdd.objectives import Terms
from eqdd.train import evaluate_bound
from eqdd.train.evaluate import stratified_steps


@settings(max_examples=25)
@given(count=st.integers(1, 300), num_steps=st.integers(1, 3200), seed=st.integers(0, 2**16))
def test_each_pass_puts_one_step_in_each_stratum(count, num_steps, seed):
    steps = np.sort(stratified_steps(jax.random.PRNGKey(seed), count, num_steps))
    k = np.arange(count)
    assert steps.min() >= 0 and steps.max() < num_steps
    assert np.all(steps >= np.floor(k * num_steps / count))
    assert np.all(steps < np.ceil((k + 1) * num_steps / count))


def test_every_chunk_sees_uniform_steps():
    # 5 chunks and 40 steps (fewer chunks than steps, the case that matters for images):
    # over 2,000 passes each chunk's step is uniform on 0..39.
    keys = jax.random.split(jax.random.PRNGKey(0), 2000)
    steps = np.stack([stratified_steps(key, 5, 40) for key in keys])
    for chunk in range(5):
        counts = np.bincount(steps[:, chunk], minlength=40)
        assert stats.chisquare(counts).pvalue > 1e-4


def test_the_evaluator_scores_each_chunk_at_its_stratified_step():
    def reveal_step(model, x, t, key):  # the estimate is the step, offset by the chunk's id
        value = t.astype(jnp.float32) + 1000.0 * x[0]
        return Terms(nelbo=value, step_loss=value, surrogate=value, t=t)

    chunks = np.arange(7)[:, None].repeat(2, axis=1)
    report = evaluate_bound(
        reveal_step, None, chunks, 50, passes=1, batch_size=4, key=jax.random.PRNGKey(3), progress=False
    )
    steps = report.per_chunk - 1000.0 * np.arange(7)
    expected = stratified_steps(jax.random.split(jax.random.PRNGKey(3), 3)[1], 7, 50)
    np.testing.assert_array_equal(steps, expected)
