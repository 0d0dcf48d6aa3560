"""The training loop: progress bar, metrics, periodic checkpoints, and a clean stop on Ctrl-C."""

import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import jax
import numpy as np

from eqdd._progress import progress as progress_bar
from eqdd.train.checkpoint import Checkpointer
from eqdd.train.metrics import MetricsLog
from eqdd.train.state import TrainState


class DivergedError(RuntimeError):
    """The training loss became NaN or infinite; nothing was saved from that step on."""


class _Stop:
    """Stop requests (SIGINT, SIGTERM) while `fit` runs: noted, and acted on at the next step
    boundary, so that a signal never lands inside a checkpoint save."""

    training = False
    requested = False


def request_stop(signum=None, frame=None) -> None:
    """A signal handler: inside `fit`, ask it to save and stop at the next step boundary (again while
    it saves: nothing more happens); elsewhere, raise `KeyboardInterrupt` as Ctrl-C does."""
    if not _Stop.training:
        raise KeyboardInterrupt
    if not _Stop.requested:
        _Stop.requested = True
        print("\nstop requested: saving a checkpoint at the end of this step", file=sys.stderr, flush=True)


def fit(
    state: TrainState,
    train_step: Callable,
    batches: Iterator[np.ndarray],
    *,
    num_steps: int,
    checkpointer: Checkpointer,
    metadata: Callable[[], dict[str, Any]],
    metrics_path: str | Path,
    log_every: int = 10,
    checkpoint_every: int = 500,
    progress: bool = True,
) -> TrainState:
    """Train from `state.step` up to `num_steps`, checkpointing as it goes.

    The loop reads the step's metrics back every step, which keeps it in lock-step with the device
    (cheap next to a training step). A checkpoint is written every `checkpoint_every` steps, at the
    end, and when the run is interrupted with Ctrl-C (the interrupt is then re-raised; with
    [`request_stop`][] as the handler of SIGINT and SIGTERM, signals wait for the step boundary, so
    none lands inside a save). A step whose
    loss is NaN or infinite stops the loop before anything of it is saved (`DivergedError`): the last
    checkpoint stays the last good state.

    Arguments:
        state: the state to continue from.
        train_step: `(state, batch) -> (state, metrics)`.
        batches: the training batches, positioned to follow `state.step`.
        num_steps: the step to stop at.
        checkpointer: where checkpoints go.
        metadata: returns the JSON metadata to store with a checkpoint (data iterator state, config…),
            called at save time.
        metrics_path: the JSON-lines metrics file (written by the first process only).
        log_every: write a metrics record every this many steps.
        checkpoint_every: save every this many steps.
        progress: show a progress bar.

    Returns:
        The final state.
    """
    start = int(state.step)
    log = MetricsLog(metrics_path if jax.process_index() == 0 else None, start)
    bar = progress_bar(num_steps, "training", "step", progress, initial=start)
    tokens_since, clock = 0, time.perf_counter()
    saved_at = start
    # The data position that goes with the state as it was before the current step: an interrupt
    # between drawing a batch and finishing its step must not skip that batch on resume.
    before_step = (start, metadata())
    _Stop.training, _Stop.requested = True, False
    try:
        for _ in range(start, num_steps):
            batch = next(batches)
            state, metrics = train_step(state, batch)
            values = {name: float(value) for name, value in metrics.items()}
            step = int(state.step)
            if not np.isfinite(values["loss"]):
                raise DivergedError(
                    f"the training loss became {values['loss']} at step {step}; nothing from it was saved, "
                    f"the newest checkpoint in {checkpointer.directory} is the last good state: lower "
                    "--learning-rate or --clip-norm, or raise --warmup-steps, and run again to resume"
                )
            tokens_since += batch.size
            bar.update(1)
            if step % log_every == 0 or step == num_steps:
                now = time.perf_counter()
                record = {"step": step, **values, "tokens_per_s": tokens_since / (now - clock)}
                log.write(record)
                bar.set_postfix(
                    loss=f"{values['loss']:.3f}", tok_s=f"{record['tokens_per_s']:.3g}", refresh=False
                )
                tokens_since, clock = 0, now
            if step % checkpoint_every == 0:
                checkpointer.save(step, state, metadata())
                saved_at = step
            checkpointer.seal_finished()
            before_step = (step, metadata())
            if _Stop.requested:  # a signal arrived during this step
                raise KeyboardInterrupt
    except DivergedError:
        checkpointer.wait()  # the saves before it hold good states: finish and seal them
        raise
    except KeyboardInterrupt:
        step = int(state.step)
        if step != saved_at:
            bar.write(f"interrupted: saving a checkpoint at step {step} in {checkpointer.directory}")
            checkpointer.save(step, state, before_step[1] if before_step[0] == step else metadata())
        checkpointer.wait()
        raise
    finally:
        _Stop.training = False
        bar.close()
        log.close()
    if int(state.step) != saved_at:
        checkpointer.save(int(state.step), state, metadata())
    checkpointer.wait()
    return state
