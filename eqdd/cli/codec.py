"""`eqdd compress` and `eqdd decompress`: lossless coding of text, images and audio with a trained
OA-ARDM or Upscale ARDM.

For a text run, IN is any UTF-8 text of any length: the model codes its text8 projection (lowercase a-z
and space) and a side stream the rest ([`eqdd.compression.plain`][]; binary input is refused), in
segments of 256 KiB read, coded and written one at a time, so memory stays bounded
([`eqdd.compression.segments`][]); for an image
run, IN is an image file (PNG or any format Pillow reads) of the run's size and channels, and
decompress writes a PNG; for an audio run (an Upscale ARDM), IN is a mono 16-bit WAV file at the run's
rate, of any length, and decompress writes the same WAV. OUT is written only once everything has
succeeded (decompression: after every check), through a temporary file renamed into place. OUT must
not be IN, and an existing OUT is refused unless `--force` is given (as gzip and zstd do); both are
checked, with OUT's directory, before any work.
"""

import argparse
import sys
from pathlib import Path

import numpy as np

from eqdd import compression
from eqdd.cli._files import atomic_file, check_output, write_atomically
from eqdd.compression import container, plain, segments
from eqdd.compression.model import describe_shape
from eqdd.data import audio, pipeline
from eqdd.runs import codec, load_run
from eqdd.runs.codec import DEFAULT_BUDGET
from eqdd.runs.registry import Run

DEFAULT_ORDERS = 5  # seeded orders scored beside the striped one on an image or clip when the run chose none


def add_commands(commands, checkpoint_help: str) -> None:
    """The two commands' parsers, under `commands` (argparse subparsers)."""
    for name, help in (
        ("compress", "compress a text file, an image or a WAV file"),
        ("decompress", "restore a file written by `eqdd compress`"),
    ):
        command = commands.add_parser(name, help=help, description=f"{help}. {__doc__.split(chr(10) * 2)[1]}")
        command.add_argument("input", type=Path, metavar="IN")
        command.add_argument("output", type=Path, metavar="OUT")
        command.add_argument("--checkpoint", metavar="RUN_DIR", help=checkpoint_help)
        command.add_argument(
            "--progress", action=argparse.BooleanOptionalAction, default=True, help="progress bar"
        )
        command.add_argument("-f", "--force", action="store_true", help="overwrite OUT if it exists")
        command.set_defaults(run=_compress if name == "compress" else _decompress)
    compress = commands.choices["compress"]
    compress.add_argument(
        "--budget",
        type=int,
        help=f"network calls per chunk of D characters or samples, or per image, and per stage of an Upscale "
        "ARDM "
        f"(default: {DEFAULT_BUDGET}, at most D)",
    )
    compress.add_argument(
        "--orders",
        type=int,
        help="score the striped order and N seeded ones on the input and take the best (default: the "
        "order the run chose on its training data, else striped for text and the best of striped and "
        f"{DEFAULT_ORDERS} seeded on the input for images and audio)",
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
        "--matmuls",
        choices=container.MATMULS,
        help="the network's matrix products, recorded in the file: bfloat16 inputs accumulated in float32 "
        "(text models only; several times faster on CPUs with bfloat16 units) or float32 "
        "(default: bfloat16 for text, float32 for images and audio)",
    )
    compress.add_argument(
        "--match",
        action=argparse.BooleanOptionalAction,
        help="mix a match model of the text coded so far into the network's predictions (text only; "
        "recorded in the file; default: on for text)",
    )
    compress.add_argument(
        "--verify", action="store_true", help="decompress the result and compare before writing it"
    )


def _read_input(data: bytes, run: Run) -> tuple[np.ndarray, np.ndarray]:
    """The symbols an image or audio model codes (its tokens), and the pixels or the samples."""
    if run.kind == "audio":
        try:
            samples, rate = audio.read_wav(data)
        except audio.AudioDataError as error:
            raise compression.CompressionError(
                f"the input is not a WAV file the run codes: {error}"
            ) from None
        expected = run.config.sample_rate
        if rate != expected:
            raise compression.ShapeError(
                f"the WAV file is at {rate:,} Hz, but the run codes {expected:,} Hz audio"
            )
        return audio.to_classes(samples).astype(np.int32), samples
    image = compression.read_image(data)
    if image.shape != run.image_shape:
        raise compression.ShapeError(
            f"the image is {describe_shape(image.shape)}, but the run codes "
            f"{describe_shape(run.image_shape)} images (height x width x channels)"
        )
    return image.reshape(-1), image


def _text_head(path: Path, model: compression.CodecModel, num_chunks: int) -> np.ndarray:
    """The characters of the text8 projection of the start of a text file, enough for `num_chunks` chunks
    when the file holds them (binary input is refused here, before any coding)."""
    with path.open("rb") as source:
        head = source.read(4 * num_chunks * model.symbols_per_chunk)
        more = source.read(1)
    if more:
        head = head[: segments.cut(head + more, len(head))]
    plain.check_text(head)
    return compression.encode_text(head if plain.is_text8(head) else plain.project(head)[0])


def _order(args, model: compression.CodecModel, symbols: np.ndarray, budget: int, matmuls: str):
    """The order to code with, and how it was chosen: with `--orders N`, the best of the striped order
    and `N` seeded ones on the input's first `--order-chunks` chunks; else the run's (chosen on its
    training data, [`eqdd.runs.codec.saved_order`][]); else, for text, the striped order (the best on
    text8: `benchmarks/RESULTS.md`, "The whole test split in the striped order"), and for images and
    audio the best of it and `DEFAULT_ORDERS` seeded ones on the input."""
    saved = None if args.orders is not None else codec.saved_order(args.checkpoint, model)
    if saved is not None:
        return saved, "chosen by the run on training data"
    default = compression.STRIPED if model.kind == "text" else compression.SEEDED
    if args.orders is None and model.kind == "text":
        return default, "the default for text"
    seeds = DEFAULT_ORDERS if args.orders is None else args.orders
    chunks = pipeline.eval_chunks(model.tokens(symbols), model.num_positions)[: args.order_chunks]
    if not len(chunks):
        return default, "the default: the input holds no full chunk to score orders on"
    order, _ = compression.choose_order(model, chunks, budget, seeds, matmuls)
    return order, f"the best of striped and {seeds} seeded on the input"


def _decode(blob: bytes, model: compression.CodecModel, show_progress: bool) -> np.ndarray:
    """The one image (pixels) or the clip (samples) of a file."""
    if model.kind == "audio":
        return compression.decompress_audio(blob, model, show_progress)
    return compression.decompress_images(blob, model, show_progress)[0]


def _compress(args) -> None:
    check_output(args.input, args.output, args.force)
    if (
        (args.orders is not None and args.orders < 1)
        or args.order_chunks < 0
        or not 1 <= args.batch_size < 1 << 16
    ):
        raise compression.CompressionError(
            "--orders must be >= 1, --order-chunks >= 0, --batch-size in 1..65535"
        )
    run = load_run(args.checkpoint)
    model = codec.codec_model(run)
    if model.kind == "text":
        symbols, decoded = _text_head(args.input, model, args.order_chunks), None
    else:
        symbols, decoded = _read_input(args.input.read_bytes(), run)
    matmuls = args.matmuls or ("bfloat16" if model.kind == "text" else "float32")
    model.check_matmuls(matmuls)  # images and audio compute in float32: refused before any work
    if args.match and model.kind != "text":
        raise compression.CompressionError(f"--match is for text; {model.describe()} codes {model.kind}")
    history = "none" if args.match is False or model.kind != "text" else "match"
    budget = min(DEFAULT_BUDGET, model.num_positions) if args.budget is None else args.budget
    if not 1 <= budget <= model.num_positions:
        raise compression.CompressionError(f"--budget must be in 1..{model.num_positions}, got {budget}")
    order, chosen = _order(args, model, symbols, budget, matmuls)
    stages = f" per stage x {model.num_stages} stages" if model.num_stages > 1 else ""
    settings = f"budget {budget}{stages}, order {order.describe()} ({chosen}); {matmuls} matrix products"
    settings += "; match model mixed in" if history == "match" else ""
    if model.kind == "text":  # streamed: memory bounded by a segment, whatever the length
        with args.input.open("rb") as source, atomic_file(args.output) as target:
            summary = segments.compress_stream(
                source,
                target.write,
                model,
                budget,
                order,
                args.batch_size,
                args.progress,
                matmuls,
                history,
                verify=args.verify,
                total=args.input.stat().st_size,
            )
            plural = "" if summary.segments == 1 else "s"
            print(
                f"{args.input}: {summary.bytes_in:,} characters -> {summary.bytes_out:,} bytes "
                f"({8 * summary.bytes_out / max(summary.bytes_in, 1):.4f} bits per character; {settings}; "
                f"{summary.segments:,} segment{plural})",
                file=sys.stderr,
            )
            _keep(run, model, args.checkpoint)  # before OUT exists, so OUT never lacks its model
        return
    if model.kind == "audio":
        blob = compression.compress_audio(decoded, model, budget, order, args.batch_size, args.progress)
        what, unit, count = f"{decoded.size:,} samples at {model.sample_rate:,} Hz", "sample", decoded.size
    else:
        blob = compression.compress_images(
            decoded[None], model, budget, order, args.batch_size, args.progress
        )
        what, unit, count = f"{describe_shape(decoded.shape)} image", "dimension", symbols.size
    if args.verify and not np.array_equal(_decode(blob, model, args.progress), decoded):
        raise compression.DeterminismError("the compressed file does not decompress to the input")
    print(
        f"{args.input}: {what} -> {len(blob):,} bytes ({8 * len(blob) / max(count, 1):.4f} bits per "
        f"{unit}; {settings})",
        file=sys.stderr,
    )
    _keep(run, model, args.checkpoint)  # before OUT exists, so OUT never lacks its model
    write_atomically(args.output, blob)


def _keep(run: Run, model: compression.CodecModel, source) -> None:
    kept = codec.keep(run, model, source)
    if kept is not None:
        print(f"kept the model it needs for decompression in {kept}", file=sys.stderr)


def _decompress(args) -> None:
    check_output(args.input, args.output, args.force)
    with args.input.open("rb") as source:
        if source.read(len(segments.MAGIC)) == segments.MAGIC:  # text, streamed segment by segment
            source.seek(0)
            header = segments.read_header(source)  # refuse a damaged file before loading the model
            model = codec.codec_model(codec.open_for(args.checkpoint, header.fingerprint))
            with atomic_file(args.output) as file:
                segments.decode_segments(source, header, model, file.write, args.progress)
            return
        source.seek(0)
        blob = source.read()  # a single file: images, audio, or text written by an earlier eqdd
    # refuse a damaged file before loading the model
    header, _ = container.unpack(plain.unpack(blob)[3] if blob.startswith(plain.MAGIC) else blob)
    if header.kind == "images" and header.num_images != 1:
        raise compression.CompressionError(
            f"the file holds {header.num_images:,} images and `eqdd decompress` writes one PNG: decode it "
            "with eqdd.compression.decompress_images"
        )
    model = codec.codec_model(codec.open_for(args.checkpoint, header.fingerprint))
    if model.kind == "text":  # streamed: memory bounded by a batch of chunks, whatever the length
        with atomic_file(args.output) as file:
            segments.decode_file_to(blob, model, file.write, args.progress)
        return
    decoded = _decode(blob, model, args.progress)
    if model.kind == "audio":
        write_atomically(args.output, audio.wav_bytes(decoded, model.sample_rate))
        return
    write_atomically(args.output, compression.to_png(decoded))
