"""The ARDM paper's image denoiser (§7.2, §8): a U-Net without downsampling.

Every sub-pixel is a variable. The input block turns the integer image into features two ways and
concatenates them: the values scaled to `[-1, 1]` together with the mask channels (which sub-pixels are
revealed) and, for Upscale models, one channel per stage, through a 3x3 convolution (3/4 of the width);
and each channel's integer through its own embedding, flattened over channels and projected (1/4 of the
width). Then `num_res_blocks` ResBlocks, a middle ResBlock - self-attention - ResBlock, `num_res_blocks
+ 1` ResBlocks each fed a skip connection, GroupNorm, swish and a 3x3 convolution to `C·K` logits. The
step `t` enters every ResBlock through a sinusoidal embedding and an MLP; the last convolution of every
ResBlock and the attention's output projection start at zero, so each block starts as the identity.

The network is called on a flat sequence of `D = H·W·C` variables (the library's convention for every
denoiser) and reshapes it to the image internally; [`UNet.image_logits`][] is the image-shaped form.
"""

import math

import einops
import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Bool, Float, Int, PRNGKeyArray

from eqdd._typing import typecheck
from eqdd.denoisers.attention import BACKENDS, DEFAULT_BACKEND, dot_product_attention
from eqdd.denoisers.embeddings import step_embedding


def _groups(channels: int) -> int:
    return math.gcd(channels, 32)


def _zero(layer: eqx.Module) -> eqx.Module:
    """`layer` with its weight and bias set to zero."""
    return eqx.tree_at(
        lambda m: (m.weight, m.bias), layer, (jnp.zeros_like(layer.weight), jnp.zeros_like(layer.bias))
    )


def _conv(in_channels: int, out_channels: int, key: PRNGKeyArray) -> eqx.nn.Conv2d:
    return eqx.nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1, key=key)


class ResBlock(eqx.Module):
    """norm - swish - conv3x3, plus the projected time embedding; norm - swish - zero-initialised
    conv3x3; residual (through a 1x1 convolution when the width changes)."""

    norm1: eqx.nn.GroupNorm
    conv1: eqx.nn.Conv2d
    time: eqx.nn.Linear
    norm2: eqx.nn.GroupNorm
    conv2: eqx.nn.Conv2d
    skip: eqx.nn.Conv2d | None

    def __init__(self, in_channels: int, out_channels: int, time_width: int, *, key: PRNGKeyArray):
        keys = jax.random.split(key, 4)
        self.norm1 = eqx.nn.GroupNorm(_groups(in_channels), in_channels)
        self.conv1 = _conv(in_channels, out_channels, keys[0])
        self.time = eqx.nn.Linear(time_width, out_channels, key=keys[1])
        self.norm2 = eqx.nn.GroupNorm(_groups(out_channels), out_channels)
        self.conv2 = _zero(_conv(out_channels, out_channels, keys[2]))
        self.skip = (
            eqx.nn.Conv2d(in_channels, out_channels, kernel_size=1, key=keys[3])
            if in_channels != out_channels
            else None
        )

    def __call__(self, h: Float[Array, "C H W"], time: Float[Array, " T"]) -> Float[Array, "C2 H W"]:
        out = self.conv1(jax.nn.swish(self.norm1(h)))
        out = out + self.time(jax.nn.swish(time))[:, None, None]
        out = self.conv2(jax.nn.swish(self.norm2(out)))
        return out + (h if self.skip is None else self.skip(h))


class Attention(eqx.Module):
    """Self-attention over all pixels: GroupNorm, one head per 32 channels, zero-initialised output."""

    norm: eqx.nn.GroupNorm
    qkv: eqx.nn.Linear
    out: eqx.nn.Linear
    num_heads: int = eqx.field(static=True)
    backend: str = eqx.field(static=True)

    def __init__(self, channels: int, backend: str, *, key: PRNGKeyArray):
        keys = jax.random.split(key)
        self.norm = eqx.nn.GroupNorm(_groups(channels), channels)
        self.qkv = eqx.nn.Linear(channels, 3 * channels, key=keys[0])
        self.out = _zero(eqx.nn.Linear(channels, channels, key=keys[1]))
        self.num_heads = max(1, channels // 32)
        self.backend = backend

    def __call__(self, h: Float[Array, "C H W"]) -> Float[Array, "C H W"]:
        _, height, width = h.shape
        pixels = einops.rearrange(self.norm(h), "c h w -> (h w) c")
        q, k, v = einops.rearrange(jax.vmap(self.qkv)(pixels), "s (n h e) -> n s h e", n=3, h=self.num_heads)
        attended = einops.rearrange(dot_product_attention(q, k, v, backend=self.backend), "s h e -> s (h e)")
        return h + einops.rearrange(jax.vmap(self.out)(attended), "(h w) c -> c h w", h=height, w=width)


class UNet(eqx.Module):
    """The image denoiser; see the module docstring."""

    image_shape: tuple[int, int, int] = eqx.field(static=True)
    num_input_classes: int = eqx.field(static=True)
    num_classes: int = eqx.field(static=True)
    num_stages: int = eqx.field(static=True)
    num_steps: int = eqx.field(static=True)
    value_conv: eqx.nn.Conv2d
    embedding: eqx.nn.Embedding
    embedding_proj: eqx.nn.Linear
    time_mlp: tuple[eqx.nn.Linear, eqx.nn.Linear]
    down: tuple[ResBlock, ...]
    middle: tuple[ResBlock, Attention, ResBlock]
    up: tuple[ResBlock, ...]
    out_norm: eqx.nn.GroupNorm
    out_conv: eqx.nn.Conv2d

    def __init__(
        self,
        image_shape: tuple[int, int, int],
        num_input_classes: int,
        num_classes: int,
        width: int,
        num_res_blocks: int,
        num_steps: int,
        num_stages: int = 1,
        attention_backend: str = DEFAULT_BACKEND,
        *,
        key: PRNGKeyArray,
    ):
        """**Arguments:**

        - `image_shape`: `(H, W, C)`; any sizes, odd included.
        - `num_input_classes`: the input vocabulary per sub-pixel; for OA-ARDMs the last class is the
          absorbing token, and positions holding it are the unrevealed ones.
        - `num_classes`: logits per sub-pixel (`K`, or `S·b` for a direct parametrisation).
        - `width`: the channel width; a multiple of 4.
        - `num_res_blocks`: ResBlocks on the way down (one more on the way up).
        - `num_steps`: the largest step plus one (`D` for OA, `S·D` for Upscale); the time input is
          scaled to `t·1000/num_steps`.
        - `num_stages`: `S`; above 1, one input channel per stage says which stage is generated.
        - `attention_backend`: see `eqdd.denoisers.attention`.
        - `key`: a PRNG key.
        """
        height, width_px, channels = image_shape
        if width % 4:
            raise ValueError(f"width must be a multiple of 4, got {width}")
        if attention_backend not in BACKENDS:
            raise ValueError(
                f"unknown attention backend {attention_backend!r}; choose one of {', '.join(BACKENDS)}"
            )
        keys = iter(jax.random.split(key, 8 + 2 * num_res_blocks + 3))
        self.image_shape = (height, width_px, channels)
        self.num_input_classes, self.num_classes = num_input_classes, num_classes
        self.num_stages, self.num_steps = num_stages, num_steps
        in_channels = 2 * channels + (num_stages if num_stages > 1 else 0)
        self.value_conv = _conv(in_channels, 3 * width // 4, next(keys))
        self.embedding = eqx.nn.Embedding(num_input_classes, width // 4, key=next(keys))
        self.embedding_proj = eqx.nn.Linear(channels * (width // 4), width // 4, key=next(keys))
        self.time_mlp = (
            eqx.nn.Linear(width, 4 * width, key=next(keys)),
            eqx.nn.Linear(4 * width, 4 * width, key=next(keys)),
        )
        time_width = 4 * width
        self.down = tuple(ResBlock(width, width, time_width, key=next(keys)) for _ in range(num_res_blocks))
        self.middle = (
            ResBlock(width, width, time_width, key=next(keys)),
            Attention(width, attention_backend, key=next(keys)),
            ResBlock(width, width, time_width, key=next(keys)),
        )
        self.up = tuple(
            ResBlock(2 * width, width, time_width, key=next(keys)) for _ in range(num_res_blocks + 1)
        )
        self.out_norm = eqx.nn.GroupNorm(_groups(width), width)
        self.out_conv = _conv(width, channels * num_classes, next(keys))

    @typecheck
    def image_logits(
        self,
        image: Int[Array, "H W C"],
        t: Int[Array, ""] | int,
        revealed: Bool[Array, "H W C"],
        stage: Int[Array, ""] | int = 0,
    ) -> Float[Array, "H W C K"]:
        """**Arguments:**

        - `image`: the network input, classes in `[0, num_input_classes)`.
        - `t`: the step.
        - `revealed`: which sub-pixels are revealed (the mask channels).
        - `stage`: the Upscale stage (ignored when `num_stages` is 1).

        **Returns:**

        Logits of shape `(H, W, C, num_classes)`.
        """
        height, width_px, channels = self.image_shape
        values = 2.0 * image / (self.num_input_classes - 1) - 1.0
        features = [einops.rearrange(values, "h w c -> c h w"), einops.rearrange(revealed, "h w c -> c h w")]
        if self.num_stages > 1:
            features.append(
                jnp.broadcast_to(
                    jax.nn.one_hot(stage, self.num_stages)[:, None, None], (self.num_stages, height, width_px)
                )
            )
        convolved = self.value_conv(jnp.concatenate(features, axis=0).astype(jnp.float32))
        embedded = jax.vmap(jax.vmap(jax.vmap(self.embedding)))(image)
        embedded = jax.vmap(jax.vmap(self.embedding_proj))(einops.rearrange(embedded, "h w c e -> h w (c e)"))
        h = jnp.concatenate([convolved, einops.rearrange(embedded, "h w e -> e h w")], axis=0)

        time = step_embedding(self.time_mlp, t, self.num_steps, h.shape[0])

        skips = [h]
        for block in self.down:
            h = block(h, time)
            skips.append(h)
        first_block, attention, second_block = self.middle
        h = second_block(attention(first_block(h, time)), time)
        for block in self.up:
            h = block(jnp.concatenate([h, skips.pop()], axis=0), time)
        logits = self.out_conv(jax.nn.swish(self.out_norm(h)))
        return einops.rearrange(logits, "(c k) h w -> h w c k", c=channels)

    @typecheck
    def __call__(
        self,
        tokens: Int[Array, " D"],
        t: Int[Array, ""] | int,
        revealed: Bool[Array, " D"] | None = None,
        stage: Int[Array, ""] | int = 0,
    ) -> Float[Array, "D K"]:
        """The flat form: `D = H·W·C` variables in row-major `(H, W, C)` order.

        **Arguments:**

        - `tokens`: the network input.
        - `t`: the step.
        - `revealed`: the revealed variables; by default those not holding the absorbing token (the
          last input class), as for OA-ARDMs.
        - `stage`: the Upscale stage.

        **Returns:**

        Logits of shape `(D, num_classes)`.
        """
        if revealed is None:
            revealed = tokens != self.num_input_classes - 1
        image = tokens.reshape(self.image_shape)
        logits = self.image_logits(image, t, revealed.reshape(self.image_shape), stage)
        return logits.reshape(tokens.shape[0], self.num_classes)
