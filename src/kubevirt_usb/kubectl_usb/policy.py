"""`allow`: which USBPolicy to create or extend so that namespaces may attach the devices a
selector names, decided from the policies that exist.

A policy made by `allow` is named after its selector (`allow-serial-aaa1`, `allow-46f4-0001`,
`allow-all-devices`); a later `allow` with the same selector adds namespaces to the policy with
exactly that selector (whoever made it) instead of creating another one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from kubevirt_usb.kubectl_usb.objects import Obj, meta, name, readable, slug, spec
from kubevirt_usb.kubectl_usb.selection import Selector
from kubevirt_usb.models import API_VERSION

MANAGED_BY = {"app.kubernetes.io/managed-by": "kubectl-usb"}


@dataclass(frozen=True)
class Create:
    """Create this USBPolicy."""

    policy: dict[str, Any]

    @property
    def name(self) -> str:
        return str(self.policy["metadata"]["name"])


@dataclass(frozen=True)
class Extend:
    """Set the policy's namespaces to `namespaces`, if it still has `resource_version`."""

    name: str
    resource_version: str
    namespaces: list[str]


@dataclass(frozen=True)
class Unchanged:
    """The policy already allows every namespace asked for."""

    name: str
    namespaces: list[str]


Plan = Create | Extend | Unchanged


def _name_parts(selector: Selector) -> list[str]:
    parts = []
    if selector.name is not None:
        parts += ["device", selector.name]
    if selector.vendor_id is not None and selector.product_id is not None:
        parts += [selector.vendor_id, selector.product_id]
    elif selector.vendor_id is not None:
        parts += ["vendor", selector.vendor_id]
    elif selector.product_id is not None:
        parts += ["product", selector.product_id]
    for label, value in (("product", selector.product), ("serial", selector.serial),
                         ("node", selector.node), ("port", selector.port)):
        if value is not None:
            parts += [label, value]
    return parts or ["all", "devices"]


def policy_names(selector: Selector) -> list[str]:
    """Names for a new policy with this selector, most readable first."""
    parts = _name_parts(selector)
    first = readable("allow", *parts)
    exact = slug("allow", *parts, *(f"{k}={v}" for k, v in selector.to_spec().items()))
    return [first, exact] + [f"{exact[:58]}-{i}" for i in range(2, 10)]


def _same_selector(policy: Obj, selector: Selector) -> bool:
    return (Selector.from_spec(spec(policy).get("devices")) == selector
            and not spec(policy).get("namespaceSelector"))


def plan_allow(policies: Sequence[Obj], *, namespaces: Sequence[str],
               selector: Selector) -> Plan:
    """Extend the policy with exactly this selector (the one `allow` would name first, else the
    first by name), or create one under the first free name."""
    names = policy_names(selector)
    same = sorted((p for p in policies if _same_selector(p, selector)),
                  key=lambda p: (names.index(name(p)) if name(p) in names else len(names),
                                 name(p)))
    if same:
        policy = same[0]
        have = [str(n) for n in spec(policy).get("namespaces") or []]
        missing = [n for n in dict.fromkeys(namespaces) if n not in have]
        if not missing:
            return Unchanged(name(policy), have)
        return Extend(name(policy), str(meta(policy).get("resourceVersion") or ""),
                      have + missing)
    taken = {name(p) for p in policies}
    free = next((n for n in names if n not in taken), names[-1])
    return Create({
        "apiVersion": API_VERSION, "kind": "USBPolicy",
        "metadata": {"name": free, "labels": dict(MANAGED_BY)},
        "spec": {"namespaces": list(dict.fromkeys(namespaces)), "devices": selector.to_spec()},
    })


def describe_plan(plan: Plan, *, selector: Selector) -> str:
    """What `allow` did, in one line."""
    devices = "every device" if selector.is_empty() else f"devices matching {selector.words()}"
    if isinstance(plan, Create):
        names = list(plan.policy["spec"]["namespaces"])
        verb = "created"
    elif isinstance(plan, Extend):
        names, verb = plan.namespaces, "extended"
    else:
        names, verb = plan.namespaces, "unchanged"
    who = ("namespace " if len(names) == 1 else "namespaces ") + ", ".join(names)
    already = " already" if isinstance(plan, Unchanged) else ""
    return f"usbpolicy/{plan.name} {verb}: {who}{already} may attach {devices}"
