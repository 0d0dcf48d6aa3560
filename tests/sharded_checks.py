"""Multi-device checks, run by tests/test_sharding.py in fresh processes with simulated CPU devices.

    XLA_FLAGS=--xla_force_host_platform_device_count=8 python tests/sharded_checks.py CHECK[=ARG] ...

The checks run in the order given, in one process (one start and one import of JAX for all); each
raises (non-zero exit) when it fails and prints `ok CHECK on N devices` when it passes.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import equinox as eqx  # noqa: E402
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from jax.sharding import PartitionSpec as P  # noqa: E402

from eqdd.denoisers import Transformer  # noqa: E402
from eqdd.objectives import OAARDMObjective  # noqa: E402
from eqdd.processes import AbsorbingProcess  # noqa: E402
from eqdd.train import (  # noqa: E402
    Checkpointer,
    TrainState,
    data_mesh,
    fit,
    initialize_distributed,
    make_optimizer,
    make_train_step,
    replicate,
)

D, K, BATCH = 16, 5, 16


def setup(attention_backend="xla"):
    model = Transformer(
        K + 1, K, 16, 1, 2, 32, attention_backend=attention_backend, key=jax.random.PRNGKey(0)
    )
    optimizer = make_optimizer(3e-3, 2, 1.0)
    return TrainState.create(model, optimizer, jax.random.PRNGKey(1), D), optimizer


def batches(seed=0):
    rng = np.random.default_rng(seed)
    while True:
        yield rng.integers(0, K, (BATCH, D)).astype(np.int32)


def arrays(tree):
    return [np.asarray(x) for x in jax.tree.leaves(eqx.filter(tree, eqx.is_array))]


def run_steps(mesh, count, attention_backend="xla"):
    state, optimizer = setup(attention_backend)
    step = make_train_step(OAARDMObjective(AbsorbingProcess(K)), optimizer, 0.9, mesh)
    state = replicate(state, mesh)
    source = batches()
    history = []
    for _ in range(count):
        state, metrics = step(state, next(source))
        history.append({k: float(v) for k, v in metrics.items()})
    return state, history


def check_equivalence():
    assert len(jax.devices()) == 8, jax.devices()
    single, single_metrics = run_steps(data_mesh(jax.devices()[:1]), 3)
    # The same training on 8 devices, with the default attention and with the Pallas kernel.
    for backend in ("xla", "pallas"):
        sharded, sharded_metrics = run_steps(data_mesh(), 3, backend)
        for a, b in zip(arrays(sharded), arrays(single), strict=True):
            np.testing.assert_allclose(a, b, rtol=2e-5, atol=2e-6)
        for a, b in zip(sharded_metrics, single_metrics, strict=True):
            for name in a:
                np.testing.assert_allclose(a[name], b[name], rtol=1e-5)
    try:  # a batch that does not split over the devices is refused
        make_train_step(OAARDMObjective(AbsorbingProcess(K)), setup()[1], 0.9)(
            replicate(setup()[0], data_mesh()), np.zeros((12, D), np.int32)
        )
    except ValueError as error:
        assert "not a multiple of the 8 devices" in str(error)
    else:
        raise AssertionError("a batch of 12 on 8 devices was accepted")


def check_gradient_trap():
    # The gradient of a replicated parameter under shard_map, in the four ways one might write it.
    # With check_vma=True (the default) a replicated input's gradient is already summed over the axis:
    # pmean(grad(local loss)) is 8 times too large and grad(pmean(local loss)) is exact. With
    # check_vma=False (the training step's setting) pmean(grad(local loss)) is exact and
    # grad(pmean(local loss)) leaves every device with a different, wrong gradient.
    mesh = data_mesh()
    w = jnp.arange(3.0)
    x = jnp.arange(24.0).reshape(8, 3) / 10

    def local_loss(w, x):
        return jnp.mean((x @ w) ** 2)

    def per_device(gradient, check_vma):
        # Every device's own result, stacked, so that disagreement between devices shows.
        return jax.shard_map(
            lambda w, x: gradient(w, x)[None],
            mesh=mesh,
            in_specs=(P(), P("data")),
            out_specs=P("data"),
            check_vma=check_vma,
        )(w, x)

    def mean_of_grads(w, x):
        return jax.lax.pmean(jax.grad(local_loss)(w, x), "data")

    def grad_of_mean(w, x):
        return jax.grad(lambda v: jax.lax.pmean(local_loss(v, x), "data"))(w)

    exact = np.broadcast_to(jax.grad(local_loss)(w, x), (8, 3))
    np.testing.assert_allclose(per_device(mean_of_grads, True), 8 * exact, rtol=1e-6)
    np.testing.assert_allclose(per_device(grad_of_mean, True), exact, rtol=1e-6)
    np.testing.assert_allclose(per_device(mean_of_grads, False), exact, rtol=1e-6)
    wrong = np.asarray(per_device(grad_of_mean, False))
    assert not np.allclose(wrong, exact, rtol=1e-2) and not np.allclose(wrong, wrong[0], rtol=1e-2)


def train_and_save(directory, num_steps, checkpoint_every):
    """Train on every device of every process with the loop, checkpointing; the first process keeps
    the final arrays in expected.npz for check_restore."""
    mesh = data_mesh()
    state, optimizer = setup()
    step = make_train_step(OAARDMObjective(AbsorbingProcess(K)), optimizer, 0.9, mesh)
    checkpointer = Checkpointer(Path(directory) / "ckpt")
    state = fit(
        replicate(state, mesh),
        step,
        batches(),
        num_steps=num_steps,
        checkpointer=checkpointer,
        metadata=lambda: {},
        metrics_path=Path(directory) / "metrics.jsonl",
        log_every=1,
        checkpoint_every=checkpoint_every,
        progress=False,
    )
    checkpointer.close()
    assert int(state.step) == num_steps
    if jax.process_index() == 0:
        np.savez(Path(directory) / "expected.npz", *arrays(state), step=num_steps)
    return state


def check_long_loop(directory):
    # jaxlib 0.10.2 aborts multi-device CPU loops that dispatch many collective steps without
    # synchronising; the training loop reads every step's metrics back, so 200 steps complete.
    train_and_save(directory, 200, 100)


def check_multiprocess(directory):
    # Two processes with two CPU devices each, started the way the README says (JAX_COORDINATOR_ADDRESS,
    # JAX_NUM_PROCESSES, JAX_PROCESS_ID): the 4-device run equals a single-device run of the same global
    # batches, and its checkpoint (written by both processes through orbax) restores elsewhere.
    initialize_distributed()
    assert jax.process_count() == 2 and len(jax.devices()) == 4, jax.devices()
    state = train_and_save(directory, 5, 5)
    single, _ = run_steps(data_mesh(jax.local_devices()[:1]), 5)
    for a, b in zip(arrays(state), arrays(single), strict=True):
        np.testing.assert_allclose(a, b, rtol=2e-5, atol=2e-6)


def check_restore(directory):
    # A checkpoint written by a run on more devices (or processes) restores here and trains on.
    expected = np.load(Path(directory) / "expected.npz")
    template, optimizer = setup()
    checkpointer = Checkpointer(Path(directory) / "ckpt")
    saved_step = int(expected["step"])
    assert checkpointer.latest_step() == saved_step
    state, _ = checkpointer.restore(template)
    checkpointer.close()
    for i, leaf in enumerate(arrays(state)):
        np.testing.assert_array_equal(leaf, expected[f"arr_{i}"])
    mesh = data_mesh()
    state, metrics = make_train_step(OAARDMObjective(AbsorbingProcess(K)), optimizer, 0.9, mesh)(
        replicate(state, mesh), next(batches())
    )
    assert int(state.step) == saved_step + 1 and np.isfinite(float(metrics["loss"]))


CHECKS = {
    "equivalence": check_equivalence,
    "gradient_trap": check_gradient_trap,
    "long_loop": check_long_loop,
    "multiprocess": check_multiprocess,
    "restore": check_restore,
}

if __name__ == "__main__":
    for item in sys.argv[1:]:
        name, *argument = item.split("=", 1)
        CHECKS[name](*argument)
        print(f"ok {name} on {len(jax.devices())} devices", flush=True)
