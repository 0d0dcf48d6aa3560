"""Compress and decompress text in the text8 alphabet with an OA-ARDM: the file-level API.

[`compress`][eqdd.compression.compress] tokenises the text (space -> 1, `a`..`z` -> 2..27) and hands
the tokens to [`eqdd.compression.message`][] (the codec and the file format, shared with images);
[`decompress`][eqdd.compression.decompress] decodes and checks a file there and returns the original
bytes, or raises.
"""

from collections.abc import Callable

import numpy as np

from eqdd.compression import message
from eqdd.compression.errors import AlphabetError
from eqdd.compression.model import CodecModel
from eqdd.compression.schemes import STRIPED, Order
from eqdd.data import text8


def encode_text(data: bytes) -> np.ndarray:
    """Tokens of text in the text8 alphabet.

    Raises:
        AlphabetError: naming the first byte outside the alphabet (`a`-`z` and space) and its offset.
    """
    try:
        return text8.encode(data)
    except text8.Text8Error as error:
        raise AlphabetError(f"not plain text in the text8 alphabet: {error}") from None


def compress(
    data: bytes,
    model: CodecModel,
    budget: int,
    order: Order = STRIPED,
    batch_size: int = 16,
    show_progress: bool = False,
    matmuls: str = "bfloat16",
    history: str = "match",
) -> bytes:
    """Compress text in the text8 alphabet.

    Arguments:
        data: the text (bytes: lowercase `a`-`z` and space only).
        model: a text model ([`eqdd.compression.CodecModel`][]).
        budget: network calls per chunk of `D` tokens (characters, or pairs for a model of pairs), in
            `1..D`.
        order: the order ([`eqdd.compression.schemes.Order`][]; pick one with
            [`eqdd.compression.choose_order`][]): striped by default, which codes text8 smaller than any
            seeded order (`benchmarks/RESULTS.md`); a seeded one codes under the optimal policy for the
            model's `L_t`.
        batch_size: chunks per network call.
        show_progress: show a progress bar.
        matmuls: the network's matrix products: `"bfloat16"` (inputs rounded, accumulated in float32:
            several times faster on CPUs with bfloat16 units, and within a thousandth of a bit per
            character of float32 on the shipped model) or `"float32"`. The file records it.
        history: `"match"` (the default) mixes a match model of the text coded so far into the
            network's distributions ([`eqdd.compression.matching`][]), `"none"` codes with the network
            alone. The file records it.

    Returns:
        The compressed file's bytes.

    Raises:
        AlphabetError: for text outside the alphabet.
        ModelMismatchError: for an image model.
        ValueError: for a budget outside `1..D`, a batch size outside `1..65535`, a seed outside
            `0..2^32-1`, a striped order with a seed, or an unknown history.
    """
    return message.compress(
        encode_text(data), data, "text", model, budget, order, batch_size, show_progress, matmuls, history
    )


def decompress(blob: bytes, model: CodecModel, show_progress: bool = False) -> bytes:
    """Decompress what [`compress`][eqdd.compression.compress] wrote, and check it.

    Arguments:
        blob: the compressed file's bytes.
        model: the model the file was compressed with.
        show_progress: show a progress bar.

    Returns:
        The original bytes, exactly.

    Raises:
        FormatError, TruncatedFileError, CorruptedFileError: see [`eqdd.compression.container.unpack`][].
        ModelMismatchError: the file holds images, or was written with another model.
        DeterminismError: the network's outputs here differ from the encoder's (the message names the
            environment the file was written in and this one).
    """
    parts: list[bytes] = []
    decompress_to(blob, model, parts.append, show_progress)
    return b"".join(parts)


def decompress_to(
    blob: bytes, model: CodecModel, write: Callable[[bytes], object], show_progress: bool = False
) -> None:
    """[`decompress`][eqdd.compression.decompress] (same arguments and errors) handing the text to
    `write` as it is decoded: batch by batch, memory bounded by one batch of chunks whatever the text's
    length, for a file written with `history="none"`; with the match model (the default) the batches
    interleave regions of the text and most of it comes out with the last batch. The text's checksum
    is checked at the end: discard what `write` received if this raises."""
    message.decompress_to(
        blob, model, "text", lambda tokens: text8.decode(tokens).encode(), write, show_progress
    )
