"""Shared by the benchmark scripts: train a run with an experiment script when a benchmark needs one,
and time a jitted function."""

import subprocess
import sys
import time
from pathlib import Path

import jax

ROOT = Path(__file__).resolve().parents[1]


def run_experiment(name: str, argv: list[str]) -> None:
    """Run `python experiments/{name}.py ARGV` in a child process (exactly what a user would run).

    Raises:
        SystemExit: when the experiment fails (its own message is on stderr above).
    """
    result = subprocess.run([sys.executable, str(ROOT / "experiments" / f"{name}.py"), *argv])
    if result.returncode:
        raise SystemExit(f"experiments/{name}.py {' '.join(argv)} failed with status {result.returncode}")


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
