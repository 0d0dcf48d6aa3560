"""Every GPU check of issue 12 in one command, for a short device session (about 9 minutes).

    EQDD_DATA_DIR=DATA python benchmarks/gpu_session.py --out-dir $OUT 2>&1 | tee $OUT/session.log
    EQDD_DATA_DIR=DATA python benchmarks/gpu_session.py --smoke --out-dir runs/gpu_smoke   # a CPU rehearsal

The device machine has JAX, Equinox, optax, chex and the rest, not beartype, grain or constriction, and
no network: here, `pip download --no-deps --only-binary=:all: --python-version 3.12 --platform
manylinux_2_28_x86_64 --platform manylinux2014_x86_64 -d .whl grain==0.2.18 beartype==0.23.1
constriction==0.5.0 array-record portpicker` and a copy of the text8 zip in `.device/data` (both listed
in `.git/info/exclude` and carried); there, before the command above, `python3 -m pip install -q
--no-index --no-deps --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site:$PWD`, with
`EQDD_DATA_DIR=.device/data`.

Three parts, in order of value, each in a child process stopped at its share of --minutes (a part
that runs past it is reported as stopped and the next one starts):

1. **tests**: `tests/test_attention.py`, whose Pallas backend compiles through Triton on a GPU (on a CPU
   it runs interpreted); its output goes to `attention_tests.txt`.
2. **model**: a text8 OA-ARDM (`--model-flags`; default a 4x256 network on `cpu-long`'s recipe at
   batch 64) trained for the minutes its share leaves once its step has been timed, evaluated on the
   whole test split, and exported as one model file: `results.json`, `metrics.jsonl`, `training.png`,
   `samples.txt`, `model.eqdd-model`.
3. **throughput**: `benchmarks/throughput.py` on `--preset paper` with bfloat16 matrix products
   (`JAX_DEFAULT_MATMUL_PRECISION=bfloat16`: inputs rounded to bfloat16, products accumulated in
   float32) for each attention backend, at batch 128 (the preset's 512 keeps every layer's score
   tables, more than an 80 GB card holds with the backends that store them): tokens/s and the
   fraction of the GPU's bfloat16 peak; `throughput.json`.

With the session's log that is eight files, what the device tool returns. `--smoke` runs the same path
on a CPU in a few minutes (a tiny network, the paper preset at batch 2, the cheap backends).
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# The parent times the model's step on the GPU before its children run: it must not take the card's
# memory (JAX preallocates three quarters of it), and neither may each child.
os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")

import jax  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _scripts import ROOT, seconds_per_call, text8_training_step  # noqa: E402

MODEL_FLAGS = (
    "--preset cpu-long --chars-per-token 1 --num-heads 2 --depth 4 --width 256 --mlp-width 1024 "
    "--batch-size 64 "
    "--eval-passes 2 --eval-batch-size 500 --num-samples 4 --log-every 100 --checkpoint-every 1000"
)
SMOKE_MODEL_FLAGS = (
    "--preset cpu-long --chars-per-token 1 --depth 1 --width 32 --num-heads 2 --mlp-width 64 "
    "--batch-size 4 "
    "--eval-passes 1 --eval-max-chunks 20 --num-samples 1 --log-every 10 --checkpoint-every 1000"
)
# Seconds of the model part's share kept for everything but its training steps: the child's start
# and compilation, the evaluation, the samples and the export.
MODEL_OVERHEAD_S = 100
PARTS = ("tests", "model", "throughput")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], allow_abbrev=False)
    parser.add_argument("--out-dir", required=True, help="where the eight files go (the device's $OUT)")
    parser.add_argument("--minutes", type=float, default=9.0, help="the whole session (default: %(default)s)")
    parser.add_argument(
        "--shares",
        default="1,5,3",
        help="minutes of tests, model and throughput, scaled to --minutes (default: %(default)s)",
    )
    parser.add_argument("--model-flags", default=None, help=f"flags of the model (default: {MODEL_FLAGS!r})")
    parser.add_argument(
        "--parts",
        default="tests,model,throughput",
        help="which parts to run, in order (default: %(default)s)",
    )
    parser.add_argument(
        "--max-steps",
        type=int,
        default=None,
        help="at most this many training steps (default: as many as fit)",
    )
    parser.add_argument("--smoke", action="store_true", help="a CPU rehearsal of the same path")
    return parser


def _child(name: str, argv: list[str], seconds: float, log: Path | None = None, env=None) -> bool:
    """Run `argv` for at most `seconds`; its output to `log` (and a line to stdout) or to stdout."""
    begin = time.perf_counter()
    out = log.open("w") if log else None
    try:
        result = subprocess.run(
            argv, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, timeout=max(seconds, 1), env=env
        )
        ok, status = result.returncode == 0, f"exit status {result.returncode}"
    except subprocess.TimeoutExpired:
        ok, status = False, f"stopped at its share of {seconds:.0f} s"
    finally:
        if out:
            out.close()
    print(f"[{name}] {status} after {time.perf_counter() - begin:.0f} s", flush=True)
    return ok


def run_tests(seconds: float, out: Path) -> None:
    argv = [
        sys.executable,
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        "-n",
        "0",
        "tests/test_attention.py",
    ]
    _child("tests", argv, seconds, out / "attention_tests.txt")
    lines = (out / "attention_tests.txt").read_text().strip().splitlines()
    print(lines[-1] if lines else "[tests] no output", flush=True)


def train_model(seconds: float, out: Path, flags: list[str], max_steps: int | None = None) -> None:
    """Time the model's step, train it for the steps that fit the share (at most `max_steps`), then
    export it."""
    begin = time.perf_counter()
    _, step, state, batch = text8_training_step(flags)
    step_s = seconds_per_call(step, (state, batch), calls=20, repeats=2)
    train_s = seconds - MODEL_OVERHEAD_S - (time.perf_counter() - begin)
    fit = int(train_s / step_s)
    num_steps = min(fit, max_steps or fit)
    tokens_per_s = batch.size / step_s
    print(
        f"[model] {step_s * 1e3:.1f} ms a step ({tokens_per_s:,.0f} tokens/s): {num_steps} steps", flush=True
    )
    if fit < 10:
        print(f"[model] {fit} steps fit its share; skipped", flush=True)
        return
    with tempfile.TemporaryDirectory() as run_dir:
        train = [*flags, "--num-steps", str(num_steps), "--run-dir", run_dir, "--no-progress"]
        left = seconds - (time.perf_counter() - begin)
        script = str(ROOT / "experiments" / "text8_oaardm.py")
        if not _child("model", [sys.executable, script, *train], left):
            return
        left = seconds - (time.perf_counter() - begin)
        export = [
            sys.executable,
            "-m",
            "eqdd.cli",
            "export",
            "--checkpoint",
            run_dir,
            str(out / "model.eqdd-model"),
        ]
        _child("export", export, max(left, 30))
        for name in ("results.json", "metrics.jsonl", "training.png", "samples.txt"):
            if (Path(run_dir) / name).exists():
                shutil.copy(Path(run_dir) / name, out / name)
    test = json.loads((out / "results.json").read_text())["test"]
    print(f"[model] test bound {test['bpd']:.4f} ± {test['stderr']:.4f} bpc", flush=True)


def time_throughput(seconds: float, out: Path, smoke: bool) -> None:
    argv = [sys.executable, str(ROOT / "benchmarks" / "throughput.py"), "--presets", "paper"]
    argv += (
        ["--backends", "reference,xla", "--kernel-lengths", "256", "--repeats", "1"]
        if smoke
        else [
            "--backends",
            "reference,xla,pallas,cudnn",
            "--paper-batch",
            "128",
            "--kernel-lengths",
            "256,1024,4096",
        ]
    )
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "JAX_DEFAULT_MATMUL_PRECISION": "bfloat16"}
        _child("throughput", [*argv, "--out-dir", tmp], seconds, env=env)
        if (Path(tmp) / "results.json").exists():
            shutil.copy(Path(tmp) / "results.json", out / "throughput.json")


def main(argv=None) -> None:
    args = _parser().parse_args(argv)
    shares = [float(x) for x in args.shares.split(",")]
    if len(shares) != 3 or min(shares) < 0:
        raise SystemExit(
            f"error: --shares takes three minute counts (tests, model, throughput); got {args.shares}"
        )
    parts = args.parts.split(",")
    if not set(parts) <= set(PARTS):
        raise SystemExit(f"error: --parts takes {','.join(PARTS)}; got {args.parts}")
    seconds = [60 * args.minutes * s / sum(shares) for s in shares]
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    flags = (args.model_flags or (SMOKE_MODEL_FLAGS if args.smoke else MODEL_FLAGS)).split()
    print(
        f"device: {jax.devices()[0].device_kind} ({jax.default_backend()}), jax {jax.__version__}", flush=True
    )
    print(
        f"shares (s): tests {seconds[0]:.0f}, model {seconds[1]:.0f}, throughput {seconds[2]:.0f}", flush=True
    )
    if "tests" in parts:
        run_tests(seconds[0], out)
    if "model" in parts:
        train_model(seconds[1], out, flags, args.max_steps)
    if "throughput" in parts:
        time_throughput(seconds[2], out, args.smoke)


if __name__ == "__main__":
    main()
