"""Objectives: per-example losses and ELBO estimators, one module per model family."""

from eqdd.objectives.ardm import (
    AbstractARDMObjective,
    OAARDMObjective,
    oa_ardm_estimate,
    oa_ardm_policy_estimate,
    oa_ardm_policy_log_likelihood,
    oa_ardm_terms,
)
from eqdd.objectives.base import AbstractObjective, Terms
from eqdd.objectives.ggm import (
    GGMObjective,
    expected_classifier_loss,
    ggm_bound_estimate,
    ggm_step_kl,
    ggm_terms,
    prior_kl,
    sampled_classifier_loss,
    step_kl,
)
from eqdd.objectives.upscale import (
    UpscaleObjective,
    upscale_estimate,
    upscale_inputs,
    upscale_policy_estimate,
    upscale_policy_log_likelihood,
    upscale_terms,
)

__all__ = [
    "AbstractARDMObjective",
    "AbstractObjective",
    "GGMObjective",
    "OAARDMObjective",
    "Terms",
    "UpscaleObjective",
    "expected_classifier_loss",
    "ggm_bound_estimate",
    "ggm_step_kl",
    "ggm_terms",
    "oa_ardm_estimate",
    "oa_ardm_policy_estimate",
    "oa_ardm_policy_log_likelihood",
    "oa_ardm_terms",
    "prior_kl",
    "sampled_classifier_loss",
    "step_kl",
    "upscale_estimate",
    "upscale_inputs",
    "upscale_policy_estimate",
    "upscale_policy_log_likelihood",
    "upscale_terms",
]
