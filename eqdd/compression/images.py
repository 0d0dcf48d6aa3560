"""Compress and decompress 8-bit images with an image ARDM (OA or Upscale), and read and write image files
losslessly.

An image model codes images of one shape `(H, W, C)` as `D = H·W·C` sub-pixels in row-major
`(H, W, C)` order, 256 classes each: every image is one chunk of the codec. A batch of `N` images is
one stream of `N·D` tokens, coded by [`eqdd.compression.message`][] exactly as text is; the header
records the kind and the image shape.

[`read_image`][eqdd.compression.read_image] turns an image file into its pixels, only where that is
exact (greyscale, RGB, with or without alpha, palettes, 1-bit); [`to_png`][eqdd.compression.to_png]
writes them back as a PNG.
"""

import io

import numpy as np
from jaxtyping import UInt8
from PIL import Image, UnidentifiedImageError

from eqdd._typing import typecheck
from eqdd.compression import message
from eqdd.compression.errors import ImageFileError, ShapeError
from eqdd.compression.model import CodecModel, describe_shape
from eqdd.compression.schemes import SEEDED, Order

# Pillow modes read exactly, and the mode their pixels are taken in (None: a palette, see read_image).
_MODES = {"1": "L", "L": "L", "LA": "LA", "RGB": "RGB", "RGBA": "RGBA", "P": None, "PA": "RGBA"}


@typecheck
def compress_images(
    images: UInt8[np.ndarray, "N H W C"],
    model: CodecModel,
    budget: int,
    order: Order = SEEDED,
    batch_size: int = 16,
    show_progress: bool = False,
) -> bytes:
    """Compress a batch of 8-bit images.

    Arguments:
        images: `(N, H, W, C)` uint8, of the model's image shape.
        model: an image model ([`eqdd.compression.CodecModel`][] with an `image_shape`).
        budget: network calls per image (and stage), in `1..D`; the policy is the optimal one for the
            model's `L_t`.
        order: the order ([`eqdd.compression.schemes.Order`][]; pick one with
            [`eqdd.compression.choose_order`][]).
        batch_size: images per network call.
        show_progress: show a progress bar.

    Returns:
        The compressed file's bytes.

    Raises:
        ModelMismatchError: for a text model.
        ShapeError: when the images' shape is not the model's (the message names both).
        ValueError: for a budget outside `1..D`, a batch size outside `1..65535` or a seed outside
            `0..2^32-1`.
    """
    message.check_kind(model, "images")
    if images.shape[1:] != model.image_shape:
        raise ShapeError(
            f"the images are {describe_shape(images.shape[1:])}, but the model codes "
            f"{describe_shape(model.image_shape)} images (height x width x channels)"
        )
    pixels = np.ascontiguousarray(images)
    return message.compress(
        pixels.reshape(-1), pixels.tobytes(), "images", model, budget, order, batch_size, show_progress
    )


@typecheck
def decompress_images(
    blob: bytes, model: CodecModel, show_progress: bool = False
) -> UInt8[np.ndarray, "N H W C"]:
    """Decompress what [`compress_images`][eqdd.compression.compress_images] wrote, and check it.

    Arguments:
        blob: the compressed file's bytes.
        model: the model the file was compressed with.
        show_progress: show a progress bar.

    Returns:
        The images, exactly: `(N, H, W, C)` uint8.

    Raises:
        FormatError, TruncatedFileError, CorruptedFileError: see [`eqdd.compression.container.unpack`][].
        ModelMismatchError: the file holds text or images of another shape, or was written with another
            model.
        DeterminismError: the network's outputs here differ from the encoder's.
    """
    header, data = message.decompress(
        blob, model, "images", lambda tokens: tokens.astype(np.uint8).tobytes(), show_progress
    )
    return np.frombuffer(data, np.uint8).reshape(-1, *header.image_shape).copy()


@typecheck
def read_image(data: bytes) -> UInt8[np.ndarray, "H W C"]:
    """The pixels of an image file (any format Pillow reads), exactly as stored.

    Greyscale images give one channel, greyscale with alpha two, RGB three and RGBA four; a 1-bit
    image gives the values 0 and 255, a palette image its colours (RGB, or RGBA when the palette
    has transparency). A lossy format (JPEG) gives its decoded pixels. Only pixels are kept: metadata
    (colour profiles, text, a transparent-colour key) is not.

    Raises:
        ImageFileError: for data Pillow cannot read, several frames, or a mode that is not 8 bits
            per sub-pixel (16-bit, float, CMYK, ...), naming it.
    """
    try:
        with Image.open(io.BytesIO(data)) as image:
            if getattr(image, "n_frames", 1) > 1:
                raise ImageFileError(f"the image has {image.n_frames} frames; give a single image")
            if image.mode not in _MODES:
                raise ImageFileError(
                    f"{image.mode} images are not coded: the model codes 8 bits per sub-pixel; give a "
                    "greyscale or RGB image (with or without alpha) of 8 bits"
                )
            mode = _MODES[image.mode] or ("RGBA" if image.has_transparency_data else "RGB")
            pixels = np.asarray(image.convert(mode))
    except UnidentifiedImageError:
        raise ImageFileError("not an image file Pillow can read") from None
    except (OSError, Image.DecompressionBombError) as error:
        raise ImageFileError(f"not an image file Pillow can read ({error})") from None
    return pixels[..., None] if pixels.ndim == 2 else pixels


@typecheck
def to_png(image: UInt8[np.ndarray, "H W C"]) -> bytes:
    """A PNG file of an image of 1 to 4 channels (greyscale, with alpha, RGB, RGBA), at zlib level 9
    with Pillow's `optimize`.

    Raises:
        ValueError: for more than 4 channels.
    """
    if not 1 <= image.shape[-1] <= 4:
        raise ValueError(f"a PNG holds 1 to 4 channels, not {image.shape[-1]}")
    buffer = io.BytesIO()
    Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image).save(
        buffer, "PNG", optimize=True, compress_level=9
    )
    return buffer.getvalue()
