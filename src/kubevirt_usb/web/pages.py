"""The UI's pages. Each is a `Plan`: the lists it shows (`Source`s, read with the user's token)
and how it renders them into named parts. The page route renders the parts into the whole page;
its `/live/...` twin follows the same lists through watches and sends changed parts as server-sent
events."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from markupsafe import Markup
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response, StreamingResponse

from kubevirt_usb.models import API_VERSION
from kubevirt_usb.web import views
from kubevirt_usb.web.context import (
    SignInRequired,
    Visitor,
    is_htmx,
    namespace_of,
    page_context,
    path_name,
    visitor,
    web,
)
from kubevirt_usb.web.kubeapi import (
    EVENTS,
    USB_ATTACHMENTS,
    USB_DEVICES,
    USB_POLICIES,
    VMIS,
    VMS,
    APIFailure,
    Resource,
    Unauthenticated,
    UserClient,
)
from kubevirt_usb.web.live import (
    EXPIRED,
    Render,
    Snapshot,
    Source,
    SourceState,
    load,
    sse_message,
    stream,
)

OURS = f"involvedObject.apiVersion={API_VERSION}"
EXPIRED_HTML = '<div hx-get="/session" hx-trigger="load"></div>'


@dataclass
class Plan:
    """One page: its template, active navigation entry, lists, parts and extra context."""

    template: str
    active: str
    namespace: str
    sources: list[Source]
    render: Render
    context: dict[str, Any] = field(default_factory=dict)
    live_template: str | None = None  # what an htmx request re-rendering the live part gets
    context_from: Callable[[Snapshot], Awaitable[dict[str, Any]]] | None = None  # page only


PlanMaker = Callable[[Request, Visitor], Awaitable[Plan]]


def _part(request: Request, template: str, **context: Any) -> Markup:
    return Markup(web(request).templates.render(template, **context))  # noqa: S704 - autoescaped


def page(make: PlanMaker) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        who = visitor(request)
        plan = await make(request, who)
        snapshot = await load(who.client, plan.sources)
        parts = plan.render(snapshot)
        extra = await plan.context_from(snapshot) if plan.context_from else {}
        query = f"?{request.url.query}" if request.url.query else ""
        context = page_context(request, who, active=plan.active, namespace=plan.namespace,
                               parts=parts, live_url=f"/live{request.url.path}{query}",
                               **plan.context, **extra)
        template = plan.template
        if plan.live_template and is_htmx(request) and request.headers.get(
                "hx-target", "").endswith("-live"):
            template = plan.live_template
        return web(request).templates.response(template, **context)

    return endpoint


def live(make: PlanMaker) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        headers = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
        try:
            who = visitor(request)
            plan = await make(request, who)
        except (SignInRequired, Unauthenticated):
            return Response(sse_message(EXPIRED, EXPIRED_HTML), media_type="text/event-stream",
                            headers=headers)
        events = stream(who.client, plan.sources, plan.render, expired_html=EXPIRED_HTML,
                        signed_in=lambda: _still_signed_in(request))
        return StreamingResponse(events, media_type="text/event-stream", headers=headers)

    return endpoint


def _still_signed_in(request: Request) -> bool:
    """Whether the user of a live page is still signed in (their session did not end); an open
    page asking does not keep an idle session alive."""
    try:
        visitor(request, touch=False)
    except (SignInRequired, Unauthenticated):
        return False
    return True


@dataclass(frozen=True)
class Permission:
    """Whether the API allows the user something; false also when the API could not be asked,
    and then `unknown` says why (so a page says "cannot check", not "read-only")."""

    allowed: bool
    unknown: str = ""

    def __bool__(self) -> bool:
        return self.allowed


async def _can(client: UserClient, verb: str, res: Resource, *,
               namespace: str | None = None) -> Permission:
    try:
        return Permission(allowed=await client.can(verb, res, namespace=namespace))
    except Unauthenticated:
        raise
    except APIFailure as exc:
        return Permission(allowed=False, unknown=exc.message)


# ---- devices ----------------------------------------------------------------------------------


async def devices_plan(request: Request, who: Visitor) -> Plan:
    namespace = namespace_of(request)
    keep = views.DeviceFilter.from_query(request.query_params)
    all_attachments, can_attach = await asyncio.gather(
        _can(who.client, "list", USB_ATTACHMENTS),
        _can(who.client, "create", USB_ATTACHMENTS, namespace=namespace))
    sources = [Source("devices", USB_DEVICES),
               Source("attachments", USB_ATTACHMENTS,
                      namespace=None if all_attachments else namespace)]
    now = web(request).now

    def render(snapshot: Snapshot) -> dict[str, str]:
        rows = views.device_rows(snapshot["devices"].items,
                                 attachments=snapshot["attachments"].items, now=now())
        groups = views.devices_by_node(rows, keep=keep)
        return {"devices": _part(request, "_devices.html", groups=groups,
                                 error=snapshot["devices"].error, total=len(rows),
                                 shown=sum(len(g.rows) for g in groups),
                                 can_attach=can_attach, namespace=namespace)}

    async def context_from(snapshot: Snapshot) -> dict[str, Any]:
        rows = views.device_rows(snapshot["devices"].items, now=now())
        attach = await attach_form(request, who, namespace=namespace, can_attach=can_attach,
                                   devices=snapshot["devices"])
        return {"attach_form": attach, "nodes": [(n, n) for n in views.node_names(rows)]}

    return Plan(template="devices.html", active="devices", namespace=namespace,
                sources=sources, render=render, live_template="devices_live.html",
                context_from=context_from,
                context={"filter": keep, "states": [(s, s) for s in views.DEVICE_STATES]})


async def attach_form(request: Request, who: Visitor, *, namespace: str, can_attach: Permission,
                      vm: str = "", device: str = "", fixed_vm: bool = False,
                      devices: SourceState | None = None) -> Markup:
    """The attach card: pick a free device (and a VM, unless fixed) or type a selector.
    `devices`: the devices already read for the page, if it read them."""
    vms: list[tuple[str, str]] = []
    free: list[tuple[str, str]] = []
    vms_error = devices_error = ""
    if can_attach:
        wanted = [] if devices is not None else [Source("devices", USB_DEVICES)]
        if not fixed_vm:
            wanted.append(Source("vms", VMS, namespace=namespace))
        found = await load(who.client, wanted)
        devices = devices if devices is not None else found["devices"]
        rows = views.device_rows(devices.items, now=web(request).now())
        free = [(r.name, r.label) for r in rows if r.free]
        devices_error = devices.error.message if devices.error else ""
        if not fixed_vm:
            names = sorted(str((v.get("metadata") or {}).get("name")) for v in found["vms"].items)
            vms = [(n, n) for n in names]
            vms_error = found["vms"].error.message if found["vms"].error else ""
    return _part(request, "_attach_form.html", namespace=namespace, vm=vm, vms=vms,
                 vms_error=vms_error, devices=free, devices_error=devices_error,
                 device=device, fixed_vm=fixed_vm, can_attach=can_attach)


async def attach_form_fragment(request: Request) -> Response:
    who = visitor(request)
    namespace = namespace_of(request)
    can_attach = await _can(who.client, "create", USB_ATTACHMENTS, namespace=namespace)
    html = await attach_form(request, who, namespace=namespace, can_attach=can_attach,
                             vm=request.query_params.get("vm", ""),
                             device=request.query_params.get("device", ""),
                             fixed_vm=request.query_params.get("fixed") == "1")
    return Response(str(html), media_type="text/html")


# ---- VMs --------------------------------------------------------------------------------------


async def vms_plan(request: Request, who: Visitor) -> Plan:
    namespace = namespace_of(request)
    sources = [Source("vms", VMS, namespace=namespace), Source("vmis", VMIS, namespace=namespace),
               Source("attachments", USB_ATTACHMENTS, namespace=namespace)]
    now = web(request).now

    def render(snapshot: Snapshot) -> dict[str, str]:
        attachments = views.attachment_rows(snapshot["attachments"].items, now=now())
        rows = views.vm_rows(snapshot["vms"].items, vmis=snapshot["vmis"].items,
                             attachments=attachments)
        return {"vms": _part(request, "_vms.html", rows=rows, namespace=namespace,
                             error=snapshot["vms"].error,
                             attachments_error=snapshot["attachments"].error)}

    return Plan(template="vms.html", active="vms", namespace=namespace, sources=sources,
                render=render)


async def vm_plan(request: Request, who: Visitor) -> Plan:
    namespace = namespace_of(request)
    vm = path_name(request, "vm", what="VM")
    by_name = f"metadata.name={vm}"
    sources = [Source("vm", VMS, namespace=namespace, field_selector=by_name),
               Source("vmi", VMIS, namespace=namespace, field_selector=by_name),
               Source("attachments", USB_ATTACHMENTS, namespace=namespace),
               Source("events", EVENTS, namespace=namespace, field_selector=OURS)]
    can_attach, can_detach = await asyncio.gather(
        _can(who.client, "create", USB_ATTACHMENTS, namespace=namespace),
        _can(who.client, "delete", USB_ATTACHMENTS, namespace=namespace))
    now = web(request).now

    def render(snapshot: Snapshot) -> dict[str, str]:
        attachments = snapshot["attachments"]
        rows = views.attachment_rows(attachments.items, now=now(), vm=vm)
        vm_objects, vmis = snapshot["vm"].items, snapshot["vmi"].items
        row = views.vm_row(vm_objects[0], vmi=vmis[0] if vmis else None,
                           attachments=rows) if vm_objects else None
        mine = views.EventFilter(kind="USBAttachment", names=frozenset(r.name for r in rows))
        common = {"vm": vm, "namespace": namespace}
        return {
            "summary": _part(request, "_vm_summary.html", row=row, error=snapshot["vm"].error,
                             **common),
            "attachments": _part(request, "_attachments.html", rows=rows,
                                 error=attachments.error, can_detach=can_detach, **common),
            "slots": _part(request, "_slots.html", slots=views.slots(rows),
                           error=attachments.error),
            "events": _part(request, "_events.html", error=snapshot["events"].error,
                            rows=views.event_rows(snapshot["events"].items, now=now(),
                                                  keep=mine, limit=20)),
        }

    attach = await attach_form(request, who, namespace=namespace, can_attach=can_attach, vm=vm,
                               fixed_vm=True)
    return Plan(template="vm.html", active="vms", namespace=namespace, sources=sources,
                render=render, context={"vm": vm, "attach_form": attach})


async def switch_namespace(request: Request) -> Response:
    visitor(request)
    return RedirectResponse(f"/namespaces/{namespace_of(request)}/vms", status_code=303)


# ---- policies and events ----------------------------------------------------------------------


async def policies_plan(request: Request, who: Visitor) -> Plan:
    namespace = namespace_of(request)
    sources = [Source("policies", USB_POLICIES)]
    can_grant, can_change, can_delete = await asyncio.gather(
        _can(who.client, "create", USB_POLICIES), _can(who.client, "patch", USB_POLICIES),
        _can(who.client, "delete", USB_POLICIES))
    now = web(request).now

    def render(snapshot: Snapshot) -> dict[str, str]:
        rows = views.policy_rows(snapshot["policies"].items, now=now())
        return {"policies": _part(request, "_policies.html", rows=rows,
                                  error=snapshot["policies"].error, can_change=can_change,
                                  can_delete=can_delete)}

    async def context_from(snapshot: Snapshot) -> dict[str, Any]:
        rows = views.policy_rows(snapshot["policies"].items, now=now())
        return {"policy_names": [(r.name, r.name) for r in rows] if can_change else []}

    return Plan(template="policies.html", active="policies", namespace=namespace,
                sources=sources, render=render, context_from=context_from,
                context={"can_grant": can_grant})


async def events_plan(request: Request, who: Visitor) -> Plan:
    namespace = namespace_of(request)
    everywhere = request.query_params.get("scope") != "namespace" and await _can(
        who.client, "list", EVENTS)
    scope = None if everywhere else namespace
    now = web(request).now

    def render(snapshot: Snapshot) -> dict[str, str]:
        rows = views.event_rows(snapshot["events"].items, now=now())
        return {"events": _part(request, "_events.html", rows=rows,
                                error=snapshot["events"].error)}

    return Plan(template="events.html", active="events", namespace=namespace,
                sources=[Source("events", EVENTS, namespace=scope, field_selector=OURS)],
                render=render, context={"scope": scope})
