"""KubeVirt gives a VM instance four usbredir slots; each bound attachment of the VM takes one.

The controller counts a VM's slots by the attachments that hold a device for it (their claims
stay across VM restarts, so the count is per VM) plus those it is binding right now; a fifth
attachment waits in NoFreeSlot until one is detached.

Both kinds of slot count the same: a stream on the node-local path holds a slot the agent took
itself (`status.slotKind: Direct`, from slot 3 down), a stream on the API path one virt-handler
handed out (`VirtHandler`, from 0 up). Each bound attachment holds exactly one of either kind, so
counting the attachments counts both kinds together, whichever path each stream takes now.
"""

from __future__ import annotations

from collections.abc import Collection

SLOTS_PER_VM = 4


def free_slots(holders: Collection[str], *, total: int = SLOTS_PER_VM) -> int:
    """How many slots are left when the attachments `holders` hold one each."""
    return max(0, total - len(holders))


def no_free_slot_message(namespace: str, vm: str, holders: Collection[str],
                         *, total: int = SLOTS_PER_VM) -> str:
    listed = ", ".join(sorted(holders))
    return (f"VM {namespace}/{vm} already uses all {total} USB redirection slots ({listed}): "
            "this attachment waits until one of them is deleted")
