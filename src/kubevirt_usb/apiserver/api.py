"""The API emulator's verbs over the store: create, get, list, update, patch, delete, watch.

This is where Kubernetes' object semantics live (uid, resourceVersion, generation, finalizers and
deletionTimestamp, status subresource, dry run, managedFields, schema validation and pruning of
custom resources). HTTP is not known here: `app.py` parses requests into these calls.
"""

from __future__ import annotations

import base64
import secrets
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

from kubevirt_usb.apiserver import apply as ssa
from kubevirt_usb.apiserver import errors, patching, schema
from kubevirt_usb.apiserver.auth import UserInfo
from kubevirt_usb.apiserver.clock import Clock, rfc3339, utc_now
from kubevirt_usb.apiserver.names import name_errors
from kubevirt_usb.apiserver.resources import Registry, ResourceInfo
from kubevirt_usb.apiserver.selectors import FieldSelector, LabelSelector, object_fields
from kubevirt_usb.apiserver.store import Obj, Store, StoreEvent, Watcher

PATCH_JSON = "application/json-patch+json"
PATCH_MERGE = "application/merge-patch+json"
PATCH_STRATEGIC = "application/strategic-merge-patch+json"
PATCH_APPLY = "application/apply-patch+yaml"
PATCH_TYPES = (PATCH_JSON, PATCH_MERGE, PATCH_STRATEGIC, PATCH_APPLY)

# metadata fields a client cannot change with an update
_IMMUTABLE_META = ("uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds",
                   "namespace", "name", "generation")


def deep_copy(obj: Any) -> Any:
    return orjson.loads(orjson.dumps(obj))


@dataclass(kw_only=True)
class RequestContext:
    """Who asks and how: the options every write carries."""

    user: UserInfo
    dry_run: bool = False
    field_manager: str = ""
    field_validation: str = "Warn"  # Strict | Warn | Ignore
    user_agent: str = ""
    warnings: list[str] = field(default_factory=list)

    def manager(self) -> str:
        return self.field_manager or ssa.manager_from_user_agent(self.user_agent)


@dataclass(frozen=True, kw_only=True)
class ListResult:
    items: list[Obj]
    resource_version: int
    continue_token: str = ""
    remaining: int | None = None


def _meta(obj: Obj) -> dict[str, Any]:
    meta = obj.get("metadata")
    if not isinstance(meta, dict):
        raise errors.bad_request("metadata must be an object")
    return meta


def _without(obj: Obj, *keys: str) -> Obj:
    return {k: v for k, v in obj.items() if k not in keys}


def _spec_part(obj: Obj) -> Obj:
    """Everything a generation counts: all but metadata and status."""
    return _without(obj, "metadata", "status", "apiVersion", "kind")


def _comparable(obj: Obj) -> Obj:
    """What decides whether a write changed anything (managedFields timestamps do not count)."""
    meta = {k: v for k, v in obj.get("metadata", {}).items() if k != "resourceVersion"}
    if "managedFields" in meta:
        meta["managedFields"] = [{k: v for k, v in entry.items() if k != "time"}
                                 for entry in meta["managedFields"] or []]
    return {**_without(obj, "apiVersion"), "metadata": meta}


def encode_continue(*, rv: int, after: tuple[str, str]) -> str:
    raw = orjson.dumps({"rv": rv, "ns": after[0], "name": after[1]})
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_continue(token: str) -> tuple[int, tuple[str, str]]:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        data = orjson.loads(raw)
        return int(data["rv"]), (str(data["ns"]), str(data["name"]))
    except (ValueError, KeyError, TypeError) as exc:
        raise errors.bad_request(f"continue key is not valid: {exc}") from exc


class API:
    """The verbs. One instance per emulated cluster; hooks react to writes (RBAC, CRDs, GC)."""

    def __init__(self, *, registry: Registry, store: Store, clock: Clock = utc_now) -> None:
        self.registry = registry
        self.store = store
        self.clock = clock
        self.on_write: list[Callable[[ResourceInfo, Obj | None, Obj | None], None]] = []

    # ---- reads --------------------------------------------------------------------------------

    def get(self, info: ResourceInfo, *, namespace: str, name: str) -> Obj:
        obj = self.store.get(info.group_resource, namespace, name)
        if obj is None:
            raise errors.not_found(resource=info.resource, group=info.group, name=name)
        return obj

    def list(
        self,
        info: ResourceInfo,
        *,
        namespace: str | None,
        labels: LabelSelector | None = None,
        fields: FieldSelector | None = None,
        limit: int = 0,
        continue_token: str = "",
    ) -> ListResult:
        rv = self.store.resource_version
        after: tuple[str, str] | None = None
        if continue_token:
            rv, after = decode_continue(continue_token)
        matched = [o for o in self.store.items(info.group_resource, namespace)
                   if self.matches(info, o, labels=labels, fields=fields)]
        if after is not None:
            matched = [o for o in matched if _key(o) > after]
        if limit and len(matched) > limit:
            page = matched[:limit]
            token = encode_continue(rv=rv, after=_key(page[-1]))
            return ListResult(items=page, resource_version=rv, continue_token=token,
                              remaining=len(matched) - limit)
        return ListResult(items=matched, resource_version=rv)

    @staticmethod
    def matches(info: ResourceInfo, obj: Obj, *, labels: LabelSelector | None,
                fields: FieldSelector | None) -> bool:
        meta = obj.get("metadata", {})
        if labels is not None and not labels.matches(meta.get("labels") or {}):
            return False
        return fields is None or fields.matches(object_fields(obj, extra=info.field_selectors))

    def watch(self, info: ResourceInfo, *, namespace: str | None, since: int) -> Watcher:
        return self.store.watch(info.group_resource, namespace=namespace, since=since)

    # ---- create -------------------------------------------------------------------------------

    def create(self, info: ResourceInfo, *, namespace: str, body: Obj, ctx: RequestContext) -> Obj:
        obj = self._check_type(info, deep_copy(body))
        meta = _meta(obj)
        self._check_namespace_of_body(info, namespace, meta)
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = str(meta["generateName"]) + _random_suffix()
        name = str(meta.get("name") or "")
        self._validate_name(info, meta)
        if info.namespaced:
            meta["namespace"] = namespace
            self._check_namespace_usable(namespace)
        else:
            meta.pop("namespace", None)
        if self.store.get(info.group_resource, namespace if info.namespaced else "", name):
            raise errors.already_exists(resource=info.resource, group=info.group, name=name)
        if "status" in info.subresources and info.kind != "Namespace":
            obj.pop("status", None)
        for key in ("deletionTimestamp", "deletionGracePeriodSeconds", "resourceVersion"):
            meta.pop(key, None)
        meta["uid"] = str(uuid.uuid4())
        meta["creationTimestamp"] = rfc3339(self.clock())
        if info.has_generation:
            meta["generation"] = 1
        else:
            meta.pop("generation", None)
        if info.kind == "Namespace":
            obj["spec"] = {**(obj.get("spec") or {}), "finalizers": ["kubernetes"]}
            obj["status"] = {"phase": "Active"}
            meta.setdefault("labels", {})["kubernetes.io/metadata.name"] = name
        obj = self._prepare_custom(info, obj, ctx)
        obj = ssa.record_update(None, obj, manager=ctx.manager(), now=rfc3339(self.clock()),
                                api_version=info.api_version, list_type=self._list_type(info))
        return self._commit(info, None, obj, ctx)

    # ---- update -------------------------------------------------------------------------------

    def update(self, info: ResourceInfo, *, namespace: str, name: str, body: Obj,
               ctx: RequestContext, subresource: str = "") -> Obj:
        existing = self.get(info, namespace=namespace, name=name)
        new = self._check_type(info, deep_copy(body))
        return self._update(info, existing, new, ctx, subresource=subresource, record=True)

    def _update(self, info: ResourceInfo, existing: Obj, new: Obj, ctx: RequestContext, *,
                subresource: str, record: bool) -> Obj:
        meta = _meta(new)
        old_meta = existing["metadata"]
        name = old_meta["name"]
        if meta.get("name", name) != name:
            raise errors.bad_request(
                f"the name of the object ({meta.get('name')}) does not match the name on the URL "
                f"({name})")
        if info.namespaced and meta.get("namespace", old_meta.get("namespace")) != \
                old_meta.get("namespace"):
            raise errors.bad_request(
                "the namespace of the provided object does not match the namespace sent on the "
                "request")
        wanted_rv = str(meta.get("resourceVersion") or "")
        if wanted_rv and wanted_rv != old_meta["resourceVersion"]:
            raise errors.stale_resource_version(resource=info.resource, group=info.group,
                                                name=name)
        if subresource == "finalize":
            finalizers = (new.get("spec") or {}).get("finalizers") or []
            new = {**existing, "spec": {**(existing.get("spec") or {}), "finalizers": finalizers}}
            meta = deep_copy(old_meta)
            new["metadata"] = meta
        elif subresource == "status":
            new = {**existing, "status": new.get("status")} if "status" in new else \
                _without(existing, "status")
            meta = deep_copy(old_meta)
            new["metadata"] = meta
        elif "status" in info.subresources and info.kind != "Namespace":
            new = _without(new, "status")
            if "status" in existing:
                new["status"] = existing["status"]
        for key in _IMMUTABLE_META:
            if key in old_meta:
                meta[key] = old_meta[key]
            else:
                meta.pop(key, None)
        new["metadata"] = meta
        new["apiVersion"] = existing.get("apiVersion", info.api_version)
        new["kind"] = info.kind
        self._check_finalizers_on_terminating(info, existing, new)
        if subresource != "status":
            new = self._prepare_custom(info, new, ctx)
        if info.has_generation and _spec_part(new) != _spec_part(existing):
            new["metadata"]["generation"] = int(old_meta.get("generation", 1)) + 1
        if record:
            new = ssa.record_update(existing, new, manager=ctx.manager(),
                                    now=rfc3339(self.clock()), api_version=info.api_version,
                                    list_type=self._list_type(info), subresource=subresource)
        if _comparable(new) == _comparable(existing):
            return existing  # a no-op write: no new resourceVersion, no event
        return self._commit(info, existing, new, ctx)

    # ---- patch --------------------------------------------------------------------------------

    def patch(self, info: ResourceInfo, *, namespace: str, name: str, patch: Any,
              content_type: str, ctx: RequestContext, subresource: str = "",
              force: bool = False) -> Obj:
        existing = self.store.get(info.group_resource, namespace if info.namespaced else "", name)
        if content_type == PATCH_APPLY:
            return self._apply(info, namespace=namespace, name=name, existing=existing,
                               config=patch, ctx=ctx, subresource=subresource, force=force)
        if existing is None:
            raise errors.not_found(resource=info.resource, group=info.group, name=name)
        if content_type == PATCH_MERGE:
            patched = patching.json_merge_patch(existing, patch)
        elif content_type == PATCH_JSON:
            patched = patching.json_patch(existing, patch)
        elif content_type == PATCH_STRATEGIC:
            if info.custom:
                raise errors.APIError(
                    code=415, reason="UnsupportedMediaType",
                    message="the body of the request was in an unknown format - accepted media "
                    "types include: application/json-patch+json, application/merge-patch+json, "
                    "application/apply-patch+yaml")
            patched = patching.strategic_merge_patch(
                existing, patch, list_strategy=patching.builtin_list_strategies(info.group,
                                                                                info.kind))
        else:
            raise errors.unsupported_media_type(content_type)
        if not isinstance(patched, dict):
            raise errors.bad_request("the patched object is not a JSON object")
        return self._update(info, existing, patched, ctx, subresource=subresource, record=True)

    def _apply(self, info: ResourceInfo, *, namespace: str, name: str, existing: Obj | None,
               config: Any, ctx: RequestContext, subresource: str, force: bool) -> Obj:
        if not isinstance(config, dict):
            raise errors.bad_request("the apply configuration must be an object")
        if not ctx.field_manager:
            raise errors.bad_request(
                "PATCH, application/apply-patch+yaml requests require fieldManager to be set")
        self._check_type(info, config, required=True)
        cfg_meta = config.get("metadata") if isinstance(config.get("metadata"), dict) else {}
        if cfg_meta.get("name", name) != name:
            raise errors.bad_request(
                f"the name of the object ({cfg_meta.get('name')}) does not match the name on "
                f"the URL ({name})")
        applied = ssa.apply_config(existing, config, manager=ctx.field_manager, force=force,
                                   now=rfc3339(self.clock()), api_version=info.api_version,
                                   list_type=self._list_type(info), subresource=subresource)
        if existing is None:
            meta = applied.setdefault("metadata", {})
            meta["name"] = name
            managed = meta.get("managedFields")
            created = self.create(info, namespace=namespace, body=applied,
                                  ctx=RequestContext(user=ctx.user, dry_run=ctx.dry_run,
                                                     field_manager=ctx.field_manager,
                                                     field_validation=ctx.field_validation,
                                                     user_agent=ctx.user_agent,
                                                     warnings=ctx.warnings))
            if managed is None or ctx.dry_run:
                return created
            fixed = {**created, "metadata": {**created["metadata"], "managedFields": managed}}
            self.store.put(info.group_resource, fixed)
            return fixed
        return self._update(info, existing, applied, ctx, subresource=subresource, record=False)

    # ---- delete -------------------------------------------------------------------------------

    def delete(self, info: ResourceInfo, *, namespace: str, name: str, options: Obj,
               ctx: RequestContext) -> tuple[Obj, bool]:
        """Delete or start deleting; returns (object, removed_now)."""
        existing = self.get(info, namespace=namespace, name=name)
        meta = existing["metadata"]
        pre = options.get("preconditions") or {}
        if pre.get("uid") and pre["uid"] != meta.get("uid"):
            raise errors.conflict(
                resource=info.resource, group=info.group, name=name,
                detail=f"Precondition failed: UID in precondition: {pre['uid']}, UID in object "
                f"meta: {meta.get('uid')}")
        if pre.get("resourceVersion") and pre["resourceVersion"] != meta.get("resourceVersion"):
            raise errors.conflict(
                resource=info.resource, group=info.group, name=name,
                detail=f"Precondition failed: ResourceVersion in precondition: "
                f"{pre['resourceVersion']}, ResourceVersion in object meta: "
                f"{meta.get('resourceVersion')}")
        policy = options.get("propagationPolicy") or (
            "Orphan" if options.get("orphanDependents") else "Background")
        finalizers = list(meta.get("finalizers") or [])
        if policy == "Orphan" and "orphan" not in finalizers:
            finalizers.append("orphan")
        if policy == "Foreground" and "foregroundDeletion" not in finalizers:
            finalizers.append("foregroundDeletion")
        if info.kind == "Namespace":
            spec_fin = (existing.get("spec") or {}).get("finalizers") or []
            if spec_fin or finalizers:
                return self._mark_deleting(info, existing, finalizers, ctx), False
        if finalizers:
            return self._mark_deleting(info, existing, finalizers, ctx), False
        if ctx.dry_run:
            return existing, True
        return self._remove(info, existing), True

    def _mark_deleting(self, info: ResourceInfo, existing: Obj, finalizers: list[str],
                       ctx: RequestContext) -> Obj:
        meta = dict(existing["metadata"])
        if meta.get("deletionTimestamp") and meta.get("finalizers") == finalizers:
            return existing
        meta.setdefault("deletionTimestamp", rfc3339(self.clock()))
        meta.setdefault("deletionGracePeriodSeconds", 0)
        meta["finalizers"] = finalizers
        new = {**existing, "metadata": meta}
        if info.has_generation:
            meta["generation"] = int(meta.get("generation", 1)) + 1
        if info.kind == "Namespace":
            new["status"] = {**(existing.get("status") or {}), "phase": "Terminating"}
        return self._commit(info, existing, new, ctx)

    def _remove(self, info: ResourceInfo, existing: Obj) -> Obj:
        meta = {**existing["metadata"],
                "resourceVersion": str(self.store.next_resource_version())}
        final = {**existing, "metadata": meta}
        self.store.remove(info.group_resource, final)
        for hook in self.on_write:
            hook(info, existing, None)
        return final

    def remove_finalized(self, info: ResourceInfo, obj: Obj) -> None:
        """Remove an object whose deletion has started and whose finalizers are all gone."""
        current = self.store.get(info.group_resource, obj["metadata"].get("namespace", ""),
                                 obj["metadata"]["name"])
        if current is not None:
            self._remove(info, current)

    # ---- shared steps -------------------------------------------------------------------------

    def _commit(self, info: ResourceInfo, existing: Obj | None, new: Obj,
                ctx: RequestContext) -> Obj:
        meta = new["metadata"]
        if existing is not None and meta.get("deletionTimestamp") and not meta.get("finalizers") \
                and not (info.kind == "Namespace" and (new.get("spec") or {}).get("finalizers")):
            if ctx.dry_run:
                return new
            return self._remove(info, existing)
        if ctx.dry_run:
            meta.setdefault("resourceVersion", existing["metadata"]["resourceVersion"]
                            if existing else "")
            return new
        meta["resourceVersion"] = str(self.store.next_resource_version())
        stored = self.store.put(info.group_resource, new)
        for hook in self.on_write:
            hook(info, existing, stored)
        return stored

    def _check_type(self, info: ResourceInfo, obj: Any, *, required: bool = False) -> Obj:
        if not isinstance(obj, dict):
            raise errors.bad_request("the body of the request must be a JSON object")
        api_version = obj.get("apiVersion")
        kind = obj.get("kind")
        if required and (not api_version or not kind):
            missing = "apiVersion" if not api_version else "kind"
            raise errors.bad_request(f"Object '{missing}' is missing in '{orjson.dumps(obj)[:200]!r}'")
        if api_version and api_version != info.api_version and not (
                info.custom and api_version.rpartition("/")[0] == info.group):
            raise errors.bad_request(
                f"the API version in the data ({api_version}) does not match the expected API "
                f"version ({info.api_version})")
        if kind and kind != info.kind:
            raise errors.bad_request(
                f"the kind in the data ({kind}) does not match the expected kind ({info.kind})")
        obj["apiVersion"] = info.api_version
        obj["kind"] = info.kind
        if not isinstance(obj.get("metadata", {}), dict):
            raise errors.bad_request("metadata must be an object")
        obj.setdefault("metadata", {})
        return obj

    @staticmethod
    def _check_namespace_of_body(info: ResourceInfo, namespace: str, meta: dict[str, Any]) -> None:
        if info.namespaced and meta.get("namespace") and meta["namespace"] != namespace:
            raise errors.bad_request(
                "the namespace of the provided object does not match the namespace sent on the "
                "request")

    def _validate_name(self, info: ResourceInfo, meta: dict[str, Any]) -> None:
        name = meta.get("name")
        if not name:
            raise errors.invalid(kind=info.kind, group=info.group, name="", causes=[
                errors.Cause(type="FieldValueRequired", field="metadata.name",
                             message="Required value: name or generateName is required")])
        problems = name_errors(kind=info.kind, name=str(name))
        if problems:
            raise errors.invalid(kind=info.kind, group=info.group, name=str(name), causes=[
                errors.Cause(type="FieldValueInvalid", field="metadata.name",
                             message=f'Invalid value: "{name}": {"; ".join(problems)}')])

    def _check_namespace_usable(self, namespace: str) -> None:
        ns = self.store.get(("", "namespaces"), "", namespace)
        if ns is None:
            raise errors.not_found(resource="namespaces", group="", name=namespace)
        if ns["metadata"].get("deletionTimestamp"):
            raise errors.APIError(
                code=403, reason="Forbidden",
                message=f"unable to create new content in namespace {namespace} because it is "
                "being terminated", kind="namespaces", name=namespace)

    def _check_finalizers_on_terminating(self, info: ResourceInfo, existing: Obj,
                                         new: Obj) -> None:
        if not existing["metadata"].get("deletionTimestamp"):
            return
        old = set(existing["metadata"].get("finalizers") or [])
        added = [f for f in new["metadata"].get("finalizers") or [] if f not in old]
        if added:
            listed = ", ".join(f'"{f}"' for f in added)
            raise errors.invalid(kind=info.kind, group=info.group,
                                 name=existing["metadata"]["name"], causes=[errors.Cause(
                                     type="FieldValueForbidden", field="metadata.finalizers",
                                     message="Forbidden: no new finalizers can be added if the "
                                     f"object is being deleted, found new finalizers []string{{"
                                     f"{listed}}}")])

    def _prepare_custom(self, info: ResourceInfo, obj: Obj, ctx: RequestContext) -> Obj:
        if not info.custom or info.schema is None:
            return obj
        defaulted = schema.apply_defaults(obj, schema=info.schema)
        pruned = schema.prune(defaulted, schema=info.schema)
        unknown = _unknown_fields(defaulted, pruned)
        if unknown and ctx.field_validation == "Strict":
            raise errors.bad_request(
                ".".join(["strict decoding error: " + ", ".join(
                    f'unknown field "{f}"' for f in unknown)]))
        if unknown and ctx.field_validation == "Warn":
            ctx.warnings.extend(f'unknown field "{f}"' for f in unknown)
        causes = schema.validate(pruned, schema=info.schema, kind=info.kind, group=info.group)
        if causes:
            raise errors.invalid(kind=info.kind, group=info.group,
                                 name=str(pruned["metadata"].get("name", "")), causes=causes)
        return pruned

    def _list_type(self, info: ResourceInfo) -> Callable[[tuple[str, ...]], ssa.ListType]:
        if info.custom and info.schema is not None:
            spec = info.schema

            def from_schema(path: tuple[str, ...]) -> ssa.ListType:
                kind, keys = schema.list_type_at(spec, path)
                return ssa.ListType(kind=kind, keys=keys)  # type: ignore[arg-type]

            return from_schema
        strategies = patching.builtin_list_strategies(info.group, info.kind)

        def from_strategies(path: tuple[str, ...]) -> ssa.ListType:
            strategy = strategies(path)
            if strategy is None or strategy.strategy != "merge":
                return ssa.ListType(kind="atomic", keys=())
            if strategy.merge_key:
                return ssa.ListType(kind="map", keys=(strategy.merge_key,))
            return ssa.ListType(kind="set", keys=())

        return from_strategies


def _key(obj: Obj) -> tuple[str, str]:
    meta = obj["metadata"]
    return (meta.get("namespace", ""), meta["name"])


def _random_suffix() -> str:
    alphabet = "bcdfghjklmnpqrstvwxz2456789"
    return "".join(secrets.choice(alphabet) for _ in range(5))


def _unknown_fields(before: Any, after: Any, prefix: str = "") -> list[str]:
    """Dotted paths present in `before` and pruned from `after`."""
    out: list[str] = []
    if isinstance(before, dict) and isinstance(after, dict):
        for key, value in before.items():
            path = f"{prefix}.{key}" if prefix else str(key)
            if key not in after:
                out.append(path)
            else:
                out.extend(_unknown_fields(value, after[key], path))
    elif isinstance(before, list) and isinstance(after, list):
        for index, (b, a) in enumerate(zip(before, after, strict=False)):
            out.extend(_unknown_fields(b, a, f"{prefix}[{index}]"))
    return out


def is_store_event_for(event: StoreEvent, info: ResourceInfo) -> bool:
    return event.group_resource == info.group_resource
