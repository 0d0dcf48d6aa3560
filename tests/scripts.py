"""Helpers for the tests of the scripts in experiments/ and benchmarks/."""

import importlib.util
import zipfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]

# A model and run small enough to train, evaluate and sample in seconds.
TINY_RUN = (  # single characters (the OA-ARDM's default is pairs: tests of pairs say so)
    "--width 16 --depth 1 --num-heads 2 --mlp-width 32 --warmup-steps 2 --log-every 1 --eval-passes 2 "
    "--eval-batch-size 8 --chars-per-token 1 --no-progress"
).split()


def load_script(relative_path: str):
    """Import a script of the repository (not a package) as a module."""
    path = ROOT / relative_path
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def write_text8(directory: Path, seed: int = 0, length: int = 50_000) -> Path:
    """A synthetic text8-format corpus of a few words, zipped as `text8.zip` in `directory`."""
    words = ["the", "cat", "sat", "on", "a", "mat", "and", "dog", "ran"]
    text = " ".join(np.random.default_rng(seed).choice(words, length // 3))[:length]
    with zipfile.ZipFile(directory / "text8.zip", "w") as archive:
        archive.writestr("text8", text)
    return directory


def saved_state(run_dir: Path):
    """The newest training state (optimiser included) and metadata of a run, for tests that rewrite its
    checkpoints."""
    import jax

    from eqdd.runs import load_run
    from eqdd.train import Checkpointer, TrainState

    run = load_run(run_dir)
    template = TrainState.create(run.model, run.config.make_optimizer(), jax.random.PRNGKey(0), run.num_steps)
    checkpointer = Checkpointer(Path(run_dir) / "checkpoints")
    try:
        return checkpointer.restore(template)
    finally:
        checkpointer.close()


def help_text(script, capsys) -> str:
    """What `script.py --help` prints (run in this process: starting Python and JAX again costs
    seconds), after checking that it names every option of `script.Config` and shows each option's
    allowed values rather than a bare type."""
    import dataclasses

    import pytest

    with pytest.raises(SystemExit) as exit_info:
        script.main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    for field in dataclasses.fields(script.Config):
        assert "--" + field.name.replace("_", "-") in out
        choices = field.metadata.get("choices")
        if choices is not None:
            assert "{" + ",".join(map(str, choices)) + "}" in out
    return out
