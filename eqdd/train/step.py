"""The jitted training step: loss and gradient, clipping + AdamW, EMA and the `L_t` tracker."""

import equinox as eqx
import jax
import jax.numpy as jnp
import optax

from eqdd.train.state import TrainState, ema_decay_at, update_ema


def make_train_step(objective, optimizer: optax.GradientTransformation, ema_decay: float):
    """Build `train_step(state, batch) -> (state, metrics)`.

    Arguments:
        objective: called per example as `objective(model, x, key) -> (loss, terms)`, where `terms`
            has per-example fields `t`, `step_loss`, `nelbo` and `nce`.
        optimizer: the optax transformation.
        ema_decay: the EMA decay of the evaluation parameters.

    Returns:
        The jitted step. Its metrics are scalar means over the batch: `loss`, `nelbo` (bits per
        dimension), `nce`, and the global norm of the gradient before clipping, `grad_norm`.
    """

    @eqx.filter_jit
    def train_step(state: TrainState, batch: jax.Array):
        key, step_key = jax.random.split(state.key)
        example_keys = jax.random.split(step_key, batch.shape[0])

        def batch_loss(model):
            losses, terms = eqx.filter_vmap(objective, in_axes=(None, 0, 0))(model, batch, example_keys)
            return jnp.mean(losses), terms

        (loss, terms), grads = eqx.filter_value_and_grad(batch_loss, has_aux=True)(state.model)
        params = eqx.filter(state.model, eqx.is_array)
        updates, opt_state = optimizer.update(grads, state.opt_state, params)
        model = eqx.apply_updates(state.model, updates)
        new_state = TrainState(
            model=model,
            ema_model=update_ema(state.ema_model, model, ema_decay_at(state.step, ema_decay)),
            opt_state=opt_state,
            step=state.step + 1,
            key=key,
            step_losses=state.step_losses.update(terms.t, terms.step_loss),
        )
        metrics = {
            "loss": loss,
            "nelbo": jnp.mean(terms.nelbo),
            "nce": jnp.mean(terms.nce),
            "grad_norm": optax.tree.norm(grads),
        }
        return new_state, metrics

    return train_step
