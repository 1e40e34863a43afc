import os

from hypothesis import HealthCheck, settings

# CI runs more examples and a fixed seed sequence, so a landing is never decided by luck; local
# runs stay quick and random so they keep finding new cases.
settings.register_profile(
    "ci",
    max_examples=300,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("dev", max_examples=60, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))
