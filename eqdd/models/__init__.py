"""Trained models shipped with eqdd, as model files ([`eqdd.runs.save_model`][]) that
[`eqdd.load_run`][] opens; the `eqdd` commands use [`TEXT8`][] when no `--checkpoint` is given.

How each was trained, on what data and from which commit: `benchmarks/RESULTS.md` ("The shipped
model"); the provenance is also inside the file.
"""

from importlib import resources
from pathlib import Path

TEXT8 = "text8.eqdd-model"  # a text8 OA-ARDM `cpu-long` run of 2026-11-29 (1,352,860 parameters)
TEXT8_FINGERPRINT = "6a2a5c5543ffa2313e0ec1ec6c64d6e8"  # its codec fingerprint, in every file it writes


def shipped(name: str = TEXT8) -> Path:
    """The path of a model file shipped in the package.

    Raises:
        FileNotFoundError: when this install of eqdd lacks it.
    """
    path = Path(str(resources.files(__name__) / name))
    if not path.is_file():
        raise FileNotFoundError(
            f"this install of eqdd has no shipped model {name}; give --checkpoint RUN_DIR"
        )
    return path
