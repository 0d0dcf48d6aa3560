"""Checkpoints with orbax: the state's arrays plus JSON metadata, written atomically, rotated.

orbax writes each checkpoint into a temporary directory and renames it when complete, so a run
killed mid-save leaves the previous checkpoint intact and the partial one is ignored.
"""

from pathlib import Path
from typing import Any

import equinox as eqx
import jax
import orbax.checkpoint as ocp


class Checkpointer:
    """Save and restore a pytree of arrays (e.g. [`eqdd.train.TrainState`][]) with JSON metadata."""

    def __init__(self, directory: str | Path, max_to_keep: int = 2):
        """**Arguments:**

        - `directory`: where the numbered checkpoints live (created if missing).
        - `max_to_keep`: how many of the newest checkpoints are kept.
        """
        self.directory = Path(directory).absolute()
        self._manager = ocp.CheckpointManager(
            self.directory,
            options=ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, create=True),
        )

    def latest_step(self) -> int | None:
        """The step of the newest complete checkpoint, or `None`."""
        return self._manager.latest_step()

    def save(self, step: int, state: Any, metadata: dict[str, Any]) -> None:
        """Start writing a checkpoint in the background (see [`eqdd.train.Checkpointer.wait`][])."""
        self._manager.save(
            step,
            args=ocp.args.Composite(
                state=ocp.args.StandardSave(eqx.filter(state, eqx.is_array)),
                metadata=ocp.args.JsonSave(metadata),
            ),
            force=True,
        )

    def restore(self, like: Any, step: int | None = None) -> tuple[Any, dict[str, Any]]:
        """Restore into the structure of `like` (shapes, dtypes, static parts).

        Arguments:
            like: a freshly initialised state of the same configuration.
            step: which checkpoint; the newest by default.

        Returns:
            The restored state and its metadata.
        """
        step = self.latest_step() if step is None else step
        arrays, static = eqx.partition(like, eqx.is_array)
        target = jax.tree.map(ocp.utils.to_shape_dtype_struct, arrays)
        restored = self._manager.restore(
            step,
            args=ocp.args.Composite(state=ocp.args.StandardRestore(target), metadata=ocp.args.JsonRestore()),
        )
        return eqx.combine(restored.state, static), dict(restored.metadata)

    def metadata(self, step: int | None = None) -> dict[str, Any]:
        """Only the JSON metadata of a checkpoint (the newest by default)."""
        step = self.latest_step() if step is None else step
        restored = self._manager.restore(step, args=ocp.args.Composite(metadata=ocp.args.JsonRestore()))
        return dict(restored.metadata)

    def wait(self) -> None:
        """Block until every pending save is on disk."""
        self._manager.wait_until_finished()

    def close(self) -> None:
        self._manager.wait_until_finished()
        self._manager.close()
