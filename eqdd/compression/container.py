"""The compressed file: a header, then the ANS words.

Layout (little-endian; `E` the length of the environment text):

| bytes | field | what |
|---|---|---|
| 8 | magic | `EQDDARDM` |
| 1 | version | 5 |
| 1 | kind | 0: text (text8 alphabet), 1: images, 2: audio (16-bit samples at the model's rate) |
| 1 | matmuls | the network's matrix products: 0 float32, 1 bfloat16 inputs accumulated in float32 |
| 1 | order_kind | 0: seeded orders, 1: striped ([`eqdd.compression.schemes.Order`][]) |
| 1 | history | mixed in: 0 nothing, 1 a match model ([`eqdd.compression.matching`][]) |
| 8 | num_symbols | symbols coded: characters, sub-pixels `N·H·W·C` of `N` images, or audio samples |
| 4 | data_crc | CRC32 of the original bytes (images: uint8 pixels `(N, H, W, C)`; audio: int16 samples, LE) |
| 16 | fingerprint | the model's ([`eqdd.compression.model.fingerprint`][]) |
| 4 | order_seed | seeded: the orders are [`eqdd.compression.schemes.orders_from_seed`][] of it; striped: 0 |
| 4 | order_crc | CRC32 of the `(S, D)` orders (int32), to catch a jax that draws other permutations |
| 2 | budget | `K`, network calls per chunk and stage (seeded: the model's optimal policy for `K`) |
| 4 | policy_crc | CRC32 of the `(S, K)` policy (int64), to catch a planner that plans another |
| 4 | first_table_crc | CRC32 of the first network call's quantised table |
| 2 | batch_size | chunks (images) per network call |
| 3 x 2 | image_shape | `H`, `W`, `C` of every image; zeros for text and audio |
| 4 | num_words | 32-bit ANS words in the payload |
| 4 | payload_crc | CRC32 of the payload |
| 1 + E | environment | where the file was written (jax, jaxlib, CPU architecture), UTF-8 |
| 4 | header_crc | CRC32 of every header byte before it |
| 4·num_words | payload | the ANS words |

Version 3 is version 5 without the `order_kind` and `history` bytes (its orders were all seeded, with
nothing mixed in), and version 2 is version 3 without the `matmuls` byte (its files were all coded in
float32); both are read as such. Versions 1 (text only, without `kind` and `image_shape`) and 4 (the
layout of version 5 with a first form of the match model) were written only by development versions
between releases; such a file is refused with a [`FormatError`][eqdd.compression.FormatError] that
says so.
"""

import dataclasses
import math
import struct
import zlib

import numpy as np

from eqdd.compression.errors import CompressionError, CorruptedFileError, FormatError, TruncatedFileError
from eqdd.compression.schemes import ORDER_KINDS, Order

# A format limit: files average at least this many bits per symbol (the encoder refuses inputs that
# would not), so a header cannot claim more symbols than its payload could hold and decoding work is
# bounded by the file's size. Real models on real data cost hundreds of times more.
MIN_BITS_PER_SYMBOL = 1 / 1024

MAGIC = b"EQDDARDM"
VERSION = 5
KINDS = ("text", "images", "audio")  # the kind byte indexes this
MATMULS = ("float32", "bfloat16")  # the matmuls byte indexes this
HISTORIES = ("none", "match")  # the history byte indexes this
# magic and version, the header fields, then the payload's, per version read
_FIXED = {
    5: struct.Struct("<8sBBBBBQI16sIIHIIH3HII"),
    3: struct.Struct("<8sBBBQI16sIIHIIH3HII"),
    2: struct.Struct("<8sBBQI16sIIHIIH3HII"),
}
_CRC = struct.Struct("<I")
_DEVELOPMENT = {  # versions only development versions of eqdd wrote, never a release
    1: " (a development version of eqdd before image support)",
    4: " (a development version of eqdd's match model, never released)",
}


@dataclasses.dataclass(frozen=True)
class Header:
    """The header fields (see the module docstring), in the order of the file."""

    kind: str
    num_symbols: int
    data_crc: int
    fingerprint: bytes
    order_seed: int
    order_crc: int
    budget: int
    policy_crc: int
    first_table_crc: int
    batch_size: int
    image_shape: tuple[int, int, int] | None  # None for text
    environment: str
    matmuls: str = "float32"  # one of MATMULS
    order_kind: str = "seeded"  # one of ORDER_KINDS
    history: str = "none"  # one of HISTORIES

    @property
    def order(self) -> Order:
        """The order the file's chunks were coded in."""
        return Order(self.order_kind, self.order_seed)

    @property
    def num_images(self) -> int:
        """How many images the file holds (0 for text)."""
        return self.num_symbols // math.prod(self.image_shape) if self.image_shape else 0


def pack(header: Header, words: np.ndarray) -> bytes:
    """The file's bytes for a header and the ANS words.

    Raises:
        CompressionError: when the data average under `MIN_BITS_PER_SYMBOL` (the format's limit).
    """
    if header.num_symbols > max_symbols(len(words)):
        raise CompressionError(
            f"{header.num_symbols:,} symbols in {len(words):,} words average under the format's limit of "
            f"{MIN_BITS_PER_SYMBOL:.4g} bits per symbol: the input is too predictable to store"
        )
    payload = np.asarray(words, "<u4").tobytes()
    kind, *fields, image_shape, environment, matmuls, order_kind, history = dataclasses.astuple(header)
    environment = environment.encode()[:255]
    head = (
        _FIXED[VERSION].pack(
            MAGIC,
            VERSION,
            KINDS.index(kind),
            MATMULS.index(matmuls),
            ORDER_KINDS.index(order_kind),
            HISTORIES.index(history),
            *fields,
            *(image_shape or (0, 0, 0)),
            len(words),
            zlib.crc32(payload),
        )
        + bytes([len(environment)])
        + environment
    )
    return head + _CRC.pack(zlib.crc32(head)) + payload


def _need(data: bytes, end: int, what: str) -> None:
    if len(data) < end:
        raise TruncatedFileError(f"the file is truncated: it ends at byte {len(data):,}, inside its {what}")


def max_symbols(num_words: int) -> int:
    """The most symbols a payload of `num_words` ANS words may hold (`MIN_BITS_PER_SYMBOL` on
    average), so decoding work is bounded by the file's size whatever its header says."""
    return math.floor(32 * (num_words + 1) / MIN_BITS_PER_SYMBOL)


def _check_consistent(header: Header, shape: tuple[int, int, int], num_words: int) -> None:
    """Refuse a header (whose checksum holds: crafted, or written by a broken encoder) that no encoder
    writes, before anything is decoded or allocated from it."""
    problems = []
    if header.num_symbols > max_symbols(num_words):
        problems.append(f"{header.num_symbols:,} symbols, more than {num_words:,} words can hold")
    if header.budget < 1:
        problems.append(f"a budget of {header.budget} network calls")
    if header.batch_size < 1:
        problems.append(f"a batch size of {header.batch_size}")
    if header.kind != "images" and shape != (0, 0, 0):
        problems.append(f"an image shape {shape} for {header.kind}")
    if header.order_kind == "striped" and header.order_seed:
        problems.append(f"a striped order with a seed ({header.order_seed})")
    if header.history != "none" and header.kind != "text":
        problems.append(f"a model of history for {header.kind}")
    if header.kind == "images":
        if min(shape) < 1:
            problems.append(f"an image shape {shape}")
        elif header.num_symbols % math.prod(shape):
            problems.append(f"{header.num_symbols:,} sub-pixels, not a whole number of {shape} images")
    if problems:
        raise CorruptedFileError(f"the file is damaged: its header has {' and '.join(problems)}")


def unpack(data: bytes) -> tuple[Header, np.ndarray]:
    """Parse and check a file's bytes.

    Returns:
        The header and the ANS words (uint32).

    Raises:
        FormatError: not an eqdd file, or another format version.
        TruncatedFileError: the file ends before the header says.
        CorruptedFileError: the header or the payload fails its CRC32, bytes follow the payload, or
            the header holds values no encoder writes (a budget or batch size of 0, a striped order
            with a seed, a model of history for images or audio, an empty image shape, a symbol count
            that is not a whole number of images or that the payload cannot hold, see
            [`max_symbols`][eqdd.compression.container.max_symbols]).
    """
    if not data or data[: len(MAGIC)] != MAGIC[: len(data)]:
        raise FormatError("not an eqdd compressed file (its first bytes are not the magic EQDDARDM)")
    _need(data, len(MAGIC) + 1, "header")
    version = data[len(MAGIC)]
    if version not in _FIXED:
        written_by = _DEVELOPMENT.get(version, "")
        readable = ", ".join(map(str, sorted(_FIXED)[:-1])) + f" and {VERSION}"
        raise FormatError(
            f"format version {version}{written_by}; this eqdd reads versions {readable}: decompress "
            "the file with the eqdd that wrote it"
        )
    fixed = _FIXED[version]
    _need(data, fixed.size + 1, "header")
    kind, *fields, height, width, channels, num_words, payload_crc = fixed.unpack_from(data)[2:]
    matmuls = fields.pop(0) if version >= 3 else 0
    order_kind = fields.pop(0) if version >= 5 else 0
    history = fields.pop(0) if version >= 5 else 0
    environment_end = fixed.size + 1 + data[fixed.size]
    header_end = environment_end + _CRC.size
    _need(data, header_end, "header")
    if zlib.crc32(data[:environment_end]) != _CRC.unpack_from(data, environment_end)[0]:
        raise CorruptedFileError("the file is damaged: its header fails its checksum")
    if kind >= len(KINDS):
        raise FormatError(f"unknown kind {kind} of data; this eqdd codes {' and '.join(KINDS)}")
    if matmuls >= len(MATMULS):
        raise FormatError(f"unknown matrix products {matmuls}; this eqdd computes {' and '.join(MATMULS)}")
    if order_kind >= len(ORDER_KINDS):
        raise FormatError(f"unknown kind of order {order_kind}; this eqdd codes {' and '.join(ORDER_KINDS)}")
    if history >= len(HISTORIES):
        raise FormatError(f"unknown model of history {history}; this eqdd mixes in {' or '.join(HISTORIES)}")
    _need(data, header_end + 4 * num_words, f"payload ({num_words * 4:,} bytes from byte {header_end:,})")
    payload = data[header_end : header_end + 4 * num_words]
    if len(data) > header_end + len(payload):
        raise CorruptedFileError(
            f"the file is damaged: {len(data) - header_end - len(payload):,} bytes follow the payload"
        )
    if zlib.crc32(payload) != payload_crc:
        raise CorruptedFileError("the file is damaged: its payload fails its checksum")
    environment = data[fixed.size + 1 : environment_end].decode(errors="replace")
    image_shape = (height, width, channels) if KINDS[kind] == "images" else None
    header = Header(
        KINDS[kind],
        *fields,
        image_shape,
        environment,
        MATMULS[matmuls],
        ORDER_KINDS[order_kind],
        HISTORIES[history],
    )
    _check_consistent(header, (height, width, channels), num_words)
    return header, np.frombuffer(payload, "<u4").astype(np.uint32)
