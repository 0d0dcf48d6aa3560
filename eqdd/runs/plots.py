"""The picture of a run that every experiment writes: `training.png`."""

from pathlib import Path

import numpy as np

from eqdd.train.metrics import read_metrics


def plot_training(metrics_path: str | Path, step_losses: np.ndarray | None, out_path: str | Path) -> Path:
    """Save a PNG with the training loss curve and, if given, the per-step losses `L_t`.

    Arguments:
        metrics_path: the JSON-lines metrics file.
        step_losses: the `L_t` curve (bits per dimension per step; NaN where not measured), or `None`.
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
        losses = np.asarray(step_losses, np.float64)
        d = len(losses)
        measured = np.isfinite(losses)  # an evaluation of a long process leaves steps it never drew
        axes[0, 1].plot(np.arange(d)[measured], losses[measured] * d, lw=0.8)
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
