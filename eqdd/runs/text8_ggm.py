"""A run of the Glauber Generative Model on text8 (`experiments/text8_ggm.py`): its options, presets,
model and objective, how to restore one, and sampling with its settings."""

import dataclasses
from typing import Any

import equinox as eqx
import jax
import numpy as np

from eqdd.config import non_negative, option, positive
from eqdd.data import text8
from eqdd.objectives import GGMObjective
from eqdd.processes import GlauberProcess, unigram_law
from eqdd.processes.glauber import KERNELS, SCHEDULES
from eqdd.runs import text8 as text8_runs
from eqdd.samplers import sample_ggm


def _open_fraction(value) -> str | None:
    return None if 0.0 < value < 1.0 else f"must be in (0, 1), got {value}"


def _closed_fraction(value) -> str | None:
    return None if 0.0 <= value <= 1.0 else f"must be in [0, 1], got {value}"


def _top_p(value) -> str | None:
    return None if 0.0 < value <= 1.0 else f"must be in (0, 1], got {value}"


@dataclasses.dataclass(frozen=True)
class Config(text8_runs.Text8Config):
    EXPERIMENT = "text8_ggm"

    run_dir: str = option("runs/text8_ggm", "output directory; a run already there is resumed")
    batch_size: int = option(8, "training sequences per step (each scored at --timesteps steps)", positive)
    timesteps: int = option(4, "steps t drawn per sequence per batch (the paper: 32)", positive)
    kernel: str = option("flip", "forward kernel: flip (the paper's) or replace", choices=KERNELS)
    kappa: float = option(
        0.0625, "Π(φ), the chance a visit keeps the token (the paper: 0.5 with 4 sweeps)", _open_fraction
    )
    num_sweeps: int = option(1, "visits of every position; T = sweeps x seq-len network calls", positive)
    schedule: str = option("round_robin", "order of the visits", choices=SCHEDULES)
    noise_law: str = option(
        "unigram", "vocabulary part of Π: the training unigram law or uniform", choices=("unigram", "uniform")
    )
    closed_form: bool = option(True, "average the loss over the noise draw in closed form")
    temperature: float = option(1.0, "sampling temperature", positive)
    temperature_fraction: float = option(
        1.0, "share of the denoising steps (the first ones) the temperature applies to", _closed_fraction
    )
    top_p: float = option(1.0, "top-p mass kept at every sampling step", _top_p)
    infill_keep: int = option(50, "characters kept at each end of a test chunk for infilling", non_negative)
    num_infills: int = option(4, "test chunks to infill", non_negative)

    def cross_checks(self) -> list[str]:
        problems = super().cross_checks()
        if self.chars_per_token != 1:
            problems.append("the GGM models single characters: leave --chars-per-token at 1")
        if 2 * self.infill_keep >= self.seq_len and self.num_infills:
            problems.append(
                f"--infill-keep ({self.infill_keep}) leaves nothing to infill in chunks of --seq-len "
                f"({self.seq_len}); use less than half"
            )
        return problems


PRESETS = {
    "cpu": {},
    # The GGM paper's text setup (24 x 1024, 16 heads; AdamW 1e-4, b2 0.999, no weight decay, EMA
    # 0.9999, warm-up 8000 then cosine decay to 1e-6 at 2M steps; batch 64 x 32 steps; Π(φ) = 0.5,
    # 4 sweeps), with absolute positions and no convolution.
    "paper": dict(
        conv_width=0,
        rotary=False,
        lr_schedule="cosine",
        lr_floor=0.01,
        width=1024,
        depth=24,
        num_heads=16,
        mlp_width=4096,
        batch_size=64,
        timesteps=32,
        num_steps=2_000_000,
        learning_rate=1e-4,
        warmup_steps=8000,
        clip_norm=1.0,
        adam_b2=0.999,
        weight_decay=0.0,
        ema_decay=0.9999,
        kappa=0.5,
        num_sweeps=4,
        log_every=100,
        checkpoint_every=5000,
        eval_passes=4,
        eval_batch_size=100,
        num_samples=8,
    ),
}


def noise_counts(train_tokens: np.ndarray) -> list[int]:
    """How often each character occurs in the training split: what the noise law is estimated from,
    saved with the run (`rebuild`) so that it can be restored without the data."""
    return np.bincount(train_tokens, minlength=text8.NUM_CLASSES).tolist()


def build(config: Config, counts: list[int], key: jax.Array) -> tuple[eqx.Module, GGMObjective]:
    """The network and objective a config describes, the noise law estimated from the training split's
    character `counts` ([`noise_counts`][])."""
    law = unigram_law(np.asarray(counts)) if config.noise_law == "unigram" else np.ones(text8.NUM_CLASSES)
    process = GlauberProcess(
        law, config.seq_len, config.num_sweeps, config.kappa, config.schedule, config.kernel
    )
    model = text8_runs.transformer(config, process.num_input_classes, process.num_classes, True, key)
    return model, GGMObjective(process, config.timesteps, config.closed_form)


def data_shape(config: Config) -> tuple[int]:
    """`(L,)`: the shape of one example."""
    return (config.seq_len,)


def template(config: Config, rebuild: dict[str, Any], shape: tuple[int]) -> tuple[eqx.Module, GGMObjective]:
    """A model (its arrays to be restored) and the objective of a run (for [`eqdd.load_run`][]). A run
    saved before its character counts were kept in `rebuild` reads them from its training data.

    Raises:
        Text8Error: when an older run's training data cannot be read.
    """
    counts = rebuild.get("noise_counts") or noise_counts(text8_runs.load(config).train)
    return build(config, counts, jax.random.PRNGKey(0))


def sample(config: Config, model, process: GlauberProcess, key, num_samples: int, known=None, tokens=None):
    """`num_samples` sequences from the heat-bath sampler with the config's temperature and top-p."""
    if not num_samples:
        return np.zeros((0, config.seq_len), np.int32)
    draw = eqx.filter_jit(sample_ggm)(
        model,
        process,
        key,
        num_samples,
        config.seq_len,
        temperature=config.temperature,
        temperature_fraction=config.temperature_fraction,
        top_p=config.top_p,
        known=known,
        known_tokens=tokens,
    )
    return np.asarray(draw)
