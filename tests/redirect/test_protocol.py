"""The agent <-> worker messages survive the wire; so does an API endpoint."""

from __future__ import annotations

from pathlib import Path

import pytest

from kubevirt_usb.redirect import protocol
from kubevirt_usb.stream.endpoint import APIEndpoint, StaticToken


@pytest.mark.parametrize("message", [
    protocol.Open(port_path="2-1", bus=2, devnum=3, vendor_id=0x46F4, product_id=1),
    protocol.Stream(endpoint={"server": "https://x"}, path="/p", connect_timeout=3.0),
    protocol.Close(),
    protocol.Ready(pid=1, libusb="1.0.26.11724"),
    protocol.Opened(),
    protocol.OpenFailed(kind="changed", detail="replugged"),
    protocol.Rejected(status_code=409, body='{"kind":"Status"}'),
    protocol.Unreachable(detail="refused"),
    protocol.StartFailed(detail="busy"),
    protocol.Started(),
    protocol.Attached(),
    protocol.Progress(to_vm=10, from_vm=2),
    protocol.Ended(reason="device-lost", detail="unplugged", to_vm=1, from_vm=2),
    protocol.Log(level=3, message="Peer version: qemu usb-redir guest 7.2.22"),
])
def test_messages_round_trip(message: protocol.Message) -> None:
    assert protocol.decode(protocol.encode(message)) == message


@pytest.mark.parametrize("data", [b"nope", b"[]", b'{"type": "Bogus"}',
                                  b'{"type": "OpenFailed", "kind": "x"}'])
def test_garbage_is_a_protocol_error(data: bytes) -> None:
    with pytest.raises(protocol.ProtocolError):
        protocol.decode(data)


def test_an_endpoint_travels_with_the_current_token() -> None:
    endpoint = APIEndpoint(server="https://10.0.2.2:6443", token=StaticToken("secret"),
                           ca_file=Path("/run/ca.crt"), ca_data=b"PEM", tls_server_name="api",
                           insecure_skip_tls_verify=False, proxy="http://proxy:3128")
    again = protocol.endpoint_from_wire(protocol.endpoint_to_wire(endpoint))
    assert again.bearer_token() == "secret"
    assert (again.server, again.ca_file, again.ca_data) == endpoint_fields(endpoint)
    assert (again.tls_server_name, again.proxy) == ("api", "http://proxy:3128")
    assert again.client_cert_data is None


def endpoint_fields(endpoint: APIEndpoint) -> tuple[str, Path | None, bytes | None]:
    return endpoint.server, endpoint.ca_file, endpoint.ca_data
