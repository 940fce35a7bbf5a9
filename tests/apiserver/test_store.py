"""The object store: objects by resource, one resourceVersion counter, history, watchers."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from kubevirt_usb.apiserver.store import Store, TooOldResourceVersion

CM = ("", "configmaps")
SECRETS = ("", "secrets")


def _obj(name: str, rv: int, namespace: str = "ns", **extra: Any) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": namespace, "resourceVersion": str(rv)},
            **extra}


def _put(store: Store, gr: tuple[str, str], name: str, namespace: str = "ns",
         **extra: Any) -> dict[str, Any]:
    return store.put(gr, _obj(name, store.next_resource_version(), namespace, **extra))


def test_resource_versions_count_up_across_resources() -> None:
    store = Store()
    first = _put(store, CM, "a")
    second = _put(store, SECRETS, "a")
    assert int(second["metadata"]["resourceVersion"]) == \
        int(first["metadata"]["resourceVersion"]) + 1
    assert store.resource_version == int(second["metadata"]["resourceVersion"])


def test_items_are_in_namespace_then_name_order() -> None:
    store = Store()
    for namespace, name in (("b", "x"), ("a", "z"), ("a", "y")):
        _put(store, CM, name, namespace)
    assert [(o["metadata"]["namespace"], o["metadata"]["name"]) for o in store.items(CM)] == \
        [("a", "y"), ("a", "z"), ("b", "x")]
    assert [o["metadata"]["name"] for o in store.items(CM, "a")] == ["y", "z"]
    assert store.count(CM) == 3
    assert store.get(CM, "b", "x") is not None
    assert store.get(CM, "b", "missing") is None


def test_items_at_an_older_resource_version_undoes_later_changes() -> None:
    store = Store()
    _put(store, CM, "kept", data="1")
    at = store.resource_version
    _put(store, CM, "kept", data="2")
    _put(store, CM, "added")
    removed = _put(store, CM, "removed-later")
    store.remove(CM, {**removed, "metadata": {**removed["metadata"], "resourceVersion": str(
        store.next_resource_version())}})
    _put(store, SECRETS, "other")
    then = store.items_at(CM, "ns", at)
    assert [(o["metadata"]["name"], o.get("data")) for o in then] == [("kept", "1")]
    assert [o["metadata"]["name"] for o in store.items_at(CM, None, store.resource_version)] == \
        ["added", "kept"]


def test_items_at_a_compacted_resource_version_is_too_old() -> None:
    store = Store()
    _put(store, CM, "a")
    old = store.resource_version
    _put(store, CM, "a", data="x")
    store.compact()
    with pytest.raises(TooOldResourceVersion) as too_old:
        store.items_at(CM, None, old - 1)
    assert too_old.value.requested == old - 1
    assert too_old.value.oldest == store.resource_version + 1


def test_history_keeps_only_the_newest_events() -> None:
    store = Store(history_size=2)
    for name in ("a", "b", "c"):
        _put(store, CM, name)
    with pytest.raises(TooOldResourceVersion):
        store.watch(CM, namespace=None, since=1)


async def test_watch_replays_history_then_gets_live_events() -> None:
    store = Store()
    start = store.resource_version
    _put(store, CM, "before")
    watcher = store.watch(CM, namespace=None, since=start)
    _put(store, SECRETS, "other-resource")
    _put(store, CM, "after")
    first = await asyncio.wait_for(watcher.queue.get(), 1)
    second = await asyncio.wait_for(watcher.queue.get(), 1)
    assert first is not None
    assert second is not None
    assert (first.type, first.obj["metadata"]["name"]) == ("ADDED", "before")
    assert (second.type, second.obj["metadata"]["name"]) == ("ADDED", "after")
    assert watcher.queue.empty()


async def test_watch_of_one_namespace_and_modification_and_removal() -> None:
    store = Store()
    watcher = store.watch(CM, namespace="mine", since=store.resource_version)
    _put(store, CM, "x", "other")
    obj = _put(store, CM, "x", "mine")
    _put(store, CM, "x", "mine", data="changed")
    store.remove(CM, {**obj, "metadata": {**obj["metadata"],
                                          "resourceVersion": str(store.next_resource_version())}})
    kinds = []
    while not watcher.queue.empty():
        event = watcher.queue.get_nowait()
        assert event is not None
        kinds.append(event.type)
    assert kinds == ["ADDED", "MODIFIED", "DELETED"]


async def test_unwatch_and_close_end_the_stream() -> None:
    store = Store()
    one = store.watch(CM, namespace=None, since=store.resource_version)
    two = store.watch(SECRETS, namespace=None, since=store.resource_version)
    assert store.watcher_count() == 2
    store.unwatch(one)
    assert one.queue.get_nowait() is None
    store.close_watchers(SECRETS)
    assert two.queue.get_nowait() is None
    assert store.watcher_count() == 0
    _put(store, CM, "after-close")
    assert one.queue.empty()


def test_listeners_see_every_change() -> None:
    store = Store()
    seen: list[str] = []
    store.add_listener(lambda event: seen.append(event.type))
    obj = _put(store, CM, "a")
    _put(store, CM, "a", data="x")
    store.remove(CM, obj)
    assert seen == ["ADDED", "MODIFIED", "DELETED"]


def test_drop_resource_forgets_its_objects() -> None:
    store = Store()
    _put(store, CM, "a")
    store.drop_resource(CM)
    assert store.items(CM) == []
    assert CM not in list(store.resources())
