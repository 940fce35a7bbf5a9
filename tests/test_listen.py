"""Listening addresses, shared by every server the project runs."""

from __future__ import annotations

import pytest

from kubevirt_usb.listen import ListenError, bind, parse_listen


def test_host_and_port_are_parsed_with_ipv6_brackets() -> None:
    assert parse_listen("127.0.0.1:6443") == ("127.0.0.1", 6443)
    assert parse_listen("[::1]:8080") == ("::1", 8080)


def test_an_empty_host_takes_the_default_only_when_one_is_given() -> None:
    assert parse_listen(":8080", default_host="0.0.0.0") == ("0.0.0.0", 8080)
    with pytest.raises(ListenError, match="expected HOST:PORT"):
        parse_listen(":8080")


@pytest.mark.parametrize("text", ["localhost", "127.0.0.1:http", "127.0.0.1:70000", ""])
def test_bad_addresses_say_what_is_expected(text: str) -> None:
    with pytest.raises(ListenError, match=r"expected HOST:PORT, e\.g\. 127\.0\.0\.1:8080"):
        parse_listen(text)


def test_a_port_in_use_says_what_to_do() -> None:
    taken = bind("127.0.0.1", 0)
    try:
        port = taken.getsockname()[1]
        with pytest.raises(ListenError) as caught:
            bind("127.0.0.1", port)
        assert str(caught.value) == (f"127.0.0.1:{port} is already in use: stop what listens "
                                     "there or choose another port with --listen")
    finally:
        taken.close()
