import dataclasses
import os
from pathlib import Path

# Compilation, not computation, dominates the suite, so the tests' tiny programs are compiled for
# compile speed: XLA's LLVM back end at -O0, and XLA's older loop emitters for fusions instead of
# its MLIR fusion emitters (a third less time on the image experiment's and the Upscale objective's
# tests from a cold cache: benchmarks/RESULTS.md). XLA's graph optimisations and fusions still run,
# so the programs compute the same functions, only with slower machine code. Set before JAX starts
# its backend; the scripts the tests start inherit them. A flag already in `XLA_FLAGS` wins.
os.environ["XLA_FLAGS"] = " ".join(
    [os.environ.get("XLA_FLAGS", "")]
    + [
        f"--{flag}={value}"
        for flag, value in (("xla_backend_optimization_level", 0), ("xla_cpu_use_fusion_emitters", "false"))
        if flag not in os.environ.get("XLA_FLAGS", "")
    ]
).strip()

import equinox as eqx
import jax
import jax.numpy as jnp
import pytest
from hypothesis import HealthCheck, settings

from eqdd.runs import images as image_runs_module
from eqdd.train import Checkpointer, StepLosses, TrainState
from tests.scripts import write_text8

# JAX's persistent compilation cache, shared by the two pytest-xdist workers and by every subprocess a
# test starts (through the environment they inherit): the same tiny models are compiled in several files
# and again in the scripts the tests run. `EQDD_TEST_JAX_CACHE=` (empty) turns it off.
_CACHE = os.environ.setdefault(
    "EQDD_TEST_JAX_CACHE", str(Path(__file__).resolve().parent.parent / ".cache" / "jax-tests")
)
if _CACHE:
    for name, value in (
        ("jax_compilation_cache_dir", _CACHE),
        ("jax_persistent_cache_min_compile_time_secs", 0),
        ("jax_persistent_cache_min_entry_size_bytes", -1),
    ):
        os.environ.setdefault(name.upper(), str(value))
        jax.config.update(name, value)

# Compilation dominates the first example of a jitted property test, so no deadline; few examples,
# derandomised, so the suite is fast and reproducible.
settings.register_profile(
    "ci",
    deadline=None,
    max_examples=25,
    derandomize=True,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.load_profile(os.getenv("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture(scope="session")
def text8_dir(tmp_path_factory):
    """A directory with a small synthetic corpus in text8's format (`text8.zip`)."""
    return write_text8(tmp_path_factory.mktemp("text8"))


@pytest.fixture(scope="session")
def image_runs(tmp_path_factory) -> tuple[Path, Path]:
    """Untrained width-8 U-Net runs of the image experiment on Fashion-MNIST (28x28x1) with made-up `L_t`,
    an OA-ARDM and an Upscale ARDM (b = 16, S = 2), written directly (training would take far longer
    than the tests of the command), with only the config as metadata, as runs were saved before their
    experiment's name was kept (`eqdd.load_run` recognises them by their settings)."""
    root = tmp_path_factory.mktemp("image_runs")
    for name, options in (("oa", {}), ("upscale", {"model": "upscale", "branch_factor": 16})):
        config = image_runs_module.Config(run_dir=str(root / name), width=8, **options)
        model, _, num_steps = image_runs_module.build(config, (28, 28, 1), jax.random.PRNGKey(0))
        state = TrainState.create(model, config.make_optimizer(), jax.random.PRNGKey(0), num_steps)
        losses = StepLosses(jnp.linspace(6.0, 1.0, num_steps), jnp.ones(num_steps, bool))
        state = eqx.tree_at(lambda s: s.step_losses, state, losses)
        checkpointer = Checkpointer(root / name / "checkpoints")
        checkpointer.save(1, state, {"config": dataclasses.asdict(config)})
        checkpointer.close()
    return root / "oa", root / "upscale"
