"""When the agent scans and publishes next: pure decisions over times (monotonic seconds).

Plugging in one device makes the kernel send a burst of uevents (the device, each interface, each
driver bind), and a hub brings several devices at once. A burst is handled by one scan, run when
the burst has been quiet for `quiet` seconds but never later than `max_delay` after its first
event, so a device is published well within 2 s of being plugged even if events keep coming.

Besides bursts, the agent scans every `interval` seconds (the safety net for a missed event) and
when a grace period of an absent device ends. After a failure nothing runs before the retry time
the backoff chose: events that arrive meanwhile are covered by that retry's full scan.
"""

from __future__ import annotations

from dataclasses import dataclass, replace


@dataclass(frozen=True)
class Burst:
    """Events close together: when the first and the last arrived."""

    first: float
    last: float


def extend(burst: Burst | None, at: float) -> Burst:
    """The burst with one more event at `at` (a new burst if there was none)."""
    return Burst(first=at, last=at) if burst is None else Burst(first=burst.first, last=at)


def burst_fires_at(burst: Burst, *, quiet: float, max_delay: float) -> float:
    """When a burst is handled: after `quiet` seconds of silence, at most `max_delay` after its
    first event."""
    return min(burst.last + quiet, burst.first + max_delay)


@dataclass(frozen=True)
class Schedule:
    """What is pending: the periodic scan, a burst, a grace period ending, a retry."""

    periodic_at: float
    burst: Burst | None = None
    due_at: float | None = None
    retry_at: float | None = None

    def with_event(self, at: float) -> Schedule:
        return replace(self, burst=extend(self.burst, at))


def next_run(schedule: Schedule, *, quiet: float, max_delay: float) -> float:
    """The time of the next scan-and-publish."""
    if schedule.retry_at is not None:
        return schedule.retry_at
    times = [schedule.periodic_at]
    if schedule.burst is not None:
        times.append(burst_fires_at(schedule.burst, quiet=quiet, max_delay=max_delay))
    if schedule.due_at is not None:
        times.append(schedule.due_at)
    return min(times)


def starting(schedule: Schedule) -> Schedule:
    """The schedule once a scan starts: the scan covers every event so far and any retry."""
    return replace(schedule, burst=None, retry_at=None)


def after_success(schedule: Schedule, *, now: float, interval: float,
                  due_at: float | None) -> Schedule:
    """The schedule after a successful publish at `now`; events that arrived while it ran
    (a new burst) are still pending."""
    return replace(schedule, periodic_at=now + interval, due_at=due_at, retry_at=None)


def after_failure(schedule: Schedule, *, retry_at: float) -> Schedule:
    """The schedule after a failed publish: everything waits for the retry."""
    return replace(schedule, retry_at=retry_at, burst=None)
