"""Training metrics as JSON lines (one object per logged step), and plots of them."""

import json
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np


class MetricsLog:
    """Append-only JSON-lines metrics that survive a resume.

    Opening the log at `start_step` drops lines logged after it by a run that was killed before its
    next checkpoint, so the file always describes one consistent history, and lines that are not JSON
    (a write torn by a kill); the file is rewritten atomically. With `path=None` (on the processes of a
    multi-host run that do not write files) it writes nothing.
    """

    def __init__(self, path: str | Path | None, start_step: int):
        self._file = None
        if path is None:
            return
        self.path = Path(path)
        kept = []
        if self.path.exists():
            kept = [record for record in _records(self.path) if record.get("step", 0) <= start_step]
        temporary = self.path.with_name(f".{self.path.name}.tmp")
        temporary.write_text("".join(json.dumps(record) + "\n" for record in kept))
        os.replace(temporary, self.path)
        self._file = open(self.path, "a")

    def write(self, record: dict[str, Any]) -> None:
        if self._file is not None:
            self._file.write(json.dumps(record) + "\n")
            self._file.flush()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()


def _records(path: Path) -> list[dict[str, Any]]:
    records = []
    for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
        try:
            record = json.loads(line) if line.strip() else None
        except ValueError:
            record = None
            print(f"eqdd: ignoring line {number} of {path}: not JSON (a write cut short)", file=sys.stderr)
        if isinstance(record, dict):
            records.append(record)
    return records


def read_metrics(path: str | Path) -> list[dict[str, Any]]:
    """The records of a metrics file, in order; a line that is not a JSON object (a write torn by a
    kill) is skipped with a one-line notice."""
    return _records(Path(path))


def plot_training(metrics_path: str | Path, step_losses: np.ndarray | None, out_path: str | Path) -> Path:
    """Save a PNG with the training loss curve and, if given, the per-step losses `L_t`.

    Arguments:
        metrics_path: the JSON-lines metrics file.
        step_losses: the `L_t` curve (bits per dimension per step), or `None`.
        out_path: where to write the PNG.

    Returns:
        The path written.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    records = read_metrics(metrics_path)
    panels = 1 if step_losses is None else 2
    fig, axes = plt.subplots(1, panels, figsize=(6 * panels, 4), squeeze=False)
    steps = [r["step"] for r in records]
    axes[0, 0].plot(steps, [r["nelbo"] for r in records], lw=0.8, label="training nelbo (batch)")
    axes[0, 0].set(xlabel="optimiser step", ylabel="bits per dimension", title="training loss")
    axes[0, 0].grid(alpha=0.3)
    axes[0, 0].legend()
    if step_losses is not None:
        d = len(step_losses)
        axes[0, 1].plot(np.arange(d), np.asarray(step_losses) * d, lw=0.8)
        axes[0, 1].set(
            xlabel="step t (revealed positions)",
            ylabel="D · L_t (bits per dimension)",
            title="per-step loss components",
        )
        axes[0, 1].grid(alpha=0.3)
    fig.tight_layout()
    out_path = Path(out_path)
    fig.savefig(out_path, dpi=120)
    plt.close(fig)
    return out_path
