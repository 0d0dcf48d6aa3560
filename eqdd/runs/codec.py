"""A run as the codec sees it (`eqdd compress`): its [`eqdd.compression.CodecModel`][], the order
chosen for it on training data at the end of training (the paper's protocol, reference §5), kept in the
run's `results.json`, and the models files were compressed with, kept under the run's `models/` so
that training the run further never takes away what a file needs to be decompressed."""

import dataclasses
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
from jaxtyping import Int

from eqdd import compression, models
from eqdd.objectives import AbstractARDMObjective
from eqdd.runs import model_file
from eqdd.runs.registry import Run, load_run, save_model

DEFAULT_BUDGET = 50  # the paper's compression default (reference §4.5)
MODELS = "models"  # under a run directory: the models files were compressed with


def codec_model(run: Run) -> compression.CodecModel:
    """The codec's view of a run: EMA network, objective, `D`, `L_t`, fingerprint and image shape.

    `L_t` of steps never observed in training (barely trained runs, long processes) is interpolated
    between the observed steps of its stage (`Run.planning_losses`). The fingerprint covers
    the parameters and every setting that may not change when a run is resumed (so not the run
    directory, the data directory, the attention backend or the evaluation options); a setting added
    since fingerprints were fixed counts only away from its old value (`FINGERPRINT_NEUTRAL`), so no
    earlier file is refused for it.

    Raises:
        CompressionError: for a GGM run (its bound is not an exact likelihood to code with), and from
            [`eqdd.compression.CodecModel.create`][] for a model it cannot code with.
    """
    if not isinstance(run.objective, AbstractARDMObjective):
        raise compression.CompressionError(
            f"a run of {run.experiment} cannot code files: its bound is not an exact likelihood; give a run "
            "of experiments/text8_oaardm.py, cifar10_ardm.py or sc09_ardm.py"
        )
    config = run.config
    description = {
        k: v
        for k, v in dataclasses.asdict(config).items()
        if k not in config.RESUMABLE and not (k in config.FINGERPRINT_NEUTRAL and v == config.LEGACY[k])
    }
    rate = config.sample_rate if run.kind == "audio" else None
    return compression.CodecModel.create(
        run.model,
        run.objective,
        run.num_positions,
        run.planning_losses,
        description,
        run.image_shape,
        rate,
        getattr(config, "chars_per_token", 1),
    )


def choose_order(
    model: compression.CodecModel,
    chunks: Int[np.ndarray, "M D"],
    num_seeds: int,
    budget: int = DEFAULT_BUDGET,
) -> dict[str, Any]:
    """The best of the striped order and `num_seeds` seeded orders by exact code length on training
    chunks, at `budget` calls (capped at `D`), as `results.json` keeps it.

    Returns:
        `{"order", "seed", "budget", "num_chunks", "candidate_bits", "fingerprint"}`: the kind of order
        (`"striped"` or `"seeded"`) and its seed ([`eqdd.compression.Order`][]), what it was chosen
        with, the mean bits per symbol of every candidate by name, and the model's fingerprint (hex) the
        choice belongs to.
    """
    budget = min(budget, model.num_positions)
    order, bits = compression.choose_order(model, chunks, budget, num_seeds)
    return {
        "order": order.kind,
        "seed": order.seed,
        "budget": budget,
        "num_chunks": len(chunks),
        "candidate_bits": bits,
        "fingerprint": model.fingerprint.hex(),
    }


def choose_run_order(run: Run, train_chunks: Int[np.ndarray, "M D"]) -> dict[str, Any] | None:
    """At the end of a run: [`choose_order`][] among the striped order and `config.codec_orders` seeded
    ones on `train_chunks` for the run's [`codec_model`][] (printed), for its `results.json`; `None`
    when `codec_orders` is 0 or the run's model cannot code (the reason printed)."""
    if not run.config.codec_orders:
        return None
    try:
        model = codec_model(run)
    except compression.CompressionError as error:
        print(f"no order for eqdd compress: {error}", flush=True)
        return None
    chosen = choose_order(model, train_chunks, run.config.codec_orders)
    order = compression.Order(chosen["order"], chosen["seed"])
    print(
        f"order for eqdd compress: {order.describe()}, the best of striped and {run.config.codec_orders} "
        "seeded",
        flush=True,
    )
    return chosen


def saved_order(source: str | os.PathLike, model: compression.CodecModel) -> compression.Order | None:
    """The order a run chose for `model` ([`choose_order`][]), kept in its `results.json` or, for a
    model file, in the results it was exported with; `None` when there is none, one chosen for other
    parameters (a run trained further since), or, for a text model, one chosen before striped orders
    were candidates (a record without `"order"`): on text the striped order codes smaller than every
    seeded one (`benchmarks/RESULTS.md`, "The whole test split in the striped order"), so such a
    record is not a choice against it. For images and audio such a record still stands (their striped
    orders are unmeasured)."""
    try:
        if Path(source).is_file():
            results = model_file.read(Path(source))[0].get("provenance", {}).get("results") or {}
        else:
            results = json.loads((Path(source) / "results.json").read_text())
        chosen = results.get("codec_order")
    except (OSError, ValueError, model_file.ModelFileError):
        return None
    if not chosen or chosen.get("fingerprint") != model.fingerprint.hex():
        return None
    if "order" not in chosen and model.kind == "text":
        return None
    return compression.Order(chosen.get("order", "seeded"), int(chosen["seed"]))


def kept_model(run_dir: str | os.PathLike, fingerprint: bytes) -> Path:
    """Where a run directory keeps the model of `fingerprint`: `models/<fingerprint>.eqdd-model`."""
    return Path(run_dir) / MODELS / f"{fingerprint.hex()}{model_file.SUFFIX}"


def keep(run: Run, model: compression.CodecModel, source: str | os.PathLike) -> Path | None:
    """Before a file is compressed with the newest checkpoint of the run directory `source`: keep that
    model as a model file under the run (unless it is there already), out of the reach of checkpoint
    rotation.

    Returns:
        The file written, or `None` when there was nothing to write (already kept, or `source` is a
        model file, which never changes).
    """
    if Path(source).is_file():
        return None
    path = kept_model(source, model.fingerprint)
    return None if path.exists() else save_model(run, path)


def open_for(source: str | os.PathLike, fingerprint: bytes) -> Run:
    """The run to decompress a file of `fingerprint` with: the model the run directory `source` kept for
    it when there is one; for a model shipped with eqdd, the model an earlier release shipped with
    that fingerprint when there is one ([`eqdd.models.shipped_for`][]); else `source` itself (a model
    file, or the run's newest checkpoint)."""
    if Path(source).is_dir():
        kept = kept_model(source, fingerprint)
        return load_run(kept if kept.is_file() else source)
    earlier = models.shipped_for(fingerprint) if models.is_shipped(source) else None
    return load_run(earlier or source)
