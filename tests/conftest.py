import os

from hypothesis import HealthCheck, settings

# Compilation dominates the first example of a jitted property test, so no deadline; few examples,
# derandomised, so the suite is fast and reproducible.
settings.register_profile(
    "ci",
    deadline=None,
    max_examples=25,
    derandomize=True,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.load_profile(os.getenv("HYPOTHESIS_PROFILE", "ci"))
