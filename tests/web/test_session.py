"""Sign-in sessions, identities and CSRF tokens."""

from __future__ import annotations

from kubevirt_usb.web.session import (
    SessionStore,
    csrf_matches,
    csrf_token,
    identity_for_proxy_token,
    identity_for_session,
)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_sessions_end_when_idle_or_too_old() -> None:
    clock = Clock()
    store = SessionStore(clock=clock, idle_timeout=60, max_age=300)
    session = store.create(token="t", user="alice")
    assert store.get(session.id) is session
    clock.now += 59
    assert store.get(session.id) is session  # used: idle time starts again
    clock.now += 61
    assert store.get(session.id) is None
    old = store.create(token="t", user="alice")
    for _ in range(6):
        clock.now += 55
        store.get(old.id)
    assert store.get(old.id) is None  # older than max_age although never idle
    assert store.get("nonsense") is None


def test_creating_a_session_forgets_expired_ones() -> None:
    clock = Clock()
    store = SessionStore(clock=clock, idle_timeout=10, max_age=100)
    store.create(token="a", user="a")
    clock.now += 11
    store.create(token="b", user="b")
    assert len(store) == 1


def test_checks_on_the_users_behalf_do_not_keep_a_session_alive() -> None:
    clock = Clock()
    store = SessionStore(clock=clock, idle_timeout=60, max_age=300)
    idle = store.create(token="t", user="alice")
    for _ in range(2):  # an open live page asking every 30 s whether alice is signed in
        clock.now += 30
        assert store.get(idle.id, touch=False) is idle
        store.create(token="u", user="bob")  # others signing in do not touch it either
    clock.now += 30
    assert store.get(idle.id, touch=False) is None  # 90 s since alice's last request: ended
    assert store.get(idle.id) is None


def test_dropped_sessions_are_gone() -> None:
    store = SessionStore(clock=Clock())
    session = store.create(token="t", user="u")
    store.drop(session.id)
    assert store.get(session.id) is None


def test_session_ids_are_unguessable_and_carry_no_token() -> None:
    store = SessionStore(clock=Clock())
    first, second = store.create(token="secret", user="u"), store.create(token="secret", user="u")
    assert first.id != second.id
    assert len(first.id) >= 40
    assert "secret" not in first.id


def test_csrf_tokens_are_bound_to_the_session() -> None:
    store = SessionStore(clock=Clock())
    session = store.create(token="t", user="u")
    secret = b"k" * 32
    one = identity_for_session(session, secret=secret)
    assert one.user == "u"
    assert one.session_id == session.id
    assert one.csrf == identity_for_session(session, secret=secret).csrf
    assert one.csrf != identity_for_session(store.create(token="t", user="u"), secret=secret).csrf
    assert one.csrf != identity_for_session(session, secret=b"o" * 32).csrf
    assert csrf_matches(one.csrf, one.csrf)
    assert not csrf_matches(one.csrf, None)
    assert not csrf_matches(one.csrf, "")


def test_behind_the_proxy_the_csrf_token_is_keyed_by_the_users_token() -> None:
    first = identity_for_proxy_token("sha256~abc", user="alice")
    assert first.csrf == identity_for_proxy_token("sha256~abc").csrf  # every replica agrees
    assert first.csrf != identity_for_proxy_token("sha256~abd").csrf
    assert "sha256~abc" not in first.csrf
    assert first.session_id is None
    assert first.csrf == csrf_token(b"sha256~abc", "kubevirt-usb-csrf")
