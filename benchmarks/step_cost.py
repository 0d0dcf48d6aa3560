"""What a training step of each of several text8 OA-ARDM shapes costs, relative to the first, and how
many steps each can take for the compute of the first's `--reference-steps`.

    python benchmarks/step_cost.py "w128=--width 128 --mlp-width 512" "w160=--width 160 --mlp-width 640"

Each arm is `NAME=FLAGS` (any flags of `experiments/text8_oaardm.py`). The arms are timed in turn in
one process, `--steps` steps each per round for `--rounds` rounds, and each arm's cost is the median
over its rounds: a slow or fast spell of the host (they last minutes to hours on shared machines)
falls on every arm alike and cancels in the ratios, which a timing of one arm after another does not
give. Use the equal-compute step counts to compare shapes at the same cost by training each for its
count (`experiments/text8_oaardm.py FLAGS --num-steps N`).
"""

import argparse
import statistics
import sys
import time
from pathlib import Path

import jax

from eqdd.runs.text8_oaardm import Config

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _scripts import text8_training_step  # noqa: E402


def main(argv=None) -> dict[str, dict[str, float]]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], allow_abbrev=False)
    parser.add_argument(
        "arms", nargs="+", metavar="NAME=FLAGS", help="a name and its flags; the first is the reference"
    )
    parser.add_argument(
        "--steps", type=int, default=30, help="each arm's steps per round (default: %(default)s)"
    )
    parser.add_argument("--rounds", type=int, default=4, help="rounds (default: %(default)s)")
    parser.add_argument(
        "--reference-steps",
        type=int,
        default=Config().num_steps,
        help="the first arm's steps (default: the main job's, %(default)s)",
    )
    args = parser.parse_args(argv)
    arms = {}
    for arm in args.arms:
        name, separator, flags = arm.partition("=")
        if not separator or not name:
            parser.error(f"an arm is NAME=FLAGS (flags may be empty: 'default='), got {arm!r}")
        _, step, state, batch = text8_training_step(flags.split())
        for _ in range(3):  # compile and warm up
            state, metrics = step(state, batch)
        jax.block_until_ready(metrics)
        arms[name] = {"step": step, "state": state, "batch": batch, "ms": []}
    for _ in range(args.rounds):
        for arm in arms.values():
            state = arm["state"]
            begin = time.perf_counter()
            for _ in range(args.steps):
                state, metrics = arm["step"](state, arm["batch"])
            jax.block_until_ready(metrics)
            arm["ms"].append((time.perf_counter() - begin) * 1000 / args.steps)
            arm["state"] = state
    reference = statistics.median(next(iter(arms.values()))["ms"])
    results = {}
    print(f"{'arm':<16} {'ms/step':>8} {'rounds (ms)':<28} {'cost':>6} {'equal-compute steps':>20}")
    for name, arm in arms.items():
        ms = statistics.median(arm["ms"])
        steps = args.reference_steps * reference / ms
        results[name] = {"ms_per_step": ms, "cost": ms / reference, "equal_compute_steps": steps}
        rounds = ", ".join(f"{t:.0f}" for t in arm["ms"])
        print(f"{name:<16} {ms:8.1f} {rounds:<28} {ms / reference:5.3f}x {steps:20,.0f}")
    return results


if __name__ == "__main__":
    main()
