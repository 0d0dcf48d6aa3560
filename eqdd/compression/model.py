"""A trained OA-ARDM as the codec uses it: the network on the CPU, its `L_t`, its fingerprint and what it
codes (text, or images of one shape)."""

import dataclasses
import hashlib
import json
import math
import platform
from importlib import metadata
from typing import Any

import equinox as eqx
import jax
import numpy as np

from eqdd import policy as policies

FINGERPRINT_BYTES = 16


def fingerprint(denoiser: eqx.Module, step_losses: np.ndarray, description: dict[str, Any]) -> bytes:
    """A hash of a model: its description (the config that builds it), every parameter array, and the
    `L_t` its policies are planned on.

    Arguments:
        denoiser: the network.
        step_losses: `L_t`.
        description: JSON-serialisable settings that define the network (e.g. width, depth, `D`).

    Returns:
        The first 16 bytes of the SHA-256 over the description (sorted JSON) and each array's
        dtype, shape and bytes, in tree order, `L_t` last.
    """
    digest = hashlib.sha256(json.dumps(description, sort_keys=True).encode())
    for leaf in [*jax.tree.leaves(eqx.filter(denoiser, eqx.is_array)), step_losses]:
        array = np.asarray(leaf)
        digest.update(f"{array.dtype.str}{array.shape}".encode())
        digest.update(np.ascontiguousarray(array).tobytes())
    return digest.digest()[:FINGERPRINT_BYTES]


def environment() -> str:
    """Where the codec runs: the jax and jaxlib versions and the CPU architecture."""
    return f"jax {jax.__version__}, jaxlib {metadata.version('jaxlib')}, {platform.machine()}"


def describe_shape(shape: tuple[int, ...]) -> str:
    """`28x28x1` for the shape `(28, 28, 1)`."""
    return "x".join(map(str, shape))


@dataclasses.dataclass(frozen=True)
class CodecModel:
    """A trained OA-ARDM ready for the codec; build it with `CodecModel.create`.

    Attributes:
        denoiser: the network, `(x: int[D], t) -> logits[D, K]`, with its parameters on the CPU.
        num_positions: the chunk length `D` (for images, the sub-pixels of one image).
        absorbing_token: the mask token.
        step_losses: the `L_t` tracked in training, which policies are planned on.
        fingerprint: see [`eqdd.compression.model.fingerprint`][].
        image_shape: `(H, W, C)` for an image model (`D = H·W·C`, row-major); `None` for a text model.
    """

    denoiser: eqx.Module
    num_positions: int
    absorbing_token: int
    step_losses: np.ndarray
    fingerprint: bytes
    image_shape: tuple[int, int, int] | None = None

    @classmethod
    def create(
        cls,
        denoiser: eqx.Module,
        num_positions: int,
        absorbing_token: int,
        step_losses: np.ndarray,
        description: dict[str, Any],
        image_shape: tuple[int, int, int] | None = None,
    ) -> "CodecModel":
        """Move the network to the CPU (the codec always runs there, in float32) and fingerprint it.

        Arguments:
            denoiser: the network.
            num_positions: the chunk length `D`.
            absorbing_token: the mask token.
            step_losses: `L_t` for planning, `D` values.
            description: the settings that define the network (part of the fingerprint, with the
                parameters, `L_t`, `D`, the absorbing token and the image shape).
            image_shape: `(H, W, C)` with `H·W·C = D` for an image model; `None` (text) by default.

        Raises:
            ValueError: when the image shape does not hold `D` sub-pixels.
        """
        if image_shape is not None:
            image_shape = tuple(int(n) for n in image_shape)
            if len(image_shape) != 3 or math.prod(image_shape) != num_positions:
                raise ValueError(f"image shape {image_shape} does not hold D = {num_positions} sub-pixels")
        cpu_denoiser = jax.device_put(denoiser, jax.devices("cpu")[0])
        losses = np.asarray(step_losses, np.float64)
        described = {**description, "num_positions": num_positions, "absorbing_token": absorbing_token}
        if image_shape is not None:
            described["image_shape"] = list(image_shape)
        return cls(
            cpu_denoiser,
            num_positions,
            absorbing_token,
            losses,
            fingerprint(cpu_denoiser, losses, described),
            image_shape,
        )

    @property
    def kind(self) -> str:
        """What the model codes: `"text"` (the text8 alphabet) or `"images"` (8-bit, of `image_shape`)."""
        return "text" if self.image_shape is None else "images"

    def describe(self) -> str:
        """`a text model` or `an image model of 28x28x1 images`, for messages."""
        if self.image_shape is None:
            return "a text model"
        return f"an image model of {describe_shape(self.image_shape)} images"

    def plan(self, budget: int) -> tuple[np.ndarray, float]:
        """The optimal policy with `budget` network calls per chunk, planned on the sorted `L_t` (§4).

        Returns:
            The left boundaries and the planned cost in bits per character.

        Raises:
            ValueError: when `budget` is not in `1..D`.
        """
        return policies.optimal_policy(policies.monotone_step_losses(self.step_losses), budget)
