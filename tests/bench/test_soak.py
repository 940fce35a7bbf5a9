"""The chaos soak, three minutes of it: faults from a seeded schedule while the VMs write,
sync, read back and verify; every fault recovers within the soak's bound, no acknowledged
block reads back wrong, no device is held twice, nothing leaks. Timings are the benchmark's
business (`python -m bench soak`), not asserted here."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench import soak

pytestmark = [pytest.mark.qemu, pytest.mark.timeout(3600)]


def test_three_minutes_of_faults_lose_nothing_and_leak_nothing(tmp_path: Path) -> None:
    results = soak.run(minutes=3, min_faults=3, seed=15, state_dir=tmp_path / "soak",
                       progress=print)
    summary = {k: results[k] for k in ("faults_injected", "by_kind", "mib_verified",
                                       "serial_echoes_ok", "rss")}
    assert results["incomplete"] is None, summary
    assert results["faults_recovered"] >= 3, summary
    assert results["not_recovered"] == [], summary
    assert results["corrupt_blocks"] == 0, results["corrupt"]
    assert results["violations"] == []
    assert results["leaks"] == []
    assert results["mib_verified"] > 0
    assert results["serial_echoes_ok"] > 0
