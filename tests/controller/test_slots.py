"""Four usbredir slots per VM."""

from __future__ import annotations

from kubevirt_usb.controller.slots import SLOTS_PER_VM, free_slots, no_free_slot_message


def test_slots_left() -> None:
    assert SLOTS_PER_VM == 4
    assert free_slots(set()) == 4
    assert free_slots({"a", "b", "c"}) == 1
    assert free_slots({"a", "b", "c", "d", "e"}) == 0


def test_the_message_lists_the_holders() -> None:
    assert no_free_slot_message("ns", "vm1", {"b", "a"}, total=2) == (
        "VM ns/vm1 already uses all 2 USB redirection slots (a, b): this attachment waits "
        "until one of them is deleted")
