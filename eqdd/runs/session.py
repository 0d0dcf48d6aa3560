"""What every training experiment shares: the common options, resuming, the training session, the
outputs, and the script wrapper.

An experiment subclasses [`TrainingConfig`][] with its data and model options, builds its model and
objective, and hands them to [`train`][]; see `experiments/text8_oaardm.py`.
"""

import dataclasses
import fcntl
import json
import math
import os
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import equinox as eqx
import jax
import numpy as np
import optax
from jax.sharding import Mesh

from eqdd.config import ConfigError, fraction, non_negative, option, positive, seed_range
from eqdd.denoisers.attention import BACKENDS, DEFAULT_BACKEND
from eqdd.objectives import AbstractObjective
from eqdd.runs.plots import plot_training
from eqdd.train.checkpoint import Checkpointer
from eqdd.train.evaluate import BoundReport, evaluate_bound
from eqdd.train.loop import DivergedError, fit, request_stop
from eqdd.train.state import OPTIMIZERS, SCHEDULES, TrainState, make_optimizer
from eqdd.train.step import TrainStep, data_mesh, initialize_distributed, make_train_step, replicate

OPTIMIZER_HELP = (
    "adamw, or muon: Muon for the blocks' weight matrices (--muon-learning-rate), AdamW for the rest"
)
LR_SCHEDULE_HELP = (
    "learning rate after the warm-up: constant, or a decay to --lr-floor at --num-steps (so changing "
    "--num-steps when resuming reshapes the rest of the decay)"
)

WEIGHT_DECAY_HELP = "decoupled weight decay, times the learning rate (with muon: of Muon's matrices too)"


@dataclasses.dataclass(frozen=True)
class TrainingConfig:
    """Options of the optimiser, the loop, checkpoints, evaluation, sampling and devices."""

    run_dir: str = option("runs/experiment", "output directory; a run already there is resumed")
    attention: str = option(
        DEFAULT_BACKEND, "attention backend (speed only; pallas runs interpreted on a CPU)", choices=BACKENDS
    )
    batch_size: int = option(32, "training sequences per step", positive)
    num_steps: int = option(1200, "optimiser steps in total (resuming continues up to this)", positive)
    learning_rate: float = option(3e-3, "peak learning rate after warm-up", positive)
    warmup_steps: int = option(100, "linear learning-rate warm-up steps", non_negative)
    lr_schedule: str = option("constant", LR_SCHEDULE_HELP, choices=SCHEDULES)
    lr_floor: float = option(0.1, "final learning rate of a decay, as a fraction of the peak", fraction)
    clip_norm: float = option(1.0, "global gradient-norm clipping threshold", positive)
    adam_b2: float = option(0.99, "Adam second-moment decay", fraction)
    weight_decay: float = option(1e-3, WEIGHT_DECAY_HELP, non_negative)
    optimizer: str = option("adamw", OPTIMIZER_HELP, choices=OPTIMIZERS)
    muon_learning_rate: float = option(
        0.02, "peak learning rate of Muon's matrices (--optimizer muon)", positive
    )
    muon_split_qkv: bool = option(
        False, "orthogonalise each block's query, key and value matrices separately (--optimizer muon)"
    )
    embedding_lr_factor: float = option(
        1.0, "the token embedding's peak learning rate as a multiple of --learning-rate", positive
    )
    ema_decay: float = option(0.995, "EMA decay of the evaluation parameters", fraction)
    stratify_steps: bool = option(False, "spread each batch's diffusion steps evenly over their range")
    log_every: int = option(10, "steps between metrics records", positive)
    checkpoint_every: int = option(200, "steps between checkpoints", positive)
    eval_passes: int = option(2, "passes over the test split (fresh t and order each)", positive)
    eval_batch_size: int = option(100, "test chunks per evaluation call", positive)
    eval_max_chunks: int = option(0, "evaluate on the first N test chunks only (0: all)", non_negative)
    num_samples: int = option(4, "sequences to sample", non_negative)
    seed: int = option(
        0, "seed for initialisation, data order, training, evaluation and sampling", seed_range
    )
    progress: bool = option(True, "show progress bars")
    distributed: bool = option(
        False, "multi-host: start JAX's distributed runtime first, on every host (see the README)"
    )

    # Options that may change when a run is resumed; any other difference is refused.
    RESUMABLE = frozenset(
        {
            "attention",
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
            "stratify_steps",  # each t stays uniform either way
        }
    )

    # What an example of this experiment is: "text", "images" or "audio" (how `eqdd sample`, `evaluate`
    # and `compress` read and write it).
    KIND = "text"

    # The experiment a run of this config belongs to, saved with its checkpoints so that
    # `eqdd.load_run` knows how to rebuild it (`eqdd.runs.registry`).
    EXPERIMENT = ""

    # The values that settings added since eqdd 0.1.0 had implicitly in runs saved before they existed
    # (a run's saved config lacks them); their defaults may differ.
    LEGACY = {
        "lr_schedule": "constant",
        "optimizer": "adamw",
        "muon_learning_rate": 0.02,
        "muon_split_qkv": False,
        "stratify_steps": False,
        "embedding_lr_factor": 1.0,
    }
    # Settings added after the codec's fingerprints were fixed (eqdd's first shipped model): at their
    # LEGACY value they are left out of a model's fingerprint, so that adding one changes no
    # fingerprint and refuses no file compressed before it.
    FINGERPRINT_NEUTRAL = frozenset({"muon_split_qkv", "embedding_lr_factor"})

    def compute(self) -> Callable[[eqx.Module], eqx.Module] | None:
        """How the training loss computes with the model (`make_train_step`'s `compute`): as stored."""
        return None

    def cross_checks(self) -> list[str]:
        problems = []
        if Path(self.run_dir).exists() and not Path(self.run_dir).is_dir():
            problems.append(f"--run-dir {self.run_dir} is a file; give a directory (new or a run's)")
        if self.attention == "cudnn" and jax.default_backend() != "gpu":
            problems.append(
                f"--attention cudnn needs an NVIDIA GPU (JAX's backend here is {jax.default_backend()}); "
                "use auto, reference, xla or pallas"
            )
        if self.muon_split_qkv and self.optimizer != "muon":
            problems.append(
                f"--muon-split-qkv shapes Muon's updates; add --optimizer muon (now {self.optimizer})"
            )
        return problems

    def make_optimizer(self) -> optax.GradientTransformation:
        """The optimiser these options describe ([`eqdd.train.make_optimizer`][])."""
        return make_optimizer(
            self.learning_rate,
            self.warmup_steps,
            self.clip_norm,
            b2=self.adam_b2,
            weight_decay=self.weight_decay,
            schedule=self.lr_schedule,
            total_steps=self.num_steps,
            floor=self.lr_floor,
            optimizer=self.optimizer,
            muon_learning_rate=self.muon_learning_rate,
            split_qkv=self.muon_split_qkv,
            embedding_factor=self.embedding_lr_factor,
        )


BUDGETS_HELP = "network-call budgets (per stage) for DP-policy bounds"
SAMPLE_BUDGET_HELP = "network calls per stage when sampling, with the DP policy (0: one call per step)"


@dataclasses.dataclass(frozen=True)
class ConvolutionalARDMConfig(TrainingConfig):
    """What the image and audio runs share besides the training options: a convolutional network whose
    `width` and `branch_factor` they declare, DP budgets, a sampling budget and the codec's order, none
    of which may stop a run from resuming. Subclasses name their network in `NETWORK`."""

    NETWORK = "network"
    RESUMABLE = TrainingConfig.RESUMABLE | {"data_dir", "budgets", "sample_budget", "codec_orders"}

    def cross_checks(self) -> list[str]:
        problems = super().cross_checks()
        if self.width % 4:
            problems.append(f"--width must be a multiple of 4, got {self.width}")
        if self.branch_factor < 2:
            problems.append(f"--branch-factor must be at least 2, got {self.branch_factor}")
        if self.optimizer == "muon":
            problems.append(
                f"--optimizer muon steps a transformer's blocks; the {self.NETWORK} trains with adamw"
            )
        if self.embedding_lr_factor != 1:
            problems.append(
                f"--embedding-lr-factor scales a transformer's token embedding; the {self.NETWORK} has "
                "none: leave it 1"
            )
        return problems


def training_step(
    config: TrainingConfig,
    objective: AbstractObjective,
    optimizer: optax.GradientTransformation,
    mesh: Mesh | None = None,
) -> TrainStep:
    """The training step a config describes ([`eqdd.train.make_train_step`][]), on `mesh` (default: every
    device)."""
    return make_train_step(
        objective, optimizer, config.ema_decay, mesh, config.stratify_steps, compute=config.compute()
    )


def check_resumable(saved: dict[str, Any], config: TrainingConfig) -> None:
    """Refuse to resume a run whose saved config differs from `config` in a non-resumable option.

    Raises:
        ConfigError: listing every difference with its flag.
    """
    current = dataclasses.asdict(config)
    saved = {**config.LEGACY, **saved}
    changed = {
        k: (saved.get(k), v) for k, v in current.items() if k not in config.RESUMABLE and saved.get(k) != v
    }
    if changed:
        lines = "\n  - ".join(
            f"--{k.replace('_', '-')}: checkpoint has {a!r}, now {b!r}" for k, (a, b) in changed.items()
        )
        raise ConfigError(
            f"{config.run_dir} holds a run with a different configuration:\n  - {lines}\n"
            "Use the same values to resume it, or choose another --run-dir to start afresh."
        )


def start(config: TrainingConfig) -> Path:
    """Start the distributed runtime if asked, and create the run directory."""
    if config.distributed:
        try:
            initialize_distributed()
        except (ValueError, RuntimeError) as error:
            raise ConfigError(
                f"--distributed: JAX's distributed runtime did not start ({error}); outside Slurm, Open MPI "
                "and Kubernetes set JAX_COORDINATOR_ADDRESS, JAX_NUM_PROCESSES and JAX_PROCESS_ID on every "
                "host (see the README), or leave out --distributed"
            ) from None
    run_dir = Path(config.run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    if writes_files():
        lock_run_dir(run_dir)
    return run_dir


_LOCKS: dict[Path, Any] = {}  # run directories this process holds, with their open lock files


def lock_run_dir(run_dir: Path) -> None:
    """Hold an exclusive lock on `run_dir/.lock` until this process ends (the operating system
    releases it even after `kill -9`), so that two processes never train one run; a process may take
    its own lock again.

    Raises:
        ConfigError: when another process holds it.
    """
    path = (run_dir / ".lock").resolve()
    if path in _LOCKS:
        return
    file = open(path, "a+")
    try:
        fcntl.flock(file, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        file.seek(0)
        holder = file.read().strip() or "unknown"
        file.close()
        raise ConfigError(
            f"another process (pid {holder}) is running in {run_dir}; wait for it to finish or stop it "
            "(its checkpoint is kept), or choose another --run-dir"
        ) from None
    file.truncate(0)
    file.write(f"{os.getpid()}\n")
    file.flush()
    _LOCKS[path] = file


def writes_files() -> bool:
    """Whether this process writes the run's files (the first process; checkpoints are written by all)."""
    return jax.process_index() == 0


def count_parameters(model: eqx.Module) -> int:
    return sum(x.size for x in jax.tree.leaves(eqx.filter(model, eqx.is_array)))


def train(
    config: TrainingConfig,
    model: eqx.Module,
    objective: AbstractObjective,
    data_shape: tuple[int, ...],
    batches,
    key: jax.Array,
    rebuild: dict[str, Any] | None = None,
) -> tuple[TrainState, float]:
    """Train `model` on `objective` up to `config.num_steps`, resuming the run in `config.run_dir`.

    Arguments:
        config: the run's options.
        model: the freshly initialised model (the template when resuming).
        objective: the objective; it says how many steps `t` (and tracked `L_t`) examples have.
        data_shape: the shape of one example.
        batches: a checkpointable iterator of global batches (grain), at its start.
        key: the PRNG key of the training randomness.
        rebuild: what else (besides the config) rebuilding the objective needs, e.g. a law estimated
            from the training data; saved with every checkpoint (JSON) for [`saved_metadata`][].

    Returns:
        The trained state (replicated over the data mesh) and the seconds this call trained for.
    """
    run_dir = Path(config.run_dir)
    optimizer = config.make_optimizer()
    state = TrainState.create(model, optimizer, key, objective.num_steps(math.prod(data_shape)))
    checkpointer = Checkpointer(run_dir / "checkpoints")
    if checkpointer.latest_step() is not None:
        check_resumable(checkpointer.metadata()["config"], config)
        state, metadata = checkpointer.restore(state)
        batches.set_state(metadata["data_iterator"])
        print(
            f"resuming from the checkpoint at step {int(state.step)} in {checkpointer.directory}", flush=True
        )
    if writes_files():  # this process holds the run's lock
        checkpointer.tidy()
    saved = {"experiment": config.EXPERIMENT, "config": dataclasses.asdict(config), "rebuild": rebuild or {}}
    if writes_files():
        (run_dir / "config.json").write_text(json.dumps(saved, indent=2))
    mesh = data_mesh()
    if config.batch_size % mesh.size:
        raise ConfigError(f"--batch-size ({config.batch_size}) must be a multiple of the {mesh.size} devices")
    begin = time.perf_counter()
    state = fit(
        replicate(state, mesh),
        training_step(config, objective, optimizer, mesh),
        batches,
        num_steps=config.num_steps,
        checkpointer=checkpointer,
        metadata=lambda: {**saved, "data_iterator": batches.get_state()},
        metrics_path=run_dir / "metrics.jsonl",
        log_every=config.log_every,
        checkpoint_every=config.checkpoint_every,
        progress=config.progress,
    )
    seconds = time.perf_counter() - begin
    checkpointer.close()
    return state, seconds


def evaluate(
    config: TrainingConfig,
    estimate: Callable,
    model: eqx.Module,
    chunks: np.ndarray,
    num_diffusion_steps: int,
    key: jax.Array,
    unit: str,
    note: str = "",
) -> tuple[BoundReport, float]:
    """The test bound with its standard error ([`eqdd.train.evaluate_bound`][]), printed with `unit`
    and `note`; and the seconds it took."""
    begin = time.perf_counter()
    report = evaluate_bound(
        estimate,
        model,
        chunks,
        num_diffusion_steps,
        passes=config.eval_passes,
        batch_size=config.eval_batch_size,
        key=key,
        progress=config.progress,
    )
    seconds = time.perf_counter() - begin
    print(
        f"test bound: {report.bpd:.4f} ± {report.stderr:.4f} {unit} ({report.num_chunks} examples of "
        f"{chunks.shape[1]}, {config.eval_passes} passes, EMA parameters{note})",
        flush=True,
    )
    return report, seconds


def config_from_saved(saved: dict[str, Any], config_class: type, run_dir: str | Path):
    """`config_class(**saved)`, with a clear error for settings the class does not know; settings the
    saved run lacks take their `config_class.LEGACY` values (what they were before they existed), else
    their defaults.

    Raises:
        ConfigError: when `saved` has settings `config_class` lacks (a run written by a newer eqdd, or
            by another experiment).
    """
    unknown = sorted(set(saved) - {field.name for field in dataclasses.fields(config_class)})
    saved = {**config_class.LEGACY, **saved}
    if unknown:
        raise ConfigError(
            f"the run in {run_dir} has settings this version of eqdd does not know ({', '.join(unknown)}): "
            "it was written by a newer eqdd or by another experiment; use the eqdd that wrote it"
        )
    return config_class(**saved)


def saved_metadata(run_dir: str | Path) -> dict[str, Any]:
    """What the newest checkpoint of the run in `run_dir` saved besides its arrays: `"config"` (the
    settings it was started with), `"experiment"` and `"rebuild"` (what [`train`][] was given; older
    runs lack these two) and `"data_iterator"`. Nothing is created when there is no checkpoint.

    Raises:
        FileNotFoundError: when `run_dir` holds no checkpoint.
    """
    checkpoints = Path(run_dir) / "checkpoints"
    if not checkpoints.is_dir():
        raise FileNotFoundError(f"{run_dir} holds no checkpoint")
    checkpointer = Checkpointer(checkpoints)
    try:
        if checkpointer.latest_step() is None:
            raise FileNotFoundError(f"{run_dir} holds no checkpoint")
        return checkpointer.metadata()
    finally:
        checkpointer.close()


def restore_state(config: TrainingConfig, model: eqx.Module, num_diffusion_steps: int) -> TrainState:
    """The newest state of the run in `config.run_dir`, shaped like a fresh state around `model`."""
    checkpointer = Checkpointer(Path(config.run_dir) / "checkpoints")
    template = TrainState.create(model, config.make_optimizer(), jax.random.PRNGKey(0), num_diffusion_steps)
    try:
        state, _ = checkpointer.restore(template)
    finally:
        checkpointer.close()
    return state


def results(
    config: TrainingConfig,
    corpus: str,
    report: BoundReport,
    state: TrainState,
    seconds: dict[str, float],
    **extra: Any,
) -> dict[str, Any]:
    """The `results.json` of a run: the corpus, the test bound, the tracked `L_t`, the step count, the
    experiment's own `extra` figures, the timings and the config."""
    return {
        "corpus": corpus,
        "test": report.to_json(),
        "train_step_losses": np.asarray(state.step_losses.values).tolist(),
        "steps": int(state.step),
        **extra,
        "seconds": seconds,
        "config": dataclasses.asdict(config),
    }


def write_outputs(
    run_dir: Path, results: dict[str, Any], texts: dict[str, list[str]], test_step_losses: np.ndarray
) -> None:
    """Write `results.json`, one text file per entry of `texts`, and `training.png` (the training curve
    and the per-step losses `L_t` on test), from the first process only."""
    if not writes_files():
        return
    for name, lines in texts.items():
        (run_dir / name).write_text("".join(line + "\n" for line in lines))
    plot_training(run_dir / "metrics.jsonl", test_step_losses, run_dir / "training.png")
    (run_dir / "results.json").write_text(json.dumps(results, indent=2))
    print(f"wrote {run_dir}/{', '.join(['results.json', *texts, 'training.png', 'metrics.jsonl'])}")


def run_script(main: Callable[[], Any], errors: tuple[type[Exception], ...] = ()) -> None:
    """Run an experiment's `main` as a command: Ctrl-C and SIGTERM during training save a checkpoint at
    the next step boundary and stop ([`eqdd.train.loop.request_stop`][]; elsewhere they stop at once),
    and a bad option, a diverged loss (or one of `errors`, e.g. missing data) ends with its message
    instead of a traceback."""
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, request_stop)
    try:
        main()
    except (ConfigError, DivergedError, *errors) as error:
        sys.exit(f"error: {error}")
    except KeyboardInterrupt:
        sys.exit("interrupted: the last checkpoint is kept; run the same command again to resume")
