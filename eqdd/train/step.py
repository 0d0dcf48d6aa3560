"""The training step, data-parallel over a device mesh with `shard_map`.

The batch (and one PRNG key per example) is split over the mesh axis `"data"`; parameters, optimiser
state, EMA and the `L_t` tracker are replicated. Each device takes the gradient of the mean loss of
its shard, and the gradients are averaged with `pmean`: the exact gradient of the global mean loss.

With several processes (multi-host, after `jax.distributed.initialize()`), every process draws the
same global batch and contributes the rows that belong to its devices ([`global_batch`][]), so the
result does not depend on the number of processes either.

The `shard_map` runs with `check_vma=False`, because Pallas's interpreter (the attention kernel on a
CPU) cannot trace under the default `check_vma=True` (seen with jax 0.10.2). The gradient rule depends on
that setting: under `check_vma=True` a replicated input's gradient is already summed over the axis,
so `pmean(grad(local loss))` would be `N` times too large and `grad(pmean(local loss))` is exact;
under `check_vma=False` it is the other way round (`tests/sharded_checks.py` pins all four cases). The
same code runs on one device, where the mesh has one device.
"""

import dataclasses
import os
from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from eqdd.objectives import AbstractObjective
from eqdd.train.state import TrainState, ema_decay_at, update_ema

DATA_AXIS = "data"


def initialize_distributed() -> None:
    """Start JAX's multi-process runtime; call it on every host before anything touches a device.

    On Slurm, Open MPI, Kubernetes and Cloud TPU, JAX finds the coordinator and each process's rank by
    itself. Elsewhere set, on every host, `JAX_COORDINATOR_ADDRESS=host0:port` (read by JAX) and
    `JAX_NUM_PROCESSES` and `JAX_PROCESS_ID` (read here). CPU collectives between processes go through
    gloo.
    """
    ranks = {
        name: int(os.environ[variable])
        for name, variable in (("num_processes", "JAX_NUM_PROCESSES"), ("process_id", "JAX_PROCESS_ID"))
        if variable in os.environ
    }
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(**ranks)


def data_mesh(devices=None) -> Mesh:
    """A one-axis mesh named `"data"` over `devices` (by default `jax.devices()`: every device of every
    process, each process's devices together)."""
    return Mesh(np.asarray(devices if devices is not None else jax.devices()), (DATA_AXIS,))


def replicate(tree, mesh: Mesh):
    """Place every array of `tree` on every device of `mesh` (e.g. a state just created or restored)."""
    sharding = NamedSharding(mesh, P())
    return jax.tree.map(lambda x: jax.device_put(x, sharding) if eqx.is_array(x) else x, tree)


def global_batch(batch: np.ndarray | jax.Array, mesh: Mesh) -> jax.Array:
    """The global batch as one array split over the mesh's `"data"` axis.

    Every process passes the same global batch; each contributes the rows of its own devices (with one
    process, all of them); the mesh must list each process's devices together, as [`data_mesh`][]
    does.

    Raises:
        ValueError: when the batch does not split evenly over the devices.
    """
    num_devices = mesh.shape[DATA_AXIS]
    if batch.shape[0] % num_devices:
        raise ValueError(
            f"the batch size {batch.shape[0]} is not a multiple of the {num_devices} devices of the mesh"
        )
    sharding = NamedSharding(mesh, P(DATA_AXIS))
    if isinstance(batch, jax.Array) and batch.sharding == sharding:
        return batch
    # This process's devices sit together in the mesh; it provides the rows that land on them.
    mine = [i for i, d in enumerate(mesh.devices.flat) if d.process_index == jax.process_index()]
    rows = batch.shape[0] // num_devices
    local = np.asarray(batch)[mine[0] * rows : (mine[-1] + 1) * rows]
    return jax.make_array_from_process_local_data(sharding, local, batch.shape)


@dataclasses.dataclass(frozen=True)
class TrainStep:
    """`train_step(state, batch) -> (state, metrics)`: the jitted step, fed the global batch."""

    jitted: Callable
    mesh: Mesh

    def __call__(self, state: TrainState, batch: np.ndarray | jax.Array):
        return self.jitted(state, global_batch(batch, self.mesh))

    def lower(self, state: TrainState, batch: np.ndarray | jax.Array):
        """The lowered computation (e.g. `.compile().compiled.memory_analysis()`)."""
        return self.jitted.lower(state, global_batch(batch, self.mesh))


def make_train_step(
    objective: AbstractObjective,
    optimizer: optax.GradientTransformation,
    ema_decay: float,
    mesh: Mesh | None = None,
    stratify_steps: bool = False,
    compute: Callable[[eqx.Module], eqx.Module] | None = None,
) -> TrainStep:
    """Build `train_step(state, batch) -> (state, metrics)`.

    Arguments:
        objective: an [`eqdd.objectives.AbstractObjective`][], called per example as
            `objective(model, x, key) -> (loss, terms)`.
        optimizer: the optax transformation.
        ema_decay: the EMA decay of the evaluation parameters.
        mesh: the device mesh with a `"data"` axis; by default all devices of all processes
            ([`eqdd.train.data_mesh`][]). The batch size must be a multiple of its size.
        stratify_steps: spread the examples' steps evenly over the range of steps: example `i` of a
            batch of `B` gets the quantile `(i + u_i) / B` (`u_i` uniform; see
            [`eqdd.objectives.AbstractObjective`][]). Each step is still uniform, so the gradient's mean
            is unchanged; its variance from the draw of the steps falls. Off: independent draws.
        compute: how the loss computes with the model: a function of the stored model applied inside
            the differentiated loss, e.g. [`eqdd.denoisers.transformer.bfloat16_matmuls`][] for
            bfloat16 matrix products; the gradient flows back through it to the stored (float32)
            parameters, which the optimiser, the EMA and every evaluation use. Default: as stored.

    Returns:
        The step, a [`TrainStep`][]; every process passes it the same global batch. Its metrics are
        scalar means over the global batch: `loss`, `nelbo` (bits per dimension), `surrogate`, and the
        global norm of the gradient before clipping, `grad_norm`. The result does not depend on the
        number of devices or processes (up to floating-point summation order).
    """
    mesh = data_mesh() if mesh is None else mesh

    def local_step(arrays, static, batch, example_keys, quantiles):
        state = eqx.combine(arrays, static)

        def shard_loss(model):
            model = model if compute is None else compute(model)
            losses, terms = eqx.filter_vmap(objective, in_axes=(None, 0, 0, 0 if stratify_steps else None))(
                model, batch, example_keys, quantiles
            )
            return jnp.mean(losses), terms

        (loss, terms), grads = eqx.filter_value_and_grad(shard_loss, has_aux=True)(state.model)
        loss, grads = jax.lax.pmean((loss, grads), DATA_AXIS)
        params = eqx.filter(state.model, eqx.is_array)
        updates, opt_state = optimizer.update(grads, state.opt_state, params)
        model = eqx.apply_updates(state.model, updates)
        new_state = TrainState(
            model=model,
            ema_model=update_ema(state.ema_model, model, ema_decay_at(state.step, ema_decay)),
            opt_state=opt_state,
            step=state.step + 1,
            key=state.key,
            step_losses=state.step_losses.update(
                terms.t.reshape(-1), terms.step_loss.reshape(-1), axis_name=DATA_AXIS
            ),
        )
        metrics = {
            "loss": loss,
            "nelbo": jax.lax.pmean(jnp.mean(terms.nelbo), DATA_AXIS),
            "surrogate": jax.lax.pmean(jnp.mean(terms.surrogate), DATA_AXIS),
            "grad_norm": optax.tree.norm(grads),
        }
        return eqx.filter(new_state, eqx.is_array), metrics

    @eqx.filter_jit
    def train_step(state: TrainState, batch: jax.Array):
        key, step_key = jax.random.split(state.key)
        example_keys = jax.random.split(step_key, batch.shape[0])
        size = batch.shape[0]
        jitter = jax.random.uniform(jax.random.fold_in(step_key, size), (size,))
        quantiles = (jnp.arange(size) + jitter) / size
        arrays, static = eqx.partition(state, eqx.is_array)
        sharded = jax.shard_map(
            lambda a, b, k, q: local_step(a, static, b, k, q if stratify_steps else None),
            mesh=mesh,
            in_specs=(P(), P(DATA_AXIS), P(DATA_AXIS), P(DATA_AXIS)),
            out_specs=(P(), P()),
            check_vma=False,
        )
        new_arrays, metrics = sharded(arrays, batch, example_keys, quantiles)
        new_state = eqx.combine(new_arrays, static)
        return eqx.tree_at(lambda s: s.key, new_state, key), metrics

    return TrainStep(train_step, mesh)
