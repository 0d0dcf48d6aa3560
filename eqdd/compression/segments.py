"""Text of any length in bounded memory: a file of independently coded segments.

[`compress_stream`][eqdd.compression.segments.compress_stream] reads its input a segment at a time (at
most `segment_bytes` bytes, 256 KiB by default; a cut never splits a UTF-8 character), codes each segment
as a whole file of its own ([`eqdd.compression.text`][] for text in the text8 alphabet,
[`eqdd.compression.plain`][] for any other UTF-8 text) and writes it before reading the next;
[`decode_segments`][eqdd.compression.segments.decode_segments] reads, checks and decodes one segment
at a time and hands the text on as it is decoded. Memory stays bounded by one segment whatever the
input's length. Chunks of `D` characters are coded independently anyway, so a segment costs only
its own headers (about 120 bytes, and about 60 more for the side stream of text outside the text8
alphabet: about 0.005 bits per character at 256 KiB) and the shorter context of its last chunk.

Layout (little-endian):

| bytes | field | what |
|---|---|---|
| 8 | magic | `EQDDSEGS` |
| 1 | version | 1 |
| 16 | fingerprint | the model's (each segment's own header repeats it) |
| 4 | segment_bytes | the most original bytes in one segment |
| 4 | header_crc | CRC32 of the header bytes before it |
| 4 + L | segment, repeated | `L > 0`, then a whole compressed file of `L` bytes (`EQDDARDM` or `EQDDTEXT`) |
| 4 | end | 0: no more segments |
| 8 | length | bytes of the original text |
| 4 | data_crc | CRC32 of the original text |
| 4 | count | segments |
| 4 | trailer_crc | CRC32 of `length`, `data_crc` and `count` |

A file cut at a segment boundary lacks its trailer and is refused as truncated; the trailer's length,
checksum and count catch segments dropped, repeated or reordered.
"""

import dataclasses
import struct
import zlib
from collections.abc import Callable
from typing import BinaryIO

from eqdd._progress import progress
from eqdd.compression import plain, text
from eqdd.compression.errors import (
    CorruptedFileError,
    DeterminismError,
    FormatError,
    ModelMismatchError,
    TruncatedFileError,
)
from eqdd.compression.model import CodecModel
from eqdd.compression.schemes import STRIPED, Order

MAGIC = b"EQDDSEGS"
VERSION = 1
SEGMENT_BYTES = 1 << 18  # the default: 256 KiB of text, about a minute of coding on 2 cores
MIN_SEGMENT_BYTES = 1 << 10
_HEAD = struct.Struct("<8sB16sI")
_LENGTH = struct.Struct("<I")
_TRAILER = struct.Struct("<QII")
_CRC = struct.Struct("<I")


@dataclasses.dataclass(frozen=True)
class StreamHeader:
    """The header of a segmented file: the model's fingerprint and the segments' size limit."""

    fingerprint: bytes
    segment_bytes: int


@dataclasses.dataclass(frozen=True)
class Summary:
    """What [`compress_stream`][] wrote: original bytes in, file bytes out, segments."""

    bytes_in: int
    bytes_out: int
    segments: int


def max_segment_file(segment_bytes: int) -> int:
    """The largest coded segment a file with this segment size may hold: far above what any model
    writes (a few bits per byte), so a damaged length is refused before it is allocated."""
    return 8 * segment_bytes + (1 << 16)


def cut(buffer: bytes, limit: int) -> int:
    """Where to end a segment of `buffer` (which continues past `limit`): at `limit`, moved back over
    UTF-8 continuation bytes so no character is split (at most 3 bytes back)."""
    end = limit
    while end > max(limit - 3, 0) and 0x80 <= buffer[end] < 0xC0:
        end -= 1
    return end


def _read_exactly(source: BinaryIO, size: int) -> bytes:
    """Up to `size` bytes, fewer only at the end of `source` (reads of pipes may return less)."""
    parts, remaining = [], size
    while remaining:
        part = source.read(remaining)
        if not part:
            break
        parts.append(part)
        remaining -= len(part)
    return b"".join(parts)


def _check_segment_bytes(segment_bytes: int) -> None:
    if not MIN_SEGMENT_BYTES <= segment_bytes < 1 << 32:
        raise ValueError(f"segment_bytes must be in {MIN_SEGMENT_BYTES}..2^32-1, got {segment_bytes}")


def compress_stream(
    source: BinaryIO,
    write: Callable[[bytes], object],
    model: CodecModel,
    budget: int,
    order: Order = STRIPED,
    batch_size: int = 16,
    show_progress: bool = False,
    matmuls: str = "bfloat16",
    history: str = "match",
    segment_bytes: int = SEGMENT_BYTES,
    verify: bool = False,
    total: int | None = None,
) -> Summary:
    """Compress UTF-8 text read from `source`, segment by segment, handing the file's bytes to `write`
    as each segment is coded.

    Arguments:
        source: a binary file, read to its end.
        write: takes the compressed file's bytes, piece after piece.
        model, budget, order, batch_size, matmuls, history: as for [`eqdd.compression.compress`][],
            for every segment (a segment's match model starts afresh: segments decode independently).
        show_progress: a progress bar over the input's bytes.
        segment_bytes: the most original bytes per segment.
        verify: decode each segment and compare it with its text before writing it.
        total: the input's length, for the progress bar (optional).

    Returns:
        The bytes read and written, and the number of segments.

    Raises:
        AlphabetError: for binary input (its offset counted from the start of `source`).
        DeterminismError: with `verify`, when a segment does not decode to its text.
        ModelMismatchError, ValueError: see [`eqdd.compression.compress`][]; a `segment_bytes` outside
            `1024..2^32-1`.
    """
    _check_segment_bytes(segment_bytes)
    head = _HEAD.pack(MAGIC, VERSION, model.fingerprint, segment_bytes)
    write(head + _CRC.pack(zlib.crc32(head)))
    written, crc, count, offset, carry = _HEAD.size + _CRC.size, 0, 0, 0, b""
    with progress(total, "compressing", "B", show_progress, unit_scale=True) as bar:
        while True:
            buffer = carry + _read_exactly(source, segment_bytes + 1 - len(carry))
            if not buffer:
                break
            end = cut(buffer, segment_bytes) if len(buffer) > segment_bytes else len(buffer)
            segment, carry = buffer[:end], buffer[end:]
            plain.check_text(segment, offset)
            code = text.compress if plain.is_text8(segment) else plain.compress
            blob = code(segment, model, budget, order, batch_size, False, matmuls, history)
            if verify and _decode(blob, model) != segment:
                raise DeterminismError(f"the segment at byte {offset:,} does not decompress to the input")
            write(_LENGTH.pack(len(blob)) + blob)
            crc, count, offset = zlib.crc32(segment, crc), count + 1, offset + len(segment)
            written += _LENGTH.size + len(blob)
            bar.update(len(segment))
    trailer = _TRAILER.pack(offset, crc, count)
    write(_LENGTH.pack(0) + trailer + _CRC.pack(zlib.crc32(trailer)))
    return Summary(offset, written + _LENGTH.size + _TRAILER.size + _CRC.size, count)


def decode_file_to(
    blob: bytes, model: CodecModel, write: Callable[[bytes], object], show_progress: bool = False
) -> None:
    """Decode one text file (a segment, or a whole file of an eqdd before segments), `EQDDTEXT` by
    [`eqdd.compression.plain`][] and `EQDDARDM` by [`eqdd.compression.text`][], with their errors."""
    decode = plain.decompress_to if blob.startswith(plain.MAGIC) else text.decompress_to
    decode(blob, model, write, show_progress)


def _decode(blob: bytes, model: CodecModel) -> bytes:
    parts: list[bytes] = []
    decode_file_to(blob, model, parts.append)
    return b"".join(parts)


def read_header(source: BinaryIO) -> StreamHeader:
    """Read and check a segmented file's header (`source` is left at its first segment).

    Raises:
        FormatError: not a segmented file, or another version.
        TruncatedFileError, CorruptedFileError: the header is cut short or fails its checksum.
    """
    data = _read_exactly(source, _HEAD.size + _CRC.size)
    if not data or data[: len(MAGIC)] != MAGIC[: len(data)]:
        raise FormatError("not an eqdd compressed file (its first bytes are not the magic EQDDSEGS)")
    if len(data) < _HEAD.size + _CRC.size:
        raise TruncatedFileError(f"the file is truncated: it ends at byte {len(data):,}, inside its header")
    _, version, fingerprint, segment_bytes = _HEAD.unpack_from(data)
    if version != VERSION:
        raise FormatError(
            f"segmented format version {version}; this eqdd reads version {VERSION}: decompress the file "
            "with the eqdd that wrote it"
        )
    if zlib.crc32(data[: _HEAD.size]) != _CRC.unpack_from(data, _HEAD.size)[0]:
        raise CorruptedFileError("the file is damaged: its header fails its checksum")
    if segment_bytes < MIN_SEGMENT_BYTES:
        raise CorruptedFileError(f"the file is damaged: its header has segments of {segment_bytes} bytes")
    return StreamHeader(fingerprint, segment_bytes)


def decode_segments(
    source: BinaryIO,
    header: StreamHeader,
    model: CodecModel,
    write: Callable[[bytes], object],
    show_progress: bool = False,
) -> int:
    """Decode the segments that follow [`read_header`][] in `source`, handing the text to `write` as it
    is decoded; memory stays bounded by one segment. The whole text's length and checksum are checked at
    the end: discard what `write` received if this raises.

    Returns:
        The length of the text.

    Raises:
        ModelMismatchError: the file was written with another model (or `model` codes no text).
        TruncatedFileError: the file ends inside a segment or before its trailer.
        CorruptedFileError: a segment's length, a checksum, the count of segments or the text's length
            fails, or bytes follow the trailer; and everything a segment's own decoding raises
            ([`eqdd.compression.decompress`][], [`eqdd.compression.plain.decompress`][]).
    """
    if model.kind != "text":
        raise ModelMismatchError(
            f"the file holds text, but the checkpoint is {model.describe()}: decompress it with the "
            "checkpoint it was compressed with"
        )
    if header.fingerprint != model.fingerprint:
        raise ModelMismatchError(
            f"the file was compressed with another model (fingerprint {header.fingerprint.hex()}, this "
            f"model's is {model.fingerprint.hex()}): decompress it with the checkpoint it was compressed with"
        )
    state = {"crc": 0, "size": 0, "segment": 0}

    def decoded(piece: bytes) -> None:
        state["crc"] = zlib.crc32(piece, state["crc"])
        state["size"] += len(piece)
        state["segment"] += len(piece)
        if state["segment"] > header.segment_bytes:
            raise CorruptedFileError("the file is damaged: a segment decodes to more text than segments hold")
        write(piece)
        bar.update(len(piece))

    count = 0
    with progress(None, "decompressing", "B", show_progress, unit_scale=True) as bar:
        while True:
            length = _LENGTH.unpack(_need(source, _LENGTH.size, "segment"))[0]
            if length == 0:
                break
            if length > max_segment_file(header.segment_bytes):
                raise CorruptedFileError(f"the file is damaged: a segment claims {length:,} bytes")
            state["segment"] = 0
            decode_file_to(_need(source, length, "segment"), model, decoded)
            count += 1
    trailer = _need(source, _TRAILER.size + _CRC.size, "trailer")
    if zlib.crc32(trailer[: _TRAILER.size]) != _CRC.unpack_from(trailer, _TRAILER.size)[0]:
        raise CorruptedFileError("the file is damaged: its trailer fails its checksum")
    length, crc, segments = _TRAILER.unpack_from(trailer)
    if (length, crc, segments) != (state["size"], state["crc"], count):
        raise CorruptedFileError(
            f"the file is damaged: it decodes to {count:,} segments of {state['size']:,} bytes, and its "
            f"trailer says {segments:,} of {length:,} (or the text fails its checksum)"
        )
    if source.read(1):
        raise CorruptedFileError("the file is damaged: bytes follow its trailer")
    return length


def _need(source: BinaryIO, size: int, what: str) -> bytes:
    data = _read_exactly(source, size)
    if len(data) < size:
        raise TruncatedFileError(f"the file is truncated: it ends inside a {what}")
    return data
