"""Two training runs of the same seed, compared batch by batch: their logged losses, paired.

    python benchmarks/paired_runs.py runs/reference runs/candidate --window 2000 --out-dir runs/paired

Runs started with the same `--seed` and batch size draw the same batches, steps and orders, so the
difference of their logged training losses at a step is one batch's, not two batches': its spread is a
few percent of the loss's own, and a window's mean difference says within a few thousandths which run
is ahead at that point of training, long before a test evaluation would. The table gives, per window of
steps, the mean difference (candidate minus reference) of the masked cross-entropy `loss` (nats) and of
the ELBO (bits per character, or per dimension for runs that are not text) with their standard errors;
the figure draws both runs' learning-rate multipliers (from each run's config) above the paired
differences. A run resumed with a changed `--num-steps` changed its schedule at that step; the figure
draws the schedule of its final config.

A training loss is that of the raw parameters on a training batch: it ranks two runs while they train,
but a lower rate lowers it at once, so for runs whose schedules differ only the test bound at the end
(`eqdd evaluate --seed S`, the same keys for both) says which model is better.
"""

import argparse
import json
import statistics
import sys
from pathlib import Path

import numpy as np

from eqdd.runs.session import TrainingConfig
from eqdd.train.metrics import read_metrics
from eqdd.train.state import learning_rate_schedule

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _scripts import write_results  # noqa: E402

# Options that decide which batches, steps and orders a run draws.
_PAIRING = ("seed", "batch_size", "seq_len", "chars_per_token")


def _run(path: Path) -> tuple[dict, list[dict]]:
    config_path = path / "config.json"
    if not config_path.exists():
        raise SystemExit(f"{path} holds no config.json: give run directories written by an experiment")
    # a run saved before an option existed had its legacy value (as when it is resumed)
    config = {**TrainingConfig.LEGACY, **json.loads(config_path.read_text())["config"]}
    return config, read_metrics(path / "metrics.jsonl")


def paired_windows(reference: list[dict], candidate: list[dict], window: int, per_token: float) -> list[dict]:
    """Windowed mean differences (candidate minus reference) of `loss` and of the ELBO at the steps both
    logged.

    Arguments:
        reference, candidate: metric records (`step`, `loss`, `nelbo` in bits per token).
        window: the steps per window; window `k` holds steps `k·window < step ≤ (k + 1)·window`.
        per_token: characters (dimensions) per token, dividing `nelbo`'s difference.

    Returns:
        One dict per window with a paired step: `first`, `last` (the window's bounds), `n`, and `loss`,
        `loss_se`, `elbo`, `elbo_se` (standard errors `None` for a window of one step).
    """
    by_step = {record["step"]: record for record in reference}
    pairs = [(by_step[r["step"]], r) for r in candidate if r["step"] in by_step]
    rows = []
    for k in sorted({(b["step"] - 1) // window for _, b in pairs}):
        inside = [(a, b) for a, b in pairs if (b["step"] - 1) // window == k]
        row = {"first": k * window, "last": (k + 1) * window, "n": len(inside)}
        for name, key, scale in (("loss", "loss", 1.0), ("elbo", "nelbo", 1.0 / per_token)):
            d = [(b[key] - a[key]) * scale for a, b in inside]
            row[name] = statistics.fmean(d)
            row[f"{name}_se"] = statistics.stdev(d) / len(d) ** 0.5 if len(d) > 1 else None
        rows.append(row)
    return rows


def _schedule(config: dict, steps: np.ndarray) -> np.ndarray:
    rate = learning_rate_schedule(
        1.0, config["warmup_steps"], config["lr_schedule"], config["num_steps"], config.get("lr_floor", 0.0)
    )
    return np.asarray([float(rate(s)) for s in steps])


def _plot(runs: dict[str, dict], rows: list[dict], out_path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (top, bottom) = plt.subplots(2, 1, figsize=(7, 6), sharex=True)
    for name, config in runs.items():
        steps = np.linspace(0, config["num_steps"], 400)
        top.plot(steps, _schedule(config, steps), label=name)
    top.set(ylabel="rate / peak", title="learning-rate schedules")
    top.legend()
    middle = [(r["first"] + r["last"]) / 2 for r in rows]
    for name, label in (("loss", "training loss (nats)"), ("elbo", "training ELBO (bits per character)")):
        errors = [r[f"{name}_se"] or 0.0 for r in rows]
        bottom.errorbar(middle, [r[name] for r in rows], errors, capsize=3, label=label)
    bottom.axhline(0, color="black", lw=0.8)
    bottom.set(xlabel="optimiser step", ylabel="candidate − reference", title="paired difference per window")
    bottom.legend()
    for axis in (top, bottom):
        axis.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out_path, dpi=120)
    plt.close(fig)


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], allow_abbrev=False)
    parser.add_argument("reference", type=Path, help="the reference run's directory")
    parser.add_argument("candidate", type=Path, help="the candidate run's directory")
    parser.add_argument("--window", type=int, default=2000, help="steps per window (default: %(default)s)")
    parser.add_argument("--out-dir", type=Path, help="write results.json and paired.png here")
    args = parser.parse_args(argv)
    if args.window < 1:
        parser.error(f"--window must be at least 1, got {args.window}")
    (ref_config, ref_metrics), (cand_config, cand_metrics) = _run(args.reference), _run(args.candidate)
    differ = [k for k in _PAIRING if ref_config.get(k) != cand_config.get(k)]
    if differ:
        raise SystemExit(
            "the runs do not draw the same batches, so their losses are not paired: they differ in "
            + ", ".join(
                f"--{k.replace('_', '-')} ({ref_config.get(k)} vs {cand_config.get(k)})" for k in differ
            )
        )
    rows = paired_windows(ref_metrics, cand_metrics, args.window, ref_config.get("chars_per_token", 1))
    if not rows:
        raise SystemExit("the runs logged no step in common: nothing to pair")
    print(f"{args.candidate} minus {args.reference}, paired by step (mean ± standard error per window)")
    print(f"{'steps':>15} {'n':>4} {'loss (nats)':>20} {'ELBO (bits/char)':>20}")
    for r in rows:
        loss, elbo = (
            f"{r[k]:+.4f} ± {'-' if r[k + '_se'] is None else format(r[k + '_se'], '.4f')}"
            for k in ("loss", "elbo")
        )
        print(f"{r['first']:>7}-{r['last']:<7} {r['n']:>4} {loss:>20} {elbo:>20}")
    results = {"reference": str(args.reference), "candidate": str(args.candidate), "windows": rows}
    if args.out_dir is not None:
        args.out_dir.mkdir(parents=True, exist_ok=True)
        configs = {f"{args.reference.name} (reference)": ref_config, args.candidate.name: cand_config}
        _plot(configs, rows, args.out_dir / "paired.png")
        write_results(results, args.out_dir, also=", paired.png")
    return results


if __name__ == "__main__":
    main()
