"""A match model of the text already decoded, mixed into a text model's distribution as it codes.

Text repeats itself: names, phrases, whole sentences. The network sees one chunk; this model sees the
text of every earlier batch of the stream. For each token a call codes it takes the characters just
before the token that the decoder already has in the same chunk (at least `MIN_LENGTH`), finds the most
recent `CANDIDATES` places in the earlier text where they occur, keeps the one whose agreement reaches
furthest back (up to `CAP` characters; ties go to the most recent), and predicts the token that
followed it there.

A logistic mixer turns the network's probability of the predicted token and the match's length into
the probability that the prediction is right, `P = sigmoid(w · [logit p, 1, length class])`; the other
tokens share `1 - P` in the network's proportions. The weights start where the mixture is the network
itself and take a step of logistic regression on every predicted token once its call is coded, in
decoding order, so the decoder, which sees the same tokens in the same order, keeps the same weights.
Nothing is sent. The arithmetic is NumPy float64, the same on both sides; a machine that rounds
otherwise is caught by the file's checksums like any other difference in the network's outputs.

Measured with `benchmarks/codec_headroom.py` before it was built (`benchmarks/RESULTS.md`, stop 39):
3.4% off the shipped model's left-to-right code length on the first 400 test chunks.
"""

import numpy as np

from eqdd.data import text8

MIN_LENGTH = 6  # characters of context a match needs
CANDIDATES = 8  # the most recent earlier occurrences of the context a match is sought among
CAP = 64  # characters a match is extended to at most
BUCKETS = (0, 8, 12, 16, 24, 32)  # the mixer's match-length classes start at these lengths
LEARNING_RATE = 0.03  # the mixer's, per predicted token (the better of 0.01 and 0.03 measured)
_CLIP = 1e-6  # probabilities the mixer reads and writes stay in [_CLIP, 1 - _CLIP]


class MatchMixer:
    """The match model and its mixer for one stream of text (a file, or a segment of one).

    Arguments:
        chars_per_token: characters per model token (1, or 2 for a model of pairs; the tokens are
            those of [`eqdd.data.text8.group`][], the absorbing one `text8.num_classes(chars_per_token)`).
    """

    def __init__(self, chars_per_token: int):
        self.chars_per_token = chars_per_token
        self.weights = np.zeros(2 + len(BUCKETS))
        self.weights[0] = 1.0
        self._text = bytearray()  # the characters of every batch coded so far
        self._occurrences: dict[bytes, list[int]] = {}  # context -> the ends of its occurrences
        self._indexed = MIN_LENGTH  # occurrences ending before this are indexed
        self._pending: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None

    def predict(self, characters: bytes) -> tuple[int, int]:
        """The token the earlier text predicts after `characters` (the decoded text just before it),
        and the match's length; `(-1, 0)` when there is none."""
        if len(characters) < MIN_LENGTH:
            return -1, 0
        best, best_length, text = -1, 0, self._text
        for end in reversed(self._occurrences.get(characters[-MIN_LENGTH:], ())[-CANDIDATES:]):
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
            return -1, 0
        following = np.array([list(text[best : best + self.chars_per_token])], np.int32)
        return int(text8.group(following, self.chars_per_token)[0, 0]), best_length

    def mix(self, probabilities: np.ndarray, state: np.ndarray, coded: np.ndarray) -> np.ndarray:
        """The distributions of the `coded` positions with the match model mixed in.

        Arguments:
            probabilities: `(N, K)` float32, the network's, for the coded positions in row-major order.
            state: `(B, D)` the decoder's tokens (the absorbing token where not decoded yet).
            coded: `(B, D)` the positions this call codes (`N` of them).

        Returns:
            `(N, K)` float32 distributions.
        """
        characters = text8.ungroup(state, self.chars_per_token).astype(np.uint8)
        predicted, lengths = np.full(len(probabilities), -1), np.zeros(len(probabilities), np.int64)
        for n, (row, position) in enumerate(zip(*np.nonzero(coded), strict=True)):
            before = characters[row, : position * self.chars_per_token]
            decoded = np.flatnonzero(before == text8.ABSORBING)
            start = decoded[-1] + 1 if decoded.size else 0
            predicted[n], lengths[n] = self.predict(before[start:].tobytes())
        has = np.flatnonzero(predicted >= 0)
        features = np.zeros((has.size, self.weights.size))
        p_model = np.clip(probabilities[has, predicted[has]].astype(np.float64), _CLIP, 1 - _CLIP)
        features[:, 0], features[:, 1] = np.log(p_model / (1 - p_model)), 1.0
        features[np.arange(has.size), 1 + np.searchsorted(BUCKETS, lengths[has], side="right")] = 1.0
        self._pending = (has, predicted[has], features)
        p_right = _sigmoid(features @ self.weights)
        mixed = probabilities.astype(np.float64)
        mixed[has] *= ((1 - p_right) / (1 - p_model))[:, None]
        mixed[has, predicted[has]] = p_right
        return mixed.astype(np.float32)

    def learn(self, symbols: np.ndarray) -> None:
        """A step of the mixer on each predicted token of the last [`mix`][]'s call, in order, once its
        symbols are known."""
        has, predicted, features = self._pending
        for right, row in zip(symbols[has] == predicted, features, strict=True):
            self.weights += LEARNING_RATE * (float(right) - _sigmoid(row @ self.weights)) * row
        self._pending = None

    def extend(self, tokens: np.ndarray) -> None:
        """Add a decoded batch's tokens (its real positions, in text order) to the earlier text."""
        characters = text8.ungroup(tokens, self.chars_per_token) if self.chars_per_token > 1 else tokens
        self._text += np.asarray(characters, np.uint8).tobytes()
        last = len(self._text) - self.chars_per_token  # an occurrence needs the token after it
        for end in range(self._indexed, last + 1):
            self._occurrences.setdefault(bytes(self._text[end - MIN_LENGTH : end]), []).append(end)
        self._indexed = max(self._indexed, last + 1)


def _sigmoid(x):
    return np.clip(1 / (1 + np.exp(-x)), _CLIP, 1 - _CLIP)
