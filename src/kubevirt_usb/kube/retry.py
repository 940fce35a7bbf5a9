"""Whether and when to try a failed request again, decided as values.

`decide(error, attempt=n)` answers `Retry(after=seconds)` or `GiveUp(reason)`: only `Unavailable`
errors (the server is down, unreachable, overloaded or failing) are worth repeating unchanged; a
conflict needs a fresh read, a 403 an admin, a 422 a fix. The delay is a jittered exponential
backoff (`backoff_delay`) and never shorter than the server's own Retry-After hint. The random
source is a parameter, so the numbers are reproducible in tests.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

from kubevirt_usb.kube.errors import KubeError, Unavailable

RandomSource = Callable[[], float]  # uniform in [0, 1)


@dataclass(frozen=True, kw_only=True)
class Backoff:
    """Exponential backoff: `base` seconds after the first failure, doubling up to `cap`."""

    base: float = 0.2
    cap: float = 30.0
    max_attempts: int | None = None  # None: retry forever (daemons)


@dataclass(frozen=True)
class Retry:
    """Send the same request again after `after` seconds."""

    after: float


@dataclass(frozen=True)
class GiveUp:
    """Do not repeat the request as it is; `reason` says why."""

    reason: str


DEFAULT_BACKOFF = Backoff()


def backoff_delay(attempt: int, *, policy: Backoff = DEFAULT_BACKOFF,
                  rand: RandomSource = random.random) -> float:
    """Seconds to wait after failed attempt number `attempt` (1-based): "equal jitter", i.e.
    half the exponential step fixed and half random, so clients spread out but never retry at
    once."""
    step = min(policy.cap, policy.base * 2.0 ** (max(attempt, 1) - 1))
    return float(step / 2 + rand() * step / 2)


def decide(error: KubeError, *, attempt: int, policy: Backoff = DEFAULT_BACKOFF,
           rand: RandomSource = random.random) -> Retry | GiveUp:
    """What to do after `error` ended attempt number `attempt` (1-based)."""
    if not isinstance(error, Unavailable):
        return GiveUp(f"{error.reason}: retrying the same request cannot help")
    if policy.max_attempts is not None and attempt >= policy.max_attempts:
        return GiveUp(f"{error.reason}: gave up after {attempt} attempts")
    delay = backoff_delay(attempt, policy=policy, rand=rand)
    if error.retry_after is not None:
        delay = max(delay, min(error.retry_after, policy.cap))
    return Retry(after=delay)
