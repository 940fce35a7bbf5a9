"""ChaCha20 for the stream's TLS only where the CPU has no AES instructions."""

from __future__ import annotations

import ssl
from pathlib import Path

from kubevirt_usb.redirect.tls import ChaChaEndpoint, cpu_has_aes, for_this_cpu, prefer_chacha
from kubevirt_usb.stream.endpoint import APIEndpoint, StaticToken

X86_AES = "processor\t: 0\nflags\t\t: fpu vme sse2 aes avx2\n"
X86_NO_AES = "processor\t: 0\nflags\t\t: fpu vme sse2\n"
ARM_AES = "processor\t: 0\nFeatures\t: fp asimd aes pmull sha1\n"


def test_aes_is_found_on_x86_and_arm() -> None:
    assert cpu_has_aes(X86_AES)
    assert cpu_has_aes(ARM_AES)
    assert not cpu_has_aes(X86_NO_AES)


def test_with_aes_the_endpoint_is_left_alone(tmp_path: Path) -> None:
    (tmp_path / "cpuinfo").write_text(X86_AES)
    endpoint = APIEndpoint(server="https://10.0.2.2:6443", token=StaticToken("t"))
    assert for_this_cpu(endpoint, cpuinfo=tmp_path / "cpuinfo") is endpoint


def test_without_aes_the_endpoint_offers_tls12_chacha_only(tmp_path: Path) -> None:
    (tmp_path / "cpuinfo").write_text(X86_NO_AES)
    endpoint = APIEndpoint(server="https://10.0.2.2:6443", token=StaticToken("t"),
                           insecure_skip_tls_verify=True)
    tuned = for_this_cpu(endpoint, cpuinfo=tmp_path / "cpuinfo")
    assert isinstance(tuned, ChaChaEndpoint)
    assert tuned.bearer_token() == "t"
    ctx = tuned.ssl_context()
    assert ctx.maximum_version == ssl.TLSVersion.TLSv1_2
    names = {c["name"] for c in ctx.get_ciphers() if c["protocol"] == "TLSv1.2"}
    assert names
    assert all("CHACHA20" in name for name in names)


def test_prefer_chacha_changes_a_plain_client_context() -> None:
    ctx = prefer_chacha(ssl.create_default_context())
    assert ctx.maximum_version == ssl.TLSVersion.TLSv1_2
