"""The registry of served resources and the built-in ones."""

from __future__ import annotations

from kubevirt_usb.apiserver.resources import (
    ALL_VERBS,
    Registry,
    ResourceInfo,
    builtin_resources,
    workload_resources,
)


def _info(group: str, version: str, resource: str, kind: str, **extra: object) -> ResourceInfo:
    return ResourceInfo(group=group, version=version, resource=resource, kind=kind,
                        singular=kind.lower(), namespaced=True, **extra)  # type: ignore[arg-type]


def test_names_and_versions() -> None:
    core = _info("", "v1", "configmaps", "ConfigMap")
    widget = _info("example.com", "v1", "widgets", "Widget", list_kind="WidgetCollection")
    assert core.api_version == "v1"
    assert widget.api_version == "example.com/v1"
    assert widget.qualified == "widgets.example.com"
    assert core.qualified == "configmaps"
    assert core.kind_list == "ConfigMapList"
    assert widget.kind_list == "WidgetCollection"
    assert widget.group_resource == ("example.com", "widgets")


def test_discovery_entries_include_subresources() -> None:
    info = _info("example.com", "v1", "widgets", "Widget", subresources=("status",),
                 short_names=("wd",), categories=("all",))
    main, status = info.discovery_entry()
    assert main == {"name": "widgets", "singularName": "widget", "namespaced": True,
                    "kind": "Widget", "verbs": list(ALL_VERBS), "shortNames": ["wd"],
                    "categories": ["all"], "storageVersionHash": ""}
    assert status["name"] == "widgets/status"
    assert status["verbs"] == ["get", "patch", "update"]


def test_registry_groups_versions_and_preferred_version() -> None:
    registry = Registry()
    registry.add(_info("example.com", "v1beta1", "widgets", "Widget"))
    registry.add(_info("example.com", "v1", "widgets", "Widget"), preferred=True)
    registry.add(_info("other.io", "v1", "things", "Thing"))
    assert list(registry.groups()) == [("example.com", ["v1beta1", "v1"], "v1"),
                                       ("other.io", ["v1"], "v1")]
    assert registry.has_group_version("example.com", "v1beta1")
    assert registry.by_kind("example.com/v1", "Widget") is not None
    assert registry.by_kind("example.com/v2", "Widget") is None
    assert len(registry.in_group_version("example.com", "v1")) == 1
    registry.remove_group_resource("example.com", "widgets")
    assert not registry.has_group_version("example.com", "v1")
    assert [g for g, _v, _p in registry.groups()] == ["other.io"]
    assert len(registry.all()) == 1


def test_removing_one_version_moves_the_preferred_one() -> None:
    registry = Registry()
    registry.add(_info("g", "v1", "a", "A"), preferred=True)
    registry.add(_info("g", "v2", "b", "B"))
    registry.remove_group_resource("g", "a")
    assert list(registry.groups()) == [("g", ["v2"], "v2")]


def test_builtin_delete_and_update_behaviours() -> None:
    by_kind = {i.kind: i for i in [*builtin_resources(), *workload_resources()]}
    assert by_kind["Pod"].returns_deleted_object
    assert by_kind["Namespace"].returns_deleted_object
    assert not by_kind["ConfigMap"].returns_deleted_object
    assert by_kind["Lease"].create_on_update
    assert by_kind["Role"].create_on_update
    assert not by_kind["ConfigMap"].create_on_update
    assert not by_kind["CustomResourceDefinition"].allow_unconditional_update
    assert by_kind["ConfigMap"].allow_unconditional_update
    assert by_kind["CustomResourceDefinition"].has_generation
    assert not by_kind["SelfSubjectAccessReview"].stored
    assert by_kind["SelfSubjectAccessReview"].verbs == ("create",)
    assert "token" in by_kind["ServiceAccount"].subresources
