"""Shared by the benchmark scripts: train a run with an experiment script when a benchmark needs one."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run_experiment(name: str, argv: list[str]) -> None:
    """Run `python experiments/{name}.py ARGV` in a child process (exactly what a user would run).

    Raises:
        SystemExit: when the experiment fails (its own message is on stderr above).
    """
    result = subprocess.run([sys.executable, str(ROOT / "experiments" / f"{name}.py"), *argv])
    if result.returncode:
        raise SystemExit(f"experiments/{name}.py {' '.join(argv)} failed with status {result.returncode}")
