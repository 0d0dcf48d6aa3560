"""Train, evaluate and sample an OA-ARDM or an Upscale ARDM on images (CIFAR-10, Fashion-MNIST, or an
image folder).

    python experiments/cifar10_ardm.py                                   # CPU default: OA on Fashion-MNIST
    python experiments/cifar10_ardm.py --model upscale --branch-factor 4
    python experiments/cifar10_ardm.py --preset paper                    # the paper's CIFAR-10 model (§7.2)
    python experiments/cifar10_ardm.py --dataset image_folder            # e.g. the lossy CIFAR-10 JPEG copy
    python experiments/cifar10_ardm.py --help                            # every option

Every sub-pixel is a variable (D = H·W·C, 256 classes). Reports test bits per dimension for the full
bound and for DP policies of a few budgets (planned on the L_t tracked in training). Everything goes
to --run-dir: checkpoints (a run there is resumed), metrics.jsonl, training.png, results.json,
samples.png (a grid) and generation.png (the stages of one sample's generation).
"""

import dataclasses
import functools
import time

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from eqdd import policy as policies
from eqdd.config import non_negative, option, parse_config, positive
from eqdd.data import images, pipeline
from eqdd.denoisers.unet import UNet
from eqdd.objectives import OAARDMObjective, UpscaleObjective
from eqdd.processes import UpscaleTransitions, absorbing, upscale
from eqdd.samplers import sample_oa_ardm, sample_upscale_stages
from eqdd.train import TrainState, session


def _budgets(value: str) -> str | None:
    try:
        ok = all(int(b) > 0 for b in value.split(",")) if value else True
    except ValueError:
        ok = False
    return None if ok else f"must be comma-separated positive integers, got {value!r}"


@dataclasses.dataclass(frozen=True)
class Config(session.TrainingConfig):
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
    budgets: str = option("25,100", "network-call budgets (per stage) for DP-policy bounds", _budgets)
    num_samples: int = option(16, "images to sample (a square grid)", non_negative)
    sample_budget: int = option(
        100, "network calls per stage when sampling, with the DP policy (0: one call per step)", non_negative
    )

    RESUMABLE = session.TrainingConfig.RESUMABLE | {"data_dir", "budgets", "sample_budget"}

    def cross_checks(self) -> list[str]:
        problems = super().cross_checks()
        if self.width % 4:
            problems.append(f"--width must be a multiple of 4, got {self.width}")
        if self.branch_factor < 2:
            problems.append(f"--branch-factor must be at least 2, got {self.branch_factor}")
        return problems


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
    return UpscaleTransitions(images.NUM_CLASSES, config.branch_factor, config.upscale_variant)


def build(config: Config, image_shape: tuple[int, int, int], key: jax.Array):
    """The U-Net and objective a config describes, and the number of steps `t` (D, or S·D)."""
    num_variables = int(np.prod(image_shape))
    if config.model == "oa":
        objective = OAARDMObjective(images.NUM_CLASSES, config.ce_weight)
        inputs, outputs, stages, num_steps = images.NUM_CLASSES + 1, images.NUM_CLASSES, 1, num_variables
    else:
        objective = UpscaleObjective(transitions(config), config.parametrization, config.ce_weight)
        process = objective.transitions
        inputs, outputs = process.num_input_classes, process.num_outputs(config.parametrization)
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


def plan_policies(
    config: Config, state: TrainState, num_stages: int, budgets: list[int]
) -> dict[int, np.ndarray]:
    """DP policies for each budget (per stage), planned on the tracked `L_t` sorted per stage as in the
    paper; `(K,)` boundaries for OA models, `(S, K)` for Upscale models."""
    losses = policies.fill_unseen(np.asarray(state.step_losses.values), np.asarray(state.step_losses.seen))
    num_variables = losses.size // num_stages
    budgets = sorted({min(b, num_variables) for b in budgets})
    planned = policies.optimal_stage_policies(losses, num_stages, budgets)
    return {
        budget: boundaries[0] if config.model == "oa" else boundaries
        for budget, (boundaries, _) in zip(budgets, planned, strict=True)
    }


def draw(config: Config, model, objective, key, num_variables: int, policy: np.ndarray | None) -> np.ndarray:
    """`config.num_samples` samples `(N, D)`, or for Upscale models every level `(N, S, D)`, with one
    network call per segment of `policy` (`None`: one per step)."""
    if not config.num_samples:
        return np.zeros((0, num_variables) if config.model == "oa" else (0, 1, num_variables), np.int32)
    policy = None if policy is None else jnp.asarray(policy)
    if config.model == "oa":
        sample = eqx.filter_jit(sample_oa_ardm)
        return np.asarray(sample(model, key, config.num_samples, num_variables, images.NUM_CLASSES, policy))
    levels = eqx.filter_jit(sample_upscale_stages)(
        model, objective.transitions, key, config.num_samples, num_variables, config.parametrization, policy
    )
    return np.asarray(levels)


def generation_picture(
    config: Config,
    objective,
    drawn: np.ndarray,
    shape: tuple[int, int, int],
    key: jax.Array,
    columns: int = 8,
) -> np.ndarray:
    """The stages of one sample's generation as images.

    Upscale: the sample at every level (each coarse value shown as the smallest data value it stands
    for). OA: 8 evenly spaced steps with unrevealed sub-pixels grey; the sampler reveals
    variables in a uniformly random order drawn independently of their values, so masking the finished
    sample with a fresh random order gives states distributed like the sampler's own.
    """
    if config.model == "upscale":
        levels = [
            np.asarray(upscale.data_floor(objective.transitions, jnp.asarray(level), stage + 1))
            for stage, level in enumerate(drawn)
        ]
        return np.stack(levels).reshape(-1, *shape).astype(np.uint8)
    sigma = np.asarray(absorbing.sample_order(key, drawn.size))
    steps = np.linspace(0, drawn.size, 8).round().astype(int)
    return np.stack([np.where(sigma < t, drawn, 128).reshape(shape) for t in steps]).astype(np.uint8)


def main(argv=None) -> dict:
    config = parse_config(Config, argv, PRESETS, "cpu", __doc__.split("\n\n")[0])
    run_dir = session.start(config)
    splits = images.load(config.dataset, config.data_dir)
    print(splits.describe(), flush=True)
    model_key, train_key, eval_key, sample_key, picture_key = jax.random.split(
        jax.random.PRNGKey(config.seed), 5
    )
    model, objective, num_steps = build(config, splits.image_shape, model_key)
    num_variables = int(np.prod(splits.image_shape))
    print(f"model: {session.count_parameters(model):,} parameters; D = {num_variables}", flush=True)
    batches = pipeline.iterate(
        pipeline.image_batches(splits.train, config.batch_size, config.seed, config.augment)
    )
    state, train_seconds = session.train(config, model, objective, num_steps, batches, train_key)

    test = splits.test.reshape(len(splits.test), -1).astype(np.int32)
    test = test[: config.eval_max_chunks] if config.eval_max_chunks else test
    note = "" if splits.exact else "; LOSSY copy, not comparable with papers"
    report, eval_seconds = session.evaluate(
        config, objective.estimate, state.ema_model, test, num_steps, eval_key, "bits per dimension", note
    )
    num_stages = 1 if config.model == "oa" else objective.transitions.num_stages
    budgets = {}
    asked = [int(b) for b in config.budgets.split(",") if b]
    for budget, boundaries in plan_policies(config, state, num_stages, asked).items():
        policy = jnp.asarray(boundaries)
        budget_report, _ = session.evaluate(
            config,
            functools.partial(objective.policy_estimate, policy=policy),
            state.ema_model,
            test,
            policy.size,
            eval_key,
            f"bits per dimension with {policy.size} network calls (DP policy)",
            note,
        )
        budgets[budget] = {"calls": policy.size, "bpd": budget_report.bpd, "stderr": budget_report.stderr}

    begin = time.perf_counter()
    sample_policy, calls = None, num_stages * num_variables
    if config.sample_budget:
        sample_policy = plan_policies(config, state, num_stages, [config.sample_budget]).popitem()[1]
        calls = sample_policy.size
    drawn = draw(config, state.ema_model, objective, sample_key, num_variables, sample_policy)
    sample_seconds = time.perf_counter() - begin
    final = drawn if config.model == "oa" else drawn[:, -1]
    samples = final.reshape(-1, *splits.image_shape).astype(np.uint8)
    print(f"sampled {len(samples)} images with {calls} network calls in {sample_seconds:.1f} s", flush=True)

    seconds = {"train_this_run": train_seconds, "eval": eval_seconds, "sample": sample_seconds}
    results = session.results(
        config, splits.describe(), report, state, seconds, budgets=budgets, sample_calls=calls
    )
    session.write_outputs(run_dir, results, {}, report.step_losses)
    if session.writes_files() and len(samples):
        images.save_grid(samples, run_dir / "samples.png")
        stages = generation_picture(config, objective, drawn[0], splits.image_shape, picture_key)
        images.save_grid(stages, run_dir / "generation.png", columns=len(stages), scale=3)
        print(f"wrote {run_dir}/samples.png, generation.png")
    return results


if __name__ == "__main__":
    session.run_script(main, errors=(images.ImageDataError,))
