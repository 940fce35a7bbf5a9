"""The controller's settings from options and the environment."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from kubevirt_usb.controller.settings import ControllerSettings


def test_the_downward_api_names_namespace_and_identity() -> None:
    # The names a Deployment's downward API sets (pydantic-settings reads the same names from
    # the environment).
    values = {"POD_NAMESPACE": "usb-system", "POD_NAME": "controller-abc", "workers": "3"}
    options = ControllerSettings.model_validate(values).options()
    assert (options.namespace, options.identity, options.workers) == (
        "usb-system", "controller-abc", 3)


def test_defaults_and_explicit_values() -> None:
    settings = ControllerSettings(identity="x", lease_duration=30, renew_deadline=20,
                                  retry_period=5)
    assert settings.namespace == "kubevirt-usb"
    assert settings.agent_lease_prefix == "kubevirt-usb-agent-"
    assert settings.options().lease_duration == 30


def test_election_timings_must_nest() -> None:
    with pytest.raises(ValidationError, match="renew_deadline"):
        ControllerSettings(identity="x", lease_duration=5, renew_deadline=10)


@pytest.mark.parametrize(("values", "problem"), [
    ({"namespace": "Bad NS"}, "namespace\n.*'Bad NS' is not a DNS label"),
    ({"health_listen": "nonsense"}, "'nonsense': expected HOST:PORT, e.g. 127.0.0.1:8080"),
])
def test_values_that_would_fail_later_are_refused_at_once(values: dict[str, str],
                                                          problem: str) -> None:
    with pytest.raises(ValidationError, match=problem):
        ControllerSettings.model_validate({"identity": "x", **values})
