"""Code streams of tokens with an ARDM under fixed orders and a fixed policy (reference §5).

With fixed orders and a policy, an ARDM is an exact autoregressive model
([`eqdd.compression.schemes`][]): each network call gives the conditionals of the symbols it codes, so
an entropy coder codes a sequence in `-log2 p(x | orders, policy)` bits plus a constant, with no
bits-back overhead.

Layout. A stream of `N` tokens is cut into `ceil(N / D)` chunks of `D`; the last chunk is padded, and
padding positions are never coded: they are never revealed to the network, so the last chunk is coded
under the model's marginal over its real positions. Chunks are coded in batches of
`rows = min(batch_size, chunks)` (the last batch is filled with all-padding rows), so the network
always sees one shape. The decoder must use the same `batch_size`: XLA's results may depend on the
shape. A batch holds consecutive chunks; with a model of the history it holds instead one chunk of each
of `rows` regions of the stream, the next one of each region batch after batch, so that every chunk is
coded with the chunks before it in its region already known (the match model then has the text just
before each chunk, where repeats are most frequent).

Order of the symbols (decoding order): batch by batch; within a batch, call by call (stage by stage,
segment by segment); within a call, row-major over (chunk, position). The encoder runs the batches in
the decoder's order, keeps each symbol as an index into a three-entry table that codes it exactly as its
full table would ([`eqdd.compression.ans.narrow`][]), and pushes them all at the end, so the decoder
pops them first to last, each after the network call that gives its tables.

Determinism. The encoder runs the decoder's own loop ([`_replay`][]), taking each symbol from the data
instead of popping it, so both sides call the same jitted functions on the same states, on the CPU in
float32; the tables are then built with exact integer arithmetic ([`eqdd.compression.tables`][]). A
checksum of the first call's table lets the decoder detect a different environment before decoding
anything. A model of the history ([`eqdd.compression.matching`][]) mixed into the distributions is
replayed the same way: it sees the same decoded tokens, in the same order, on both sides.
"""

import zlib
from collections.abc import Callable, Iterator

import numpy as np
from jaxtyping import Bool, Int, Integer, UInt32

from eqdd._progress import progress
from eqdd._typing import typecheck
from eqdd.compression import ans
from eqdd.compression.errors import CorruptedFileError, DeterminismError
from eqdd.compression.matching import MatchMixer
from eqdd.compression.model import CodecModel
from eqdd.compression.schemes import STRIPED, Call, Order, Scheme
from eqdd.compression.tables import quantize


def checksum(array: np.ndarray) -> int:
    """CRC32 of an array's bytes in little-endian order (for the header's consistency checks)."""
    return zlib.crc32(np.ascontiguousarray(array, array.dtype.newbyteorder("<")).tobytes())


class _Layout:
    """Chunks, batches and padding of a stream of `num_tokens` tokens in chunks of `length`.

    Batch `b` holds `rows` chunks: `b·rows .. b·rows + rows - 1` (contiguous), or, `strided`, chunk `b`
    of each of `rows` regions of `num_batches` chunks (chunk `r·num_batches + b` in row `r`), so that
    every chunk is coded after all the chunks before it in its region (what a model of the history
    needs). Rows past the last chunk, and positions past the last token, are padding.
    """

    def __init__(self, num_tokens: int, length: int, batch_size: int, strided: bool = False):
        if batch_size < 1:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        self.num_tokens, self.length, self.strided = num_tokens, length, strided
        num_chunks = -(-num_tokens // length)
        self.rows = min(batch_size, num_chunks)
        self.num_batches = -(-num_chunks // self.rows) if num_chunks else 0

    def chunks(self, batch: int) -> np.ndarray:
        """The chunk index of each row of a batch, `(rows,)`."""
        rows = np.arange(self.rows)
        return rows * self.num_batches + batch if self.strided else batch * self.rows + rows

    def indices(self, batch: int) -> np.ndarray:
        """The stream index of every position of a batch, `(rows, D)`."""
        return self.chunks(batch)[:, None] * self.length + np.arange(self.length)

    def real(self, batch: int) -> np.ndarray:
        """Which positions of a batch hold tokens (the others are padding), shape `(rows, D)`."""
        return self.indices(batch) < self.num_tokens


def _replay(
    scheme: Scheme,
    indices: Int[np.ndarray, "B D"],
    real: Bool[np.ndarray, "B D"],
    take: Callable[[Call, np.ndarray, np.ndarray], np.ndarray],
    first_table: int | None = None,
    history: MatchMixer | None = None,
) -> tuple[np.ndarray, int]:
    """Run a batch's network calls as the decoder does.

    Arguments:
        scheme: the model, orders and policy.
        indices: the stream index of every position (what `history` needs).
        real: which positions hold tokens.
        take: `(call, coded, tables) -> symbols` for the `coded` positions, given their quantised tables
            (the encoder reads the data, the decoder pops).
        first_table: the CRC32 the first call's table must have (the decoder's check), or `None`.
        history: the match model of the tokens decoded so far, mixed into every call's distributions
            (it takes each call's tokens once they are coded), or `None`.

    Returns:
        The batch's tokens and the CRC32 of its first call's quantised table (of the first row).

    Raises:
        DeterminismError: when `first_table` is given and differs.
    """
    state, first = scheme.start(real.shape[0]), None
    for call in scheme.calls:
        probabilities = scheme.probabilities(state, call)
        if first is None:
            first = checksum(quantize(probabilities[0]))
            if first_table is not None and first != first_table:
                raise DeterminismError(
                    "the network's first output differs from the one the file was written with"
                )
        coded = real & call.positions
        coding = probabilities[coded]
        if history is not None:
            coding = history.mix(coding, indices[coded])
        symbols = take(call, coded, quantize(coding))
        if history is not None:
            history.learn(symbols)
        scheme.write(state, call, coded, symbols)
    return scheme.tokens(state), first


def _encode_batch(
    scheme: Scheme, chunks: np.ndarray, indices: np.ndarray, real: np.ndarray, history: MatchMixer | None
) -> tuple[np.ndarray, np.ndarray, int]:
    """The symbols of a batch in decoding order, their quantised tables, and the first table's CRC32.

    Raises:
        ValueError: for a token the model cannot code (the replayed batch differs from the data).
    """
    symbols, tables = [], []

    def take(call: Call, coded: np.ndarray, table: np.ndarray) -> np.ndarray:
        symbols.append(scheme.symbols(chunks, call)[coded])
        tables.append(table)
        return symbols[-1]

    replayed, first_table = _replay(scheme, indices, real, take, history=history)
    symbols, tables = np.concatenate(symbols), np.concatenate(tables)
    if (symbols < 0).any() or (symbols >= tables.shape[-1]).any() or (replayed[real] != chunks[real]).any():
        raise ValueError("the tokens must be data classes of the model (not its absorbing token)")
    return symbols, tables, first_table


@typecheck
def encode(
    scheme: Scheme,
    tokens: Integer[np.ndarray, " N"],
    batch_size: int,
    show_progress: bool = False,
    unit: str = "symbol",
    history: MatchMixer | None = None,
) -> tuple[UInt32[np.ndarray, " W"], int]:
    """Compress a stream of tokens (see the module docstring for the layout).

    Arguments:
        scheme: the model with its orders and policy ([`eqdd.compression.CodecModel.scheme`][]), on
            the CPU.
        tokens: the model's data classes.
        batch_size: chunks per network call (the decoder needs the same).
        show_progress: show a progress bar.
        unit: what the progress bar counts (e.g. `"char"`).
        history: a fresh [`eqdd.compression.matching.MatchMixer`][] to mix into a text model's
            distributions (the decoder needs one too), or `None`.

    Returns:
        The ANS words and the CRC32 of the first network call's quantised table (0 for no tokens).

    Raises:
        ValueError: for a token the model cannot code (outside its classes, or its absorbing token).
    """
    layout = _Layout(tokens.shape[0], scheme.num_positions, batch_size, strided=history is not None)
    coder, first_table, narrowed = ans.new_coder(), 0, []
    with progress(tokens.shape[0], "compressing", unit, show_progress) as bar:
        for batch in range(layout.num_batches):
            indices, real = layout.indices(batch), layout.real(batch)
            chunks = np.where(real, tokens[np.minimum(indices, len(tokens) - 1)], scheme.padding).astype(
                np.int32
            )
            symbols, tables, first = _encode_batch(scheme, chunks, indices, real, history)
            first_table = first if batch == 0 else first_table
            narrowed.append(ans.narrow(symbols, tables))
            bar.update(int(real.sum()))
    if narrowed:
        ans.push(coder, np.concatenate([n[0] for n in narrowed]), np.concatenate([n[1] for n in narrowed]))
    return coder.get_compressed(), first_table


def decode_batches(
    scheme: Scheme,
    words: UInt32[np.ndarray, " W"],
    num_tokens: int,
    batch_size: int,
    first_table: int,
    show_progress: bool = False,
    unit: str = "symbol",
    history: MatchMixer | None = None,
) -> Iterator[Int[np.ndarray, " n"]]:
    """Decompress what [`encode`][eqdd.compression.codec.encode] produced, with the same arguments, one
    batch of chunks at a time: the tokens are yielded in order as soon as they and every token before
    them are decoded. Without a history that is each batch as it is decoded, so a caller that writes
    them out holds one batch, never the whole stream; with one, the batches interleave regions of the
    stream (see the module docstring): the first region comes out a chunk a batch, the rest with the
    last batch (memory: the stream).

    Arguments:
        scheme: the model, orders and policy the encoder used.
        words: the ANS words.
        num_tokens: the number of tokens coded.
        batch_size: the encoder's batch size.
        first_table: the encoder's CRC32 of its first table.
        show_progress: show a progress bar.
        unit: what the progress bar counts.
        history: a fresh match model if the encoder had one, else `None`.

    Yields:
        The tokens (int32), in order, in pieces.

    Raises:
        DeterminismError: when the first network call's table differs from the encoder's, or when
            the words are not used up exactly (the conditionals differed later on); the second is found
            after the last batch.
        CorruptedFileError: when the words run out before the last batch.
    """
    layout = _Layout(num_tokens, scheme.num_positions, batch_size, strided=history is not None)
    coder = ans.new_coder(words)
    done, waiting, next_chunk = 0, {}, 0  # decoded chunks not yet yielded, by index
    with progress(num_tokens, "decompressing", unit, show_progress) as bar:
        for batch in range(layout.num_batches):
            indices, real = layout.indices(batch), layout.real(batch)
            tokens, _ = _replay(
                scheme,
                indices,
                real,
                lambda call, coded, table: ans.pop(coder, table),
                first_table if batch == 0 else None,
                history,
            )
            done += int(real.sum())
            bar.update(int(real.sum()))
            for chunk, row, row_real in zip(layout.chunks(batch), tokens, real, strict=True):
                if row_real.any():
                    waiting[int(chunk)] = row[row_real].astype(np.int32)
            ready = []
            while next_chunk in waiting:
                ready.append(waiting.pop(next_chunk))
                next_chunk += 1
            if ready:
                yield np.concatenate(ready)
            # Every coded symbol adds information, so the coder empties exactly at the last one; empty
            # earlier, the header claims symbols the file does not hold (damage or a crafted header):
            # stop now rather than decode zeros for as long as it claims.
            if coder.is_empty() and batch + 1 < layout.num_batches:
                raise CorruptedFileError(
                    f"the file is damaged: its coded words run out after {done:,} of the "
                    f"{num_tokens:,} symbols its header claims"
                )
    if not coder.is_empty():
        raise DeterminismError("decoding did not use up the coded words exactly")


@typecheck
def decode(
    scheme: Scheme,
    words: UInt32[np.ndarray, " W"],
    num_tokens: int,
    batch_size: int,
    first_table: int,
    show_progress: bool = False,
    unit: str = "symbol",
    history: MatchMixer | None = None,
) -> Int[np.ndarray, " N"]:
    """All the tokens of [`decode_batches`][] (same arguments and errors), as one array."""
    batches = list(
        decode_batches(scheme, words, num_tokens, batch_size, first_table, show_progress, unit, history)
    )
    return np.concatenate(batches) if batches else np.zeros(0, np.int32)


@typecheck
def choose_order(
    model: CodecModel,
    chunks: Int[np.ndarray, "M D"],
    budget: int,
    num_seeds: int,
    matmuls: str = "float32",
) -> tuple[Order, dict[str, float]]:
    """The best order by exact code length on `chunks` (reference §5): the striped order or one of the
    seeded orders of seeds `0..num_seeds-1`.

    Arguments:
        model: the model.
        chunks: full chunks of `D` tokens, at least one (the paper scores training chunks).
        budget: network calls per chunk and stage, in `1..D`.
        num_seeds: how many seeded orders to try beside the striped one.
        matmuls: the network's matrix products (see [`eqdd.compression.CodecModel.scheme`][]).

    Returns:
        The best order, and the mean bits per symbol of every candidate, by its
        [`describe`][eqdd.compression.schemes.Order.describe] (`"striped"`, `"seed 0"`, ...).
    """
    candidates = [STRIPED, *(Order("seeded", seed) for seed in range(num_seeds))]
    bits = {
        order.describe(): float(model.scheme(order, budget, matmuls).code_lengths(chunks).mean())
        for order in candidates
    }
    return candidates[int(np.argmin(list(bits.values())))], bits
