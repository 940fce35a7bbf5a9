"""The agent's settings: defaults, the environment variables each comes from, and validation."""

from __future__ import annotations

from pathlib import Path

import pytest

from kubevirt_usb.agent.settings import SETTINGS, AgentSettings, env_names


def test_defaults_fit_a_daemonset() -> None:
    settings = AgentSettings(node_name="node1")
    assert settings.namespace == "kubevirt-usb"
    assert settings.sysfs_root == Path("/sys")
    assert settings.usb_ids == Path("/usr/share/misc/usb.ids")
    assert (settings.grace_period, settings.rescan_interval) == (600.0, 60.0)
    assert (settings.lease_duration, settings.renew_interval) == (40, 10.0)
    assert settings.restart_grace == 120
    assert settings.uevents == "kernel"


def test_every_setting_has_a_prefixed_variable_and_the_downward_api_names() -> None:
    assert env_names("sysfs_root") == ["KUBEVIRT_USB_SYSFS_ROOT"]
    assert env_names("node_name") == ["KUBEVIRT_USB_NODE_NAME", "NODE_NAME"]
    assert env_names("namespace") == ["KUBEVIRT_USB_NAMESPACE", "POD_NAMESPACE"]
    assert "health_listen" in SETTINGS


@pytest.mark.parametrize(("values", "problem"), [
    ({"node_name": "Node_1"}, "not a DNS subdomain"),
    ({"node_name": "n", "namespace": "a.b"}, "not a DNS label"),
    ({"node_name": "n", "lease_duration": 10, "renew_interval": 10}, "shorter than the lease"),
    ({"node_name": "n", "restart_grace": 30}, r"restart grace \(30s\) must not be shorter"),
    ({"node_name": "n", "uevents": "dbus"}, "uevents must be one of kernel, udev, none"),
    ({"node_name": "n", "grace_period": -1}, "must not be negative"),
    ({"node_name": "n", "health_listen": "nonsense"},
     "health listen address 'nonsense': expected HOST:PORT, e.g. 127.0.0.1:8080"),
    ({"node_name": "n", "health_listen": "0.0.0.0:99999"}, "expected HOST:PORT"),
])
def test_wrong_values_are_refused_with_the_reason(values: dict[str, object],
                                                  problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        AgentSettings(**values)  # type: ignore[arg-type]
