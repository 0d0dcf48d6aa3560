"""Training recipes for the text8 OA-ARDM on the same wall-clock budget: test bound against minutes.

    python benchmarks/text8_recipes.py                              # every recipe, 3 minutes each
    python benchmarks/text8_recipes.py --minutes 10 --recipes paper-cpu,default
    python benchmarks/text8_recipes.py --steps 2400 --recipes ...   # per step: arms whose steps cost alike
    python benchmarks/text8_recipes.py --list                       # the recipes and their flags

A recipe is a set of `experiments/text8_oaardm.py` flags. Each one is timed on a few steps first
(compilation excluded), which fixes its number of steps for the budget (so a decaying learning rate
ends with the budget); it then trains with that many steps and is evaluated `--points` times on the
first `--eval-chunks` test chunks (EMA parameters, one stratified pass). Every evaluation uses the same
key, so two recipes' bounds share chunks, orders and steps, and the difference to the first recipe is
paired (a far smaller standard error than either bound's). Training minutes exclude evaluation.

Writes `recipes.json`, `recipes.md` (the table) and `recipes.png` (bound against training minutes, a
line per recipe) to `--out-dir`.
"""

import argparse
import json
import tempfile
import time
from pathlib import Path

import jax
import numpy as np

from eqdd.config import parse_config
from eqdd.data import text8
from eqdd.runs import text8 as text8_runs
from eqdd.runs.session import training_step
from eqdd.runs.text8_oaardm import PRESETS, Config, build
from eqdd.train import TrainState, evaluate_bound, paired_difference

# name -> (what it tests, flags on top of the CPU preset). The first recipe is the reference of the
# paired differences.
OLD_DEFAULT = [
    "--width", "128", "--depth", "2", "--num-heads", "4", "--mlp-width", "512", "--batch-size", "32",
    "--conv-width", "0", "--no-rotary", "--elbo-weight", "1", "--ce-weight", "1e-4",
    "--learning-rate", "3e-3", "--warmup-steps", "100", "--lr-schedule", "constant", "--attention", "xla",
    "--optimizer", "adamw", "--no-mlp-conv", "--ema-decay", "0.995", "--adam-b2", "0.99",
    "--weight-decay", "1e-3",
]  # fmt: skip
LOCAL = ["--conv-width", "7", "--attention", "reference"]
COSINE = ["--lr-schedule", "cosine", "--lr-floor", "0.1"]
MLM = ["--elbo-weight", "0", "--ce-weight", "1"]
MIX = ["--ce-weight", "1"]
RELU2 = [*LOCAL, *COSINE, *MIX, "--learning-rate", "6e-3", "--activation", "relu2"]
MUON16 = [*RELU2, "--optimizer", "muon", "--batch-size", "16"]
DEFAULT_540B707 = [
    *MUON16,
    "--mlp-conv",
    "--batch-size",
    "8",
    "--learning-rate",
    "1.2e-2",
    "--lr-floor",
    "0.3",
]
DEFAULT_8994312 = [*DEFAULT_540B707, "--num-heads", "2"]
DEFAULT_D6ABE4C = [*DEFAULT_8994312, "--elbo-weight", "0", "--ema-decay", "0.998"]
LONG = ["--batch-size", "16", "--width", "192", "--depth", "3", "--num-heads", "3", "--mlp-width", "768"]
LONG += ["--warmup-steps", "200"]
# cpu-long as of 978c2dc: its shape on the default's recipe of b324e9d.
LONG_978C2DC = [*DEFAULT_D6ABE4C, *LONG, "--adam-b2", "0.95", "--weight-decay", "3e-2"]
LONG_H2 = [*LONG_978C2DC, "--num-heads", "2"]
LONG_F3738D6 = [*LONG_978C2DC, "--chars-per-token", "2", "--matmuls", "bfloat16"]
LONG_H2_B32 = [*LONG_H2, "--batch-size", "32", "--warmup-steps", "100", "--ema-decay", "0.996"]

# name -> (what it tests, its flags on top of OLD_DEFAULT). The first recipe is the reference of the
# paired differences.
RECIPES: dict[str, tuple[str, list[str]]] = {
    "old-default": ("the CPU default before issue 12 (the paper's network at 2x128)", []),
    "reference-attn": ("old default, attention by einsum+softmax (speed only)", ["--attention", "reference"]),
    "conv7": ("+ a residual depthwise convolution of width 7 before each attention", [*LOCAL]),
    "rotary": (
        "old default with rotary embeddings instead (no convolution)",
        ["--rotary", "--attention", "reference"],
    ),
    "conv7-rotary": ("conv7 + rotary embeddings", [*LOCAL, "--rotary"]),
    "conv7-cosine": ("conv7 + cosine decay to 0.1 of the peak", [*LOCAL, *COSINE]),
    "conv7-cosine-mlm": ("conv7-cosine trained on the plain masked cross-entropy", [*LOCAL, *COSINE, *MLM]),
    "conv7-cosine-mix": ("conv7-cosine, ELBO + masked cross-entropy (1:1)", [*LOCAL, *COSINE, *MIX]),
    # Round 2: the optimiser and the shape, on top of conv7-cosine-mix.
    "mix-lr6e-3": (
        "conv7-cosine-mix at twice the peak rate",
        [*LOCAL, *COSINE, *MIX, "--learning-rate", "6e-3"],
    ),
    "mix-ema0.98": (
        "conv7-cosine-mix with EMA decay 0.98 (a shorter lag)",
        [*LOCAL, *COSINE, *MIX, "--ema-decay", "0.98"],
    ),
    "mix-depth4": ("conv7-cosine-mix with 4 blocks", [*LOCAL, *COSINE, *MIX, "--depth", "4"]),
    "mix-batch16": (
        "conv7-cosine-mix with batches of 16 (twice the steps)",
        [*LOCAL, *COSINE, *MIX, "--batch-size", "16"],
    ),
    # Round 3: on top of mix-lr6e-3.
    "mix-lr1e-2": ("conv7-cosine-mix at peak rate 1e-2", [*LOCAL, *COSINE, *MIX, "--learning-rate", "1e-2"]),
    "mix-lr6e-3-conv15": (
        "mix-lr6e-3 with convolutions of width 15",
        [*LOCAL, *COSINE, *MIX, "--learning-rate", "6e-3", "--conv-width", "15"],
    ),
    "mix-lr6e-3-batch16": (
        "mix-lr6e-3 with batches of 16",
        [*LOCAL, *COSINE, *MIX, "--learning-rate", "6e-3", "--batch-size", "16"],
    ),
    # Round 4: speed and size at fixed compute, on top of mix-lr6e-3 (the default at the time).
    "mix-relu2": ("mix-lr6e-3 with squared-ReLU MLPs (no tanh: a cheaper step)", RELU2),
    "mix-width192": (
        "mix-lr6e-3 at width 192 (6 heads, MLP 768)",
        [
            *LOCAL,
            *COSINE,
            *MIX,
            "--learning-rate",
            "6e-3",
            "--width",
            "192",
            "--num-heads",
            "6",
            "--mlp-width",
            "768",
        ],
    ),
    "mix-mlp256": (
        "mix-lr6e-3 with MLPs of width 256 (a cheaper step)",
        [*LOCAL, *COSINE, *MIX, "--learning-rate", "6e-3", "--mlp-width", "256"],
    ),
    # Round 5: the optimiser, on top of mix-relu2 (the default since 78e6f38).
    "relu2-muon": (
        "mix-relu2 with Muon for the blocks' matrices (peak 0.02)",
        [*RELU2, "--optimizer", "muon"],
    ),
    "relu2-muon-lr5e-2": (
        "mix-relu2 with Muon for the blocks' matrices (peak 0.05)",
        [*RELU2, "--optimizer", "muon", "--muon-learning-rate", "5e-2"],
    ),
    # Round 6: on top of relu2-muon.
    "muon-lr1e-2": (
        "relu2-muon at Muon peak 0.01",
        [*RELU2, "--optimizer", "muon", "--muon-learning-rate", "1e-2"],
    ),
    "muon-batch16": ("relu2-muon with batches of 16", MUON16),
    "muon-depth3": ("relu2-muon with 3 blocks", [*RELU2, "--optimizer", "muon", "--depth", "3"]),
    # Round 7: on top of muon-batch16.
    "muon-b16-mlpconv": ("muon-batch16 with a second convolution before each MLP", [*MUON16, "--mlp-conv"]),
    "muon-b16-floor0": ("muon-batch16 with the cosine decaying to 0", [*MUON16, "--lr-floor", "0"]),
    "muon-b16-muon3e-2": ("muon-batch16 at Muon peak 0.03", [*MUON16, "--muon-learning-rate", "3e-2"]),
    # Round 8: on top of muon-b16-mlpconv.
    "mlpconv-batch8": ("muon-b16-mlpconv with batches of 8", [*MUON16, "--mlp-conv", "--batch-size", "8"]),
    "mlpconv-adam1.2e-2": (
        "muon-b16-mlpconv with AdamW's peak (embeddings, head, norms, convolutions) at 1.2e-2",
        [*MUON16, "--mlp-conv", "--learning-rate", "1.2e-2"],
    ),
    "mlpconv-floor0.3": (
        "muon-b16-mlpconv decaying to 30% of the peak",
        [*MUON16, "--mlp-conv", "--lr-floor", "0.3"],
    ),
    # Round 9: on top of the default of 540b707 (round 8's three gains together).
    "default-540b707": ("the OA-ARDM default of 540b707", DEFAULT_540B707),
    "b8-batch4": ("the default of 540b707 with batches of 4", [*DEFAULT_540B707, "--batch-size", "4"]),
    "b8-heads2": ("the default of 540b707 with 2 heads of width 64", [*DEFAULT_540B707, "--num-heads", "2"]),
    "b8-muon1.5e-2": (
        "the default of 540b707 at Muon peak 0.015",
        [*DEFAULT_540B707, "--muon-learning-rate", "1.5e-2"],
    ),
    # Round 10: on top of the default of 8994312 (round 9's two heads).
    "default-8994312": ("the OA-ARDM default of 8994312", DEFAULT_8994312),
    "h2-heads1": ("the default of 8994312 with 1 head of width 128", [*DEFAULT_8994312, "--num-heads", "1"]),
    "h2-mlp384": ("the default of 8994312 with MLPs of width 384", [*DEFAULT_8994312, "--mlp-width", "384"]),
    "h2-width160": (
        "the default of 8994312 at width 160 (2 heads of 80, MLP 640)",
        [*DEFAULT_8994312, "--width", "160", "--mlp-width", "640"],
    ),
    # Round 11: on top of the default of 50913c7 (the same recipe as 8994312).
    "default-50913c7": ("the OA-ARDM default of 50913c7", DEFAULT_8994312),
    "stratified": (
        "the default with each batch's steps t stratified (one in each eighth of 0..D-1)",
        [*DEFAULT_8994312, "--stratify-steps"],
    ),
    "ema0.998": ("the default with EMA decay 0.998", [*DEFAULT_8994312, "--ema-decay", "0.998"]),
    "floor0.6": ("the default decaying to 60% of the peak", [*DEFAULT_8994312, "--lr-floor", "0.6"]),
    # Round 12, on top of the same default.
    "qk-norm": ("the default with RMS-normalised queries and keys", [*DEFAULT_8994312, "--qk-norm"]),
    "zero-init": (
        "the default with each block's output layers starting at zero",
        [*DEFAULT_8994312, "--zero-init"],
    ),
    "ce2": ("the default with the masked cross-entropy at weight 2", [*DEFAULT_8994312, "--ce-weight", "2"]),
    "qk-norm-muon3e-2": (
        "qk-norm at Muon peak 0.03",
        [*DEFAULT_8994312, "--qk-norm", "--muon-learning-rate", "0.03"],
    ),
    # Round 13, on top of round 12's winner (ce2).
    "ce4": ("the default with the masked cross-entropy at weight 4", [*DEFAULT_8994312, "--ce-weight", "4"]),
    "ce-only": (
        "the default trained on the masked cross-entropy alone (ELBO weight 0)",
        [*DEFAULT_8994312, "--elbo-weight", "0"],
    ),
    "ce-only-ema0.998": ("the OA-ARDM default since round 13: ce-only with EMA decay 0.998", DEFAULT_D6ABE4C),
    # Round 14, on top of the default of d6abe4c.
    "masked-steps": (
        "the default with t drawn in proportion to its masked positions (the loss reweighted to match)",
        [*DEFAULT_D6ABE4C, "--step-sampling", "masked"],
    ),
    "d6-rotary": ("the default with rotary position embeddings", [*DEFAULT_D6ABE4C, "--rotary"]),
    "d6-muon3e-2": ("the default at Muon peak 0.03", [*DEFAULT_D6ABE4C, "--muon-learning-rate", "3e-2"]),
    "d6-rotary-muon3e-2": (
        "the default with rotary embeddings at Muon peak 0.03",
        [*DEFAULT_D6ABE4C, "--rotary", "--muon-learning-rate", "3e-2"],
    ),
    # Round 15, on top of the default of d6abe4c (with the written-out convolution gradient).
    "mask-power0.5": (
        "the default with each masked token's weight times the masked fraction^0.5",
        [*DEFAULT_D6ABE4C, "--ce-mask-power", "0.5"],
    ),
    "mask-power1": (
        "the default with each masked token's weight times the masked fraction",
        [*DEFAULT_D6ABE4C, "--ce-mask-power", "1"],
    ),
    "d6-time": ("the default with the step t fed to the network", [*DEFAULT_D6ABE4C, "--time-conditioning"]),
    # Round 16: on top of the default of d6abe4c.
    "d6-split-qkv": (
        "the default with Muon orthogonalising the query, key and value matrices separately",
        [*DEFAULT_D6ABE4C, "--muon-split-qkv"],
    ),
    "d6-wd3e-2": (
        "the default with decoupled weight decay 0.03",
        [*DEFAULT_D6ABE4C, "--weight-decay", "3e-2"],
    ),
    "d6-b2-wd": (
        "the default with Adam's second-moment decay 0.95 and weight decay 0.03 (the default since round 17)",
        [*DEFAULT_D6ABE4C, "--adam-b2", "0.95", "--weight-decay", "3e-2"],
    ),
    # cpu-long's shape (3x192, 3 heads, MLP 768, batches of 16, warm-up 200), on its own recipe and on
    # the default's of b324e9d: is the new recipe worth a 2-hour run?
    "long-221bec9": ("the cpu-long preset's recipe (ELBO + CE 1:1, EMA 0.995)", [*DEFAULT_8994312, *LONG]),
    "long-b324e9d": (
        "cpu-long's shape on the default's recipe of b324e9d (CE alone, EMA 0.998, b2 0.95, decay 0.03)",
        LONG_978C2DC,
    ),
    # Round 19: is a bigger network than cpu-long's better at equal compute? The two bigger arms train
    # the steps that cost what the reference's cost (cost ratios timed on 2026-11-29: 1.34x, 1.71x);
    # long-h2, whose step is cheaper, trains the reference's steps (a comparison per step).
    "long-4x192": ("cpu-long's recipe with 4 blocks", [*LONG_978C2DC, "--depth", "4"]),
    "long-3x256": (
        "cpu-long's recipe at width 256 (4 heads of 64, MLP 1024)",
        [*LONG_978C2DC, "--width", "256", "--num-heads", "4", "--mlp-width", "1024"],
    ),
    "long-h2": ("cpu-long's recipe with 2 heads of 96 (was 3 of 64)", LONG_H2),
    # Round 20: on top of long-h2, per step (rotary, 4x160: about the same step cost) and per token
    # (batches of 8: twice the steps for the same characters).
    "long-h2-b8": (
        "long-h2 with batches of 8 (was 16)",
        [*LONG_H2, "--batch-size", "8"],
    ),
    "long-h2-rotary": (
        "long-h2 with rotary position embeddings",
        [*LONG_H2, "--rotary"],
    ),
    "long-h2-4x160": (
        "long-h2's recipe at 4 blocks of 160 (2 heads of 80, MLP 640; 8% fewer parameters)",
        [*LONG_H2, "--depth", "4", "--width", "160", "--mlp-width", "640"],
    ),
    # Round 21: on top of long-h2, per token (batches of 32: half the steps for the same characters,
    # so the warm-up and the EMA's horizon are halved in steps to span the same characters), at the
    # same peak rates and at both rates times 1.4 (about sqrt(2), the usual scaling for twice the batch).
    "long-h2-b32": (
        "long-h2 with batches of 32 (was 16), warm-up 100 and EMA 0.996 (the same characters)",
        LONG_H2_B32,
    ),
    "long-h2-b32-lr1.4": (
        "long-h2-b32 at both peak rates times 1.4 (AdamW 1.7e-2, Muon 0.028)",
        [*LONG_H2_B32, "--learning-rate", "1.7e-2", "--muon-learning-rate", "2.8e-2"],
    ),
    # Round 22: the rate's decay on long-h2, linear to 0 instead of cosine to 30% (decay to zero gains
    # more as the tokens per parameter grow, Bergsma et al., 2025; the 3-minute rounds 7-8 chose 30%).
    "long-h2-d2z": (
        "long-h2 with the rate decayed linearly to 0 (was a cosine to 30% of the peak)",
        [*LONG_H2, "--lr-schedule", "linear", "--lr-floor", "0"],
    ),
    # Round 23: bfloat16 matrix products in training (forward and backward, float32 accumulation), per
    # step against round 19's long-b324e9d (cpu-long's recipe): the same function up to rounding?
    "long-bf16": (
        "cpu-long's recipe (long-b324e9d) with the blocks' matrix products in bfloat16",
        [*LONG_978C2DC, "--matmuls", "bfloat16"],
    ),
    # Round 24: a gated MLP (GLU variant, Shazeer 2020) at the same parameters (hidden 512, three
    # matrices, against 768 and two), per step against round 19's long-b324e9d.
    # Round 24 too: the model's tokens are pairs of characters (729 classes, 125 positions a chunk),
    # the same characters per step, the bound in bits per character on the same chunks.
    "long-pairs": (
        "cpu-long's recipe (long-b324e9d) on pairs of characters (729 classes, 125 positions)",
        [*LONG_978C2DC, "--chars-per-token", "2"],
    ),
    "long-glu": (
        "cpu-long's recipe (long-b324e9d) with gated MLPs of hidden width 512 (the same parameters)",
        [*LONG_978C2DC, "--gated-mlp", "--mlp-width", "512"],
    ),
    # Round 25: on cpu-long's recipe as of f3738d6 (pairs, bfloat16 products), per step: the token
    # embedding's own rate (AdamW's rate times a factor; the embedding starts at unit scale, so the
    # shared 1.2e-2 moves it about 1% a step).
    "long-f3738d6": ("cpu-long's recipe of f3738d6 (pairs of characters, bfloat16 products)", LONG_F3738D6),
    "long-emb4": (
        "long-f3738d6 with the token embedding at 4 times AdamW's rate",
        [*LONG_F3738D6, "--embedding-lr-factor", "4"],
    ),
    "long-emb16": (
        "long-f3738d6 with the token embedding at 16 times AdamW's rate",
        [*LONG_F3738D6, "--embedding-lr-factor", "16"],
    ),
    "d6-adam-b2-0.95": (
        "the default with Adam's second-moment decay 0.95",
        [*DEFAULT_D6ABE4C, "--adam-b2", "0.95"],
    ),
}


def _step_counts(text: str) -> list[int]:
    """`--steps`: one count, or one per recipe, comma-separated."""
    try:
        counts = [int(n) for n in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a count or comma-separated counts") from None
    if any(n < 0 for n in counts):
        raise argparse.ArgumentTypeError(f"step counts are not negative: {text!r}")
    return counts


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], allow_abbrev=False)
    parser.add_argument("--recipes", default="all", help="comma-separated recipe names, or all (default)")
    parser.add_argument("--minutes", type=float, default=3.0, help="training minutes per recipe (default: 3)")
    parser.add_argument(
        "--steps",
        type=_step_counts,
        default=[0],
        help="train every recipe this many steps instead of --minutes (a comparison per step, for arms "
        "whose steps cost the same: no timing phase and its noise), or one count per recipe, "
        "comma-separated (equal compute by the steps' cost ratios of benchmarks/step_cost.py); "
        "default: 0, equal time",
    )
    parser.add_argument("--points", type=int, default=4, help="evaluations per recipe (default: 4)")
    parser.add_argument(
        "--eval-chunks", type=int, default=1000, help="test chunks per evaluation (default: 1000)"
    )
    parser.add_argument(
        "--data-dir", default=None, help="text8 directory (else $EQDD_DATA_DIR, else the cache)"
    )
    parser.add_argument(
        "--out-dir", default="runs/text8_recipes", help="output directory (default: %(default)s)"
    )
    parser.add_argument(
        "--extra",
        default="",
        help='flags added to every recipe, e.g. "--seq-len 128" (default: none)',
    )
    parser.add_argument("--list", action="store_true", help="list the recipes and exit")
    return parser


def _config(flags: list[str], num_steps: int, run_dir: str) -> Config:
    # single characters unless a recipe says otherwise: the recipes were measured so, before pairs
    # became the experiment's default
    return parse_config(
        Config,
        [
            "--chars-per-token",
            "1",
            *flags,
            "--num-steps",
            str(num_steps),
            "--no-progress",
            "--run-dir",
            run_dir,
        ],
        PRESETS,
        "cpu",
        "",
    )


def _start(flags: list[str], num_steps: int, splits, run_dir: str):
    """A recipe's config, objective, fresh state, training step and batches for `num_steps` steps."""
    config = _config(flags, num_steps, run_dir)
    model, objective = build(config, jax.random.PRNGKey(config.seed))
    optimizer = config.make_optimizer()
    state = TrainState.create(model, optimizer, jax.random.PRNGKey(config.seed + 1), config.num_positions)
    step = training_step(config, objective, optimizer)
    return config, objective, state, step, text8_runs.training_batches(config, splits)


def _steps_per_second(
    flags: list[str], splits, run_dir: str, warm_steps: int = 5, timed_steps: int = 25
) -> float:
    """Steps per second of a recipe after compilation and a few warm-up steps (on a throwaway state)."""
    _, _, state, step, batches = _start(flags, 10_000, splits, run_dir)
    for _ in range(warm_steps):
        state, metrics = step(state, next(batches))
        float(metrics["loss"])
    begin = time.perf_counter()
    for _ in range(timed_steps):
        state, metrics = step(state, next(batches))
        float(metrics["loss"])
    return timed_steps / (time.perf_counter() - begin)


def run_recipe(
    name: str, flags: list[str], steps: int, args, splits, chunks: np.ndarray, run_dir: str
) -> dict:
    """Train one recipe for `steps` steps (0: for `args.minutes`) and evaluate it at `args.points`
    evenly spaced steps."""
    num_steps = steps or max(args.points, int(args.minutes * 60 * _steps_per_second(flags, splits, run_dir)))
    config, objective, state, step, batches = _start(flags, num_steps, splits, run_dir)
    estimate = text8_runs.per_character(objective.estimate, config.chars_per_token)
    chunks = text8.group(chunks, config.chars_per_token)  # the same characters, as the model's tokens
    marks = {round(num_steps * (i + 1) / args.points) for i in range(args.points)}
    points, final, seconds, tokens = [], None, 0.0, 0
    for index in range(1, num_steps + 1):
        batch = next(batches)
        begin = time.perf_counter()
        state, metrics = step(state, batch)
        loss = float(metrics["loss"])
        if index > 1:  # the first step compiles
            seconds += time.perf_counter() - begin
            tokens += batch.size * config.chars_per_token  # characters
        if index in marks:
            final = evaluate_bound(
                estimate,
                state.ema_model,
                chunks,
                config.num_positions,
                passes=1,
                batch_size=100,
                key=jax.random.PRNGKey(1234),
                progress=False,
            )
            points.append({"step": index, "minutes": seconds / 60, "bpc": final.bpd, "stderr": final.stderr})
            print(
                f"  {name}: step {index}/{num_steps}, {seconds / 60:.2f} min, loss {loss:.3f}, "
                f"test bound {final.bpd:.4f} ± {final.stderr:.4f}",
                flush=True,
            )
    return {
        "name": name,
        "flags": flags,
        "steps": num_steps,
        "tokens_per_s": tokens / seconds,
        "points": points,
        "final": final,
    }


def _table(results: list[dict], args) -> str:
    reference = results[0]
    best = min(results, key=lambda r: r["final"].bpd)
    budget = (
        "/".join(f"{n:,}" for n in args.steps) + " steps"
        if any(args.steps)
        else f"{args.minutes:g} training minutes"
    )
    lines = [
        f"{budget} per recipe; bound on the first {args.eval_chunks} test chunks "
        f"(one pass, EMA); differences paired with the first recipe and with the best ({best['name']}).",
        "",
        "| recipe | steps | tokens/s | speed vs first | test bpc | vs first (paired) | vs best (paired) |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in results:
        final = r["points"][-1]
        deltas = [paired_difference(r["final"], other["final"]) for other in (reference, best)]
        speed = r["tokens_per_s"] / reference["tokens_per_s"]
        cells = [
            r["name"],
            str(r["steps"]),
            f"{r['tokens_per_s']:,.0f}",
            f"{speed:.2f}x",
            f"{final['bpc']:.4f} ± {final['stderr']:.4f}",
            *(f"{d:+.4f} ± {se:.4f}" for d, se in deltas),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _plot(results: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(7, 4.5))
    for r in results:
        minutes = [p["minutes"] for p in r["points"]]
        bpc = np.array([p["bpc"] for p in r["points"]])
        stderr = np.array([p["stderr"] for p in r["points"]])
        axis.errorbar(minutes, bpc, yerr=stderr, marker="o", capsize=2, label=r["name"])
    axis.set_xlabel("training minutes (2 CPU cores)")
    axis.set_ylabel("test bound (bits per character)")
    axis.set_title("text8 OA-ARDM recipes at equal wall-clock")
    axis.grid(alpha=0.3)
    axis.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def main(argv=None) -> list[dict]:
    args = _parser().parse_args(argv)
    if args.list:
        for name, (what, flags) in RECIPES.items():
            print(f"{name}: {what}\n    {' '.join(flags) or '(nothing added)'}")
        return []
    names = list(RECIPES) if args.recipes == "all" else args.recipes.split(",")
    unknown = [n for n in names if n not in RECIPES]
    if unknown:
        raise SystemExit(f"unknown recipes {unknown}; choose from {', '.join(RECIPES)}")
    if len(args.steps) not in (1, len(names)):
        raise SystemExit(
            f"--steps gives {len(args.steps)} counts for {len(names)} recipes: give one, or one each"
        )
    steps = args.steps * len(names) if len(args.steps) == 1 else args.steps
    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    data_flags = ["--data-dir", args.data_dir] if args.data_dir else []
    base = _config([*data_flags, *args.extra.split()], 10, "unused")
    splits = text8_runs.load(base)
    chunks = text8_runs.test_chunks(base, splits)[: args.eval_chunks]
    results = []
    with tempfile.TemporaryDirectory() as run_dir:
        for name, count in zip(names, steps, strict=True):
            what, flags = RECIPES[name]
            print(f"{name}: {what}", flush=True)
            all_flags = [*data_flags, *OLD_DEFAULT, *flags, *args.extra.split()]
            results.append(run_recipe(name, all_flags, count, args, splits, chunks, run_dir))
    table = _table(results, args)
    print(table)
    (out_dir / "recipes.md").write_text(table + "\n")
    serialisable = [
        {**{k: v for k, v in r.items() if k != "final"}, "per_chunk": r["final"].per_chunk.tolist()}
        for r in results
    ]
    (out_dir / "recipes.json").write_text(
        json.dumps(
            {
                "minutes": args.minutes,
                "steps": steps if len(set(steps)) > 1 else steps[0],
                "recipes": serialisable,
            },
            indent=2,
        )
    )
    _plot(results, out_dir / "recipes.png")
    print(f"wrote {out_dir}/recipes.md, recipes.json, recipes.png")
    return results


if __name__ == "__main__":
    main()
