"""Image corpora as uint8 arrays `(N, H, W, C)` with 256 levels per sub-pixel.

- `"fashion_mnist"`: Fashion-MNIST in its IDX format (exact; 60,000 + 10,000 greyscale 28x28). Searched
  in `--data-dir`, `$EQDD_DATA_DIR`, where Debian's `dataset-fashion-mnist` package installs it
  (`/usr/share/datasets/fashion-mnist`), and the cache, into which the standard files are downloaded.
- `"cifar10"`: CIFAR-10 from the standard archive `cifar-10-python.tar.gz` (exact; 50,000 + 10,000
  colour 32x32), searched the same way and downloaded from its home page into the cache.
- `"image_folder"`: any directory or zip archive with `train/` and `test/` folders of class folders of
  image files (PNG, JPEG, ...), e.g. the lossy CIFAR-10 JPEG copy `cifar10-jpeg.zip`. Figures measured
  on lossy copies are not comparable with published ones: [`ImageSplits.describe`][] says so.

Where files come from: [`eqdd.data.files`][].
"""

import dataclasses
import gzip
import io
import os
import pickle
import tarfile
import zipfile
from pathlib import Path

import numpy as np

from eqdd.data import files

DATASETS = ("fashion_mnist", "cifar10", "image_folder", "tfds:cifar10", "tfds:mnist", "tfds:fashion_mnist")
NUM_CLASSES = 256
FASHION_MNIST_URL = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
FASHION_MNIST_FILES = {"train": "train-images-idx3-ubyte.gz", "test": "t10k-images-idx3-ubyte.gz"}
FASHION_MNIST_SYSTEM_DIRS = ("/usr/share/datasets/fashion-mnist",)
CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
CIFAR10_ARCHIVE = "cifar-10-python.tar.gz"
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp")


class ImageDataError(files.DataError):
    """An image corpus could not be found, downloaded or read; the message says what to do."""


@dataclasses.dataclass(frozen=True)
class ImageSplits:
    """Training and test images, uint8 `(N, H, W, C)`, with where they came from."""

    name: str
    train: np.ndarray
    test: np.ndarray
    source: Path
    exact: bool

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return tuple(self.train.shape[1:])

    def describe(self) -> str:
        height, width, channels = self.image_shape
        text = (
            f"{self.name} from {self.source}: {len(self.train):,} training and {len(self.test):,} test "
            f"images of {height}x{width}x{channels}"
        )
        if not self.exact:
            text += "; a LOSSY or non-standard copy: its bits per dimension are NOT comparable with papers"
        return text


def read_idx(data: bytes) -> np.ndarray:
    """Parse an IDX file of unsigned bytes (the MNIST format): magic `0x0000 08 NDIM`, sizes, data.

    Raises:
        ImageDataError: when the bytes are not an IDX file of uint8 values or are truncated.
    """
    if len(data) < 4 or data[:2] != b"\x00\x00" or data[2] != 0x08:
        raise ImageDataError("not an IDX file of unsigned bytes (bad magic number)")
    ndim = data[3]
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    body = np.frombuffer(data, np.uint8, offset=4 + 4 * ndim)
    if body.size != int(np.prod(shape)):
        raise ImageDataError(
            f"the IDX header says {shape} ({np.prod(shape):,} bytes) but {body.size:,} follow"
        )
    return body.reshape(shape)


def _fashion_mnist_dir(directory: Path) -> Path | None:
    found = all((directory / name).is_file() for name in FASHION_MNIST_FILES.values())
    return directory if found else None


def _fetch_fashion_mnist(directory: Path) -> Path:
    hint = files.hint("the Fashion-MNIST files (or `apt-get install dataset-fashion-mnist`)", directory)
    for name in FASHION_MNIST_FILES.values():
        files.download(FASHION_MNIST_URL + name, directory / name, ImageDataError, hint)
    return directory


def load_fashion_mnist(data_dir: str | os.PathLike | None = None, allow_download: bool = True) -> ImageSplits:
    """Fashion-MNIST's training and test images, `(N, 28, 28, 1)`."""
    directory = files.locate(
        _fashion_mnist_dir,
        "Fashion-MNIST (`train-images-idx3-ubyte.gz`, `t10k-images-idx3-ubyte.gz`)",
        ImageDataError,
        data_dir,
        FASHION_MNIST_SYSTEM_DIRS,
        _fetch_fashion_mnist,
        allow_download,
    )
    splits = {}
    for split, name in FASHION_MNIST_FILES.items():
        try:
            splits[split] = read_idx(gzip.decompress((directory / name).read_bytes()))[..., None]
        except (OSError, EOFError, ImageDataError) as error:
            raise ImageDataError(
                f"{directory / name} is not a readable gzipped IDX file ({error})"
            ) from error
    return ImageSplits("Fashion-MNIST", splits["train"], splits["test"], directory, exact=True)


def _cifar10_archive(directory: Path) -> Path | None:
    path = directory / CIFAR10_ARCHIVE
    return path if path.is_file() else None


def read_cifar10_archive(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """The training and test images of the standard python archive, `(N, 32, 32, 3)`.

    Raises:
        ImageDataError: when the archive or one of its batches cannot be read.
    """
    batches: dict[str, np.ndarray] = {}
    try:
        with tarfile.open(path, "r:gz") as archive:
            for member in archive.getmembers():
                name = Path(member.name).name
                if name.startswith("data_batch_") or name == "test_batch":
                    batch = pickle.load(archive.extractfile(member), encoding="bytes")
                    batches[name] = np.asarray(batch[b"data"], np.uint8).reshape(-1, 3, 32, 32)
    except (tarfile.TarError, OSError, EOFError, pickle.UnpicklingError, KeyError, ValueError) as error:
        raise ImageDataError(f"{path} is not a readable CIFAR-10 python archive ({error})") from error
    expected = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    missing = [name for name in expected if name not in batches]
    if missing:
        raise ImageDataError(f"{path} lacks the batches {missing}")
    train = np.concatenate([batches[f"data_batch_{i}"] for i in range(1, 6)])
    return train.transpose(0, 2, 3, 1), batches["test_batch"].transpose(0, 2, 3, 1)


def load_cifar10(data_dir: str | os.PathLike | None = None, allow_download: bool = True) -> ImageSplits:
    """CIFAR-10's training and test images from the standard archive, `(N, 32, 32, 3)`."""

    def fetch(directory: Path) -> Path:
        hint = files.hint(f"`{CIFAR10_ARCHIVE}`", directory)
        return files.download(CIFAR10_URL, directory / CIFAR10_ARCHIVE, ImageDataError, hint)

    path = files.locate(
        _cifar10_archive,
        f"CIFAR-10 (`{CIFAR10_ARCHIVE}`)",
        ImageDataError,
        data_dir,
        fetch=fetch,
        allow_download=allow_download,
    )
    train, test = read_cifar10_archive(path)
    return ImageSplits("CIFAR-10", train, test, path, exact=True)


def _split_images(tree: files.Tree) -> dict[str, list[str]]:
    """The image files under `<root>/train/<class>/` and `<root>/test/<class>/` for one root."""
    splits: dict[str, list[str]] = {"train": [], "test": []}
    for name in sorted(tree.names):
        parts = name.split("/")
        if len(parts) >= 3 and parts[-3] in splits and Path(name).suffix.lower() in IMAGE_SUFFIXES:
            splits[parts[-3]].append(name)
    return splits


def _image_folder(directory: Path) -> Path | None:
    candidates = [
        *sorted(directory.glob("*.zip")),
        *sorted(p for p in directory.iterdir() if p.is_dir()),
        directory,
    ]
    for candidate in candidates:
        try:
            found = _split_images(files.Tree(candidate))
        except zipfile.BadZipFile:
            continue
        if found["train"] and found["test"]:
            return candidate
    return None


def load_image_folder(data_dir: str | os.PathLike | None = None) -> ImageSplits:
    """Images from class folders under `train/` and `test/`, in a directory or a zip archive found in
    the data directory (or being it). All images must have one size and mode.

    Raises:
        ImageDataError: when no such folder is found or an image cannot be decoded.
    """
    from PIL import Image

    path = files.locate(
        _image_folder,
        "an image folder (`train/` and `test/` folders of class folders)",
        ImageDataError,
        data_dir,
    )
    tree = files.Tree(path)
    splits = {}
    for split, names in _split_images(tree).items():
        images = []
        for name in names:
            try:
                with Image.open(io.BytesIO(tree.read(name))) as image:
                    images.append(np.asarray(image.convert("L" if image.mode in ("L", "1", "P") else "RGB")))
            except OSError as error:
                raise ImageDataError(f"{path}: {name} is not a readable image ({error})") from error
        shapes = {image.shape for image in images}
        if len(shapes) != 1:
            raise ImageDataError(f"{path}: the {split} images have several sizes {sorted(shapes)[:4]}")
        stacked = np.stack(images)
        splits[split] = stacked[..., None] if stacked.ndim == 3 else stacked
    return ImageSplits(f"image folder {path.name}", splits["train"], splits["test"], path, exact=False)


def load(dataset: str, data_dir: str | os.PathLike | None = None) -> ImageSplits:
    """Load one of `DATASETS` (see the module docstring)."""
    if dataset == "fashion_mnist":
        return load_fashion_mnist(data_dir)
    if dataset == "cifar10":
        return load_cifar10(data_dir)
    if dataset == "image_folder":
        return load_image_folder(data_dir)
    if dataset.startswith("tfds:"):
        from eqdd.data import tfds_source  # TensorFlow Datasets only when asked for

        return tfds_source.load_images(dataset, data_dir)
    raise ValueError(f"unknown dataset {dataset!r}; choose one of {', '.join(DATASETS)}")


def save_grid(
    images: np.ndarray, path: str | os.PathLike, columns: int | None = None, scale: int = 2
) -> None:
    """Write uint8 images `(N, H, W, C)` side by side as one PNG (rows of `columns`, 2-pixel gaps),
    enlarged `scale` times."""
    from PIL import Image

    count, height, width, channels = images.shape
    columns = columns or max(1, int(np.ceil(np.sqrt(count))))
    rows = -(-count // columns)
    canvas = np.full((rows * (height + 2) + 2, columns * (width + 2) + 2, channels), 255, np.uint8)
    for i, image in enumerate(images):
        top, left = 2 + (i // columns) * (height + 2), 2 + (i % columns) * (width + 2)
        canvas[top : top + height, left : left + width] = image
    canvas = canvas.repeat(scale, axis=0).repeat(scale, axis=1)
    Image.fromarray(canvas[..., 0] if channels == 1 else canvas).save(path)
