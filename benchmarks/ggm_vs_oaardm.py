"""GGM against OA-ARDM on text8 at equal network calls: likelihood bound and sample quality.

    python benchmarks/ggm_vs_oaardm.py      # uses runs/text8_oaardm and runs/text8_ggm, training them first

Both runs are the experiments' own (same transformer backbone and number of optimiser steps by their
CPU defaults; the script prints both so a mismatch shows). For each model: the test-set bound in bits
per character (estimate ± standard error), and for samples drawn with the same number of network
calls (the GGM's T; the OA-ARDM with an equally spaced policy of that many calls, at most its D
positions: 125 for the CPU default's pairs of characters): their
negative log-likelihood under a judge the samplers never saw (a character n-gram model fitted on the
training split), the unigram entropy of their characters, and the share of their words found in the
training vocabulary (the first and last word of a sample, which may be cut, are left out). The test
split itself is scored the same way as the reference row. Writes results.json and the samples to
--out-dir.
"""

import argparse
import dataclasses
import sys
import time
from pathlib import Path

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from eqdd.data import text8
from eqdd.data.ngram import NGramModel
from eqdd.policy import naive_policy
from eqdd.runs import Run, load_run, text8_ggm
from eqdd.runs import text8 as text8_runs
from eqdd.samplers import sample_oa_ardm

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _scripts import run_experiment, write_results  # noqa: E402


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], allow_abbrev=False)
    parser.add_argument("--oaardm", default="runs/text8_oaardm", help="OA-ARDM run (default: %(default)s)")
    parser.add_argument("--ggm", default="runs/text8_ggm", help="GGM run (default: %(default)s)")
    parser.add_argument(
        "--data-dir", default=None, help="text8 directory (else $EQDD_DATA_DIR, else the cache)"
    )
    parser.add_argument("--num-samples", type=int, default=32, help="samples per model (default: 32)")
    parser.add_argument("--eval-passes", type=int, default=1, help="passes over the test split (default: 1)")
    parser.add_argument("--eval-max-chunks", type=int, default=0, help="use the first N test chunks (0: all)")
    parser.add_argument("--judge-order", type=int, default=6, help="n of the n-gram judge (default: 6)")
    parser.add_argument(
        "--out-dir", default="runs/ggm_vs_oaardm", help="output directory (default: %(default)s)"
    )
    parser.add_argument("--seed", type=int, default=0, help="evaluation and sampling seed (default: 0)")
    parser.add_argument(
        "--progress", action=argparse.BooleanOptionalAction, default=True, help="progress bars"
    )
    return parser


def _trained(name: str, run_dir: str, args) -> Run:
    """The run in `run_dir`, trained first with the experiment's CPU default when it holds no checkpoint."""
    try:
        run = load_run(run_dir)
    except FileNotFoundError:
        print(f"{run_dir} holds no checkpoint: training it with the CPU default", flush=True)
        data = ["--data-dir", args.data_dir] if args.data_dir else []
        run_experiment(name, ["--run-dir", run_dir, *data, *([] if args.progress else ["--no-progress"])])
        run = load_run(run_dir)
    if run.experiment != name:
        raise SystemExit(f"{run_dir} is a run of {run.experiment}; give a run of experiments/{name}.py")
    return run


def sample_quality(samples: np.ndarray, judge: NGramModel, vocabulary: set[str]) -> dict:
    """Judge NLL (bits per character), unigram entropy (bits) and known-word share of `samples`."""
    counts = np.bincount(samples.ravel(), minlength=text8.NUM_CLASSES)
    frequencies = counts[counts > 0] / counts.sum()
    words = [w for s in samples for w in text8.decode(s).split()[1:-1]]
    return {
        "judge_bpc": judge.bits_per_character(samples),
        "unigram_entropy": float(-(frequencies * np.log2(frequencies)).sum()),
        "known_words": float(np.mean([w in vocabulary for w in words])) if words else float("nan"),
    }


def main(argv=None) -> dict:
    args = _parser().parse_args(argv)
    oa, ggm = _trained("text8_oaardm", args.oaardm, args), _trained("text8_ggm", args.ggm, args)
    splits = text8.load(args.data_dir)
    print(splits.describe(), flush=True)
    oa_config, oa_objective, ggm_config, ggm_objective = oa.config, oa.objective, ggm.config, ggm.objective
    process = ggm_objective.process
    for name, config in (("OA-ARDM", oa_config), ("GGM", ggm_config)):
        print(
            f"{name}: {config.depth} x {config.width}, {config.num_heads} heads, MLP {config.mlp_width}; "
            f"{config.num_steps} optimiser steps of batch {config.batch_size}"
            + (f" x {config.timesteps} steps" if name == "GGM" else ""),
            flush=True,
        )

    begin = time.perf_counter()
    judge = NGramModel.fit(splits.train, text8.NUM_CLASSES, args.judge_order)
    vocabulary = set(text8.decode(splits.train).split())
    print(f"judge: {args.judge_order}-gram fitted in {time.perf_counter() - begin:.1f} s", flush=True)

    key = jax.random.PRNGKey(args.seed)
    eval_key, oa_key, ggm_key = jax.random.split(key, 3)
    evaluation = dict(
        eval_passes=args.eval_passes, eval_max_chunks=args.eval_max_chunks, progress=args.progress
    )
    positions, group = oa_config.num_positions, oa_config.chars_per_token  # the OA-ARDM may model pairs
    calls = min(process.num_steps, positions)  # an OA-ARDM makes at most one call per position
    rows = []
    for name, config, model, objective, num_steps in (
        ("OA-ARDM", oa_config, oa.model, oa_objective, positions),
        ("GGM", ggm_config, ggm.model, ggm_objective, process.num_steps),
    ):
        config = dataclasses.replace(config, **evaluation)
        report, _ = text8_runs.evaluate(config, objective.estimate, model, splits, num_steps, eval_key)
        begin = time.perf_counter()
        if name == "GGM":
            samples = text8_ggm.sample(config, model, process, ggm_key, args.num_samples)
            sample_calls = process.num_steps
        else:
            policy = jnp.asarray(naive_policy(positions, calls))
            tokens = eqx.filter_jit(sample_oa_ardm)(
                model, objective.process, oa_key, args.num_samples, positions, policy=policy
            )
            samples = text8.ungroup(np.asarray(tokens), group)
            sample_calls = calls
        rows.append(
            {
                "model": name,
                "bound_bpc": report.bpd,
                "bound_stderr": report.stderr,
                "network_calls": sample_calls,
                "seconds_per_sample": (time.perf_counter() - begin) / args.num_samples,
                **sample_quality(samples, judge, vocabulary),
                "samples": [text8.decode(s) for s in samples],
            }
        )
    test = text8.ungroup(text8_runs.test_chunks(oa_config, splits)[: args.num_samples], group)
    rows.append({"model": "test data", **sample_quality(test, judge, vocabulary)})

    print(f"\ntext8 (test split), samples of {oa_config.seq_len} characters, {args.num_samples} per model")
    header = (
        f"{'model':>9} | {'bound bpc':>17} | {'calls':>5} | {'s/sample':>8} | "
        f"{'judge bpc':>9} | {'unigram H':>9} | {'known words':>11}"
    )
    print(header + "\n" + "-" * len(header))
    for row in rows:
        bound = f"{row['bound_bpc']:.4f} ± {row['bound_stderr']:.4f}" if "bound_bpc" in row else "-"
        calls_cell = str(row.get("network_calls", "-"))
        seconds = f"{row['seconds_per_sample']:.3f}" if "seconds_per_sample" in row else "-"
        print(
            f"{row['model']:>9} | {bound:>17} | {calls_cell:>5} | {seconds:>8} | {row['judge_bpc']:9.3f} | "
            f"{row['unigram_entropy']:9.3f} | {row['known_words']:11.1%}"
        )
    print(
        f"(judge: {args.judge_order}-gram on the training split; its bpc on the test split is the last row)"
    )
    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    for row in rows[:2]:
        (out_dir / f"samples_{row['model'].lower()}.txt").write_text("\n".join(row["samples"]) + "\n")
    results = {"corpus": splits.describe(), "judge_order": args.judge_order, "rows": rows}
    return write_results(results, out_dir, " and the samples")


if __name__ == "__main__":
    main()
