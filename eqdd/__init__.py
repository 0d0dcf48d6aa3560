"""eqdd: discrete diffusion models in JAX and Equinox.

The packages follow the flow of data: `processes` (forward corruption, no parameters) ->
`denoisers` (Equinox networks) -> `objectives` (losses and bounds, in bits) -> `train` (state,
step, checkpoints, loop, evaluation); `samplers` run a denoiser backwards, `policy` plans their
step budgets; `data` provides corpora; `runs` holds the experiments, and [`load_run`][] opens a
trained run of any of them.
"""

from eqdd import compression, config, data, denoisers, objectives, policy, processes, runs, samplers, train
from eqdd.runs import Run, load_run

__version__ = "0.1.0"
__all__ = [
    "Run",
    "load_run",
    "compression",
    "config",
    "data",
    "denoisers",
    "objectives",
    "policy",
    "processes",
    "runs",
    "samplers",
    "train",
]
