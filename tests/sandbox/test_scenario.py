"""The sandbox scenario model: defaults, port assignment, and errors that name the bad field."""

from __future__ import annotations

from pathlib import Path

import pytest

from kubevirt_usb.sandbox.scenario import (
    DeviceKind,
    ScenarioError,
    default_scenario,
    load_scenario,
    parse_scenario,
)


def test_default_scenario_has_two_sticks_a_serial_adapter_on_node1_and_a_vm_on_each_node(
) -> None:
    scenario = default_scenario()
    node = scenario.node("node1")
    sticks = [d for d in node.devices if d.kind is DeviceKind.USB_STORAGE]
    assert [s.serial for s in sticks] == ["AAA1", "AAA2"]
    assert sticks[0].disk_size == sticks[1].disk_size
    assert [d.kind for d in node.devices].count(DeviceKind.USB_SERIAL) == 1
    assert scenario.vm("default", "vm1").client_passthrough is True
    assert scenario.vm("default", "vm2").client_passthrough is False
    assert {vm.name: vm.node for vm in scenario.vms} == {"vm1": "node1", "vm2": "node1",
                                                         "vm3": "node2"}
    assert scenario.vm("default", "vm3").client_passthrough is True
    assert scenario.node("node2").devices == []


def test_ports_explicit_first_then_lowest_free_including_behind_hubs() -> None:
    scenario = parse_scenario(
        {
            "nodes": [
                {
                    "name": "n1",
                    "devices": [
                        {"id": "a", "kind": "usb-storage", "serial": "S1"},
                        {"id": "kbd", "kind": "usb-kbd", "hub": "hub1", "port": 2},
                        {"id": "hub1", "kind": "hub", "port": 1},
                        {"id": "b", "kind": "usb-storage", "hub": "hub1"},
                        {"id": "c", "kind": "usb-serial", "port": "1.3"},
                    ],
                }
            ]
        }
    )
    assert scenario.nodes[0].port_paths() == {
        "hub1": "1",
        "a": "2",
        "kbd": "1.2",
        "b": "1.1",
        "c": "1.3",
    }


@pytest.mark.parametrize(
    ("devices", "expected"),
    [
        ([{"id": "a", "kind": "floppy"}], "nodes[0].devices[0].kind"),
        ([{"id": "a", "kind": "usb-kbd", "port": "x"}], "nodes[0].devices[0].port: must be"),
        ([{"id": "a", "kind": "usb-kbd", "port": 9}], "nodes[0].devices[0].port: no port 9"),
        ([{"id": "a", "kind": "usb-kbd", "size": "1GiB"}], "nodes[0].devices[0].size"),
        ([{"id": "a", "kind": "usb-storage", "echo": True}],
         "nodes[0].devices[0].echo: only usb-serial devices can have a loopback plug"),
        ([{"id": "a", "kind": "usb-kbd", "hub": "h"}], "nodes[0].devices[0].hub: no hub"),
        ([{"id": "a", "kind": "usb-kbd", "port": "3.1"}], "no hub at port 3"),
        (
            [{"id": "a", "kind": "usb-kbd", "port": 1}, {"id": "b", "kind": "hub", "port": 1}],
            "nodes[0].devices[1].port: port 1 is used twice",
        ),
        (
            [{"id": "a", "kind": "usb-kbd"}, {"id": "a", "kind": "usb-kbd"}],
            "devices[1].id: duplicate device id 'a'",
        ),
        ([{"id": "a", "kind": "usb-kbd", "colour": "red"}], "nodes[0].devices[0].colour"),
        ([{"id": "xhci", "kind": "usb-kbd"}], "nodes[0].devices[0].id: 'xhci' is reserved"),
    ],
)
def test_bad_devices_are_reported_by_field(devices: list[object], expected: str) -> None:
    with pytest.raises(ScenarioError) as info:
        parse_scenario({"nodes": [{"name": "n1", "devices": devices}]})
    assert expected in str(info.value)


def test_vm_on_unknown_node_is_reported() -> None:
    with pytest.raises(ScenarioError, match=r"vms\[0\]\.node: no node named 'n9'"):
        parse_scenario({"nodes": [{"name": "n1"}], "vms": [{"name": "vm1", "node": "n9"}]})


def test_yaml_file_loads_with_kubevirt_spelling(tmp_path: Path) -> None:
    path = tmp_path / "scenario.yaml"
    path.write_text(
        "nodes:\n"
        "  - name: node1\n"
        "    devices:\n"
        "      - {id: stick1, kind: usb-storage, serial: AAA1, size: 128MiB}\n"
        "vms:\n"
        "  - {namespace: team-a, name: vm1, clientPassthrough: false, node: node1}\n"
    )
    scenario = load_scenario(path)
    assert scenario.node("node1").device("stick1").disk_size == 128 * 1024 * 1024
    assert scenario.vm("team-a", "vm1").client_passthrough is False


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("nodes: [\n", "not valid YAML"),
        ("", "the file is empty"),
        ("nodes:\n  - name: node1\n    devices: 3\n", "nodes[0].devices: Input should be"),
    ],
)
def test_broken_files_give_one_clear_error(tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text(text)
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    assert str(info.value).startswith(str(path))
    assert expected in str(info.value)


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (
            {"nodes": [{"name": "n1", "devices": [
                {"id": "a", "kind": "usb-storage", "serial": "S1"},
                {"id": "b", "kind": "usb-storage", "serial": "S1"}]}]},
            "nodes[0].devices[1].serial: 'S1' already names devices[0]",
        ),
        (
            {"nodes": [{"name": "n1", "devices": [
                {"id": "a", "kind": "usb-storage", "size": "2TiB"}]}]},
            "nodes[0].devices[0].size: must be at most 1TiB",
        ),
        ({"nodes": [{"name": "n" * 64}]}, "nodes[0].name: String should have at most 63"),
        (
            {"nodes": [{"name": "n1"}], "vms": [{"name": "VM_1", "node": "n1"}]},
            "vms[0].name: String should match pattern",
        ),
        (
            {"nodes": [{"name": "n1"}],
             "vms": [{"namespace": "team/a", "name": "vm1", "node": "n1"}]},
            "vms[0].namespace: String should match pattern",
        ),
    ],
)
def test_what_the_cluster_would_refuse_is_reported_by_field(
        data: dict[str, object], expected: str) -> None:
    with pytest.raises(ScenarioError) as info:
        parse_scenario(data)
    assert expected in str(info.value)


def test_devices_of_different_nodes_may_share_a_serial() -> None:
    stick = {"id": "a", "kind": "usb-storage", "serial": "S1"}
    scenario = parse_scenario({"nodes": [{"name": "n1", "devices": [stick]},
                                         {"name": "n2", "devices": [stick]}]})
    assert [n.devices[0].serial for n in scenario.nodes] == ["S1", "S1"]


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"\x89PNG\r\n\x1a\n\xff\xfe", "not a text file"),
        (b"nodes:\n  - name: n1\nnodes:\n  - name: n2\n", "found duplicate key 'nodes'"),
        (b"nodes:\n  - {name: n1, name: n2}\n", "found duplicate key 'name'"),
    ],
)
def test_binary_files_and_duplicate_keys_give_one_clear_error(
        tmp_path: Path, content: bytes, expected: str) -> None:
    path = tmp_path / "broken.yaml"
    path.write_bytes(content)
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    assert str(info.value).startswith(str(path))
    assert expected in str(info.value)
