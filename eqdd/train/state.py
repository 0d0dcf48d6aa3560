"""The training state as one Module, the optimiser, and the running per-step losses `L_t`."""

import equinox as eqx
import jax
import jax.numpy as jnp
import optax
from jaxtyping import Array, Bool, Float, Int, PRNGKeyArray

from eqdd._typing import typecheck


class StepLosses(eqx.Module):
    """An exponential moving average of the per-step losses `L_t` (reference §4.3).

    The first observation of a step initialises its average; `seen` marks the steps observed so far.
    """

    values: Float[Array, " T"]
    seen: Bool[Array, " T"]

    @classmethod
    def empty(cls, num_steps: int) -> "StepLosses":
        return cls(jnp.zeros(num_steps, jnp.float32), jnp.zeros(num_steps, bool))

    @typecheck
    def update(
        self,
        t: Int[Array, " B"],
        losses: Float[Array, " B"],
        momentum: float = 0.95,
        axis_name: str | None = None,
    ) -> "StepLosses":
        """Fold one batch in: the batch mean at each observed step enters that step's average.

        Arguments:
            t: the step of each example.
            losses: the `L_t` estimate of each example.
            momentum: the weight of the old average.
            axis_name: inside `shard_map`, the mesh axis the batch is split over; the batch means
                are then taken over the whole global batch.

        Returns:
            The updated averages.
        """
        sums = jnp.zeros_like(self.values).at[t].add(losses)
        counts = jnp.zeros_like(self.values).at[t].add(1.0)
        if axis_name is not None:
            sums, counts = jax.lax.psum((sums, counts), axis_name)
        present = counts > 0
        batch_mean = sums / jnp.maximum(counts, 1.0)
        blended = jnp.where(self.seen, momentum * self.values + (1 - momentum) * batch_mean, batch_mean)
        return StepLosses(jnp.where(present, blended, self.values), self.seen | present)


class TrainState(eqx.Module):
    """Everything a run needs to continue exactly: parameters, EMA, optimiser, step, PRNG key, `L_t`."""

    model: eqx.Module
    ema_model: eqx.Module
    opt_state: optax.OptState
    step: Int[Array, ""]
    key: PRNGKeyArray
    step_losses: StepLosses

    @classmethod
    def create(
        cls, model: eqx.Module, optimizer: optax.GradientTransformation, key: PRNGKeyArray, num_steps: int
    ) -> "TrainState":
        """A fresh state at step 0; `num_steps` is the number of diffusion steps tracked in `L_t`."""
        return cls(
            model=model,
            ema_model=model,
            opt_state=optimizer.init(eqx.filter(model, eqx.is_array)),
            step=jnp.zeros((), jnp.int32),
            key=key,
            step_losses=StepLosses.empty(num_steps),
        )


SCHEDULES: tuple[str, ...] = ("constant", "cosine", "linear")


def learning_rate_schedule(
    learning_rate: float,
    warmup_steps: int,
    schedule: str = "constant",
    total_steps: int = 0,
    floor: float = 0.0,
) -> optax.Schedule:
    """A linear warm-up from 0 to `learning_rate`, then constant or decaying to `floor · learning_rate`.

    Arguments:
        learning_rate: the peak learning rate.
        warmup_steps: the length of the linear warm-up.
        schedule: one of `SCHEDULES`: `"constant"` stays at the peak; `"cosine"` and `"linear"` decay
            from the peak at the end of the warm-up to the floor at `total_steps` (at least one step
            after the warm-up), and stay there.
        total_steps: the step at which a decay ends (ignored by `"constant"`).
        floor: the final rate as a fraction of the peak.

    Raises:
        ValueError: for an unknown schedule.
    """
    warmup_steps = max(warmup_steps, 1)
    if schedule == "constant":
        return optax.schedules.warmup_constant_schedule(0.0, learning_rate, warmup_steps)
    if schedule not in SCHEDULES:
        raise ValueError(f"unknown learning-rate schedule {schedule!r}; choose one of {', '.join(SCHEDULES)}")
    warmup = optax.schedules.linear_schedule(0.0, learning_rate, warmup_steps)
    decay_steps = max(total_steps - warmup_steps, 1)
    if schedule == "cosine":
        decay = optax.schedules.cosine_decay_schedule(learning_rate, decay_steps, alpha=floor)
    else:
        decay = optax.schedules.linear_schedule(learning_rate, floor * learning_rate, decay_steps)
    return optax.schedules.join_schedules([warmup, decay], [warmup_steps])


OPTIMIZERS: tuple[str, ...] = ("adamw", "muon")

# Equinox's `Linear.weight` is `(out, in)`: `y = W x` reduces over axis 1.
_LINEAR_WEIGHT = optax.contrib.MuonDimensionNumbers(reduction_axis=1, output_axis=0)
# ... and a stack of them along axis 0 (see `split_qkv` in `make_optimizer`).
_STACKED_LINEAR_WEIGHTS = optax.contrib.MuonDimensionNumbers(reduction_axis=2, output_axis=1)


def _path_names(path) -> list[str | None]:
    """The attribute names along a pytree path (`None` for sequence indices)."""
    return [getattr(entry, "name", None) for entry in path]


def _block_path(path) -> list[str | None] | None:
    """The attribute names along a pytree path that passes through `blocks` (as in
    [`eqdd.denoisers.Transformer`][]), else `None`."""
    names = _path_names(path)
    return names if "blocks" in names else None


def hidden_matrices(params) -> object:
    """Muon's dimension numbers for `params`: the weight of every `Linear` inside a block (the key
    `blocks` on its path, as in [`eqdd.denoisers.Transformer`][]; a 3-D weight is a stack of matrices
    along its first axis), and `None` for every other array
    (embeddings, the output head, biases, norms, convolution kernels), which AdamW updates instead.

    Raises:
        ValueError: when `params` has no such matrix (Muon would silently be AdamW).
    """

    def label(path, leaf):
        names = _block_path(path)
        if names is None or names[-1] != "weight" or leaf.ndim not in (2, 3):
            return None
        return _LINEAR_WEIGHT if leaf.ndim == 2 else _STACKED_LINEAR_WEIGHTS

    labels = jax.tree_util.tree_map_with_path(label, params)
    if not jax.tree.leaves(labels, is_leaf=lambda x: isinstance(x, optax.contrib.MuonDimensionNumbers)):
        raise ValueError("Muon found no weight matrix inside `blocks` in this model; use AdamW")
    return labels


def _is_qkv(path) -> bool:
    names = _block_path(path)
    return names is not None and names[-2:] == ["qkv", "weight"]


def _split_qkv(tree):
    """Each block's fused `qkv` weight `(3E, E)` as three stacked `(E, E)` matrices (rows are q, k, v)."""
    return jax.tree_util.tree_map_with_path(
        lambda path, x: x.reshape(3, x.shape[0] // 3, x.shape[1]) if _is_qkv(path) else x, tree
    )


def _join_qkv(tree):
    return jax.tree_util.tree_map_with_path(
        lambda path, x: x.reshape(3 * x.shape[1], x.shape[2]) if _is_qkv(path) else x, tree
    )


def _with_qkv_split(inner: optax.GradientTransformation) -> optax.GradientTransformation:
    """`inner` run on [`_split_qkv`][]'s view of the parameters, so that Muon orthogonalises the query,
    key and value matrices each on its own (a batch of three) instead of their stack."""

    def update(updates, state, params=None):
        params = None if params is None else _split_qkv(params)
        updates, state = inner.update(_split_qkv(updates), state, params)
        return _join_qkv(updates), state

    return optax.GradientTransformation(lambda params: inner.init(_split_qkv(params)), update)


def scale_embedding_updates(factor: float) -> optax.GradientTransformation:
    """Multiply the token embedding's updates by `factor` (the array named `token_embedding` on its
    path, as in [`eqdd.denoisers.Transformer`][]), leaving every other update as it is: after AdamW,
    the embedding's own peak rate, `factor` times the shared one (its decoupled weight decay too).

    Raises:
        ValueError: (at `init`) when the parameters have no token embedding and `factor` is not 1.
    """

    def is_embedding(path) -> bool:
        return "token_embedding" in _path_names(path)

    def init(params):
        found = any(is_embedding(path) for path, _ in jax.tree_util.tree_leaves_with_path(params))
        if factor != 1 and not found:
            raise ValueError("the embedding's rate factor needs a model with a `token_embedding`; leave it 1")
        return optax.EmptyState()

    def update(updates, state, params=None):
        scaled = jax.tree_util.tree_map_with_path(
            lambda path, u: u * factor if is_embedding(path) else u, updates
        )
        return scaled, state

    return optax.GradientTransformation(init, update)


def make_optimizer(
    learning_rate: float,
    warmup_steps: int,
    clip_norm: float,
    b1: float = 0.9,
    b2: float = 0.99,
    weight_decay: float = 0.0,
    schedule: str = "constant",
    total_steps: int = 0,
    floor: float = 0.0,
    optimizer: str = "adamw",
    muon_learning_rate: float = 0.02,
    split_qkv: bool = False,
    embedding_factor: float = 1.0,
) -> optax.GradientTransformation:
    """Global-norm clipping, then AdamW or Muon, on the learning rate of [`learning_rate_schedule`][].

    Arguments:
        learning_rate: the peak learning rate (of AdamW's parameters).
        warmup_steps: the length of the linear warm-up from 0.
        clip_norm: the global gradient norm above which gradients are rescaled.
        b1, b2: Adam's moment decays.
        weight_decay: decoupled weight decay (multiplied by the learning rate).
        schedule, total_steps, floor: the shape after the warm-up (see [`learning_rate_schedule`][]).
        optimizer: one of `OPTIMIZERS`. `"muon"` (Jordan et al., 2024) orthogonalises the momentum of
            the blocks' weight matrices by Newton-Schulz iterations and steps them at
            `muon_learning_rate` ([`hidden_matrices`][]); every other array gets AdamW at
            `learning_rate`. Both follow the same schedule shape.
        muon_learning_rate: the peak learning rate of Muon's matrices.
        split_qkv: with Muon, orthogonalise each block's query, key and value matrices separately
            (the fused projection's three row blocks) rather than as one `(3E, E)` matrix.
        embedding_factor: the token embedding's peak rate as a multiple of `learning_rate`
            ([`scale_embedding_updates`][]); 1 leaves the optimiser as it was.

    Raises:
        ValueError: for an unknown optimizer.
    """
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {optimizer!r}; choose one of {', '.join(OPTIMIZERS)}")
    if split_qkv and optimizer != "muon":
        raise ValueError(f"split_qkv orthogonalises Muon's updates; the {optimizer} optimizer has none")
    rate = learning_rate_schedule(learning_rate, warmup_steps, schedule, total_steps, floor)
    if optimizer == "adamw":
        update = optax.adamw(rate, b1=b1, b2=b2, eps=1e-8, weight_decay=weight_decay)
    else:
        update = optax.contrib.muon(
            learning_rate_schedule(muon_learning_rate, warmup_steps, schedule, total_steps, floor),
            weight_decay=weight_decay,
            adam_b1=b1,
            adam_b2=b2,
            adam_weight_decay=weight_decay,
            adam_learning_rate=rate,
            muon_weight_dimension_numbers=hidden_matrices,
        )
        if split_qkv:
            update = _with_qkv_split(update)
    if embedding_factor != 1:
        update = optax.chain(update, scale_embedding_updates(embedding_factor))
    return optax.chain(optax.clip_by_global_norm(clip_norm), update)


def ema_decay_at(step: Int[Array, ""], decay: float) -> Float[Array, ""]:
    """The EMA decay at a step, ramped up as `(1 + step) / (10 + step)` so short runs are not stale."""
    step = step.astype(jnp.float32)
    return jnp.minimum(decay, (1.0 + step) / (10.0 + step))


def update_ema(ema_model, model, decay: Float[Array, ""]):
    """`decay · ema + (1 - decay) · model`, on the array leaves."""
    ema_arrays, static = eqx.partition(ema_model, eqx.is_array)
    new = jax.tree.map(lambda e, p: decay * e + (1 - decay) * p, ema_arrays, eqx.filter(model, eqx.is_array))
    return eqx.combine(new, static)
