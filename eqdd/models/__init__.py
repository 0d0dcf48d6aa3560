"""Trained models shipped with eqdd, as model files ([`eqdd.runs.save_model`][]) that
[`eqdd.load_run`][] opens; the `eqdd` commands use [`TEXT8`][] when no `--checkpoint` is given.

How each was trained, on what data and from which commit: `benchmarks/RESULTS.md` ("The shipped
model"); the provenance is also inside the file.
"""

import os
from importlib import resources
from pathlib import Path

TEXT8 = "text8.eqdd-model"  # a text8 OA-ARDM of pairs, `cpu-long` decaying to zero (1,622,745 parameters)
TEXT8_FINGERPRINT = "09afae3de859d96de535acd51619a922"  # its codec fingerprint, in every file it writes

# The models earlier releases shipped, by codec fingerprint: kept so that the files they wrote still
# decompress with no `--checkpoint` ([`shipped_for`][]).
EARLIER = {
    # single characters, `cpu-long` of 2026-11-29, 1,352,860 parameters (eqdd until 2026-12-07)
    "6a2a5c5543ffa2313e0ec1ec6c64d6e8": "text8-2026-11-29.eqdd-model",
    # pairs, `cpu-long` of 2026-12-07 with a cosine decay to 30%, 1,622,745 parameters (stop 36 to 38)
    "da2816bd2e600da0c3e4bb21e1957866": "text8-2026-12-07-cosine.eqdd-model",
}


def _directory() -> Path:
    """Where this package's model files lie."""
    return Path(str(resources.files(__name__)))


def shipped(name: str = TEXT8) -> Path:
    """The path of a model file shipped in the package.

    Raises:
        FileNotFoundError: when this install of eqdd lacks it.
    """
    path = _directory() / name
    if not path.is_file():
        raise FileNotFoundError(
            f"this install of eqdd has no shipped model {name}; give --checkpoint RUN_DIR"
        )
    return path


def is_shipped(path: str | os.PathLike) -> bool:
    """Whether `path` is a model file shipped in this package."""
    return Path(path).resolve().parent == _directory().resolve()


def shipped_for(fingerprint: bytes) -> Path | None:
    """The model an earlier release shipped whose codec fingerprint is `fingerprint`, else `None`."""
    name = EARLIER.get(fingerprint.hex())
    return None if name is None else shipped(name)
