"""The compression codec: exact tables, exact round trips, code length = -log2 p, documented errors."""

import dataclasses
import lzma
import zlib

import equinox as eqx
import jax
import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from eqdd import compression
from eqdd.compression import Order, ans, codec, container, plain
from eqdd.data import text8
from eqdd.denoisers import Transformer
from eqdd.objectives import OAARDMObjective
from eqdd.processes import AbsorbingProcess

D = 16
BUDGET = 5
ALPHABET = text8.ALPHABET.encode()


def tiny_model(seed: int, chars_per_token: int = 1) -> compression.CodecModel:
    """An untrained tiny transformer whose head is scaled up, so its conditionals are far from uniform;
    chunks of `D` characters (`D / chars_per_token` tokens)."""
    classes, positions = text8.num_classes(chars_per_token), D // chars_per_token
    network = Transformer(classes + 1, classes, 16, 1, 2, 32, key=jax.random.PRNGKey(seed))
    network = eqx.tree_at(lambda m: m.head.weight, network, 4 * network.head.weight)
    losses = np.linspace(3.0, 1.0, positions)
    objective = OAARDMObjective(AbsorbingProcess(classes))  # the absorbing token is the last class + 1
    return compression.CodecModel.create(
        network, objective, positions, losses, {"test": seed}, symbols_per_token=chars_per_token
    )


MODEL = tiny_model(0)
PAIRS = tiny_model(0, chars_per_token=2)  # the same network shape over pairs of characters


def random_text(length: int, seed: int) -> bytes:
    return bytes(np.random.default_rng(seed).choice(np.frombuffer(ALPHABET, np.uint8), length))


@pytest.fixture(scope="module")
def blob() -> bytes:
    return compression.compress(random_text(100, 0), MODEL, BUDGET, order=Order("seeded", 2), batch_size=4)


@settings(max_examples=20)
@given(st.lists(st.floats(0.0, 1.0, width=32), min_size=2, max_size=40), st.integers(0, 2**31))
def test_tables_give_every_symbol_mass_and_sum_exactly(weights, seed):
    weights = np.asarray(weights, np.float32)
    rng = np.random.default_rng(seed)
    probabilities = np.stack([weights, rng.dirichlet(np.full(weights.size, 0.02)).astype(np.float32)])
    probabilities[0] = (
        (probabilities[0] / probabilities[0].sum()) if probabilities[0].sum() else 1 / weights.size
    )
    counts = compression.quantize(probabilities.astype(np.float32))
    assert (counts >= 1).all() and (counts.sum(-1) == 2**compression.PRECISION).all()
    assert np.abs(counts / 2**compression.PRECISION - probabilities).max() < 1e-5
    np.testing.assert_array_equal(counts, compression.quantize(probabilities.astype(np.float32)))


def test_tables_refuse_what_is_not_a_distribution():
    for bad in ([0.5, np.nan], [1.5, -0.5], [0.2, 0.2]):
        with pytest.raises(ValueError):
            compression.quantize(np.array(bad, np.float32))


def test_the_coder_codes_with_our_tables_bit_for_bit():
    """constriction must rebuild our tables exactly: a table off by one unit at a count of 1-4 would cost
    0.3 to 1 bit per symbol, thousands of bits over these symbols."""
    rng = np.random.default_rng(0)
    counts = compression.quantize(rng.dirichlet(np.full(28, 0.03), 5000).astype(np.float32))
    rare = np.argsort(counts, -1, kind="stable")[:, :4]  # symbols of counts 1, 2, ... (the smallest)
    symbols = rare[np.arange(5000), rng.integers(0, 4, 5000)]
    coder = ans.new_coder()
    ans.push(coder, symbols, counts)
    assert abs(coder.num_bits() - ans.ideal_bits(symbols, counts)) <= 64
    decoder = ans.new_coder(coder.get_compressed())
    np.testing.assert_array_equal(ans.pop(decoder, counts), symbols)
    assert decoder.is_empty()


@settings(max_examples=25)
@given(st.integers(2, 40), st.integers(0, 2**31))
def test_narrowed_tables_code_the_same_words(num_classes, seed):
    rng = np.random.default_rng(seed)
    counts = compression.quantize(rng.dirichlet(np.full(num_classes, 0.05), 300).astype(np.float32))
    symbols = np.array([rng.choice(num_classes, p=c / c.sum()) for c in counts])
    symbols[:3], symbols[3:6] = 0, num_classes - 1  # nothing before them, nothing after them
    indices, narrowed = ans.narrow(symbols, counts)
    assert narrowed.shape == (300, min(num_classes, 3)) and (narrowed >= 1).all()
    assert (narrowed.sum(1) == 2**compression.PRECISION).all()
    full, narrow = ans.new_coder(), ans.new_coder()
    ans.push(full, symbols, counts)
    ans.push(narrow, indices, narrowed)
    np.testing.assert_array_equal(narrow.get_compressed(), full.get_compressed())


@settings(max_examples=12)
@given(st.integers(0, 150), st.integers(0, 2**31), st.sampled_from([1, 4]))
@example(0, 0, 4)
@example(1, 0, 4)
@example(D, 0, 4)
@example(150, 0, 4)
def test_round_trip_is_exact_for_any_length(length, seed, batch_size):
    text = random_text(length, seed)
    order = compression.STRIPED if seed % 4 == 3 else Order("seeded", seed % 4)
    blob = compression.compress(text, MODEL, BUDGET, order=order, batch_size=batch_size)
    assert container.unpack(blob)[0].order == order
    assert compression.decompress(blob, MODEL) == text


def _older(blob: bytes, version: int) -> bytes:
    """A version-4 file of seeded orders with nothing mixed in as version 3 wrote it (no order or history
    byte) or version 2 (nor a matmuls byte), its header checksum recomputed."""
    header, words = container.unpack(blob)
    assert (header.order_kind, header.history) == ("seeded", "none")
    end = len(blob) - 4 * words.size - 4
    head = blob[:8] + bytes([version]) + blob[9 : 8 + version] + blob[13:end]
    return head + zlib.crc32(head).to_bytes(4, "little") + blob[end + 4 :]


def test_float32_and_bfloat16_products_round_trip_and_the_header_says_which():
    text = random_text(3 * D + 5, 7)
    seeded = compression.SEEDED  # what files before version 4 hold
    files = {
        m: compression.compress(text, MODEL, BUDGET, seeded, 2, matmuls=m, history="none")
        for m in container.MATMULS
    }
    for matmuls, blob in files.items():
        assert container.unpack(blob)[0].matmuls == matmuls
        assert compression.decompress(blob, MODEL) == text
    # the two products give other tables: a file decoded with the other is caught, never mis-decoded
    header, words = container.unpack(files["float32"])
    relabelled = container.pack(dataclasses.replace(header, matmuls="bfloat16"), words)
    with pytest.raises(compression.DeterminismError, match="does not reproduce the network outputs"):
        compression.decompress(relabelled, MODEL)
    # files of format version 2 (before the byte, all float32) still decode
    old = _older(files["float32"], 2)
    assert container.unpack(old)[0].matmuls == "float32" and compression.decompress(old, MODEL) == text
    # and so do those of version 3 (before the order byte, all seeded)
    old = _older(files["bfloat16"], 3)
    assert container.unpack(old)[0].order == Order("seeded") and compression.decompress(old, MODEL) == text
    with pytest.raises(ValueError, match="unknown matrix products 'float16'"):
        MODEL.scheme(Order("seeded"), BUDGET, "float16")


def test_decompression_streams_the_text_batch_by_batch_without_a_history():
    # 41 batches of 4 chunks: the text reaches the writer one batch at a time, as it is decoded; with the
    # match model the batches interleave 4 regions of 41 chunks: the first region comes out a chunk at a
    # time, the rest once the last batch completes it
    text = random_text(40 * 4 * D + 7, 3)
    for history, sizes in (("none", [4 * D] * 40 + [7]), ("match", [D] * 40 + [len(text) - 40 * D])):
        blob = compression.compress(text, MODEL, BUDGET, batch_size=4, history=history)
        pieces = []
        compression.decompress_to(blob, MODEL, pieces.append)
        assert b"".join(pieces) == text
        assert [len(piece) for piece in pieces] == sizes


@settings(max_examples=10)
@given(st.integers(0, 70), st.integers(0, 2**31))
@example(0, 0)
@example(1, 0)
@example(D - 1, 0)
@example(D + 1, 1)
def test_a_model_of_character_pairs_round_trips_text_of_any_length(length, seed):
    text = random_text(length, seed)
    order = compression.STRIPED if seed % 2 else Order("seeded", seed % 3)
    blob = compression.compress(text, PAIRS, BUDGET, order=order, batch_size=2)
    assert container.unpack(blob)[0].num_symbols == length  # files count characters
    assert compression.decompress(blob, PAIRS) == text
    # the coded tokens: the pairs, the last one filled up with a space when the length is odd
    tokens = PAIRS.tokens(compression.encode_text(text))
    assert len(tokens) == PAIRS.num_tokens(length) == -(-length // 2)
    np.testing.assert_array_equal(
        PAIRS.symbols(tokens), [*compression.encode_text(text), *[text8.SPACE] * (length % 2)]
    )


def test_a_model_of_character_pairs_codes_at_its_exact_code_length_and_names_its_model():
    text = random_text(3 * D - 1, 5)  # 3 chunks of 8 pairs, the last pair filled up
    blob = compression.compress(text, PAIRS, BUDGET, order=Order("seeded", 1), batch_size=2)
    header, words = container.unpack(blob)
    chunks = PAIRS.tokens(compression.encode_text(text)).reshape(3, D // 2)
    scheme = PAIRS.scheme(header.order, BUDGET, header.matmuls)
    exact_bits = float(scheme.code_lengths(chunks).astype(np.float64).sum()) * (D // 2)
    assert exact_bits > 100 and abs(32 * words.size - exact_bits) <= 64  # the ANS state: a few bytes
    # any text, through the envelope; files of the single-character model and of pairs are told apart
    original = b"Odd-length Text, 3 lines!\nTwo\n"
    assert plain.decompress(plain.compress(original, PAIRS, BUDGET, batch_size=2), PAIRS) == original
    assert PAIRS.fingerprint != MODEL.fingerprint
    with pytest.raises(compression.ModelMismatchError, match="compressed with another model"):
        compression.decompress(compression.compress(text, MODEL, BUDGET), PAIRS)


def test_pairs_are_for_text_models_only():
    with pytest.raises(ValueError, match="symbols_per_token is 1, or 2 for a text model"):
        tiny_model(0, chars_per_token=3)
    with pytest.raises(ValueError, match="symbols_per_token is 1, or 2 for a text model"):
        compression.CodecModel.create(
            MODEL.denoiser,
            MODEL.objective,
            D,
            MODEL.step_losses,
            {},
            image_shape=(4, 4, 1),
            symbols_per_token=2,
        )


@settings(max_examples=60)
@given(st.text(), st.integers(1, 40))
@example("Hello, World!\n", 3)
@example("", 1)
@example("  two  spaces ", 2)
def test_any_text_is_its_projection_plus_the_side_stream(text, piece):
    data = text.replace("\0", "")[:400].encode()
    projection, side = plain.project(data)
    assert set(projection) <= set(ALPHABET) and len(projection) <= len(data)
    restore = plain._Restorer(lzma.decompress(side))
    restored = b"".join(restore(projection[i : i + piece]) for i in range(0, len(projection), piece))
    restore.finish()
    assert restored == data


def test_ordinary_text_round_trips_through_the_model_and_binary_is_refused():
    text = "It was the best of times, it was the WORST of times.\n\n3 caf\u00e9s -- 42%!\r\n".encode() * 3
    blob = plain.compress(text, MODEL, BUDGET, batch_size=4)
    assert blob.startswith(plain.MAGIC) and plain.decompress(blob, MODEL) == text
    pieces = []
    plain.decompress_to(blob, MODEL, pieces.append)
    assert b"".join(pieces) == text and len(pieces) > 1  # streamed batch by batch
    for binary, message in (
        (b"abc\0def", "a NUL byte at offset 3"),
        (b"ab\xff\xfe", "not UTF-8 at offset 2"),
    ):
        with pytest.raises(compression.AlphabetError, match=message):
            plain.compress(binary, MODEL, BUDGET)


@pytest.fixture(scope="module")
def text_blob() -> bytes:
    return plain.compress(b"Some Text, with 2 lines.\nAnd more; the end!\n", MODEL, BUDGET, batch_size=2)


@settings(max_examples=30)
@given(st.data())
def test_any_damage_to_a_text_envelope_decodes_exactly_or_fails_with_a_documented_error(text_blob, data):
    original = plain.decompress(text_blob, MODEL)
    blob = bytearray(text_blob)
    if data.draw(st.booleans()):
        blob = blob[: data.draw(st.integers(0, len(blob) - 1))]
    else:  # a bit flip in the envelope's header or side stream
        at = data.draw(st.integers(0, len(blob) - 1))
        blob[at] ^= 1 << data.draw(st.integers(0, 7))
    try:
        assert plain.decompress(bytes(blob), MODEL) == original
    except (compression.FormatError, compression.TruncatedFileError, compression.CorruptedFileError):
        pass
    except compression.DeterminismError:  # a flip in the projection's payload surfaces here or above
        pass


@pytest.mark.parametrize("order", [Order("seeded", 1), compression.STRIPED], ids=Order.describe)
def test_code_length_is_minus_log2_of_the_model_probability(order):
    text = random_text(12 * D, 1)
    chunks = compression.encode_text(text).reshape(-1, D).astype(np.int32)
    scheme = MODEL.scheme(order, BUDGET)
    words, _ = compression.encode(scheme, chunks.reshape(-1), 4)
    exact_bits = float(scheme.code_lengths(chunks).sum()) * D
    assert exact_bits > 1000
    assert abs(32 * words.size - exact_bits) <= 8 * 12  # the ANS state and the last word: a few bytes


def test_tokens_the_model_cannot_code_are_refused():
    scheme = MODEL.scheme(Order("seeded"), BUDGET)
    for bad in (text8.ABSORBING, -1, 40):
        with pytest.raises(ValueError, match="data classes of the model"):
            compression.encode(scheme, np.array([1, 2, bad, 3]), 4)


def test_choose_order_takes_the_best_of_the_striped_and_the_seeded_orders():
    chunks = compression.encode_text(random_text(4 * D, 2)).reshape(-1, D).astype(np.int32)
    best, bits = compression.choose_order(MODEL, chunks, BUDGET, 3)
    candidates = [compression.STRIPED, *(Order("seeded", s) for s in range(3))]
    assert bits == {
        o.describe(): float(MODEL.scheme(o, BUDGET).code_lengths(chunks).mean()) for o in candidates
    }
    assert best in candidates and bits[best.describe()] == min(bits.values())


@settings(max_examples=30)
@given(st.integers(1, 40), st.integers(1, 40))
def test_striped_orders_code_one_token_of_every_stream_a_call(num_positions, budget):
    if budget > num_positions:
        with pytest.raises(ValueError, match=f"budget must be in 1..{num_positions}"):
            compression.striped_order(num_positions, budget)
        return
    order, policy = compression.striped_order(num_positions, budget)
    assert sorted(order.tolist()) == list(range(num_positions))
    assert policy.size == budget and policy[0] == 0 and (np.diff(policy) > 0).all()
    for j, (left, right) in enumerate(zip(policy, [*policy[1:], num_positions], strict=True)):
        coded = np.flatnonzero((order >= left) & (order < right))
        # call j codes token j of every stream (streams of `budget` positions), streams in order
        np.testing.assert_array_equal(coded, np.arange(j, num_positions, budget))
        np.testing.assert_array_equal(order[coded], np.arange(left, right))


def test_a_striped_order_of_one_stream_is_left_to_right_one_token_a_call():
    orders, policy = MODEL.arrangement(compression.STRIPED, D)
    np.testing.assert_array_equal(orders, [np.arange(D)])
    np.testing.assert_array_equal(policy, [np.arange(D)])
    with pytest.raises(ValueError, match="unknown kind of order 'spiral'"):
        MODEL.arrangement(Order("spiral"), D)


def test_out_of_alphabet_input_is_refused_naming_the_first_bad_byte():
    with pytest.raises(compression.AlphabetError, match=r"b'W' at offset 6"):
        compression.compress(b"hello World", MODEL, BUDGET)


def test_a_wrong_model_is_detected(blob):
    with pytest.raises(compression.ModelMismatchError, match="another model"):
        compression.decompress(blob, tiny_model(1))


@pytest.mark.parametrize("keep", [0, 5, 20, 70, -1])
def test_a_truncated_file_is_detected(blob, keep):
    error = compression.FormatError if keep == 0 else compression.TruncatedFileError
    with pytest.raises(error):
        compression.decompress(blob[:keep], MODEL)


def test_damage_is_detected(blob):
    header, words = container.unpack(blob)
    payload_start = len(blob) - 4 * words.size
    for position in (10, 40, payload_start - 1, payload_start, len(blob) - 1):
        damaged = bytearray(blob)
        damaged[position] ^= 0x10
        with pytest.raises(compression.CorruptedFileError, match="damaged"):
            compression.decompress(bytes(damaged), MODEL)
    with pytest.raises(compression.CorruptedFileError, match="follow the payload"):
        compression.decompress(blob + b"\0", MODEL)
    with pytest.raises(compression.FormatError, match="not an eqdd"):
        compression.decompress(b"PK\x03\x04" + blob[4:], MODEL)
    with pytest.raises(compression.FormatError, match="version 6; this eqdd reads versions 2, 3 and 5"):
        compression.decompress(blob[:8] + b"\x06" + blob[9:], MODEL)
    with pytest.raises(
        compression.FormatError, match="version 4 .*development version of eqdd's match model"
    ):
        compression.decompress(blob[:8] + b"\x04" + blob[9:], MODEL)
    with pytest.raises(compression.FormatError, match="version 1 .*before image support"):
        compression.decompress(blob[:8] + b"\x01" + blob[9:], MODEL)


def test_a_striped_file_names_its_order_and_an_unknown_order_is_refused():
    text = random_text(2 * D + 3, 4)
    blob = compression.compress(text, MODEL, BUDGET, batch_size=2)  # striped: the default for text
    header, words = container.unpack(blob)
    orders, policy = MODEL.arrangement(compression.STRIPED, BUDGET)
    assert header.order == compression.STRIPED and header.budget == BUDGET
    assert (header.order_crc, header.policy_crc) == (
        codec.checksum(orders),
        codec.checksum(policy.astype(np.int64)),
    )
    # read as seeded, the same words fail the checks instead of decoding other text
    with pytest.raises(compression.DeterminismError):
        compression.decompress(container.pack(dataclasses.replace(header, order_kind="seeded"), words), MODEL)
    end = len(blob) - 4 * words.size - 4
    head = blob[:11] + b"\x02" + blob[12:end]  # the order byte, its checksum recomputed
    with pytest.raises(compression.FormatError, match="unknown kind of order 2"):
        compression.decompress(head + zlib.crc32(head).to_bytes(4, "little") + blob[end + 4 :], MODEL)
    head = blob[:12] + b"\x02" + blob[13:end]  # the history byte
    with pytest.raises(compression.FormatError, match="unknown model of history 2"):
        compression.decompress(head + zlib.crc32(head).to_bytes(4, "little") + blob[end + 4 :], MODEL)
    with pytest.raises(ValueError, match="a striped order has no seed"):
        compression.compress(text, MODEL, BUDGET, order=Order("striped", 1))


@pytest.mark.parametrize("field", ["first_table_crc", "order_crc", "policy_crc", "data_crc"])
def test_other_network_outputs_are_detected(blob, field):
    """What a different jax, device or dtype would cause: the encoder's outputs are not reproduced."""
    header, words = container.unpack(blob)
    header = dataclasses.replace(header, **{field: (getattr(header, field) + 1) % 2**32})
    with pytest.raises(compression.DeterminismError, match="does not reproduce the network outputs"):
        compression.decompress(container.pack(header, words), MODEL)


def _craft(blob: bytes, **fields) -> bytes:
    """The file with header fields rewritten and its header checksum recomputed (as an attacker
    would), bypassing the encoder's own limit on the symbol count."""
    header, words = container.unpack(blob)
    count = fields.pop("num_symbols", header.num_symbols)
    packed = container.pack(dataclasses.replace(header, **fields), words)
    # the count follows magic, version, kind, matmuls, order_kind and history
    packed = packed[:13] + count.to_bytes(8, "little") + packed[21:]
    end = len(packed) - 4 * words.size - 4
    return packed[:end] + zlib.crc32(packed[:end]).to_bytes(4, "little") + packed[end + 4 :]


@pytest.mark.parametrize(
    "fields, message",
    [
        ({"budget": 0}, "a budget of 0 network calls"),
        ({"budget": 60000}, "asks for 60,000 network calls per chunk, and this model has 16 steps"),
        ({"batch_size": 0}, "a batch size of 0"),
        ({"order_kind": "striped"}, r"a striped order with a seed \(2\)"),
        ({"kind": "audio", "history": "match"}, "a model of history for audio"),
        ({"num_symbols": 2**60}, "1,152,921,504,606,846,976 symbols, more than .* words can hold"),
        ({"kind": "images", "image_shape": (0, 0, 0)}, r"an image shape \(0, 0, 0\)"),
        ({"kind": "images", "image_shape": (3, 3, 1)}, "100 sub-pixels, not a whole number of"),
    ],
)
def test_a_crafted_header_is_refused_before_unbounded_work(blob, fields, message):
    """A header with a valid checksum (recomputed) but values no encoder writes."""
    with pytest.raises(compression.CorruptedFileError, match=message):
        compression.decompress(_craft(blob, **fields), MODEL)


def test_the_encoder_refuses_what_the_decoder_would(blob):
    header, words = container.unpack(blob)
    too_many = container.max_symbols(words.size) + 1
    with pytest.raises(compression.CompressionError, match="too predictable to store"):
        container.pack(dataclasses.replace(header, num_symbols=too_many), words)


# Values worth trying per field (few distinct shapes: each batch size and budget compiles anew).
_FIELDS = {
    "num_symbols": st.sampled_from([0, 1, 99, 101, 5_000, 2**40, 2**63 - 1]),  # 2**40: over the bound
    "budget": st.sampled_from([0, 1, 4, 16, 17, 60_000]),
    "batch_size": st.sampled_from([0, 1, 3, 2**16 - 1]),
    "order_seed": st.integers(0, 2**32 - 1),
    "order_kind": st.sampled_from(container.ORDER_KINDS),
    "history": st.sampled_from(container.HISTORIES),
}


@settings(max_examples=30)
@given(st.data())
def test_any_mutation_of_a_file_decodes_exactly_or_fails_with_a_documented_error(blob, data):
    """Fuzzing: truncation, a flipped bit, or a header field rewritten with its checksums recomputed;
    the result is the original text or a `CompressionError`, never other data, never a hang."""
    original = random_text(100, 0)
    kind = data.draw(st.sampled_from(["truncate", "flip", "field"]))
    if kind == "truncate":
        mutated = blob[: data.draw(st.integers(0, len(blob) - 1))]
    elif kind == "flip":
        position = data.draw(st.integers(0, 8 * len(blob) - 1))
        mutated = bytearray(blob)
        mutated[position // 8] ^= 1 << (position % 8)
        mutated = bytes(mutated)
    else:
        field = data.draw(st.sampled_from(sorted(_FIELDS)))
        mutated = _craft(blob, **{field: data.draw(_FIELDS[field])})
    try:
        restored = compression.decompress(mutated, MODEL)
    except compression.CompressionError:
        return
    assert restored == original


def test_header_holds_what_decoding_needs(blob):
    header, words = container.unpack(blob)
    assert header.kind == "text" and header.image_shape is None and header.num_images == 0
    assert header.num_symbols == 100 and header.data_crc == zlib.crc32(random_text(100, 0))
    assert header.fingerprint == MODEL.fingerprint and header.order_seed == 2 and header.batch_size == 4
    assert header.budget == BUDGET and header.policy_crc == codec.checksum(MODEL.plan(BUDGET)[0])
    assert "jax" in header.environment and words.size
    assert header.matmuls == "bfloat16"  # text's default
    assert len(blob) == 75 + 1 + len(header.environment) + 4 + 4 * words.size


def test_schemes_refuse_orders_and_policies_that_do_not_fit():
    policy = MODEL.plan(BUDGET)[0]
    orders, process = compression.orders_from_seed(0, 1, D), MODEL.objective.process
    with pytest.raises(ValueError, match="one stage, got 2 orders"):
        compression.OAScheme(MODEL.denoiser, process, np.concatenate([orders, orders]), policy)
    with pytest.raises(ValueError, match="permutation of 0..D-1"):
        compression.OAScheme(MODEL.denoiser, process, np.zeros((1, D), np.int32), policy)
    with pytest.raises(ValueError, match="one order and one policy row per stage"):
        compression.OAScheme(MODEL.denoiser, process, orders, policy[0])
    assert [call.ends_stage for call in MODEL.scheme(Order("seeded"), BUDGET).calls] == [False] * (
        BUDGET - 1
    ) + [True]
