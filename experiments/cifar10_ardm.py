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

import jax
import numpy as np

from eqdd.config import parse_config
from eqdd.data import images, pipeline
from eqdd.runs import budgets, codec, session
from eqdd.runs.images import PRESETS, Config, build
from eqdd.runs.registry import Run


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
        pipeline.example_batches(splits.train, config.batch_size, config.seed, config.augment), splits.train
    )
    state, train_seconds = session.train(config, model, objective, splits.image_shape, batches, train_key)

    test = splits.test.reshape(len(splits.test), -1).astype(np.int32)
    test = test[: config.eval_max_chunks] if config.eval_max_chunks else test
    note = "" if splits.exact else "; LOSSY copy, not comparable with papers"
    report, eval_seconds = session.evaluate(
        config, objective.estimate, state.ema_model, test, num_steps, eval_key, "bits per dimension", note
    )
    run = Run.from_state(config, state, objective, splits.image_shape)
    bounds = budgets.budget_bounds(run, test, eval_key, "bits per dimension", note)
    drawn, calls, sample_seconds = budgets.draw_samples(run, sample_key, "images")
    samples = drawn[:, -1].reshape(-1, *splits.image_shape).astype(np.uint8)

    train_chunks = splits.train[:4].reshape(-1, num_variables).astype(np.int32)
    codec_order = codec.choose_run_order(run, train_chunks)

    seconds = {"train_this_run": train_seconds, "eval": eval_seconds, "sample": sample_seconds}
    results = session.results(
        config,
        splits.describe(),
        report,
        state,
        seconds,
        budgets=bounds,
        sample_calls=calls,
        codec_order=codec_order,
    )
    session.write_outputs(run_dir, results, {}, report.step_losses)
    if session.writes_files() and len(samples):
        images.save_grid(samples, run_dir / "samples.png")
        stages = budgets.generation_stages(run, drawn[0], picture_key, 8, 128)  # OA: unrevealed grey
        stages = np.stack([level for _, level in stages]).reshape(-1, *splits.image_shape).astype(np.uint8)
        images.save_grid(stages, run_dir / "generation.png", columns=len(stages), scale=3)
        print(f"wrote {run_dir}/samples.png, generation.png")
    return results


if __name__ == "__main__":
    session.run_script(main, errors=(images.ImageDataError,))
