"""The match model mixed into the codec: its predictions against a brute-force search, the mixture's
algebra, and the codec's file size against a direct, token-by-token definition of what it codes."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eqdd import compression
from eqdd.compression import container, matching
from eqdd.compression.matching import MatchMixer
from eqdd.data import text8
from tests.test_compression import MODEL, PAIRS, D, random_text


def brute_force_prediction(
    history: np.ndarray, context: np.ndarray, chars_per_token: int
) -> tuple[int, int, int]:
    """The definition of a match when the text is decoded in order: among every end `e` of an
    occurrence of the last `MIN_LENGTH` characters of `context` in `history` that has a token after it,
    the `CANDIDATES` latest; the one agreeing with `context` furthest back (at most `CAP`, ties to the
    latest) predicts the token after it; the votes: how many of them are followed by that token."""
    m = matching.MIN_LENGTH
    if len(context) < m:
        return -1, 0, 0
    ends = [
        e
        for e in range(m, len(history) - chars_per_token + 1)
        if np.array_equal(history[e - m : e], context[-m:])
    ][-matching.CANDIDATES :]
    best, best_length = -1, 0
    for e in reversed(ends):
        limit = min(matching.CAP, len(context), e)
        length = max(n for n in range(m, limit + 1) if np.array_equal(history[e - n : e], context[-n:]))
        if length > best_length:
            best, best_length = e, length
    if best < 0:
        return -1, 0, 0
    following = history[best : best + chars_per_token]
    votes = sum(np.array_equal(history[e : e + chars_per_token], following) for e in ends)
    return int(text8.group(following[None], chars_per_token)[0, 0]), best_length, votes


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.integers(1, 3), min_size=0, max_size=120),
    st.lists(st.integers(1, 3), min_size=0, max_size=70),
    st.sampled_from([1, 2]),
    st.integers(1, 3),
)
def test_predictions_are_the_longest_of_the_latest_occurrences(history, context, chars_per_token, pieces):
    history = np.array(history[: len(history) // chars_per_token * chars_per_token], np.int32)
    mixer = MatchMixer(chars_per_token, len(history) // chars_per_token + 40)
    decode(mixer, history, chars_per_token, pieces)
    context = np.array(context, np.int32)
    expected = brute_force_prediction(history, context, chars_per_token)
    assert mixer.predict(context.astype(np.uint8).tobytes()) == expected


def decode(mixer: MatchMixer, characters: np.ndarray, chars_per_token: int, pieces: int) -> None:
    """Give `mixer` the tokens of `characters` as decoded, in order, in `pieces` calls."""
    tokens = text8.group(characters[None], chars_per_token)[0]
    for indices in np.array_split(np.arange(len(tokens)), pieces):
        mixer.mix(np.full((len(indices), 28 if chars_per_token == 1 else 729), 0.01, np.float32), indices)
        mixer.learn(tokens[indices])


def test_the_mixture_is_a_distribution_and_starts_as_the_network():
    rng = np.random.default_rng(0)
    mixer = MatchMixer(1, 240)
    decode(mixer, np.tile(np.arange(1, 8), 30), 1, 1)  # "abcdefg" over and over: every context predicts
    mixer.weights[:] = [1.0, *[0.0] * (mixer.weights.size - 1)]  # back to the start (the first call learned)
    # token 210 ("a" after "...abcdefg") has a context (twice: a call may repeat nothing, but the
    # mixer does not care); token 239, after 28 characters not decoded yet, has none
    probabilities = rng.dirichlet(np.ones(28), 3).astype(np.float32)
    indices = np.array([210, 239, 210])
    mixed = mixer.mix(probabilities, indices)
    np.testing.assert_allclose(mixed.sum(1), 1, atol=1e-6)
    np.testing.assert_allclose(mixed, probabilities, rtol=1e-5, atol=1e-7)  # the weights start at the network
    # learning: the prediction ("a" after "abcdefg") was right twice; it gains, the rest shrink in proportion
    mixer.learn(np.array([1, 5, 1]))
    again = mixer.mix(probabilities, indices)
    predicted = [0, 2]  # the coded positions that have a prediction
    assert (again[predicted, 1] > probabilities[predicted, 1]).all()
    np.testing.assert_allclose(again[1], probabilities[1])  # nothing predicted: the network's own
    ratio = again[predicted, 2:] / probabilities[predicted, 2:]
    np.testing.assert_allclose(ratio, ratio[:, :1] * np.ones_like(ratio), rtol=1e-5)


def direct_bits(model: compression.CodecModel, text: bytes) -> float:
    """What the codec with the match model costs when it codes left to right, one token a call and
    one chunk a batch, defined token by token: the network's distribution given the chunk so far, the
    match of the text before the token in the text before it (brute force), the logistic mixture,
    then one step of the mixer."""
    characters = compression.encode_text(text).astype(np.int32)
    per_token, size = model.symbols_per_token, model.num_positions
    chunks = model.tokens(characters).reshape(-1, size)
    scheme = model.scheme(compression.STRIPED, size)  # one stream: left to right, one token a call
    weights = np.zeros(2 + len(matching.BUCKETS) + len(matching.VOTES))
    weights[0] = 1.0
    bits = 0.0
    for c, chunk in enumerate(chunks):
        state = scheme.start(1)
        for i, call in enumerate(scheme.calls):
            p = scheme.probabilities(state, call)[0, i].astype(np.float64)
            before = characters[: (c * size + i) * per_token]  # all decoded, in order
            predicted, length, votes = brute_force_prediction(before, before[-matching.CAP :], per_token)
            truth = chunk[i]
            if predicted < 0:
                bits -= math.log2(p[truth])
            else:
                p_model = min(max(p[predicted], 1e-6), 1 - 1e-6)
                features = np.zeros_like(weights)
                features[0], features[1] = math.log(p_model / (1 - p_model)), 1.0
                features[1 + sum(length >= b for b in matching.BUCKETS)] = 1.0
                features[1 + len(matching.BUCKETS) + sum(votes >= v for v in matching.VOTES)] = 1.0
                p_right = min(max(1 / (1 + math.exp(-weights @ features)), 1e-6), 1 - 1e-6)
                right = predicted == truth
                bits -= math.log2(p_right if right else p[truth] * (1 - p_right) / (1 - p_model))
                weights += matching.LEARNING_RATE * (float(right) - p_right) * features
            state[0, i] = truth
    return bits


@pytest.mark.parametrize("model", [MODEL, PAIRS], ids=["characters", "pairs"])
def test_the_codec_codes_what_the_direct_definition_says(model):
    phrase = random_text(20, 9)
    text = b"".join(random_text(12, s) + phrase for s in range(8))[: 8 * D]  # repeats to find
    blob = compression.compress(text, model, model.num_positions, batch_size=1, history="match")
    header, words = container.unpack(blob)
    assert header.history == "match" and compression.decompress(blob, model) == text
    expected = direct_bits(model, text)
    plain = container.unpack(
        compression.compress(text, model, model.num_positions, batch_size=1, history="none")
    )
    assert expected < 0.95 * 32 * plain[1].size  # the repeats are worth something here
    assert abs(32 * words.size - expected) <= 64 + 1e-3 * expected  # the ANS state: a few bytes


@settings(max_examples=8, deadline=None)
@given(st.integers(0, 5 * D), st.integers(0, 2**31), st.sampled_from([1, 3]))
def test_files_with_the_match_model_round_trip_at_any_length(length, seed, batch_size):
    phrase = random_text(30, seed + 1)
    text = (random_text(7, seed) + phrase + random_text(5, seed + 2) + phrase) * 3
    text = text[:length]
    for model in (MODEL, PAIRS):
        blob = compression.compress(text, model, 5, batch_size=batch_size)  # striped, match: the defaults
        assert container.unpack(blob)[0].history == "match"
        assert compression.decompress(blob, model) == text


def test_an_unknown_history_is_refused():
    with pytest.raises(ValueError, match="the history mixed in is one of none, match"):
        compression.compress(b"some text", MODEL, 5, history="smart")
