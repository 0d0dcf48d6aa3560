import os

import pytest
from hypothesis import HealthCheck, settings

from tests.scripts import write_text8

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


@pytest.fixture(scope="session")
def text8_dir(tmp_path_factory):
    """A directory with a small synthetic corpus in text8's format (`text8.zip`)."""
    return write_text8(tmp_path_factory.mktemp("text8"))
