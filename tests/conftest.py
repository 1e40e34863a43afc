import atexit
import os
import shutil
import tempfile
import time

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

# The tests run at the trial's desk: "today" in the tests (dt.date.today(), when they build a
# trial through the services) is the date in Beijing, as it is for the command they run, which
# takes today in its sites' zone (cli.dates), whatever the zone of the machine running them.
# Tests of another zone say so (tests/cli/test_site_today.py sets TZ=UTC for the command).
os.environ["TZ"] = "Asia/Shanghai"
if hasattr(time, "tzset"):
    time.tzset()

# What ``schedule`` keeps on disk (services/queries/kept.py) goes to this run's own directory,
# never to the cache of the person running the tests; every command a test runs inherits it.
# Entries are named by everything they depend on, so the tests may share them.
_CACHE = tempfile.mkdtemp(prefix="sarcoma-sched-cache-")
os.environ["XDG_CACHE_HOME"] = _CACHE
atexit.register(shutil.rmtree, _CACHE, ignore_errors=True)
