"""The sandbox scenario: which nodes exist, which USB devices are plugged into them, which VMs run.

A scenario is plain data, loaded from YAML or built in code (`default_scenario()`):

```yaml
nodes:
  - name: node1
    devices:
      - {id: stick1, kind: usb-storage, serial: AAA1, size: 64MiB}
      - {id: stick2, kind: usb-storage, serial: AAA2}        # identical to stick1 but the serial
      - {id: hub1, kind: hub, port: 4}
      - {id: kbd1, kind: usb-kbd, hub: hub1, port: 2}        # QEMU port path 4.2
      - {id: serial1, kind: usb-serial, port: "3"}               # echo: true: a loopback plug
      - {id: audio1, kind: usb-audio, hub: hub1, port: 1}    # composite: two interfaces
vms:
  - {namespace: default, name: vm1, clientPassthrough: true, node: node1}
```

`port` is a port of the node's xHCI controller (1..8) or, with `hub`, a port of that hub (1..8); a
dotted path like "4.2" names the same thing directly. Devices without a port get the lowest free
one, so every device has a fixed QEMU port path and returns to it after an unplug. A device with
`plugged: false` is not in its port at boot (plug it in later). A device's serial (else its id)
names it for `plug`, `unplug` and `status`, so serials are unique on a node.
"""

from __future__ import annotations

import re
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Self

import yaml
from pydantic import (
    AliasChoices,
    BaseModel,
    ByteSize,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from kubevirt_usb.models import DNSLabel

ROOT_PORTS = 8
"""Ports per speed on the node's qemu-xhci controller (`p2` and `p3`)."""
HUB_PORTS = 8
"""Ports of QEMU's `usb-hub`."""
DEFAULT_STICK_SIZE = ByteSize(64 * 1024 * 1024)
MAX_STICK_SIZE = ByteSize(1024**4)
"""The largest usb-storage device (a sparse file in the state directory)."""
RESERVED_IDS = frozenset({"xhci", "vser"})
"""QEMU ids the guests use themselves (as are all ids starting with "kvu")."""

QemuId = Annotated[str, Field(pattern=r"^[A-Za-z][A-Za-z0-9_.-]{0,30}$")]
_PORT_PATH = re.compile(r"^[1-9][0-9]*(\.[1-9][0-9]*)*$")
_FIELD_PATH = re.compile(r"^[A-Za-z_]\w*(\[\d+\])*(\.[A-Za-z_]\w*(\[\d+\])*)*$")


class DeviceKind(StrEnum):
    """The emulated USB devices a node can have."""

    USB_STORAGE = "usb-storage"
    USB_SERIAL = "usb-serial"
    USB_KBD = "usb-kbd"
    USB_AUDIO = "usb-audio"  # a composite device: audio control + audio streaming interfaces
    HUB = "hub"


class ScenarioError(ValueError):
    """A scenario file or object that cannot be used; the message names the bad field."""


class DeviceSpec(BaseModel):
    """One emulated USB device plugged into a node."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: QemuId
    kind: DeviceKind
    serial: str | None = None
    size: ByteSize | None = None
    port: str | None = None
    hub: QemuId | None = None
    plugged: bool = True
    echo: bool = False
    """usb-serial only: the adapter's far end is a loopback plug (what is sent comes back)."""

    @field_validator("port", mode="before")
    @classmethod
    def _port(cls, value: object) -> object:
        if isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        if value is not None and not (isinstance(value, str) and _PORT_PATH.match(value)):
            raise ValueError("must be a port number like 2 or a hub port path like 4.2")
        return value

    @model_validator(mode="after")
    def _check(self) -> Self:
        if self.size is not None and self.kind is not DeviceKind.USB_STORAGE:
            raise ValueError("size: only usb-storage devices have a size")
        if self.echo and self.kind is not DeviceKind.USB_SERIAL:
            raise ValueError("echo: only usb-serial devices can have a loopback plug")
        if self.size is not None and self.size < 1024 * 1024:
            raise ValueError("size: must be at least 1MiB")
        if self.size is not None and self.size > MAX_STICK_SIZE:
            raise ValueError("size: must be at most 1TiB")
        if self.hub is not None and self.port is not None and "." in self.port:
            raise ValueError("port: with hub, port is the hub's port number, not a path")
        return self

    @property
    def disk_size(self) -> int:
        """Bytes of the backing image of a usb-storage device."""
        return int(self.size if self.size is not None else DEFAULT_STICK_SIZE)


class NodeSpec(BaseModel):
    """A Kubernetes node: one QEMU guest with emulated USB devices."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # a DNS subdomain that is also the value of the node's `kubernetes.io/hostname` label
    name: str = Field(min_length=1, max_length=63, pattern=r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
    devices: list[DeviceSpec] = Field(default_factory=list)
    memory_mib: int = Field(default=512, ge=256)

    @model_validator(mode="after")
    def _check(self) -> Self:
        seen: set[str] = set()
        for index, device in enumerate(self.devices):
            if device.id in RESERVED_IDS or device.id.startswith("kvu"):
                raise ValueError(f"devices[{index}].id: {device.id!r} is reserved for the sandbox")
            if device.id in seen:
                raise ValueError(f"devices[{index}].id: duplicate device id {device.id!r}")
            seen.add(device.id)
        refs: dict[str, int] = {}  # plug, unplug and status name a device by its serial, else id
        for index, device in enumerate(self.devices):
            ref = device.serial or device.id
            if ref in refs:
                field = "serial" if device.serial else "id"
                raise ValueError(f"devices[{index}].{field}: {ref!r} already names "
                                 f"devices[{refs[ref]}] (serials name devices: make them unique)")
            refs[ref] = index
        assign_ports(self.devices)
        return self

    def device(self, device_id: str) -> DeviceSpec:
        """The device with this id; KeyError names it when there is none."""
        for device in self.devices:
            if device.id == device_id:
                return device
        raise KeyError(f"node {self.name} has no device {device_id!r}")

    def port_paths(self) -> dict[str, str]:
        """Device id -> QEMU port path (e.g. "2", "4.2") for every device."""
        return assign_ports(self.devices)


class VMSpec(BaseModel):
    """A KubeVirt VM (its running VMI): one QEMU guest with four usb-redir slots."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    namespace: DNSLabel = "default"
    name: DNSLabel  # a label, not a subdomain: it is also the value of the VMI's kubevirt.io/vm
    client_passthrough: bool = Field(
        default=True,
        validation_alias=AliasChoices("clientPassthrough", "client_passthrough"),
        serialization_alias="clientPassthrough",
    )
    node: str = Field(min_length=1)
    memory_mib: int = Field(default=384, ge=256)


class Scenario(BaseModel):
    """Nodes with their USB devices and the VMs running on them."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    nodes: list[NodeSpec] = Field(min_length=1)
    vms: list[VMSpec] = Field(default_factory=list)

    @model_validator(mode="after")
    def _check(self) -> Self:
        names = [node.name for node in self.nodes]
        for index, name in enumerate(names):
            if name in names[:index]:
                raise ValueError(f"nodes[{index}].name: duplicate node {name!r}")
        keys: set[tuple[str, str]] = set()
        for index, vm in enumerate(self.vms):
            if (vm.namespace, vm.name) in keys:
                raise ValueError(f"vms[{index}]: duplicate VM {vm.namespace}/{vm.name}")
            keys.add((vm.namespace, vm.name))
            if vm.node not in names:
                raise ValueError(f"vms[{index}].node: no node named {vm.node!r}")
        return self

    def node(self, name: str) -> NodeSpec:
        """The node with this name; KeyError names it when there is none."""
        for node in self.nodes:
            if node.name == name:
                return node
        raise KeyError(f"scenario has no node {name!r}")

    def vm(self, namespace: str, name: str) -> VMSpec:
        """The VM with this namespace and name; KeyError names it when there is none."""
        for vm in self.vms:
            if (vm.namespace, vm.name) == (namespace, name):
                return vm
        raise KeyError(f"scenario has no VM {namespace}/{name}")


def default_scenario() -> Scenario:
    """node1 with two identical memory sticks (serials AAA1, AAA2) and a serial adapter, and
    node2 without devices; on node1 VM default/vm1 allows USB redirection and default/vm2 does
    not; on node2 VM default/vm3 allows it. A stick of node1 reaches vm1 on the node-local path
    and vm3 through the API server."""
    return Scenario(
        nodes=[
            NodeSpec(
                name="node1",
                devices=[
                    DeviceSpec(id="stick1", kind=DeviceKind.USB_STORAGE, serial="AAA1"),
                    DeviceSpec(id="stick2", kind=DeviceKind.USB_STORAGE, serial="AAA2"),
                    DeviceSpec(id="serial1", kind=DeviceKind.USB_SERIAL, serial="FT0001"),
                ],
            ),
            NodeSpec(name="node2"),
        ],
        vms=[
            VMSpec(namespace="default", name="vm1", client_passthrough=True, node="node1"),
            VMSpec(namespace="default", name="vm2", client_passthrough=False, node="node1"),
            VMSpec(namespace="default", name="vm3", client_passthrough=True, node="node2"),
        ],
    )


def assign_ports(devices: list[DeviceSpec]) -> dict[str, str]:
    """Give every device its QEMU port path: explicit ports first, then the lowest free port.

    Raises ValueError naming the device when a port is taken twice or does not exist, a hub is
    unknown, or no port is left.
    """
    hubs = {d.id for d in devices if d.kind is DeviceKind.HUB}
    for index, device in enumerate(devices):
        if device.hub is not None and (device.hub not in hubs or device.hub == device.id):
            raise ValueError(f"devices[{index}].hub: no hub device {device.hub!r}")
    paths: dict[str, str] = {}
    for index, device in enumerate(devices):
        if device.hub is None and device.port is not None:
            _claim(str(device.port), index, device.id, paths)
    parents: list[str | None] = [None]
    while parents:
        parent = parents.pop(0)
        parent_path = None if parent is None else paths[parent]
        group = [(i, d) for i, d in enumerate(devices) if d.hub == parent]
        for index, device in group:
            if parent_path is not None and device.port is not None:
                _claim(f"{parent_path}.{device.port}", index, device.id, paths)
        for index, device in group:
            if device.port is None:
                path = _lowest_free(parent_path, set(paths.values()))
                if path is None:
                    where = f"hub {parent}" if parent else "the xHCI controller"
                    raise ValueError(f"devices[{index}].port: no free port left on {where}")
                _claim(path, index, device.id, paths)
        parents.extend(d.id for _, d in group if d.kind is DeviceKind.HUB)
    for index, device in enumerate(devices):
        if device.id not in paths:
            raise ValueError(f"devices[{index}].hub: hub {device.hub!r} is not plugged anywhere")
    hub_paths = {paths[h] for h in hubs}
    for index, device in enumerate(devices):
        parent_path = paths[device.id].rpartition(".")[0]
        if parent_path and parent_path not in hub_paths:
            raise ValueError(f"devices[{index}].port: no hub at port {parent_path}")
    return paths


def _claim(path: str, index: int, device_id: str, paths: dict[str, str]) -> None:
    parts = path.split(".")
    if int(parts[0]) > ROOT_PORTS or any(int(p) > HUB_PORTS for p in parts[1:]):
        raise ValueError(f"devices[{index}].port: no port {path}")
    if path in paths.values():
        raise ValueError(f"devices[{index}].port: port {path} is used twice")
    paths[device_id] = path


def _lowest_free(parent: str | None, taken: set[str]) -> str | None:
    count = ROOT_PORTS if parent is None else HUB_PORTS
    for number in range(1, count + 1):
        path = str(number) if parent is None else f"{parent}.{number}"
        if path not in taken:
            return path
    return None


def parse_scenario(data: Any, *, source: str = "scenario") -> Scenario:
    """Validate plain data (as loaded from YAML); ScenarioError says what is wrong and where."""
    try:
        return Scenario.model_validate(data)
    except ValidationError as exc:
        raise ScenarioError(_describe(exc, source)) from None


def load_scenario(path: Path) -> Scenario:
    """Read a scenario YAML file; ScenarioError (never a traceback) says what is wrong and where."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ScenarioError(f"{path}: cannot read: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise ScenarioError(f"{path}: not a text file (byte {exc.start} is not UTF-8); a "
                            "scenario is a YAML file") from None
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 (a SafeLoader)
    except yaml.YAMLError as exc:
        raise ScenarioError(f"{path}: not valid YAML: {exc}") from None
    if data is None:
        raise ScenarioError(f"{path}: the file is empty; a scenario needs at least `nodes:`")
    return parse_scenario(data, source=str(path))


class _UniqueKeyLoader(yaml.SafeLoader):
    """PyYAML's safe loader, but a key given twice in one mapping is an error (as in YAML 1.2 and
    kubectl), not silently the last value."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if isinstance(key, (str, int, float, bool)) or key is None:
                if key in seen:
                    raise yaml.constructor.ConstructorError(
                        "while constructing a mapping", node.start_mark,
                        f"found duplicate key {key!r}", key_node.start_mark)
                seen.add(key)
        return super().construct_mapping(node, deep=deep)


def _describe(exc: ValidationError, source: str) -> str:
    lines = [f"{source}: invalid scenario:"]
    for error in exc.errors(include_url=False):
        where = _location(error["loc"])
        message = str(error["msg"]).removeprefix("Value error, ")
        head, sep, rest = message.partition(": ")
        if sep and _FIELD_PATH.match(head):
            where = f"{where}.{head}" if where else head
            message = rest
        lines.append(f"  {where}: {message}" if where else f"  {message}")
    return "\n".join(lines)


def _location(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part in {"str", "int", "constrained-str"} or part.startswith("function-"):
            continue  # pydantic's union-branch markers, not field names
        else:
            out += f".{part}" if out else part
    return out
