"""benchmarks/codec_headroom.py: the order table, the repeat parse and its cost, the greedy orders and the
paired bounds against brute force, and the whole script on a tiny trained run."""

import json
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from eqdd.compression.schemes import OAScheme
from eqdd.data import text8
from eqdd.denoisers import Transformer
from eqdd.processes import AbsorbingProcess
from tests.scripts import TINY_RUN, load_script

headroom = load_script("benchmarks/codec_headroom.py")
experiment = load_script("experiments/text8_oaardm.py")
PROCESS = AbsorbingProcess(text8.ABSORBING)


@settings(max_examples=30)
@given(hnp.arrays(np.float64, (4, 3), elements=st.floats(0.5, 5.0)))
def test_order_table_is_the_best_of_k_with_its_index_and_bits_back_lies_between(lengths):
    size = 8
    rows = headroom.order_table(lengths, size)
    assert [row["k"] for row in rows] == [1, 2, 4]
    for row in rows:
        k = row["k"]
        per_chunk = [min(lengths[s, m] * size for s in range(k)) + math.log2(k) for m in range(3)]
        assert row["best_of"] == pytest.approx(sum(per_chunk) / 3 / size)
        mixture = [-math.log2(sum(2.0 ** -(lengths[s, m] * size) for s in range(k)) / k) for m in range(3)]
        assert row["bits_back"] == pytest.approx(sum(mixture) / 3 / size)
        # never worse than the best order with its index, never better than the best order for free
        assert row["bits_back"] <= row["best_of"] + 1e-12
        assert row["bits_back"] >= lengths[:k].min(0).mean() - 1e-12
    assert rows[0]["best_of"] == pytest.approx(lengths[0].mean())


@settings(max_examples=40)
@given(hnp.arrays(np.uint8, 80, elements=st.integers(0, 3)), st.integers(2, 3))
def test_long_repeats_are_true_maximal_decodable_and_none_is_missed(tokens, min_length):
    size = 8
    covered, repeats = headroom.long_repeats(tokens, size, min_length)
    union = np.zeros(len(tokens), bool)
    for start, length, source in repeats:
        limit = start // size * size
        assert length >= min_length and source + length <= limit  # the decoder has the source
        assert np.array_equal(tokens[start : start + length], tokens[source : source + length])
        assert (
            start + length == len(tokens)
            or source + length == limit
            or (tokens[start + length] != tokens[source + length])
        )  # extended as far as it goes
        assert not union[start : start + length].any()
        union[start : start + length] = True
    assert np.array_equal(covered, union)
    for i in range(len(tokens) - min_length + 1):  # greedy: no uncovered position could have started one
        if covered[i]:
            continue
        limit = i // size * size
        assert not any(
            np.array_equal(tokens[j : j + min_length], tokens[i : i + min_length])
            for j in range(0, limit - min_length + 1)
        )


def test_repeat_cost_counts_gaps_lengths_and_sources():
    cost = headroom.repeat_cost([(5, 10, 0), (20, 4, 2)], 4)
    # gap 6 and extra length 7 (Elias gamma: 5 bits each), a source among 5;
    # then gap 6 (5 bits), extra length 1 (1 bit), a source among 20
    assert cost == pytest.approx(5 + 5 + math.log2(5) + 5 + 1 + math.log2(20))


def _network(seed=0):
    return Transformer(text8.NUM_CLASSES + 1, text8.NUM_CLASSES, 16, 1, 2, 32, key=jax.random.PRNGKey(seed))


def test_greedy_orders_match_a_step_by_step_oracle():
    network, size = _network(), 12
    chunks = np.random.default_rng(0).integers(1, text8.NUM_CLASSES, (2, size)).astype(np.int32)
    policy = np.array([0, 2, 3, 7, 8])
    for rule, sign in (("surest", 1.0), ("least-sure", -1.0)):
        got = headroom.rule_lengths(network, PROCESS, chunks, policy, rule, batch_size=1)
        for x, bits in zip(chunks, got, strict=True):
            revealed, total = np.zeros(size, bool), 0.0
            for left, right in zip(policy, [*policy[1:], size], strict=True):
                state = np.where(revealed, x, PROCESS.absorbing_token)
                log_p = np.asarray(jax.nn.log_softmax(network(jnp.asarray(state), jnp.int32(left)), -1))
                entropy = -(np.exp(log_p) * log_p).sum(-1)
                picks = [k for k in np.argsort(sign * entropy, kind="stable") if not revealed[k]][
                    : right - left
                ]
                total += log_p[picks, x[picks]].sum()
                revealed[picks] = True
            assert revealed.all() and bits == pytest.approx(-total / size / math.log(2), rel=1e-5)


def test_paired_bounds_save_nothing_when_nothing_is_free_and_everything_when_all_is():
    network, size = _network(1), 12
    chunks = np.random.default_rng(1).integers(1, text8.NUM_CLASSES, (3, size)).astype(np.int32)
    none = headroom.repeat_savings(network, PROCESS, chunks, np.zeros_like(chunks, bool), 2, 2)
    assert np.array_equal(none, np.zeros(3))
    full, rest = headroom._paired_bounds(
        network, PROCESS, jnp.asarray(chunks), jnp.ones(chunks.shape, bool), jax.random.PRNGKey(0)
    )
    assert np.all(np.asarray(rest) == 0) and np.all(np.asarray(full) > 0)


@pytest.mark.parametrize("chars_per_token, source_chunks", [(1, 1), (2, 3)])
def test_the_script_measures_all_three_parts_on_a_tiny_run(
    text8_dir, tmp_path, capsys, chars_per_token, source_chunks
):
    run = tmp_path / "run"
    flags = "--seq-len 16 --batch-size 4 --num-steps 3 --eval-max-chunks 2 --num-samples 0 --codec-orders 0"
    experiment.main(
        ["--data-dir", str(text8_dir), "--run-dir", str(run), *TINY_RUN, *flags.split()]
        + ["--chars-per-token", str(chars_per_token)]
    )
    argv = (
        f"--checkpoint {run} --data-dir {text8_dir} --num-chunks 6 --orders 4 --repeats 4,6 --passes 2 "
        f"--source-chunks {source_chunks} --match 3 --match-learning-rates 0,0.1 --streams 1,3"
    )
    results = headroom.main(
        [*argv.split(), "--matmuls", "float32", "--batch-size", "4", "--out-dir", str(tmp_path)]
    )
    assert [row["k"] for row in results["orders"]["rows"]] == [1, 2, 4]
    assert results["orders"]["rows"][0]["best_of"] == pytest.approx(results["orders"]["per_seed"][0])
    assert set(results["rules"]) == set(headroom.RULES)
    assert [r["min_length"] for r in results["repeats"]] == [4, 6]
    # a corpus of nine short words repeats itself, past the first group of chunks (which has no source)
    assert results["repeats"][0]["covered"] > 0.5 * (1 - source_chunks / 6)
    assert results["repeats"][0]["covered"] >= results["repeats"][1]["covered"]
    match = results["match"]
    assert match["min_length"] == 3 and 0 < match["matched"] <= 1 and 0 <= match["right"] <= 1
    assert match["mixed"]["0.0"] == pytest.approx(match["left_to_right"])  # rate 0: the model alone
    one, three = results["streams"]
    assert (one["streams"], one["calls"], three["streams"]) == (1, 16 // chars_per_token, 3)
    assert one["bits"] == pytest.approx(match["left_to_right"], rel=1e-5)  # one stream is left to right
    assert json.loads((tmp_path / "results.json").read_text()) == results
    out = capsys.readouterr().out
    assert "1. an order per chunk" in out and "least-sure:" in out and "long repeats" in out
    assert "4. left to right" in out and "5. left to right in streams" in out
    skip = ["--orders", "0", "--rules", "", "--repeats", "", "--match", "0", "--streams", ""]
    only = headroom.main([*argv.split(), *skip, "--out-dir", str(tmp_path)])
    assert set(only) == {"checkpoint", "num_chunks", "budget"}  # every part can be skipped
    for bad in (["--rules", "best"], ["--source-chunks", "0"], ["--match", "1"], ["--streams", "2,0"]):
        with pytest.raises(SystemExit):
            headroom.main([*argv.split(), *bad])


def _brute_force_match(characters, size, per_token, source_chunks, min_length, c, i):
    """Part 4's prediction for token `i` of chunk `c`, from its definition: every earlier occurrence the
    decoder has, the most recent first."""
    text = characters.tolist()
    chunk_start = c * size * per_token
    group_start = c // source_chunks * source_chunks * size * per_token
    a = chunk_start + i * per_token
    low = 0 if chunk_start == group_start else chunk_start
    if a - low < min_length:
        return -1, 0

    def has(begin, end):  # the decoder has characters [begin, end)
        return begin >= 0 and end <= a and (not low or begin >= low or end <= group_start)

    valid = [
        q
        for q in range(a - per_token, min_length - 1, -1)
        if has(q - min_length, q + per_token) and text[q - min_length : q] == text[a - min_length : a]
    ][: headroom.MATCH_CANDIDATES]
    best, best_length = -1, 0
    for q in valid:
        length = min_length
        while (
            length < headroom.MATCH_CAP
            and has(q - length - 1, q)
            and a - length - 1 >= low
            and text[q - length - 1] == text[a - length - 1]
        ):
            length += 1
        if length > best_length:
            best, best_length = q, length
    if best < 0:
        return -1, 0
    return int(text8.group(characters[None, best : best + per_token], per_token)[0, 0]), best_length


@settings(max_examples=25, deadline=None)
@given(
    hnp.arrays(np.uint8, 48, elements=st.integers(1, 3)),
    st.sampled_from([1, 2]),
    st.integers(1, 3),
    st.integers(2, 4),
)
def test_match_predictions_follow_their_definition(characters, per_token, source_chunks, min_length):
    size = 8 // per_token  # 6 chunks of 8 characters
    predicted, lengths = headroom.match_predictions(characters, size, per_token, source_chunks, min_length)
    assert predicted.shape == lengths.shape == (6, size)
    for c, i in np.ndindex(6, size):
        assert (predicted[c, i], lengths[c, i]) == _brute_force_match(
            characters, size, per_token, source_chunks, min_length, c, i
        )
    assert (predicted >= 0).any()  # three letters: the text repeats itself


def test_left_to_right_log_probs_are_the_left_to_right_order_at_full_budget():
    network, size = _network(2), 10
    chunks = np.random.default_rng(2).integers(1, text8.NUM_CLASSES, (3, size)).astype(np.int32)
    log_probs = np.asarray(
        headroom.left_to_right_log_probs(network, PROCESS.absorbing_token, jnp.asarray(chunks))
    )
    assert np.allclose(np.exp(log_probs).sum(-1), 1.0, atol=1e-5)
    chosen = np.take_along_axis(log_probs, chunks[..., None], -1)[..., 0]
    order = np.arange(size, dtype=np.int32)[None]
    scheme = OAScheme(network, PROCESS, order, order)
    assert np.allclose(-chosen.sum(1) / size / math.log(2), scheme.code_lengths(chunks), rtol=1e-5)


def test_the_mixer_starts_as_the_model_and_learns_a_reliable_match():
    rng = np.random.default_rng(3)
    shape, classes = (4, 50), 5
    truth = rng.integers(0, classes, shape)
    log_true = np.full(shape, -math.log(classes))  # a uniform model
    none = np.full(shape, -1)
    alone = -log_true.sum() / math.log(2)
    assert headroom.mixed_bits(log_true, log_true, none, none * 0, truth, 0.1) == pytest.approx(alone)
    lengths = np.full(shape, 20)
    # at rate 0 the mixture is the model, whatever the match predicts
    wrong = (truth + 1) % classes
    assert headroom.mixed_bits(log_true, log_true, wrong, lengths, truth, 0.0) == pytest.approx(alone)
    # a match that is always right is learned; one that is always wrong is learned to be ignored
    assert headroom.mixed_bits(log_true, log_true, truth, lengths, truth, 0.5) < 0.2 * alone
    assert headroom.mixed_bits(log_true, log_true, wrong, lengths, truth, 0.5) < alone * 1.02
