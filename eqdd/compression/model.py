"""A trained ARDM (OA or Upscale) as the codec uses it: the network on the CPU, its objective, its `L_t`,
its fingerprint and what it codes (text, or images of one shape)."""

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
from eqdd.compression.container import MATMULS
from eqdd.compression.errors import CompressionError
from eqdd.compression.schemes import OAScheme, Order, Scheme, UpscaleScheme, orders_from_seed, striped_order
from eqdd.data import text8
from eqdd.denoisers.transformer import Transformer, bfloat16_matmuls
from eqdd.objectives import OAARDMObjective, UpscaleObjective

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
    """A trained OA-ARDM or Upscale ARDM ready for the codec; build it with `CodecModel.create`.

    Attributes:
        denoiser: the network (an OA-ARDM's `(x, t) -> logits`, an Upscale ARDM's
            `(tokens, t, revealed, stage) -> output`), with its parameters on the CPU.
        objective: the objective it was trained with ([`eqdd.objectives.OAARDMObjective`][] or
            [`eqdd.objectives.UpscaleObjective`][]): what defines its likelihood.
        num_positions: the chunk length `D` (for images, the sub-pixels of one image).
        step_losses: the `S·D` values of `L_t` tracked in training, which policies are planned on.
        fingerprint: see [`eqdd.compression.model.fingerprint`][].
        image_shape: `(H, W, C)` for an image model (`D = H·W·C`, row-major); `None` otherwise.
        sample_rate: the rate of an audio model's 16-bit samples (what its WAV files are written at);
            `None` otherwise.
        symbols_per_token: characters per token of a text model (2 for a model of character pairs:
            [`eqdd.data.text8.group`][]); 1 otherwise. Files count symbols (characters), the network
            codes tokens: see [`tokens`][] and [`symbols`][].
    """

    denoiser: eqx.Module
    objective: OAARDMObjective | UpscaleObjective
    num_positions: int
    step_losses: np.ndarray
    fingerprint: bytes
    image_shape: tuple[int, int, int] | None = None
    sample_rate: int | None = None
    symbols_per_token: int = 1

    @classmethod
    def create(
        cls,
        denoiser: eqx.Module,
        objective: OAARDMObjective | UpscaleObjective,
        num_positions: int,
        step_losses: np.ndarray,
        description: dict[str, Any],
        image_shape: tuple[int, int, int] | None = None,
        sample_rate: int | None = None,
        symbols_per_token: int = 1,
    ) -> "CodecModel":
        """Move the network to the CPU (the codec always runs there) and fingerprint it.

        Arguments:
            denoiser: the network.
            objective: the objective it was trained with.
            num_positions: the chunk length `D`.
            step_losses: `L_t` for planning, `S·D` values (`S = 1` for an OA-ARDM).
            description: the settings that define the network (part of the fingerprint, with the
                parameters, `L_t`, `D`, the objective's process and the image shape).
            image_shape: `(H, W, C)` with `H·W·C = D` for an image model; `None` (text) by default.
            sample_rate: the sample rate of an audio model (16-bit samples, `K = 2^16`); `None` by default.
            symbols_per_token: characters per token of a text model (1, or 2 for pairs); 1 by default.

        Raises:
            CompressionError: for an OA-ARDM with a logistic-mixture output (the coder needs a table of
                every class, `2^16` of them).
            ValueError: when the image shape does not hold `D` sub-pixels, `L_t` has not `S·D` values, or
                `symbols_per_token` is not 1 (or 2 for text).
        """
        if symbols_per_token not in (1, 2) or (symbols_per_token == 2 and (image_shape or sample_rate)):
            raise ValueError(
                f"symbols_per_token is 1, or 2 for a text model of character pairs; got {symbols_per_token}"
            )
        if isinstance(objective, OAARDMObjective) and objective.process.mixture_components:
            raise CompressionError(
                "an OA-ARDM with a logistic-mixture output cannot code files (the coder needs a table of "
                "every class); use an Upscale ARDM run"
            )
        if image_shape is not None:
            image_shape = tuple(int(n) for n in image_shape)
            if len(image_shape) != 3 or math.prod(image_shape) != num_positions:
                raise ValueError(f"image shape {image_shape} does not hold D = {num_positions} sub-pixels")
        losses = np.asarray(step_losses, np.float64)
        num_stages = objective.num_stages
        if losses.shape != (num_stages * num_positions,):
            raise ValueError(
                f"L_t must have S·D = {num_stages}·{num_positions} values, got shape {losses.shape}"
            )
        cpu_denoiser = jax.device_put(denoiser, jax.devices("cpu")[0])
        described = {**description, **objective.describe(), "num_positions": num_positions}
        if image_shape is not None:
            described["image_shape"] = list(image_shape)
        if sample_rate is not None:
            described["sample_rate"] = int(sample_rate)
        if symbols_per_token != 1:  # absent for single characters: their fingerprints stay as they were
            described["symbols_per_token"] = int(symbols_per_token)
        return cls(
            cpu_denoiser,
            objective,
            num_positions,
            losses,
            fingerprint(cpu_denoiser, losses, described),
            image_shape,
            None if sample_rate is None else int(sample_rate),
            int(symbols_per_token),
        )

    @property
    def kind(self) -> str:
        """What the model codes: `"text"` (the text8 alphabet), `"images"` (8-bit, of `image_shape`) or
        `"audio"` (16-bit samples at `sample_rate`)."""
        if self.sample_rate is not None:
            return "audio"
        return "text" if self.image_shape is None else "images"

    @property
    def symbols_per_chunk(self) -> int:
        """The symbols a chunk of `D` tokens holds: `D · symbols_per_token`."""
        return self.num_positions * self.symbols_per_token

    def num_tokens(self, num_symbols: int) -> int:
        """The tokens that code `num_symbols` symbols: `ceil(num_symbols / symbols_per_token)`."""
        return -(-num_symbols // self.symbols_per_token)

    def tokens(self, symbols: np.ndarray) -> np.ndarray:
        """The model's tokens of a flat stream of symbols: the symbols themselves, or for a model of
        character groups the groups ([`eqdd.data.text8.group`][]), the last one filled up with spaces
        (which the decoder drops: the file counts the characters)."""
        if self.symbols_per_token == 1:
            return symbols
        fill = np.full(-len(symbols) % self.symbols_per_token, text8.SPACE, np.int32)
        return text8.group(np.concatenate([np.asarray(symbols, np.int32), fill]), self.symbols_per_token)

    def symbols(self, tokens: np.ndarray) -> np.ndarray:
        """The inverse of [`tokens`][], the fill included."""
        return tokens if self.symbols_per_token == 1 else text8.ungroup(tokens, self.symbols_per_token)

    @property
    def num_stages(self) -> int:
        """`S`: 1 for an OA-ARDM, the number of upscaling stages for an Upscale ARDM."""
        return self.step_losses.size // self.num_positions

    def describe(self) -> str:
        """`a text model`, `an image model of 28x28x1 images` or `an audio model of 8,000 Hz samples`, for
        messages."""
        if self.kind == "audio":
            return f"an audio model of {self.sample_rate:,} Hz samples"
        if self.image_shape is None:
            return "a text model"
        return f"an image model of {describe_shape(self.image_shape)} images"

    def plan(self, budget: int) -> tuple[np.ndarray, float]:
        """The optimal policy with `budget` network calls per chunk and stage, planned on each stage's
        sorted `L_t` (§4; [`eqdd.policy.optimal_stage_policies`][]).

        Returns:
            The `(S, P)` left boundaries and the planned cost in bits per symbol.

        Raises:
            ValueError: when `budget` is not in `1..D`.
        """
        return policies.optimal_stage_policies(self.step_losses, self.num_stages, [budget])[0]

    def check_matmuls(self, matmuls: str) -> None:
        """Refuse matrix products the model cannot use (before any work is done with them).

        Raises:
            ValueError: for a name not in [`eqdd.compression.container.MATMULS`][].
            CompressionError: for `"bfloat16"` with a network other than the transformer.
        """
        if matmuls not in MATMULS:
            raise ValueError(f"unknown matrix products {matmuls!r}; choose one of {', '.join(MATMULS)}")
        if matmuls == "bfloat16" and not isinstance(self.denoiser, Transformer):
            raise CompressionError(
                f"bfloat16 matrix products are for text models (the transformer); {self.describe()} "
                "computes in float32"
            )

    def network(self, matmuls: str = "float32") -> eqx.Module:
        """The denoiser with its matrix products in `matmuls` (see [`scheme`][]).

        Raises:
            ValueError, CompressionError: from [`check_matmuls`][].
        """
        self.check_matmuls(matmuls)
        return bfloat16_matmuls(self.denoiser) if matmuls == "bfloat16" else self.denoiser

    def arrangement(self, order: Order, budget: int) -> tuple[np.ndarray, np.ndarray]:
        """The orders and the policy `order` codes with in `budget` calls per chunk and stage.

        A seeded order draws one permutation per stage ([`eqdd.compression.schemes.orders_from_seed`][])
        and takes the optimal policy for `budget` ([`plan`][]); a striped one repeats
        [`eqdd.compression.schemes.striped_order`][] and its policy in every stage.

        Returns:
            The `(S, D)` orders and the `(S, P)` left boundaries.

        Raises:
            ValueError: when `budget` is not in `1..D`, or for an unknown kind of order.
        """
        if order.kind == "seeded":
            return orders_from_seed(order.seed, self.num_stages, self.num_positions), self.plan(budget)[0]
        if order.kind == "striped":
            sigma, row = striped_order(self.num_positions, budget)
            return np.tile(sigma, (self.num_stages, 1)), np.tile(row, (self.num_stages, 1))
        raise ValueError(f"unknown kind of order {order.kind!r}; choose seeded or striped")

    def scheme(self, order: Order, budget: int, matmuls: str = "float32") -> Scheme:
        """The model coding in `order` with `budget` network calls per chunk and stage
        ([`arrangement`][]), as the codec drives it, its network's matrix products in `matmuls`
        (`"float32"`, or `"bfloat16"` for a transformer: [`eqdd.denoisers.transformer.bfloat16_matmuls`][],
        several times faster on CPUs with bfloat16 units).

        Raises:
            ValueError: from [`arrangement`][] and [`check_matmuls`][].
            CompressionError: from [`check_matmuls`][].
        """
        denoiser = self.network(matmuls)
        orders, policy = self.arrangement(order, budget)
        if isinstance(self.objective, OAARDMObjective):
            return OAScheme(denoiser, self.objective.process, orders, policy)
        return UpscaleScheme(denoiser, self.objective.transitions, orders, policy)
