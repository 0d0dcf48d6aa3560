"""Forward processes: pure functions with no parameters."""

from eqdd.processes.absorbing import (
    corrupt,
    current_mask,
    revealed_mask,
    sample_order,
    sample_step,
    segments,
)

__all__ = ["corrupt", "current_mask", "revealed_mask", "sample_order", "sample_step", "segments"]
