"""The library without the experiment harness: an order-agnostic ARDM on a few sentences, trained for a
few steps, then a budget of network calls planned on its step losses and used to sample.

    python examples/oa_ardm.py                 # a few seconds on a CPU

The pieces: a denoiser (`eqdd.denoisers.Transformer`), the forward process
(`eqdd.processes.AbsorbingProcess`), an objective (`eqdd.objectives.OAARDMObjective`, per example
`(loss, terms)`; `terms.nelbo` is the bound in bits per character), the training step (`eqdd.train`),
the policy planner (`eqdd.policy`) and the sampler (`eqdd.samplers.sample_oa_ardm`).
"""

import jax
import jax.numpy as jnp
import numpy as np

from eqdd import policy
from eqdd.data import text8
from eqdd.denoisers import Transformer
from eqdd.objectives import OAARDMObjective
from eqdd.processes import AbsorbingProcess
from eqdd.samplers import sample_oa_ardm
from eqdd.train import TrainState, make_optimizer, make_train_step

TEXT = "the cat sat on the mat and the dog sat on the log while the bird sang in the tree "


def main(num_steps: int = 30, length: int = 32, budget: int = 8) -> dict:
    """Train, plan and sample; returns what it printed."""
    model = Transformer(
        num_input_classes=text8.NUM_CLASSES + 1,  # the 27 characters and the absorbing token
        num_classes=text8.NUM_CLASSES,
        width=32,
        depth=1,
        num_heads=2,
        mlp_width=64,
        conv_width=7,
        activation="relu2",
        key=jax.random.PRNGKey(0),
    )
    process = AbsorbingProcess(absorbing_token=text8.ABSORBING)  # the mask token, after the 27 characters
    objective = OAARDMObjective(process, ce_weight=1.0)
    tokens = text8.encode(TEXT * 4)
    x = jnp.asarray(tokens[:length], jnp.int32)
    loss, terms = objective(model, x, jax.random.PRNGKey(1))  # one example: a random step t and order
    print(f"one example: t = {int(terms.t)}, bound {float(terms.nelbo):.2f} bits per character")

    optimizer = make_optimizer(learning_rate=3e-3, warmup_steps=5, clip_norm=1.0)
    state = TrainState.create(model, optimizer, jax.random.PRNGKey(2), num_steps=length)  # L_t of D steps
    step = make_train_step(objective, optimizer, ema_decay=0.9)
    starts = np.random.default_rng(0).integers(0, len(tokens) - length, (num_steps, 8))
    for i in range(num_steps):
        state, metrics = step(state, np.stack([tokens[s : s + length] for s in starts[i]]).astype(np.int32))
    print(f"after {num_steps} steps: training bound {float(metrics['nelbo']):.2f} bits per character")

    # Parallel generation: plan `budget` network calls on the step losses L_t the training tracked.
    tracked = state.step_losses
    losses = policy.monotone_step_losses(
        policy.fill_unseen(np.asarray(tracked.values), np.asarray(tracked.seen))
    )
    boundaries, bits = policy.optimal_policy(losses, budget)
    samples = sample_oa_ardm(
        state.ema_model, process, jax.random.PRNGKey(3), 2, length, policy=jnp.asarray(boundaries)
    )
    texts = [text8.decode(np.asarray(s)) for s in samples]
    print(f"{budget} calls at steps {boundaries.tolist()} (planned bound {bits:.2f} bits/char):")
    for text in texts:
        print(f"  {text!r}")
    return {"bound": float(metrics["nelbo"]), "policy": boundaries, "samples": texts}


if __name__ == "__main__":
    main()
