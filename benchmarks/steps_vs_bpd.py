"""Bits per character against the number of network calls, for optimal (DP) and naive policies.

    python benchmarks/steps_vs_bpd.py                         # runs/text8_oaardm, trained first if empty
    python benchmarks/steps_vs_bpd.py --checkpoint RUN_DIR    # a run of experiments/text8_oaardm.py

The policies are planned on the training-split step losses L_t that the run tracked (or, with
--plan-on valid, on L_t estimated on the validation split), sorted in decreasing order as in the
paper; every bits-per-character figure is then *estimated* on the test
split with the policy estimator (one network call per chunk and pass, EMA parameters), with its
standard error. The "planned" column is the DP's own prediction from the planning L_t. Sampling time
is per sample with the DP policy, after compilation. Writes results.json and steps_vs_bpd.png to
--out-dir.
"""

import argparse
import functools
import sys
import time
from pathlib import Path

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from eqdd import policy as policies
from eqdd.data import text8
from eqdd.runs import load_run
from eqdd.runs import text8 as text8_runs
from eqdd.samplers import sample_oa_ardm
from eqdd.train import evaluate_bound, paired_difference

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _scripts import run_experiment, write_results  # noqa: E402

PAPER = {"full 250 steps": 1.43, "20 DP steps": 1.51}  # text8 test bpc, standard split (Table 1)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], allow_abbrev=False)
    parser.add_argument(
        "--checkpoint",
        default="runs/text8_oaardm",
        help="run directory of experiments/text8_oaardm.py; trained with its CPU default "
        "first if it holds no checkpoint (default: %(default)s)",
    )
    parser.add_argument(
        "--data-dir", default=None, help="text8 directory (else $EQDD_DATA_DIR, else the cache)"
    )
    parser.add_argument(
        "--budgets",
        default="1,5,10,20,50,100",
        help="comma-separated numbers of network calls; D is always added (default: %(default)s)",
    )
    parser.add_argument(
        "--plan-on",
        choices=["train", "valid"],
        default="train",
        help="plan on the L_t tracked during training (the paper's way) or on L_t estimated "
        "now on the validation split with the EMA parameters (default: %(default)s)",
    )
    parser.add_argument("--eval-passes", type=int, default=1, help="passes over the test split (default: 1)")
    parser.add_argument("--eval-max-chunks", type=int, default=0, help="use the first N test chunks (0: all)")
    parser.add_argument("--eval-batch-size", type=int, default=100, help="chunks per call (default: 100)")
    parser.add_argument("--num-samples", type=int, default=8, help="samples timed per budget (default: 8)")
    parser.add_argument(
        "--out-dir", default="runs/steps_vs_bpd", help="output directory (default: %(default)s)"
    )
    parser.add_argument("--seed", type=int, default=0, help="evaluation and sampling seed (default: 0)")
    parser.add_argument(
        "--progress", action=argparse.BooleanOptionalAction, default=True, help="progress bars"
    )
    return parser


def planning_losses(step_losses: np.ndarray, seen: np.ndarray) -> np.ndarray:
    """Training L_t ready for planning: unobserved steps interpolated between observed ones, then sorted."""
    return policies.monotone_step_losses(policies.fill_unseen(step_losses, seen))


def _sampling_seconds(model, process, key, num_samples, num_positions, policy) -> float:
    sample = eqx.filter_jit(sample_oa_ardm)
    args, policy = (model, process, key, num_samples, num_positions), jnp.asarray(policy, jnp.int32)
    jax.block_until_ready(sample(*args, policy=policy))  # compile
    start = time.perf_counter()
    jax.block_until_ready(sample(*args, policy=policy))
    return (time.perf_counter() - start) / num_samples


def plot(rows, full_bpd, out_path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    calls = [r["calls"] for r in rows]
    fig, (ax, diff_ax) = plt.subplots(1, 2, figsize=(12, 4.2))
    for name, style in (("dp", "o-"), ("naive", "s--")):
        ax.errorbar(
            calls,
            [r[name]["bpd"] for r in rows],
            yerr=[2 * r[name]["stderr"] for r in rows],
            fmt=style,
            ms=4,
            capsize=2,
            label=f"{'DP' if name == 'dp' else 'naive'} policy (test, ±2 s.e.)",
        )
    ax.plot(calls, [r["dp_planned"] for r in rows], ":", color="gray", label="DP planned (planning L_t)")
    ax.axhline(full_bpd, color="black", lw=0.8, label=f"full {calls[-1]}-step ELBO ({full_bpd:.3f})")
    ax.set(xscale="log", xlabel="network calls", ylabel="bits per character", title=title)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    diff_ax.errorbar(
        calls,
        [r["dp_minus_naive"]["bpd"] for r in rows],
        yerr=[2 * r["dp_minus_naive"]["stderr"] for r in rows],
        fmt="o-",
        ms=4,
        capsize=2,
        label="test, paired (±2 s.e.)",
    )
    diff_ax.plot(
        calls,
        [r["dp_planned"] - r["naive_planned"] for r in rows],
        ":",
        color="gray",
        label="planned (planning L_t)",
    )
    diff_ax.axhline(0.0, color="black", lw=0.8)
    diff_ax.set(
        xscale="log",
        xlabel="network calls",
        ylabel="DP − naive (bits per character)",
        title="gain of the DP policy (below 0: DP better)",
    )
    diff_ax.grid(alpha=0.3, which="both")
    diff_ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out_path, dpi=110)
    plt.close(fig)


def main(argv=None) -> dict:
    args = _parser().parse_args(argv)
    run_dir = Path(args.checkpoint)
    try:
        run = load_run(run_dir)
    except FileNotFoundError:
        print(f"no checkpoint in {run_dir}: training experiments/text8_oaardm.py's CPU default there first")
        train_argv = ["--run-dir", str(run_dir), "--num-samples", "0", "--eval-max-chunks", "1"]
        run_experiment("text8_oaardm", train_argv + (["--data-dir", args.data_dir] if args.data_dir else []))
        run = load_run(run_dir)
    if run.experiment != "text8_oaardm":
        raise SystemExit(f"{run_dir} is a run of {run.experiment}; give a run of experiments/text8_oaardm.py")
    config, objective, model = run.config, run.objective, run.model
    num_positions = config.num_positions
    per_character = functools.partial(text8_runs.per_character, chars_per_token=config.chars_per_token)
    splits = text8.load(args.data_dir or config.data_dir)
    print(splits.describe())
    budgets = sorted(
        {b for b in map(int, args.budgets.split(",")) if 1 <= b < num_positions} | {num_positions}
    )
    chunks = text8_runs.chunks_of(config, splits.test)
    if args.eval_max_chunks:
        chunks = chunks[: args.eval_max_chunks]
    key = jax.random.PRNGKey(args.seed)
    if args.plan_on == "train":
        values, seen = np.asarray(run.step_losses.values), np.asarray(run.step_losses.seen)
    else:
        key, valid_key = jax.random.split(key)
        valid = evaluate_bound(
            objective.estimate,
            model,
            text8_runs.chunks_of(config, splits.valid),
            num_positions,
            passes=1,
            batch_size=args.eval_batch_size,
            key=valid_key,
            progress=args.progress,
        )
        values, seen = np.nan_to_num(valid.step_losses), ~np.isnan(valid.step_losses)
    plan_losses = planning_losses(values, seen)
    planned = policies.optimal_policies(plan_losses, budgets)

    def estimate(policy, key):
        return evaluate_bound(
            per_character(
                functools.partial(objective.policy_estimate, policy=jnp.asarray(policy, jnp.int32))
            ),
            model,
            chunks,
            len(policy),
            passes=args.eval_passes,
            batch_size=args.eval_batch_size,
            key=key,
            progress=args.progress,
        )

    def summary(report, policy):
        return {"bpd": report.bpd, "stderr": report.stderr, "policy": [int(b) for b in policy]}

    rows = []
    for budget, (dp_policy, dp_cost) in zip(budgets, planned, strict=True):
        # one key for both policies: common random numbers, so their difference is paired
        key, eval_key, sample_key = jax.random.split(key, 3)
        naive_policy = policies.naive_policy(num_positions, budget)
        dp_report, naive_report = estimate(dp_policy, eval_key), estimate(naive_policy, eval_key)
        difference, difference_stderr = paired_difference(dp_report, naive_report)
        seconds = None
        if args.num_samples:
            seconds = _sampling_seconds(
                model, objective.process, sample_key, args.num_samples, num_positions, dp_policy
            )
        rows.append(
            {
                "calls": budget,
                "dp": summary(dp_report, dp_policy),
                "naive": summary(naive_report, naive_policy),
                "dp_minus_naive": {"bpd": difference, "stderr": difference_stderr},
                "dp_planned": dp_cost / config.chars_per_token,  # bits per character
                "naive_planned": policies.policy_cost(plan_losses, naive_policy) / config.chars_per_token,
                "sample_seconds": seconds,
            }
        )
    full = rows[-1]["dp"]

    header = (
        f"{'calls':>6} | {'DP test bpc':>16} | {'naive test bpc':>16} | {'DP - naive (paired)':>19} | "
        f"{'DP planned':>10} | {'s/sample':>9}"
    )
    lines = [header, "-" * len(header)]
    for r in rows:
        seconds = f"{r['sample_seconds']:9.4f}" if r["sample_seconds"] is not None else f"{'-':>9}"
        lines.append(
            f"{r['calls']:>6} | {r['dp']['bpd']:8.4f} ± {r['dp']['stderr']:.4f} | "
            f"{r['naive']['bpd']:8.4f} ± {r['naive']['stderr']:.4f} | "
            f"{r['dp_minus_naive']['bpd']:+9.4f} ± {r['dp_minus_naive']['stderr']:.4f} | "
            f"{r['dp_planned']:10.4f} | {seconds}"
        )
    table = "\n".join(lines)
    note = (
        "test bpc: estimates (mean ± standard error over test chunks, "
        "DP and naive scored with the same orders and step offsets, so their difference is paired; "
        f"{len(chunks)} chunks × {args.eval_passes} pass(es), EMA parameters); DP planned: the DP's "
        f"prediction from the {args.plan_on}-split L_t the policies were planned on; full "
        f"{num_positions}-step ELBO = the last row ({full['bpd']:.4f} ± {full['stderr']:.4f}). "
        "Paper (standard text8 split, 12x768 model): "
        f"{PAPER['full 250 steps']} bpc at 250 steps, {PAPER['20 DP steps']} at 20 DP steps."
    )
    if not splits.standard:
        note += " This corpus is NON-STANDARD: not comparable with the paper."
    print(table)
    print(note)

    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    corpus = "text8" if splits.standard else "text8 head (non-standard split)"
    title = f"{corpus}: D = {num_positions}, step {run.step}"
    plot(rows, full["bpd"], out_dir / "steps_vs_bpd.png", title)
    results = {
        "rows": rows,
        "table": table,
        "note": note,
        "run": str(run_dir),
        "steps": run.step,
        "corpus": splits.describe(),
        "plan_on": args.plan_on,
        "planning_step_losses_sorted": plan_losses.tolist(),
    }
    return write_results(results, out_dir, " and steps_vs_bpd.png")


if __name__ == "__main__":
    try:
        main()
    except text8.Text8Error as error:
        sys.exit(f"error: {error}")
