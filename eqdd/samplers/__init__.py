"""Samplers: exact categorical draws and the OA-ARDM, Upscale ARDM and GGM generators.

Every generator has one signature, `sample_x(denoiser, process, key, num_samples, num_positions, *,
options)`, with the forward process object the model was trained with (`eqdd.processes`).
"""

from eqdd.samplers.ancestral import sample_oa_ardm
from eqdd.samplers.categorical import sample_categorical, sample_exponential
from eqdd.samplers.heat_bath import reverse_step_log_probs, sample_ggm, top_p_filter
from eqdd.samplers.upscale import sample_upscale, sample_upscale_stages

__all__ = [
    "reverse_step_log_probs",
    "sample_categorical",
    "sample_exponential",
    "sample_ggm",
    "sample_oa_ardm",
    "sample_upscale",
    "sample_upscale_stages",
    "top_p_filter",
]
