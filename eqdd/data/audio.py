"""Spoken-digit audio as 16-bit classes: clips of one length, `(N, L)` uint16 with `K = 2^16` classes.

A sample `s` (signed 16-bit PCM) is class `s + 32768`, so silence is class 32768 ([`SILENCE`][]).

- `"fsdd"`: the Free Spoken Digit Dataset (real recordings, 5 speakers x 10 digits x 50 takes, mono
  16-bit at 8 kHz, 0.15-2.3 s), files `{digit}_{speaker}_{take}.wav` under a `recordings/` folder of a
  directory or zip archive (its repository's archive, or `fsdd-recordings.zip`). The dataset's usual
  split: takes 0-4 of every speaker and digit are the test set. Not SC09: figures measured on it are
  labelled so ([`AudioSplits.describe`][]).
- `"sc09"`: the ten digit folders (`zero` ... `nine`) of Speech Commands (16 kHz, 1 s), in an extracted
  directory with its `testing_list.txt` and `validation_list.txt` (the test set is the testing list; the
  validation list is held out of training), as the ARDM paper's SC09.

Clips are right-padded with silence or cut to the requested length, as SC09's 1-second clips are.
Where files come from: [`eqdd.data.files`][].
"""

import dataclasses
import io
import os
import re
import wave
import zipfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from eqdd.data import files

DATASETS = ("fsdd", "sc09")
NUM_CLASSES = 1 << 16
SILENCE = 1 << 15
DIGITS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
FSDD_URL = "https://github.com/Jakobovski/free-spoken-digit-dataset/archive/refs/heads/master.zip"
FSDD_ARCHIVE = "fsdd-recordings.zip"
FSDD_NAME = re.compile(r"(?:^|/)recordings/(\d)_([A-Za-z]+)_(\d+)\.wav$")
FSDD_TEST_TAKES = 5  # takes 0-4 are the test set
SAMPLE_RATES = {"fsdd": 8000, "sc09": 16000}


class AudioDataError(files.DataError):
    """An audio corpus could not be found, downloaded or read; the message says what to do."""


@dataclasses.dataclass(frozen=True)
class AudioSplits:
    """Training and test clips as classes `(N, L)` uint16, with their rate and where they came from."""

    name: str
    train: np.ndarray
    test: np.ndarray
    sample_rate: int
    source: Path
    exact: bool  # the dataset a paper reports on (SC09), not a stand-in

    def describe(self) -> str:
        clips = f"{len(self.train):,} training and {len(self.test):,} test clips"
        shape = f"of {self.train.shape[1]:,} samples at {self.sample_rate:,} Hz"
        note = "" if self.exact else "; NOT SC09: figures measured on it are not comparable with the paper's"
        return f"{self.name} from {self.source}: {clips} {shape}{note}"


def to_classes(samples: np.ndarray) -> np.ndarray:
    """Signed 16-bit samples as classes `0..65535` (uint16)."""
    return (samples.astype(np.int32) + SILENCE).astype(np.uint16)


def from_classes(classes: np.ndarray) -> np.ndarray:
    """Classes `0..65535` as signed 16-bit samples."""
    return (np.asarray(classes).astype(np.int32) - SILENCE).astype(np.int16)


def read_wav(data: bytes) -> tuple[np.ndarray, int]:
    """The samples (int16) and the rate of a mono 16-bit PCM WAV file.

    Raises:
        AudioDataError: for anything else (stereo, 8 or 24 bits, compressed, not a WAV file).
    """
    try:
        with wave.open(io.BytesIO(data)) as clip:
            channels, width, rate = clip.getnchannels(), clip.getsampwidth(), clip.getframerate()
            frames = clip.readframes(clip.getnframes())
    except (wave.Error, EOFError) as error:
        raise AudioDataError(f"not a PCM WAV file ({error})") from None
    if channels != 1 or width != 2:
        raise AudioDataError(f"{channels} channel(s) of {8 * width} bits: give mono 16-bit PCM")
    return np.frombuffer(frames, "<i2").copy(), rate


def wav_bytes(samples: np.ndarray, sample_rate: int) -> bytes:
    """Int16 samples as a mono 16-bit PCM WAV file's bytes."""
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as clip:
        clip.setnchannels(1)
        clip.setsampwidth(2)
        clip.setframerate(sample_rate)
        clip.writeframes(np.asarray(samples, "<i2").tobytes())
    return buffer.getvalue()


def write_wav(path: str | os.PathLike, samples: np.ndarray, sample_rate: int) -> None:
    """Write int16 samples as a mono 16-bit PCM WAV file."""
    Path(path).write_bytes(wav_bytes(samples, sample_rate))


def fixed_length(clips: list[np.ndarray], length: int) -> np.ndarray:
    """Clips right-padded with silence or cut to `length` samples, as classes `(N, length)` uint16."""
    out = np.full((len(clips), length), SILENCE, np.uint16)
    for row, clip in zip(out, clips, strict=True):
        row[: min(len(clip), length)] = to_classes(clip[:length])
    return out


def _wavs(tree: files.Tree, names: list[str]) -> Iterator[tuple[str, np.ndarray, int]]:
    for name in names:
        try:
            samples, rate = read_wav(tree.read(name))
        except AudioDataError as error:
            raise AudioDataError(f"{tree.path}: {name}: {error}") from None
        yield name, samples, rate


def _fsdd_tree(directory: Path) -> Path | None:
    candidates = [directory, *sorted(directory.glob("*.zip"))]
    for candidate in candidates:
        try:
            if any(FSDD_NAME.search(name) for name in files.Tree(candidate).names):
                return candidate
        except zipfile.BadZipFile:
            continue
    return None


def _fetch_fsdd(directory: Path) -> Path:
    hint = files.hint("the FSDD recordings (a zip or folder with `recordings/*.wav`)", directory)
    return files.download(FSDD_URL, directory / FSDD_ARCHIVE, AudioDataError, hint)


def _clips(tree: files.Tree, names: list[str], rate: int) -> list[np.ndarray]:
    clips = []
    for name, samples, found in _wavs(tree, names):
        if found != rate:
            raise AudioDataError(
                f"{tree.path}: {name} is at {found:,} Hz; the set's clips are at {rate:,} Hz"
            )
        clips.append(samples)
    return clips


def load_fsdd(
    data_dir: str | os.PathLike | None = None, length: int = 4096, allow_download: bool = True
) -> AudioSplits:
    """The FSDD recordings (8 kHz) as clips of `length` samples, split by take (0-4: test)."""
    path = files.locate(
        _fsdd_tree,
        "FSDD recordings (`recordings/{digit}_{speaker}_{take}.wav`)",
        AudioDataError,
        data_dir,
        fetch=_fetch_fsdd,
        allow_download=allow_download,
    )
    tree = files.Tree(path)
    names = {"train": [], "test": []}
    for name in sorted(tree.names):
        match = FSDD_NAME.search(name)
        if match:
            names["test" if int(match[3]) < FSDD_TEST_TAKES else "train"].append(name)
    if not names["train"] or not names["test"]:
        raise AudioDataError(f"{path} has no {'training' if not names['train'] else 'test'} recordings")
    return AudioSplits(
        "FSDD",
        *(fixed_length(_clips(tree, names[s], SAMPLE_RATES["fsdd"]), length) for s in ("train", "test")),
        SAMPLE_RATES["fsdd"],
        path,
        False,
    )


def _sc09_dir(directory: Path) -> Path | None:
    for candidate in (directory, directory / "speech_commands", directory / "SpeechCommands"):
        if (candidate / "testing_list.txt").is_file() and all((candidate / d).is_dir() for d in DIGITS):
            return candidate
    return None


def load_sc09(data_dir: str | os.PathLike | None = None, length: int = 16000) -> AudioSplits:
    """SC09 (the digit folders of Speech Commands, 16 kHz) as clips of `length` samples: the testing list
    is the test set, the validation list is left out, the rest is the training set."""
    path = files.locate(
        _sc09_dir,
        "Speech Commands (`zero/` ... `nine/`, `testing_list.txt`), extracted",
        AudioDataError,
        data_dir,
    )
    lists = {}
    for split in ("testing", "validation"):
        listed = path / f"{split}_list.txt"
        lists[split] = set(listed.read_text().split()) if listed.is_file() else set()
    tree = files.Tree(path)
    names = {"train": [], "test": []}
    for name in sorted(tree.names):
        if name.endswith(".wav") and name.split("/")[0] in DIGITS and name not in lists["validation"]:
            names["test" if name in lists["testing"] else "train"].append(name)
    if not names["train"] or not names["test"]:
        raise AudioDataError(
            f"{path} has no {'training' if not names['train'] else 'test'} clips of the ten digits"
        )
    return AudioSplits(
        "SC09",
        *(fixed_length(_clips(tree, names[s], SAMPLE_RATES["sc09"]), length) for s in ("train", "test")),
        SAMPLE_RATES["sc09"],
        path,
        True,
    )


def load(dataset: str, data_dir: str | os.PathLike | None = None, length: int | None = None) -> AudioSplits:
    """Load one of `DATASETS` as clips of `length` samples (default: 4,096 for FSDD, 16,000 for SC09)."""
    if dataset == "fsdd":
        return load_fsdd(data_dir, length or 4096)
    if dataset == "sc09":
        return load_sc09(data_dir, length or 16000)
    raise ValueError(f"unknown dataset {dataset!r}; choose one of {', '.join(DATASETS)}")
