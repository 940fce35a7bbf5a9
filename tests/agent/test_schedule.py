"""When the agent scans: bursts debounced within a bound, periodic rescans, grace ends, retries."""

from __future__ import annotations

from kubevirt_usb.agent.schedule import (
    Burst,
    Schedule,
    after_failure,
    after_success,
    burst_fires_at,
    extend,
    next_run,
    starting,
)

QUIET, MAX = 0.2, 1.0


def test_a_single_event_fires_after_the_quiet_time() -> None:
    assert burst_fires_at(extend(None, 10.0), quiet=QUIET, max_delay=MAX) == 10.2


def test_a_burst_waits_for_silence_but_never_past_the_bound() -> None:
    burst = None
    for at in (10.0, 10.1, 10.25):
        burst = extend(burst, at)
    assert burst == Burst(first=10.0, last=10.25)
    assert burst_fires_at(burst, quiet=QUIET, max_delay=MAX) == 10.45
    for at in (10.4, 10.55, 10.7, 10.85, 10.95):
        burst = extend(burst, at)
    assert burst_fires_at(burst, quiet=QUIET, max_delay=MAX) == 11.0


def test_the_earliest_of_periodic_burst_and_grace_end_wins() -> None:
    schedule = Schedule(periodic_at=70.0, due_at=65.0)
    assert next_run(schedule, quiet=QUIET, max_delay=MAX) == 65.0
    assert next_run(schedule.with_event(12.0), quiet=QUIET, max_delay=MAX) == 12.2
    assert next_run(Schedule(periodic_at=70.0), quiet=QUIET, max_delay=MAX) == 70.0


def test_after_a_failure_nothing_runs_before_the_retry() -> None:
    failed = after_failure(Schedule(periodic_at=5.0).with_event(1.0), retry_at=30.0)
    assert next_run(failed.with_event(2.0), quiet=QUIET, max_delay=MAX) == 30.0


def test_events_during_a_scan_are_kept_for_the_next_one() -> None:
    running = starting(Schedule(periodic_at=5.0, retry_at=3.0).with_event(1.0))
    assert (running.burst, running.retry_at) == (None, None)
    done = after_success(running.with_event(4.0), now=4.5, interval=60.0, due_at=None)
    assert done.periodic_at == 64.5
    assert next_run(done, quiet=QUIET, max_delay=MAX) == 4.2
    quiet_done = after_success(running, now=4.5, interval=60.0, due_at=100.0)
    assert next_run(quiet_done, quiet=QUIET, max_delay=MAX) == 64.5
