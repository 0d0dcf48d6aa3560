"""The errors of the codec and the file format; every message says what went wrong and what to do.

All derive from [`CompressionError`][eqdd.compression.CompressionError], so a caller (the `eqdd`
command) can catch one class. None of them is raised after anything has been written.
"""


class CompressionError(Exception):
    """Compressing or decompressing failed; the message says why."""


class AlphabetError(CompressionError):
    """The input holds a byte outside the model's alphabet; the message names the first and its offset."""


class ImageFileError(CompressionError):
    """The input is not an image file Pillow can read, or not one of 8 bits per sub-pixel."""


class ShapeError(CompressionError):
    """The images' size or channels differ from those the model codes; the message names both shapes."""


class FormatError(CompressionError):
    """The input is not an eqdd compressed file, or one of a format version this eqdd does not read."""


class TruncatedFileError(CompressionError):
    """The file is shorter than its header says: it was cut off."""


class CorruptedFileError(CompressionError):
    """The file's header or payload fails its checksum, or bytes follow the payload: it was damaged."""


class ModelMismatchError(CompressionError):
    """The file was compressed with another model (its fingerprint differs from the checkpoint's), or the
    data and the model are of different kinds (text given to an image model, images to a text model)."""


class DeterminismError(CompressionError):
    """Same model and an intact file, but the network's outputs differ from the encoder's.

    Decoding replays the encoder's network calls and needs their outputs bit for bit: the same
    jax/jaxlib versions, the same device kind (eqdd runs the codec on the CPU) and the same dtype
    (float32). The message names the environment the file was written in.
    """
