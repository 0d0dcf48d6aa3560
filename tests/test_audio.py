"""Audio data: WAV files, 16-bit classes, and the FSDD and SC09 layouts, on files the tests write."""

import io
import wave
import zipfile

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from eqdd.data import audio


def wav_bytes(samples: np.ndarray, rate: int, channels: int = 1, width: int = 2) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as clip:
        clip.setnchannels(channels)
        clip.setsampwidth(width)
        clip.setframerate(rate)
        clip.writeframes(np.asarray(samples, f"<i{width}").tobytes())
    return buffer.getvalue()


@settings(max_examples=20)
@given(hnp.arrays(np.int16, st.integers(0, 300)))
def test_samples_survive_wav_files_and_classes_exactly(tmp_path_factory, samples):
    path = tmp_path_factory.mktemp("wav") / "clip.wav"
    audio.write_wav(path, samples, 8000)
    read, rate = audio.read_wav(path.read_bytes())
    assert rate == 8000 and read.dtype == np.int16
    np.testing.assert_array_equal(read, samples)
    classes = audio.to_classes(samples)
    assert classes.dtype == np.uint16
    np.testing.assert_array_equal(audio.from_classes(classes), samples)


def test_silence_is_the_middle_class_and_extremes_are_the_ends():
    extremes = np.array([-32768, 0, 32767], np.int16)
    np.testing.assert_array_equal(audio.to_classes(extremes), [0, audio.SILENCE, audio.NUM_CLASSES - 1])


def test_only_mono_16_bit_pcm_is_read():
    for data, message in (
        (wav_bytes(np.zeros(8), 8000, channels=2), "2 channel"),
        (wav_bytes(np.zeros(8), 8000, width=1), "8 bits"),
        (b"RIFF....WAVEfmt not really", "not a PCM WAV file"),
    ):
        with pytest.raises(audio.AudioDataError, match=message):
            audio.read_wav(data)


def test_clips_are_padded_with_silence_or_cut():
    clips = [np.array([1, 2], np.int16), np.arange(6, dtype=np.int16)]
    fixed = audio.fixed_length(clips, 4)
    np.testing.assert_array_equal(audio.from_classes(fixed), [[1, 2, 0, 0], [0, 1, 2, 3]])


def write_fsdd(path, prefix: str, rate: int = 8000) -> dict:
    """Digits 0-1, speakers a and b, takes 0-6, each clip as long as its take plus one."""
    lengths = {}
    with zipfile.ZipFile(path, "w") as archive:
        for digit in range(2):
            for speaker in ("alice", "bob"):
                for take in range(7):
                    name = f"{prefix}recordings/{digit}_{speaker}_{take}.wav"
                    archive.writestr(name, wav_bytes(np.full(take + 1, 100 * digit + take, np.int16), rate))
                    lengths[name] = take + 1
        archive.writestr(f"{prefix}README.md", "not a recording")
    return lengths


@pytest.mark.parametrize("prefix", ["", "free-spoken-digit-dataset-master/"])
def test_fsdd_is_split_by_take_and_cut_to_one_length(tmp_path, prefix):
    write_fsdd(tmp_path / "fsdd-recordings.zip", prefix)
    splits = audio.load_fsdd(tmp_path, length=4, allow_download=False)
    assert splits.train.shape == (2 * 2 * 2, 4) and splits.test.shape == (2 * 2 * 5, 4)
    assert splits.sample_rate == 8000 and not splits.exact and "NOT SC09" in splits.describe()
    takes = audio.from_classes(splits.test)[:, 0] % 100
    assert set(takes.tolist()) == set(range(5))  # takes 0-4 are the test set
    assert set((audio.from_classes(splits.train)[:, 0] % 100).tolist()) == {5, 6}
    test = audio.from_classes(splits.test)
    assert (test[takes == 0, 1:] == 0).all()  # one sample of take 0, then silence


def test_sc09_takes_the_testing_list_and_leaves_out_the_validation_list(tmp_path):
    root = tmp_path / "speech_commands"
    for index, digit in enumerate(audio.DIGITS):
        (root / digit).mkdir(parents=True)
        for clip in range(3):
            audio.write_wav(root / digit / f"s{clip}_nohash_0.wav", np.full(5, index, np.int16), 16000)
    (root / "_background_noise_").mkdir()
    audio.write_wav(root / "_background_noise_" / "noise.wav", np.ones(5, np.int16), 16000)
    (root / "testing_list.txt").write_text("".join(f"{d}/s0_nohash_0.wav\n" for d in audio.DIGITS))
    (root / "validation_list.txt").write_text("".join(f"{d}/s1_nohash_0.wav\n" for d in audio.DIGITS))
    splits = audio.load_sc09(tmp_path, length=8)
    assert splits.train.shape == (10, 8) and splits.test.shape == (10, 8) and splits.exact
    assert sorted(audio.from_classes(splits.test)[:, 0].tolist()) == list(range(10))


def test_missing_or_inconsistent_audio_gives_instructions(tmp_path):
    with pytest.raises(audio.AudioDataError, match="holds no FSDD recordings"):
        audio.load_fsdd(tmp_path, allow_download=False)
    write_fsdd(tmp_path / "mixed.zip", "")
    with zipfile.ZipFile(tmp_path / "mixed.zip", "a") as archive:
        archive.writestr("recordings/1_carol_9.wav", wav_bytes(np.zeros(3), 16000))
    with pytest.raises(audio.AudioDataError, match="1_carol_9.wav is at 16,000 Hz"):
        audio.load_fsdd(tmp_path, allow_download=False)
    with pytest.raises(ValueError, match="choose one of fsdd, sc09"):
        audio.load("sc10")
