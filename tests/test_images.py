"""The image loaders read small files written here in the real formats (and TFDS sets through a stand-in
of its `data_source`); the pipeline and pictures."""

import gzip
import io
import pickle
import re
import subprocess
import sys
import tarfile
import types
import zipfile

import numpy as np
import pytest
from PIL import Image

from eqdd.data import files, images, pipeline


@pytest.fixture(autouse=True)
def no_environment(monkeypatch, tmp_path):
    monkeypatch.delenv(files.DATA_DIR_VARIABLE, raising=False)
    monkeypatch.setenv("EQDD_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(images, "FASHION_MNIST_SYSTEM_DIRS", ())


def _idx(array: np.ndarray) -> bytes:
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(n.to_bytes(4, "big") for n in array.shape)
    return header + array.astype(np.uint8).tobytes()


def test_fashion_mnist_idx_files_are_read_exactly(tmp_path):
    rng = np.random.default_rng(0)
    train, test = rng.integers(0, 256, (5, 28, 28)), rng.integers(0, 256, (3, 28, 28))
    for name, array in (("train-images-idx3-ubyte.gz", train), ("t10k-images-idx3-ubyte.gz", test)):
        (tmp_path / name).write_bytes(gzip.compress(_idx(array)))
    splits = images.load("fashion_mnist", tmp_path)
    np.testing.assert_array_equal(splits.train[..., 0], train)
    np.testing.assert_array_equal(splits.test[..., 0], test)
    assert splits.image_shape == (28, 28, 1) and splits.exact and "NOT comparable" not in splits.describe()


def test_truncated_idx_files_are_refused(tmp_path):
    with pytest.raises(images.ImageDataError, match="header says"):
        images.read_idx(_idx(np.zeros((2, 3, 3)))[:-1])
    with pytest.raises(images.ImageDataError, match="bad magic"):
        images.read_idx(b"\x1f\x8b\x08\x00")


def test_the_cifar10_python_archive_is_read_exactly(tmp_path):
    rng = np.random.default_rng(1)
    batches = {f"data_batch_{i}": rng.integers(0, 256, (2, 3072)) for i in range(1, 6)}
    batches["test_batch"] = rng.integers(0, 256, (2, 3072))
    with tarfile.open(tmp_path / "cifar-10-python.tar.gz", "w:gz") as archive:
        for name, data in batches.items():
            payload = pickle.dumps({b"data": data.astype(np.uint8), b"labels": [0, 1]})
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(payload)
            archive.addfile(info, io.BytesIO(payload))
    splits = images.load("cifar10", tmp_path)
    assert splits.train.shape == (10, 32, 32, 3) and splits.test.shape == (2, 32, 32, 3)
    # rows hold the red plane, then green, then blue, each row-major
    first = batches["data_batch_1"][0].reshape(3, 32, 32)
    np.testing.assert_array_equal(splits.train[0], first.transpose(1, 2, 0))


def test_an_image_folder_in_a_zip_is_read(tmp_path):
    rng = np.random.default_rng(2)
    pictures = {}
    with zipfile.ZipFile(tmp_path / "pictures.zip", "w") as archive:
        for split, count in (("train", 3), ("test", 2)):
            for i in range(count):
                array = rng.integers(0, 256, (5, 7, 3)).astype(np.uint8)
                buffer = io.BytesIO()
                Image.fromarray(array).save(buffer, format="PNG")
                name = f"root/{split}/class{i % 2}/{i:04d}.png"
                archive.writestr(name, buffer.getvalue())
                pictures[name] = array
    splits = images.load("image_folder", tmp_path)
    assert splits.train.shape == (3, 5, 7, 3) and not splits.exact
    assert "NOT comparable" in splits.describe()
    expected = [pictures[n] for n in sorted(pictures) if "/train/" in n]
    np.testing.assert_array_equal(splits.train, np.stack(expected))


def test_missing_data_gives_instructions(tmp_path, monkeypatch):
    def offline(*args, **kwargs):
        raise OSError("network unreachable")

    monkeypatch.setattr(files.urllib.request, "urlopen", offline)
    with pytest.raises(images.ImageDataError, match="downloading .* failed .*dataset-fashion-mnist"):
        images.load("fashion_mnist")
    with pytest.raises(images.ImageDataError, match="--data-dir points to .* holds no CIFAR-10"):
        images.load("cifar10", tmp_path)
    with pytest.raises(images.ImageDataError, match="an image folder .* not found"):
        images.load("image_folder")


def test_batches_are_flat_images_and_augmentation_keeps_the_pixels():
    x = np.arange(4 * 6 * 6 * 2, dtype=np.uint8).reshape(4, 6, 6, 2)
    batch = next(pipeline.iterate(pipeline.example_batches(x, 4, seed=0, augment=True), x))
    assert batch.shape == (4, 72) and batch.dtype == np.int32
    originals = {tuple(sorted(image.ravel())) for image in x}
    assert {tuple(sorted(row)) for row in batch} == originals
    rng = np.random.default_rng(0)
    for _ in range(8):  # every augmentation is a flip and/or rotation: an exact symmetry of the grid
        augmented = pipeline.augment_image(x[0], rng)
        candidates = [np.rot90(f, k) for f in (x[0], x[0][:, ::-1]) for k in range(4)]
        assert any(np.array_equal(augmented, c) for c in candidates)


def test_a_grid_picture_is_written(tmp_path):
    images.save_grid(np.zeros((5, 4, 3, 1), np.uint8), tmp_path / "grid.png", scale=1)
    with Image.open(tmp_path / "grid.png") as picture:
        assert picture.size == (3 * (3 + 2) + 2, 2 * (4 + 2) + 2)  # 3 columns, 2 rows, 2-pixel gaps


class _StandInTFDS(types.ModuleType):
    """What eqdd asks of TensorFlow Datasets, `data_source`, over in-memory examples (the real package is
    an optional extra the test environment does not install)."""

    def __init__(self, splits):
        super().__init__("tensorflow_datasets")
        self.splits, self.calls = splits, []

    def data_source(self, name, *, split, data_dir, download):
        self.calls.append((name, tuple(split), data_dir, download))
        if name not in self.splits:
            raise FileNotFoundError(f"{name} not found in {data_dir}")
        return [[{"image": image, "label": 0} for image in self.splits[name][s]] for s in split]


def test_tfds_image_sets_are_read_from_prepared_data_and_never_downloaded(monkeypatch, tmp_path):
    rng = np.random.default_rng(0)
    mnist = {s: rng.integers(0, 256, (n, 28, 28, 1), dtype=np.uint8) for s, n in (("train", 5), ("test", 3))}
    stand_in = _StandInTFDS({"mnist": mnist})
    monkeypatch.setitem(sys.modules, "tensorflow_datasets", stand_in)
    splits = images.load("tfds:mnist", tmp_path)
    np.testing.assert_array_equal(splits.train, mnist["train"])
    np.testing.assert_array_equal(splits.test, mnist["test"])
    assert splits.image_shape == (28, 28, 1) and "mnist (TFDS)" in splits.describe()
    assert stand_in.calls == [("mnist", ("train", "test"), tmp_path, False)]
    with pytest.raises(images.ImageDataError, match=r"tfds build cifar10 --file_format=array_record"):
        images.load("tfds:cifar10", tmp_path)
    monkeypatch.setitem(sys.modules, "tensorflow_datasets", None)  # the extra not installed
    with pytest.raises(images.ImageDataError, match=re.escape("pip install 'eqdd[tfds]'")):
        images.load("tfds:mnist")


def test_nothing_imports_tensorflow_datasets_unless_a_tfds_set_is_asked_for():
    code = (
        "import sys, eqdd, eqdd.cli, eqdd.runs, eqdd.data.images, eqdd.data.audio, eqdd.data.tfds_source; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'tensorflow_datasets')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
