"""Text of any length in bounded memory: segmented files round-trip exactly, read and write a segment at
a time, and every damage is caught."""

import io
import struct

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from eqdd import compression
from eqdd.compression import segments
from tests.test_compression import BUDGET, MODEL, random_text, tiny_model

SEGMENT = segments.MIN_SEGMENT_BYTES


class Recorder(io.BytesIO):
    """A source that remembers the size of every read."""

    def __init__(self, data: bytes):
        super().__init__(data)
        self.reads: list[int] = []

    def read(self, size: int = -1) -> bytes:
        self.reads.append(size)
        return super().read(size)


def compress(data: bytes, segment_bytes: int = SEGMENT, **options) -> tuple[bytes, segments.Summary]:
    pieces: list[bytes] = []
    summary = segments.compress_stream(
        io.BytesIO(data), pieces.append, MODEL, BUDGET, batch_size=4, segment_bytes=segment_bytes, **options
    )
    return b"".join(pieces), summary


def decompress(blob: bytes, model=MODEL) -> bytes:
    source = io.BytesIO(blob)
    pieces: list[bytes] = []
    length = segments.decode_segments(source, segments.read_header(source), model, pieces.append)
    assert length == sum(map(len, pieces))
    return b"".join(pieces)


@settings(max_examples=200)
@given(st.text(max_size=40), st.integers(4, 60))
def test_a_cut_never_splits_a_character_and_moves_back_at_most_three_bytes(text, limit):
    data = text.encode()
    if len(data) <= limit:
        return
    end = segments.cut(data, limit)
    assert limit - 3 <= end <= limit
    data[:end].decode()  # both halves are whole characters
    data[end:].decode()


ORDINARY = "The Cat sat on 3 mats.\nCaf\u00e9 \u2603 -- \U0001f600 fast!\r\n".encode()


@settings(max_examples=4, deadline=None)
@given(st.integers(0, 2), st.integers(0, 2 * SEGMENT), st.integers(0, 10))
@example(0, 0, 0)  # empty: no segment at all
@example(2, SEGMENT + 1, 3)  # one byte past a segment, mixed
def test_any_text_round_trips_through_segments_read_and_written_one_at_a_time(kind, length, seed):
    text8_like, ordinary = random_text(length, seed), (ORDINARY * (length // len(ORDINARY) + 1))[:length]
    data = {0: text8_like, 1: ordinary}.get(
        kind, text8_like[: length // 2] + ordinary[: length - length // 2]
    )
    data = data.decode(errors="ignore").encode()  # whole characters only (a byte slice may split one)
    source, written = Recorder(data), []
    summary = segments.compress_stream(
        source, written.append, MODEL, BUDGET, batch_size=4, segment_bytes=SEGMENT
    )
    blob = b"".join(written)
    assert max(source.reads) <= SEGMENT + 1  # memory bounded by a segment, whatever the length
    assert len(written) == summary.segments + 2  # the header, each segment as soon as coded, the trailer
    assert (summary.bytes_in, summary.bytes_out) == (len(data), len(blob))
    assert -(-len(data) // SEGMENT) <= summary.segments <= -(-len(data) // (SEGMENT - 3))
    assert decompress(blob) == data


def test_binary_input_is_refused_with_its_offset_in_the_whole_input():
    data = random_text(SEGMENT + 500, 0)
    for bad, message in ((b"\0", "a NUL byte at offset 1,500"), (b"\xff", "not UTF-8 at offset 1,500")):
        with pytest.raises(compression.AlphabetError, match=message):
            compress(data[:1500] + bad + data[1500:])


def test_verify_decodes_each_segment_before_writing_it():
    data = random_text(SEGMENT + 10, 1) + ORDINARY
    blob, summary = compress(data, verify=True)
    assert summary.segments == 2 and decompress(blob) == data


def _split(blob: bytes) -> tuple[bytes, list[bytes], bytes]:
    """Header, segments (each with its length) and trailer of a segmented file."""
    at, parts = 29 + 4, []
    header = blob[:at]
    while (length := struct.unpack_from("<I", blob, at)[0]) != 0:
        parts.append(blob[at : at + 4 + length])
        at += 4 + length
    return header, parts, blob[at:]


@pytest.fixture(scope="module")
def segmented() -> tuple[bytes, bytes]:
    data = random_text(2 * SEGMENT + 100, 2) + ORDINARY
    return data, compress(data)[0]


def test_segments_dropped_repeated_or_reordered_are_caught(segmented):
    data, blob = segmented
    header, parts, trailer = _split(blob)
    assert len(parts) == 3 and decompress(header + b"".join(parts) + trailer) == data
    for changed in (
        [parts[0], parts[2]],
        [parts[0], parts[1], parts[1], parts[2]],
        [parts[1], parts[0], parts[2]],
    ):
        with pytest.raises(compression.CorruptedFileError, match="trailer says"):
            decompress(header + b"".join(changed) + trailer)
    with pytest.raises(compression.TruncatedFileError, match="inside a segment"):
        decompress(header + parts[0])  # cut at a segment boundary: no trailer
    with pytest.raises(compression.CorruptedFileError, match="bytes follow its trailer"):
        decompress(blob + b"x")


def test_a_file_of_another_model_is_refused_before_decoding(segmented):
    with pytest.raises(compression.ModelMismatchError, match="compressed with another model"):
        decompress(segmented[1], tiny_model(1))


@settings(max_examples=25, deadline=None)
@given(st.data())
def test_any_damage_decodes_exactly_or_fails_with_a_documented_error(segmented, data):
    original, blob = segmented
    blob = bytearray(blob)
    if data.draw(st.booleans()):
        blob = blob[: data.draw(st.integers(0, len(blob) - 1))]
    else:
        at = data.draw(st.integers(0, len(blob) - 1))
        blob[at] ^= 1 << data.draw(st.integers(0, 7))
    try:
        assert decompress(bytes(blob)) == original
    except (
        compression.FormatError,
        compression.TruncatedFileError,
        compression.CorruptedFileError,
        compression.DeterminismError,
    ):
        pass
