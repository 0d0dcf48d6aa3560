"""Lossless compression of text, images and audio with OA-ARDMs and Upscale ARDMs (reference §5): an rANS
codec over the model's exact likelihood under fixed orders and a fixed policy.

- [`tables`][eqdd.compression.tables]: integer probability tables, identical on every machine;
- [`ans`][eqdd.compression.ans]: the entropy coder (constriction's ANS stack, fed those tables);
- [`schemes`][eqdd.compression.schemes]: a model with fixed orders and policy as an exact
  autoregressive model (its network calls, the symbols they code, the exact code length); the orders
  a file can name (seeded or striped);
- [`matching`][eqdd.compression.matching]: a match model of the text coded so far, mixed into a text
  model's distributions as it codes;
- [`codec`][eqdd.compression.codec]: code token streams with a scheme, one network call per segment;
  choose the orders;
- [`model`][eqdd.compression.model]: a trained model as the codec sees it, with its fingerprint;
- [`container`][eqdd.compression.container]: the file format (header with checksums, then the words);
- [`message`][eqdd.compression.message]: a token stream into a file and back, with every check (what
  text and images share);
- [`text`][eqdd.compression.text]: compress and decompress text in the text8 alphabet;
- [`plain`][eqdd.compression.plain]: any UTF-8 text, as its text8 projection plus a side stream;
- [`segments`][eqdd.compression.segments]: text of any length in bounded memory, as independently
  coded segments (what `eqdd compress` writes for text);
- [`images`][eqdd.compression.images]: compress and decompress batches of 8-bit images; read image
  files and write PNGs exactly;
- [`audio`][eqdd.compression.audio]: compress and decompress clips of 16-bit samples.

Decoding reproduces the encoder's network outputs bit for bit; that needs the same jax and jaxlib
versions and the same kind of CPU (the codec always runs the network on the CPU: in float32, or, for
text, with bfloat16 matrix products accumulated in float32, as the file's header says). A
mismatch is detected and raised as a [`DeterminismError`][eqdd.compression.DeterminismError].
"""

from eqdd.compression import plain, segments
from eqdd.compression.audio import compress_audio, decompress_audio
from eqdd.compression.codec import choose_order, decode, decode_batches, encode
from eqdd.compression.errors import (
    AlphabetError,
    CompressionError,
    CorruptedFileError,
    DeterminismError,
    FormatError,
    ImageFileError,
    ModelMismatchError,
    ShapeError,
    TruncatedFileError,
)
from eqdd.compression.images import compress_images, decompress_images, read_image, to_png
from eqdd.compression.model import CodecModel
from eqdd.compression.schemes import (
    SEEDED,
    STRIPED,
    OAScheme,
    Order,
    Scheme,
    UpscaleScheme,
    orders_from_seed,
    striped_order,
)
from eqdd.compression.tables import PRECISION, quantize
from eqdd.compression.text import compress, decompress, decompress_to, encode_text

__all__ = [
    "plain",
    "segments",
    "PRECISION",
    "SEEDED",
    "STRIPED",
    "AlphabetError",
    "CodecModel",
    "CompressionError",
    "CorruptedFileError",
    "DeterminismError",
    "FormatError",
    "ImageFileError",
    "ModelMismatchError",
    "OAScheme",
    "Order",
    "Scheme",
    "ShapeError",
    "TruncatedFileError",
    "UpscaleScheme",
    "choose_order",
    "compress",
    "compress_audio",
    "compress_images",
    "decode",
    "decode_batches",
    "decompress",
    "decompress_audio",
    "decompress_to",
    "decompress_images",
    "encode",
    "encode_text",
    "orders_from_seed",
    "quantize",
    "read_image",
    "striped_order",
    "to_png",
]
