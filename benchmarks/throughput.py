"""Training and sampling throughput of the text8 OA-ARDM, per attention backend, and the attention
kernel alone.

    python benchmarks/throughput.py                     # CPU: presets cpu and paper (small batch)
    python benchmarks/throughput.py --paper-batch 512   # on a GPU: the paper's batch

For each preset and backend: training tokens per second through the real (shard_map) training step,
its peak memory (the device's own peak counter where it has one, else XLA's compiled-memory
analysis: arguments + outputs + temporaries), the model FLOP rate (6 x parameters + attention per
token, forward and backward) and, on a GPU with a known peak, its fraction of the bf16 dense peak;
then sampling tokens per second (--sample-calls equally spaced network calls per batch of
sequences). Second, the attention function alone, forward and forward+backward, for each backend
at several sequence lengths, with its FLOP rate. Every figure is the median of --repeats timed
calls after one compiling call. Ratios are against the "xla" backend measured in the same run.
Writes results.json to --out-dir.
"""

import argparse
import dataclasses
import functools
import statistics
import sys
import time
from pathlib import Path

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from eqdd.data import text8
from eqdd.denoisers.attention import BACKENDS, dot_product_attention
from eqdd.policy import naive_policy
from eqdd.runs import text8_oaardm
from eqdd.runs.session import training_step
from eqdd.samplers import sample_oa_ardm
from eqdd.train import TrainState, data_mesh, replicate

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _scripts import write_results  # noqa: E402

# Dense bf16 peak FLOP/s by device kind (vendor data sheets); other devices get no fraction.
BF16_PEAK = {"NVIDIA H100 80GB HBM3": 989e12, "NVIDIA H200": 989e12, "NVIDIA A100-SXM4-80GB": 312e12}


def _parser() -> argparse.ArgumentParser:
    on_gpu = jax.default_backend() == "gpu"
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], allow_abbrev=False)
    parser.add_argument(
        "--backends",
        default=",".join(b for b in BACKENDS if on_gpu or b != "cudnn"),
        help="comma-separated attention backends (default: every one this platform runs: %(default)s)",
    )
    parser.add_argument("--presets", default="cpu,paper", help="text8 presets to time (default: %(default)s)")
    parser.add_argument(
        "--paper-batch",
        type=int,
        default=512 if on_gpu else 2,
        help="batch size for the paper preset (its own 512 does not fit a CPU step in minutes; "
        "default here: %(default)s)",
    )
    parser.add_argument(
        "--steps",
        type=int,
        default=5 if on_gpu else 2,
        help="timed training steps (default here: %(default)s)",
    )
    parser.add_argument(
        "--num-samples",
        type=int,
        default=8 if on_gpu else 2,
        help="sequences sampled (default here: %(default)s)",
    )
    parser.add_argument(
        "--sample-calls",
        type=int,
        default=250 if on_gpu else 10,
        help="network calls per sampling run (equally spaced policy; 250 = one per step; default here: "
        "%(default)s)",
    )
    parser.add_argument(
        "--kernel-lengths",
        default="256,1024,2048,4096,8192" if on_gpu else "256,512,1024",
        help="sequence lengths for the attention-alone table (default here: %(default)s)",
    )
    parser.add_argument(
        "--kernel-dtype", default="bfloat16" if on_gpu else "float32", choices=["float32", "bfloat16"]
    )
    parser.add_argument("--repeats", type=int, default=3, help="timed calls per figure (median)")
    parser.add_argument(
        "--out-dir", default="runs/throughput", help="output directory (default: %(default)s)"
    )
    return parser


def _median_seconds(fn, repeats: int) -> tuple[float, float]:
    """(first call, median of `repeats` later calls) wall seconds; every call is synchronised."""
    times = []
    for _ in range(repeats + 1):
        start = time.perf_counter()
        jax.block_until_ready(fn())
        times.append(time.perf_counter() - start)
    return times[0], statistics.median(times[1:])


def _peak_bytes(compiled) -> tuple[int, str]:
    stats = jax.devices()[0].memory_stats()
    if stats and "peak_bytes_in_use" in stats:
        return stats["peak_bytes_in_use"], "device peak"
    memory = compiled.memory_analysis()
    total = (
        memory.argument_size_in_bytes
        + memory.output_size_in_bytes
        + memory.temp_size_in_bytes
        - memory.alias_size_in_bytes
    )
    return total, "XLA analysis"


def _peak_fraction(flops_per_second: float) -> str:
    peak = BF16_PEAK.get(jax.devices()[0].device_kind)
    return f"{100 * flops_per_second / peak:5.1f}%" if peak else "    -"


def time_training(preset: str, batch_size: int | None, backend: str, args) -> dict:
    config = text8_oaardm.Config(**{**text8_oaardm.PRESETS[preset], "attention": backend})
    if batch_size:
        config = dataclasses.replace(config, batch_size=batch_size)
    model, objective = text8_oaardm.build(config, jax.random.PRNGKey(0))
    optimizer = config.make_optimizer()
    mesh = data_mesh()
    positions = config.num_positions
    state = replicate(TrainState.create(model, optimizer, jax.random.PRNGKey(1), positions), mesh)
    step = training_step(config, objective, optimizer, mesh)
    classes = text8.num_classes(config.chars_per_token)
    batch = np.random.default_rng(0).integers(0, classes, (config.batch_size, positions))
    batch = batch.astype(np.int32)
    holder = {"state": state}

    def one_step():
        holder["state"], metrics = step(holder["state"], batch)
        return metrics["loss"]

    compile_s, step_s = _median_seconds(one_step, args.steps)
    peak, peak_source = _peak_bytes(step.lower(state, batch).compile().compiled)
    parameters = sum(x.size for x in jax.tree.leaves(eqx.filter(model, eqx.is_array)))
    tokens = config.batch_size * config.seq_len
    # Forward + backward: 6 FLOPs per parameter per token, plus attention's 4·D·width per token and
    # layer forward (scores and values), times 3 for the backward.
    flops = config.batch_size * positions * (6 * parameters + 12 * config.depth * positions * config.width)

    sample = eqx.filter_jit(sample_oa_ardm)
    key = jax.random.PRNGKey(2)
    calls = jnp.asarray(naive_policy(config.seq_len, min(args.sample_calls, config.seq_len)))
    _, sample_s = _median_seconds(
        lambda: sample(
            holder["state"].ema_model, objective.process, key, args.num_samples, config.seq_len, policy=calls
        ),
        1,
    )
    return {
        "preset": preset,
        "backend": backend,
        "batch_size": config.batch_size,
        "parameters": parameters,
        "compile_s": compile_s,
        "step_s": step_s,
        "train_tokens_per_s": tokens / step_s,
        "tflops": flops / step_s / 1e12,
        "peak_fraction": _peak_fraction(flops / step_s),
        "peak_bytes": peak,
        "peak_source": peak_source,
        "sample_tokens_per_s": args.num_samples * config.seq_len / sample_s,
    }


def time_attention(length: int, backend: str, dtype, args, heads: int = 12, width: int = 64) -> dict:
    q, k, v = jax.random.normal(jax.random.PRNGKey(length), (3, 4, length, heads, width)).astype(dtype)
    attend = jax.vmap(functools.partial(dot_product_attention, backend=backend))
    forward = jax.jit(attend)
    backward = jax.jit(jax.grad(lambda q, k, v: attend(q, k, v).astype(jnp.float32).sum(), argnums=(0, 1, 2)))
    _, forward_s = _median_seconds(lambda: forward(q, k, v), args.repeats)
    _, backward_s = _median_seconds(lambda: backward(q, k, v), args.repeats)
    forward_flops = 4 * 4 * length * length * heads * width  # batch 4; q·kᵀ and p·v
    # The backward recomputes the scores and does four more matrix products: 3.5 times the forward.
    total_flops = forward_flops * 3.5
    return {
        "length": length,
        "backend": backend,
        "forward_ms": 1e3 * forward_s,
        "forward_backward_ms": 1e3 * backward_s,
        "forward_tflops": forward_flops / forward_s / 1e12,
        "forward_backward_tflops": total_flops / backward_s / 1e12,
        "peak_fraction": _peak_fraction(total_flops / backward_s),
    }


def _table(rows: list[dict], columns: list[tuple[str, str, str]]) -> str:
    """Rows as a right-aligned text table; each column is (title, key, format)."""
    cells = [[format.format(row[key]) for _, key, format in columns] for row in rows]
    widths = [max(len(title), *(len(line[i]) for line in cells)) for i, (title, _, _) in enumerate(columns)]
    header = " | ".join(title.rjust(w) for (title, _, _), w in zip(columns, widths, strict=True))
    body = [" | ".join(c.rjust(w) for c, w in zip(line, widths, strict=True)) for line in cells]
    return "\n".join([header, "-" * len(header), *body])


def main(argv=None) -> dict:
    args = _parser().parse_args(argv)
    backends = args.backends.split(",")
    unknown = set(backends) - set(BACKENDS)
    if unknown or "xla" not in backends:
        raise SystemExit(
            f"error: --backends must include xla (the baseline of the ratios) and only "
            f"{', '.join(BACKENDS)}; got {args.backends}"
        )
    device = jax.devices()[0]
    print(
        f"device: {device.device_kind} ({jax.default_backend()}, {len(jax.devices())} devices), "
        f"jax {jax.__version__}"
    )

    training = []
    for preset in args.presets.split(","):
        batch = args.paper_batch if preset == "paper" else None
        for backend in backends:
            row = time_training(preset, batch, backend, args)
            training.append(row)
            print(
                f"  timed {preset}/{backend}: {row['train_tokens_per_s']:,.0f} tokens/s, "
                f"{row['tflops']:.3f} TFLOP/s ({row['peak_fraction'].strip()} of peak)",
                flush=True,
            )
    for row in training:
        xla = next(r for r in training if r["preset"] == row["preset"] and r["backend"] == "xla")
        row["vs_xla"] = row["train_tokens_per_s"] / xla["train_tokens_per_s"]
        row["peak_mib"] = row["peak_bytes"] / 2**20
    print(
        f"\ntraining step (text8 OA-ARDM, D = 250) and sampling ({args.num_samples} sequences, "
        f"{args.sample_calls} network calls)"
    )
    print(
        _table(
            training,
            [
                ("preset", "preset", "{}"),
                ("backend", "backend", "{}"),
                ("batch", "batch_size", "{:5d}"),
                ("train tok/s", "train_tokens_per_s", "{:11.0f}"),
                ("vs xla", "vs_xla", "{:6.2f}"),
                ("TFLOP/s", "tflops", "{:7.3f}"),
                ("of peak", "peak_fraction", "{}"),
                ("peak MiB", "peak_mib", "{:8.0f}"),
                ("sample tok/s", "sample_tokens_per_s", "{:12.0f}"),
            ],
        )
    )
    print(f"(peak memory: {training[0]['peak_source']})")

    dtype = jnp.dtype(args.kernel_dtype)
    kernel = []
    for length in [int(x) for x in args.kernel_lengths.split(",")]:
        for backend in backends:
            kernel.append(time_attention(length, backend, dtype, args))
        xla = next(r for r in kernel if r["length"] == length and r["backend"] == "xla")
        for row in kernel[-len(backends) :]:
            row["vs_xla"] = xla["forward_backward_ms"] / row["forward_backward_ms"]
    print(f"\nattention alone: batch 4, 12 heads of width 64, {args.kernel_dtype}")
    print(
        _table(
            kernel,
            [
                ("length", "length", "{:6d}"),
                ("backend", "backend", "{}"),
                ("fwd ms", "forward_ms", "{:8.2f}"),
                ("fwd+bwd ms", "forward_backward_ms", "{:10.2f}"),
                ("fwd TFLOP/s", "forward_tflops", "{:11.3f}"),
                ("f+b TFLOP/s", "forward_backward_tflops", "{:11.3f}"),
                ("of peak", "peak_fraction", "{}"),
                ("speed vs xla", "vs_xla", "{:12.2f}"),
            ],
        )
    )
    results = {
        "device": device.device_kind,
        "jax": jax.__version__,
        "training": training,
        "attention": kernel,
    }
    print()
    return write_results(results, args.out_dir)


if __name__ == "__main__":
    main()
