"""Where a text model's codec could find its next bits, measured before any of it is built: an order
chosen per chunk, orders chosen by the model as it decodes, long repeats revealed for free, and a match
model mixed into coding left to right.

    python benchmarks/codec_headroom.py --checkpoint eqdd/models/text8.eqdd-model --num-chunks 200 --orders 16
    python benchmarks/codec_headroom.py --num-chunks 400 --orders 0 --rules '' --repeats '' --match 6 \
        --source-chunks 16

On the first --num-chunks chunks of the text8 test split (a model of single characters or of pairs;
figures per character), at the DP policy of --budget calls per chunk (the codec's, planned on the
model's training `L_t`), with the matrix products of --matmuls:

1. **An order per chunk.** The exact code length `-log2 p(x | order, policy)` of every chunk under each
   of --orders seeded orders (`eqdd.compression.schemes.orders_from_seed`, the codec's). Coding each chunk
   with the best of the first `k` and sending which one costs `log2 k` bits per chunk; bits-back over the
   `k` orders would reach `-log2 mean_k p(x | order_k)`. Both are printed for `k = 1, 2, 4, ...`, beside
   the order the run chose for its codec (one for every chunk, on training chunks).
2. **Orders the model chooses.** Each call codes the segment's number of positions, picked among the
   masked ones by the network's output, which the decoder sees too (no side information): `surest`
   (lowest entropy first), `least-sure` (highest first) and `random` (a fresh random pick: the control,
   which must match the seeded orders of part 1).
3. **Long repeats.** A greedy parse finds every repeat of at least `N` characters (--repeats) whose
   source ends before the group of --source-chunks chunks it lands in starts (so a decoder of that many
   chunks at once has it); its positions are revealed for free (for a model of pairs, the tokens whose
   two characters both repeat) and the model codes the rest. The gain is the full-step bound of the
   chunk against that of its unrevealed positions (the order-agnostic estimator, the revealed positions
   first; --passes paired draws), before what the repeats cost to send, estimated as Elias-gamma codes
   of each repeat's gap and extra length and `log2` of its source position.
4. **Left to right, mixed with a match model.** The model codes each chunk left to right, one token a
   call (`D` calls), and a match model of the text the decoder already has (before the batch of
   --source-chunks chunks, and the chunk's own prefix) predicts each token: the token that followed the
   longest earlier match of the context (--match: the shortest, in characters; the 8 most recent
   candidates). A logistic mixer, learned online as a decoder could, gives the probability that the
   prediction is right from the model's own probability of it and the match's length; the model's
   distribution over the other tokens is rescaled to the rest. Printed: the left-to-right code length
   alone and mixed, in bits per character.
5. **Left to right in streams.** The chunk is cut into about `k` equal streams (--streams) coded left
   to right side by side: call `j` codes the `j`-th token of every stream, so `ceil(D / k)` calls a
   chunk, each coding tokens far apart, each with its stream's prefix revealed. Printed: the exact code
   length of each `k` (the codec's striped order of `ceil(D / k)` calls,
   `eqdd.compression.schemes.striped_order`; its streams number `ceil(D / ceil(D / k))`, at most `k`).

Writes results.json to --out-dir.
"""

import argparse
import math
import sys
import time
from pathlib import Path

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Bool, Float, Int

from eqdd.compression.schemes import STRIPED, Order
from eqdd.data import text8
from eqdd.objectives.ardm import oa_ardm_estimate
from eqdd.processes import absorbing
from eqdd.runs import load_run
from eqdd.runs.codec import DEFAULT_BUDGET, codec_model, saved_order

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _scripts import write_results  # noqa: E402

RULES = ("surest", "least-sure", "random")


def order_table(lengths: Float[np.ndarray, "K M"], num_positions: int) -> list[dict]:
    """Per-chunk best-of-`k` and bits-back figures from the code lengths of `K` orders.

    Arguments:
        lengths: bits per character of each chunk (columns) under each order (rows).
        num_positions: `D`, characters per chunk.

    Returns:
        One row per `k = 1, 2, 4, ... <= K`: `{"k", "best_of", "bits_back"}` in bits per character,
        each including what choosing costs (`log2 k` bits per chunk for the best of `k`).
    """
    bits = lengths * num_positions
    rows = []
    k = 1
    while k <= bits.shape[0]:
        best = bits[:k].min(0)
        mixture = best - np.log2(np.mean(np.exp2(best - bits[:k]), 0))  # -log2 mean_k 2^-bits
        rows.append(
            {
                "k": k,
                "best_of": float((best.mean() + math.log2(k)) / num_positions),
                "bits_back": float(mixture.mean() / num_positions),
            }
        )
        k *= 2
    return rows


@eqx.filter_jit
def _greedy_lengths(
    network, absorbing_token: int, x: Int[Array, "B D"], lefts, counts, rule: str, key
) -> Float[Array, " B"]:
    """Bits per character of each chunk when every call codes `counts[j]` masked positions picked by
    `rule` from the network's output at that call."""
    num_positions = x.shape[1]

    def one(x, key):
        def call(carry, segment):
            revealed, total = carry
            left, count, key = segment
            state = jnp.where(revealed, x, absorbing_token)
            log_p = jax.nn.log_softmax(network(state, left).astype(jnp.float32), -1)
            entropy = -jnp.sum(jnp.exp(log_p) * log_p, -1)
            score = {
                "surest": entropy,
                "least-sure": -entropy,
                "random": jax.random.uniform(key, (num_positions,)),
            }[rule]
            rank = jnp.argsort(jnp.argsort(jnp.where(revealed, jnp.inf, score)))
            coded = rank < count
            total += jnp.sum(jnp.where(coded, jnp.take_along_axis(log_p, x[:, None], 1)[:, 0], 0.0))
            return (revealed | coded, total), None

        keys = jax.random.split(key, lefts.shape[0])
        start = (jnp.zeros(num_positions, bool), jnp.zeros(()))
        (_, total), _ = jax.lax.scan(call, start, (lefts, counts, keys))
        return -total / (num_positions * math.log(2.0))

    return jax.vmap(one)(x, jax.random.split(key, x.shape[0]))


def long_repeats(tokens: np.ndarray, num_positions: int, min_length: int) -> tuple[np.ndarray, list]:
    """A greedy left-to-right parse of `tokens` into long repeats of earlier text.

    At each position not yet covered, a repeat starts when the next `min_length` tokens occurred earlier
    (their first occurrence) ending before the chunk of `num_positions` the position is in, so a decoder
    of whole chunks has them; it extends as far as the text matches, its source staying in that range.

    Returns:
        The mask of repeated positions, and the repeats as `(start, length, source)`.
    """
    text = tokens.tobytes()
    first: dict[bytes, int] = {}
    covered, repeats = np.zeros(len(text), bool), []
    i = 0
    while i + min_length <= len(text):
        limit = i // num_positions * num_positions
        j = first.get(text[i : i + min_length])
        if j is not None and j + min_length <= limit:
            length = min_length
            while i + length < len(text) and j + length < limit and text[j + length] == text[i + length]:
                length += 1
            for k in range(i, i + length):
                first.setdefault(text[k : k + min_length], k)
            covered[i : i + length] = True
            repeats.append((i, length, j))
            i += length
        else:
            first.setdefault(text[i : i + min_length], i)
            i += 1
    return covered, repeats


def _gamma_bits(n: int) -> int:
    """Length of the Elias-gamma code of `n >= 1`."""
    return 2 * int(math.floor(math.log2(n))) + 1


def repeat_cost(repeats: list, min_length: int) -> float:
    """Bits to send the repeats: each one's gap from the previous one's end, its length beyond
    `min_length` (Elias gamma) and its source (uniform over the positions before it)."""
    bits, end = 0.0, 0
    for start, length, _ in repeats:
        bits += _gamma_bits(start - end + 1) + _gamma_bits(length - min_length + 1) + math.log2(max(start, 2))
        end = start + length
    return bits


@eqx.filter_jit
def _paired_bounds(network, process, x: Int[Array, "B D"], free: Bool[Array, "B D"], key):
    """One paired draw of the full-step bound of each chunk, in bits: all of it, and its positions
    outside `free` once `free` is revealed (the same order of the rest and the same quantile of `t`)."""
    num_positions = x.shape[1]

    def one(x, free, key):
        noise_key, step_key = jax.random.split(key)
        noise = jax.random.uniform(noise_key, (num_positions,))
        quantile = jax.random.uniform(step_key, ())
        num_free = jnp.sum(free)
        plain = jnp.argsort(jnp.argsort(noise)).astype(jnp.int32)
        revealed = jnp.argsort(jnp.argsort(jnp.where(free, noise - 1.0, noise))).astype(jnp.int32)
        t_all = jnp.floor(quantile * num_positions).astype(jnp.int32)
        left = num_positions - num_free
        t_rest = jnp.minimum(num_free + jnp.floor(quantile * left), num_positions - 1).astype(jnp.int32)
        all_bits = oa_ardm_estimate(network, process, x, plain, t_all).nelbo * num_positions
        rest_bits = oa_ardm_estimate(network, process, x, revealed, t_rest).nelbo * left
        return all_bits, rest_bits

    return jax.vmap(one)(x, free, jax.random.split(key, x.shape[0]))


def _batches(function, batch_size: int, *arrays: np.ndarray) -> list:
    """`function(start, *batch)` of each batch of the arrays' rows (as JAX arrays) and the index of its
    first row, the outputs as NumPy."""
    return [
        jax.tree.map(np.asarray, function(i, *(jnp.asarray(a[i : i + batch_size]) for a in arrays)))
        for i in range(0, len(arrays[0]), batch_size)
    ]


def rule_lengths(network, process, chunks: np.ndarray, policy: np.ndarray, rule: str, batch_size: int):
    """Bits per character of each chunk when the model picks each call's positions by `rule` (part 2)."""
    lefts = jnp.asarray(policy)
    counts = jnp.asarray(np.diff(np.append(policy, chunks.shape[1])))
    key = jax.random.PRNGKey(0)
    return np.concatenate(
        _batches(
            lambda start, x: _greedy_lengths(
                network, process.absorbing_token, x, lefts, counts, rule, jax.random.fold_in(key, start)
            ),
            batch_size,
            chunks,
        )
    )


def repeat_savings(network, process, chunks: np.ndarray, free: np.ndarray, passes: int, batch_size: int):
    """Bits each chunk's full-step bound loses when its `free` positions are revealed, the mean of
    `passes` paired draws (part 3)."""
    saved = np.zeros(len(chunks))
    for p in range(passes):
        draws = _batches(
            lambda start, x, mask: _paired_bounds(
                network,
                process,
                x,
                mask,
                jax.random.fold_in(jax.random.PRNGKey(p), start),  # noqa: B023
            ),
            batch_size,
            chunks,
            free,
        )
        saved += np.concatenate([full - rest for full, rest in draws]) / passes
    return saved


MATCH_CANDIDATES = 8  # the most recent earlier occurrences of the context a match is sought among
MATCH_CAP = 64  # characters a match is extended to at most
MATCH_BUCKETS = (0, 8, 12, 16, 24, 32)  # the mixer's match-length classes start at these lengths


def match_predictions(
    characters: np.ndarray, num_positions: int, per_token: int, source_chunks: int, min_length: int
) -> tuple[np.ndarray, np.ndarray]:
    """What a match model predicts for each token of chunks coded left to right (part 4).

    Token `i` of chunk `c` starts at character `a`; the decoder has the text before the group of
    `source_chunks` chunks holding `c` and the chunk's characters before `a` (for the group's first
    chunk, all the text before `a`). Among the earlier occurrences of the `min_length` characters before
    `a` whose characters and the `per_token` after them the decoder has, the `MATCH_CANDIDATES` most
    recent are extended backwards (within what the decoder has, up to `MATCH_CAP`); the longest (ties:
    the most recent) predicts the token of the characters that followed it.

    Returns:
        The predicted token of each position, -1 where there is none, and the match's length, both
        `(M, D)`.
    """
    text, size = characters.tobytes(), num_positions * per_token
    num_chunks = len(characters) // size
    predicted = np.full((num_chunks, num_positions), -1, np.int64)
    lengths = np.zeros((num_chunks, num_positions), np.int64)
    occurrences: dict[bytes, list[int]] = {}
    indexed = min_length  # occurrences ending before this are indexed
    for c in range(num_chunks):
        chunk_start, group_start = c * size, c // source_chunks * source_chunks * size
        low = 0 if chunk_start == group_start else chunk_start  # where the context may reach back to
        for i in range(num_positions):
            a = chunk_start + i * per_token
            for end in range(indexed, a - per_token + 1):
                occurrences.setdefault(text[end - min_length : end], []).append(end)
            indexed = max(indexed, a - per_token + 1)
            if a - low < min_length:
                continue
            best, best_length, found = -1, 0, 0
            for q in reversed(occurrences.get(text[a - min_length : a], ())):
                if low and group_start < q + per_token and q - min_length < chunk_start:
                    continue  # in the group's earlier chunks, which the decoder does not have yet
                source_low = chunk_start if low and q - min_length >= chunk_start else 0
                length = min_length
                while (
                    length < MATCH_CAP
                    and q - length - 1 >= source_low
                    and a - length - 1 >= low
                    and text[q - length - 1] == text[a - length - 1]
                ):
                    length += 1
                if length > best_length:
                    best, best_length = q, length
                found += 1
                if found == MATCH_CANDIDATES:
                    break
            if best >= 0:
                token = text8.group(characters[None, best : best + per_token], per_token)[0, 0]
                predicted[c, i], lengths[c, i] = token, best_length
    return predicted, lengths


@eqx.filter_jit
def left_to_right_log_probs(network, absorbing_token: int, x: Int[Array, "B D"]) -> Float[Array, "B D K"]:
    """`log p(x_i | x_{<i})` of every token class at every position `i`: the model coding left to right."""
    steps = jnp.arange(x.shape[1])  # the order is left to right, so call `i` reveals positions `< i`

    def one(x):
        inputs = jax.vmap(lambda t: absorbing.corrupt(x, steps, t, absorbing_token))(steps)
        output = jax.vmap(network)(inputs, steps)
        diagonal = output[steps, steps]
        return jax.nn.log_softmax(diagonal.astype(jnp.float32), -1)

    return jax.vmap(one)(x)


def mixed_bits(
    log_true: np.ndarray, log_predicted: np.ndarray, predicted: np.ndarray, lengths: np.ndarray,
    truth: np.ndarray, learning_rate: float,
) -> float:  # fmt: skip
    """Total bits of the tokens in text order when each prediction's probability is mixed (part 4).

    Where there is a prediction, `P(right) = sigmoid(w · [logit p_model(predicted), 1, bucket])`
    (`w` starts at `[1, 0, ...]`, where the mixture is the model itself, and takes a step of logistic
    regression after each token); the right token costs `-log2 P`, another `-log2 p_model(x) (1 - P) /
    (1 - p_model(predicted))`.
    """
    weights = np.zeros(2 + len(MATCH_BUCKETS))
    weights[0] = 1.0
    nats = 0.0
    for c, i in np.ndindex(*predicted.shape):
        if predicted[c, i] < 0:
            nats -= log_true[c, i]
            continue
        p_model = min(max(math.exp(log_predicted[c, i]), 1e-6), 1 - 1e-6)
        features = np.zeros_like(weights)
        features[:2] = math.log(p_model / (1 - p_model)), 1.0
        features[2 + np.searchsorted(MATCH_BUCKETS, lengths[c, i], side="right") - 1] = 1.0
        p_right = min(max(1 / (1 + math.exp(-float(weights @ features))), 1e-6), 1 - 1e-6)
        right = predicted[c, i] == truth[c, i]
        nats -= math.log(p_right) if right else log_true[c, i] + math.log((1 - p_right) / (1 - p_model))
        weights += learning_rate * (float(right) - p_right) * features
    return nats / math.log(2)


def match_study(model, network, characters, chunks, source_chunks, min_length, learning_rates) -> dict:
    """Part 4: the left-to-right code length of `chunks`, alone and mixed with the match model, in bits
    per character, with how often the match model predicts and is right."""
    predicted, lengths = match_predictions(
        characters, model.num_positions, model.symbols_per_token, source_chunks, min_length
    )
    log_probs = _batches(
        lambda start, x: left_to_right_log_probs(network, model.objective.process.absorbing_token, x),
        4,
        chunks,
    )
    log_probs = np.concatenate(log_probs)
    log_true = np.take_along_axis(log_probs, chunks[..., None], -1)[..., 0].astype(np.float64)
    log_predicted = np.take_along_axis(log_probs, np.maximum(predicted, 0)[..., None], -1)[..., 0]
    log_predicted = log_predicted.astype(np.float64)
    matched = predicted >= 0
    return {
        "min_length": min_length,
        "matched": float(matched.mean()),
        "right": float((predicted == chunks)[matched].mean()) if matched.any() else 0.0,
        "left_to_right": float(-log_true.sum() / math.log(2) / characters.size),
        "mixed": {
            str(rate): mixed_bits(log_true, log_predicted, predicted, lengths, chunks, rate) / characters.size
            for rate in learning_rates
        },
    }


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], allow_abbrev=False)
    parser.add_argument(
        "--checkpoint", default="eqdd/models/text8.eqdd-model", help="a text8 run or model file"
    )
    parser.add_argument("--data-dir", default=None, help="text8 directory (else $EQDD_DATA_DIR, the cache)")
    parser.add_argument("--num-chunks", type=int, default=100, help="test chunks (default: %(default)s)")
    parser.add_argument(
        "--budget", type=int, default=DEFAULT_BUDGET, help="calls per chunk (default: %(default)s)"
    )
    parser.add_argument(
        "--orders", type=int, default=8, help="seeded orders per chunk, 0 to skip (default: %(default)s)"
    )
    parser.add_argument(
        "--rules", default=",".join(RULES), help=f"greedy orders, of {', '.join(RULES)} ('' for none)"
    )
    parser.add_argument(
        "--repeats", default="16,24,32", help="minimum repeat lengths ('' for none) (default: %(default)s)"
    )
    parser.add_argument(
        "--source-chunks",
        type=int,
        default=1,
        help="a repeat's source ends before the group of this many chunks it lands in (the codec decodes "
        "a batch of chunks at once) (default: %(default)s)",
    )
    parser.add_argument(
        "--passes", type=int, default=8, help="paired draws for repeats (default: %(default)s)"
    )
    parser.add_argument(
        "--match", type=int, default=0, help="part 4's shortest match in characters, 0 to skip (default: 0)"
    )
    parser.add_argument(
        "--match-learning-rates", default="0.01,0.03", help="the mixer's rates (default: %(default)s)"
    )
    parser.add_argument(
        "--streams", default="", help="part 5's numbers of streams, comma-separated ('' to skip)"
    )
    parser.add_argument("--matmuls", default="bfloat16", help="float32 or bfloat16 (default: %(default)s)")
    parser.add_argument("--batch-size", type=int, default=50, help="chunks per call (default: %(default)s)")
    parser.add_argument("--out-dir", default="runs/codec_headroom", help="output directory")
    args = parser.parse_args(argv)
    rules = [rule for rule in args.rules.split(",") if rule]
    if set(rules) - set(RULES):
        parser.error(f"--rules takes a comma-separated list of {', '.join(RULES)}")
    lengths = [int(n) for n in args.repeats.split(",") if n]
    if any(n < 2 for n in lengths) or args.orders < 0 or args.num_chunks < 1 or args.passes < 1:
        parser.error(
            "--num-chunks and --passes must be positive, --orders not negative, --repeats at least 2"
        )
    stream_counts = [int(k) for k in args.streams.split(",") if k]
    if args.source_chunks < 1 or args.match < 0 or args.match == 1 or min(stream_counts, default=1) < 1:
        parser.error("--source-chunks and --streams must be positive, --match 0 (skip) or at least 2")

    run = load_run(args.checkpoint)
    if run.kind != "text":
        parser.error(f"{args.checkpoint} is not a text model")
    model = codec_model(run)
    size, per_token = model.num_positions, model.symbols_per_token
    splits = text8.load(args.data_dir)
    print(splits.describe())
    characters = np.asarray(splits.test, np.uint8)[: args.num_chunks * size * per_token]
    chunks = model.tokens(characters).reshape(-1, size).astype(np.int32)
    if len(chunks) < args.num_chunks:
        parser.error(f"the test split holds {len(chunks)} chunks of {size}")
    policy = model.plan(min(args.budget, size))[0]
    network = model.network(args.matmuls)
    results: dict = {"checkpoint": args.checkpoint, "num_chunks": len(chunks), "budget": int(policy.size)}
    print(f"{len(chunks)} test chunks of {size}; {policy.size} calls per chunk; {args.matmuls} products")

    if args.orders:
        begin = time.perf_counter()
        bits = (
            np.stack(
                [
                    model.scheme(Order("seeded", s), policy.size, args.matmuls).code_lengths(chunks)
                    for s in range(args.orders)
                ]
            )
            / per_token
        )
        chosen = saved_order(args.checkpoint, model)
        rows = order_table(bits, size * per_token)
        print(f"\n1. an order per chunk ({time.perf_counter() - begin:.0f} s); seeds 0..{args.orders - 1}: "
              + ", ".join(f"{b:.4f}" for b in bits.mean(1)))  # fmt: skip
        if chosen is not None and chosen.kind == "seeded" and chosen.seed < args.orders:
            print(
                f"the run's order ({chosen.describe()}) for every chunk: "
                f"{bits[chosen.seed].mean():.4f} bits/char"
            )
        print(f"{'k':>4} | {'best of k, index sent':>22} | {'bits-back over k':>16}")
        for row in rows:
            print(f"{row['k']:>4} | {row['best_of']:>22.4f} | {row['bits_back']:>16.4f}")
        results["orders"] = {
            "per_seed": bits.mean(1).tolist(),
            "chosen": None if chosen is None else chosen.describe(),
            "rows": rows,
        }

    if rules:
        print("\n2. orders the model chooses as it decodes (same calls)")
        results["rules"] = {}
        for rule in rules:
            begin = time.perf_counter()
            per_chunk = (
                rule_lengths(network, model.objective.process, chunks, policy[0], rule, args.batch_size)
                / per_token
            )
            error, seconds = per_chunk.std() / math.sqrt(len(per_chunk)), time.perf_counter() - begin
            print(f"{rule:>10}: {per_chunk.mean():.4f} ± {error:.4f} bits/char ({seconds:.0f} s)")
            results["rules"][rule] = float(per_chunk.mean())

    if lengths:
        print(f"\n3. long repeats revealed for free (full-step bound, {args.passes} paired draws)")
        print(f"{'N':>4} | {'repeated':>8} | {'repeats':>7} | {'gain':>16} | {'cost':>6} | {'net':>7}")
        results["repeats"] = []
        for min_length in lengths:
            covered, repeats = long_repeats(characters, size * per_token * args.source_chunks, min_length)
            free = covered.reshape(-1, per_token).all(1).reshape(chunks.shape)  # a token's characters all
            saved = repeat_savings(
                network, model.objective.process, chunks, free, args.passes, args.batch_size
            )
            gain = saved.sum() / characters.size
            error = saved.std() * math.sqrt(len(saved)) / characters.size
            cost = repeat_cost(repeats, min_length) / characters.size
            print(
                f"{min_length:>4} | {free.mean():>8.2%} | {len(repeats):>7} | {gain:>7.4f} ± {error:.4f} | "
                f"{cost:>6.4f} | {gain - cost:>+7.4f}"
            )
            results["repeats"].append(
                {
                    "min_length": min_length,
                    "covered": float(free.mean()),
                    "repeats": len(repeats),
                    "gain": float(gain),
                    "error": float(error),
                    "cost": float(cost),
                }
            )
    if args.match:
        begin = time.perf_counter()
        rates = [float(rate) for rate in args.match_learning_rates.split(",")]
        study = match_study(model, network, characters, chunks, args.source_chunks, args.match, rates)
        print(
            f"\n4. left to right ({size} calls per chunk), mixed with a match model of at least {args.match} "
            f"characters ({time.perf_counter() - begin:.0f} s): it predicts {study['matched']:.1%} of the "
            f"tokens, {study['right']:.1%} of them right\nleft to right alone: {study['left_to_right']:.4f}"
        )
        for rate, bits in study["mixed"].items():
            print(f"mixed, learning rate {rate}: {bits:.4f} bits/char")
        results["match"] = study
    if stream_counts:
        print(f"\n5. left to right in streams (exact code length, {args.matmuls} products)")
        results["streams"] = []
        for streams in stream_counts:
            begin = time.perf_counter()
            calls = -(-size // streams)
            streams = -(-size // calls)  # streams of `calls` positions: at most the count asked for
            per_chunk = model.scheme(STRIPED, calls, args.matmuls).code_lengths(chunks) / per_token
            error = per_chunk.std() / math.sqrt(len(per_chunk))
            print(
                f"{streams:>3} streams, {calls:>3} calls: {per_chunk.mean():.4f} ± {error:.4f} "
                f"bits/char ({time.perf_counter() - begin:.0f} s)"
            )
            results["streams"].append({"streams": streams, "calls": calls, "bits": float(per_chunk.mean())})
    return write_results(results, args.out_dir)


if __name__ == "__main__":
    main()
