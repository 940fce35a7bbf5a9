"""The resources' shared name rules (the CRD schemas, kubectl usb and the web UI use the same)."""

from __future__ import annotations

import pytest

from kubevirt_usb.models import is_dns_label, is_dns_subdomain, is_streaming


@pytest.mark.parametrize("name", ["a", "vm1", "my-vm", "0", "a" * 63])
def test_labels_and_subdomains(name: str) -> None:
    assert is_dns_label(name)
    assert is_dns_subdomain(name)


@pytest.mark.parametrize("name", ["vm1.lab", "a.b.c", "x" * 253])
def test_subdomains_that_are_no_labels(name: str) -> None:
    assert not is_dns_label(name)
    assert is_dns_subdomain(name)


@pytest.mark.parametrize("name", ["", "VM1", "-a", "a-", "a_b", "vm1/status", "../vm1", "a..b",
                                  "vm1\n", "x" * 254, "é"])
def test_names_no_object_can_have(name: str) -> None:
    assert not is_dns_label(name)
    assert not is_dns_subdomain(name)


def test_a_stream_runs_only_while_connecting_or_attached() -> None:
    assert is_streaming("Connecting")
    assert is_streaming("Attached")
    for phase in ("Bound", "Failed", "NotAllowed", "", None, 3, ["Attached"], {"Attached": 1}):
        assert not is_streaming(phase)
