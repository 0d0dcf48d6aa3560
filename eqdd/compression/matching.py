"""A match model of the text already decoded, mixed into a text model's distribution as it codes.

Text repeats itself: names, phrases, whole sentences. The network sees one chunk; this model sees every
character of the stream decoded so far, in this chunk and in the others. For each token a call codes
it takes the decoded characters just before the token (at least `MIN_LENGTH`, across chunk boundaries
when the chunk before is decoded), finds the `CANDIDATES` places where they occur that were decoded
last, keeps the one whose agreement reaches furthest back (up to `CAP` characters; ties go to the later
decoded), and predicts the token that followed it there.

A logistic mixer turns the network's probability of the predicted token, the match's length and how
many candidates predict the same token into the probability that the prediction is right,
`P = sigmoid(w · [logit p, 1, length class, votes class])`; the other tokens share `1 - P` in the
network's proportions. The weights start where the mixture is the network
itself and take a step of logistic regression on every predicted token once its call is coded, in
decoding order, so the decoder, which sees the same tokens in the same order, keeps the same weights.
Nothing is sent. The arithmetic is NumPy float64, the same on both sides; a machine that rounds
otherwise is caught by the file's checksums like any other difference in the network's outputs.

The codec ([`eqdd.compression.codec`][]) gives it batches drawn from regions of the stream, so the
text just before each chunk, where repeats are most frequent, is decoded before it. Measured with
`benchmarks/codec_headroom.py` before it was built (`benchmarks/RESULTS.md`, stop 39): 3.4% off the
shipped model's left-to-right code length on the first 400 test chunks with sources before each batch.
"""

import mmap

import numpy as np

from eqdd.data import text8

# Chosen on the first 50,000 characters of the validation split (docs/decisions.md, stop 40).
MIN_LENGTH = 4  # characters of context a match needs
CANDIDATES = 16  # the occurrences of the context decoded last that a match is sought among
CAP = 64  # characters a match is extended to at most
BUCKETS = (0, 6, 8, 12, 16, 24, 32)  # the mixer's match-length classes start at these lengths
VOTES = (1, 2, 4, 8)  # its classes of how many candidates predict the same token start at these
LEARNING_RATE = 0.01  # the mixer's, per predicted token
_CLIP = 1e-6  # probabilities the mixer reads and writes stay in [_CLIP, 1 - _CLIP]


class MatchMixer:
    """The match model and its mixer for one stream of text (a file, or a segment of one).

    Arguments:
        chars_per_token: characters per model token (1, or 2 for a model of pairs; the tokens are
            those of [`eqdd.data.text8.group`][]).
        num_tokens: the stream's length in tokens.
    """

    def __init__(self, chars_per_token: int, num_tokens: int):
        self.chars_per_token = chars_per_token
        self.weights = initial_weights()
        # the decoded characters, 0 where not decoded yet: an anonymous map, fast to index from Python and
        # taken from the system page by page as it is written (a crafted header's claim costs nothing)
        size = num_tokens * chars_per_token
        self._bytes = mmap.mmap(-1, max(size, 1))
        self._text = np.frombuffer(self._bytes, np.uint8, size)  # the same memory, for NumPy
        self._indexed = np.zeros(self._text.size + 1, bool)  # the occurrence ending here is indexed
        self._occurrences: dict[bytes, list[int]] = {}  # context -> the ends of its occurrences
        self._pending: tuple[np.ndarray, ...] | None = None

    def predict(self, characters: bytes) -> tuple[int, int, int]:
        """The token the decoded text predicts after `characters` (the decoded text just before it),
        the match's length, and how many of the candidates predict the same token; `(-1, 0, 0)` when
        there is none."""
        if len(characters) < MIN_LENGTH:
            return -1, 0, 0
        best, best_length, text = -1, 0, self._bytes
        candidates = self._occurrences.get(characters[-MIN_LENGTH:], ())[-CANDIDATES:]
        for end in reversed(candidates):
            length = MIN_LENGTH
            while (
                length < min(CAP, len(characters))
                and end - length > 0
                and text[end - length - 1] == characters[-length - 1]
            ):
                length += 1
            if length > best_length:
                best, best_length = end, length
        if best < 0:
            return -1, 0, 0
        following = text[best : best + self.chars_per_token]
        votes = sum(text[end : end + self.chars_per_token] == following for end in candidates)
        token = int(text8.group(np.array([list(following)], np.int32), self.chars_per_token)[0, 0])
        return token, best_length, votes

    def _context(self, start: int) -> bytes:
        """The decoded characters just before `start` (at most `CAP`), back to the first one missing."""
        window = self._text[max(0, start - CAP) : start]
        missing = np.flatnonzero(window == 0)
        return window[missing[-1] + 1 if missing.size else 0 :].tobytes()

    def mix(self, probabilities: np.ndarray, indices: np.ndarray) -> np.ndarray:
        """The distributions of the tokens a call codes with the match model mixed in.

        Arguments:
            probabilities: `(N, K)` float32, the network's, in decoding order.
            indices: `(N,)` the tokens' indices in the stream.

        Returns:
            `(N, K)` float32 distributions.
        """
        starts = np.asarray(indices, np.int64) * self.chars_per_token
        predicted, (lengths, votes) = np.full(len(starts), -1), np.zeros((2, len(starts)), np.int64)
        for n, start in enumerate(starts):
            predicted[n], lengths[n], votes[n] = self.predict(self._context(int(start)))
        has = np.flatnonzero(predicted >= 0)
        p_model = np.clip(probabilities[has, predicted[has]].astype(np.float64), _CLIP, 1 - _CLIP)
        features = mixer_inputs(p_model, lengths[has], votes[has])
        self._pending = (starts, has, predicted[has], features)
        p_right = _sigmoid(features @ self.weights)
        mixed = probabilities.astype(np.float64)
        mixed[has] *= ((1 - p_right) / (1 - p_model))[:, None]
        mixed[has, predicted[has]] = p_right
        return mixed.astype(np.float32)

    def learn(self, symbols: np.ndarray) -> None:
        """Once the tokens of the last [`mix`][]'s call are known: a step of the mixer on each predicted
        one, in order; then the tokens join the decoded text, and the occurrences they complete are
        indexed, in order."""
        starts, has, predicted, features = self._pending
        for right, row in zip(symbols[has] == predicted, features, strict=True):
            self.weights += LEARNING_RATE * (float(right) - _sigmoid(row @ self.weights)) * row
        self._pending = None
        per_token, text = self.chars_per_token, self._text
        characters = text8.ungroup(np.asarray(symbols)[None], per_token)[0].reshape(-1, per_token)
        text[starts[:, None] + np.arange(per_token)] = characters
        # an occurrence ending at `end` needs its context and the token after it decoded
        ends = (starts[:, None] + np.arange(1 - per_token, per_token + MIN_LENGTH)).reshape(-1)
        ends = ends[(ends >= MIN_LENGTH) & (ends <= text.size - per_token)]
        ends = ends[np.sort(np.unique(ends, return_index=True)[1])]  # first appearance, in order
        ends = ends[~self._indexed[ends]]
        decoded = (text[ends[:, None] + np.arange(-MIN_LENGTH, per_token)] != 0).all(1)
        for end in ends[decoded]:
            self._occurrences.setdefault(text[end - MIN_LENGTH : end].tobytes(), []).append(int(end))
            self._indexed[end] = True


def initial_weights() -> np.ndarray:
    """The mixer's first weights: the mixture is the network itself."""
    weights = np.zeros(2 + len(BUCKETS) + len(VOTES))
    weights[0] = 1.0
    return weights


def mixer_inputs(p_model: np.ndarray, lengths: np.ndarray, votes: np.ndarray) -> np.ndarray:
    """The mixer's inputs for predictions the network gives `p_model`, whose matches are `lengths`
    long and agree with `votes` of the candidates: `[logit p_model, 1, one-hot length class, one-hot
    votes class]`, `(N, 2 + len(BUCKETS) + len(VOTES))`."""
    rows = np.arange(len(p_model))
    features = np.zeros((len(p_model), 2 + len(BUCKETS) + len(VOTES)))
    features[:, 0], features[:, 1] = np.log(p_model / (1 - p_model)), 1.0
    features[rows, 1 + np.searchsorted(BUCKETS, lengths, side="right")] = 1.0
    features[rows, 1 + len(BUCKETS) + np.searchsorted(VOTES, votes, side="right")] = 1.0
    return features


def _sigmoid(x):
    return np.clip(1 / (1 + np.exp(-x)), _CLIP, 1 - _CLIP)
