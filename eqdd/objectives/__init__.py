"""Objectives: per-example losses and ELBO estimators, one module per model family."""

from eqdd.objectives.ardm import (
    OAARDMObjective,
    OATerms,
    oa_ardm_estimate,
    oa_ardm_policy_estimate,
    oa_ardm_policy_log_likelihood,
    oa_ardm_terms,
)

__all__ = [
    "OAARDMObjective",
    "OATerms",
    "oa_ardm_estimate",
    "oa_ardm_policy_estimate",
    "oa_ardm_policy_log_likelihood",
    "oa_ardm_terms",
]
