"""Shared by the benchmark scripts: train a run with an experiment script when a benchmark needs one,
build the text8 OA-ARDM's training step for a set of flags, time a jitted function, and write the
results."""

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import jax
import numpy as np

from eqdd.config import parse_config
from eqdd.data import text8
from eqdd.runs.session import training_step
from eqdd.runs.text8_oaardm import PRESETS, Config, build
from eqdd.train import TrainState

ROOT = Path(__file__).resolve().parents[1]


def run_experiment(name: str, argv: list[str]) -> None:
    """Run `python experiments/{name}.py ARGV` in a child process (exactly what a user would run).

    Raises:
        SystemExit: when the experiment fails (its own message is on stderr above).
    """
    result = subprocess.run([sys.executable, str(ROOT / "experiments" / f"{name}.py"), *argv])
    if result.returncode:
        raise SystemExit(f"experiments/{name}.py {' '.join(argv)} failed with status {result.returncode}")


def write_results(results: dict, out_dir: str | Path, also: str = "") -> dict:
    """Write `results` to `OUT_DIR/results.json` (making the directory), say so (naming what else the
    script wrote there: `also`), and return them."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "results.json").write_text(json.dumps(results, indent=2))
    print(f"wrote {out_dir}/results.json{also}")
    return results


def text8_training_step(flags: list[str]) -> tuple[Config, Any, TrainState, np.ndarray]:
    """The training step of `experiments/text8_oaardm.py FLAGS` on one device, its initial state and a
    batch of random tokens (the step's cost does not depend on the tokens).

    Returns:
        `(config, step, state, batch)`, with `step(state, batch) -> (state, metrics)` jitted.
    """
    config = parse_config(Config, flags, PRESETS, "cpu", "")
    model, objective = build(config, jax.random.PRNGKey(0))
    optimizer = config.make_optimizer()
    state = TrainState.create(model, optimizer, jax.random.PRNGKey(1), config.num_positions)
    step = training_step(config, objective, optimizer)
    classes = text8.num_classes(config.chars_per_token)
    batch = np.random.default_rng(0).integers(0, classes, (config.batch_size, config.num_positions))
    return config, step, state, batch.astype(np.int32)


def seconds_per_call(function, args: tuple, calls: int = 1, repeats: int = 3) -> float:
    """The best, over `repeats`, of the mean time of `calls` calls of `function(*args)`, after one call
    that compiles it (each measurement waits for the last call's result)."""
    jax.block_until_ready(function(*args))
    best = float("inf")
    for _ in range(repeats):
        begin = time.perf_counter()
        for _ in range(calls):
            out = function(*args)
        jax.block_until_ready(out)
        best = min(best, (time.perf_counter() - begin) / calls)
    return best
