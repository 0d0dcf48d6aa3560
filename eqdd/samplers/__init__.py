"""Samplers: exact categorical draws and the OA-ARDM generators."""

from eqdd.samplers.ancestral import sample_oa_ardm
from eqdd.samplers.categorical import sample_categorical, sample_exponential

__all__ = ["sample_categorical", "sample_exponential", "sample_oa_ardm"]
