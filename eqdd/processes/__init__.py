"""Forward processes: a small configuration object per process (`AbsorbingProcess`, `UpscaleTransitions`,
`GlauberProcess`) and the maths as pure functions of their modules."""

from eqdd.processes.absorbing import (
    AbsorbingProcess,
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
    "AbsorbingProcess",
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
