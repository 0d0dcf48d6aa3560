"""Forward processes: pure functions with no parameters."""

from eqdd.processes.absorbing import (
    corrupt,
    current_mask,
    revealed_mask,
    sample_order,
    sample_step,
    segments,
)
from eqdd.processes.glauber import GlauberProcess, unigram_law
from eqdd.processes.upscale import UpscaleTransitions

__all__ = [
    "GlauberProcess",
    "UpscaleTransitions",
    "corrupt",
    "current_mask",
    "revealed_mask",
    "sample_order",
    "sample_step",
    "segments",
    "unigram_law",
]
