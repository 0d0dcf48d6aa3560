"""A run as the codec sees it (`eqdd compress`): its [`eqdd.compression.CodecModel`][], and the order
chosen for it on training data at the end of training (the paper's protocol, reference §5), kept in the
run's `results.json`."""

import dataclasses
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
from jaxtyping import Int

from eqdd import compression
from eqdd import policy as policies
from eqdd.objectives import AbstractARDMObjective
from eqdd.train import TrainState
from eqdd.train.session import TrainingConfig

DEFAULT_BUDGET = 50  # the paper's compression default (reference §4.5)


def codec_model(
    config: TrainingConfig,
    state: TrainState,
    objective: AbstractARDMObjective,
    num_positions: int,
    image_shape: tuple[int, int, int] | None = None,
) -> compression.CodecModel:
    """The codec's view of a run: EMA network, objective, `D`, `L_t`, fingerprint and image shape.

    `L_t` of steps never observed in training (barely trained runs) is the largest observed value
    ([`eqdd.policy.fill_unseen`][]). The fingerprint covers the parameters and every setting that may
    not change when a run is resumed (so not the run directory, the data directory, the attention
    backend or the evaluation options).

    Arguments:
        config: the run's config.
        state: its training state (the newest).
        objective: its objective.
        num_positions: `D`.
        image_shape: `(H, W, C)` of an image run, `None` for text.
    """
    description = {k: v for k, v in dataclasses.asdict(config).items() if k not in config.RESUMABLE}
    losses = policies.fill_unseen(np.asarray(state.step_losses.values), np.asarray(state.step_losses.seen))
    return compression.CodecModel.create(
        state.ema_model, objective, num_positions, losses, description, image_shape
    )


def choose_order(
    model: compression.CodecModel,
    chunks: Int[np.ndarray, "M D"],
    num_candidates: int,
    budget: int = DEFAULT_BUDGET,
) -> dict[str, Any]:
    """The best of `num_candidates` seeded orders by exact code length on training chunks, at the
    optimal policy of `budget` calls (capped at `D`), as `results.json` keeps it.

    Returns:
        `{"seed", "budget", "num_chunks", "candidate_bits", "fingerprint"}`: the seed for
        [`eqdd.compression.schemes.orders_from_seed`][], what it was chosen with, the mean bits per
        symbol of every candidate, and the model's fingerprint (hex) the choice belongs to.
    """
    budget = min(budget, model.num_positions)
    seed, bits = compression.choose_order(model, chunks, model.plan(budget)[0], num_candidates)
    return {
        "seed": seed,
        "budget": budget,
        "num_chunks": len(chunks),
        "candidate_bits": bits,
        "fingerprint": model.fingerprint.hex(),
    }


def choose_run_order(
    config: TrainingConfig,
    state: TrainState,
    objective: AbstractARDMObjective,
    train_chunks: Int[np.ndarray, "M D"],
    image_shape: tuple[int, int, int] | None = None,
) -> dict[str, Any] | None:
    """At the end of a run: [`choose_order`][] among `config.codec_orders` candidates on `train_chunks`
    for the run's [`codec_model`][] (printed), for its `results.json`; `None` when `codec_orders` is 0."""
    if not config.codec_orders:
        return None
    model = codec_model(config, state, objective, train_chunks.shape[1], image_shape)
    chosen = choose_order(model, train_chunks, config.codec_orders)
    print(f"order for eqdd compress: seed {chosen['seed']} of {config.codec_orders}", flush=True)
    return chosen


def saved_order(run_dir: str | os.PathLike, model: compression.CodecModel) -> int | None:
    """The order seed a run chose for `model` ([`choose_order`][]), or `None` when its `results.json`
    holds none or one chosen for other parameters (a run trained further since)."""
    path = Path(run_dir) / "results.json"
    try:
        chosen = json.loads(path.read_text()).get("codec_order")
    except (OSError, ValueError):
        return None
    if not chosen or chosen.get("fingerprint") != model.fingerprint.hex():
        return None
    return int(chosen["seed"])
