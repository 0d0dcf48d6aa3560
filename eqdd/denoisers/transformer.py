"""A bidirectional pre-LayerNorm transformer denoiser (the text8 network of the ARDM paper, §7.1),
with two optional ways to see neighbours from the first step: a residual depthwise convolution before
each block's attention, and rotary position embeddings in place of absolute position features."""

import math

import einops
import equinox as eqx
import jax
import jax.numpy as jnp
from jax.custom_batching import custom_vmap
from jaxtyping import Array, Float, Int, PRNGKeyArray

from eqdd._typing import typecheck
from eqdd.denoisers.attention import BACKENDS, DEFAULT_BACKEND, dot_product_attention
from eqdd.denoisers.embeddings import sinusoidal_angles, sinusoidal_features, step_embedding


def _dense(in_size: int, out_size: int, *, use_bias: bool, key: PRNGKeyArray) -> eqx.nn.Linear:
    """A linear layer with Xavier-uniform weights and zero bias, as in the reference network."""
    linear = eqx.nn.Linear(in_size, out_size, use_bias=use_bias, key=key)
    limit = math.sqrt(6.0 / (in_size + out_size))
    weight = jax.random.uniform(key, (out_size, in_size), minval=-limit, maxval=limit)
    linear = eqx.tree_at(lambda layer: layer.weight, linear, weight)
    if use_bias:
        linear = eqx.tree_at(lambda layer: layer.bias, linear, jnp.zeros(out_size))
    return linear


def _per_position(layer, h: Float[Array, "S C"]) -> Float[Array, "S C2"]:
    if isinstance(layer, eqx.nn.Linear) and layer.weight.dtype == jnp.bfloat16:
        out = bfloat16_product(h, layer.weight)  # see `bfloat16_matmuls`
        return out if layer.bias is None else out + layer.bias
    return jax.vmap(layer)(h)


@jax.custom_vjp
def bfloat16_product(h: Float[Array, "S I"], weight: Float[Array, "O I"]) -> Float[Array, "S O"]:
    """`h @ weight.T` with `h` rounded to bfloat16 and the products accumulated in float32.

    Its gradient is written out so that every product of the backward pass runs in bfloat16 too: the
    cotangent is rounded to bfloat16, the input's gradient is accumulated in float32, and the weight's
    (`cotangent.T @ h`) is one product over every position of every example at once (see
    `_weight_gradient`) returned in the weight's dtype. Automatic differentiation would instead multiply
    the float32 cotangent by bfloat16 operands, which XLA runs as float32 products.

    Arguments:
        h: the inputs, positions by input channels (float32).
        weight: the matrix, output by input channels (bfloat16).

    Returns:
        The products, positions by output channels, float32.
    """
    return jnp.dot(h.astype(jnp.bfloat16), weight.T, preferred_element_type=jnp.float32)


def _bfloat16_product_forward(h, weight):
    return bfloat16_product(h, weight), (h.astype(jnp.bfloat16), _shared(weight))


def _bfloat16_product_backward(residuals, cotangent):
    rounded, weight = residuals
    cotangent = cotangent.astype(jnp.bfloat16)
    h_gradient = jnp.dot(cotangent, weight, preferred_element_type=jnp.float32)
    return h_gradient, _weight_gradient(cotangent, rounded).astype(weight.dtype)


bfloat16_product.defvjp(_bfloat16_product_forward, _bfloat16_product_backward)


@custom_vmap
def _shared(weight: Array) -> Array:
    """The identity, which refuses a weight with a batch axis: `_weight_gradient` sums over the batch."""
    return weight


@_shared.def_vmap
def _shared_vmap(axis_size, in_batched, weight):
    if in_batched[0]:
        raise NotImplementedError(
            "bfloat16 matrix products train a weight shared by the batch; vmapping over the weights "
            "themselves (an ensemble) is not supported: train it with float32 products"
        )
    return weight, False


@custom_vmap
def _weight_gradient(cotangent: Array, h: Array) -> Array:
    """`cotangent.T @ h` accumulated in float32. Under `vmap` (the training step's vmap over examples)
    it returns the sum over the batch, one product over all its rows, not a per-example stack: the
    weight is shared by the batch (`_shared` checks), so its gradient is that sum either way, and JAX
    would otherwise form and then add up one small product per example."""
    return jnp.dot(cotangent.T, h, preferred_element_type=jnp.float32)


@_weight_gradient.def_vmap
def _weight_gradient_vmap(axis_size, in_batched, cotangent, h):
    cotangent, h = (
        (x if batched else jnp.broadcast_to(x, (axis_size, *x.shape))).reshape(-1, x.shape[-1])
        for x, batched in zip((cotangent, h), in_batched, strict=True)
    )
    return _weight_gradient(cotangent, h), False


def _shifted_sum(h: Float[Array, "S C"], kernel: Float[Array, "C W"]) -> Float[Array, "S C"]:
    num_positions, width = h.shape[0], kernel.shape[1]
    padded = jnp.pad(h, ((width // 2, width // 2), (0, 0)))
    return sum(padded[j : j + num_positions] * kernel[:, j] for j in range(width))


@jax.custom_vjp
@typecheck
def depthwise_correlation(h: Float[Array, "S C"], kernel: Float[Array, "C W"]) -> Float[Array, "S C"]:
    """`out[s, c] = Σ_j kernel[c, j] · h[s + j - W//2, c]`, zero outside `0..S-1` (`W` odd).

    Its gradient is written out: the input's is the same correlation of the cotangent with the
    kernel reversed, the kernel's a sum of products per tap. Automatic differentiation of the shifted
    sum pads and slices the cotangent once per tap, which XLA fuses badly into the training step: the
    text8 default's step is 5% faster with the gradient written out (`benchmarks/RESULTS.md`).

    Arguments:
        h: the input, positions by channels.
        kernel: one odd-width filter per channel.

    Returns:
        The correlation, the shape of `h`.
    """
    return _shifted_sum(h, kernel)


def _correlation_forward(h, kernel):
    return _shifted_sum(h, kernel), (h, kernel)


def _correlation_backward(residuals, cotangent):
    h, kernel = residuals
    num_positions, width = h.shape[0], kernel.shape[1]
    padded = jnp.pad(h, ((width // 2, width // 2), (0, 0)))
    taps = [jnp.sum(padded[j : j + num_positions] * cotangent, axis=0) for j in range(width)]
    return _shifted_sum(cotangent, kernel[:, ::-1]), jnp.stack(taps, axis=1)


depthwise_correlation.defvjp(_correlation_forward, _correlation_backward)


class DepthwiseConv(eqx.Module):
    """A depthwise 1-D convolution along the sequence, zero-padded to keep its length: channel `c` of
    position `s` mixes channel `c` of positions `s - width//2 .. s + width//2` (`width` is odd;
    [`depthwise_correlation`][] plus a bias)."""

    kernel: Float[Array, "C W"]
    bias: Float[Array, " C"]

    def __init__(self, channels: int, width: int, *, key: PRNGKeyArray):
        limit = 1.0 / math.sqrt(width)
        self.kernel = jax.random.uniform(key, (channels, width), minval=-limit, maxval=limit)
        self.bias = jnp.zeros(channels)

    def __call__(self, h: Float[Array, "S C"]) -> Float[Array, "S C"]:
        return depthwise_correlation(h, self.kernel) + self.bias


def squared_relu(x: Float[Array, "*shape"]) -> Float[Array, "*shape"]:
    """`max(x, 0)²`, the MLP activation of So et al. (2021, "Primer"): cheaper than GELU's tanh."""
    return jnp.square(jax.nn.relu(x))


ACTIVATIONS = {"gelu": jax.nn.gelu, "relu2": squared_relu}


def rotary(x: Float[Array, "S H E"], max_scale: float = 1e4) -> Float[Array, "S H E"]:
    """Rotary position embedding: rotate each pair `(x[..., i], x[..., i + E/2])` of position `s` by
    the angle `s·ω_i`, so that the dot product of a rotated query and key depends on their offset only.

    Arguments:
        x: queries or keys of one sequence; the head width `E` must be even.
        max_scale: the longest wavelength, `2π·max_scale`.

    Returns:
        The rotated array.
    """
    num_positions, _, head_width = x.shape
    angles = sinusoidal_angles(jnp.arange(num_positions, dtype=jnp.float32), head_width, max_scale)
    cos, sin = jnp.cos(angles)[:, None, :], jnp.sin(angles)[:, None, :]
    first, second = jnp.split(x, 2, axis=-1)
    return jnp.concatenate([first * cos - second * sin, first * sin + second * cos], axis=-1).astype(x.dtype)


def rms_normalise(x: Float[Array, "*shape E"], gain: Float[Array, " E"]) -> Float[Array, "*shape E"]:
    """`x` divided by its root mean square over the last axis, times `gain` (RMSNorm, no bias)."""
    return x * jax.lax.rsqrt(jnp.mean(jnp.square(x), axis=-1, keepdims=True) + 1e-6) * gain


class Block(eqx.Module):
    """One pre-LayerNorm block: optionally a depthwise convolution, then self-attention (no bias), then
    optionally a second depthwise convolution, then an MLP (GELU or squared ReLU, optionally gated),
    each residual."""

    conv: DepthwiseConv | None
    mlp_conv: DepthwiseConv | None
    attention_norm: eqx.nn.LayerNorm
    qkv: eqx.nn.Linear
    out: eqx.nn.Linear
    mlp_norm: eqx.nn.LayerNorm
    mlp_in: eqx.nn.Linear
    mlp_out: eqx.nn.Linear
    mlp_gate: eqx.nn.Linear | None
    qk_gains: Float[Array, "2 E"] | None
    num_heads: int = eqx.field(static=True)
    attention_backend: str = eqx.field(static=True)
    rotary: bool = eqx.field(static=True)
    activation: str = eqx.field(static=True)

    def __init__(
        self,
        width: int,
        num_heads: int,
        mlp_width: int,
        attention_backend: str,
        conv_width: int = 0,
        rotary: bool = False,
        activation: str = "gelu",
        mlp_conv: bool = False,
        qk_norm: bool = False,
        zero_init: bool = False,
        gated_mlp: bool = False,
        *,
        key: PRNGKeyArray,
    ):
        keys = jax.random.split(key, 6)
        self.conv = DepthwiseConv(width, conv_width, key=keys[4]) if conv_width else None
        self.mlp_conv = DepthwiseConv(width, conv_width, key=keys[5]) if conv_width and mlp_conv else None
        self.attention_norm = eqx.nn.LayerNorm(width)
        self.qkv = _dense(width, 3 * width, use_bias=False, key=keys[0])
        self.out = _dense(width, width, use_bias=False, key=keys[1])
        self.mlp_norm = eqx.nn.LayerNorm(width)
        self.mlp_in = _dense(width, mlp_width, use_bias=True, key=keys[2])
        self.mlp_out = _dense(mlp_width, width, use_bias=True, key=keys[3])
        # its own key, so that every other layer starts as it does without a gate
        gate_key = jax.random.fold_in(key, 6)
        self.mlp_gate = _dense(width, mlp_width, use_bias=True, key=gate_key) if gated_mlp else None
        if zero_init:  # each residual branch starts as the identity
            self.out = eqx.tree_at(lambda layer: layer.weight, self.out, jnp.zeros_like(self.out.weight))
            self.mlp_out = eqx.tree_at(
                lambda layer: layer.weight, self.mlp_out, jnp.zeros_like(self.mlp_out.weight)
            )
        self.qk_gains = jnp.ones((2, width // num_heads)) if qk_norm else None
        self.num_heads = num_heads
        self.attention_backend = attention_backend
        self.rotary = rotary
        self.activation = activation

    def __call__(self, h: Float[Array, "S C"]) -> Float[Array, "S C"]:
        if self.conv is not None:
            h = h + self.conv(h)
        qkv = _per_position(self.qkv, _per_position(self.attention_norm, h))
        q, k, v = einops.rearrange(qkv, "s (n h e) -> n s h e", n=3, h=self.num_heads)
        if self.qk_gains is not None:
            q, k = rms_normalise(q, self.qk_gains[0]), rms_normalise(k, self.qk_gains[1])
        if self.rotary:
            q, k = rotary(q), rotary(k)
        attended = dot_product_attention(q, k, v, backend=self.attention_backend)
        attended = einops.rearrange(attended, "s h e -> s (h e)")
        h = h + _per_position(self.out, attended)
        if self.mlp_conv is not None:
            h = h + self.mlp_conv(h)
        normed = _per_position(self.mlp_norm, h)
        hidden = ACTIVATIONS[self.activation](_per_position(self.mlp_in, normed))
        if self.mlp_gate is not None:
            hidden = hidden * _per_position(self.mlp_gate, normed)
        return h + _per_position(self.mlp_out, hidden)


class Transformer(eqx.Module):
    """A bidirectional transformer over one sequence of class indices.

    Masked (absorbed) positions are simply a token of their own (`num_input_classes - 1` by the
    library's convention); no mask is passed. Positions get fixed sinusoidal features added to the
    input, or, with `rotary`, rotary embeddings of the queries and keys (attention then sees only
    offsets). With `conv_width`, each block starts with a residual depthwise convolution over that many
    neighbouring positions, so the network sees its neighbours from the first step. With
    `time_conditioning`, the step `t` is embedded (sinusoidal features of `t·1000/D`, then an MLP)
    and added at every position; without it, `t` is ignored, as in the paper's text8 network.
    """

    token_embedding: eqx.nn.Embedding
    time_mlp: tuple[eqx.nn.Linear, eqx.nn.Linear] | None
    blocks: tuple[Block, ...]
    final_norm: eqx.nn.LayerNorm
    head: eqx.nn.Linear
    rotary: bool = eqx.field(static=True)

    def __init__(
        self,
        num_input_classes: int,
        num_classes: int,
        width: int,
        depth: int,
        num_heads: int,
        mlp_width: int,
        time_conditioning: bool = False,
        attention_backend: str = DEFAULT_BACKEND,
        conv_width: int = 0,
        rotary: bool = False,
        activation: str = "gelu",
        mlp_conv: bool = False,
        qk_norm: bool = False,
        zero_init: bool = False,
        gated_mlp: bool = False,
        *,
        key: PRNGKeyArray,
    ):
        """**Arguments:**

        - `num_input_classes`: the input vocabulary, absorbing token included.
        - `num_classes`: the number of output classes (logits per position).
        - `width`: the model width; must be divisible by `num_heads`.
        - `depth`: the number of blocks.
        - `num_heads`: attention heads per block.
        - `mlp_width`: the hidden width of each block's MLP.
        - `time_conditioning`: whether to embed the step `t`.
        - `attention_backend`: one of `eqdd.denoisers.attention.BACKENDS`; it changes the speed, not
          the function, so parameters trained with one backend run with any other.
        - `conv_width`: the odd width of the depthwise convolution before each block's attention; 0
          for none (the paper's network).
        - `rotary`: rotary position embeddings instead of absolute sinusoidal features.
        - `activation`: the MLPs' activation, a key of `ACTIVATIONS`: `"gelu"` (the paper's) or
          `"relu2"` (squared ReLU).
        - `mlp_conv`: with `conv_width`, a second residual depthwise convolution before each MLP.
        - `qk_norm`: RMS-normalise each head's queries and keys (with learned gains) before their
          dot product, which bounds the attention logits.
        - `zero_init`: start the attention's output projection and the MLP's second layer at zero,
          so that every block starts as the identity.
        - `gated_mlp`: multiply each MLP's activations by a second linear map of its input (a GLU
          variant, Shazeer, 2020: `act(x W) ⊙ (x V)`); a third matrix of `width x mlp_width`, so
          two-thirds of the ungated `mlp_width` keeps the parameters.
        - `key`: a PRNG key for the initialisation.
        """
        if width % num_heads:
            raise ValueError(f"width {width} is not divisible by num_heads {num_heads}")
        if conv_width < 0 or (conv_width and conv_width % 2 == 0):
            raise ValueError(f"conv_width must be 0 or odd, got {conv_width}")
        if rotary and (width // num_heads) % 2:
            raise ValueError(f"rotary embeddings need an even head width, got {width // num_heads}")
        if activation not in ACTIVATIONS:
            raise ValueError(f"unknown activation {activation!r}; choose one of {', '.join(ACTIVATIONS)}")
        if attention_backend not in BACKENDS:
            raise ValueError(
                f"unknown attention backend {attention_backend!r}; choose one of {', '.join(BACKENDS)}"
            )
        embed_key, time_key1, time_key2, head_key, *block_keys = jax.random.split(key, 4 + depth)
        self.token_embedding = eqx.nn.Embedding(num_input_classes, width, key=embed_key)
        self.time_mlp = (
            (
                _dense(width, 4 * width, use_bias=True, key=time_key1),
                _dense(4 * width, width, use_bias=True, key=time_key2),
            )
            if time_conditioning
            else None
        )
        self.blocks = tuple(
            Block(
                width,
                num_heads,
                mlp_width,
                attention_backend,
                conv_width,
                rotary,
                activation,
                mlp_conv,
                qk_norm,
                zero_init,
                gated_mlp,
                key=k,
            )
            for k in block_keys
        )
        self.final_norm = eqx.nn.LayerNorm(width)
        self.head = _dense(width, num_classes, use_bias=True, key=head_key)
        self.rotary = rotary

    @typecheck
    def __call__(self, tokens: Int[Array, " S"], t: Int[Array, ""] | int) -> Float[Array, "S K"]:
        """**Arguments:**

        - `tokens`: the corrupted sequence, class indices in `[0, num_input_classes)`.
        - `t`: the step (the number of revealed positions).

        **Returns:**

        Logits of shape `(S, num_classes)`.
        """
        num_positions = tokens.shape[0]
        width = self.final_norm.shape[0]
        h = jax.vmap(self.token_embedding)(tokens)
        if not self.rotary:
            h = h + sinusoidal_features(jnp.arange(num_positions, dtype=h.dtype), width)
        if self.time_mlp is not None:
            h = h + step_embedding(self.time_mlp, t, num_positions, width).astype(h.dtype)
        for block in self.blocks:
            h = block(h)
        return _per_position(self.head, _per_position(self.final_norm, h))


def bfloat16_matmuls(model: Transformer) -> Transformer:
    """The same network with the weight matrices of its blocks stored in bfloat16: each of their matrix
    products then rounds its inputs to bfloat16 and accumulates in float32, which CPUs with bfloat16
    matrix units (AMX, AVX-512 BF16) run several times faster than float32 products. Embeddings,
    norms, biases, convolutions, the attention's scores and the output head stay in float32.

    A different function from the float32 network's, close to it (on the shipped model its
    log-probabilities move by 0.05 at most, 4e-7 nats of KL on average): the codec's network calls use
    it, and training with `--matmuls bfloat16` applies it inside the loss (`make_train_step`'s
    `compute`), where the gradient flows back through the cast to the float32 parameters.

    Arguments:
        model: a float32 transformer.

    Returns:
        The converted copy.
    """
    linears = lambda m: [  # noqa: E731
        layer
        for block in m.blocks
        for layer in (block.qkv, block.out, block.mlp_in, block.mlp_out, block.mlp_gate)
        if layer is not None
    ]
    weights = [layer.weight.astype(jnp.bfloat16) for layer in linears(model)]
    return eqx.tree_at(lambda m: [layer.weight for layer in linears(m)], model, weights)
