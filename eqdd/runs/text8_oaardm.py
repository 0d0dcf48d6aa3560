"""A run of the OA-ARDM on text8 (`experiments/text8_oaardm.py`): its options, presets, model and
objective, and how to restore one ([`eqdd.load_run`][] is the way in)."""

import dataclasses
from typing import Any

import equinox as eqx
import jax

from eqdd.config import fraction, non_negative, option, positive
from eqdd.data import text8
from eqdd.denoisers.transformer import ACTIVATIONS
from eqdd.objectives import STEP_SAMPLINGS, OAARDMObjective
from eqdd.processes import AbsorbingProcess
from eqdd.runs import session
from eqdd.runs import text8 as text8_runs
from eqdd.train.state import OPTIMIZERS, SCHEDULES


@dataclasses.dataclass(frozen=True)
class Config(text8_runs.Text8Config):
    run_dir: str = option("runs/text8_oaardm", "output directory; a run already there is resumed")
    # The defaults that differ from the GGM's (measured on the OA-ARDM only: benchmarks/RESULTS.md).
    chars_per_token: int = option(
        2,
        "characters per model token: 2 (pairs: 729 classes, half the positions), or 1 (the paper's)",
        choices=(1, 2),
    )
    activation: str = option("relu2", text8_runs.ACTIVATION_HELP, choices=tuple(ACTIVATIONS))
    mlp_conv: bool = option(True, text8_runs.MLP_CONV_HELP)
    optimizer: str = option("muon", session.OPTIMIZER_HELP, choices=OPTIMIZERS)
    batch_size: int = option(8, "training sequences per step", positive)
    width: int = option(160, "transformer width", positive)
    num_heads: int = option(2, "attention heads", positive)
    mlp_width: int = option(640, "hidden width of each MLP", positive)
    time_conditioning: bool = option(False, "feed the step t to the network (the paper's text8 net does not)")
    num_steps: int = option(6000, "optimiser steps in total (resuming continues up to this)", positive)
    learning_rate: float = option(
        1.2e-2, "peak learning rate after warm-up (with muon: of the arrays AdamW updates)", positive
    )
    ema_decay: float = option(0.998, "EMA decay of the evaluation parameters", fraction)
    adam_b2: float = option(0.95, "Adam second-moment decay", fraction)
    weight_decay: float = option(0.03, session.WEIGHT_DECAY_HELP, non_negative)
    lr_floor: float = option(0.3, "final learning rate of a decay, as a fraction of the peak", fraction)
    lr_schedule: str = option("cosine", session.LR_SCHEDULE_HELP, choices=SCHEDULES)
    ce_weight: float = option(1.0, "training weight of the un-reweighted masked cross-entropy", non_negative)
    elbo_weight: float = option(
        0.0,
        "training weight of the ELBO (the reported bound is the exact ELBO whatever the weights)",
        non_negative,
    )
    ce_mask_power: float = option(
        0.0,
        "the masked cross-entropy's weight per token times (fraction of positions masked)^P: 0 weighs "
        "every masked token alike, above 0 favours heavily masked sequences",
        non_negative,
    )
    step_sampling: str = option(
        "uniform",
        "training steps t drawn uniformly, or masked: in proportion to the positions t scores, the loss "
        "reweighted so its mean is unchanged",
        choices=STEP_SAMPLINGS,
    )
    codec_orders: int = option(
        5, "orders scored on 16 training chunks for `eqdd compress`, the best kept (0: none)", non_negative
    )

    EXPERIMENT = "text8_oaardm"
    RESUMABLE = text8_runs.Text8Config.RESUMABLE | {"codec_orders"}
    FINGERPRINT_NEUTRAL = text8_runs.Text8Config.FINGERPRINT_NEUTRAL | {"step_sampling", "ce_mask_power"}
    LEGACY = text8_runs.Text8Config.LEGACY | {
        "elbo_weight": 1.0,
        "step_sampling": "uniform",
        "ce_mask_power": 0.0,
    }

    def cross_checks(self) -> list[str]:
        problems = super().cross_checks()
        if self.ce_weight == 0 and self.elbo_weight == 0:
            problems.append("--elbo-weight and --ce-weight are both 0: nothing to train on")
        return problems


PRESETS = {
    "cpu": {},
    # A longer CPU run: the default's recipe (pairs of characters included) on a wider and deeper
    # network (3x192, 1.6M parameters), batches of 16 chunks, 25,000 steps with the blocks' products in
    # bfloat16 and the rates decayed linearly to zero (round 26: the default's floor left the model
    # unsettled), 1 h 47 min on 2 cores with bfloat16 units (measured: benchmarks/RESULTS.md).
    "cpu-long": dict(
        matmuls="bfloat16",
        lr_schedule="linear",
        lr_floor=0.0,
        batch_size=16,
        width=192,
        depth=3,
        num_heads=3,
        mlp_width=768,
        warmup_steps=200,
        num_steps=25000,
        log_every=50,
        checkpoint_every=500,
    ),
    "paper": {
        **text8_runs.PAPER,
        "ce_weight": 1e-4,
        "elbo_weight": 1.0,
        "adam_b2": 0.99,
        "weight_decay": 1e-3,
    },
}


def build(config: Config, key: jax.Array) -> tuple[eqx.Module, OAARDMObjective]:
    """The model and objective a config describes (the optimiser is `config.make_optimizer()`)."""
    classes = text8.num_classes(config.chars_per_token)
    model = text8_runs.transformer(config, classes + 1, classes, config.time_conditioning, key)
    objective = OAARDMObjective(
        AbsorbingProcess(classes),
        config.ce_weight,
        config.elbo_weight,
        config.step_sampling,
        config.ce_mask_power,
    )
    return model, objective


def data_shape(config: Config) -> tuple[int]:
    """`(D,)`: the shape of one example, in model tokens."""
    return (config.num_positions,)


def template(
    config: Config, rebuild: dict[str, Any], shape: tuple[int]
) -> tuple[eqx.Module, OAARDMObjective]:
    """A model (its arrays to be restored) and the objective of a run (for [`eqdd.load_run`][])."""
    return build(config, jax.random.PRNGKey(0))
