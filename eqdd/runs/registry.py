"""One way in: [`load_run`][] opens a run directory of any experiment, or a model file written by
[`save_model`][], and returns a [`Run`][].

A run's checkpoints save the name of its experiment (`TrainingConfig.EXPERIMENT`) beside its config,
and each experiment's module says how to rebuild one: its `Config`, `data_shape(config)` and
`template(config, rebuild)` (a model and objective of the right shapes). Runs saved before the name
was kept are recognised by the settings only their experiment has.
"""

import dataclasses
import io
import math
from pathlib import Path
from typing import Any

import equinox as eqx
import numpy as np

from eqdd import policy as policies
from eqdd.config import ConfigError
from eqdd.objectives import AbstractARDMObjective, GGMObjective
from eqdd.runs import audio, images, model_file, session, text8_ggm, text8_oaardm
from eqdd.train import StepLosses, TrainState

EXPERIMENTS = {module.Config.EXPERIMENT: module for module in (text8_oaardm, text8_ggm, images, audio)}


@dataclasses.dataclass(frozen=True)
class Run:
    """A trained model with everything needed to use it: what sampling, evaluation and the codec take.

    Attributes:
        config: the settings it was started with (its `run_dir` where the run is now).
        objective: its objective, which knows the forward process.
        model: the EMA network, which every figure of a run is measured with.
        step_losses: the `L_t` tracked in training, which step budgets are planned on.
        data_shape: the shape of one example: `(D,)` for text, `(H, W, C)` for images.
        step: the optimiser steps it was trained for.
        rebuild: what rebuilding the objective needs besides the config (see `eqdd.runs.session.train`).
    """

    config: session.TrainingConfig
    objective: AbstractARDMObjective | GGMObjective
    model: eqx.Module
    step_losses: StepLosses
    data_shape: tuple[int, ...]
    step: int = 0
    rebuild: dict[str, Any] = dataclasses.field(default_factory=dict)

    @classmethod
    def from_state(
        cls,
        config: session.TrainingConfig,
        state: TrainState,
        objective: AbstractARDMObjective | GGMObjective,
        data_shape: tuple[int, ...],
        rebuild: dict[str, Any] | None = None,
    ) -> "Run":
        """The run a training state stands for (its EMA network)."""
        return cls(
            config, objective, state.ema_model, state.step_losses, data_shape, int(state.step), rebuild or {}
        )

    @property
    def experiment(self) -> str:
        """The experiment's name, e.g. `"text8_oaardm"` (the script `experiments/<name>.py`)."""
        return self.config.EXPERIMENT

    @property
    def run_dir(self) -> Path:
        return Path(self.config.run_dir)

    @property
    def kind(self) -> str:
        """`"text"`, `"images"` or `"audio"` (the experiment's `Config.KIND`)."""
        return self.config.KIND

    @property
    def image_shape(self) -> tuple[int, int, int] | None:
        """`(H, W, C)` for an image run, `None` otherwise."""
        return self.data_shape if self.kind == "images" else None

    @property
    def num_positions(self) -> int:
        """`D`, the number of variables of one example."""
        return math.prod(self.data_shape)

    @property
    def num_steps(self) -> int:
        """The number of diffusion steps `t` (and of tracked `L_t`)."""
        return self.objective.num_steps(self.num_positions)

    @property
    def planning_losses(self) -> np.ndarray:
        """The tracked `L_t` ready for planning step budgets: steps never observed in training
        interpolated inside their stage ([`eqdd.policy.fill_unseen`][])."""
        values, seen = np.asarray(self.step_losses.values), np.asarray(self.step_losses.seen)
        return policies.fill_unseen(values, seen, self.objective.num_stages)


def _experiment_of(metadata: dict[str, Any], where: Path) -> str:
    """The experiment a checkpoint's metadata names; for a run saved before names were kept, the one whose
    settings it has (only the GGM has `num_sweeps`, only image runs have `dataset`)."""
    experiment = metadata.get("experiment")
    if experiment is None:
        settings = metadata["config"]
        if "num_sweeps" in settings:
            return text8_ggm.Config.EXPERIMENT
        return images.Config.EXPERIMENT if "dataset" in settings else text8_oaardm.Config.EXPERIMENT
    if experiment not in EXPERIMENTS:
        raise ConfigError(
            f"{where} belongs to the experiment {experiment!r}, which this version of eqdd does not have "
            f"(it has {', '.join(EXPERIMENTS)}): use the eqdd that wrote it"
        )
    return experiment


def _config(metadata: dict[str, Any], where: Path, run_dir: Path) -> session.TrainingConfig:
    module = EXPERIMENTS[_experiment_of(metadata, where)]
    config = session.config_from_saved(metadata["config"], module.Config, where)
    return dataclasses.replace(config, run_dir=str(run_dir))


def _checkpoint_metadata(run_dir: Path) -> dict[str, Any]:
    try:
        return session.saved_metadata(run_dir)
    except FileNotFoundError:
        raise FileNotFoundError(
            f"{run_dir} holds no checkpoint; give the --run-dir of a run of "
            f"{', '.join(f'experiments/{name}.py' for name in EXPERIMENTS)}, or a model file"
        ) from None


def load_config(path: str | Path) -> session.TrainingConfig:
    """The config of the run in `path` (a run directory or a model file), without building the model:
    its experiment's `Config`, with `run_dir` set to where the run is now.

    Raises:
        FileNotFoundError: when `path` is neither a model file nor a directory with a checkpoint.
        ConfigError: for a run of an experiment this eqdd does not have, or with settings it does not
            know (written by a newer eqdd).
        ModelFileError: for a damaged model file.
    """
    path = Path(path)
    if path.is_file():
        metadata, _ = model_file.read(path)
        return _config(metadata, path, Path(metadata["config"]["run_dir"]))
    return _config(_checkpoint_metadata(path), path, path)


def _template(config: session.TrainingConfig, rebuild: dict[str, Any], shape: tuple[int, ...] | None = None):
    """The data shape (`shape`, else the experiment's for `config`), a model and objective of the right
    shapes, and the number of steps."""
    module = EXPERIMENTS[config.EXPERIMENT]
    shape = tuple(module.data_shape(config) if shape is None else shape)
    model, objective = module.template(config, rebuild, shape)
    return shape, model, objective, objective.num_steps(math.prod(shape))


def _mismatch(where: Path, config: session.TrainingConfig, shape, error: Exception) -> ConfigError:
    return ConfigError(
        f"{where} does not fit the model its settings describe ({config.EXPERIMENT}, examples of shape "
        f"{shape}): {error}"
    )


def load_run(path: str | Path) -> Run:
    """Open a run at its newest checkpoint, or a model file, whatever its experiment.

    Arguments:
        path: a run directory of any script in `experiments/`, or a file from [`save_model`][].

    Returns:
        The [`Run`][].

    Raises:
        FileNotFoundError: when `path` is neither a model file nor a directory with a checkpoint.
        ConfigError: for a run this version of eqdd cannot rebuild (another experiment, newer settings,
            or arrays that do not fit its own settings).
        ModelFileError: for a damaged model file.
        ImageDataError: when an image-folder run's folder cannot be read (its image size comes from it).
        Text8Error: when a GGM run saved before its noise counts were kept cannot read its training data.
    """
    path = Path(path)
    if path.is_file():
        return _load_model_file(path)
    metadata = _checkpoint_metadata(path)
    config, rebuild = _config(metadata, path, path), metadata.get("rebuild", {})
    shape, model, objective, num_steps = _template(config, rebuild)
    try:
        state = session.restore_state(config, model, num_steps)
    except ConfigError:
        raise
    except ValueError as error:
        raise _mismatch(path, config, shape, error) from None
    return Run.from_state(config, state, objective, shape, rebuild)


def save_model(run: Run, path: str | Path, provenance: dict[str, Any] | None = None) -> Path:
    """Write the run's model (EMA network, tracked `L_t`, settings, step) as one immutable file, for
    [`load_run`][] anywhere: it needs neither the run directory nor the training data. Written
    atomically, with a checksum of its arrays that [`load_run`][] verifies.

    Arguments:
        run: the run.
        path: where to write.
        provenance: where the model came from (JSON: data, commit, command, figures), kept in the file.

    Returns:
        The path written.
    """
    arrays = io.BytesIO()
    eqx.tree_serialise_leaves(arrays, (run.model, run.step_losses))
    metadata = {
        "experiment": run.experiment,
        "config": dataclasses.asdict(run.config),
        "rebuild": run.rebuild,
        "step": run.step,
        "data_shape": list(run.data_shape),
        "provenance": provenance or {},
    }
    return model_file.write(Path(path), metadata, arrays.getvalue())


def _load_model_file(path: Path) -> Run:
    metadata, arrays = model_file.read(path)
    config = _config(metadata, path, Path(metadata["config"]["run_dir"]))
    shape, model, objective, num_steps = _template(config, metadata["rebuild"], metadata["data_shape"])
    try:
        model, step_losses = eqx.tree_deserialise_leaves(
            io.BytesIO(arrays), (model, StepLosses.empty(num_steps))
        )
    except (ValueError, RuntimeError) as error:
        raise _mismatch(path, config, shape, error) from None
    return Run(config, objective, model, step_losses, shape, int(metadata["step"]), metadata["rebuild"])
