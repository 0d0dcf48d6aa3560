"""Where the training step of the text8 OA-ARDM spends its time: XLA's ops, grouped by kind.

    python benchmarks/profile_step.py                       # the CPU default
    python benchmarks/profile_step.py --conv-width 0        # any flag of experiments/text8_oaardm.py

Runs a few warm-up steps on random tokens, traces `--steps` more with `jax.profiler` (a Perfetto
trace, read back as JSON: no TensorBoard needed), and prints the op time per step by kind (the op
name without its number, e.g. `copy_bitcast_fusion`) with its share, then the longest single ops. Op
times add up over threads, so their sum can exceed the step's wall time.
"""

import argparse
import collections
import glob
import gzip
import json
import re
import sys
import tempfile
import time
from pathlib import Path

import jax

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _scripts import text8_training_step  # noqa: E402


def op_times(trace_dir: str, steps: int) -> collections.Counter:
    """Milliseconds per step of every XLA op in the Perfetto trace written under `trace_dir`."""
    (path,) = glob.glob(f"{trace_dir}/**/*.trace.json.gz", recursive=True)
    with gzip.open(path) as file:
        events = json.load(file)["traceEvents"]
    times = collections.Counter()
    for event in events:
        name = event.get("name", "")
        # complete events of ops; Python frames ("$file:line") and the executor's own spans are not ops
        if event.get("ph") == "X" and "dur" in event and not name.startswith(("$", "Thunk", "Pjit")):
            times[name] += event["dur"] / 1000 / steps
    return times


def main(argv=None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], allow_abbrev=False)
    parser.add_argument("--steps", type=int, default=5, help="traced steps (default: 5)")
    parser.add_argument("--top", type=int, default=12, help="kinds and ops listed (default: 12)")
    args, flags = parser.parse_known_args(argv)
    config, step, state, batch = text8_training_step(flags)
    for _ in range(3):  # compile and warm up
        state, metrics = step(state, batch)
        float(metrics["loss"])
    with tempfile.TemporaryDirectory() as trace_dir:
        begin = time.perf_counter()
        with jax.profiler.trace(trace_dir, create_perfetto_trace=True):
            for _ in range(args.steps):
                state, metrics = step(state, batch)
                float(metrics["loss"])
        step_ms = (time.perf_counter() - begin) * 1000 / args.steps
        times = op_times(trace_dir, args.steps)
    kinds = collections.Counter()
    for name, ms in times.items():
        kinds[re.sub(r"[.\d]+$", "", name)] += ms
    total = sum(kinds.values())
    tokens = config.batch_size * config.seq_len
    rate = tokens / step_ms * 1000
    print(f"step: {step_ms:.1f} ms wall ({rate:,.0f} tokens/s, traced); op time {total:.1f} ms")
    print(f"{'kind':<32} {'ms/step':>9} {'share':>7}")
    for kind, ms in kinds.most_common(args.top):
        print(f"{kind:<32} {ms:9.2f} {100 * ms / total:6.1f}%")
    print(f"\n{'longest ops':<32} {'ms/step':>9}")
    for name, ms in times.most_common(args.top):
        print(f"{name[:32]:<32} {ms:9.2f}")
    return dict(kinds)


if __name__ == "__main__":
    main()
