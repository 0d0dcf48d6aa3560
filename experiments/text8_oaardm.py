"""Train, evaluate and sample an order-agnostic ARDM on text8.

    python experiments/text8_oaardm.py                  # CPU-sized default, a few minutes
    python experiments/text8_oaardm.py --preset paper   # the paper's model and optimiser (§7.1)
    python experiments/text8_oaardm.py --help           # every option

Everything goes to --run-dir: checkpoints (an existing run there is resumed where it stopped),
metrics.jsonl, training.png, results.json and samples.txt.
"""

import dataclasses
import sys
import time
from pathlib import Path

import equinox as eqx
import jax
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _text8  # noqa: E402

from eqdd.config import non_negative, option, parse_config  # noqa: E402
from eqdd.data import text8  # noqa: E402
from eqdd.objectives import OAARDMObjective  # noqa: E402
from eqdd.samplers import sample_oa_ardm  # noqa: E402
from eqdd.train import TrainState, session  # noqa: E402


@dataclasses.dataclass(frozen=True)
class Config(_text8.Text8Config):
    run_dir: str = option("runs/text8_oaardm", "output directory; a run already there is resumed")
    time_conditioning: bool = option(False, "feed the step t to the network (the paper's text8 net does not)")
    ce_weight: float = option(1e-4, "weight of the auxiliary un-reweighted cross-entropy", non_negative)


PRESETS = {"cpu": {}, "paper": _text8.PAPER}


def build(config: Config, key: jax.Array) -> tuple[eqx.Module, OAARDMObjective]:
    """The model and objective a config describes (the optimiser is `config.optimizer()`)."""
    model = _text8.transformer(
        config, text8.NUM_CLASSES + 1, text8.NUM_CLASSES, config.time_conditioning, key
    )
    return model, OAARDMObjective(text8.ABSORBING, config.ce_weight)


def load_run(run_dir: str | Path) -> tuple[Config, TrainState, OAARDMObjective]:
    """The config, newest state and objective of a run of this experiment (for benchmarks and tools).

    Raises:
        FileNotFoundError: when `run_dir` holds no checkpoint.
    """
    config = dataclasses.replace(session.saved_config(run_dir, Config), run_dir=str(run_dir))
    model, objective = build(config, jax.random.PRNGKey(0))
    return config, session.restore_state(config, model, config.seq_len), objective


def main(argv=None) -> dict:
    config = parse_config(Config, argv, PRESETS, "cpu", __doc__.split("\n\n")[0])
    run_dir = session.start(config)
    splits = _text8.load(config)
    model_key, train_key, eval_key, sample_key = jax.random.split(jax.random.PRNGKey(config.seed), 4)
    model, objective = build(config, model_key)
    print(f"model: {session.count_parameters(model):,} parameters", flush=True)

    state, train_seconds = session.train(
        config, model, objective, config.seq_len, _text8.training_batches(config, splits), train_key
    )
    report, eval_seconds = _text8.evaluate(
        config, objective.estimate, state.ema_model, splits, config.seq_len, eval_key
    )

    begin = time.perf_counter()
    samples = (
        np.asarray(
            eqx.filter_jit(sample_oa_ardm)(
                state.ema_model, sample_key, config.num_samples, config.seq_len, text8.ABSORBING
            )
        )
        if config.num_samples
        else []
    )
    sample_seconds = time.perf_counter() - begin
    texts = [text8.decode(s) for s in samples]
    for i, t in enumerate(texts):
        print(f"sample {i}: {t}")

    seconds = {"train_this_run": train_seconds, "eval": eval_seconds, "sample": sample_seconds}
    results = session.results(config, splits.describe(), report, state, seconds)
    session.write_outputs(run_dir, results, {"samples.txt": texts}, report.step_losses)
    return results


if __name__ == "__main__":
    session.run_script(main, errors=(text8.Text8Error,))
