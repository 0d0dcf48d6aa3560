"""grain pipelines over an in-memory token stream: random training crops and evaluation chunks."""

import hashlib

import grain
import numpy as np

from eqdd.config import ConfigError


class _Windows:
    """Non-overlapping windows of a token stream, as a random-access source."""

    def __init__(self, tokens: np.ndarray, window: int):
        self.tokens, self.window = tokens, window

    def __len__(self) -> int:
        return len(self.tokens) // self.window

    def __getitem__(self, index: int) -> np.ndarray:
        start = index * self.window
        return self.tokens[start : start + self.window]


def eval_chunks(tokens: np.ndarray, length: int) -> np.ndarray:
    """Cut a split into non-overlapping chunks (the remainder is dropped).

    Arguments:
        tokens: the split's tokens.
        length: the chunk length `D`.

    Returns:
        An int32 array of shape `(len(tokens) // length, length)`.
    """
    count = len(tokens) // length
    return tokens[: count * length].reshape(count, length).astype(np.int32)


def training_batches(
    tokens: np.ndarray, length: int, batch_size: int, seed: int, windows_per_crop: int = 4
) -> grain.MapDataset:
    """Endless shuffled batches of random crops, as in the reference (§7.1).

    The stream is cut into windows of `windows_per_crop · length`, shuffled afresh every epoch, and
    one crop of `length` is taken at a random offset in each window. Every batch is a pure function
    of `(seed, batch index)`, so the iterator's state is just its position.

    Arguments:
        tokens: the training split.
        length: the crop length `D`.
        batch_size: crops per batch.
        seed: the shuffling and cropping seed.
        windows_per_crop: the window length in units of `length`.

    Returns:
        A grain `MapDataset` of int32 arrays `(batch_size, length)`; iterate it with
        [`eqdd.data.pipeline.iterate`][] (given `tokens`).
    """
    window = windows_per_crop * length
    source = _Windows(tokens, window)
    if len(source) < 1:
        raise ValueError(f"a training split of {len(tokens):,} tokens is shorter than one window ({window})")

    def crop(chunk: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        start = rng.integers(0, len(chunk) - length + 1)
        return chunk[start : start + length].astype(np.int32)

    return (
        grain.MapDataset.source(source)
        .shuffle(seed=seed)
        .repeat()
        .random_map(crop, seed=seed + 1)
        .batch(batch_size, drop_remainder=True)
    )


def fingerprint(data: np.ndarray) -> str:
    """A short SHA-256 fingerprint of an array's bytes, shape and dtype (a training split)."""
    digest = hashlib.sha256(f"{data.shape} {data.dtype}".encode())
    digest.update(np.ascontiguousarray(data).tobytes())
    return digest.hexdigest()[:16]


class Batches:
    """A checkpointable in-process iterator over a grain dataset, whose state also names the data:
    restoring a state saved over other data is refused (a run resumed on another corpus)."""

    def __init__(self, dataset: grain.MapDataset, data_fingerprint: str):
        self._iterator = iter(dataset.to_iter_dataset(grain.ReadOptions(num_threads=0)))
        self.data_fingerprint = data_fingerprint

    def __iter__(self) -> "Batches":
        return self

    def __next__(self) -> np.ndarray:
        return next(self._iterator)

    def get_state(self) -> dict:
        return {**self._iterator.get_state(), "data_fingerprint": self.data_fingerprint}

    def set_state(self, state: dict) -> None:
        """Continue from `state` (from `get_state`; a state saved before fingerprints is accepted).

        Raises:
            ConfigError: when `state` was saved over other data.
        """
        state = dict(state)
        saved = state.pop("data_fingerprint", self.data_fingerprint)
        if saved != self.data_fingerprint:
            raise ConfigError(
                f"the run was trained on other data (training split {saved}, now {self.data_fingerprint}): "
                "point --data-dir or $EQDD_DATA_DIR at the corpus it was trained on, or choose another "
                "--run-dir to start afresh"
            )
        self._iterator.set_state(state)


def iterate(dataset: grain.MapDataset, data: np.ndarray) -> Batches:
    """A checkpointable in-process iterator (`get_state()` / `set_state()`) over `dataset`, made from
    the array `data` (its fingerprint travels in the state)."""
    return Batches(dataset, fingerprint(data))


def augment_image(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A random horizontal flip, then (square images only) a random multiple of 90° rotation, the
    augmentation of the reference's best CIFAR-10 model."""
    if rng.integers(2):
        image = image[:, ::-1]
    if image.shape[0] == image.shape[1]:
        image = np.rot90(image, k=int(rng.integers(4)))
    return image


def example_batches(
    examples: np.ndarray, batch_size: int, seed: int, augment: bool = False
) -> grain.MapDataset:
    """Endless shuffled batches of examples (images `(N, H, W, C)`, audio clips `(N, L)`), each flattened
    row-major to `(batch_size, D)` int32.

    Arguments:
        examples: the examples, along the first axis.
        batch_size: examples per batch.
        seed: the shuffling (and augmentation) seed.
        augment: apply [`eqdd.data.pipeline.augment_image`][] (images only).

    Returns:
        A grain `MapDataset`; iterate it with [`eqdd.data.pipeline.iterate`][] (given `examples`).
    """
    if len(examples) < batch_size:
        raise ValueError(f"{len(examples)} examples cannot fill a batch of {batch_size}")
    dataset = grain.MapDataset.source(examples).shuffle(seed=seed).repeat()
    if augment:
        dataset = dataset.random_map(augment_image, seed=seed + 1)
    return dataset.map(lambda example: np.ascontiguousarray(example).reshape(-1).astype(np.int32)).batch(
        batch_size, drop_remainder=True
    )
