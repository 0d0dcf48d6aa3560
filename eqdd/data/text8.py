"""text8: locate (or download), check, tokenise and split the corpus.

Token convention (the reference's, kept so that numbers stay comparable): space -> 1, `a`..`z` ->
2..27, class 0 unused, so the model has `NUM_CLASSES = 28` outputs; the absorbing token is
`ABSORBING = 28`, a class of its own (29 input classes).

Where the file comes from: see [`eqdd.data.files`][] (the `--data-dir` flag, `EQDD_DATA_DIR`, the
cache with a one-time download of the standard `text8.zip`).

In a directory, the raw file `text8`, then `text8.zip`, then any other `text8*.zip` whose member is
`text8` is taken.
"""

import dataclasses
import os
import zipfile
from pathlib import Path

import numpy as np

from eqdd.data import files

ALPHABET = " abcdefghijklmnopqrstuvwxyz"
NUM_CLASSES = 28
ABSORBING = 28
SPACE = 1  # the token of " "
STANDARD_LENGTH = 100_000_000
STANDARD_SPLIT = (90_000_000, 5_000_000, 5_000_000)
DOWNLOAD_URL = "http://mattmahoney.net/dc/text8.zip"
_MISSING = -1
_ENCODE = np.full(256, _MISSING, np.int16)
_ENCODE[np.frombuffer(ALPHABET.encode(), np.uint8)] = np.arange(1, len(ALPHABET) + 1)
_DECODE = np.array(list("?" + ALPHABET + "_"))


class Text8Error(files.DataError):
    """The text8 corpus could not be found, downloaded or accepted; the message says what to do."""


@dataclasses.dataclass(frozen=True)
class Text8Splits:
    """The three splits as token arrays (uint8), with where they came from."""

    train: np.ndarray
    valid: np.ndarray
    test: np.ndarray
    source: Path
    standard: bool

    def describe(self) -> str:
        sizes = "/".join(f"{len(s):,}" for s in (self.train, self.valid, self.test))
        if self.standard:
            return f"text8 from {self.source}: standard split {sizes} characters"
        return (
            f"text8-format corpus from {self.source} of NON-STANDARD length "
            f"{sum(map(len, (self.train, self.valid, self.test))):,} (standard: {STANDARD_LENGTH:,}); "
            f"split 90/5/5 by position into {sizes} characters. Figures measured on it are NOT "
            "comparable with published text8 results."
        )


def encode(text: str | bytes) -> np.ndarray:
    """Tokenise text in the text8 alphabet (lowercase `a`-`z` and space).

    Arguments:
        text: the characters.

    Returns:
        A uint8 array of tokens in `1..27`.

    Raises:
        Text8Error: naming the first character outside the alphabet.
    """
    raw = np.frombuffer(text.encode() if isinstance(text, str) else text, np.uint8)
    tokens = _ENCODE[raw]
    bad = np.flatnonzero(tokens == _MISSING)
    if bad.size:
        first = int(bad[0])
        raise Text8Error(
            f"{bad.size:,} byte(s) outside the text8 alphabet (lowercase a-z and space); the first is "
            f"{bytes([raw[first]])!r} at offset {first:,}"
        )
    return tokens.astype(np.uint8)


def decode(tokens: np.ndarray) -> str:
    """Turn tokens back into text; class 0 prints as `?` and the absorbing token as `_`.

    Arguments:
        tokens: an integer array of tokens in `0..28`.

    Returns:
        The string.
    """
    return "".join(_DECODE[np.asarray(tokens)])


def num_classes(chars_per_token: int) -> int:
    """The model's classes (and its absorbing token) when each token is `chars_per_token` characters:
    `NUM_CLASSES` for single characters (class 0 unused), `27 ** chars_per_token` for groups."""
    return NUM_CLASSES if chars_per_token == 1 else (NUM_CLASSES - 1) ** chars_per_token


def _place_values(chars_per_token: int) -> np.ndarray:
    """`27^(n-1), ..., 27, 1`: the base-27 place of each character of a group."""
    return (NUM_CLASSES - 1) ** np.arange(chars_per_token - 1, -1, -1, dtype=np.int32)


def group(tokens: np.ndarray, chars_per_token: int) -> np.ndarray:
    """Character tokens as model tokens of `chars_per_token` characters each: unchanged for 1; else
    each run of characters `c_1 .. c_n` along the last axis (whose length `n` divides) becomes the
    base-27 number of `c_i - 1`, a class in `0 .. 27^n - 1`.

    Arguments:
        tokens: character tokens in `1..27`, `(..., L)` with `L` a multiple of `chars_per_token`.
        chars_per_token: characters per model token.

    Returns:
        Int32 `(..., L / chars_per_token)`.
    """
    tokens = np.asarray(tokens, np.int32)
    if chars_per_token == 1:
        return tokens
    digits = tokens.reshape(*tokens.shape[:-1], -1, chars_per_token) - 1
    return digits @ _place_values(chars_per_token)


def ungroup(classes: np.ndarray, chars_per_token: int) -> np.ndarray:
    """The inverse of [`group`][]; the absorbing class (`num_classes(chars_per_token)`) becomes
    `chars_per_token` absorbing characters.

    Arguments:
        classes: model tokens `(..., M)`.
        chars_per_token: characters per model token.

    Returns:
        Int32 character tokens `(..., M · chars_per_token)`.
    """
    classes = np.asarray(classes, np.int32)
    if chars_per_token == 1:
        return classes
    chars = classes[..., None] // _place_values(chars_per_token) % (NUM_CLASSES - 1) + 1
    chars = np.where(classes[..., None] == num_classes(chars_per_token), ABSORBING, chars)
    return chars.reshape(*classes.shape[:-1], -1)


def split_bounds(length: int) -> tuple[int, int]:
    """The ends of the train and validation splits for a corpus of `length` characters.

    The standard 100M-character file gets the standard 90M/5M/5M split; any other length is split
    90/5/5 by position (train first, then validation, then test).
    """
    if length == STANDARD_LENGTH:
        return STANDARD_SPLIT[0], STANDARD_SPLIT[0] + STANDARD_SPLIT[1]
    return length * 90 // 100, length * 95 // 100


def _find_in(directory: Path) -> Path | None:
    candidates = [directory / "text8", directory / "text8.zip", *sorted(directory.glob("text8*.zip"))]
    return next((path for path in candidates if path.is_file()), None)


_WHAT = "text8 (`text8`, `text8.zip` or `text8*.zip`)"


def locate(data_dir: str | os.PathLike | None = None, allow_download: bool = True) -> Path:
    """Find the text8 file (see the module docstring for the search order).

    Arguments:
        data_dir: a directory given explicitly; `None` to use the environment or the cache.
        allow_download: whether to download into the cache when nothing is found.

    Returns:
        The path of the raw file or zip archive.

    Raises:
        Text8Error: when a given directory holds no text8 file, or when nothing is found and the
            download is disallowed or fails.
    """

    def fetch(directory: Path) -> Path:
        hint = files.hint("`text8.zip` or the raw `text8` file", directory)
        return files.download(
            DOWNLOAD_URL, directory / "text8.zip", Text8Error, f"text8 was not found locally. {hint}"
        )

    return files.locate(_find_in, _WHAT, Text8Error, data_dir, fetch=fetch, allow_download=allow_download)


def read_tokens(path: Path) -> np.ndarray:
    """Read and check a text8 file (raw or zipped) and tokenise it.

    Raises:
        Text8Error: for an unreadable archive, a wrong member, a corpus too short to split, or bytes
            outside the alphabet, saying which.
    """
    if path.suffix == ".zip":
        try:
            with zipfile.ZipFile(path) as archive:
                names = archive.namelist()
                if "text8" not in names:
                    raise Text8Error(f"{path} holds {names[:5]}, not the member `text8`")
                raw = archive.read("text8")
        except zipfile.BadZipFile as error:
            raise Text8Error(
                f"{path} is not a readable zip archive ({error}); delete it or replace it"
            ) from error
    else:
        raw = path.read_bytes()
    if len(raw) < 20_000:
        raise Text8Error(
            f"{path} holds only {len(raw):,} characters; text8 has {STANDARD_LENGTH:,} and a usable "
            "corpus needs at least 20,000 to split 90/5/5 into chunks"
        )
    try:
        return encode(raw)
    except Text8Error as error:
        raise Text8Error(f"{path} is not a text8 file: {error}") from None


def load(data_dir: str | os.PathLike | None = None, allow_download: bool = True) -> Text8Splits:
    """Locate, check, tokenise and split text8.

    Arguments:
        data_dir: see [`eqdd.data.text8.locate`][].
        allow_download: see [`eqdd.data.text8.locate`][].

    Returns:
        The [`eqdd.data.text8.Text8Splits`][].
    """
    path = locate(data_dir, allow_download)
    tokens = read_tokens(path)
    train_end, valid_end = split_bounds(len(tokens))
    return Text8Splits(
        train=tokens[:train_end],
        valid=tokens[train_end:valid_end],
        test=tokens[valid_end:],
        source=path,
        standard=len(tokens) == STANDARD_LENGTH,
    )
