"""Objectives: per-example losses and ELBO estimators, one module per model family."""

from eqdd.objectives.ardm import (
    STEP_SAMPLINGS,
    AbstractARDMObjective,
    OAARDMObjective,
    oa_ardm_estimate,
    oa_ardm_policy_estimate,
    oa_ardm_policy_log_likelihood,
    oa_ardm_terms,
    step_proposal,
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
    "STEP_SAMPLINGS",
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
    "step_proposal",
    "upscale_estimate",
    "upscale_inputs",
    "upscale_policy_estimate",
    "upscale_policy_log_likelihood",
    "upscale_terms",
]
