"""Which path a stream takes (node-local or API) and why: plain values, no I/O."""

from __future__ import annotations

import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kubevirt_usb.redirect.pathchoice import (
    API,
    Launcher,
    Local,
    PathReason,
    PodView,
    ProcessView,
    SlotProbe,
    VMIView,
    choose_slot,
    direct_slot_order,
    falls_back,
    find_launcher,
    pod_uid_from_cgroup,
    pod_view,
    vmi_view,
)

VMI_UID = "6a1f4c2e-0b3d-4e5f-8a9b-0c1d2e3f4a5b"
POD_UID = "1234abcd-5678-4ef0-9abc-def012345678"
VMI = VMIView(namespace="default", name="vm1", uid=VMI_UID, node="node1", running=True)
POD = PodView(name="virt-launcher-vm1-abcde", uid=POD_UID, node="node1", phase="Running")
PAUSE = ProcessView(pid=100, pod_uid=POD_UID, uid=65535, has_private_dir=False)
LAUNCHER = ProcessView(pid=120, pod_uid=POD_UID, uid=107, has_private_dir=True)
QEMU = ProcessView(pid=140, pod_uid=POD_UID, uid=107, has_private_dir=True)


def launcher(**changes: object) -> Launcher | API:
    args: dict[str, object] = {"node": "node1", "enabled": True, "vmi": VMI, "pods": [POD],
                               "processes": [PAUSE, QEMU, LAUNCHER]}
    args.update(changes)
    return find_launcher(**args)  # type: ignore[arg-type]


def test_same_node_finds_the_launcher_process_whose_root_has_the_vmi_directory() -> None:
    assert launcher() == Launcher(pod=POD.name, pod_uid=POD_UID, pid=120,
                                  owners=frozenset({65535, 107}))


@pytest.mark.parametrize(("changes", "reason", "words"), [
    ({"enabled": False}, PathReason.LOCAL_PATH_DISABLED, "--no-local-path"),
    ({"vmi": None}, PathReason.VMI_NOT_RUNNING, "not running"),
    ({"vmi": VMIView(namespace="default", name="vm1", uid=VMI_UID, node="node1",
                     running=False)}, PathReason.VMI_NOT_RUNNING, "not running"),
    ({"vmi": VMIView(namespace="default", name="vm1", uid=VMI_UID, node="node2",
                     running=True)}, PathReason.VMI_ON_OTHER_NODE,
     "VMI default/vm1 runs on node node2, the device is on node node1"),
    ({"pods": []}, PathReason.LAUNCHER_NOT_FOUND, "No Running virt-launcher pod"),
    ({"pods": [PodView(name="virt-launcher-vm1-abcde", uid=POD_UID, node="node1",
                       phase="Pending")]}, PathReason.LAUNCHER_NOT_FOUND,
     "seen here: virt-launcher-vm1-abcde (Pending)"),
    ({"pods": [PodView(name="p", uid=POD_UID, node="node2", phase="Running")]},
     PathReason.LAUNCHER_NOT_FOUND, "on node node1"),
    ({"pods": [POD, PodView(name="impostor", uid=str(uuid.UUID(int=7)), node="node1",
                            phase="Running")]},
     PathReason.LAUNCHER_AMBIGUOUS, "(impostor, virt-launcher-vm1-abcde)"),
    ({"processes": [PAUSE]}, PathReason.LAUNCHER_PROCESS_NOT_FOUND, "1 processes of the pod"),
    ({"processes": []}, PathReason.LAUNCHER_PROCESS_NOT_FOUND, "0 processes of the pod"),
])
def test_why_the_api_path(changes: dict[str, object], reason: PathReason, words: str) -> None:
    choice = launcher(**changes)
    assert isinstance(choice, API)
    assert choice.reason is reason
    assert words in choice.message


def test_a_pod_the_vmi_does_not_list_as_active_is_not_its_launcher() -> None:
    impostor = PodView(name="impostor", uid=str(uuid.UUID(int=7)), node="node1",
                       phase="Running")
    vmi = VMIView(namespace="default", name="vm1", uid=VMI_UID, node="node1", running=True,
                  active_pods={POD_UID: "node1"})
    found = launcher(vmi=vmi, pods=[impostor, POD])
    assert isinstance(found, Launcher)
    assert found.pod == POD.name
    only_impostor = launcher(vmi=vmi, pods=[impostor],
                             processes=[ProcessView(pid=9, pod_uid=impostor.uid, uid=0,
                                                    has_private_dir=True)])
    assert isinstance(only_impostor, API)
    assert only_impostor.reason is PathReason.LAUNCHER_NOT_FOUND


def test_direct_streams_take_slots_from_the_top() -> None:
    assert direct_slot_order() == (3, 2, 1, 0)


FOUND = Launcher(pod=POD.name, pod_uid=POD_UID, pid=120, owners=frozenset({107}))


def test_the_highest_slot_not_held_is_taken() -> None:
    choice = choose_slot(FOUND, vmi_uid=VMI_UID, probes=[(3, SlotProbe.HELD), (2, SlotProbe.FREE)])
    assert choice == Local(pid=120, slot=2, pod=POD.name,
                           path=f"/proc/120/root/run/kubevirt-private/{VMI_UID}/virt-usbredir-2")
    assert "slot 2 of virt-launcher pod virt-launcher-vm1-abcde" in choice.message
    assert not falls_back(choice)


@pytest.mark.parametrize(("probe", "reason", "words"), [
    (SlotProbe.MISSING, PathReason.SOCKET_MISSING, "is not there"),
    (SlotProbe.IS_A_LINK, PathReason.SOCKET_IS_A_LINK, "is a symbolic link"),
    (SlotProbe.NOT_A_SOCKET, PathReason.SOCKET_NOT_A_SOCKET, "is not a socket"),
    (SlotProbe.OWNER_MISMATCH, PathReason.SOCKET_OWNER_MISMATCH, "belongs to nobody"),
    (SlotProbe.PROCESS_GONE, PathReason.LAUNCHER_PROCESS_GONE,
     "could not be reached: the launcher process exited"),
])
def test_a_slot_that_is_not_a_safe_socket_sends_the_stream_through_the_api(
        probe: SlotProbe, reason: PathReason, words: str) -> None:
    choice = choose_slot(FOUND, vmi_uid=VMI_UID, probes=[(3, SlotProbe.HELD), (2, probe)])
    assert isinstance(choice, API)
    assert (choice.reason, falls_back(choice)) == (reason, True)
    assert f"/proc/120/root/run/kubevirt-private/{VMI_UID}/virt-usbredir-2 {words}" in \
        choice.message


def test_all_slots_held_waits_instead_of_falling_back() -> None:
    choice = choose_slot(FOUND, vmi_uid=VMI_UID,
                         probes=[(s, SlotProbe.HELD) for s in direct_slot_order()])
    assert isinstance(choice, API)
    assert choice.reason is PathReason.NO_FREE_SLOT
    assert "slots 3, 2, 1, 0" in choice.message
    assert not falls_back(choice)


@given(st.lists(st.sampled_from(list(SlotProbe)), min_size=1, max_size=4))
def test_a_local_choice_is_always_the_first_free_slot_after_held_ones(
        found: list[SlotProbe]) -> None:
    probes = list(zip(direct_slot_order(), found, strict=False))
    choice = choose_slot(FOUND, vmi_uid=VMI_UID, probes=probes)
    first = next(((s, p) for s, p in probes if p is not SlotProbe.HELD), None)
    if first is not None and first[1] is SlotProbe.FREE:
        assert isinstance(choice, Local)
        assert choice.slot == first[0]
    else:
        assert isinstance(choice, API)


@pytest.mark.parametrize("text", [
    f"0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod"
    f"{POD_UID.replace('-', '_')}.slice/cri-containerd-0123abcd.scope\n",
    f"12:memory:/kubepods/besteffort/pod{POD_UID}/0123abcd\n0::/\n",
    f"0::/kubepods.slice/kubepods-pod{POD_UID.replace('-', '_')}.slice/\n",
])
def test_the_pod_uid_is_read_from_either_kubelet_cgroup_form(text: str) -> None:
    assert pod_uid_from_cgroup(text) == POD_UID


@pytest.mark.parametrize("text", ["0::/user.slice/session-1.scope\n", "",
                                  "0::/kubepods.slice/kubepods-burstable.slice\n",
                                  f"0::/podman-pod{POD_UID}0.slice\n"])
def test_no_pod_uid_where_the_cgroup_names_none(text: str) -> None:
    assert pod_uid_from_cgroup(text) is None


@given(st.uuids())
def test_both_forms_of_any_pod_uid_read_back(uid: uuid.UUID) -> None:
    text = str(uid)
    assert pod_uid_from_cgroup(f"0::/kubepods-pod{text.replace('-', '_')}.slice") == text
    assert pod_uid_from_cgroup(f"1:cpu:/kubepods/pod{text}/c") == text


def test_the_vmi_and_its_pods_are_read_from_their_objects() -> None:
    vmi = vmi_view({"metadata": {"namespace": "default", "name": "vm1", "uid": VMI_UID},
                    "status": {"phase": "Running", "nodeName": "node1",
                               "activePods": {POD_UID: "node1"}}})
    assert vmi == VMIView(namespace="default", name="vm1", uid=VMI_UID, node="node1",
                          running=True, active_pods={POD_UID: "node1"})
    assert vmi_view(None) is None
    scheduling = vmi_view({"metadata": {"uid": VMI_UID}, "status": {"phase": "Scheduling"}})
    assert scheduling is not None
    assert (scheduling.node, scheduling.running, scheduling.active_pods) == (None, False, None)
    pod = pod_view({"metadata": {"name": POD.name, "uid": POD_UID},
                    "spec": {"nodeName": "node1"}, "status": {"phase": "Running"}})
    assert pod == POD
    assert pod_view({}) == PodView(name="", uid="", node=None, phase=None)
