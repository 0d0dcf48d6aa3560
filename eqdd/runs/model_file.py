"""The model file: one immutable file holding a trained model's arrays and what rebuilds it.

Layout: the line `eqdd model file`, then one line of JSON (the format version, the size and SHA-256
of the arrays, and the caller's metadata), then the arrays (`equinox.tree_serialise_leaves`). Reading
checks all three before anything is built, so a truncated, damaged or newer file is refused with a
message instead of loading wrong numbers.
"""

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from eqdd._atomic import atomic_file

MAGIC = b"eqdd model file\n"
FORMAT = 1
SUFFIX = ".eqdd-model"


class ModelFileError(Exception):
    """A model file that cannot be used: not one, truncated, damaged, or from a newer eqdd."""


def write(path: Path, metadata: dict[str, Any], arrays: bytes) -> Path:
    """Write `metadata` and `arrays` to `path` atomically (a temporary file renamed into place).

    Returns:
        `path`.
    """
    header = {"format": FORMAT, "size": len(arrays), "sha256": hashlib.sha256(arrays).hexdigest(), **metadata}
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_file(path) as file:
        file.write(MAGIC + json.dumps(header).encode() + b"\n" + arrays)
        file.flush()
        os.fsync(file.fileno())
    return path


def read(path: Path) -> tuple[dict[str, Any], bytes]:
    """The metadata and the arrays of a model file, checked.

    Raises:
        ModelFileError: naming what is wrong.
        OSError: when the file cannot be read.
    """
    data = path.read_bytes()
    if not data.startswith(MAGIC):
        raise ModelFileError(f"{path} is not an eqdd model file")
    end = data.find(b"\n", len(MAGIC))
    try:
        header = json.loads(data[len(MAGIC) : end])
        size, digest, version = int(header["size"]), str(header["sha256"]), int(header["format"])
    except (ValueError, KeyError, TypeError):
        raise ModelFileError(f"{path} is damaged: its header cannot be read") from None
    if version > FORMAT:
        raise ModelFileError(f"{path} has format {version}, newer than this eqdd's ({FORMAT}): upgrade eqdd")
    arrays = data[end + 1 :]
    if len(arrays) != size:
        raise ModelFileError(
            f"{path} is truncated or damaged: {len(arrays):,} bytes of arrays, expected {size:,}"
        )
    if hashlib.sha256(arrays).hexdigest() != digest:
        raise ModelFileError(f"{path} is damaged: its arrays do not match their checksum")
    return header, arrays
