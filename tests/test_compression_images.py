"""The codec on images, with OA-ARDMs and Upscale ARDMs: exact round trips, code length = -log2 p, kinds,
shapes, damage, image files."""

import dataclasses
import io
import zlib

import equinox as eqx
import jax
import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from PIL import Image

from eqdd import compression
from eqdd.compression import Order, container
from eqdd.data import images
from eqdd.denoisers.unet import UNet
from eqdd.objectives import OAARDMObjective, UpscaleObjective
from eqdd.processes import AbsorbingProcess, UpscaleTransitions
from tests.test_compression import MODEL as TEXT_MODEL
from tests.test_compression import random_text

SHAPE = (4, 3, 2)
D = 24
BUDGET = 5


def tiny_image_model(seed: int, shape: tuple[int, int, int] = SHAPE) -> compression.CodecModel:
    """An untrained width-8 U-Net, its output layer scaled up so its conditionals are far from uniform."""
    network = UNet(shape, images.NUM_CLASSES + 1, images.NUM_CLASSES, 8, 1, D, key=jax.random.PRNGKey(seed))
    network = eqx.tree_at(lambda m: m.out_conv.weight, network, 4 * network.out_conv.weight)
    return compression.CodecModel.create(
        network,
        OAARDMObjective(AbsorbingProcess(images.NUM_CLASSES)),
        D,
        np.linspace(8.0, 2.0, D),
        {"test": seed},
        image_shape=shape,
    )


def tiny_upscale_model(branch_factor: int, variant: str, parametrization: str) -> compression.CodecModel:
    """An untrained Upscale ARDM U-Net (`S = log_b 256` stages), output layer scaled up likewise."""
    objective = UpscaleObjective(
        UpscaleTransitions(images.NUM_CLASSES, branch_factor, variant, parametrization)
    )
    process = objective.transitions
    num_steps = process.num_stages * D
    network = UNet(
        SHAPE,
        process.num_input_classes,
        process.num_outputs,
        8,
        1,
        num_steps,
        process.num_stages,
        key=jax.random.PRNGKey(branch_factor),
    )
    network = eqx.tree_at(lambda m: m.out_conv.weight, network, 4 * network.out_conv.weight)
    losses = np.random.default_rng(branch_factor).uniform(0.5, 2.0, num_steps)
    return compression.CodecModel.create(
        network, objective, D, losses, {"test": "upscale"}, image_shape=SHAPE
    )


MODEL = tiny_image_model(0)


def random_images(count: int, seed: int, shape: tuple[int, int, int] = SHAPE) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (count, *shape), dtype=np.uint8)


@pytest.fixture(scope="module")
def blob() -> bytes:
    return compression.compress_images(
        random_images(3, 0), MODEL, BUDGET, order=Order("seeded", 1), batch_size=2
    )


@settings(max_examples=6)
@given(st.integers(0, 5), st.integers(0, 2**31), st.sampled_from([2, 4]))
@example(1, 0, 16)
@example(5, 1, 2)
def test_round_trip_is_exact_for_one_image_and_several(count, seed, batch_size):
    pictures = random_images(count, seed)
    blob = compression.compress_images(
        pictures, MODEL, BUDGET, order=Order("seeded", seed % 3), batch_size=batch_size
    )
    restored = compression.decompress_images(blob, MODEL)
    assert restored.dtype == np.uint8 and restored.shape == pictures.shape
    np.testing.assert_array_equal(restored, pictures)


def test_code_length_is_minus_log2_of_the_model_probability():
    pictures = random_images(10, 1)
    blob = compression.compress_images(pictures, MODEL, BUDGET, order=Order("seeded", 2), batch_size=4)
    scheme = MODEL.scheme(Order("seeded", 2), BUDGET)
    chunks = pictures.reshape(10, D).astype(np.int32)
    exact = scheme.code_lengths(chunks) * D
    np.testing.assert_allclose(replayed_bits(scheme, chunks), exact, rtol=1e-5)
    exact_bits = float(exact.sum())
    assert exact_bits > 1000
    payload_bits = 32 * container.unpack(blob)[1].size
    assert abs(payload_bits - exact_bits) <= 8 * 12  # the ANS state and the last word: a few bytes


def replayed_bits(scheme: compression.Scheme, chunks: np.ndarray) -> np.ndarray:
    """`-log2` of the probabilities the codec's calls give the data, per chunk (float, unquantised)."""
    state, bits = scheme.start(chunks.shape[0]), np.zeros(chunks.shape[0])
    for call in scheme.calls:
        probabilities = scheme.probabilities(state, call).astype(np.float64)
        symbols = scheme.symbols(chunks, call)
        chosen = np.take_along_axis(probabilities, symbols[..., None], axis=-1)[..., 0]
        bits -= np.where(call.positions, np.log2(chosen), 0.0).sum(axis=1)
        coded = np.broadcast_to(call.positions, chunks.shape)
        scheme.write(state, call, coded, symbols[coded])
    np.testing.assert_array_equal(scheme.tokens(state), chunks)
    return bits


# b = 4: S = 4 stages of 4 digits (the paper's CIFAR-10 model); b = 16: S = 2, new classes, direct logits;
# b = 3: S = 6 (3^6 = 729 > 256), so some parents have fewer than 3 children.
UPSCALE = [(4, "zero", "data"), (16, "augmented", "direct"), (3, "zero", "data")]


@pytest.mark.parametrize("setting", UPSCALE, ids=str)
def test_upscale_round_trip_is_exact_and_its_length_is_minus_log2_p(setting):
    model = tiny_upscale_model(*setting)
    stages = model.num_stages
    pictures = random_images(5, 3)
    full = D if stages <= 2 else 2  # one step per call: 2·24 calls per image with two stages
    striped = compression.STRIPED
    for count, order, batch_size, budget in (
        (5, Order("seeded", 1), 2, 3),
        (1, striped, 4, full),
        (0, striped, 4, 1),
    ):
        blob = compression.compress_images(
            pictures[:count], model, budget, order=order, batch_size=batch_size
        )
        np.testing.assert_array_equal(compression.decompress_images(blob, model), pictures[:count])
    policy, _ = model.plan(3)
    assert policy.shape == (stages, 3)
    for order in (Order("seeded", 1), striped):  # the striped order: the same in every stage
        scheme = model.scheme(order, 3)
        assert scheme.orders.shape == (stages, D) and len(scheme.calls) == 3 * stages
        chunks = pictures.reshape(5, D).astype(np.int32)
        exact = scheme.code_lengths(chunks) * D
        # the codec's calls give the data the probabilities of the objectives' independent code length
        np.testing.assert_allclose(replayed_bits(scheme, chunks), exact, rtol=1e-5)
        exact_bits = float(exact.sum())
        words, _ = compression.encode(scheme, pictures.reshape(-1), 2)
        assert exact_bits > 1000
        assert abs(32 * words.size - exact_bits) <= 8 * 12


def test_upscale_files_name_their_model():
    model = tiny_upscale_model(4, "zero", "data")
    blob = compression.compress_images(random_images(2, 0), model, BUDGET)
    with pytest.raises(compression.ModelMismatchError, match="another model"):
        compression.decompress_images(blob, tiny_upscale_model(4, "zero", "direct"))
    with pytest.raises(compression.ModelMismatchError, match="another model"):
        compression.decompress_images(blob, MODEL)
    with pytest.raises(ValueError, match="S·D = 4·24"):
        compression.CodecModel.create(model.denoiser, model.objective, D, np.ones(D), {}, image_shape=SHAPE)


def test_header_holds_the_kind_and_the_image_shape(blob):
    header, words = container.unpack(blob)
    assert (header.kind, header.image_shape, header.num_images, header.num_symbols) == (
        "images",
        SHAPE,
        3,
        3 * D,
    )
    assert header.data_crc == zlib.crc32(random_images(3, 0).tobytes()) and header.batch_size == 2
    assert header.fingerprint == MODEL.fingerprint and header.order_seed == 1 and header.budget == BUDGET
    assert len(blob) == 75 + 1 + len(header.environment) + 4 + 4 * words.size


def test_images_of_another_shape_are_refused_naming_both_shapes():
    with pytest.raises(
        compression.ShapeError, match=r"the images are 4x3x1, but the model codes 4x3x2 images"
    ):
        compression.compress_images(random_images(2, 0, (4, 3, 1)), MODEL, BUDGET)
    with pytest.raises(ValueError, match="does not hold D = 24"):
        compression.CodecModel.create(
            MODEL.denoiser, MODEL.objective, D, np.ones(D), {}, image_shape=(5, 5, 1)
        )


def test_data_and_models_of_the_wrong_kind_are_refused(blob):
    with pytest.raises(compression.ModelMismatchError, match="a text model cannot code images"):
        compression.compress_images(random_images(1, 0), TEXT_MODEL, BUDGET)
    with pytest.raises(
        compression.ModelMismatchError, match="an image model of 4x3x2 images cannot code text"
    ):
        compression.compress(b"some text", MODEL, BUDGET)
    text_blob = compression.compress(random_text(40, 0), TEXT_MODEL, BUDGET)
    with pytest.raises(
        compression.ModelMismatchError, match="holds text, but the checkpoint is an image model"
    ):
        compression.decompress_images(text_blob, MODEL)
    with pytest.raises(compression.ModelMismatchError, match="holds 3 images of 4x3x2, but .* a text model"):
        compression.decompress(blob, TEXT_MODEL)


def test_another_image_model_is_detected(blob):
    with pytest.raises(compression.ModelMismatchError, match="another model"):
        compression.decompress_images(blob, tiny_image_model(1))
    with pytest.raises(compression.ModelMismatchError, match="of 4x3x2, but .* of 2x3x4 images"):
        compression.decompress_images(blob, tiny_image_model(0, (2, 3, 4)))


def test_truncation_damage_and_other_outputs_are_detected(blob):
    _, words = container.unpack(blob)
    for keep in (5, 40, len(blob) - 4 * words.size, len(blob) - 1):
        with pytest.raises(compression.TruncatedFileError, match="truncated"):
            compression.decompress_images(blob[:keep], MODEL)
    for position in (9, 12, len(blob) - 1):  # the kind byte, the length, the payload
        damaged = bytearray(blob)
        damaged[position] ^= 0x01
        with pytest.raises(compression.CorruptedFileError, match="damaged"):
            compression.decompress_images(bytes(damaged), MODEL)
    header, words = container.unpack(blob)
    header = dataclasses.replace(header, first_table_crc=header.first_table_crc ^ 1)
    with pytest.raises(compression.DeterminismError, match="does not reproduce the network outputs"):
        compression.decompress_images(container.pack(header, words), MODEL)


def _file(pixels: np.ndarray, mode: str | None = None, format: str = "PNG", **options) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels, mode).save(buffer, format, **options)
    return buffer.getvalue()


def test_image_files_are_read_exactly_and_written_as_png():
    rng = np.random.default_rng(0)
    for channels in (1, 2, 3, 4):
        pixels = rng.integers(0, 256, (5, 7, channels), dtype=np.uint8)
        png = compression.to_png(pixels)
        assert png.startswith(b"\x89PNG")
        np.testing.assert_array_equal(compression.read_image(png), pixels)
    pixels = rng.integers(0, 256, (5, 7, 3), dtype=np.uint8)
    np.testing.assert_array_equal(compression.read_image(_file(pixels, format="BMP")), pixels)
    palette = Image.fromarray(rng.integers(0, 256, (5, 7, 3), dtype=np.uint8)).quantize(8)
    buffer = io.BytesIO()
    palette.save(buffer, "PNG")
    np.testing.assert_array_equal(
        compression.read_image(buffer.getvalue()), np.asarray(palette.convert("RGB"))
    )
    bits = compression.read_image(_file(rng.random((5, 7)) < 0.5, "1"))
    assert bits.shape == (5, 7, 1) and set(np.unique(bits)) <= {0, 255}


def test_image_files_that_are_not_8_bit_or_not_images_are_refused():
    with pytest.raises(compression.ImageFileError, match="not an image file"):
        compression.read_image(b"the cat sat on the mat")
    with pytest.raises(compression.ImageFileError, match=r"I(;16)? images are not coded: .* 8 bits"):
        compression.read_image(_file(np.zeros((4, 4), np.uint16)))
    frames = [Image.fromarray(np.full((4, 4), value, np.uint8)) for value in (0, 255)]
    buffer = io.BytesIO()
    frames[0].save(buffer, "GIF", save_all=True, append_images=frames[1:])
    with pytest.raises(compression.ImageFileError, match="2 frames"):
        compression.read_image(buffer.getvalue())
