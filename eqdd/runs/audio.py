"""A run of an ARDM on spoken digits (`experiments/sc09_ardm.py`): its options, presets, model and
objective, and how to restore one ([`eqdd.load_run`][] is the way in).

Every sample of a clip is a variable with `K = 2^16` classes. The Upscale ARDM reveals each sample's
base-`b` digits most significant first with the direct parametrisation (`S·b` logits per sample; a
`K`-way softmax per sample would not fit), the OA-ARDM predicts a discretised logistic mixture (the
paper's baseline, reference §7.3); both use the non-causal WaveNet.
"""

import dataclasses
from typing import Any

import jax

from eqdd.config import non_negative, option, positive, positive_list
from eqdd.data import audio
from eqdd.denoisers.wavenet import WaveNet
from eqdd.objectives import OAARDMObjective, UpscaleObjective
from eqdd.processes import AbsorbingProcess, UpscaleTransitions
from eqdd.runs import session


@dataclasses.dataclass(frozen=True)
class Config(session.ConvolutionalARDMConfig):
    NETWORK = "WaveNet"
    EXPERIMENT = "sc09_ardm"
    KIND = "audio"

    run_dir: str = option("runs/sc09_ardm", "output directory; a run already there is resumed")
    dataset: str = option(
        "fsdd",
        "fsdd: spoken digits at 8 kHz (not SC09); sc09: Speech Commands' digits",
        choices=audio.DATASETS,
    )
    data_dir: str | None = option(
        None, "directory or archive with the recordings; else $EQDD_DATA_DIR, system folders, the cache"
    )
    clip_length: int = option(2048, "samples per clip D (clips are padded with silence or cut)", positive)
    model: str = option(
        "upscale",
        "upscale: Upscale ARDM; oa: order-agnostic ARDM with a logistic mixture",
        choices=("oa", "upscale"),
    )
    branch_factor: int = option(4, "upscale: digits in base b, S = ceil(16 / log2 b) stages", positive)
    mixture_components: int = option(10, "oa: discretised logistics in the output mixture", positive)
    width: int = option(64, "WaveNet channels (a multiple of 4)", positive)
    depth: int = option(10, "WaveNet residual blocks", positive)
    dilation_cycle: int = option(10, "dilations 1, 2, ..., 2^(cycle-1), repeated", positive)
    batch_size: int = option(8, "training clips per step", positive)
    num_steps: int = option(900, "optimiser steps in total (resuming continues up to this)", positive)
    learning_rate: float = option(2e-3, "peak learning rate after warm-up", positive)
    ce_weight: float = option(1e-4, "weight of the auxiliary un-reweighted cross-entropy", non_negative)
    eval_max_chunks: int = option(0, "evaluate on the first N test clips only (0: all)", non_negative)
    eval_passes: int = option(4, "passes over the test clips (fresh t and order each)", positive)
    budgets: str = option("10,50", session.BUDGETS_HELP, positive_list)
    num_samples: int = option(4, "clips to sample (written as WAV files)", non_negative)
    sample_budget: int = option(50, session.SAMPLE_BUDGET_HELP, non_negative)
    codec_orders: int = option(
        3, "orders scored on 2 training clips for `eqdd compress`, the best kept (0: none)", non_negative
    )

    @property
    def sample_rate(self) -> int:
        """The rate of the run's clips (its dataset's), at which its WAV files are read and written."""
        return audio.SAMPLE_RATES[self.dataset]


PRESETS = {
    "cpu": {},
    # The default's network trained four times as long, with a cosine decay: about half an hour on 2
    # cores (benchmarks/RESULTS.md), the run the codec is measured against FLAC with.
    "cpu-long": dict(num_steps=3600, lr_schedule="cosine", lr_floor=0.1, checkpoint_every=300),
    # The paper's SC09 model and optimiser (§7.3, App. D): 36 blocks of 256 channels with dilations up to
    # 2048, Adam 1e-4 after 15,000 warm-up steps, clipping at 1000, EMA 0.995, batch 256, on 1-second clips
    # at 16 kHz; the Upscale ARDM with b = 4 (its best, 6.29 bpd) and 30 logistics for the OA-ARDM.
    "paper": dict(
        dataset="sc09",
        clip_length=16000,
        width=256,
        depth=36,
        dilation_cycle=12,
        mixture_components=30,
        batch_size=256,
        num_steps=1_000_000,
        learning_rate=1e-4,
        warmup_steps=15000,
        clip_norm=1000.0,
        adam_b2=0.999,
        weight_decay=0.0,
        ema_decay=0.995,
        log_every=100,
        checkpoint_every=5000,
        eval_passes=32,
        eval_max_chunks=0,
        budgets="50,100,500,1000",
        num_samples=16,
    ),
}


def objective_of(config: Config) -> OAARDMObjective | UpscaleObjective:
    """The objective (and so the process and output parametrisation) a config describes."""
    if config.model == "oa":
        process = AbsorbingProcess(audio.NUM_CLASSES, mixture_components=config.mixture_components)
        return OAARDMObjective(process, config.ce_weight)
    transitions = UpscaleTransitions(audio.NUM_CLASSES, config.branch_factor, parametrization="direct")
    return UpscaleObjective(transitions, config.ce_weight)


def build(config: Config, key: jax.Array) -> tuple[WaveNet, OAARDMObjective | UpscaleObjective]:
    """The WaveNet and objective a config describes."""
    objective = objective_of(config)
    length = config.clip_length
    if isinstance(objective, OAARDMObjective):
        inputs, outputs, stages = audio.NUM_CLASSES + 1, objective.process.num_outputs, 1
    else:
        transitions = objective.transitions
        inputs, outputs, stages = (
            transitions.num_input_classes,
            transitions.num_outputs,
            transitions.num_stages,
        )
    model = WaveNet(
        inputs,
        outputs,
        config.width,
        config.depth,
        config.dilation_cycle,
        objective.num_steps(length),
        stages,
        key=key,
    )
    return model, objective


def data_shape(config: Config) -> tuple[int]:
    """`(D,)`: the samples of one clip."""
    return (config.clip_length,)


def template(config: Config, rebuild: dict[str, Any], shape: tuple[int]):
    """A model (its arrays to be restored) and the objective of a run (for [`eqdd.load_run`][])."""
    return build(config, jax.random.PRNGKey(0))
