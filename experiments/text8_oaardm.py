"""Train, evaluate and sample an order-agnostic ARDM on text8.

    python experiments/text8_oaardm.py                  # CPU-sized default, a few minutes
    python experiments/text8_oaardm.py --preset paper   # the paper's model and optimiser (§7.1)
    python experiments/text8_oaardm.py --help           # every option

Everything goes to --run-dir: checkpoints (an existing run there is resumed where it stopped),
metrics.jsonl, training.png, results.json and samples.txt.
"""

import dataclasses
import json
import signal
import sys
import time
from pathlib import Path

import equinox as eqx
import jax
import numpy as np

from eqdd.config import ConfigError, fraction, non_negative, option, parse_config, positive
from eqdd.data import pipeline, text8
from eqdd.denoisers import Transformer
from eqdd.denoisers.attention import BACKENDS, DEFAULT_BACKEND
from eqdd.objectives import OAARDMObjective
from eqdd.samplers import sample_oa_ardm
from eqdd.train import (
    Checkpointer,
    TrainState,
    data_mesh,
    evaluate_bound,
    fit,
    initialize_distributed,
    make_optimizer,
    make_train_step,
    replicate,
)
from eqdd.train.metrics import plot_training


@dataclasses.dataclass(frozen=True)
class Config:
    data_dir: str | None = option(
        None, "directory with text8.zip or text8; else $EQDD_DATA_DIR, else the cache (downloads once)"
    )
    run_dir: str = option("runs/text8_oaardm", "output directory; a run already there is resumed")
    seq_len: int = option(250, "characters per chunk D (250 as in the paper; 256 for other papers)", positive)
    width: int = option(128, "transformer width", positive)
    depth: int = option(2, "transformer blocks", positive)
    num_heads: int = option(4, "attention heads", positive)
    mlp_width: int = option(512, "hidden width of each MLP", positive)
    time_conditioning: bool = option(False, "feed the step t to the network (the paper's text8 net does not)")
    attention: str = option(
        DEFAULT_BACKEND, "attention backend (speed only; pallas runs interpreted on a CPU)", choices=BACKENDS
    )
    batch_size: int = option(32, "training sequences per step", positive)
    num_steps: int = option(1200, "optimiser steps in total (resuming continues up to this)", positive)
    learning_rate: float = option(3e-3, "peak learning rate after warm-up", positive)
    warmup_steps: int = option(100, "linear learning-rate warm-up steps", non_negative)
    clip_norm: float = option(1.0, "global gradient-norm clipping threshold", positive)
    adam_b2: float = option(0.99, "Adam second-moment decay", fraction)
    weight_decay: float = option(1e-3, "AdamW decoupled weight decay", non_negative)
    ce_weight: float = option(1e-4, "weight of the auxiliary un-reweighted cross-entropy", non_negative)
    ema_decay: float = option(0.995, "EMA decay of the evaluation parameters", fraction)
    log_every: int = option(10, "steps between metrics records", positive)
    checkpoint_every: int = option(200, "steps between checkpoints", positive)
    eval_passes: int = option(2, "passes over the test split (fresh t and order each)", positive)
    eval_batch_size: int = option(100, "test chunks per evaluation call", positive)
    eval_max_chunks: int = option(0, "evaluate on the first N test chunks only (0: all)", non_negative)
    num_samples: int = option(4, "sequences to sample with the D-step sampler", non_negative)
    seed: int = option(
        0, "seed for initialisation, data order, training, evaluation and sampling", non_negative
    )
    progress: bool = option(True, "show progress bars")
    distributed: bool = option(
        False, "multi-host: start JAX's distributed runtime first, on every host (see the README)"
    )

    def cross_checks(self) -> list[str]:
        problems = []
        if self.width % self.num_heads:
            problems.append(f"--width ({self.width}) must be divisible by --num-heads ({self.num_heads})")
        if self.width % 2:
            problems.append(f"--width must be even for the sinusoidal position features, got {self.width}")
        return problems


PRESETS = {
    "cpu": {},
    "paper": dict(
        width=768,
        depth=12,
        num_heads=12,
        mlp_width=3072,
        batch_size=512,
        num_steps=3_000_000,
        learning_rate=5e-4,
        warmup_steps=5000,
        clip_norm=0.25,
        ema_decay=0.995,
        log_every=100,
        checkpoint_every=5000,
        eval_passes=4,
        eval_batch_size=200,
        num_samples=8,
    ),
}
# Fields that may change when a run is resumed; any other difference is refused.
RESUMABLE_CHANGES = {
    "attention",
    "data_dir",
    "distributed",
    "run_dir",
    "num_steps",
    "log_every",
    "checkpoint_every",
    "eval_passes",
    "eval_batch_size",
    "eval_max_chunks",
    "num_samples",
    "progress",
}


def check_resumable(saved: dict, config: Config) -> None:
    current = dataclasses.asdict(config)
    changed = {
        k: (saved.get(k), v) for k, v in current.items() if k not in RESUMABLE_CHANGES and saved.get(k) != v
    }
    if changed:
        lines = "\n  - ".join(
            f"--{k.replace('_', '-')}: checkpoint has {a!r}, now {b!r}" for k, (a, b) in changed.items()
        )
        raise ConfigError(
            f"{config.run_dir} holds a run with a different configuration:\n  - {lines}\n"
            "Use the same values to resume it, or choose another --run-dir to start afresh."
        )


def build(config: Config, key: jax.Array):
    """The model, objective and optimiser a config describes."""
    model = Transformer(
        text8.NUM_CLASSES + 1,
        text8.NUM_CLASSES,
        config.width,
        config.depth,
        config.num_heads,
        config.mlp_width,
        config.time_conditioning,
        config.attention,
        key=key,
    )
    objective = OAARDMObjective(text8.ABSORBING, config.ce_weight)
    optimizer = make_optimizer(
        config.learning_rate,
        config.warmup_steps,
        config.clip_norm,
        b2=config.adam_b2,
        weight_decay=config.weight_decay,
    )
    return model, objective, optimizer


def load_run(run_dir: str | Path) -> tuple[Config, TrainState, OAARDMObjective]:
    """Restore the newest checkpoint of a run of this experiment (for benchmarks and tools).

    Raises:
        FileNotFoundError: when `run_dir` holds no checkpoint.
    """
    checkpointer = Checkpointer(Path(run_dir) / "checkpoints")
    if checkpointer.latest_step() is None:
        raise FileNotFoundError(f"{run_dir} holds no checkpoint of experiments/text8_oaardm.py")
    config = Config(**checkpointer.metadata()["config"])
    model, objective, optimizer = build(config, jax.random.PRNGKey(0))
    state, _ = checkpointer.restore(
        TrainState.create(model, optimizer, jax.random.PRNGKey(0), config.seq_len)
    )
    checkpointer.close()
    return config, state, objective


def main(argv=None) -> dict:
    config = parse_config(Config, argv, PRESETS, "cpu", __doc__.split("\n\n")[0])
    if config.distributed:
        initialize_distributed()
    # Every process trains; the first one writes the files (checkpoints are written by all, via orbax).
    writes = jax.process_index() == 0
    run_dir = Path(config.run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    splits = text8.load(config.data_dir)
    print(splits.describe(), flush=True)

    model_key, train_key, eval_key, sample_key = jax.random.split(jax.random.PRNGKey(config.seed), 4)
    model, objective, optimizer = build(config, model_key)
    num_parameters = sum(x.size for x in jax.tree.leaves(eqx.filter(model, eqx.is_array)))
    print(f"model: {num_parameters:,} parameters", flush=True)
    state = TrainState.create(model, optimizer, train_key, config.seq_len)
    batches = pipeline.iterate(
        pipeline.training_batches(splits.train, config.seq_len, config.batch_size, config.seed)
    )

    checkpointer = Checkpointer(run_dir / "checkpoints")
    if checkpointer.latest_step() is not None:
        check_resumable(checkpointer.metadata()["config"], config)
        state, metadata = checkpointer.restore(state)
        batches.set_state(metadata["data_iterator"])
        print(
            f"resuming from the checkpoint at step {int(state.step)} in {checkpointer.directory}", flush=True
        )
    saved_config = dataclasses.asdict(config)
    if writes:
        (run_dir / "config.json").write_text(json.dumps(saved_config, indent=2))
    mesh = data_mesh()
    if config.batch_size % mesh.size:
        raise ConfigError(f"--batch-size ({config.batch_size}) must be a multiple of the {mesh.size} devices")
    state = replicate(state, mesh)

    start = time.perf_counter()
    state = fit(
        state,
        make_train_step(objective, optimizer, config.ema_decay, mesh),
        batches,
        num_steps=config.num_steps,
        checkpointer=checkpointer,
        metadata=lambda: {"config": saved_config, "data_iterator": batches.get_state()},
        metrics_path=run_dir / "metrics.jsonl",
        log_every=config.log_every,
        checkpoint_every=config.checkpoint_every,
        progress=config.progress,
    )
    train_seconds = time.perf_counter() - start
    checkpointer.close()

    chunks = pipeline.eval_chunks(splits.test, config.seq_len)
    if config.eval_max_chunks:
        chunks = chunks[: config.eval_max_chunks]
    start = time.perf_counter()
    report = evaluate_bound(
        objective.estimate,
        state.ema_model,
        chunks,
        config.seq_len,
        passes=config.eval_passes,
        batch_size=config.eval_batch_size,
        key=eval_key,
        progress=config.progress,
    )
    eval_seconds = time.perf_counter() - start
    print(
        f"test bound: {report.bpd:.4f} ± {report.stderr:.4f} bits per character "
        f"({report.num_chunks} chunks of {config.seq_len}, {config.eval_passes} passes, EMA parameters"
        f"{'' if splits.standard else '; NON-STANDARD corpus, not comparable with papers'})",
        flush=True,
    )

    start = time.perf_counter()
    samples = (
        np.asarray(
            eqx.filter_jit(sample_oa_ardm)(
                state.ema_model, sample_key, config.num_samples, config.seq_len, text8.ABSORBING
            )
        )
        if config.num_samples
        else []
    )
    sample_seconds = time.perf_counter() - start
    texts = [text8.decode(s) for s in samples]
    for i, t in enumerate(texts):
        print(f"sample {i}: {t}")

    results = {
        "corpus": splits.describe(),
        "test": report.to_json(),
        "train_step_losses": np.asarray(state.step_losses.values).tolist(),
        "steps": int(state.step),
        "seconds": {"train_this_run": train_seconds, "eval": eval_seconds, "sample": sample_seconds},
        "config": saved_config,
    }
    if writes:
        (run_dir / "samples.txt").write_text("".join(t + "\n" for t in texts))
        plot_training(run_dir / "metrics.jsonl", report.step_losses, run_dir / "training.png")
        (run_dir / "results.json").write_text(json.dumps(results, indent=2))
    print(f"wrote {run_dir}/results.json, samples.txt, training.png, metrics.jsonl")
    return results


def _interrupt(signum, frame):
    raise KeyboardInterrupt  # `kill` (SIGTERM) saves a checkpoint the way Ctrl-C does


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        main()
    except (ConfigError, text8.Text8Error) as error:
        sys.exit(f"error: {error}")
    except KeyboardInterrupt:
        sys.exit("interrupted: the last checkpoint is kept; run the same command again to resume")
