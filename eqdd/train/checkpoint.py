"""Checkpoints with orbax: the state's arrays plus JSON metadata, written atomically, rotated, sealed
with checksums, and restored from the newest intact one.

orbax writes each checkpoint into a temporary directory and renames it when complete, so a run killed
mid-save leaves the previous checkpoint intact and the partial one is ignored. Once a save has finished,
eqdd *seals* it: the SHA-256 of every file goes into `CHECKSUMS` inside the step's directory (written
atomically); a trainer seals each save at the first step after it is on disk, so a run killed between
saves (SIGKILL, no handler) resumes from the newest one. Restoring verifies the seal; a checkpoint that
is unsealed (its save never finished, or a stray directory with a step's name), has a missing, changed
or unreadable file, or fails to load is reported in one line on stderr, and the newest intact one is
used instead. A trainer that resumes moves broken directories aside (`STEP.damaged`, kept for
inspection) and deletes orbax's temporary directories; it also moves a step's directory aside before
saving that step again. A directory whose checkpoints carry no seals at all was written before eqdd
sealed them: its checkpoints are used unverified, newest first, skipping any that fails to load.
"""

import hashlib
import json
import os
import shutil
import sys
from pathlib import Path
from typing import Any

import equinox as eqx
import jax
import orbax.checkpoint as ocp

CHECKSUMS = "eqdd-checksums.json"


class CheckpointError(RuntimeError):
    """No intact checkpoint in a directory that has some."""


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def file_checksums(step_dir: Path) -> dict[str, str]:
    """The SHA-256 of every file under `step_dir` (the seal excluded), by relative path."""
    return {
        path.relative_to(step_dir).as_posix(): _sha256(path)
        for path in sorted(step_dir.rglob("*"))
        if path.is_file() and path.name != CHECKSUMS
    }


def seal(step_dir: Path) -> None:
    """Write the checksums of a finished checkpoint into it, atomically."""
    temporary = step_dir / f".{CHECKSUMS}.tmp"
    temporary.write_text(json.dumps(file_checksums(step_dir), indent=1))
    os.replace(temporary, step_dir / CHECKSUMS)


def seal_problem(step_dir: Path) -> str | None:
    """What is wrong with a checkpoint's files against its seal, or `None` when they match."""
    try:
        expected = json.loads((step_dir / CHECKSUMS).read_text())
    except FileNotFoundError:
        return "it is unsealed (its save did not finish)"
    except (OSError, ValueError):
        return "its checksum file is unreadable"
    try:
        actual = file_checksums(step_dir)
    except OSError as error:
        return f"a file cannot be read ({error.strerror})"
    missing = sorted(set(expected) - set(actual))
    if missing:
        return f"{len(missing)} file(s) are missing ({missing[0]}, ...)"
    changed = sorted(name for name in expected if expected[name] != actual[name])
    if changed:
        return f"{len(changed)} file(s) do not match their checksums ({changed[0]}, ...)"
    return None


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
        self._unsealed: list[int] = []
        self._broken: set[int] = set()  # steps found damaged, incomplete or unloadable (reported)
        self._problems: dict[int, str | None] = {}  # seal checks done by this process, by step

    def _steps(self) -> list[int]:
        return sorted(self._manager.all_steps(), reverse=True)

    def _sealed_anywhere(self) -> bool:
        return any((self.directory / str(step) / CHECKSUMS).exists() for step in self._steps())

    def _report(self, step: int, problem: str) -> None:
        if step not in self._broken:
            self._broken.add(step)
            print(f"eqdd: skipping checkpoint {step} in {self.directory}: {problem}", file=sys.stderr)

    def _candidates(self) -> list[int]:
        """Steps worth trying, newest first: the ones whose seal holds (every step when nothing in the
        directory is sealed: a run written before seals); the others are reported."""
        if not self._sealed_anywhere():
            return self._steps()
        intact = []
        for step in self._steps():
            if step not in self._problems:
                self._problems[step] = seal_problem(self.directory / str(step))
            problem = self._problems[step]
            if problem is None:
                intact.append(step)
            else:
                self._report(step, problem)
        return intact

    def latest_step(self) -> int | None:
        """The step of the newest intact checkpoint, or `None` when there is none."""
        candidates = self._candidates()
        return candidates[0] if candidates else None

    def save(self, step: int, state: Any, metadata: dict[str, Any]) -> None:
        """Start writing a checkpoint in the background (see [`eqdd.train.Checkpointer.wait`][]);
        the previous one is finished and sealed first. A damaged checkpoint of the same step is moved
        aside (`STEP.damaged`)."""
        self.wait()
        if (self.directory / str(step)).exists():
            self._set_aside(step)
        self._manager.save(
            step,
            args=ocp.args.Composite(
                state=ocp.args.StandardSave(eqx.filter(state, eqx.is_array)),
                metadata=ocp.args.JsonSave(metadata),
            ),
            force=True,
        )
        self._unsealed.append(step)

    def _set_aside(self, step: int) -> None:
        """Rename a step's directory to `STEP.damaged` (or `STEP.damaged-N`), out of orbax's sight."""
        aside, number = self.directory / f"{step}.damaged", 1
        while aside.exists():
            number += 1
            aside = self.directory / f"{step}.damaged-{number}"
        (self.directory / str(step)).rename(aside)
        self._manager.reload()
        self._problems.pop(step, None)
        self._broken.discard(step)

    def tidy(self) -> None:
        """Delete orbax's temporary directories (saves that never finished) and move every checkpoint
        found broken so far aside (see `save`), so that a resumed run's rotation never keeps a broken
        checkpoint in place of an intact one. Only the run's trainer may call this: a reader could
        take a save in progress for a stray one."""
        for temporary in self.directory.glob("*.orbax-checkpoint-tmp*"):
            shutil.rmtree(temporary, ignore_errors=True)
        for step in sorted(self._broken):
            if (self.directory / str(step)).exists():
                self._set_aside(step)

    def _restore(self, step: int, items: dict[str, Any]):
        return self._manager.restore(step, args=ocp.args.Composite(**items))

    def _first_that_loads(self, items: dict[str, Any], step: int | None):
        """Restore `items` from `step`, or from the newest intact checkpoint that loads."""
        if step is not None:
            return self._restore(step, items)
        for candidate in self._candidates():
            try:
                return self._restore(candidate, items)
            except Exception as error:  # a damaged file that the seal did not cover, or no seal
                self._report(candidate, f"it fails to load ({type(error).__name__}: {str(error)[:120]})")
        raise CheckpointError(f"no intact checkpoint in {self.directory} (see the messages above)")

    def restore(self, like: Any, step: int | None = None) -> tuple[Any, dict[str, Any]]:
        """Restore into the structure of `like` (shapes, dtypes, static parts).

        Arguments:
            like: a freshly initialised state of the same configuration.
            step: which checkpoint; by default the newest intact one.

        Returns:
            The restored state and its metadata.

        Raises:
            CheckpointError: when no checkpoint is intact.
        """
        arrays, static = eqx.partition(like, eqx.is_array)
        target = jax.tree.map(ocp.utils.to_shape_dtype_struct, arrays)
        items = {"state": ocp.args.StandardRestore(target), "metadata": ocp.args.JsonRestore()}
        restored = self._first_that_loads(items, step)
        return eqx.combine(restored.state, static), dict(restored.metadata)

    def metadata(self, step: int | None = None) -> dict[str, Any]:
        """Only the JSON metadata of a checkpoint (by default the newest intact one)."""
        restored = self._first_that_loads({"metadata": ocp.args.JsonRestore()}, step)
        return dict(restored.metadata)

    def wait(self) -> None:
        """Block until every pending save is on disk, and seal it."""
        self._manager.wait_until_finished()
        self._seal_pending()

    def seal_finished(self) -> None:
        """Seal the pending saves if they are on disk, without waiting for one in progress (a trainer
        calls this every step, so a run killed between two saves resumes from the newer one)."""
        if self._unsealed and not self._manager.is_saving_in_progress():
            self._seal_pending()

    def _seal_pending(self) -> None:
        for step in self._unsealed:
            # one writer: the first process (no save in progress: orbax has every process's files)
            if jax.process_index() == 0 and (self.directory / str(step)).is_dir():  # not rotated away
                seal(self.directory / str(step))
            self._problems.pop(step, None)  # a verdict taken before the seal is stale
        self._unsealed.clear()

    def close(self) -> None:
        self.wait()
        self._manager.close()
