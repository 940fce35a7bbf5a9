"""The virt-api emulator as an aggregated API server: who it believes (the front proxy's client
certificate and headers), what it registers, and what kube-apiserver's proxy gets over real TLS."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import json
import ssl
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from kubevirt_usb.apiserver.auth import UserInfo
from kubevirt_usb.sandbox import aggregated
from kubevirt_usb.sandbox.aggregated import (
    AggregationError,
    RequestHeaderConfig,
    proxied_user,
    request_header_config,
)
from kubevirt_usb.sandbox.virtapi import VirtAPIEmulator

CONFIG = RequestHeaderConfig(client_ca_pem="CA", allowed_names=("front-proxy-client",),
                             username_headers=("X-Remote-User",),
                             group_headers=("X-Remote-Group",),
                             extra_prefixes=("X-Remote-Extra-",))


def _configmap(**data: str) -> dict[str, Any]:
    return {"data": data}


def test_the_request_header_configuration_is_read_as_kube_apiserver_publishes_it() -> None:
    config = request_header_config(_configmap(**{
        "requestheader-client-ca-file": "-----BEGIN CERTIFICATE-----\n",
        "requestheader-allowed-names": '["front-proxy-client"]',
        "requestheader-username-headers": '["X-Remote-User"]',
        "requestheader-group-headers": '["X-Remote-Group"]',
        "requestheader-extra-headers-prefix": '["X-Remote-Extra-"]'}))
    assert config.allowed_names == ("front-proxy-client",)
    assert config.username_headers == ("X-Remote-User",)
    assert config.group_headers == ("X-Remote-Group",)
    assert config.extra_prefixes == ("X-Remote-Extra-",)


def test_a_server_without_a_front_proxy_is_refused_with_the_flags_to_add() -> None:
    with pytest.raises(AggregationError) as caught:
        request_header_config(_configmap(**{"client-ca-file": "x"}))
    assert "--requestheader-client-ca-file" in str(caught.value)
    assert "--proxy-client-cert-file" in str(caught.value)


def _headers(**values: str | list[str]) -> list[tuple[bytes, bytes]]:
    out = []
    for name, value in values.items():
        for one in [value] if isinstance(value, str) else value:
            out.append((name.replace("_", "-").lower().encode(), one.encode()))
    return out


def test_the_user_comes_from_the_headers_of_an_allowed_front_proxy() -> None:
    user = proxied_user(_headers(X_Remote_User="alice", X_Remote_Group=["dev", "ops"]),
                        config=CONFIG, peer_name="front-proxy-client")
    assert user == UserInfo(name="alice", groups=("dev", "ops"))


def test_headers_are_not_believed_from_anyone_else() -> None:
    headers = _headers(X_Remote_User="alice")
    assert proxied_user(headers, config=CONFIG, peer_name=None) is None
    assert proxied_user(headers, config=CONFIG, peer_name="mallory") is None
    assert proxied_user([], config=CONFIG, peer_name="front-proxy-client") is None


def test_without_allowed_names_any_certificate_of_the_ca_is_the_front_proxy() -> None:
    open_config = RequestHeaderConfig(client_ca_pem="CA", allowed_names=(),
                                      username_headers=("X-Remote-User",), group_headers=(),
                                      extra_prefixes=())
    user = proxied_user(_headers(X_Remote_User="alice"), config=open_config, peer_name="any")
    assert user == UserInfo(name="alice")


def test_the_apiservice_names_the_service_and_carries_the_ca() -> None:
    apiservice = aggregated.apiservice_manifest(port=4443, ca_bundle_pem=b"PEM")
    assert apiservice["metadata"]["name"] == "v1.subresources.kubevirt.io"
    assert apiservice["spec"]["service"] == {"namespace": "kubevirt-usb-sandbox",
                                             "name": "virt-api", "port": 4443}
    assert base64.b64decode(apiservice["spec"]["caBundle"]) == b"PEM"
    service = aggregated.service_manifest(port=4443)
    assert service["spec"]["type"] == "ExternalName"
    assert service["spec"]["externalName"] == "localhost"
    assert aggregated.service_dns_name() == "virt-api.kubevirt-usb-sandbox.svc"


def test_the_access_review_asks_about_the_proxied_user() -> None:
    review = aggregated.subject_access_review(
        user=UserInfo(name="alice", groups=("dev",)), verb="get",
        group="subresources.kubevirt.io", resource="virtualmachineinstances",
        subresource="usbredir", namespace="default", name="vm1")
    assert review["spec"] == {"user": "alice", "groups": ["dev"], "resourceAttributes": {
        "namespace": "default", "verb": "get", "group": "subresources.kubevirt.io",
        "version": "v1", "resource": "virtualmachineinstances", "subresource": "usbredir",
        "name": "vm1"}}


# ---- over real TLS, as kube-apiserver's proxy connects ------------------------------------


def _ca(name: str) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .sign(key, hashes.SHA256()))
    return key, cert


def _client(directory: Path, ca: tuple[ec.EllipticCurvePrivateKey, x509.Certificate],
            name: str) -> tuple[Path, Path]:
    ca_key, ca_cert = ca
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
            .issuer_name(ca_cert.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .sign(ca_key, hashes.SHA256()))
    cert_path, key_path = directory / f"{name}.crt", directory / f"{name}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


def _fake_kube_apiserver(reviews: list[dict[str, Any]]) -> httpx.AsyncClient:
    """The real API server as the aggregated server sees it: SubjectAccessReviews (alice may)
    and VMIs (none)."""

    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/subjectaccessreviews"):
            review = json.loads(request.content)
            reviews.append(review["spec"])
            return httpx.Response(201, json={**review, "status": {
                "allowed": review["spec"]["user"] == "alice"}})
        return httpx.Response(404, json={"kind": "Status", "code": 404})

    return httpx.AsyncClient(base_url="https://kube.example",
                             transport=httpx.MockTransport(answer))


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[tuple[aggregated.AggregatedServer, Path,
                                                        list[dict[str, Any]]]]:
    front_ca = _ca("front-proxy-ca")
    config = RequestHeaderConfig(
        client_ca_pem=front_ca[1].public_bytes(serialization.Encoding.PEM).decode(),
        allowed_names=("front-proxy-client",), username_headers=("X-Remote-User",),
        group_headers=("X-Remote-Group",), extra_prefixes=("X-Remote-Extra-",))
    _client(tmp_path, front_ca, "front-proxy-client")
    _client(tmp_path, front_ca, "someone-else")
    reviews: list[dict[str, Any]] = []
    virtapi = VirtAPIEmulator(slot_dir=lambda ns, name, uid: tmp_path / "none")
    http = _fake_kube_apiserver(reviews)
    built = aggregated.new_server(virtapi, http=http, config=config, state_dir=tmp_path)
    await built.start()
    try:
        yield built, tmp_path, reviews
    finally:
        await built.stop()
        await http.aclose()


def _proxy(server: aggregated.AggregatedServer, directory: Path, *,
           cert: str | None = "front-proxy-client") -> httpx.AsyncClient:
    """A client as kube-apiserver's proxy is one: it trusts the APIService's caBundle and checks
    the name `<service>.<namespace>.svc`."""
    ctx = ssl.create_default_context(cafile=str(server.certificate.ca_path))
    if cert is not None:
        ctx.load_cert_chain(directory / f"{cert}.crt", directory / f"{cert}.key")
    return httpx.AsyncClient(base_url=f"https://{aggregated.service_dns_name()}:{server.port}",
                             transport=_to_loopback(ctx), timeout=10)


def _to_loopback(ctx: ssl.SSLContext) -> httpx.AsyncBaseTransport:
    """Dial 127.0.0.1 while TLS checks the service name, as the aggregator does."""

    class Loopback(httpx.AsyncBaseTransport):
        def __init__(self) -> None:
            self.inner = httpx.AsyncHTTPTransport(verify=ctx)

        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            host = request.url.host
            request.url = request.url.copy_with(host="127.0.0.1")
            request.extensions["sni_hostname"] = host
            return await self.inner.handle_async_request(request)

        async def aclose(self) -> None:
            await self.inner.aclose()

    return Loopback()


USBREDIR = "/apis/subresources.kubevirt.io/v1/namespaces/default/virtualmachineinstances"


async def test_discovery_needs_no_user(server: Any) -> None:
    built, directory, _ = server
    async with _proxy(built, directory) as http:
        listing = (await http.get("/apis/subresources.kubevirt.io/v1")).json()
        apis = (await http.get("/apis")).json()
        v2 = await http.get("/openapi/v2")
    assert [r["name"] for r in listing["resources"]] == ["virtualmachineinstances/usbredir"]
    assert apis["groups"][0]["name"] == "subresources.kubevirt.io"
    assert v2.json()["swagger"] == "2.0"


async def test_the_proxied_user_is_authorized_by_a_subject_access_review(server: Any) -> None:
    built, directory, reviews = server
    async with _proxy(built, directory) as http:
        alice = await http.get(f"{USBREDIR}/nope/usbredir",
                               headers={"X-Remote-User": "alice", "X-Remote-Group": "dev"})
        bob = await http.get(f"{USBREDIR}/vm1/usbredir", headers={"X-Remote-User": "bob"})
    assert alice.status_code == 404
    assert alice.json()["message"] == 'virtualmachineinstance.kubevirt.io "nope" not found'
    assert bob.status_code == 403
    assert [(r["user"], r["groups"]) for r in reviews] == [("alice", ["dev"]), ("bob", [])]


async def test_headers_from_a_certificate_that_is_not_the_front_proxys_are_401(
        server: Any) -> None:
    built, directory, reviews = server
    async with _proxy(built, directory, cert="someone-else") as http:
        answer = await http.get(f"{USBREDIR}/vm1/usbredir", headers={"X-Remote-User": "alice"})
    assert answer.status_code == 401
    assert answer.json()["reason"] == "Unauthorized"
    assert reviews == []


async def test_a_connection_without_a_client_certificate_is_refused(server: Any) -> None:
    built, directory, _ = server
    async with _proxy(built, directory, cert=None) as http:
        with pytest.raises(httpx.HTTPError):
            await asyncio.wait_for(http.get("/apis"), timeout=10)
