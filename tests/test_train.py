"""Training machinery: the L_t tracker, EMA, the step, checkpoints and exact resumption."""

import itertools

import chex
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jax.flatten_util import ravel_pytree

from eqdd.denoisers import Transformer
from eqdd.denoisers.transformer import bfloat16_matmuls
from eqdd.objectives import OAARDMObjective
from eqdd.processes import AbsorbingProcess
from eqdd.train import Checkpointer, StepLosses, TrainState, fit, make_optimizer, make_train_step
from eqdd.train.loop import DivergedError, request_stop
from eqdd.train.metrics import read_metrics
from eqdd.train.state import SCHEDULES, ema_decay_at, hidden_matrices, learning_rate_schedule

D, K, BATCH = 16, 5, 8


@settings(max_examples=20)
@given(
    st.lists(
        st.lists(st.tuples(st.integers(0, 5), st.floats(0, 10)), min_size=4, max_size=4),
        min_size=1,
        max_size=4,
    )
)
def test_step_losses_follow_the_reference_moving_average(batches):
    tracker = StepLosses.empty(6)
    expected = {}
    update = jax.jit(lambda tracker, t, losses: tracker.update(t, losses))
    for batch in batches:
        t = np.array([b[0] for b in batch])
        losses = np.array([b[1] for b in batch], np.float32)
        tracker = update(tracker, jnp.asarray(t, jnp.int32), jnp.asarray(losses))
        for step in np.unique(t):
            mean = losses[t == step].mean()
            expected[step] = mean if step not in expected else 0.95 * expected[step] + 0.05 * mean
    seen = np.asarray(tracker.seen)
    assert set(np.flatnonzero(seen)) == set(expected)
    for step, value in expected.items():
        assert float(tracker.values[step]) == pytest.approx(value, rel=1e-5, abs=1e-6)


def test_ema_decay_ramps_up_then_holds():
    decays = [float(ema_decay_at(jnp.int32(s), 0.995)) for s in (0, 10, 10_000)]
    np.testing.assert_allclose(decays, [0.1, 0.55, 0.995], rtol=1e-6)


def _corpus_batches(seed=0):
    """A learnable corpus: each sequence is a random shift of a fixed periodic pattern."""
    rng = np.random.default_rng(seed)
    pattern = np.array([1, 2, 3, 4, 1, 3], np.int32)
    while True:
        shifts = rng.integers(0, 6, BATCH)
        yield np.stack([np.roll(np.tile(pattern, 3)[:D], s) for s in shifts]).astype(np.int32)


def _setup(seed=0):
    model = Transformer(K + 1, K, 32, 1, 2, 64, key=jax.random.PRNGKey(seed))
    optimizer = make_optimizer(3e-3, 5, 1.0)
    state = TrainState.create(model, optimizer, jax.random.PRNGKey(seed + 1), D)
    return state, make_train_step(OAARDMObjective(AbsorbingProcess(K)), optimizer, 0.9)


_STATE, _STEP = _setup()


def test_training_reduces_the_loss():
    state, batches = _STATE, _corpus_batches()
    history = []
    for _ in range(80):
        state, metrics = _STEP(state, next(batches))
        history.append(float(metrics["nelbo"]))
    assert np.mean(history[-15:]) < 0.6 * np.mean(history[:5])
    assert int(state.step) == 80
    assert bool(state.step_losses.seen.all())  # every t was observed and tracked


def _steps(step, state, batches):
    for batch in batches:
        state, metrics = step(state, batch)
    return state, metrics


def _move(before, after):
    """The change of every parameter, flattened into one vector."""
    before, after = (eqx.filter(state.model, eqx.is_array) for state in (before, after))
    return ravel_pytree(jax.tree.map(jnp.subtract, after, before))[0]


def test_bfloat16_products_in_training_step_the_float32_parameters_like_float32_products():
    # The same state and batch through a float32 step and a bfloat16-products step: the stored
    # parameters stay float32, the loss and the update agree to bfloat16's rounding, and training
    # learns the corpus as well.
    optimizer = make_optimizer(3e-3, 5, 1.0)
    step = make_train_step(OAARDMObjective(AbsorbingProcess(K)), optimizer, 0.9, compute=bfloat16_matmuls)
    batches = list(itertools.islice(_corpus_batches(), 3))  # the first step's rate is 0 (warm-up)
    (exact, exact_metrics), (rounded, rounded_metrics) = (_steps(f, _STATE, batches) for f in (_STEP, step))
    assert all(
        leaf.dtype == jnp.float32 for leaf in jax.tree.leaves(eqx.filter(rounded, eqx.is_inexact_array))
    )
    assert float(rounded_metrics["loss"]) != float(exact_metrics["loss"])  # rounded, not the same function
    np.testing.assert_allclose(rounded_metrics["loss"], exact_metrics["loss"], rtol=1e-2)
    np.testing.assert_allclose(rounded_metrics["grad_norm"], exact_metrics["grad_norm"], rtol=5e-2)
    exact_move, rounded_move = (_move(_STATE, state) for state in (exact, rounded))
    cosine = jnp.dot(exact_move, rounded_move) / (jnp.linalg.norm(exact_move) * jnp.linalg.norm(rounded_move))
    assert float(cosine) > 0.99
    state, batches, history = _STATE, _corpus_batches(), []
    for _ in range(80):
        state, metrics = step(state, next(batches))
        history.append(float(metrics["nelbo"]))
    assert np.mean(history[-15:]) < 0.6 * np.mean(history[:5])


def test_stratified_steps_put_one_example_of_a_batch_in_each_stratum():
    # D = 16 steps and a batch of 8: strata of two steps each, one example in each, at every step.
    optimizer = make_optimizer(3e-3, 5, 1.0)
    step = make_train_step(OAARDMObjective(AbsorbingProcess(K)), optimizer, 0.9, stratify_steps=True)
    state, batches = _STATE, _corpus_batches()
    for _ in range(3):
        fresh = eqx.tree_at(lambda s: s.step_losses, state, StepLosses.empty(D))
        state, _ = step(fresh, next(batches))
        seen = np.asarray(state.step_losses.seen).reshape(BATCH, D // BATCH)
        np.testing.assert_array_equal(seen.sum(axis=1), np.ones(BATCH))


@settings(max_examples=20)
@given(st.floats(0.0, 1.0, exclude_max=True))
def test_a_quantile_places_the_step_and_keeps_it_uniform(quantile):
    # t = floor(quantile·D): the quantiles of [i/D, (i+1)/D) give step i, so a uniform quantile gives a
    # uniform step (the stratified training step relies on it).
    objective = OAARDMObjective(AbsorbingProcess(K))
    x = jnp.arange(D, dtype=jnp.int32) % K
    _, terms = _ONE_EXAMPLE(objective, x, jnp.float32(quantile))
    assert int(terms.t) == min(int(np.floor(np.float32(quantile) * D)), D - 1)


_ONE_EXAMPLE = eqx.filter_jit(
    lambda objective, x, quantile: objective(_STATE.model, x, jax.random.PRNGKey(0), quantile)
)


def _assert_same_arrays(a, b):
    """Every array of two pytrees (models, optimiser states, whole train states) equal, bit for bit,
    with the same dtypes, shapes and structure."""
    chex.assert_trees_all_equal(eqx.filter(a, eqx.is_array), eqx.filter(b, eqx.is_array), strict=True)


def test_checkpoint_round_trip_is_bit_exact(tmp_path):
    state, batches = _STATE, _corpus_batches()
    state, _ = _STEP(state, next(batches))
    checkpointer = Checkpointer(tmp_path / "ckpt")
    checkpointer.save(1, state, {"note": "hello", "data_iterator": {"next_index": 1}})
    checkpointer.wait()
    restored, metadata = Checkpointer(tmp_path / "ckpt").restore(_STATE)
    assert metadata == {"note": "hello", "data_iterator": {"next_index": 1}}
    _assert_same_arrays(state, restored)  # optimiser state included, structure and all
    batch = next(batches)  # and the restored state trains on identically
    _assert_same_arrays(_STEP(state, batch)[0], _STEP(restored, batch)[0])


class _Stream:
    """A batch iterator whose position is its state, like the grain iterator."""

    def __init__(self):
        self.position = 0
        self._batches = list(itertools.islice(_corpus_batches(1), 64))

    def __next__(self):
        self.position += 1
        return self._batches[self.position - 1]


def _run(tmp_path, name, num_steps, state=None, stream=None, step_fn=_STEP):
    stream = stream or _Stream()
    checkpointer = Checkpointer(tmp_path / name)
    if checkpointer.latest_step() is not None:
        state, metadata = checkpointer.restore(_STATE)
        stream.position = metadata["position"]
    state = fit(
        state or _STATE,
        step_fn,
        stream,
        num_steps=num_steps,
        checkpointer=checkpointer,
        metadata=lambda: {"position": stream.position},
        metrics_path=tmp_path / f"{name}.jsonl",
        log_every=1,
        checkpoint_every=3,
        progress=False,
    )
    checkpointer.close()
    return state


def test_a_resumed_run_continues_exactly_like_an_uninterrupted_one(tmp_path):
    uninterrupted = _run(tmp_path, "straight", 10)
    _run(tmp_path, "resumed", 5)  # stops after step 5 (a checkpoint at 3, then the final one at 5)
    resumed = _run(tmp_path, "resumed", 10)
    assert int(resumed.step) == 10
    _assert_same_arrays(uninterrupted, resumed)
    steps = [r["step"] for r in read_metrics(tmp_path / "resumed.jsonl")]
    assert steps == list(range(1, 11))


def test_an_interrupted_run_saves_and_resumes_exactly(tmp_path):
    calls = {"n": 0}

    def interrupted_step(state, batch):
        calls["n"] += 1
        if calls["n"] == 5:  # Ctrl-C while the fifth step runs: its batch was drawn, not used
            raise KeyboardInterrupt
        return _STEP(state, batch)

    uninterrupted = _run(tmp_path, "straight", 8)
    with pytest.raises(KeyboardInterrupt):
        _run(tmp_path, "killed", 8, step_fn=interrupted_step)
    assert Checkpointer(tmp_path / "killed").latest_step() == 4
    resumed = _run(tmp_path, "killed", 8)
    _assert_same_arrays(uninterrupted, resumed)
    steps = [r["step"] for r in read_metrics(tmp_path / "killed.jsonl")]
    assert steps == list(range(1, 9))


def test_a_run_killed_between_saves_resumes_from_the_newest_checkpoint(tmp_path, monkeypatch):
    calls = {"n": 0}

    def killed_step(state, batch):  # the process dies (no handler runs) while the eighth step runs
        calls["n"] += 1
        if calls["n"] == 8:
            raise RuntimeError("killed")
        return _STEP(state, batch)

    original_save = Checkpointer.save

    def save_then_finish(self, step, state, metadata):  # the background write finishes at once
        original_save(self, step, state, metadata)
        self._manager.wait_until_finished()

    uninterrupted = _run(tmp_path, "straight", 10)
    monkeypatch.setattr(Checkpointer, "save", save_then_finish)
    with pytest.raises(RuntimeError, match="killed"):
        _run(tmp_path, "killed", 10, step_fn=killed_step)  # saves at 3 and 6, then dies
    monkeypatch.undo()
    assert Checkpointer(tmp_path / "killed").latest_step() == 6  # sealed while training went on
    _assert_same_arrays(uninterrupted, _run(tmp_path, "killed", 10))


def test_a_signal_is_acted_on_at_the_step_boundary_even_during_a_save(tmp_path, monkeypatch):
    uninterrupted = _run(tmp_path, "straight", 8)
    calls = {"n": 0}

    def signalled_step(state, batch):  # SIGTERM arrives while the fifth step runs
        calls["n"] += 1
        if calls["n"] == 5:
            request_stop()
        return _STEP(state, batch)

    with pytest.raises(KeyboardInterrupt):
        _run(tmp_path, "signalled", 8, step_fn=signalled_step)
    assert Checkpointer(tmp_path / "signalled").latest_step() == 5  # the step finished, then saved
    saves = []
    original_save = Checkpointer.save

    def save_with_a_signal(self, step, state, metadata):  # a second signal lands inside a save
        saves.append(step)
        request_stop()
        original_save(self, step, state, metadata)

    monkeypatch.setattr(Checkpointer, "save", save_with_a_signal)
    with pytest.raises(KeyboardInterrupt):
        _run(tmp_path, "signalled", 8)  # resumes at 5, saves at 6 (checkpoint_every=3), stops
    assert saves == [6] and Checkpointer(tmp_path / "signalled").latest_step() == 6
    monkeypatch.undo()
    _assert_same_arrays(uninterrupted, _run(tmp_path, "signalled", 8))
    with pytest.raises(KeyboardInterrupt):
        request_stop()  # outside training a signal stops at once, as Ctrl-C does


def test_a_nan_loss_stops_training_and_saves_nothing_of_it(tmp_path):
    calls = {"n": 0}

    def diverging_step(state, batch):
        calls["n"] += 1
        state, metrics = _STEP(state, batch)
        return state, {**metrics, "loss": jnp.nan} if calls["n"] == 8 else metrics

    good = _run(tmp_path, "straight", 7)
    with pytest.raises(DivergedError, match="the training loss became nan at step 8; nothing from it"):
        _run(tmp_path, "diverged", 10, step_fn=diverging_step)
    checkpointer = Checkpointer(tmp_path / "diverged")
    assert checkpointer.latest_step() == 6  # checkpoints every 3 steps: the last good one
    assert [r["step"] for r in read_metrics(tmp_path / "diverged.jsonl")] == list(range(1, 8))
    resumed = _run(tmp_path, "diverged", 7)  # and the run resumes from it, as if nothing happened
    _assert_same_arrays(good, resumed)


@pytest.mark.parametrize("schedule", SCHEDULES)
def test_learning_rate_schedules_warm_up_then_decay_to_the_floor(schedule):
    rate = learning_rate_schedule(2.0, 10, schedule, total_steps=110, floor=0.25)
    values = np.array([float(rate(step)) for step in (0, 5, 10, 60, 110, 500)])
    np.testing.assert_allclose(values[:3], [0.0, 1.0, 2.0], rtol=1e-6)
    middle = {"constant": 2.0, "cosine": 0.25 * 2 + 0.75 * 2 * 0.5, "linear": 1.25}[schedule]
    end = 2.0 if schedule == "constant" else 0.5
    np.testing.assert_allclose(values[3:], [middle, end, end], rtol=1e-5)
    steps = np.arange(10, 111)
    assert np.all(np.diff([float(rate(s)) for s in steps]) <= 1e-7)  # never rises after the warm-up


def test_learning_rate_schedules_refuse_unknown_names_and_accept_short_runs():
    with pytest.raises(ValueError, match="unknown learning-rate schedule"):
        learning_rate_schedule(1.0, 10, "exponential", 100)
    # a run no longer than its warm-up never reaches the decay, and its end is the floor
    rate = learning_rate_schedule(1.0, 10, "cosine", 10, floor=0.5)
    assert float(rate(5)) == pytest.approx(0.5) and float(rate(11)) == pytest.approx(0.5)


@pytest.mark.parametrize("step_sampling,ce_mask_power", [("uniform", 0.0), ("masked", 1.0)])
def test_a_step_with_every_new_option_on_trains(step_sampling, ce_mask_power):
    # Convolutions before attention and MLP, rotary embeddings, QK-norm, zero-initialised output layers,
    # gated squared-ReLU MLPs, a cosine decay, Muon (on q, k and v apart), the token embedding at 4
    # times AdamW's rate and the plain masked CE together; then again with the steps drawn in
    # proportion to their masked positions and the CE's weight scaled by the masked fraction.
    model = Transformer(
        K + 1,
        K,
        32,
        1,
        2,
        64,
        conv_width=3,
        rotary=True,
        activation="relu2",
        mlp_conv=True,
        qk_norm=True,
        zero_init=True,
        gated_mlp=True,
        key=jax.random.PRNGKey(0),
    )
    optimizer = make_optimizer(
        3e-3,
        5,
        1.0,
        schedule="cosine",
        total_steps=40,
        floor=0.1,
        optimizer="muon",
        muon_learning_rate=0.02,
        split_qkv=True,
        embedding_factor=4.0,
    )
    state = TrainState.create(model, optimizer, jax.random.PRNGKey(1), D)
    objective = OAARDMObjective(
        AbsorbingProcess(K),
        ce_weight=1.0,
        elbo_weight=0.0,
        step_sampling=step_sampling,
        ce_mask_power=ce_mask_power,
    )
    step = make_train_step(objective, optimizer, 0.9)
    batches, history = _corpus_batches(), []
    for _ in range(40):
        state, metrics = step(state, next(batches))
        history.append(float(metrics["nelbo"]))
        if (step_sampling, ce_mask_power) == ("uniform", 0.0):  # the loss is the plain masked CE
            np.testing.assert_allclose(metrics["loss"], metrics["surrogate"], rtol=1e-6)
    assert np.mean(history[-10:]) < 0.6 * np.mean(history[:5])


def _parameters_and_gradients():
    """A small transformer's arrays and a standard normal gradient for each."""
    model = Transformer(K + 1, K, 32, 2, 2, 64, conv_width=3, key=jax.random.PRNGKey(0))
    params = eqx.filter(model, eqx.is_array)
    leaves, treedef = jax.tree.flatten(params)
    keys = jax.random.split(jax.random.PRNGKey(1), len(leaves))
    grads = [jax.random.normal(k, x.shape) for k, x in zip(keys, leaves, strict=True)]
    return params, jax.tree.unflatten(treedef, grads)


@pytest.mark.parametrize("split_qkv", [False, True])
def test_muon_orthogonalises_the_blocks_matrices_and_adam_steps_the_rest(split_qkv):
    # With a constant gradient g, the second update (the first after the one-step warm-up) is
    # `-lr · sqrt(max(1, out/in)) · polar(g)` for a block's weight (Newton-Schulz approximates the
    # polar factor U Vᵀ of g = U S Vᵀ) and `-lr_adam · sign(g)` for every other array (Adam's first
    # step on a constant gradient, with Nesterov's look-ahead: the bias-corrected moment one step on,
    # `b1·(1 − b1²)/(1 − b1³)`, plus `(1 − b1)/(1 − b1²)` of the gradient, over `|g|`). With
    # `split_qkv`, the query, key and value rows of the fused projection are three such matrices.
    params, grads = _parameters_and_gradients()
    optimizer = make_optimizer(1e-3, 1, 1e9, optimizer="muon", muon_learning_rate=0.05, split_qkv=split_qkv)
    opt_state = optimizer.init(params)
    first, opt_state = optimizer.update(grads, opt_state, params)
    assert all(float(jnp.abs(u).max()) == 0 for u in jax.tree.leaves(first))  # warm-up starts at 0
    updates, _ = optimizer.update(grads, opt_state, params)
    is_spec = lambda x: x is None or isinstance(x, optax.contrib.MuonDimensionNumbers)  # noqa: E731
    flat_labels = jax.tree_util.tree_flatten_with_path(hidden_matrices(params), is_leaf=is_spec)[0]
    labels = {jax.tree_util.keystr(path): label for path, label in flat_labels}
    b1 = 0.9
    nesterov = b1 * (1 - b1**2) / (1 - b1**3) + (1 - b1) / (1 - b1**2)
    matrices = 0
    for (path, g), u in zip(
        jax.tree_util.tree_leaves_with_path(grads), jax.tree.leaves(updates), strict=True
    ):
        label = labels[jax.tree_util.keystr(path)]
        if label is None:
            np.testing.assert_allclose(u, -1e-3 * nesterov * np.sign(g), rtol=1e-3, atol=1e-6)
            continue
        parts = 3 if split_qkv and jax.tree_util.keystr(path).endswith(".qkv.weight") else 1
        for g_part, u_part in zip(
            np.split(np.asarray(g), parts), np.split(np.asarray(u), parts), strict=True
        ):
            matrices += 1
            left, _, right = np.linalg.svd(g_part, full_matrices=False)
            out_size, in_size = g_part.shape
            direction = u_part / (-0.05 * np.sqrt(max(1.0, out_size / in_size)))
            singular = np.linalg.svd(direction, compute_uv=False)
            # Newton-Schulz's band around 1 (the smallest singular values of g converge last)
            assert np.median(singular) > 0.6 and singular.max() < 1.25
            polar = left @ right
            cosine = np.sum(direction * polar) / (np.linalg.norm(direction) * np.linalg.norm(polar))
            assert cosine > 0.97
    assert matrices == 2 * (6 if split_qkv else 4)  # q, k and v (or qkv), out, mlp_in, mlp_out of both blocks


@pytest.mark.parametrize("optimizer", ["adamw", "muon"])
def test_the_embedding_factor_scales_the_token_embeddings_updates_and_no_other(optimizer):
    # The same gradients through both optimisers: the embedding's updates (weight decay included)
    # are `factor` times the plain optimiser's, every other update is the plain one.
    params, grads = _parameters_and_gradients()
    factor = 6.0
    updates = []
    for embedding_factor in (1.0, factor):
        transform = make_optimizer(
            1e-3, 1, 1e9, weight_decay=0.1, optimizer=optimizer, embedding_factor=embedding_factor
        )
        opt_state = transform.init(params)
        for _ in range(3):
            update, opt_state = transform.update(grads, opt_state, params)
        updates.append(update)
    scaled = 0
    plain_updates, new_updates = (jax.tree_util.tree_leaves_with_path(u) for u in updates)
    for (path, plain), (_, new) in zip(plain_updates, new_updates, strict=True):
        expected = factor * plain if "token_embedding" in jax.tree_util.keystr(path) else plain
        scaled += "token_embedding" in jax.tree_util.keystr(path)
        np.testing.assert_allclose(new, expected, rtol=1e-6, atol=1e-12)
    assert scaled == 1


def test_the_embedding_factor_needs_a_token_embedding():
    linear = eqx.filter(eqx.nn.Linear(4, 4, key=jax.random.PRNGKey(0)), eqx.is_array)
    make_optimizer(1e-3, 1, 1.0, embedding_factor=1.0).init(linear)  # 1 changes nothing: accepted
    with pytest.raises(ValueError, match="needs a model with a `token_embedding`"):
        make_optimizer(1e-3, 1, 1.0, embedding_factor=2.0).init(linear)


def test_muon_needs_a_known_optimizer_name_and_a_model_with_blocks():
    with pytest.raises(ValueError, match="choose one of adamw, muon"):
        make_optimizer(1e-3, 1, 1.0, optimizer="sgd")
    with pytest.raises(ValueError, match="split_qkv orthogonalises Muon's updates; the adamw optimizer"):
        make_optimizer(1e-3, 1, 1.0, split_qkv=True)
    # a model without `blocks` (here one Linear) would silently get AdamW everywhere: refused
    linear = eqx.filter(eqx.nn.Linear(4, 4, key=jax.random.PRNGKey(0)), eqx.is_array)
    with pytest.raises(ValueError, match="Muon found no weight matrix inside `blocks`"):
        make_optimizer(1e-3, 1, 1.0, optimizer="muon").init(linear)
