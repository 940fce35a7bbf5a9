"""The cluster in a box: time from `kubevirt-usb sandbox up --detach` to ready, and how long a QMP
unplug / plug takes to show in the node guest's sysfs."""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from kubevirt_usb.sandbox.harness import SandboxHarness

KUBEVIRT_USB = str(Path(sys.executable).with_name("kubevirt-usb"))


def _up_to_ready(state: Path) -> float:
    start = time.perf_counter()
    up = subprocess.run([KUBEVIRT_USB, "sandbox", "--state-dir", str(state), "up", "--detach"],
                        capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - start
    subprocess.run([KUBEVIRT_USB, "sandbox", "--state-dir", str(state), "down"],
                   capture_output=True, check=False)
    if up.returncode != 0:
        raise RuntimeError(f"sandbox up failed: {up.stdout}{up.stderr}")
    return seconds


def _hotplug(harness: SandboxHarness, rounds: int) -> dict[str, float]:
    gone: list[float] = []
    back: list[float] = []
    for _ in range(rounds):
        start = time.perf_counter()
        harness.unplug("AAA2", node="node1")
        harness.wait_until(lambda: not harness.node_has("node1", "AAA2"), within=30,
                           what="AAA2 gone", interval=0.02)
        gone.append(time.perf_counter() - start)
        start = time.perf_counter()
        harness.plug("AAA2", into="node1")
        harness.wait_until(lambda: harness.node_has("node1", "AAA2"), within=30,
                           what="AAA2 back", interval=0.02)
        back.append(time.perf_counter() - start)
    return {"unplug_to_gone_s_median": statistics.median(gone),
            "unplug_to_gone_s_max": max(gone),
            "plug_to_visible_s_median": statistics.median(back),
            "plug_to_visible_s_max": max(back)}


def run(*, runs: int = 3, rounds: int = 5) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="kvu-bench-") as tmp:
        ups = [_up_to_ready(Path(tmp) / f"up{i}") for i in range(runs)]
        with SandboxHarness(state_dir=Path(tmp) / "hotplug") as harness:
            hotplug = _hotplug(harness, rounds)
    return {"up_to_ready_s": ups, "up_to_ready_s_median": statistics.median(ups),
            "hotplug_rounds": rounds, **hotplug}
