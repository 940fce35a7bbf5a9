"""The generated CA and serving certificate."""

from __future__ import annotations

import datetime as dt
import ipaddress
from pathlib import Path

from cryptography import x509

from kubevirt_usb.apiserver.tls import generate

NOW = dt.datetime(2030, 6, 1, tzinfo=dt.UTC)


def test_a_ca_and_a_serving_certificate_it_signed(tmp_path: Path) -> None:
    cert = generate(tmp_path / "pki", now=NOW)
    ca = x509.load_pem_x509_certificate(cert.ca_path.read_bytes())
    serving = x509.load_pem_x509_certificate(cert.cert_path.read_bytes())
    assert serving.issuer == ca.subject
    serving.verify_directly_issued_by(ca)
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert not serving.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert serving.not_valid_before_utc == NOW - dt.timedelta(minutes=5)
    assert serving.not_valid_after_utc > NOW + dt.timedelta(days=300)
    assert cert.ca_pem() == cert.ca_path.read_bytes()


def test_names_the_emulator_is_reached_by(tmp_path: Path) -> None:
    cert = generate(tmp_path, ips=("127.0.0.1", "::1"), names=("localhost", "api.test"))
    serving = x509.load_pem_x509_certificate(cert.cert_path.read_bytes())
    sans = serving.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.DNSName) == ["localhost", "api.test"]
    assert sans.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("127.0.0.1"),
                                                        ipaddress.ip_address("::1")]


def test_the_key_is_private_and_each_call_is_fresh(tmp_path: Path) -> None:
    first = generate(tmp_path)
    assert first.key_path.stat().st_mode & 0o777 == 0o600
    before = first.ca_path.read_bytes()
    second = generate(tmp_path)
    assert second.ca_path.read_bytes() != before
