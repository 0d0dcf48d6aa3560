"""Image sets from TensorFlow Datasets (the `tfds` extra: `pip install 'eqdd[tfds]'`), without TensorFlow.

`tfds.data_source` reads a dataset the user has prepared in TFDS's `array_record` format (for example
`tfds build cifar10 --file_format=array_record`, or `tfds.data_source(name)` once online) as
random-access sequences of numpy examples; nothing is downloaded here. The images go to the same
[`eqdd.data.images.ImageSplits`][] (and so the same grain pipeline) as every other image set.
TensorFlow Datasets is imported only when such a dataset is asked for, so without the extra nothing
imports it (or TensorFlow).

Speech Commands is not offered: TFDS's `speech_commands` labels only its ten command words and files the
ten digits under `_unknown_`, so SC09 cannot be taken from it (see `eqdd.data.audio.load_sc09`).
"""

import os
from pathlib import Path

import numpy as np

from eqdd.data.images import ImageDataError, ImageSplits

# `--dataset` name -> the TFDS dataset name
DATASETS = {"tfds:cifar10": "cifar10", "tfds:mnist": "mnist", "tfds:fashion_mnist": "fashion_mnist"}
SHAPES = {"tfds:cifar10": (32, 32, 3), "tfds:mnist": (28, 28, 1), "tfds:fashion_mnist": (28, 28, 1)}
EXTRA = "pip install 'eqdd[tfds]'"


def _tensorflow_datasets():
    try:
        import tensorflow_datasets
    except ImportError:
        raise ImageDataError(f"TFDS datasets need TensorFlow Datasets: {EXTRA}") from None
    return tensorflow_datasets


def load_images(dataset: str, data_dir: str | os.PathLike | None = None) -> ImageSplits:
    """The training and test images of a prepared TFDS image set.

    Arguments:
        dataset: one of `DATASETS` (`"tfds:cifar10"`, ...).
        data_dir: TFDS's data directory (default: TFDS's own, `$TFDS_DATA_DIR` or
            `~/tensorflow_datasets`).

    Returns:
        The splits, uint8 `(N, H, W, C)`.

    Raises:
        ImageDataError: without the extra, or when the dataset is not prepared in `array_record` format
            there (the message says how to prepare it).
    """
    name = DATASETS[dataset]
    tfds = _tensorflow_datasets()
    try:
        sources = tfds.data_source(name, split=["train", "test"], data_dir=data_dir, download=False)
    except Exception as error:  # TFDS raises several kinds for a missing or unreadable dataset
        raise ImageDataError(
            f"TFDS has no {name} ready to read in {data_dir or 'its data directory'} ({error}); prepare it "
            f"once online with `tfds build {name} --file_format=array_record`"
            + (f" --data_dir {data_dir}" if data_dir else "")
        ) from None
    train, test = (np.stack([np.asarray(example["image"], np.uint8) for example in s]) for s in sources)
    if train.ndim != 4 or train.shape[1:] != SHAPES[dataset] or test.shape[1:] != SHAPES[dataset]:
        raise ImageDataError(f"TFDS's {name} holds images of {train.shape[1:]}, not {SHAPES[dataset]}")
    return ImageSplits(f"{name} (TFDS)", train, test, Path(data_dir or "TFDS"), True)
