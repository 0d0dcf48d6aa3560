"""Compress and decompress 16-bit audio with an audio ARDM (an Upscale ARDM: the codec codes each
stage's `b`-way digit tables; a logistic-mixture OA-ARDM has no table of its `2^16` classes).

A clip of any length is one stream of samples: the signed 16-bit sample `s` is class `s + 32768`, cut
into chunks of the model's `D` (the last one padded and never coded), and coded by
[`eqdd.compression.message`][] exactly as text is. The header records the kind; the rate is the
model's (it is part of the model's fingerprint), so a decoded clip is written at the rate it was read at.
"""

import numpy as np
from jaxtyping import Int16

from eqdd._typing import typecheck
from eqdd.compression import message
from eqdd.compression.model import CodecModel
from eqdd.compression.schemes import SEEDED, Order
from eqdd.data.audio import from_classes, to_classes


def _samples(classes: np.ndarray) -> bytes:
    return from_classes(classes).astype("<i2").tobytes()


@typecheck
def compress_audio(
    samples: Int16[np.ndarray, " N"],
    model: CodecModel,
    budget: int,
    order: Order = SEEDED,
    batch_size: int = 16,
    show_progress: bool = False,
) -> bytes:
    """Compress one clip of 16-bit samples.

    Arguments:
        samples: the signed 16-bit samples, at the model's rate.
        model: an audio model ([`eqdd.compression.CodecModel`][] with a `sample_rate`).
        budget: network calls per chunk and stage, in `1..D`.
        order: the order ([`eqdd.compression.schemes.Order`][]).
        batch_size: chunks per network call.
        show_progress: show a progress bar.

    Returns:
        The compressed file's bytes.

    Raises:
        ModelMismatchError: for a text or image model.
        ValueError: for a budget outside `1..D`, a batch size outside `1..65535` or a seed outside
            `0..2^32-1`.
    """
    message.check_kind(model, "audio")
    classes = to_classes(samples).astype(np.int32)
    return message.compress(
        classes, _samples(classes), "audio", model, budget, order, batch_size, show_progress
    )


@typecheck
def decompress_audio(blob: bytes, model: CodecModel, show_progress: bool = False) -> Int16[np.ndarray, " N"]:
    """Decompress what [`compress_audio`][eqdd.compression.compress_audio] wrote, and check it.

    Arguments:
        blob: the compressed file's bytes.
        model: the model the file was compressed with.
        show_progress: show a progress bar.

    Returns:
        The samples, exactly (int16).

    Raises:
        FormatError, TruncatedFileError, CorruptedFileError: see [`eqdd.compression.container.unpack`][].
        ModelMismatchError: the file holds text or images, or was written with another model.
        DeterminismError: the network's outputs here differ from the encoder's.
    """
    _, data = message.decompress(blob, model, "audio", _samples, show_progress)
    return np.frombuffer(data, "<i2").astype(np.int16)
