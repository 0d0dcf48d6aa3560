"""Lossless compression with the ARDM codec: text8 next to gzip, bzip2, xz and zstd; images next to PNG;
audio next to FLAC.

    python benchmarks/compression_rates.py --checkpoint runs/text8_oaardm  # the first 50,000 test characters
    python benchmarks/compression_rates.py --num-chars 575000          # the whole test split of the head
    python benchmarks/compression_rates.py --checkpoint runs/cifar10_ardm   # 50 test images of the run's data
    python benchmarks/compression_rates.py --checkpoint runs/cifar10_upscale4  # the same, an Upscale ARDM
    python benchmarks/compression_rates.py --checkpoint runs/sc09_upscale   # 20 test clips of an audio run

The checkpoint's kind (a text8, image or audio run, read from its saved config) picks the mode.

Text: on the first --num-chars characters of the test split (rounded down to whole chunks of D), the
codec of `eqdd compress` as one file (`eqdd.compression.compress`; the command writes the same coding in
segments of 256 KiB, `eqdd.compression.segments`, about 120 bytes each) with --budget network calls per
chunk, in the best of the striped order and --orders seeded orders (under the DP policy planned on the
run's training L_t) scored on --order-chunks training chunks (the paper's protocol, reference §5). It
reports the achieved bits per character (the whole file, header included) next to the model's exact
code length -log2 p(x | orders, policy) computed independently
(`eqdd.objectives.oa_ardm_policy_log_likelihood`, or `upscale_policy_log_likelihood` for an Upscale
ARDM), the DP's planned cost, and gzip -9, bzip2 -9,
xz -9 (Python's zlib, bz2 and lzma) and zstd -19 (the `zstandard` package, else the `zstd` command) on the
same bytes; speeds in characters per second, after compilation (the compiling warm-up is timed
separately).

With --text-files, each file is also coded as `eqdd compress` codes any UTF-8 text (the model codes
its text8 projection, `eqdd.compression.plain` the rest in a side stream), beside the generic
compressors, in bits per byte of the file.

Images: the same on the first --num-images test images of the run's dataset (one file, one image per
chunk, `eqdd.compression.compress_images`), with an OA-ARDM or an Upscale ARDM (--budget calls per
stage), orders scored on --order-chunks training images (4 by
default: the exact code length runs the U-Net inside `lax.scan`, about 6 times slower per call on a
CPU than the codec's separate calls), in bits per dimension and sub-pixels (dimensions) per second;
next to PNG (Pillow, optimize, zlib level 9), one file per image and the images stacked into one
picture, and the generic compressors on the raw pixels.

Audio: the same on the first --num-clips test clips of an Upscale ARDM's data (one stream, one clip per
chunk, `eqdd.compression.compress_audio`), in bits per 16-bit sample and samples per second; next to
FLAC at its highest level (libsndfile through the `soundfile` package of the benchmark extra), one file
per clip and the clips in one file, and the generic compressors on the raw little-endian samples.

Every codec's output is decompressed and compared. Writes results.json to --out-dir.
"""

import argparse
import bz2
import gzip
import io
import lzma
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import NamedTuple

import numpy as np  # noqa: E402

from eqdd import compression  # noqa: E402
from eqdd.compression import container  # noqa: E402
from eqdd.compression.model import describe_shape, environment  # noqa: E402
from eqdd.data import audio as audio_data  # noqa: E402
from eqdd.data import images, pipeline, text8  # noqa: E402
from eqdd.runs import Run, load_run  # noqa: E402
from eqdd.runs.codec import DEFAULT_BUDGET, codec_model  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _scripts import write_results  # noqa: E402

PAPER = {"text8 OA-ARDM, 250 steps (ELBO)": 1.43, "text8 OA-ARDM, 20 DP steps (ELBO)": 1.51}  # Table 1
# Reference §5, Table 3: CIFAR-10 lossless compression, bpd, per image and per dataset alike.
PAPER_IMAGES = {
    "CIFAR-10 OA-ARDM, 500 steps": 2.73,
    "CIFAR-10 OA-ARDM, 100 steps": 2.75,
    "CIFAR-10 Upscale ARDM (b=4), 500 steps": 2.71,
    "CIFAR-10 Upscale ARDM (b=4), 100 steps": 2.76,
}


class Unit(NamedTuple):
    """How a mode counts: the results' key for bits per symbol, the symbol's short and long names, and
    the bytes one symbol takes in the original data."""

    bits: str
    name: str
    long: str
    width: int = 1

    def count(self, data: bytes) -> int:
        """The symbols in `data`."""
        return len(data) // self.width


TEXT, IMAGES = Unit("bpc", "char", "character"), Unit("bpd", "dim", "dimension")
AUDIO = Unit("bps", "sample", "16-bit sample", width=2)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], allow_abbrev=False)
    parser.add_argument(
        "--checkpoint",
        default="runs/text8_oaardm",
        help="run of experiments/text8_oaardm.py, cifar10_ardm.py or sc09_ardm.py (default: %(default)s)",
    )
    parser.add_argument(
        "--data-dir",
        default=None,
        help="text8 directory, or an image or audio run's data directory (else the run's, $EQDD_DATA_DIR, "
        "the cache)",
    )
    parser.add_argument(
        "--num-chars",
        type=int,
        default=50_000,
        help="text: test characters to compress (default: %(default)s)",
    )
    parser.add_argument(
        "--text-files",
        nargs="*",
        default=[],
        metavar="FILE",
        help="text: also code these UTF-8 files as `eqdd compress` does (any characters), per byte",
    )
    parser.add_argument(
        "--num-images", type=int, default=50, help="images: test images to compress (default: %(default)s)"
    )
    parser.add_argument(
        "--num-clips", type=int, default=20, help="audio: test clips to compress (default: %(default)s)"
    )
    parser.add_argument(
        "--budget",
        type=int,
        default=DEFAULT_BUDGET,
        help="network calls per chunk (image), and per stage of an Upscale ARDM (default: %(default)s)",
    )
    parser.add_argument(
        "--orders",
        type=int,
        default=5,
        help="seeded orders scored beside the striped one (default: %(default)s)",
    )
    parser.add_argument(
        "--order-chunks",
        type=int,
        default=None,
        help="training chunks (images, clips) the orders are scored on (default: 16 text, 4 images, 2 clips)",
    )
    parser.add_argument(
        "--batch-size",
        type=int,
        default=None,
        help="chunks (images, clips) per network call (default: 16 for text, 25 for images, 20 for clips)",
    )
    parser.add_argument(
        "--matmuls",
        default="float32,bfloat16",
        help="text: the codec's matrix products to measure, a row each (`eqdd compress --matmuls`; images "
        "and audio compute in float32) (default: %(default)s)",
    )
    parser.add_argument(
        "--match",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="text: mix the match model of the text coded so far into the codec (`eqdd compress --match`, "
        "the default) (default: %(default)s)",
    )
    parser.add_argument(
        "--out-dir",
        default=None,
        help="output directory (default: runs/compression, or runs/compression_images, _audio)",
    )
    parser.add_argument(
        "--progress", action=argparse.BooleanOptionalAction, default=True, help="progress bars"
    )
    return parser


def _zstd():
    """zstd -19 as (compress, decompress), or None when neither the package nor the command is here."""
    try:
        import zstandard
    except ImportError:
        command = shutil.which("zstd")
        if command is None:
            return None

        def run(flags, data):
            return subprocess.run([command, *flags, "-c"], input=data, capture_output=True, check=True).stdout

        return lambda data: run(["-19", "-q"], data), lambda data: run(["-d", "-q"], data)
    return zstandard.ZstdCompressor(level=19).compress, zstandard.ZstdDecompressor().decompress


def _timed(function, *args):
    begin = time.perf_counter()
    result = function(*args)
    return result, time.perf_counter() - begin


def _row(name: str, data: bytes, compress, decompress, unit: Unit, size=len) -> tuple[dict, bytes]:
    """Compress, decompress and compare, timed; the table row and the compressed output."""
    blob, compress_seconds = _timed(compress, data)
    restored, decompress_seconds = _timed(decompress, blob)
    if restored != data:
        raise AssertionError(f"{name} did not restore the data")
    row = {
        "method": name,
        "bytes": size(blob),
        unit.bits: 8 * size(blob) / unit.count(data),
        f"compress_{unit.name}s_per_s": unit.count(data) / compress_seconds,
        f"decompress_{unit.name}s_per_s": unit.count(data) / decompress_seconds,
    }
    return row, blob


def baselines(data: bytes, unit: Unit = TEXT) -> list[dict]:
    """gzip -9, bzip2 -9, xz -9 and zstd -19 on `data` (zstd marked missing when unavailable)."""
    rows = [
        _row("gzip -9", data, lambda d: gzip.compress(d, 9), gzip.decompress, unit)[0],
        _row("bzip2 -9", data, lambda d: bz2.compress(d, 9), bz2.decompress, unit)[0],
        _row("xz -9", data, lambda d: lzma.compress(d, preset=9), lzma.decompress, unit)[0],
    ]
    zstd = _zstd()
    missing = {"method": "zstd -19", "missing": "neither the zstandard package nor the zstd command"}
    rows.append(_row("zstd -19", data, *zstd, unit)[0] if zstd else missing)
    return rows


def table(rows: list[dict], unit: Unit = TEXT) -> str:
    name, width = unit.name, max(46, *(len(r["method"]) for r in rows))
    lines = [
        f"{'method':>{width}} | {'bits/' + name:>9} |     bytes | {f'compress {name}/s':>15} | "
        f"{f'decompress {name}/s':>17}",
        "-" * (width + 62),
    ]
    for r in rows:
        if r.get("missing"):
            lines.append(f"{r['method']:>{width}} | {'missing: ' + r['missing']:>57}")
            continue
        speeds = (
            f"{r[f'compress_{unit.name}s_per_s']:>15,.0f} | {r[f'decompress_{unit.name}s_per_s']:>17,.0f}"
            if f"compress_{unit.name}s_per_s" in r
            else f"{'-':>15} | {'-':>17}"
        )
        size = f"{r['bytes']:>9,}" if "bytes" in r else f"{'-':>9}"
        lines.append(f"{r['method']:>{width}} | {r[unit.bits]:>9.4f} | {size} | {speeds}")
    return "\n".join(lines)


def _codec_rows(
    args, model, unit: Unit, data: bytes, chunks, train_chunks, codec, warm_up: bytes, products=("float32",)
):
    """What every mode measures: the order choice, then for each of `products` the codec (after a
    compiling warm-up on `warm_up`) and the exact code length of `chunks` with those matrix products,
    then the DP's planned cost.

    Arguments:
        codec: `codec(order, matmuls)` gives the codec's `(compress, decompress)` on bytes for an order
            (`eqdd.compression.Order`) and matrix products.
        products: the matrix products to measure (`eqdd.compression.container.MATMULS`).

    Returns:
        The table rows (codec and exact code length for each product, then the plan) and the figures
        for results.json.
    """
    length = model.num_positions
    planned = model.plan(args.budget)[1]
    (order, candidates), order_seconds = _timed(
        compression.choose_order, model, train_chunks, args.budget, args.orders
    )
    # per symbol (a model of character pairs scores and plans per pair)
    planned = planned / model.symbols_per_token
    candidates = {name: b / model.symbols_per_token for name, b in candidates.items()}
    scores = ", ".join(f"{name} {b:.4f}" for name, b in candidates.items())
    print(
        f"order: {order.describe()}, the best of striped and {args.orders} seeded "
        f"(training {unit.bits}: {scores})"
    )
    policy = model.arrangement(order, args.budget)[1]
    per = {TEXT: "chunk", IMAGES: "image", AUDIO: "clip"}[unit]
    kind, calls = (
        ("OA-ARDM", f"{args.budget}")
        if model.num_stages == 1
        else ("Upscale ARDM", f"{model.num_stages}x{args.budget}")
    )
    rows, measured = [], {}
    for matmuls in products:
        codec_compress, codec_decompress = codec(order, matmuls)
        _, warm_up_seconds = _timed(lambda: codec_decompress(codec_compress(warm_up)))  # noqa: B023
        named = f", {matmuls}" if len(products) > 1 else ""
        mixed = " + match model" if unit is TEXT and args.match else ""
        row, blob = _row(
            f"eqdd {kind} codec, {calls} calls/{per}{mixed}{named}",
            data,
            codec_compress,
            codec_decompress,
            unit,
        )
        scheme = model.scheme(order, args.budget, matmuls)
        exact_bits = float(scheme.code_lengths(chunks).astype(np.float64).sum() * length)
        exact = {
            "method": f"exact code length -log2 p(x | orders, policy){named}",
            unit.bits: exact_bits / unit.count(data),
        }
        rows += [row, exact]
        measured[matmuls] = {
            "warm_up_seconds": warm_up_seconds,
            "overhead": 8 * row["bytes"] / exact_bits - 1,
            "compress_per_s": row[f"compress_{unit.name}s_per_s"],
            "decompress_per_s": row[f"decompress_{unit.name}s_per_s"],
        }
        overhead, header = 100 * measured[matmuls]["overhead"], len(blob) - 4 * container.unpack(blob)[1].size
        print(
            f"{matmuls}: codec overhead over the exact code length: {overhead:+.3f}% (header {header} bytes);"
            f" compiling warm-up {warm_up_seconds:.1f} s"
        )
    rows.append({"method": "DP planned cost of seeded orders (training L_t)", unit.bits: planned})
    first, last = measured[products[0]], measured[products[-1]]
    figures = {
        "num_positions": length,
        "budget": args.budget,
        "num_stages": model.num_stages,
        "policy": policy.tolist() if model.num_stages > 1 else [int(b) for b in policy[0]],
        "batch_size": args.batch_size,
        "order": order.kind,
        "order_seed": order.seed,
        "order_chunks": len(train_chunks),
        f"order_candidates_train_{unit.bits}": candidates,
        "order_seconds": order_seconds,
        "header_bytes": header,
        "products": measured,
        # the speed of the last product over the first's, measured in this run
        "speedup": {way: last[f"{way}_per_s"] / first[f"{way}_per_s"] for way in ("compress", "decompress")},
    }
    print(f"order choice {order_seconds:.1f} s")
    if len(products) > 1:
        print(
            f"{products[-1]} over {products[0]}: compress {figures['speedup']['compress']:.2f}x, "
            f"decompress {figures['speedup']['decompress']:.2f}x"
        )
    return rows, figures


def _history(args) -> str:
    """What the text codec mixes in (`eqdd.compression.container.HISTORIES`), by --match."""
    return "match" if args.match else "none"


def text_benchmark(args, run: Run) -> dict:
    """The text mode (see the module docstring)."""
    model = codec_model(run)
    length = model.symbols_per_chunk  # characters per chunk
    batch_size = args.batch_size or 16
    splits = text8.load(args.data_dir)
    print(splits.describe())
    chars = splits.test[: args.num_chars // length * length]
    if not len(chars):
        raise SystemExit(f"--num-chars must be at least one chunk of {length} characters")
    chunks = pipeline.eval_chunks(model.tokens(chars), model.num_positions)
    data = text8.decode(chars).encode()
    print(f"{len(data):,} test characters ({len(chunks)} chunks of {length}); budget {args.budget}")

    def codec(order, matmuls):
        return (
            lambda d: compression.compress(
                d, model, args.budget, order, batch_size, args.progress, matmuls, _history(args)
            ),
            lambda blob: compression.decompress(blob, model, args.progress),
        )

    products = tuple(args.matmuls.split(","))
    if set(products) - set(container.MATMULS):
        raise SystemExit(f"--matmuls takes a comma-separated list of {', '.join(container.MATMULS)}")
    warm_up = data[: min(batch_size, len(chunks)) * length]  # the measured run's shapes, compiled
    num_train = 16 if args.order_chunks is None else args.order_chunks
    train_chunks = pipeline.eval_chunks(model.tokens(splits.train[: num_train * length]), model.num_positions)
    codec_rows, figures = _codec_rows(args, model, TEXT, data, chunks, train_chunks, codec, warm_up, products)
    rows = [*codec_rows, *baselines(data)]
    print(table(rows))
    files = {}
    for path in args.text_files:
        files[str(path)] = text_file_rows(
            args,
            model,
            compression.Order(figures["order"], figures["order_seed"]),
            batch_size,
            Path(path),
            products[-1],
        )
        print(f"{path}:\n{table(files[str(path)])}")
    results = {
        "corpus": splits.describe(),
        "checkpoint": str(args.checkpoint),
        "num_chars": len(data),
        **figures,
        "batch_size": batch_size,
        "rows": rows,
        "text_files": files,
        "environment": environment(),
        "paper": PAPER,
    }
    return write_results(results, args.out_dir or "runs/compression")


def text_file_rows(args, model, order, batch_size: int, path: Path, matmuls: str) -> list[dict]:
    """Any UTF-8 text file as `eqdd compress` codes it (the text8 projection by the model with `matmuls`
    products, the rest in the side stream: `eqdd.compression.plain`), beside the generic compressors;
    bits per byte of the file."""
    data = path.read_bytes()
    if not data:
        raise SystemExit(f"--text-files: {path} is empty")
    codec_row, _ = _row(
        f"eqdd, {args.budget} calls/chunk{' + match model' if args.match else ''} + side stream",
        data,
        lambda d: compression.plain.compress(
            d, model, args.budget, order, batch_size, args.progress, matmuls, _history(args)
        ),
        lambda blob: compression.plain.decompress(blob, model, args.progress),
        TEXT,
    )
    return [codec_row, *baselines(data)]


def png_rows(pictures: np.ndarray) -> list[dict]:
    """PNG (Pillow, optimize, zlib level 9) of `(N, H, W, C)` images: one file per image, and the images
    stacked into one `(N·H, W, C)` picture (which pays the PNG container once, as the codec's file does)."""
    data = pictures.tobytes()

    def each(d):
        return [compression.to_png(image) for image in np.frombuffer(d, np.uint8).reshape(pictures.shape)]

    def stacked(d):
        return compression.to_png(np.frombuffer(d, np.uint8).reshape(-1, *pictures.shape[2:]))

    return [
        _row(
            "PNG -9 optimize, one file per image",
            data,
            each,
            lambda files: b"".join(compression.read_image(f).tobytes() for f in files),
            IMAGES,
            size=lambda files: sum(map(len, files)),
        )[0],
        _row(
            "PNG -9 optimize, images stacked in one",
            data,
            stacked,
            lambda file: compression.read_image(file).tobytes(),
            IMAGES,
        )[0],
    ]


def image_benchmark(args, run: Run) -> dict:
    """The image mode (see the module docstring)."""
    splits = images.load(run.config.dataset, args.data_dir or run.config.data_dir)
    print(splits.describe())
    model = codec_model(run)
    if splits.image_shape != model.image_shape:
        raise SystemExit(
            f"the data's images are {describe_shape(splits.image_shape)}, the run's "
            f"{describe_shape(model.image_shape)}"
        )
    pictures = splits.test[: args.num_images]
    if not len(pictures):
        raise SystemExit("--num-images must be at least 1")
    batch_size = args.batch_size or 25
    data = pictures.tobytes()
    length = model.num_positions
    print(
        f"{len(pictures)} test images of {describe_shape(model.image_shape)} ({len(data):,} sub-pixels); "
        f"budget {args.budget}"
    )

    def codec(order, matmuls):  # float32 (the matmuls of `--matmuls` are for text)
        return (
            lambda d: compression.compress_images(
                np.frombuffer(d, np.uint8).reshape(-1, *model.image_shape),
                model,
                args.budget,
                order,
                batch_size,
                args.progress,
            ),
            lambda blob: compression.decompress_images(blob, model, args.progress).tobytes(),
        )

    warm_up = data[: min(batch_size, len(pictures)) * length]  # the measured run's shapes, compiled
    chunks = pictures.reshape(len(pictures), length).astype(np.int32)
    train_chunks = splits.train[: 4 if args.order_chunks is None else args.order_chunks]
    train_chunks = train_chunks.reshape(-1, length).astype(np.int32)
    codec_rows, figures = _codec_rows(args, model, IMAGES, data, chunks, train_chunks, codec, warm_up)
    rows = [*codec_rows, *png_rows(pictures), *baselines(data, IMAGES)]
    print(table(rows, IMAGES))
    single = 8 * figures["header_bytes"] / length
    data_set = (
        "CIFAR-10 test images" if run.config.dataset == "cifar10" else "another data set, not comparable"
    )
    print(
        f"a file of one image pays its header at {single:.3f} bits per dimension. The paper (CIFAR-10, "
        f"reference §5 Table 3; here {data_set}): "
        + ", ".join(f"{name} {bpd}" for name, bpd in PAPER_IMAGES.items())
        + " bpd"
    )
    results = {
        "corpus": splits.describe(),
        "checkpoint": str(args.checkpoint),
        "num_images": len(pictures),
        "image_shape": list(model.image_shape),
        "num_dims": len(data),
        **figures,
        "batch_size": batch_size,
        "header_bpd_single_image": single,
        "rows": rows,
        "environment": environment(),
        "paper": PAPER_IMAGES,
    }
    return write_results(results, args.out_dir or "runs/compression_images")


def flac_rows(clips: np.ndarray, sample_rate: int) -> list[dict]:
    """FLAC at its highest compression level (libsndfile through `soundfile`) of int16 clips `(N, D)`:
    one file per clip, and the clips one after another in one file; marked missing without
    `soundfile`."""
    try:
        import soundfile
    except ImportError:
        return [{"method": "FLAC", "missing": "the soundfile package (pip install 'eqdd[benchmark]')"}]

    def write(samples: np.ndarray) -> bytes:
        buffer = io.BytesIO()
        soundfile.write(buffer, samples, sample_rate, format="FLAC", subtype="PCM_16", compression_level=1.0)
        return buffer.getvalue()

    def read(blob: bytes) -> bytes:
        return soundfile.read(io.BytesIO(blob), dtype="int16")[0].astype("<i2").tobytes()

    data = clips.astype("<i2").tobytes()
    version = soundfile.__libsndfile_version__

    def each(d):
        return [write(clip) for clip in np.frombuffer(d, "<i2").reshape(clips.shape)]

    return [
        _row(
            f"FLAC level 8 (libsndfile {version}), one file per clip",
            data,
            each,
            lambda files: b"".join(map(read, files)),
            AUDIO,
            size=lambda files: sum(map(len, files)),
        )[0],
        _row(
            f"FLAC level 8 (libsndfile {version}), clips in one file",
            data,
            lambda d: write(np.frombuffer(d, "<i2")),
            read,
            AUDIO,
        )[0],
    ]


def audio_benchmark(args, run: Run) -> dict:
    """The audio mode: the codec of `eqdd compress` (an Upscale ARDM) on the first --num-clips test clips,
    coded as one stream (one clip per chunk), beside FLAC and the generic compressors on the same 16-bit
    samples (bits per 16-bit sample)."""
    model = codec_model(run)
    length = model.num_positions
    splits = audio_data.load(run.config.dataset, args.data_dir or run.config.data_dir, length)
    print(splits.describe())
    clips = audio_data.from_classes(splits.test[: args.num_clips])
    if not len(clips):
        raise SystemExit("--num-clips must be at least 1")
    batch_size = args.batch_size or 20
    data = clips.astype("<i2").tobytes()
    print(f"{len(clips)} test clips of {length:,} samples at {model.sample_rate:,} Hz; budget {args.budget}")

    def codec(order, matmuls):  # float32 (the matmuls of `--matmuls` are for text)
        return (
            lambda d: compression.compress_audio(
                np.frombuffer(d, "<i2").astype(np.int16), model, args.budget, order, batch_size, args.progress
            ),
            lambda blob: compression.decompress_audio(blob, model, args.progress).astype("<i2").tobytes(),
        )

    warm_up = data[: 2 * min(batch_size, len(clips)) * length]  # the measured run's shapes, compiled
    chunks = splits.test[: len(clips)].astype(np.int32)
    train_chunks = splits.train[: 2 if args.order_chunks is None else args.order_chunks].astype(np.int32)
    codec_rows, figures = _codec_rows(args, model, AUDIO, data, chunks, train_chunks, codec, warm_up)
    rows = [*codec_rows, *flac_rows(clips, model.sample_rate), *baselines(data, AUDIO)]
    print(table(rows, AUDIO))
    results = {
        "corpus": splits.describe(),
        "checkpoint": str(args.checkpoint),
        "num_clips": len(clips),
        "num_samples": clips.size,
        "sample_rate": model.sample_rate,
        **figures,
        "batch_size": batch_size,
        "rows": rows,
        "environment": environment(),
    }
    return write_results(results, args.out_dir or "runs/compression_audio")


def main(argv=None) -> dict:
    args = _parser().parse_args(argv)
    run = load_run(args.checkpoint)
    modes = {"text": text_benchmark, "images": image_benchmark, "audio": audio_benchmark}
    return modes[run.kind](args, run)


if __name__ == "__main__":
    main()
