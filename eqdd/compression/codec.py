"""Code sequences with an OA-ARDM under one fixed order and policy (reference §5).

With an order `sigma` (position -> step) and a policy `0 = b_0 < … < b_{K-1} < D`, an OA-ARDM is an
exact autoregressive model: segment `j` makes one network call on the sequence revealed where
`sigma < b_j` (the absorbing token elsewhere) and gives every position with `b_j <= sigma < b_{j+1}`
its conditional. An entropy coder therefore codes a sequence in `-log2 p(x | sigma, policy)` bits
plus a constant, with no bits-back overhead.

Layout. A stream of `N` tokens is cut into `ceil(N / D)` chunks of `D`; the last chunk is padded with
the absorbing token, and padding positions are never coded: they stay masked in every network input,
so the last chunk is coded under the model's marginal over its real positions. Chunks are coded in
batches of `rows = min(batch_size, chunks)` (the last batch is filled with all-padding rows), so the
network always sees one shape. The decoder must use the same `batch_size`: XLA's results may depend
on the shape.

Order of the symbols (decoding order): batch by batch; within a batch, segment by segment; within a
segment, row-major over (chunk, position). The encoder pushes the batches last to first onto the ANS
stack, so the decoder pops them first to last, each after the network call that gives its tables.

Determinism. Both sides call one jitted function with identical inputs (the decoder's partially
decoded batch equals the encoder's corrupted one) on the CPU in float32; the tables are then built
with exact integer arithmetic ([`eqdd.compression.tables`][]). A checksum of the first call's table
lets the decoder detect a different environment before decoding anything.
"""

import zlib

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, Int, Integer, UInt32

from eqdd._progress import progress
from eqdd._typing import Denoiser, typecheck
from eqdd.compression import ans
from eqdd.compression.errors import DeterminismError
from eqdd.compression.tables import quantize
from eqdd.objectives import oa_ardm_policy_log_likelihood
from eqdd.policy import check_policy
from eqdd.processes import absorbing


@typecheck
def order_from_seed(seed: int, num_positions: int) -> Int[np.ndarray, " D"]:
    """The order `sigma` of candidate `seed` ([`eqdd.processes.sample_order`][] with `PRNGKey(seed)`).

    Arguments:
        seed: a non-negative integer.
        num_positions: `D`.

    Returns:
        `sigma` as int32, a permutation of `0..D-1`.
    """
    return np.asarray(absorbing.sample_order(jax.random.PRNGKey(seed), num_positions))


def checksum(array: np.ndarray) -> int:
    """CRC32 of an array's bytes in little-endian order (for the header's consistency checks)."""
    return zlib.crc32(np.ascontiguousarray(array, array.dtype.newbyteorder("<")).tobytes())


@eqx.filter_jit
def _segment_probabilities(
    denoiser: Denoiser,
    x: Int[Array, "B D"],
    sigma: Int[Array, " D"],
    left: Int[Array, ""],
    absorbing_token: int,
) -> Float[Array, "B D K"]:
    """The conditionals of one segment: one network call on `x` revealed where `sigma < left`."""
    corrupted = jax.vmap(absorbing.corrupt, in_axes=(0, None, None, None))(x, sigma, left, absorbing_token)
    logits = jax.vmap(denoiser, in_axes=(0, None))(corrupted, left)
    return jax.nn.softmax(logits.astype(jnp.float32), axis=-1)


@eqx.filter_jit
def _code_lengths(
    denoiser: Denoiser,
    chunks: Int[Array, "M D"],
    sigma: Int[Array, " D"],
    policy: Int[Array, " K"],
    absorbing_token: int,
) -> Float[Array, " M"]:
    return jax.vmap(lambda x: oa_ardm_policy_log_likelihood(denoiser, x, sigma, policy, absorbing_token))(
        chunks
    )


class _Layout:
    """Chunks, batches, padding and segments of a stream of `num_tokens` tokens."""

    def __init__(self, num_tokens: int, sigma: np.ndarray, policy: np.ndarray, batch_size: int):
        if batch_size < 1:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        if not np.array_equal(np.sort(sigma), np.arange(sigma.shape[0])):
            raise ValueError("sigma must be a permutation of 0..D-1")
        check_policy(policy, sigma.shape[0])
        self.num_tokens = num_tokens
        self.length = sigma.shape[0]
        num_chunks = -(-num_tokens // self.length)
        self.rows = min(batch_size, num_chunks)
        self.num_batches = -(-num_chunks // self.rows) if num_chunks else 0
        lefts, rights = map(np.asarray, absorbing.segments(jnp.asarray(policy), self.length))
        self.segments = [
            (int(left), (sigma >= left) & (sigma < right)) for left, right in zip(lefts, rights, strict=True)
        ]

    def span(self, batch: int) -> tuple[int, int]:
        """The token range `[begin, end)` of a batch."""
        begin = batch * self.rows * self.length
        return begin, min(begin + self.rows * self.length, self.num_tokens)

    def real(self, batch: int) -> np.ndarray:
        """Which positions of a batch hold tokens (the others are padding), shape `(rows, D)`."""
        begin, end = self.span(batch)
        return (np.arange(self.rows * self.length) < end - begin).reshape(self.rows, self.length)


@typecheck
def encode(
    denoiser: Denoiser,
    tokens: Integer[np.ndarray, " N"],
    sigma: Int[np.ndarray, " D"],
    policy: Int[np.ndarray, " K"],
    absorbing_token: int,
    batch_size: int,
    show_progress: bool = False,
    unit: str = "symbol",
) -> tuple[UInt32[np.ndarray, " W"], int]:
    """Compress a stream of tokens (see the module docstring for the layout).

    Arguments:
        denoiser: the OA-ARDM network, `(x: int[D], t) -> logits[D, K]`, on the CPU.
        tokens: classes in `0..K-1`, none equal to `absorbing_token`.
        sigma: the order, shared by every chunk.
        policy: the `K` left boundaries.
        absorbing_token: the mask token.
        batch_size: chunks per network call (the decoder needs the same).
        show_progress: show a progress bar.
        unit: what the progress bar counts (e.g. `"char"`).

    Returns:
        The ANS words and the CRC32 of the first network call's quantised table (0 for no tokens).
    """
    layout = _Layout(tokens.shape[0], sigma, policy, batch_size)
    coder, first_table = ans.new_coder(), 0
    sigma_device = jnp.asarray(sigma)
    with progress(tokens.shape[0], "compressing", unit, show_progress) as bar:
        for batch in reversed(range(layout.num_batches)):
            begin, end = layout.span(batch)
            x = np.full(layout.rows * layout.length, absorbing_token, np.int32)
            x[: end - begin] = tokens[begin:end]
            x = x.reshape(layout.rows, layout.length)
            real = layout.real(batch)
            symbols, tables = [], []
            for left, in_segment in layout.segments:
                probabilities = np.asarray(
                    _segment_probabilities(denoiser, x, sigma_device, jnp.int32(left), absorbing_token)
                )
                if batch == 0 and left == 0:
                    first_table = checksum(quantize(probabilities[0]))
                coded = real & in_segment
                symbols.append(x[coded])
                tables.append(quantize(probabilities[coded]))
            symbols = np.concatenate(symbols)
            if (symbols >= tables[0].shape[-1]).any():
                raise ValueError(f"tokens must be classes below {tables[0].shape[-1]}")
            ans.push(coder, symbols, np.concatenate(tables))
            bar.update(end - begin)
    return coder.get_compressed(), first_table


@typecheck
def decode(
    denoiser: Denoiser,
    words: UInt32[np.ndarray, " W"],
    num_tokens: int,
    sigma: Int[np.ndarray, " D"],
    policy: Int[np.ndarray, " K"],
    absorbing_token: int,
    batch_size: int,
    first_table: int,
    show_progress: bool = False,
    unit: str = "symbol",
) -> Int[np.ndarray, " N"]:
    """Decompress what [`encode`][eqdd.compression.codec.encode] produced, with the same arguments.

    Arguments:
        denoiser: the network the encoder used.
        words: the ANS words.
        num_tokens: the number of tokens coded.
        sigma: the order.
        policy: the left boundaries.
        absorbing_token: the mask token.
        batch_size: the encoder's batch size.
        first_table: the encoder's CRC32 of its first table.
        show_progress: show a progress bar.
        unit: what the progress bar counts.

    Returns:
        The tokens (int32).

    Raises:
        DeterminismError: when the first network call's table differs from the encoder's, or when
            the words are not used up exactly (the conditionals differed later on).
    """
    layout = _Layout(num_tokens, sigma, policy, batch_size)
    coder = ans.new_coder(words)
    sigma_device = jnp.asarray(sigma)
    decoded = []
    with progress(num_tokens, "decompressing", unit, show_progress) as bar:
        for batch in range(layout.num_batches):
            real = layout.real(batch)
            x = np.full((layout.rows, layout.length), absorbing_token, np.int32)
            for left, in_segment in layout.segments:
                probabilities = np.asarray(
                    _segment_probabilities(denoiser, x, sigma_device, jnp.int32(left), absorbing_token)
                )
                if batch == 0 and left == 0 and checksum(quantize(probabilities[0])) != first_table:
                    raise DeterminismError(
                        "the network's first output differs from the one the file was written with"
                    )
                coded = real & in_segment
                x[coded] = ans.pop(coder, quantize(probabilities[coded]))
            decoded.append(x[real])
            bar.update(int(real.sum()))
    if not coder.is_empty():
        raise DeterminismError("decoding did not use up the coded words exactly")
    return np.concatenate(decoded) if decoded else np.zeros(0, np.int32)


@typecheck
def code_lengths(
    denoiser: Denoiser,
    chunks: Int[np.ndarray, "M D"],
    sigma: Int[np.ndarray, " D"],
    policy: Int[np.ndarray, " K"],
    absorbing_token: int,
    batch_size: int = 64,
) -> Float[np.ndarray, " M"]:
    """The exact code length `-log2 p(x | sigma, policy)` of whole chunks, in bits per symbol (character
    or sub-pixel).

    [`eqdd.objectives.oa_ardm_policy_log_likelihood`][] over batches of chunks; independent of the
    coder, so it checks what the coder achieves.

    Arguments:
        denoiser: the network.
        chunks: full chunks of `D` tokens (at least one).
        sigma: the order.
        policy: the left boundaries.
        absorbing_token: the mask token.
        batch_size: chunks per call.

    Returns:
        Bits per symbol of each chunk (float32).
    """
    sigma, policy = jnp.asarray(sigma), jnp.asarray(policy)
    batches = [jnp.asarray(chunks[i : i + batch_size]) for i in range(0, chunks.shape[0], batch_size)]
    return np.concatenate(
        [np.asarray(_code_lengths(denoiser, b, sigma, policy, absorbing_token)) for b in batches]
    )


@typecheck
def choose_order(
    denoiser: Denoiser,
    chunks: Int[np.ndarray, "M D"],
    policy: Int[np.ndarray, " K"],
    absorbing_token: int,
    num_candidates: int,
) -> tuple[int, list[float]]:
    """The best of the orders of seeds `0..num_candidates-1` by exact code length on `chunks` (reference §5).

    Arguments:
        denoiser: the network.
        chunks: full chunks of `D` tokens, at least one (the paper scores training chunks).
        policy: the left boundaries.
        absorbing_token: the mask token.
        num_candidates: how many seeded orders to try.

    Returns:
        The best seed, and the mean bits per symbol of every candidate.
    """
    bits = [
        float(
            code_lengths(
                denoiser, chunks, order_from_seed(seed, chunks.shape[1]), policy, absorbing_token
            ).mean()
        )
        for seed in range(num_candidates)
    ]
    return int(np.argmin(bits)), bits
