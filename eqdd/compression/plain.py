"""Any UTF-8 text, losslessly: the model codes the text's text8 projection, a side stream the rest.

The projection lowercases every letter and turns every maximal run of other bytes (spaces,
punctuation, digits, newlines, any UTF-8 character that is not `A`-`Z` or `a`-`z`) into one space, so
ordinary English becomes text8-like text, which the model codes well. The side stream holds what the
projection lost: the positions of the capitals, and the bytes of every run that was not a single
space; it is small for ordinary text and coded with LZMA.

File layout (little-endian), an envelope around an ordinary compressed file of the projection:

| bytes | field | what |
|---|---|---|
| 8 | magic | `EQDDTEXT` |
| 1 | version | 1 |
| 8 | length | bytes of the original text |
| 4 | data_crc | CRC32 of the original text |
| 4 | side_length | bytes of the side stream |
| 4 | side_crc | CRC32 of the side stream |
| 4 | header_crc | CRC32 of the header bytes before it |
| side_length | side | the LZMA-compressed side stream |
| rest | projection | the compressed projection ([`eqdd.compression.container`][]) |

Decoding streams: each decoded batch of the projection is turned back into original bytes at once.
Binary input (a NUL byte, or bytes that are not UTF-8) is refused.
"""

import lzma
import struct
import zlib
from collections.abc import Callable

import numpy as np

from eqdd.compression import message
from eqdd.compression.errors import AlphabetError, CorruptedFileError, FormatError, TruncatedFileError
from eqdd.compression.model import CodecModel
from eqdd.compression.schemes import STRIPED, Order
from eqdd.data import text8

MAGIC = b"EQDDTEXT"
VERSION = 1
_HEAD = struct.Struct("<8sBQIII")
_CRC = struct.Struct("<I")
SPACE = ord(" ")


def _varints(values: np.ndarray) -> bytes:
    """Unsigned LEB128 of each value."""
    out = bytearray()
    for value in values.tolist():
        while value >= 0x80:
            out.append(value & 0x7F | 0x80)
            value >>= 7
        out.append(value)
    return bytes(out)


class _Reader:
    """Reads what [`_varints`][] and raw bytes wrote; any overrun is a damaged side stream."""

    def __init__(self, data: bytes):
        self.data, self.at = data, 0

    def varint(self) -> int:
        value = shift = 0
        while True:
            if self.at >= len(self.data) or shift > 63:
                raise CorruptedFileError("the file is damaged: its side stream is cut short")
            byte = self.data[self.at]
            self.at += 1
            value |= (byte & 0x7F) << shift
            shift += 7
            if byte < 0x80:
                return value

    def take(self, count: int) -> bytes:
        if self.at + count > len(self.data):
            raise CorruptedFileError("the file is damaged: its side stream is cut short")
        self.at += count
        return self.data[self.at - count : self.at]


def is_text8(data: bytes) -> bool:
    """Whether `data` is already in the text8 alphabet (coded without an envelope)."""
    raw = np.frombuffer(data, np.uint8)
    return bool(np.all(((raw >= 97) & (raw <= 122)) | (raw == SPACE)))


def check_text(data: bytes, offset: int = 0) -> None:
    """Refuse binary input: a NUL byte, or bytes that are not UTF-8.

    Arguments:
        data: the input, or a piece of it.
        offset: where `data` starts in the input (for the message).

    Raises:
        AlphabetError: naming the offset of the first offending byte.
    """
    if b"\0" in data:
        raise AlphabetError(
            f"binary input (a NUL byte at offset {offset + data.index(0):,}): give a text file"
        )
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise AlphabetError(
            f"binary input (not UTF-8 at offset {offset + error.start:,}): give a UTF-8 text file"
        ) from None


def project(data: bytes) -> tuple[bytes, bytes]:
    """The text8 projection of UTF-8 text, and the LZMA-compressed side stream that restores the text
    from it (see the module docstring).

    Raises:
        AlphabetError: for binary input (see [`check_text`][]).
    """
    check_text(data)
    raw = np.frombuffer(data, np.uint8)
    upper = (raw >= 65) & (raw <= 90)
    letter = upper | ((raw >= 97) & (raw <= 122))
    after_letter = np.concatenate([[True], letter[:-1]])[: len(raw)]  # follows a letter, or starts
    starts = ~letter & after_letter  # the first byte of each run of non-letters
    keep = letter | starts
    projection = np.where(letter, raw | 0x20, SPACE).astype(np.uint8)[keep]
    capitals = np.flatnonzero(upper[keep])
    run_starts = np.flatnonzero(starts)
    letter_starts = np.flatnonzero(letter & np.concatenate([[True], ~letter[:-1]])[: len(raw)])
    following = np.searchsorted(letter_starts, run_starts)  # the first letter after each run's start
    ends = np.append(letter_starts, len(raw))[following]
    plain_space = (ends - run_starts == 1) & (raw[run_starts] == SPACE)
    special = np.flatnonzero(~plain_space)
    lengths = (ends - run_starts)[special]
    side = b"".join(
        [
            _varints(np.array([len(capitals)])),
            _varints(np.diff(capitals, prepend=0)),
            _varints(np.array([len(special)])),
            _varints(np.diff(special, prepend=0)),
            _varints(lengths),
            *(data[run_starts[i] : ends[i]] for i in special),
        ]
    )
    return projection.tobytes(), lzma.compress(side, preset=9)


class _Restorer:
    """Turns the projection back into the original text, one decoded piece at a time."""

    def __init__(self, side: bytes):
        reader = _Reader(side)
        self.capitals = np.cumsum([reader.varint() for _ in range(reader.varint())], dtype=np.int64)
        count = reader.varint()
        self.special = np.cumsum([reader.varint() for _ in range(count)], dtype=np.int64)
        lengths = [reader.varint() for _ in range(count)]
        self.runs = [reader.take(length) for length in lengths]
        if reader.at != len(side):
            raise CorruptedFileError("the file is damaged: its side stream has bytes past its end")
        self.position = self.run = self.next_capital = self.next_special = 0

    def __call__(self, piece: bytes) -> bytes:
        chars = np.frombuffer(piece, np.uint8).copy()
        end = self.position + len(chars)
        last = np.searchsorted(self.capitals, end)
        capitals = self.capitals[self.next_capital : last] - self.position
        if len(capitals) and not np.all((chars[capitals] >= 97) & (chars[capitals] <= 122)):
            raise CorruptedFileError("the file is damaged: its side stream capitalises a non-letter")
        chars[capitals] -= 32
        spaces = np.flatnonzero(chars == SPACE)
        stop = np.searchsorted(self.special, self.run + len(spaces))
        pieces, begin = [], 0
        for index in range(self.next_special, stop):
            at = int(spaces[self.special[index] - self.run])
            pieces += [chars[begin:at].tobytes(), self.runs[index]]
            begin = at + 1
        pieces.append(chars[begin:].tobytes())
        self.position, self.run = end, self.run + len(spaces)
        self.next_capital, self.next_special = last, stop
        return b"".join(pieces)

    def finish(self) -> None:
        if self.next_capital != len(self.capitals) or self.next_special != len(self.special):
            raise CorruptedFileError("the file is damaged: its side stream does not fit its text")


def wrap(data: bytes, side: bytes, projection_file: bytes) -> bytes:
    """The envelope of `data` around its side stream and its compressed projection."""
    head = _HEAD.pack(MAGIC, VERSION, len(data), zlib.crc32(data), len(side), zlib.crc32(side))
    return head + _CRC.pack(zlib.crc32(head)) + side + projection_file


def unpack(blob: bytes) -> tuple[int, int, bytes, bytes]:
    """The original length and CRC32, the side stream (decompressed) and the compressed projection of a
    file written by [`wrap`][], each checked.

    Raises:
        FormatError: not such a file, or a newer version.
        TruncatedFileError: the file is cut short.
        CorruptedFileError: a checksum fails or the side stream does not decompress within its bound.
    """
    if not blob.startswith(MAGIC):
        raise FormatError("not an eqdd compressed text file")
    size = _HEAD.size + _CRC.size
    if len(blob) < size:
        raise TruncatedFileError(f"the file is truncated: {len(blob)} bytes, shorter than its header")
    _, version, length, data_crc, side_length, side_crc = _HEAD.unpack_from(blob)
    if version != VERSION:
        raise FormatError(f"the text envelope has version {version}; this eqdd reads version {VERSION}")
    if zlib.crc32(blob[: _HEAD.size]) != _CRC.unpack_from(blob, _HEAD.size)[0]:
        raise CorruptedFileError("the file is damaged: its text header fails its checksum")
    side = blob[size : size + side_length]
    if len(side) != side_length:
        raise TruncatedFileError("the file is truncated: its side stream is cut short")
    if zlib.crc32(side) != side_crc:
        raise CorruptedFileError("the file is damaged: its side stream fails its checksum")
    inflater = lzma.LZMADecompressor(format=lzma.FORMAT_XZ)
    try:  # the side stream never exceeds a few bytes per original byte: bound the work by the file
        raw = inflater.decompress(side, max_length=8 * length + 64)
    except lzma.LZMAError:
        raise CorruptedFileError("the file is damaged: its side stream does not decompress") from None
    if not inflater.eof:
        raise CorruptedFileError("the file is damaged: its side stream is longer than its text allows")
    return length, data_crc, raw, blob[size + side_length :]


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
    """Compress any UTF-8 text (see the module docstring); the arguments are those of
    [`eqdd.compression.compress`][], which this calls on the projection.

    Raises:
        AlphabetError: for binary input.
    """
    projection, side = project(data)
    inner = message.compress(
        text8.encode(projection),
        projection,
        "text",
        model,
        budget,
        order,
        batch_size,
        show_progress,
        matmuls,
        history,
    )
    return wrap(data, side, inner)


def decompress_to(
    blob: bytes, model: CodecModel, write: Callable[[bytes], object], show_progress: bool = False
) -> None:
    """Decompress what [`compress`][] wrote, handing the original text to `write` as it is decoded
    (see [`eqdd.compression.decompress_to`][] for when); checked at the end against the original's
    length and CRC32, so discard what `write` received if this raises.

    Raises:
        FormatError, TruncatedFileError, CorruptedFileError: see [`unpack`][] and
            [`eqdd.compression.message.decompress_to`][].
        ModelMismatchError, DeterminismError: see [`eqdd.compression.message.decompress_to`][].
    """
    length, data_crc, side, inner = unpack(blob)
    restore = _Restorer(side)
    state = {"crc": 0, "size": 0}

    def restored(piece: bytes) -> None:
        original = restore(piece)
        state["crc"] = zlib.crc32(original, state["crc"])
        state["size"] += len(original)
        if state["size"] > length:
            raise CorruptedFileError("the file is damaged: it decodes to more text than its header says")
        write(original)

    message.decompress_to(
        inner, model, "text", lambda tokens: text8.decode(tokens).encode(), restored, show_progress
    )
    restore.finish()
    if (state["size"], state["crc"]) != (length, data_crc):
        raise CorruptedFileError("the file is damaged: the restored text fails the original's checksum")


def decompress(blob: bytes, model: CodecModel, show_progress: bool = False) -> bytes:
    """[`decompress_to`][] (same arguments and errors) into memory: the original text, exactly."""
    parts: list[bytes] = []
    decompress_to(blob, model, parts.append, show_progress)
    return b"".join(parts)
