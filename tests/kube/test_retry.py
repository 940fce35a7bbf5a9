"""Retry decisions: only unavailability is retried, after a jittered, capped, growing delay."""

from __future__ import annotations

import pytest

from kubevirt_usb.kube.errors import (
    AlreadyExists,
    Conflict,
    Forbidden,
    Invalid,
    NotFound,
    ServerError,
    TooManyRequests,
    Unavailable,
)
from kubevirt_usb.kube.retry import Backoff, GiveUp, Retry, backoff_delay, decide

POLICY = Backoff(base=1.0, cap=8.0)


def test_delay_doubles_per_attempt_and_stops_at_the_cap() -> None:
    lowest = [backoff_delay(n, policy=POLICY, rand=lambda: 0.0) for n in range(1, 7)]
    highest = [backoff_delay(n, policy=POLICY, rand=lambda: 0.999999) for n in range(1, 7)]
    assert lowest == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    assert highest == pytest.approx([1.0, 2.0, 4.0, 8.0, 8.0, 8.0], rel=1e-5)


def test_jitter_spreads_delays_between_half_and_the_full_step() -> None:
    assert backoff_delay(3, policy=POLICY, rand=lambda: 0.5) == 3.0


@pytest.mark.parametrize("error", [
    Unavailable("connection refused", reason="ConnectError"),
    TooManyRequests("slow down", code=429, reason="TooManyRequests"),
    ServerError("boom", code=500, reason="InternalError"),
])
def test_unavailability_is_retried(error: Unavailable) -> None:
    assert decide(error, attempt=2, policy=POLICY, rand=lambda: 0.0) == Retry(after=1.0)


@pytest.mark.parametrize("error", [
    Conflict("stale", code=409, reason="Conflict"),
    AlreadyExists("exists", code=409, reason="AlreadyExists"),
    NotFound("gone", code=404, reason="NotFound"),
    Forbidden("no", code=403, reason="Forbidden"),
    Invalid("bad", code=422, reason="Invalid"),
])
def test_other_errors_are_not_repeated_unchanged(error: Conflict) -> None:
    decision = decide(error, attempt=1, policy=POLICY, rand=lambda: 0.0)
    assert isinstance(decision, GiveUp)
    assert error.reason in decision.reason


def test_the_servers_retry_after_hint_is_a_minimum_within_the_cap() -> None:
    hinted = TooManyRequests("slow down", code=429, reason="TooManyRequests", retry_after=5)
    huge = TooManyRequests("slow down", code=429, reason="TooManyRequests", retry_after=600)
    assert decide(hinted, attempt=1, policy=POLICY, rand=lambda: 0.0) == Retry(after=5.0)
    assert decide(huge, attempt=1, policy=POLICY, rand=lambda: 0.0) == Retry(after=8.0)


def test_a_bounded_policy_gives_up_after_its_attempts() -> None:
    bounded = Backoff(base=1.0, cap=8.0, max_attempts=3)
    error = Unavailable("down", reason="ConnectError")
    assert isinstance(decide(error, attempt=2, policy=bounded), Retry)
    assert isinstance(decide(error, attempt=3, policy=bounded), GiveUp)
