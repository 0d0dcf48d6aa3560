"""The text8 loader: search order, checks with their messages, splits, tokens, pipelines."""

import io
import urllib.error
import zipfile

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eqdd.config import ConfigError
from eqdd.data import files, pipeline, text8

ALPHABET = text8.ALPHABET


def _corpus(length: int, seed: int = 0) -> bytes:
    rng = np.random.default_rng(seed)
    return bytes(np.frombuffer(ALPHABET.encode(), np.uint8)[rng.integers(0, 27, length)])


def _write_zip(path, data: bytes, member: str = "text8"):
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(member, data)
    return path


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch, tmp_path):
    monkeypatch.delenv(files.DATA_DIR_VARIABLE, raising=False)
    monkeypatch.setenv("EQDD_CACHE_DIR", str(tmp_path / "cache"))


@given(st.text(alphabet=ALPHABET, max_size=300))
def test_text_round_trips_through_tokens(text):
    tokens = text8.encode(text)
    assert tokens.dtype == np.uint8
    assert ((tokens >= 1) & (tokens <= 27)).all()
    assert text8.decode(tokens) == text


def test_token_convention():
    np.testing.assert_array_equal(text8.encode(" az"), [1, 2, 27])
    assert text8.decode(np.array([0, text8.ABSORBING])) == "?_"
    assert text8.NUM_CLASSES == 28 and text8.ABSORBING == 28


@pytest.mark.parametrize("bad,position", [("abc\nd", 3), ("Hello", 0), ("ab1", 2), ("caf\u00e9", 3)])
def test_characters_outside_the_alphabet_are_named(bad, position):
    with pytest.raises(text8.Text8Error, match=f"outside the text8 alphabet.*at offset {position}"):
        text8.encode(bad)


def test_standard_split_sizes():
    train_end, valid_end = text8.split_bounds(100_000_000)
    assert (train_end, valid_end - train_end, 100_000_000 - valid_end) == (90_000_000, 5_000_000, 5_000_000)


@given(st.integers(20_000, 10**9))
def test_splits_cover_the_corpus_without_overlap(length):
    train_end, valid_end = text8.split_bounds(length)
    assert 0 < train_end < valid_end < length
    assert train_end == length * 90 // 100 and valid_end == length * 95 // 100


def test_load_splits_in_order_and_flags_non_standard_length(tmp_path):
    data = _corpus(40_000)
    _write_zip(tmp_path / "text8.zip", data)
    splits = text8.load(tmp_path)
    assert not splits.standard
    assert "NON-STANDARD" in splits.describe() and "NOT comparable" in splits.describe()
    assert (len(splits.train), len(splits.valid), len(splits.test)) == (36_000, 2_000, 2_000)
    joined = np.concatenate([splits.train, splits.valid, splits.test])
    np.testing.assert_array_equal(joined, text8.encode(data))


def test_search_order_flag_then_environment_then_cache(tmp_path, monkeypatch):
    flag_dir, env_dir, cache = tmp_path / "flag", tmp_path / "env", tmp_path / "cache"
    for directory in (flag_dir, env_dir, cache):
        directory.mkdir(exist_ok=True)
    (flag_dir / "text8").write_bytes(_corpus(20_000))
    _write_zip(env_dir / "text8-head.zip", _corpus(20_000))
    _write_zip(cache / "text8.zip", _corpus(20_000))
    monkeypatch.setenv(files.DATA_DIR_VARIABLE, str(env_dir))
    assert text8.locate(flag_dir) == flag_dir / "text8"
    assert text8.locate() == env_dir / "text8-head.zip"
    monkeypatch.setenv(files.DATA_DIR_VARIABLE, str(flag_dir.parent))  # a data directory without text8
    assert text8.locate() == cache / "text8.zip"
    monkeypatch.delenv(files.DATA_DIR_VARIABLE)
    assert text8.locate() == cache / "text8.zip"


def test_a_given_directory_without_the_file_is_an_error(tmp_path, monkeypatch):
    with pytest.raises(text8.Text8Error, match="--data-dir points to .* holds no text8"):
        text8.locate(tmp_path)
    monkeypatch.setenv(files.DATA_DIR_VARIABLE, str(tmp_path / "missing"))
    with pytest.raises(text8.Text8Error, match="EQDD_DATA_DIR points to .*not a directory"):
        text8.locate()


def test_offline_download_fails_with_instructions(monkeypatch, tmp_path):
    def offline(*args, **kwargs):
        raise urllib.error.URLError("Name or service not known")

    monkeypatch.setattr(files.urllib.request, "urlopen", offline)
    with pytest.raises(text8.Text8Error, match="downloading .* failed .*--data-dir .*EQDD_DATA_DIR"):
        text8.locate()
    assert not list((tmp_path / "cache").glob("*")), "no partial file is left behind"
    with pytest.raises(text8.Text8Error, match=r"text8 \(.*\) not found in .*: pass --data-dir"):
        text8.locate(allow_download=False)


def test_download_writes_the_file_once(monkeypatch, tmp_path):
    payload = io.BytesIO()
    _write_zip(payload, _corpus(30_000))

    class Response(io.BytesIO):
        headers = {"Content-Length": str(len(payload.getvalue()))}

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

    calls = []
    monkeypatch.setattr(
        files.urllib.request,
        "urlopen",
        lambda url, timeout: calls.append(url) or Response(payload.getvalue()),
    )
    path = text8.locate()
    assert path == tmp_path / "cache" / "text8.zip" and calls == [text8.DOWNLOAD_URL]
    assert text8.locate() == path and len(calls) == 1  # found in the cache the second time
    assert len(text8.read_tokens(path)) == 30_000


@pytest.mark.parametrize(
    "make,message",
    [
        (lambda d: _write_zip(d / "text8.zip", _corpus(30_000), member="other"), "not the member `text8`"),
        (lambda d: (d / "text8.zip").write_bytes(b"PK\x03\x04 broken"), "not a readable zip archive"),
        (lambda d: (d / "text8").write_bytes(_corpus(500)), "holds only 500 characters"),
        (
            lambda d: (d / "text8").write_bytes(_corpus(30_000)[:-1] + b"\n"),
            "not a text8 file.*offset 29,999",
        ),
    ],
)
def test_bad_files_are_refused_with_the_reason(tmp_path, make, message):
    make(tmp_path)
    with pytest.raises(text8.Text8Error, match=message):
        text8.load(tmp_path)


def test_eval_chunks_are_non_overlapping_and_in_order():
    tokens = np.arange(1003) % 28
    chunks = pipeline.eval_chunks(tokens.astype(np.uint8), 250)
    assert chunks.shape == (4, 250) and chunks.dtype == np.int32
    np.testing.assert_array_equal(chunks.reshape(-1), tokens[:1000])


def test_training_batches_are_crops_and_resume_exactly():
    tokens = (np.arange(20_000) % 251).astype(np.uint8)  # every crop identifies its offset
    dataset = pipeline.training_batches(tokens, 50, 8, seed=3)
    iterator = pipeline.iterate(dataset, tokens)
    first = [next(iterator) for _ in range(3)]
    state = iterator.get_state()
    expected = [next(iterator) for _ in range(3)]
    for batch in first + expected:
        assert batch.shape == (8, 50) and batch.dtype == np.int32
        for crop in batch:  # a contiguous run of the stream
            np.testing.assert_array_equal(np.diff(crop) % 251, 1)
    resumed = pipeline.iterate(dataset, tokens)
    resumed.set_state(state)
    for a, b in zip(expected, [next(resumed) for _ in range(3)], strict=True):
        np.testing.assert_array_equal(a, b)
    # crops come from all over the split, not one place
    starts = np.concatenate([b[:, 0] for b in first + expected])
    assert len(np.unique(starts)) > 20
    # a state saved over other data is refused; one saved before fingerprints existed is accepted
    other = tokens.copy()
    other[123] += 1
    with pytest.raises(ConfigError, match=r"the run was trained on other data \(training split [0-9a-f]{16}"):
        pipeline.iterate(pipeline.training_batches(other, 50, 8, seed=3), other).set_state(state)
    legacy = {k: v for k, v in state.items() if k != "data_fingerprint"}
    resumed = pipeline.iterate(dataset, tokens)
    resumed.set_state(legacy)
    np.testing.assert_array_equal(next(resumed), expected[0])


@settings(max_examples=20, deadline=None)
@given(
    chars_per_token=st.integers(1, 3),
    seed=st.integers(0, 2**31 - 1),
)
def test_grouped_tokens_are_base_27_numbers_that_ungroup_exactly(chars_per_token, seed):
    rng = np.random.default_rng(seed)
    chars = rng.integers(1, 28, (3, 6 * chars_per_token))
    classes = text8.group(chars, chars_per_token)
    assert classes.shape == (3, 6) and classes.dtype == np.int32
    np.testing.assert_array_equal(text8.ungroup(classes, chars_per_token), chars)
    assert 0 <= classes.min() and classes.max() < text8.num_classes(chars_per_token)
    if chars_per_token > 1:
        # distinct groups are distinct classes, in the order of their characters
        flat = chars.reshape(-1, chars_per_token)
        order = np.lexsort(flat.T[::-1])
        assert np.all(np.diff(classes.reshape(-1)[order]) >= 0)
        assert len(np.unique(classes)) == len(np.unique(flat, axis=0))
    # the absorbing class stands for absorbed characters
    absorbed = text8.ungroup(np.array([text8.num_classes(chars_per_token)]), chars_per_token)
    np.testing.assert_array_equal(absorbed, [text8.ABSORBING] * chars_per_token)


def test_pairs_have_729_classes_and_single_characters_keep_their_convention():
    assert text8.num_classes(1) == text8.NUM_CLASSES == text8.ABSORBING
    assert text8.num_classes(2) == 27 * 27
    pairs = text8.group(text8.encode(b" az "), 2)
    np.testing.assert_array_equal(pairs, [0 * 27 + 1, 26 * 27 + 0])
    assert text8.decode(text8.ungroup(pairs, 2)) == " az "
