"""Training: the state, the step, checkpoints, the loop, evaluation and metrics."""

from eqdd.train.checkpoint import Checkpointer
from eqdd.train.evaluate import BoundReport, evaluate_bound, paired_difference
from eqdd.train.loop import fit
from eqdd.train.state import StepLosses, TrainState, make_optimizer
from eqdd.train.step import data_mesh, initialize_distributed, make_train_step, replicate

__all__ = [
    "BoundReport",
    "Checkpointer",
    "StepLosses",
    "TrainState",
    "data_mesh",
    "evaluate_bound",
    "fit",
    "initialize_distributed",
    "make_optimizer",
    "make_train_step",
    "paired_difference",
    "replicate",
]
