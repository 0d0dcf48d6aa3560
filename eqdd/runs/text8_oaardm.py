"""A run of the OA-ARDM on text8 (`experiments/text8_oaardm.py`): its options, presets, model and
objective, and how to load one back (for the experiment, the benchmarks and `eqdd compress`)."""

import dataclasses
from pathlib import Path

import equinox as eqx
import jax

from eqdd.config import non_negative, option
from eqdd.data import text8
from eqdd.objectives import OAARDMObjective
from eqdd.runs import text8 as text8_runs
from eqdd.train import TrainState, session


@dataclasses.dataclass(frozen=True)
class Config(text8_runs.Text8Config):
    run_dir: str = option("runs/text8_oaardm", "output directory; a run already there is resumed")
    time_conditioning: bool = option(False, "feed the step t to the network (the paper's text8 net does not)")
    ce_weight: float = option(1e-4, "weight of the auxiliary un-reweighted cross-entropy", non_negative)
    codec_orders: int = option(
        5, "orders scored on 16 training chunks for `eqdd compress`, the best kept (0: none)", non_negative
    )

    RESUMABLE = text8_runs.Text8Config.RESUMABLE | {"codec_orders"}


PRESETS = {"cpu": {}, "paper": text8_runs.PAPER}


def build(config: Config, key: jax.Array) -> tuple[eqx.Module, OAARDMObjective]:
    """The model and objective a config describes (the optimiser is `config.optimizer()`)."""
    model = text8_runs.transformer(
        config, text8.NUM_CLASSES + 1, text8.NUM_CLASSES, config.time_conditioning, key
    )
    return model, OAARDMObjective(text8.ABSORBING, config.ce_weight)


def load_run(run_dir: str | Path) -> tuple[Config, TrainState, OAARDMObjective]:
    """The config, newest state and objective of a run of this experiment (for benchmarks and tools).

    Raises:
        FileNotFoundError: when `run_dir` holds no checkpoint.
    """
    config = session.saved_config(run_dir, Config)
    model, objective = build(config, jax.random.PRNGKey(0))
    return config, session.restore_state(config, model, config.seq_len), objective
