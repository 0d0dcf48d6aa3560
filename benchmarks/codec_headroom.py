"""Where a text model's codec could find its next bits, measured before any of it is built: an order
chosen per chunk, orders chosen by the model as it decodes, and long repeats revealed for free.

    python benchmarks/codec_headroom.py --checkpoint eqdd/models/text8.eqdd-model --num-chunks 200 --orders 16

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

from eqdd.data import text8
from eqdd.objectives.ardm import oa_ardm_estimate
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
            np.stack([model.scheme(s, policy, args.matmuls).code_lengths(chunks) for s in range(args.orders)])
            / per_token
        )
        chosen = saved_order(args.checkpoint, model)
        rows = order_table(bits, size * per_token)
        print(f"\n1. an order per chunk ({time.perf_counter() - begin:.0f} s); seeds 0..{args.orders - 1}: "
              + ", ".join(f"{b:.4f}" for b in bits.mean(1)))  # fmt: skip
        if chosen is not None and chosen < args.orders:
            print(f"the run's order (seed {chosen}) for every chunk: {bits[chosen].mean():.4f} bits/char")
        print(f"{'k':>4} | {'best of k, index sent':>22} | {'bits-back over k':>16}")
        for row in rows:
            print(f"{row['k']:>4} | {row['best_of']:>22.4f} | {row['bits_back']:>16.4f}")
        results["orders"] = {"per_seed": bits.mean(1).tolist(), "chosen_seed": chosen, "rows": rows}

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
    return write_results(results, args.out_dir)


if __name__ == "__main__":
    main()
