"""Evaluation of a stochastic likelihood bound over a split, with its standard error and `L_t`."""

import dataclasses
from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from eqdd._progress import progress as progress_bar


@dataclasses.dataclass(frozen=True)
class BoundReport:
    """The bound in bits per dimension over a split.

    `bpd` is the mean over every chunk and pass; `stderr` is the standard error of that mean across
    chunks (each chunk's passes averaged first). `step_losses[t]` is the mean `L_t` at step `t`
    (bits per dimension per step; they sum to about `bpd`), `per_pass` the mean of each pass, and
    `per_chunk` each chunk's mean over passes (for paired comparisons of two evaluations made with the
    same key, see [`eqdd.train.paired_difference`][]).
    """

    bpd: float
    stderr: float
    per_pass: tuple[float, ...]
    step_losses: np.ndarray
    num_chunks: int
    per_chunk: np.ndarray

    def to_json(self) -> dict:
        return {
            "bpd": self.bpd,
            "stderr": self.stderr,
            "per_pass": list(self.per_pass),
            "num_chunks": self.num_chunks,
            # steps never scored (a split smaller than the number of steps) are null, not NaN
            "step_losses": [None if np.isnan(v) else float(v) for v in self.step_losses],
        }


def stratified_steps(key: jax.Array, count: int, num_steps: int) -> np.ndarray:
    """One pass's steps for `count` chunks: `t_i = floor((π(i) + u)·T / count)` with a random
    permutation `π` and a uniform `u` in `[0, 1)`. Each `t_i` is uniform on `0..T-1`, and the sorted
    steps fall one into each of `count` equal strata of `[0, T)` (systematic sampling)."""
    offset_key, permutation_key = jax.random.split(key)
    offset = float(jax.random.uniform(offset_key))
    ranks = np.asarray(jax.random.permutation(permutation_key, count))
    return np.minimum(((ranks + offset) * num_steps / count).astype(np.int64), num_steps - 1)


def evaluate_bound(
    estimate: Callable,
    model: eqx.Module,
    chunks: np.ndarray,
    num_steps: int,
    *,
    passes: int,
    batch_size: int,
    key: jax.Array,
    progress: bool = True,
) -> BoundReport:
    """Average a per-example bound estimator over a split, with stratified steps.

    Each pass scores every chunk once, at steps from [`stratified_steps`][]: every chunk's `t` is
    marginally uniform, so the mean is unbiased, and each pass spreads its steps evenly over
    `0..num_steps-1`, whether there are more chunks than steps or fewer.

    Arguments:
        estimate: `estimate(model, x, t, key) -> terms` for one chunk, with `terms.nelbo` (bits per
            dimension) and `terms.step_loss` (`L_t`).
        model: the (EMA) model.
        chunks: int array `(N, D)`.
        num_steps: how many values the stratified index takes: the number of steps of the process
            (`D` for an OA-ARDM's full bound), or the number of segments for a policy estimator
            (then `step_losses` is indexed by segment).
        passes: how many passes over the split.
        batch_size: chunks per call; the last batch is padded, so there is one compilation.
        key: a PRNG key.
        progress: show a progress bar.

    Returns:
        A [`eqdd.train.BoundReport`][].
    """
    count = len(chunks)
    padded = -(-count // batch_size) * batch_size
    data = np.zeros((padded, chunks.shape[1]), np.int32)
    data[:count] = chunks

    @eqx.filter_jit
    def score(model, x, t, keys):
        terms = eqx.filter_vmap(estimate, in_axes=(None, 0, 0, 0))(model, x, t, keys)
        return terms.nelbo, terms.step_loss

    nelbo = np.zeros((passes, count))
    step_sums = np.zeros(num_steps)
    step_counts = np.zeros(num_steps)
    with progress_bar(passes * padded // batch_size, "evaluating", "batch", progress) as bar:
        for p in range(passes):
            key, steps_key, pass_key = jax.random.split(key, 3)
            steps = np.zeros(padded, np.int64)
            steps[:count] = stratified_steps(steps_key, count, num_steps)
            keys = jax.random.split(pass_key, padded)
            for start in range(0, padded, batch_size):
                batch = slice(start, start + batch_size)
                bound, step_loss = score(
                    model, jnp.asarray(data[batch]), jnp.asarray(steps[batch], jnp.int32), keys[batch]
                )
                real = min(batch_size, count - start)
                nelbo[p, start : start + real] = np.asarray(bound)[:real]
                np.add.at(step_sums, steps[batch][:real], np.asarray(step_loss)[:real])
                np.add.at(step_counts, steps[batch][:real], 1)
                bar.update(1)
    per_chunk = nelbo.mean(axis=0)
    return BoundReport(
        bpd=float(per_chunk.mean()),
        stderr=float(per_chunk.std(ddof=1) / np.sqrt(count)) if count > 1 else float("nan"),
        per_pass=tuple(float(v) for v in nelbo.mean(axis=1)),
        step_losses=np.where(step_counts > 0, step_sums / np.maximum(step_counts, 1), np.nan),
        num_chunks=count,
        per_chunk=per_chunk,
    )


def paired_difference(a: BoundReport, b: BoundReport) -> tuple[float, float]:
    """The mean of `a - b` over chunks and its standard error.

    Evaluations made with the same key on the same chunks share orders and step offsets (common random
    numbers), so chunk-to-chunk variation cancels and the difference is far more precise than the
    two standard errors suggest.
    """
    if a.per_chunk.shape != b.per_chunk.shape:
        raise ValueError(f"the reports cover different chunks: {a.num_chunks} and {b.num_chunks}")
    difference = a.per_chunk - b.per_chunk
    return float(difference.mean()), float(difference.std(ddof=1) / np.sqrt(difference.size))
