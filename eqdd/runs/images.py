"""A run of an ARDM on images (`experiments/cifar10_ardm.py`): its options, presets, model and objective,
its DP policies, and how to restore one ([`eqdd.load_run`][] is the way in)."""

import dataclasses
import functools
from typing import Any

import jax
import numpy as np

from eqdd.config import non_negative, option, positive, positive_list
from eqdd.data import images, tfds_source
from eqdd.denoisers.unet import UNet
from eqdd.objectives import OAARDMObjective, UpscaleObjective
from eqdd.processes import AbsorbingProcess, UpscaleTransitions, upscale
from eqdd.runs import session

# A run's image shape is not saved with it: the datasets' fixed sizes, else read from its folder.
DATASET_SHAPES = {"fashion_mnist": (28, 28, 1), "cifar10": (32, 32, 3), **tfds_source.SHAPES}


@dataclasses.dataclass(frozen=True)
class Config(session.ConvolutionalARDMConfig):
    NETWORK = "U-Net"
    EXPERIMENT = "cifar10_ardm"
    KIND = "images"

    run_dir: str = option("runs/cifar10_ardm", "output directory; a run already there is resumed")
    dataset: str = option("fashion_mnist", "image set", choices=images.DATASETS)
    data_dir: str | None = option(
        None, "directory with the dataset's files; else $EQDD_DATA_DIR, system folders, the cache"
    )
    model: str = option("oa", "oa: order-agnostic ARDM; upscale: Upscale ARDM", choices=("oa", "upscale"))
    branch_factor: int = option(4, "upscale: digits in base b, S = ceil(log_b 256) stages", positive)
    upscale_variant: str = option(
        "zero",
        "upscale: coarse values as data values (zero) or as new classes (augmented)",
        choices=upscale.VARIANTS,
    )
    parametrization: str = option(
        "data",
        "upscale: K logits pushed to each stage (data) or b logits per digit (direct)",
        choices=upscale.PARAMETRIZATIONS,
    )
    width: int = option(32, "U-Net channels (a multiple of 4)", positive)
    num_res_blocks: int = option(1, "U-Net ResBlocks on the way down (one more on the way up)", positive)
    augment: bool = option(False, "random flips and 90-degree rotations (the paper's best model)")
    batch_size: int = option(16, "training images per step", positive)
    num_steps: int = option(1500, "optimiser steps in total (resuming continues up to this)", positive)
    learning_rate: float = option(2e-3, "peak learning rate after warm-up", positive)
    ce_weight: float = option(1e-3, "weight of the auxiliary un-reweighted cross-entropy", non_negative)
    eval_max_chunks: int = option(500, "evaluate on the first N test images only (0: all)", non_negative)
    budgets: str = option("25,100", session.BUDGETS_HELP, positive_list)
    num_samples: int = option(16, "images to sample (a square grid)", non_negative)
    sample_budget: int = option(100, session.SAMPLE_BUDGET_HELP, non_negative)

    codec_orders: int = option(
        5, "orders scored on 4 training images for `eqdd compress`, the best kept (0: none)", non_negative
    )


PRESETS = {
    "cpu": {},
    # The paper's CIFAR-10 model and optimiser (§7.2): 32 ResBlocks of 256 channels, Adam 1e-4 without
    # warm-up, clipping at 100, EMA 0.9999, batch 128, 3000 epochs, flips and rotations.
    "paper": dict(
        dataset="cifar10",
        width=256,
        num_res_blocks=32,
        batch_size=128,
        num_steps=1_200_000,
        learning_rate=1e-4,
        warmup_steps=0,
        clip_norm=100.0,
        adam_b2=0.999,
        weight_decay=0.0,
        ema_decay=0.9999,
        augment=True,
        log_every=100,
        checkpoint_every=5000,
        eval_passes=4,
        eval_max_chunks=0,
        budgets="50,100",
        num_samples=64,
    ),
}


def transitions(config: Config) -> UpscaleTransitions:
    """The Upscale ARDM's maps and output parametrisation a config describes."""
    return UpscaleTransitions(
        images.NUM_CLASSES, config.branch_factor, config.upscale_variant, config.parametrization
    )


def build(config: Config, image_shape: tuple[int, int, int], key: jax.Array):
    """The U-Net and objective a config describes, and the number of steps `t` (D, or S·D)."""
    num_variables = int(np.prod(image_shape))
    if config.model == "oa":
        objective = OAARDMObjective(AbsorbingProcess(images.NUM_CLASSES), config.ce_weight)
        inputs, outputs, stages, num_steps = images.NUM_CLASSES + 1, images.NUM_CLASSES, 1, num_variables
    else:
        objective = UpscaleObjective(transitions(config), config.ce_weight)
        process = objective.transitions
        inputs, outputs = process.num_input_classes, process.num_outputs
        stages, num_steps = process.num_stages, objective.num_steps(num_variables)
    model = UNet(
        image_shape,
        inputs,
        outputs,
        config.width,
        config.num_res_blocks,
        num_steps,
        stages,
        config.attention,
        key=key,
    )
    return model, objective, num_steps


def data_shape(config: Config) -> tuple[int, int, int]:
    """`(H, W, C)` of a run: its dataset's fixed size, or for an image folder the size of the folder's
    images (read once; the run must name the folder, or `$EQDD_DATA_DIR` must hold it).

    Raises:
        ImageDataError: when the image folder cannot be read.
    """
    if config.dataset in DATASET_SHAPES:
        return DATASET_SHAPES[config.dataset]
    return _image_folder_shape(config.data_dir)


@functools.cache
def _image_folder_shape(data_dir: str | None) -> tuple[int, int, int]:
    return images.load_image_folder(data_dir).image_shape


def template(
    config: Config, rebuild: dict[str, Any], shape: tuple[int, int, int]
) -> tuple[UNet, OAARDMObjective | UpscaleObjective]:
    """A model (its arrays to be restored) and the objective of a run of images of `shape` (for
    [`eqdd.load_run`][])."""
    model, objective, _ = build(config, shape, jax.random.PRNGKey(0))
    return model, objective
