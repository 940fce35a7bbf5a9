"""Hypothesis settings for every property and fuzz test of the suite.

The default profile ("ci") is derandomized and keeps no example database: the same examples run
on every machine and every run, so a red test is red for everyone and a green run is not luck;
no deadline (the machine is shared and slow at times: timing is for bench/, not tests).
`HYPOTHESIS_PROFILE=explore` draws fresh random examples, more of them, to hunt for new findings;
a finding becomes an explicit regression test (or `@example`) before it is fixed.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci",
    derandomize=True,
    database=None,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
    "explore",
    parent=settings.get_profile("ci"),
    derandomize=False,
    max_examples=1000,
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
