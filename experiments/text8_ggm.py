"""Train, evaluate, sample and infill a Glauber Generative Model on text8.

    python experiments/text8_ggm.py                  # CPU-sized default, a few minutes
    python experiments/text8_ggm.py --preset paper   # the GGM paper's network and optimiser, 4 sweeps
    python experiments/text8_ggm.py --help           # every option

The same data, backbone, training step, checkpoints and outputs as experiments/text8_oaardm.py. The
test figure is the GGM likelihood bound (docs/decisions.md) in bits per character, comparable with the
OA-ARDM bound. Everything goes to --run-dir: checkpoints (a run there is resumed), metrics.jsonl,
training.png, results.json, samples.txt and infill.txt (test chunks with only their ends kept, and the
model's completion of the middle).
"""

import time

import jax
import jax.numpy as jnp
import numpy as np

from eqdd.config import parse_config
from eqdd.data import text8
from eqdd.processes import GlauberProcess
from eqdd.runs import session
from eqdd.runs import text8 as text8_runs
from eqdd.runs.text8_ggm import PRESETS, Config, build, data_shape, noise_counts, sample


def infill(
    config: Config, model, process: GlauberProcess, chunks: np.ndarray, key
) -> tuple[list[str], float]:
    """Keep both ends of the first test chunks and sample the middle; report the lines and the share
    of middle characters that match the original."""
    chunks = chunks[: config.num_infills]
    known = np.zeros(chunks.shape, bool)
    known[:, : config.infill_keep] = known[:, chunks.shape[1] - config.infill_keep :] = True
    filled = sample(config, model, process, key, len(chunks), jnp.asarray(known), jnp.asarray(chunks))
    lines = []
    for original, completion in zip(chunks, filled, strict=True):
        keep = config.infill_keep
        middle = slice(keep, len(original) - keep)
        lines += [
            f"original: {text8.decode(original)}",
            f"infilled: {text8.decode(completion[:keep])}[{text8.decode(completion[middle])}]"
            f"{text8.decode(completion[middle.stop :])}",
        ]
    matched = float((filled[:, ~known[0]] == chunks[:, ~known[0]]).mean()) if len(chunks) else float("nan")
    return lines, matched


def main(argv=None) -> dict:
    config = parse_config(Config, argv, PRESETS, "cpu", __doc__.split("\n\n")[0])
    run_dir = session.start(config)
    splits = text8_runs.load(config)
    model_key, train_key, eval_key, sample_key, infill_key = jax.random.split(
        jax.random.PRNGKey(config.seed), 5
    )
    counts = noise_counts(splits.train)
    model, objective = build(config, counts, model_key)
    process = objective.process
    print(
        f"model: {session.count_parameters(model):,} parameters; process: {config.kernel} kernel, "
        f"Π(φ) = {config.kappa}, T = {process.num_steps} steps ({config.num_sweeps} sweeps), "
        f"{config.timesteps} steps per sequence",
        flush=True,
    )

    batches = text8_runs.training_batches(config, splits)
    rebuild = {"noise_counts": counts}
    state, train_seconds = session.train(
        config, model, objective, data_shape(config), batches, train_key, rebuild
    )
    report, eval_seconds = text8_runs.evaluate(
        config, objective.estimate, state.ema_model, splits, process.num_steps, eval_key
    )

    begin = time.perf_counter()
    texts = [
        text8.decode(s) for s in sample(config, state.ema_model, process, sample_key, config.num_samples)
    ]
    sample_seconds = time.perf_counter() - begin
    for i, t in enumerate(texts):
        print(f"sample {i}: {t}")
    infills, matched = infill(
        config, state.ema_model, process, text8_runs.test_chunks(config, splits), infill_key
    )
    print("\n".join(infills))
    if infills:
        print(f"infilled characters equal to the original: {matched:.1%}")

    seconds = {"train_this_run": train_seconds, "eval": eval_seconds, "sample": sample_seconds}
    results = session.results(
        config,
        splits.describe(),
        report,
        state,
        seconds,
        network_calls_per_sample=process.num_steps,
        infill_match=matched,
    )
    session.write_outputs(run_dir, results, {"samples.txt": texts, "infill.txt": infills}, report.step_losses)
    return results


if __name__ == "__main__":
    session.run_script(main, errors=(text8.Text8Error,))
