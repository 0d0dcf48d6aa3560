"""Speed of the optimal-policy dynamic program against the reference O(K·D^2) recursion.

    python benchmarks/policy_speed.py

Both run in this process on the same step losses (sorted random gamma draws); the table gives the
seconds for every budget 1..K at once and the ratio. The reference is skipped where its (D+1)^2 matrix
would not fit comfortably in memory. numba's compilation is timed separately (first call).
"""

import argparse
import time

import numpy as np

from eqdd import policy

CASES = [(250, 250), (1000, 1000), (3072, 1000), (3072, 100), (16000, 100)]


def _best_of(repeats, fn, *args):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn(*args)
        times.append(time.perf_counter() - start)
    return min(times), result


def main(argv=None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3, help="timings per case; the best is kept")
    parser.add_argument("--reference-max-d", type=int, default=3072, help="skip the reference above this D")
    args = parser.parse_args(argv)

    start = time.perf_counter()
    policy.optimal_policies(np.ones(4), [1])
    print(f"first call (numba compilation or cache load): {time.perf_counter() - start:.2f} s")
    rng = np.random.default_rng(0)
    rows = []
    print(f"{'D':>6} {'budgets':>8} | {'eqdd DP (s)':>11} | {'reference (s)':>13} | {'ratio':>6} | agree")
    for num_steps, max_budget in CASES:
        losses = policy.monotone_step_losses(rng.gamma(2.0, 1.0, num_steps))
        budgets = list(range(1, max_budget + 1))
        fast, results = _best_of(args.repeats, policy.optimal_policies, losses, budgets)
        row = {"D": num_steps, "K": max_budget, "eqdd_s": fast, "reference_s": None, "agree": None}
        if num_steps <= args.reference_max_d:
            slow, reference = _best_of(1, policy.reference_policy_costs, losses, max_budget)
            costs = np.array([cost for _, cost in results])
            row.update(reference_s=slow, agree=bool(np.allclose(costs, reference[1:], rtol=1e-12)))
        rows.append(row)
        reference_text = f"{row['reference_s']:13.3f}" if row["reference_s"] is not None else f"{'-':>13}"
        ratio = f"{row['reference_s'] / fast:6.0f}" if row["reference_s"] is not None else f"{'-':>6}"
        print(
            f"{num_steps:>6} {'1..' + str(max_budget):>8} | {fast:11.4f} | {reference_text} | {ratio} | "
            f"{row['agree'] if row['agree'] is not None else '-'}"
        )
    return rows


if __name__ == "__main__":
    main()
