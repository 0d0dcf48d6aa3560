"""What compressing text and compressing images share: a stream of tokens into the file format and back.

[`compress`][eqdd.compression.message.compress] arranges the orders and the policy, codes the tokens
with [`eqdd.compression.codec.encode`][] and packs the header;
[`decompress_to`][eqdd.compression.message.decompress_to] checks the file, its kind and its model
before decoding, streams the decoded bytes out as they are decoded, and checks the original's checksum
after. The modules of each kind
([`text`][eqdd.compression.text], [`images`][eqdd.compression.images]) only turn their data into
tokens and back.
"""

import zlib
from collections.abc import Callable

import numpy as np
from jaxtyping import Integer

from eqdd._typing import typecheck
from eqdd.compression import codec, container
from eqdd.compression.errors import CorruptedFileError, DeterminismError, ModelMismatchError
from eqdd.compression.matching import MatchMixer
from eqdd.compression.model import CodecModel, describe_shape, environment
from eqdd.compression.schemes import Order, Scheme

_UNITS = {"text": "char", "images": "dim", "audio": "sample"}  # what the progress bars count


def _unit(model: CodecModel, kind: str) -> str:
    """What the progress bars count: the model's tokens."""
    return "pair" if model.symbols_per_token == 2 else _UNITS[kind]


def check_kind(model: CodecModel, kind: str) -> None:
    """Raise a `ModelMismatchError` unless `model` codes `kind` (`"text"`, `"images"` or `"audio"`)."""
    if model.kind != kind:
        raise ModelMismatchError(f"{model.describe()} cannot code {kind}")


def contents(header: container.Header) -> str:
    """What a file holds, for messages: `text`, `1 image of 28x28x1` or `3 images of 28x28x1`."""
    if header.kind == "audio":
        return f"{header.num_symbols:,} audio samples"
    if header.image_shape is None:
        return "text"
    plural = "" if header.num_images == 1 else "s"
    return f"{header.num_images:,} image{plural} of {describe_shape(header.image_shape)}"


def _policy_checksum(scheme: Scheme) -> int:
    """The header's `policy_crc`: CRC32 of the scheme's left boundaries as int64, as every version of
    the format has checksummed them (the scheme keeps them as int32)."""
    return codec.checksum(scheme.policy.astype(np.int64))


def _history(model: CodecModel, history: str, num_tokens: int) -> MatchMixer | None:
    """A fresh model of the history a file names (`"none"` or `"match"`) for `num_tokens` tokens."""
    if history == "none":
        return None
    return MatchMixer(model.symbols_per_token, num_tokens)


@typecheck
def compress(
    symbols: Integer[np.ndarray, " N"],
    data: bytes,
    kind: str,
    model: CodecModel,
    budget: int,
    order: Order,
    batch_size: int,
    show_progress: bool,
    matmuls: str = "float32",
    history: str = "none",
) -> bytes:
    """Code a stream of symbols into a compressed file.

    Arguments:
        symbols: the data as classes, flat: characters, sub-pixels (chunks of `D`: whole images) or
            samples; the model codes its [`tokens`][eqdd.compression.CodecModel.tokens] of them.
        data: the original bytes; their CRC32 goes into the header.
        kind: `"text"` or `"images"`; must be the model's.
        model: the model ([`eqdd.compression.CodecModel`][]).
        budget: network calls per chunk (and stage), in `1..D`.
        order: the order ([`eqdd.compression.schemes.Order`][]): seeded, under the optimal policy for the
            model's `L_t`, or striped.
        batch_size: chunks per network call.
        show_progress: show a progress bar.
        matmuls: the network's matrix products, `"float32"` or `"bfloat16"` (see
            [`eqdd.compression.CodecModel.scheme`][]); the header records it for the decoder.
        history: what to mix into the network's distributions, one of
            [`eqdd.compression.container.HISTORIES`][]: `"none"`, or `"match"` for text (the match model
            of the text coded so far, [`eqdd.compression.matching`][]); the header records it.

    Returns:
        The file's bytes.

    Raises:
        ModelMismatchError: when the model codes another kind of data.
        CompressionError: for bfloat16 products with a network that has none.
        ValueError: for a budget outside `1..D`, a batch size outside `1..65535`, a seed outside
            `0..2^32-1`, a striped order with a seed, or an unknown history or one for images or audio.
    """
    check_kind(model, kind)
    if not 1 <= batch_size < 1 << 16 or not 0 <= order.seed < 1 << 32:
        raise ValueError(
            f"the batch size must be in 1..65535 and the seed in 0..2^32-1, got {batch_size}, {order.seed}"
        )
    if order.kind == "striped" and order.seed:
        raise ValueError(f"a striped order has no seed, got {order.seed}")
    if history not in container.HISTORIES or (history != "none" and kind != "text"):
        raise ValueError(
            f"the history mixed in is one of {', '.join(container.HISTORIES)}, and none for {kind}"
        )
    scheme = model.scheme(order, budget, matmuls)
    tokens = model.tokens(symbols)
    words, first_table = codec.encode(
        scheme, tokens, batch_size, show_progress, _unit(model, kind), _history(model, history, len(tokens))
    )
    header = container.Header(
        kind=kind,
        num_symbols=symbols.shape[0],
        data_crc=zlib.crc32(data),
        fingerprint=model.fingerprint,
        order_seed=order.seed,
        order_crc=codec.checksum(scheme.orders),
        budget=budget,
        policy_crc=_policy_checksum(scheme),
        first_table_crc=first_table,
        batch_size=batch_size,
        image_shape=model.image_shape,
        environment=environment(),
        matmuls=matmuls,
        order_kind=order.kind,
        history=history,
    )
    return container.pack(header, words)


def decompress_to(
    blob: bytes,
    model: CodecModel,
    kind: str,
    to_bytes: Callable[[np.ndarray], bytes],
    write: Callable[[bytes], object],
    show_progress: bool,
) -> container.Header:
    """Decode a compressed file batch by batch, handing the original bytes to `write` in order as soon
    as they are decoded (memory bounded by one batch, or, for a file with a model of its history, by
    the file's text: see [`eqdd.compression.codec.decode_batches`][]), checking everything that can be
    checked.

    The original's checksum can only be checked at the end: on any error the caller must discard what
    `write` received (the `eqdd` command writes a temporary file and renames it only on success).

    Arguments:
        blob: the file's bytes.
        model: the model the file was compressed with.
        kind: `"text"` or `"images"`: what the caller decodes; must be the model's.
        to_bytes: the original bytes of some decoded symbols (whose CRC32, over the whole stream, the
            header holds).
        write: takes the original bytes, batch after batch.
        show_progress: show a progress bar.

    Returns:
        The header.

    Raises:
        FormatError, TruncatedFileError, CorruptedFileError: see [`eqdd.compression.container.unpack`][].
        ModelMismatchError: the model codes another kind of data, or the file was written with
            another model (another kind, image shape or fingerprint).
        DeterminismError: the network's outputs here differ from the encoder's (the message names the
            environment the file was written in and this one).
    """
    check_kind(model, kind)
    header, words = container.unpack(blob)
    if (header.kind, header.image_shape) != (model.kind, model.image_shape):
        raise ModelMismatchError(
            f"the file holds {contents(header)}, but the checkpoint is {model.describe()}: decompress it "
            "with the checkpoint it was compressed with"
        )
    if header.fingerprint != model.fingerprint:
        raise ModelMismatchError(
            f"the file was compressed with another model (fingerprint {header.fingerprint.hex()}, "
            f"this model's is {model.fingerprint.hex()}): decompress it with the checkpoint it was "
            "compressed with"
        )
    steps = model.num_positions  # the most network calls a chunk (or a stage) can take
    if header.budget > steps:
        raise CorruptedFileError(
            f"the file is damaged: its header asks for {header.budget:,} network calls per chunk, and this "
            f"model has {steps:,} steps"
        )
    try:
        scheme = model.scheme(header.order, header.budget, header.matmuls)
        if _policy_checksum(scheme) != header.policy_crc:
            raise DeterminismError("the planner finds another policy for the file's budget")
        if codec.checksum(scheme.orders) != header.order_crc:
            raise DeterminismError("jax draws other orders from the file's seed")
        batches = codec.decode_batches(
            scheme,
            words,
            model.num_tokens(header.num_symbols),
            header.batch_size,
            header.first_table_crc,
            show_progress,
            _unit(model, kind),
            _history(model, header.history, model.num_tokens(header.num_symbols)),
        )
        crc, left = 0, header.num_symbols
        for tokens in batches:
            symbols = model.symbols(tokens)[:left]  # a group model's last token holds fill: dropped
            left -= len(symbols)
            data = to_bytes(symbols)
            crc = zlib.crc32(data, crc)
            write(data)
        if crc != header.data_crc:
            raise DeterminismError("the decoded data fail the original's checksum")
    except DeterminismError as error:
        raise DeterminismError(
            f"{error}: this environment ({environment()}) does not reproduce the network outputs of the "
            f"one that wrote the file ({header.environment}). Decode with the same jax and jaxlib versions "
            "on the same kind of CPU."
        ) from None
    return header


def decompress(
    blob: bytes,
    model: CodecModel,
    kind: str,
    to_bytes: Callable[[np.ndarray], bytes],
    show_progress: bool,
) -> tuple[container.Header, bytes]:
    """[`decompress_to`][] (same arguments and errors) into memory.

    Returns:
        The header and the original bytes, exactly.
    """
    parts: list[bytes] = []
    header = decompress_to(blob, model, kind, to_bytes, parts.append, show_progress)
    return header, b"".join(parts)
