"""eqdd: discrete diffusion models in JAX and Equinox.

The packages follow the flow of data: `processes` (forward corruption, no parameters) ->
`denoisers` (Equinox networks) -> `objectives` (losses and bounds, in bits) -> `train` (state,
step, checkpoints, loop, evaluation); `samplers` run a denoiser backwards, `policy` plans their
step budgets; `data` provides corpora.
"""

from eqdd import compression, config, data, denoisers, objectives, policy, processes, samplers, train

__version__ = "0.1.0"
__all__ = [
    "compression",
    "config",
    "data",
    "denoisers",
    "objectives",
    "policy",
    "processes",
    "samplers",
    "train",
]
