"""The `eqdd` command: lossless compression of text and images with a trained OA-ARDM or Upscale ARDM.

    eqdd compress IN OUT --checkpoint RUN_DIR [--budget K]
    eqdd decompress IN OUT --checkpoint RUN_DIR

RUN_DIR is a run of `experiments/text8_oaardm.py` or of `experiments/cifar10_ardm.py` (OA or Upscale;
its EMA parameters are used); which one is read from its saved config. For a text run, IN must be
plain text in the text8 alphabet (lowercase a-z and space); for an image run, IN is an image file
(PNG or any format Pillow reads) of the run's size and channels, and decompress writes a PNG. OUT is
written only once everything has succeeded (decompression: after every check), through a temporary
file renamed into place. Errors end the command with status 1 and a message; nothing is written then.
OUT must not be IN, and an existing OUT is refused unless `--force` is given (as gzip and zstd do);
both are checked, with OUT's directory, before any work.
"""

import argparse
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

from eqdd import compression
from eqdd.compression import container
from eqdd.compression.model import describe_shape
from eqdd.config import ConfigError
from eqdd.data import images, pipeline
from eqdd.runs import codec, text8_oaardm
from eqdd.runs import images as image_runs
from eqdd.runs.codec import DEFAULT_BUDGET
from eqdd.train import session

DEFAULT_ORDERS = 5  # candidate orders scored on the input when the run chose none


def saved_config(run_dir: str | os.PathLike) -> dict:
    """The config a run was started with, as saved in its newest checkpoint (a dict).

    Raises:
        CompressionError: when `run_dir` holds no checkpoint.
    """
    try:
        return session.saved_settings(run_dir)
    except FileNotFoundError:
        raise compression.CompressionError(
            f"{run_dir} holds no checkpoint; give the run directory of experiments/text8_oaardm.py "
            "or experiments/cifar10_ardm.py"
        ) from None


def run_kind(config: dict) -> str:
    """`"text"` for a run of the text8 experiment (its config has `seq_len`), `"images"` for one of the
    image experiment (`dataset`).

    Raises:
        CompressionError: for any other run.
    """
    if "seq_len" in config:
        return "text"
    if "dataset" not in config:
        raise compression.CompressionError("the checkpoint is neither a text8 run nor an image run")
    return "images"


def run_image_shape(config: dict, run_dir: str | os.PathLike) -> tuple[int, int, int]:
    """`(H, W, C)` of the image run in `run_dir`, whose saved config is `config`
    ([`eqdd.runs.images.image_shape`][]).

    Raises:
        CompressionError: when the run's image folder cannot be read.
        ConfigError: when the config has settings this version does not know.
    """
    try:
        return image_runs.image_shape(session.config_from_saved(config, image_runs.Config, run_dir))
    except images.ImageDataError as error:
        raise compression.CompressionError(
            f"the run was trained on an image folder, whose image size is read from the folder: {error}"
        ) from None


def load_model(run_dir: str | os.PathLike) -> compression.CodecModel:
    """The codec's view of a run of `experiments/text8_oaardm.py` or `experiments/cifar10_ardm.py`
    ([`eqdd.runs.codec.codec_model`][]).

    Raises:
        CompressionError: when `run_dir` holds no checkpoint of either experiment, or the checkpoint does
            not fit the image size of its dataset.
        ConfigError: when the run has settings this version of eqdd does not know.
    """
    config = saved_config(run_dir)
    if run_kind(config) == "text":
        config, state, objective = text8_oaardm.load_run(run_dir)
        return codec.codec_model(config, state, objective, config.seq_len)
    shape = run_image_shape(config, run_dir)
    try:
        config, state, objective, shape = image_runs.load_run(run_dir)
    except ConfigError:
        raise
    except ValueError:
        raise compression.CompressionError(
            f"the checkpoint in {run_dir} does not fit {describe_shape(shape)} images, the size of its "
            f"dataset {config['dataset']}"
        ) from None
    return codec.codec_model(config, state, objective, int(np.prod(shape)), shape)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="eqdd", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    for name, help in (
        ("compress", "compress a text file in the text8 alphabet, or an image"),
        ("decompress", "restore a file written by `eqdd compress`"),
    ):
        command = commands.add_parser(name, help=help, description=help)
        command.add_argument("input", type=Path, metavar="IN")
        command.add_argument("output", type=Path, metavar="OUT")
        command.add_argument(
            "--checkpoint",
            required=True,
            metavar="RUN_DIR",
            help="run directory of experiments/text8_oaardm.py or experiments/cifar10_ardm.py",
        )
        command.add_argument(
            "--progress", action=argparse.BooleanOptionalAction, default=True, help="progress bar"
        )
        command.add_argument("-f", "--force", action="store_true", help="overwrite OUT if it exists")
    compress = commands.choices["compress"]
    compress.add_argument(
        "--budget",
        type=int,
        help=f"network calls per chunk of D characters or per image, and per stage of an Upscale ARDM "
        f"(default: {DEFAULT_BUDGET}, at most D)",
    )
    compress.add_argument(
        "--orders",
        type=int,
        help="score N seeded orders on the input and take the best (default: the order the run chose on "
        f"its training data, else {DEFAULT_ORDERS} on the input)",
    )
    compress.add_argument(
        "--order-chunks",
        type=int,
        default=8,
        help="the orders are scored on the first N full chunks of the input (default: %(default)s)",
    )
    compress.add_argument(
        "--batch-size", type=int, default=16, help="chunks per network call (default: %(default)s)"
    )
    compress.add_argument(
        "--verify", action="store_true", help="decompress the result and compare before writing it"
    )
    return parser


def _check_output(source: Path, target: Path, force: bool) -> None:
    """Refuse, before any work, an output that is the input, that exists (unless `force`), or whose
    directory cannot take a new file.

    Raises:
        OSError: with a message naming `target`.
    """
    if target.exists() and source.exists() and os.path.samefile(source, target):
        raise OSError(f"{target} is the input file; write the output elsewhere")
    if target.is_dir():
        raise OSError(f"{target} is a directory; give a file name for the output")
    if target.exists() and not force:
        raise OSError(f"{target} already exists; use --force to overwrite it")
    directory = target.parent
    if not directory.is_dir():
        raise OSError(f"cannot write {target}: the directory {directory} does not exist")
    if not os.access(directory, os.W_OK | os.X_OK):
        raise OSError(f"cannot write {target}: the directory {directory} is not writable")


def _write_atomically(path: Path, data: bytes) -> None:
    """Write `data` to a temporary file next to `path`, then rename it to `path`; the file gets the mode
    a newly created file gets (0666 less the umask), not the temporary file's 0600."""
    with tempfile.NamedTemporaryFile(
        dir=path.parent, prefix=f".{path.name}.", suffix=".tmp", delete=False
    ) as f:
        temporary = Path(f.name)
    try:
        temporary.write_bytes(data)
        umask = os.umask(0)
        os.umask(umask)
        temporary.chmod(0o666 & ~umask)
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def _read_input(data: bytes, run_dir: str | os.PathLike) -> tuple[np.ndarray, np.ndarray | None]:
    """The input's tokens, and for an image run its pixels; refused before the model is loaded."""
    config = saved_config(run_dir)
    if run_kind(config) == "text":
        return compression.encode_text(data), None
    image = compression.read_image(data)
    shape = run_image_shape(config, run_dir)
    if image.shape != shape:
        raise compression.ShapeError(
            f"the image is {describe_shape(image.shape)}, but the run codes {describe_shape(shape)} images "
            "(height x width x channels)"
        )
    return image.reshape(-1), image


def _decode(blob: bytes, model: compression.CodecModel, show_progress: bool) -> bytes | np.ndarray:
    """The text (bytes) or the one image (pixels) of a file."""
    if model.kind == "text":
        return compression.decompress(blob, model, show_progress)
    return compression.decompress_images(blob, model, show_progress)[0]


def _compress(args, data: bytes) -> bytes:
    tokens, image = _read_input(data, args.checkpoint)
    model = load_model(args.checkpoint)
    budget = min(DEFAULT_BUDGET, model.num_positions) if args.budget is None else args.budget
    if not 1 <= budget <= model.num_positions:
        raise compression.CompressionError(f"--budget must be in 1..{model.num_positions}, got {budget}")
    if (
        (args.orders is not None and args.orders < 1)
        or args.order_chunks < 0
        or not 1 <= args.batch_size < 1 << 16
    ):
        raise compression.CompressionError(
            "--orders must be >= 1, --order-chunks >= 0, --batch-size in 1..65535"
        )
    seed = None if args.orders is not None else codec.saved_order(args.checkpoint, model)
    chosen = "chosen by the run on training data"
    if seed is None:
        orders = DEFAULT_ORDERS if args.orders is None else args.orders
        chunks = pipeline.eval_chunks(tokens, model.num_positions)[: args.order_chunks]
        seed, chosen = 0, "seed 0"
        if orders > 1 and len(chunks):
            seed, _ = compression.choose_order(model, chunks, model.plan(budget)[0], orders)
            chosen = f"best of {orders} on the input"
    if image is None:
        blob = compression.compress(data, model, budget, seed, args.batch_size, args.progress)
        what, unit = f"{len(data):,} characters", "character"
    else:
        blob = compression.compress_images(image[None], model, budget, seed, args.batch_size, args.progress)
        what, unit = f"{describe_shape(image.shape)} image", "dimension"
    if args.verify:
        restored = _decode(blob, model, args.progress)
        if not (restored == data if image is None else np.array_equal(restored, image)):
            raise compression.DeterminismError("the compressed file does not decompress to the input")
    stages = f" per stage x {model.num_stages} stages" if model.num_stages > 1 else ""
    print(
        f"{args.input}: {what} -> {len(blob):,} bytes ({8 * len(blob) / max(tokens.size, 1):.4f} bits per "
        f"{unit}; budget {budget}{stages}, order {seed}: {chosen})",
        file=sys.stderr,
    )
    return blob


def _decompress(args, blob: bytes) -> bytes:
    header, _ = container.unpack(blob)  # refuse a damaged file before loading the model
    if header.kind == "images" and header.num_images != 1:
        raise compression.CompressionError(
            f"the file holds {header.num_images:,} images and `eqdd decompress` writes one PNG: decode it "
            "with eqdd.compression.decompress_images"
        )
    model = load_model(args.checkpoint)
    restored = _decode(blob, model, args.progress)
    return restored if model.kind == "text" else compression.to_png(restored)


def main(argv: list[str] | None = None) -> None:
    """Run the command; exit with status 1 and a message on any error."""
    args = _parser().parse_args(argv)
    try:
        _check_output(args.input, args.output, args.force)
        data = args.input.read_bytes()
        result = (_compress if args.command == "compress" else _decompress)(args, data)
        _write_atomically(args.output, result)
    except (compression.CompressionError, ConfigError) as error:
        sys.exit(f"eqdd {args.command}: error: {args.input}: {error}")
    except OSError as error:
        sys.exit(f"eqdd {args.command}: error: {error}")


if __name__ == "__main__":
    main()
