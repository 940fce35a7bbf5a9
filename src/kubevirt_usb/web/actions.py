"""What users change: attach, detach, grant, revoke, delete a policy. Every action is a POST
with the user's CSRF token, done with the user's own token; a refusal shows the API's reason. An
attach or detach answers with a progress panel that asks again each second until it settles."""

from __future__ import annotations

from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import Response

from kubevirt_usb.kube.objects import Obj
from kubevirt_usb.printable import printable
from kubevirt_usb.web import forms, progress
from kubevirt_usb.web.context import Visitor, namespace_of, path_name, posted, visitor, web
from kubevirt_usb.web.forms import FormError
from kubevirt_usb.web.kubeapi import USB_ATTACHMENTS, USB_POLICIES, APIFailure, Unauthenticated
from kubevirt_usb.web.views import selector_summary


def alert(request: Request, *, tone: str, title: str, text: str = "",
          status: int = 200) -> Response:
    return web(request).templates.response("_alert.html", status=status, tone=tone, title=title,
                                           text=text)


def refusal(request: Request, exc: APIFailure, *, title: str) -> Response:
    """The API's own reason for refusing, shown to the user (with the API's status code)."""
    if exc.unreachable:
        title = "Cannot reach the API server"
    # the API's message can echo what hardware or users wrote (names, serials): shown visibly
    return alert(request, tone="danger", title=title, text=printable(exc.message, limit=2048),
                 status=exc.code if 400 <= exc.code < 600 else 502)


def _attachment(request: Request) -> str:
    return path_name(request, "name", what="attachment")


def _policy(request: Request) -> str:
    return path_name(request, "name", what="policy")


async def _get_or_none(who: Visitor, name: str, *, namespace: str) -> Obj | None:
    try:
        return await who.client.get(USB_ATTACHMENTS, name, namespace=namespace)
    except Unauthenticated:
        raise
    except APIFailure as exc:
        if exc.code == 404:
            return None
        raise


DEVICES_CHANGED = "kvu-devices-changed"
"""The htmx event a settled attach or detach fires: the attach card reloads its free devices."""


def _progress_response(request: Request, result: progress.Progress, *, name: str,
                       poll_url: str) -> Response:
    response = web(request).templates.response("_progress.html", progress=result, name=name,
                                               poll_url=poll_url, steps=progress.STEPS)
    if result.settled and result.tone == "success":  # a device was taken or given back
        response.headers["HX-Trigger"] = DEVICES_CHANGED
    return response


def _poll_url(namespace: str, name: str, kind: str) -> str:
    return f"/namespaces/{quote(namespace)}/attachments/{quote(name)}/{kind}"


def _attach_view(request: Request, attachment: Obj | None, *, namespace: str,
                 name: str, vm: str, device: str) -> Response:
    result = progress.attach_progress(attachment, vm=vm, device=device)
    return _progress_response(request, result, name=name,
                              poll_url=_poll_url(namespace, name, "progress"))


async def attach(request: Request) -> Response:
    who, form = await posted(request)
    namespace = namespace_of(request)
    try:
        body = forms.attach_request(form, namespace=namespace)
    except FormError as exc:
        return alert(request, tone="danger", title="Cannot attach", text=str(exc), status=400)
    try:
        created = await who.client.create(USB_ATTACHMENTS, body, namespace=namespace)
    except Unauthenticated:
        raise
    except APIFailure as exc:
        return refusal(request, exc, title="The API server refused the attachment")
    name = str((created.get("metadata") or {}).get("name") or "")
    spec = created.get("spec") or {}
    return _attach_view(request, created, namespace=namespace, name=name,
                        vm=printable(spec.get("vm")), device=selector_summary(spec.get("device")))


async def attach_status(request: Request) -> Response:
    who = visitor(request)
    namespace, name = namespace_of(request), _attachment(request)
    try:
        found = await _get_or_none(who, name, namespace=namespace)
    except APIFailure as exc:
        return refusal(request, exc, title="Cannot follow the attachment")
    spec = (found or {}).get("spec") or {}
    return _attach_view(request, found, namespace=namespace, name=name,
                        vm=printable(spec.get("vm") or "the VM"),
                        device=selector_summary(spec.get("device")))


async def detach(request: Request) -> Response:
    who, _form = await posted(request)
    namespace, name = namespace_of(request), _attachment(request)
    try:
        before = await _get_or_none(who, name, namespace=namespace)
        if before is None:
            return alert(request, tone="info", title="Nothing to detach",
                         text=f"There is no attachment {name} in namespace {namespace}: it was "
                         "detached already, or never existed.", status=404)
        await who.client.delete(USB_ATTACHMENTS, name, namespace=namespace)
        found = await _get_or_none(who, name, namespace=namespace)
    except Unauthenticated:
        raise
    except APIFailure as exc:
        return refusal(request, exc, title="The API server refused the detach")
    vm = printable((before.get("spec") or {}).get("vm") or "the VM")
    return _progress_response(request, progress.detach_progress(found, vm=vm), name=name,
                              poll_url=_poll_url(namespace, name, "detach-status") +
                              f"?vm={quote(vm)}")


async def detach_status(request: Request) -> Response:
    who = visitor(request)
    namespace, name = namespace_of(request), _attachment(request)
    try:
        found = await _get_or_none(who, name, namespace=namespace)
    except APIFailure as exc:
        return refusal(request, exc, title="Cannot follow the detach")
    vm = printable(request.query_params.get("vm") or "the VM", limit=253)
    return _progress_response(request, progress.detach_progress(found, vm=vm), name=name,
                              poll_url=_poll_url(namespace, name, "detach-status") +
                              f"?vm={quote(vm)}")


async def grant(request: Request) -> Response:
    who, form = await posted(request)
    existing = form.get("policy", "").strip()
    try:
        namespace = forms.check_namespace(form.get("namespace", ""))
        if not existing:
            created = await who.client.create(USB_POLICIES, forms.new_policy(form))
            name = printable((created.get("metadata") or {}).get("name"))
            what = selector_summary((created.get("spec") or {}).get("devices"),
                                    empty="every device")
            return alert(request, tone="success", title=f"Granted {namespace}",
                         text=f"The new policy {name} lets {namespace} attach {what}.")
        policy = await who.client.get(USB_POLICIES, forms.check_object_name(existing,
                                                                          what="policy"))
        patch = forms.granted_patch(policy, namespace)
        if patch is not None:
            await who.client.merge_patch(USB_POLICIES, existing, patch)
    except FormError as exc:
        return alert(request, tone="danger", title="Cannot grant", text=str(exc), status=400)
    except Unauthenticated:
        raise
    except APIFailure as exc:
        return refusal(request, exc, title="The API server refused the grant")
    return alert(request, tone="success", title=f"Granted {namespace}",
                 text=f"Policy {existing} now includes {namespace}." if patch else
                 f"Policy {existing} already included {namespace}.")


async def revoke(request: Request) -> Response:
    who, form = await posted(request)
    name = _policy(request)
    try:
        namespace = forms.check_namespace(form.get("namespace", ""))
        policy = await who.client.get(USB_POLICIES, name)
        patch = forms.revoked_patch(policy, namespace)
        if patch is not None:
            await who.client.merge_patch(USB_POLICIES, name, patch)
    except FormError as exc:
        return alert(request, tone="danger", title="Cannot revoke", text=str(exc), status=400)
    except Unauthenticated:
        raise
    except APIFailure as exc:
        return refusal(request, exc, title="The API server refused the revoke")
    return alert(request, tone="success", title=f"Revoked {namespace}",
                 text=f"Policy {name} no longer includes {namespace}." if patch
                 else f"Policy {name} did not include {namespace}.")


async def delete_policy(request: Request) -> Response:
    who, _form = await posted(request)
    name = _policy(request)
    try:
        await who.client.delete(USB_POLICIES, name)
    except Unauthenticated:
        raise
    except APIFailure as exc:
        return refusal(request, exc, title="The API server refused to delete the policy")
    return alert(request, tone="success", title=f"Deleted policy {name}")
