"""`eqdd sample`, `eqdd evaluate` and `eqdd export`: draw from a trained run, measure its bound on any
data, and write its model as one file."""

import argparse
import json
import math
import sys
from pathlib import Path

import jax
import numpy as np

from eqdd import __version__, compression
from eqdd._progress import progress
from eqdd.cli._files import check_output, write_atomically
from eqdd.config import ConfigError
from eqdd.data import audio, images, text8
from eqdd.runs import inference, load_run, save_model
from eqdd.runs import text8 as text8_runs
from eqdd.runs.registry import Run

UNKNOWN = "_"  # a position of an infilling template left to the model
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm")


def add_commands(commands, checkpoint_help: str) -> None:
    """The two commands' parsers, under `commands` (argparse subparsers)."""
    budget_help = (
        "network calls per example (per stage of an Upscale ARDM) with the DP policy planned on the run's "
        "L_t (default: {}); not for GGM runs, which take their T steps"
    )
    sample = commands.add_parser(
        "sample",
        help="draw samples from a run (text to stdout or a file, images to a PNG grid, audio to a WAV)",
        description="Draw samples from a run: text runs print one sample per line (or write them to "
        "--output), image runs write a PNG grid to --output, audio runs one WAV file of the clips one "
        "after another, a quarter second of silence between them.",
    )
    sample.add_argument("--checkpoint", metavar="RUN_DIR", help=checkpoint_help)
    sample.add_argument(
        "--num-samples", type=int, default=4, metavar="N", help="samples (default: %(default)s)"
    )
    sample.add_argument(
        "--budget",
        type=int,
        help=budget_help.format("one call per step for text runs, the run's --sample-budget for image runs"),
    )
    sample.add_argument(
        "--infill",
        metavar="TEMPLATE",
        help=f"text runs (OA-ARDM or GGM): keep the template's characters and sample the positions marked "
        f"{UNKNOWN!r} and every position after its end (at most D characters)",
    )
    sample.add_argument(
        "--output", type=Path, metavar="FILE", help="write here (a PNG for image runs, a WAV for audio runs)"
    )
    sample.add_argument("--seed", type=int, default=0, help="PRNG seed (default: %(default)s)")
    sample.add_argument(
        "--batch-size", type=int, default=16, help="samples per compiled call (default: %(default)s)"
    )
    sample.add_argument("-f", "--force", action="store_true", help="overwrite --output if it exists")
    sample.add_argument(
        "--progress", action=argparse.BooleanOptionalAction, default=True, help="progress bar"
    )
    sample.set_defaults(run=_sample)

    evaluate = commands.add_parser(
        "evaluate",
        help="the run's bound (bits per character or dimension) with its standard error, on any data",
        description="The run's negative-ELBO bound in bits per character (text), dimension (images) or "
        "16-bit sample (audio), "
        "with its standard error over examples, on its test split or on --data.",
    )
    evaluate.add_argument("--checkpoint", metavar="RUN_DIR", help=checkpoint_help)
    evaluate.add_argument("--budget", type=int, help=budget_help.format("the full bound, one call per step"))
    evaluate.add_argument(
        "--data",
        type=Path,
        metavar="PATH",
        help="a text file in the text8 alphabet (cut into chunks of D characters, the rest dropped), a "
        "folder of images of the run's size, or a WAV file or folder of them at the run's rate (padded or "
        "cut to D samples) (default: the run's test split)",
    )
    evaluate.add_argument("--passes", type=int, default=2, help="passes over the data (default: %(default)s)")
    evaluate.add_argument(
        "--max-examples", type=int, default=0, help="evaluate on the first N examples only (0: all)"
    )
    evaluate.add_argument(
        "--batch-size", type=int, default=100, help="examples per compiled call (default: %(default)s)"
    )
    evaluate.add_argument("--seed", type=int, default=0, help="PRNG seed (default: %(default)s)")
    evaluate.add_argument(
        "--progress", action=argparse.BooleanOptionalAction, default=True, help="progress bar"
    )
    evaluate.set_defaults(run=_evaluate)

    export = commands.add_parser(
        "export",
        help="write a run's model as one file, which every eqdd command and eqdd.load_run open",
        description="Write the model of a run's newest checkpoint (EMA network, tracked L_t, settings) as "
        "one immutable, checksummed file: it needs neither the run directory nor the training data.",
    )
    export.add_argument("output", type=Path, metavar="OUT")
    export.add_argument("--checkpoint", required=True, metavar="RUN_DIR", help=checkpoint_help)
    export.add_argument(
        "--note", default="", help="where the model came from (commit, data, command), kept in the file"
    )
    export.add_argument("-f", "--force", action="store_true", help="overwrite OUT if it exists")
    export.set_defaults(run=_export)


def _positive(**values: int) -> None:
    for name, value in values.items():
        if value < 1:
            raise ConfigError(f"--{name.replace('_', '-')} must be at least 1, got {value}")


def _template(template: str, run: Run) -> tuple[np.ndarray, np.ndarray]:
    """Which positions an infilling template gives, and their tokens."""
    if run.kind != "text":
        raise ConfigError("--infill is for text runs")
    length, group = run.config.seq_len, run.config.chars_per_token
    if len(template) > length:
        raise ConfigError(f"--infill has {len(template)} characters; the run's sequences have {length}")
    padded = template.ljust(length, UNKNOWN)
    known = np.array([c != UNKNOWN for c in padded]).reshape(-1, group)
    if known.all():
        raise ConfigError(f"--infill leaves nothing to sample: mark positions with {UNKNOWN!r}")
    if np.any(known.any(axis=1) & ~known.all(axis=1)):
        raise ConfigError(
            f"this run models characters in groups of {group} (positions {group}i to {group}i+{group - 1}):"
            f" --infill must give or leave out ({UNKNOWN!r}) each group whole, got {template!r}"
        )
    try:
        tokens = text8.encode(padded.replace(UNKNOWN, " ").encode("ascii"))
    except (UnicodeEncodeError, text8.Text8Error):
        raise ConfigError(
            f"--infill must hold lowercase a-z, spaces and {UNKNOWN!r} (the text8 alphabet), got {template!r}"
        ) from None
    return known[:, 0], text8.group(tokens, group)


def _sample(args) -> None:
    _positive(num_samples=args.num_samples, batch_size=args.batch_size)
    if args.output is not None:
        check_output(None, args.output, args.force)
    run = load_run(args.checkpoint)
    if run.kind == "images" and args.output is None:
        raise ConfigError("an image run writes its samples as a PNG grid: give --output FILE.png")
    if run.kind == "audio" and args.output is None:
        raise ConfigError("an audio run writes its samples as one WAV file: give --output FILE.wav")
    known = tokens = None
    if args.infill is not None:
        known, tokens = _template(args.infill, run)
    budget = inference.default_sample_budget(run) if args.budget is None else args.budget
    policy = None
    if budget is not None:
        _positive(budget=budget)
        given = int(known.sum()) if known is not None else 0
        policy = inference.plan_policies(run, [budget], given).popitem()[1]
    calls = run.num_steps if policy is None else policy.size
    batch = min(args.batch_size, args.num_samples)
    print(
        f"compiling the sampler ({calls:,} network calls per batch of {batch})…", file=sys.stderr, flush=True
    )
    drawn = []
    with progress(math.ceil(args.num_samples / batch), "sampling", "batch", args.progress) as bar:
        for index in range(0, args.num_samples, batch):
            key = jax.random.fold_in(jax.random.PRNGKey(args.seed), index)
            drawn.append(inference.draw(run, key, batch, policy, known, tokens)[:, -1])
            bar.update(1)
    samples = np.concatenate(drawn)[: args.num_samples]
    if run.kind == "images":
        images.save_grid(samples.reshape(-1, *run.image_shape).astype(np.uint8), args.output)
        print(f"wrote {len(samples)} samples to {args.output}", file=sys.stderr)
        return
    if run.kind == "audio":
        rate = run.config.sample_rate
        gap = np.full((len(samples), rate // 4), audio.SILENCE, samples.dtype)
        clips = audio.from_classes(np.concatenate([samples, gap], axis=1).reshape(-1)[: -(rate // 4)])
        write_atomically(args.output, audio.wav_bytes(clips, rate))
        print(f"wrote {len(samples)} samples to {args.output} ({rate:,} Hz)", file=sys.stderr)
        return
    text = "".join(text8.decode(text8.ungroup(s, run.config.chars_per_token)) + "\n" for s in samples)
    if args.output is None:
        sys.stdout.write(text)
    else:
        write_atomically(args.output, text.encode("ascii"))
        print(f"wrote {len(samples)} samples to {args.output}", file=sys.stderr)


def _image_folder(folder: Path, run: Run) -> np.ndarray:
    """Every image under `folder` (any depth, sorted by path), flattened to `(N, H·W·C)`."""
    paths = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not paths:
        raise ConfigError(f"--data {folder} holds no image files ({', '.join(IMAGE_SUFFIXES)})")
    pixels = []
    for path in paths:
        try:
            image = compression.read_image(path.read_bytes())
        except compression.CompressionError as error:
            raise ConfigError(f"--data: {path}: {error}") from None
        if image.shape != run.image_shape:
            raise ConfigError(
                f"--data: {path} is {image.shape} (height, width, channels); the run models {run.image_shape}"
            )
        pixels.append(image.reshape(-1))
    return np.stack(pixels).astype(np.int32)


def _wav_clips(path: Path, run: Run) -> np.ndarray:
    """A WAV file, or every WAV file under a folder (any depth, sorted by path), as clips of the run's
    length (padded with silence or cut, as its training clips were), `(N, D)`."""
    paths = sorted(p for p in path.rglob("*.wav") if p.is_file()) if path.is_dir() else [path]
    if not paths:
        raise ConfigError(f"--data {path} holds no .wav files")
    rate, clips = run.config.sample_rate, []
    for wav in paths:
        try:
            samples, found = audio.read_wav(wav.read_bytes())
        except audio.AudioDataError as error:
            raise ConfigError(f"--data: {wav}: {error}") from None
        if found != rate:
            raise ConfigError(f"--data: {wav} is at {found:,} Hz; the run models {rate:,} Hz audio")
        clips.append(samples)
    return audio.fixed_length(clips, run.num_positions).astype(np.int32)


def _examples(args, run: Run) -> tuple[np.ndarray, str]:
    """The examples `(N, D)` to evaluate on, and what they are."""
    config = run.config
    if args.data is None:
        if run.kind == "text":
            splits = text8.load(config.data_dir)
            return text8_runs.chunks_of(config, splits.test), f"the test split of {splits.describe()}"
        if run.kind == "audio":
            splits = audio.load(config.dataset, config.data_dir, run.num_positions)
        else:
            splits = images.load(config.dataset, config.data_dir)
        return splits.test.reshape(len(splits.test), -1).astype(
            np.int32
        ), f"the test split of {splits.describe()}"
    if run.kind == "audio":
        return _wav_clips(args.data, run), str(args.data)
    if run.kind == "images":
        if not args.data.is_dir():
            raise ConfigError(f"--data {args.data}: an image run is evaluated on a folder of images")
        return _image_folder(args.data, run), str(args.data)
    tokens = compression.encode_text(args.data.read_bytes())
    chunks = text8_runs.chunks_of(config, tokens)
    if not len(chunks):
        raise ConfigError(
            f"--data {args.data} has {len(tokens):,} characters, fewer than one chunk of {config.seq_len}"
        )
    return chunks, str(args.data)


def _evaluate(args) -> None:
    _positive(passes=args.passes, batch_size=args.batch_size)
    if args.budget is not None:
        _positive(budget=args.budget)
    run = load_run(args.checkpoint)
    policy = None if args.budget is None else inference.plan_policies(run, [args.budget]).popitem()[1]
    examples, source = _examples(args, run)
    if args.max_examples > 0:
        examples = examples[: args.max_examples]
    print(f"compiling the bound on {len(examples):,} examples…", file=sys.stderr, flush=True)
    report, calls = inference.evaluate(
        run,
        examples,
        policy,
        passes=args.passes,
        batch_size=args.batch_size,
        key=jax.random.PRNGKey(args.seed),
        progress=args.progress,
    )
    unit = {"text": "character", "images": "dimension", "audio": "16-bit sample"}[run.kind]
    how = "its full bound" if args.budget is None else f"the DP policy of {args.budget} calls"
    size = run.config.seq_len if run.kind == "text" else run.num_positions
    print(
        f"{report.bpd:.4f} ± {report.stderr:.4f} bits per {unit} on {source}: {report.num_chunks:,} "
        f"examples of {size:,}, {args.passes} passes, {how} ({calls:,} network calls per "
        "example), EMA parameters"
    )


def _export(args) -> None:
    check_output(Path(args.checkpoint), args.output, args.force)
    run = load_run(args.checkpoint)
    provenance = {"note": args.note, "eqdd": __version__, "source": str(args.checkpoint)}
    results = Path(args.checkpoint) / "results.json"
    if results.is_file():  # what the run measured, on what data
        saved = json.loads(results.read_text())
        test = {k: v for k, v in (saved.get("test") or {}).items() if k != "step_losses"}
        kept = {key: saved.get(key) for key in ("corpus", "steps", "codec_order")}
        provenance["results"] = {**kept, "test": test}
    save_model(run, args.output, provenance)
    print(
        f"wrote the {run.experiment} model of {args.checkpoint} (step {run.step:,}) to {args.output} "
        f"({args.output.stat().st_size:,} bytes)",
        file=sys.stderr,
    )
