"""Lossless compression from Python with a trained run: text with a text8 run, images with an image run.

    python experiments/text8_oaardm.py                  # trains runs/text8_oaardm
    python examples/compress.py runs/text8_oaardm
    python examples/compress.py runs/cifar10_ardm      # a run of experiments/cifar10_ardm.py

The `eqdd compress` / `eqdd decompress` commands do the same with files.
"""

import sys

import numpy as np

import eqdd
from eqdd import compression
from eqdd.runs.codec import codec_model


def main(run_dir: str = "runs/text8_oaardm", budget: int = 50) -> dict:
    """Compress and decompress a sample with the run in `run_dir`; returns the sizes."""
    run = eqdd.load_run(run_dir)  # config, state (with the EMA network), objective and data shape
    model = codec_model(run)  # the codec's view: the EMA network, the objective, L_t and a fingerprint
    budget = min(budget, model.num_positions)  # network calls per chunk and stage: at most one per step
    if model.image_shape is None:
        data = b"the quick brown fox jumps over the lazy dog " * 20
        blob = compression.compress(data, model, budget=budget)  # striped order
        assert compression.decompress(blob, model) == data
    else:
        data = np.random.default_rng(0).integers(0, 256, (2, *model.image_shape), dtype=np.uint8)
        blob = compression.compress_images(data, model, budget=budget)
        assert (compression.decompress_images(blob, model) == data).all()
    symbols = len(data) if isinstance(data, bytes) else data.size
    print(
        f"{run_dir}: {symbols} symbols -> {len(blob)} bytes "
        f"({8 * len(blob) / symbols:.2f} bits each), decoded exactly"
    )
    return {"symbols": symbols, "bytes": len(blob)}


if __name__ == "__main__":
    main(*sys.argv[1:2])
