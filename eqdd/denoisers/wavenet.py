"""The ARDM paper's audio denoiser (§7.3): a non-causal WaveNet (DiffWave) stack over a 1-D signal.

The input block follows the image network's: the values scaled to `[-1, 1]` with the mask channel
(which samples are revealed) and, for Upscale models, one channel per stage, through a width-3
convolution (3/4 of the width); and the integer classes through an embedding (1/4 of the width). Then
`depth` residual blocks, each a dilated width-3 convolution (dilation `2^(i mod cycle)`, padded on both
sides: non-causal) of the signal plus a projection of the step embedding, a gated activation
`tanh(a)·σ(b)`, and a 1x1 convolution to a residual and a skip path. The skips are summed and turned into
`num_classes` outputs per sample by two 1x1 convolutions. The step `t` enters every block through a
sinusoidal embedding and an MLP. The convolutions are computed as shifted matrix products
([`eqdd.denoisers.convolution.convolve`][]), which keeps the samplers' loops fast on a CPU.

Called like every denoiser of the library on a flat sequence: `(tokens, t, revealed=None, stage=0) ->
(D, num_classes)`.
"""

import math

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Bool, Float, Int, PRNGKeyArray

from eqdd._typing import typecheck
from eqdd.denoisers.convolution import convolve
from eqdd.denoisers.embeddings import step_embedding


class WaveBlock(eqx.Module):
    """One residual block: dilated convolution, step projection, gated activation, residual and skip."""

    dilated: eqx.nn.Conv1d
    time_proj: eqx.nn.Linear
    out: eqx.nn.Conv1d

    def __init__(self, channels: int, time_width: int, dilation: int, *, key: PRNGKeyArray):
        dilated_key, time_key, out_key = jax.random.split(key, 3)
        self.dilated = eqx.nn.Conv1d(
            channels, 2 * channels, 3, dilation=dilation, padding=dilation, key=dilated_key
        )
        self.time_proj = eqx.nn.Linear(time_width, channels, key=time_key)
        self.out = eqx.nn.Conv1d(channels, 2 * channels, 1, key=out_key)

    def __call__(
        self, h: Float[Array, "C L"], time: Float[Array, " T"]
    ) -> tuple[Float[Array, "C L"], Float[Array, "C L"]]:
        channels = h.shape[0]
        gates = convolve(self.dilated, h + self.time_proj(time)[:, None])
        y = convolve(self.out, jnp.tanh(gates[:channels]) * jax.nn.sigmoid(gates[channels:]))
        return (h + y[:channels]) / math.sqrt(2.0), y[channels:]


class WaveNet(eqx.Module):
    """The audio denoiser; see the module docstring."""

    num_input_classes: int = eqx.field(static=True)
    num_classes: int = eqx.field(static=True)
    num_stages: int = eqx.field(static=True)
    num_steps: int = eqx.field(static=True)
    value_conv: eqx.nn.Conv1d
    embedding: eqx.nn.Embedding
    time_mlp: tuple[eqx.nn.Linear, eqx.nn.Linear]
    blocks: tuple[WaveBlock, ...]
    head: tuple[eqx.nn.Conv1d, eqx.nn.Conv1d]

    def __init__(
        self,
        num_input_classes: int,
        num_classes: int,
        width: int,
        depth: int,
        cycle: int,
        num_steps: int,
        num_stages: int = 1,
        *,
        key: PRNGKeyArray,
    ):
        """**Arguments:**

        - `num_input_classes`: the input vocabulary per sample; for OA-ARDMs the last class is the
          absorbing token, and samples holding it are the unrevealed ones.
        - `num_classes`: outputs per sample (`S·b` for the direct parametrisation).
        - `width`: the channels; a multiple of 4.
        - `depth`: residual blocks.
        - `cycle`: dilations run `1, 2, ..., 2^(cycle-1)` and repeat.
        - `num_steps`: the largest step plus one; the time input is scaled to `t·1000/num_steps`.
        - `num_stages`: `S`; above 1, one input channel per stage says which stage is generated.
        - `key`: a PRNG key.
        """
        if width % 4:
            raise ValueError(f"width must be a multiple of 4, got {width}")
        if depth < 1 or cycle < 1:
            raise ValueError(f"depth and cycle must be at least 1, got {depth} and {cycle}")
        keys = iter(jax.random.split(key, 6 + depth))
        self.num_input_classes, self.num_classes = num_input_classes, num_classes
        self.num_stages, self.num_steps = num_stages, num_steps
        in_channels = 2 + (num_stages if num_stages > 1 else 0)
        self.value_conv = eqx.nn.Conv1d(in_channels, 3 * width // 4, 3, padding=1, key=next(keys))
        self.embedding = eqx.nn.Embedding(num_input_classes, width // 4, key=next(keys))
        time_width = 4 * width
        self.time_mlp = (
            eqx.nn.Linear(width, time_width, key=next(keys)),
            eqx.nn.Linear(time_width, time_width, key=next(keys)),
        )
        self.blocks = tuple(
            WaveBlock(width, time_width, 2 ** (i % cycle), key=next(keys)) for i in range(depth)
        )
        self.head = (
            eqx.nn.Conv1d(width, width, 1, key=next(keys)),
            eqx.nn.Conv1d(width, num_classes, 1, key=next(keys)),
        )

    @property
    def receptive_field(self) -> int:
        """How many samples each output sees: `1 + 2·Σ dilations` (plus 2 for the input convolution)."""
        return 3 + 2 * sum(block.dilated.dilation[0] for block in self.blocks)

    @typecheck
    def __call__(
        self,
        tokens: Int[Array, " D"],
        t: Int[Array, ""] | int,
        revealed: Bool[Array, " D"] | None = None,
        stage: Int[Array, ""] | int = 0,
    ) -> Float[Array, "D K"]:
        """**Arguments:**

        - `tokens`: the network input, classes in `[0, num_input_classes)`.
        - `t`: the step.
        - `revealed`: the revealed samples; by default those not holding the absorbing token (the last
          input class), as for OA-ARDMs.
        - `stage`: the Upscale stage (ignored when `num_stages` is 1).

        **Returns:**

        Outputs of shape `(D, num_classes)`.
        """
        if revealed is None:
            revealed = tokens != self.num_input_classes - 1
        length = tokens.shape[0]
        values = 2.0 * tokens / (self.num_input_classes - 1) - 1.0
        features = [values[None], revealed[None]]
        if self.num_stages > 1:
            features.append(
                jnp.broadcast_to(jax.nn.one_hot(stage, self.num_stages)[:, None], (self.num_stages, length))
            )
        convolved = convolve(self.value_conv, jnp.concatenate(features, axis=0).astype(jnp.float32))
        h = jnp.concatenate([convolved, jax.vmap(self.embedding)(tokens).T], axis=0)

        time = step_embedding(self.time_mlp, t, self.num_steps, h.shape[0])

        skips = jnp.zeros_like(h)
        for block in self.blocks:
            h, skip = block(h, time)
            skips = skips + skip
        hidden, out = self.head
        hidden_units = jax.nn.relu(convolve(hidden, jax.nn.relu(skips / math.sqrt(len(self.blocks)))))
        logits = convolve(out, hidden_units)
        return logits.T
