"""Train, evaluate and sample an order-agnostic ARDM on text8.

    python experiments/text8_oaardm.py                  # CPU-sized default, a few minutes
    python experiments/text8_oaardm.py --preset paper   # the paper's model and optimiser (§7.1)
    python experiments/text8_oaardm.py --help           # every option

Everything goes to --run-dir: checkpoints (an existing run there is resumed where it stopped),
metrics.jsonl, training.png, results.json and samples.txt.
"""

import time

import equinox as eqx
import jax
import numpy as np

from eqdd.config import parse_config
from eqdd.data import text8
from eqdd.runs import codec, session
from eqdd.runs import text8 as text8_runs
from eqdd.runs.registry import Run
from eqdd.runs.text8_oaardm import PRESETS, Config, build, data_shape
from eqdd.samplers import sample_oa_ardm


def main(argv=None) -> dict:
    config = parse_config(Config, argv, PRESETS, "cpu", __doc__.split("\n\n")[0])
    run_dir = session.start(config)
    splits = text8_runs.load(config)
    model_key, train_key, eval_key, sample_key = jax.random.split(jax.random.PRNGKey(config.seed), 4)
    model, objective = build(config, model_key)
    print(f"model: {session.count_parameters(model):,} parameters", flush=True)

    batches = text8_runs.training_batches(config, splits)
    state, train_seconds = session.train(config, model, objective, data_shape(config), batches, train_key)
    report, eval_seconds = text8_runs.evaluate(
        config, objective.estimate, state.ema_model, splits, config.num_positions, eval_key
    )

    begin = time.perf_counter()
    samples = (
        np.asarray(
            eqx.filter_jit(sample_oa_ardm)(
                state.ema_model, objective.process, sample_key, config.num_samples, config.num_positions
            )
        )
        if config.num_samples
        else []
    )
    sample_seconds = time.perf_counter() - begin
    texts = [text8.decode(text8.ungroup(s, config.chars_per_token)) for s in samples]
    for i, t in enumerate(texts):
        print(f"sample {i}: {t}")

    train_chunks = text8_runs.chunks_of(config, splits.train[: 16 * config.seq_len])
    codec_order = codec.choose_run_order(
        Run.from_state(config, state, objective, data_shape(config)), train_chunks
    )

    seconds = {"train_this_run": train_seconds, "eval": eval_seconds, "sample": sample_seconds}
    results = session.results(config, splits.describe(), report, state, seconds, codec_order=codec_order)
    session.write_outputs(run_dir, results, {"samples.txt": texts}, report.step_losses)
    return results


if __name__ == "__main__":
    session.run_script(main, errors=(text8.Text8Error,))
