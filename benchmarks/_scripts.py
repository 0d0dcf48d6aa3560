"""Shared by the benchmark scripts: import an experiment script of the repository as a module."""

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def load_experiment(name: str):
    """The module `experiments/{name}.py` (experiments are scripts, not a package)."""
    path = ROOT / "experiments" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
