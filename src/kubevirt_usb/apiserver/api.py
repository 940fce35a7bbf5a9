"""The API emulator's verbs over the store: create, get, list, update, patch, delete, watch.

This is where Kubernetes' object semantics live (uid, resourceVersion, generation, finalizers and
deletionTimestamp, status subresource, dry run, managedFields, schema validation and pruning of
custom resources). HTTP is not known here: `app.py` parses requests into these calls.
"""

from __future__ import annotations

import base64
import builtins
import datetime as dt
import secrets
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson

from kubevirt_usb.apiserver import apply as ssa
from kubevirt_usb.apiserver import errors, patching, schema
from kubevirt_usb.apiserver.auth import UserInfo
from kubevirt_usb.apiserver.gotypes import body_type_error, metadata_type_error
from kubevirt_usb.apiserver.names import metadata_causes, name_errors
from kubevirt_usb.apiserver.resources import Registry, ResourceInfo
from kubevirt_usb.apiserver.selectors import FieldSelector, LabelSelector, go_quote, object_fields
from kubevirt_usb.apiserver.store import Obj, Store, TooOldResourceVersion, Watcher
from kubevirt_usb.clock import WallClock, parse_rfc3339, rfc3339, utc_now

PATCH_JSON = "application/json-patch+json"
PATCH_MERGE = "application/merge-patch+json"
PATCH_STRATEGIC = "application/strategic-merge-patch+json"
PATCH_APPLY = "application/apply-patch+yaml"
PATCH_TYPES = (PATCH_JSON, PATCH_MERGE, PATCH_STRATEGIC, PATCH_APPLY)
CUSTOM_PATCH_TYPES = (PATCH_JSON, PATCH_MERGE, PATCH_APPLY)

# metadata fields a client cannot change with an update
_IMMUTABLE_META = ("uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds",
                   "namespace", "name", "generation")
_NAMESPACE_BUSY = ("The system is ensuring all content is removed from this namespace.  Upon "
                   "completion, this namespace will automatically be purged by the system.")
_INCONSISTENT_CONTINUE = (
    "The provided continue parameter is too old to display a consistent list result. You can "
    "start a new list without the continue parameter, or use the continue token in this response "
    "to retrieve the remainder of the results. Continuing with the provided token results in an "
    "inconsistent list - objects that were created, modified, or deleted between the time the "
    "first chunk was returned and now may show up in the list.")

Validator = Callable[[Obj], list[errors.Cause]]
WriteHook = Callable[[ResourceInfo, Obj | None, Obj | None], None]


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


@dataclass(frozen=True, kw_only=True)
class DeleteResult:
    """What a DELETE did: the object (final state, or marked for deletion) and whether it is
    gone now."""

    obj: Obj
    removed: bool

    def __iter__(self) -> Iterator[Any]:
        """`obj, removed = api.delete(...)` still reads as it did."""
        return iter((self.obj, self.removed))


@dataclass(frozen=True, kw_only=True)
class ListOptions:
    """The list parameters a client sends (k8s.io/apimachinery ListOptions)."""

    labels: LabelSelector | None = None
    fields: FieldSelector | None = None
    limit: int = 0
    continue_token: str = ""
    resource_version: str = ""
    resource_version_match: str = ""


def _meta(obj: Obj) -> dict[str, Any]:
    meta = obj.get("metadata")
    if not isinstance(meta, dict):
        raise errors.bad_request("metadata must be an object")
    return meta


def _without(obj: Obj, *keys: str) -> Obj:
    return {k: v for k, v in obj.items() if k not in keys}


def _spec_part(obj: Obj, *, status_counts: bool) -> Obj:
    """Everything a generation counts: all but metadata (and status, when it is a subresource)."""
    if status_counts:
        return _without(obj, "metadata", "apiVersion", "kind")
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
        # kube-apiserver's words (storage.DecodeContinue wrapped by the etcd3 store)
        raise errors.bad_request("invalid continue token: continue key is not valid") from exc


def storage_key(info: ResourceInfo, namespace: str, name: str) -> str:
    """The etcd key kube-apiserver would keep the object under (it shows in some messages)."""
    prefix = {("", "nodes"): "minions", ("", "services"): "services/specs"}.get(
        info.group_resource, info.resource)
    if info.custom or info.group == "apiextensions.k8s.io":
        prefix = f"{info.group}/{info.resource}"
    return f"/registry/{prefix}/{namespace}/{name}" if namespace else f"/registry/{prefix}/{name}"


def parse_resource_version(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise errors.bad_request(f'invalid resource version: strconv.ParseUint: parsing '
                                 f'"{text}": invalid syntax') from None
    if value < 0:
        raise errors.bad_request(f'invalid resource version: strconv.ParseUint: parsing '
                                 f'"{text}": invalid syntax')
    return value


class API:
    """The verbs. One instance per emulated cluster; hooks react to writes (RBAC, CRDs, GC)."""

    def __init__(self, *, registry: Registry, store: Store, clock: WallClock = utc_now) -> None:
        self.registry = registry
        self.store = store
        self.clock = clock
        self.on_write: list[WriteHook] = []
        self.validators: dict[tuple[str, str], Validator] = {}

    # ---- reads --------------------------------------------------------------------------------

    def get(self, info: ResourceInfo, *, namespace: str, name: str) -> Obj:
        obj = self.store.get(info.group_resource, namespace, name)
        if obj is None:
            raise errors.not_found(resource=info.resource, group=info.group, name=name)
        return obj

    def list(self, info: ResourceInfo, *, namespace: str | None,
             options: ListOptions | None = None) -> ListResult:
        """One page of a list, as of the resourceVersion the options ask for."""
        opts = options or ListOptions()
        rv, after = self._list_point(opts)
        try:
            objects = self.store.items_at(info.group_resource, namespace, rv)
        except TooOldResourceVersion as exc:
            raise self._expired(opts, after, exc) from None
        matched = [o for o in objects
                   if self.matches(info, o, labels=opts.labels, fields=opts.fields)]
        if after is not None:
            matched = [o for o in matched if _key(o) > after]
        if opts.limit and len(matched) > opts.limit:
            page = matched[:opts.limit]
            token = encode_continue(rv=rv, after=_key(page[-1]))
            unfiltered = opts.labels is None and opts.fields is None
            return ListResult(items=page, resource_version=rv, continue_token=token,
                              remaining=len(matched) - opts.limit if unfiltered else None)
        return ListResult(items=matched, resource_version=rv)

    def _list_point(self, opts: ListOptions) -> tuple[int, tuple[str, str] | None]:
        """The resourceVersion a list reads at, and the key it continues after."""
        current = self.store.resource_version
        if opts.continue_token:
            rv, after = decode_continue(opts.continue_token)
            return (current if rv < 0 else rv), after
        match = opts.resource_version_match
        if match and not opts.resource_version:
            raise _list_options_invalid(
                "resourceVersionMatch", "Forbidden: resourceVersionMatch is forbidden unless "
                "resourceVersion is provided")
        if match not in ("", "Exact", "NotOlderThan"):
            raise _list_options_invalid(
                "resourceVersionMatch", f'Unsupported value: "{match}": supported values: '
                '"Exact", "NotOlderThan", ""', cause="FieldValueNotSupported")
        if opts.resource_version in ("", "0"):
            if match == "Exact":
                raise _list_options_invalid(
                    "resourceVersionMatch", 'Forbidden: resourceVersionMatch "exact" is '
                    'forbidden for resourceVersion "0"')
            return current, None
        rv = parse_resource_version(opts.resource_version)
        if rv > current:
            raise errors.APIError(
                code=504, reason="Timeout",
                message=f"Timeout: Too large resource version: {rv}, current: {current}",
                retry_after_seconds=1,
                causes=[errors.Cause(type="ResourceVersionTooLarge",
                                     message="Too large resource version")])
        exact = match == "Exact" or (match == "" and opts.limit > 0)
        return (rv if exact else current), None

    @staticmethod
    def _expired(opts: ListOptions, after: tuple[str, str] | None,
                 exc: TooOldResourceVersion) -> errors.APIError:
        if opts.continue_token and after is not None:
            error = errors.gone(_INCONSISTENT_CONTINUE)
            error.list_continue = encode_continue(rv=-1, after=after)
            return error
        return errors.gone(f"too old resource version: {exc.requested} ({exc.oldest})")

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

    def create(self, info: ResourceInfo, *, namespace: str, body: Obj, ctx: RequestContext,
               managed_fields: builtins.list[Any] | None = None, posted: bool = False,
               whole_body: bool = True) -> Obj:
        """Store a new object. `managed_fields` (server-side apply) replace the recorded ones.

        `posted`: the body came with a POST, whose storage refuses a client's resourceVersion
        (500, after validation); `whole_body`: the body is the object as decoded from the
        request (not an apply configuration), so decoding errors name the kind."""
        obj = self._check_type(info, deep_copy(body))
        meta = _meta(obj)
        client_version = meta.get("resourceVersion")
        self._check_namespace_of_body(info, namespace, meta)
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = str(meta["generateName"]) + _random_suffix()
        self._validate_name(info, meta)
        name = str(meta["name"])
        if info.namespaced:
            meta["namespace"] = namespace
            self._check_namespace_usable(info, namespace, name)
        else:
            meta.pop("namespace", None)
        if self.store.get(info.group_resource, namespace if info.namespaced else "", name):
            raise errors.already_exists(resource=info.resource, group=info.group, name=name)
        if "status" in info.subresources and info.kind not in ("Namespace", "Node"):
            obj.pop("status", None)
        for key in ("deletionTimestamp", "deletionGracePeriodSeconds", "resourceVersion",
                    "selfLink"):
            meta.pop(key, None)
        meta["uid"] = str(uuid.uuid4())
        meta["creationTimestamp"] = rfc3339(self.clock())
        if info.has_generation:
            meta["generation"] = 1
        else:
            meta.pop("generation", None)
        obj = _builtin_defaults(info, obj)
        obj = self._prepare_custom(info, obj, ctx, whole_body=whole_body)
        self._validate_kind(info, obj)
        if posted and not ctx.dry_run and resource_version_set_on_create(client_version):
            raise errors.APIError(code=500, reason="",
                                  message="resourceVersion should not be set on objects to be "
                                  "created")
        if managed_fields is not None:
            obj["metadata"]["managedFields"] = managed_fields
        else:
            obj = ssa.record_update(None, obj, manager=ctx.manager(), now=rfc3339(self.clock()),
                                    api_version=info.api_version,
                                    list_type=self._list_type(info), map_type=self._map_type(info))
        return self._commit(info, None, obj, ctx)

    # ---- update -------------------------------------------------------------------------------

    def update(self, info: ResourceInfo, *, namespace: str, name: str, body: Obj,
               ctx: RequestContext, subresource: str = "") -> Obj:
        """PUT: replace the object (or one subresource of it)."""
        existing = self.store.get(info.group_resource, namespace, name)
        new = self._check_type(info, deep_copy(body))
        if existing is None:
            if info.create_on_update and not subresource:
                self._check_name_matches(_meta(new), name)
                return self.create(info, namespace=namespace, body=new, ctx=ctx)
            raise errors.not_found(resource=info.resource, group=info.group, name=name)
        return self._update(info, existing, new, ctx, subresource=subresource, record=True,
                            whole_body=True)

    def _update(self, info: ResourceInfo, existing: Obj, new: Obj, ctx: RequestContext, *,
                subresource: str, record: bool, precondition: bool = True,
                whole_body: bool = False) -> Obj:
        meta = _meta(new)
        old_meta = existing["metadata"]
        name = old_meta["name"]
        self._check_name_matches(meta, name)
        if info.namespaced and meta.get("namespace", old_meta.get("namespace")) != \
                old_meta.get("namespace"):
            raise errors.bad_request(
                "the namespace of the provided object does not match the namespace sent on the "
                "request")
        wanted_rv = str(meta.get("resourceVersion") or "")
        if wanted_rv and wanted_rv != old_meta["resourceVersion"]:
            raise errors.stale_resource_version(resource=info.resource, group=info.group,
                                                name=name)
        if precondition and not wanted_rv and not info.allow_unconditional_update:
            # the generic registry names the resource (plural) where a kind would go
            raise errors.invalid(kind=info.resource, group=info.group, name=name, causes=[
                errors.Cause(type="FieldValueInvalid", field="metadata.resourceVersion",
                             message="Invalid value: 0: must be specified for an update")])
        new = _scope_to_subresource(info, existing, new, subresource)
        meta = new["metadata"]
        for key in _IMMUTABLE_META:
            if key in old_meta:
                meta[key] = old_meta[key]
            else:
                meta.pop(key, None)
        meta.pop("selfLink", None)
        new["apiVersion"] = existing.get("apiVersion", info.api_version)
        new["kind"] = info.kind
        self._check_finalizers_on_terminating(info, existing, new)
        self._validate_meta_update(info, meta)
        new = _builtin_defaults(info, new)
        new = self._prepare_custom(info, new, ctx, whole_body=whole_body)
        self._validate_kind(info, new)
        status_counts = "status" not in info.subresources
        if info.has_generation and _spec_part(new, status_counts=status_counts) != \
                _spec_part(existing, status_counts=status_counts):
            new["metadata"]["generation"] = int(old_meta.get("generation", 1)) + 1
        if record:
            new = ssa.record_update(existing, new, manager=ctx.manager(),
                                    now=rfc3339(self.clock()), api_version=info.api_version,
                                    list_type=self._list_type(info),
                                    map_type=self._map_type(info),
                                    ignored_fields=self._ignored_fields(info, subresource),
                                    subresource=subresource)
        if _comparable(new) == _comparable(existing):
            return existing  # a no-op write: no new resourceVersion, no event
        return self._commit(info, existing, new, ctx)

    @staticmethod
    def _check_name_matches(meta: dict[str, Any], name: str) -> None:
        if meta.get("name", name) != name:
            raise errors.bad_request(
                f"the name of the object ({meta.get('name')}) does not match the name on the URL "
                f"({name})")

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
        elif content_type == PATCH_STRATEGIC and not info.custom:
            patched = patching.strategic_merge_patch(
                existing, patch, list_strategy=patching.builtin_list_strategies(info.group,
                                                                                info.kind))
        else:
            raise errors.unsupported_media_type(patch_types(info))
        if not isinstance(patched, dict):
            raise errors.bad_request("the patched object is not a JSON object")
        meta = patched.get("metadata")
        problem = metadata_type_error(meta) if isinstance(meta, dict) else None
        if problem is not None:  # as the patch handler reports an undecodable result: 422
            raise errors.invalid(kind="", group="", name="", causes=[errors.Cause(
                type="FieldValueInvalid", field="patch",
                message=f"Invalid value: {go_quote(orjson.dumps(patched).decode())}: {problem}")])
        patched = self._check_type(info, patched)
        return self._update(info, existing, patched, ctx, subresource=subresource, record=True,
                            precondition=False)

    def _apply(self, info: ResourceInfo, *, namespace: str, name: str, existing: Obj | None,
               config: Any, ctx: RequestContext, subresource: str, force: bool) -> Obj:
        if not isinstance(config, dict):
            raise errors.bad_request("the apply configuration must be an object")
        if not isinstance(config.get("metadata", {}), dict):
            raise errors.bad_request("metadata must be an object")
        if config.get("kind") and config["kind"] != info.kind:
            raise errors.bad_request(
                f"the kind in the data ({config['kind']}) does not match the expected kind "
                f"({info.kind})")
        cfg_meta = config.get("metadata") or {}
        if cfg_meta.get("name", name) != name:
            raise errors.bad_request(
                f"the name of the object ({cfg_meta.get('name')}) does not match the name on "
                f"the URL ({name})")
        if existing is None and subresource:
            raise errors.not_found(resource=info.resource, group=info.group, name=name)
        applied = ssa.apply_config(existing, config, manager=ctx.field_manager, force=force,
                                   now=rfc3339(self.clock()), api_version=info.api_version,
                                   list_type=self._list_type(info), map_type=self._map_type(info),
                                   ignored_fields=self._ignored_fields(info, subresource),
                                   subresource=subresource)
        if existing is None:
            meta = applied.setdefault("metadata", {})
            meta["name"] = name
            managed = meta.pop("managedFields", None)
            return self.create(info, namespace=namespace, body=applied, ctx=ctx,
                               managed_fields=managed, whole_body=False)
        return self._update(info, existing, applied, ctx, subresource=subresource, record=False,
                            precondition=False)

    # ---- delete -------------------------------------------------------------------------------

    def delete(self, info: ResourceInfo, *, namespace: str, name: str, options: Obj,
               ctx: RequestContext) -> DeleteResult:
        """Delete, or start deleting (finalizers, namespaces, CRDs)."""
        existing = self.get(info, namespace=namespace, name=name)
        self._check_preconditions(info, existing, options)
        if info.kind == "Namespace":
            return self._delete_namespace(info, existing, options, ctx)
        if info.group_resource == ("apiextensions.k8s.io", "customresourcedefinitions") and \
                not existing["metadata"].get("deletionTimestamp"):
            finalizers = _deletion_finalizers(existing, options)
            if CRD_CLEANUP not in finalizers:
                finalizers.append(CRD_CLEANUP)
            return DeleteResult(obj=self._mark_deleting(info, existing, finalizers, ctx,
                                                        plain=True), removed=False)
        if graceful_deletion(info):
            return self._delete_gracefully(info, existing, options, ctx)
        finalizers = _deletion_finalizers(existing, options)
        if finalizers:
            return DeleteResult(obj=self._mark_deleting(info, existing, finalizers, ctx),
                                removed=False)
        if ctx.dry_run:
            return DeleteResult(obj=existing, removed=True)
        return DeleteResult(obj=self._remove(info, existing), removed=True)

    def _delete_gracefully(self, info: ResourceInfo, existing: Obj, options: Obj,
                           ctx: RequestContext) -> DeleteResult:
        """A Pod's delete (rest.BeforeDelete with the pod strategy): a Pod bound to a node is
        marked with deletionTimestamp = now + its grace period and stays, Terminating, until
        its kubelet deletes it with grace period 0; a shorter grace period may move the
        deadline closer, a longer one changes nothing. Every step is an update the watchers
        see, and a grace period of 0 without finalizers then removes the object."""
        now = self.clock()
        step = grace_step(existing, requested=_grace_option(options), now=now)
        finalizers = _deletion_finalizers(existing, options)
        if step is None:  # graceful deletion pending: nothing changes
            return DeleteResult(obj=existing, removed=False)
        marked = existing
        if step.period is not None:
            meta = dict(existing["metadata"])
            meta["deletionTimestamp"] = rfc3339(step.deadline)
            meta["deletionGracePeriodSeconds"] = step.period
            if step.first and meta.get("generation"):
                meta["generation"] = int(meta["generation"]) + 1
            if finalizers:
                meta["finalizers"] = finalizers
            else:
                meta.pop("finalizers", None)
            marked = self._commit(info, existing, {**existing, "metadata": meta}, ctx)
        if finalizers or (step.period or 0) > 0:
            return DeleteResult(obj=marked, removed=False)
        if ctx.dry_run:
            return DeleteResult(obj=marked, removed=True)
        return DeleteResult(obj=self._remove(info, marked), removed=True)

    def _check_preconditions(self, info: ResourceInfo, existing: Obj, options: Obj) -> None:
        """DeleteOptions.preconditions as rest.BeforeDelete checks them (a Namespace: as its own
        storage does); a precondition that is present counts, even when empty."""
        meta = existing["metadata"]
        pre = options.get("preconditions") or {}
        uid, version = pre.get("uid"), pre.get("resourceVersion")
        if info.kind == "Namespace":
            problem = ""
            if uid is not None and uid != meta.get("uid"):
                problem = (f"Precondition failed: UID in precondition: {uid}, UID in object "
                           f"meta: {meta.get('uid')}")
            elif version is not None and version != meta.get("resourceVersion"):
                problem = (f"Precondition failed: ResourceVersion in precondition: {version}, "
                           f"ResourceVersion in object meta: {meta.get('resourceVersion')}")
            if problem:
                raise errors.conflict(resource=info.resource, group=info.group,
                                      name=meta["name"], detail=problem)
            return
        detail = ""
        if uid is not None and uid != meta.get("uid"):
            detail = (f"the UID in the precondition ({uid}) does not match the UID in record "
                      f"({meta.get('uid')}). The object might have been deleted and then "
                      "recreated")
        elif version is not None and version != meta.get("resourceVersion"):
            detail = (f"the ResourceVersion in the precondition ({version}) does not match the "
                      f"ResourceVersion in record ({meta.get('resourceVersion')}). The object "
                      "might have been modified")
        if detail:  # BeforeDelete names the kind where a resource would go
            raise errors.conflict(resource=info.kind, group=info.group, name=meta["name"],
                                  detail=detail)

    def _delete_namespace(self, info: ResourceInfo, existing: Obj, options: Obj,
                          ctx: RequestContext) -> DeleteResult:
        meta = existing["metadata"]
        if not meta.get("deletionTimestamp"):
            finalizers = _deletion_finalizers(existing, options)
            return DeleteResult(obj=self._mark_deleting(info, existing, finalizers, ctx,
                                                        plain=True), removed=False)
        if (existing.get("spec") or {}).get("finalizers"):
            raise errors.conflict(resource="namespaces", group="", name=meta["name"],
                                  detail=_NAMESPACE_BUSY)
        if meta.get("finalizers"):
            return DeleteResult(obj=existing, removed=False)
        if ctx.dry_run:
            return DeleteResult(obj=existing, removed=True)
        return DeleteResult(obj=self._remove(info, existing), removed=True)

    def _mark_deleting(self, info: ResourceInfo, existing: Obj, finalizers: builtins.list[str],
                       ctx: RequestContext, *, plain: bool = False) -> Obj:
        """Set deletionTimestamp (with grace period 0 and a generation bump, as the generic
        registry marks an object with finalizers; `plain`: only the timestamp, as namespaces
        and CRDs are marked) and the finalizers."""
        meta = dict(existing["metadata"])
        if meta.get("deletionTimestamp") and (meta.get("finalizers") or []) == finalizers:
            return existing
        if not meta.get("deletionTimestamp"):
            meta["deletionTimestamp"] = rfc3339(self.clock())
        if not plain and "deletionGracePeriodSeconds" not in meta:
            meta["deletionGracePeriodSeconds"] = 0
            if meta.get("generation"):
                meta["generation"] = int(meta["generation"]) + 1
        if finalizers:
            meta["finalizers"] = finalizers
        else:
            meta.pop("finalizers", None)
        new = {**existing, "metadata": meta}
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
        if existing is not None and _delete_during_update(existing, new) \
                and not (info.kind == "Namespace" and (new.get("spec") or {}).get("finalizers")):
            if ctx.dry_run:
                return new
            return self._remove(info, existing)
        if ctx.dry_run:
            meta["resourceVersion"] = existing["metadata"]["resourceVersion"] if existing else ""
            return new
        meta["resourceVersion"] = str(self.store.next_resource_version())
        stored = self.store.put(info.group_resource, new)
        for hook in self.on_write:
            hook(info, existing, stored)
        return stored

    def _check_type(self, info: ResourceInfo, obj: Any) -> Obj:
        if not isinstance(obj, dict):
            raise errors.bad_request("the body of the request must be a JSON object")
        api_version = obj.get("apiVersion")
        kind = obj.get("kind")
        if api_version and api_version != info.api_version and not (
                info.custom and api_version.rpartition("/")[0] == info.group):
            raise errors.bad_request(
                f"the API version in the data ({api_version}) does not match the expected API "
                f"version ({info.api_version})")
        if kind and kind != info.kind:
            if info.custom:  # the schema validation of custom resources reports it (422)
                obj.setdefault("apiVersion", info.api_version)
                if not isinstance(obj.get("metadata", {}), dict):
                    raise errors.bad_request("metadata must be an object")
                obj.setdefault("metadata", {})
                self._check_metadata_types(info, obj["metadata"])
                return obj
            raise errors.bad_request(
                f"{kind} in version \"{info.version}\" cannot be handled as a {info.kind}: "
                f"the kind in the data ({kind}) does not match the expected kind ({info.kind})")
        obj["apiVersion"] = info.api_version
        obj["kind"] = info.kind
        if not isinstance(obj.get("metadata", {}), dict):
            raise errors.bad_request("metadata must be an object")
        obj.setdefault("metadata", {})
        self._check_metadata_types(info, obj["metadata"])
        problem = body_type_error(info.group, info.kind, obj)
        if problem is not None:
            raise errors.undecodable(kind=info.kind, version=info.version, problem=problem)
        return obj

    @staticmethod
    def _check_metadata_types(info: ResourceInfo, meta: dict[str, Any]) -> None:
        problem = metadata_type_error(meta)
        if problem is not None:
            raise errors.undecodable(kind=info.kind, version=info.version, problem=problem)

    @staticmethod
    def _check_namespace_of_body(info: ResourceInfo, namespace: str, meta: dict[str, Any]) -> None:
        if info.namespaced and meta.get("namespace") and meta["namespace"] != namespace:
            raise errors.bad_request(
                "the namespace of the provided object does not match the namespace sent on the "
                "request")

    def _validate_name(self, info: ResourceInfo, meta: dict[str, Any]) -> None:
        """ObjectMeta validation on create: the name, then labels, annotations, owners,
        finalizers, all reported in one 422."""
        name = str(meta.get("name") or "")
        causes: builtins.list[errors.Cause] = []
        if not name:
            causes.append(errors.Cause(type="FieldValueRequired", field="metadata.name",
                                       message="Required value: name or generateName is "
                                       "required"))
        else:
            causes += [errors.Cause(type="FieldValueInvalid", field="metadata.name",
                                    message=f'Invalid value: "{name}": {problem}')
                       for problem in name_errors(kind=info.kind, name=name)]
        causes += metadata_causes(meta)
        if causes:
            raise errors.invalid(kind=info.kind, group=info.group, name=name, causes=causes)

    @staticmethod
    def _validate_meta_update(info: ResourceInfo, meta: dict[str, Any]) -> None:
        causes = metadata_causes(meta)
        if causes:
            raise errors.invalid(kind=info.kind, group=info.group, name=str(meta["name"]),
                                 causes=causes)

    def _check_namespace_usable(self, info: ResourceInfo, namespace: str, name: str) -> None:
        ns = self.store.get(("", "namespaces"), "", namespace)
        if ns is None:
            raise errors.not_found(resource="namespaces", group="", name=namespace)
        if ns["metadata"].get("deletionTimestamp"):
            raise errors.admission_forbidden(
                resource=info.resource, group=info.group, name=name,
                message=f"unable to create new content in namespace {namespace} because it is "
                "being terminated",
                causes=[errors.Cause(type="NamespaceTerminating", field="metadata.namespace",
                                     message=f"namespace {namespace} is being terminated")])

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

    def _prepare_custom(self, info: ResourceInfo, obj: Obj, ctx: RequestContext, *,
                        whole_body: bool) -> Obj:
        if not info.custom:
            return obj
        kind = str(obj.get("kind") or info.kind)
        if kind != info.kind:
            raise errors.invalid(kind=kind, group=info.group,
                                 name=str(obj["metadata"].get("name", "")), causes=[
                                     errors.Cause(type="FieldValueInvalid", field="kind",
                                                  message=f'Invalid value: "{kind}": must be '
                                                  f"{info.kind}")])
        if info.schema is None:
            return obj
        defaulted = schema.apply_defaults(obj, schema=info.schema)
        unknown = schema.unknown_fields(defaulted, schema=info.schema)
        pruned = schema.prune(defaulted, schema=info.schema) if unknown else defaulted
        if unknown and ctx.field_validation == "Strict":
            problem = "strict decoding error: " + ", ".join(f'unknown field "{f}"'
                                                            for f in unknown)
            if whole_body:  # POST and PUT decode the body: the error names the kind
                raise errors.undecodable(kind=info.kind, version=info.version, problem=problem)
            raise errors.bad_request(problem)  # a patch's result
        if unknown and ctx.field_validation == "Warn":
            ctx.warnings.extend(f'unknown field "{f}"' for f in unknown)
        causes = schema.validate(pruned, schema=info.schema, kind=info.kind, group=info.group)
        if causes:
            raise errors.invalid(kind=info.kind, group=info.group,
                                 name=str(pruned["metadata"].get("name", "")), causes=causes)
        return pruned

    def _validate_kind(self, info: ResourceInfo, obj: Obj) -> None:
        validator = self.validators.get(info.group_resource)
        if validator is None:
            return
        causes = validator(obj)
        if causes:
            raise errors.invalid(kind=info.kind, group=info.group,
                                 name=str(obj["metadata"].get("name", "")), causes=causes)

    @staticmethod
    def _ignored_fields(info: ResourceInfo, subresource: str) -> builtins.list[tuple[str, ...]]:
        """Fields the endpoint resets, which server-side apply leaves unowned."""
        if "status" not in info.subresources or info.kind == "Namespace":
            return []
        return [("spec",)] if subresource == "status" else [("status",)]

    def _list_type(self, info: ResourceInfo) -> ssa.ListTypeFn:
        if info.custom and info.schema is not None:
            spec = info.schema

            def from_schema(path: tuple[str, ...]) -> ssa.ListType:
                kind, keys = schema.list_type_at(spec, path)
                return ssa.ListType(kind=kind, keys=keys)  # type: ignore[arg-type]

            return from_schema
        return ssa.builtin_list_types(info.group, info.kind)

    def _map_type(self, info: ResourceInfo) -> ssa.MapTypeFn:
        if info.custom and info.schema is not None:
            spec = info.schema

            def from_schema(path: tuple[str, ...]) -> ssa.MapType:
                default = ssa.default_map_type(path)
                if default != "granular":
                    return default
                node_type = schema.map_type_at(spec, path)
                return "atomic" if node_type == "atomic" else "granular"

            return from_schema
        return ssa.default_map_type


CRD_CLEANUP = "customresourcecleanup.apiextensions.k8s.io"


def _delete_during_update(existing: Obj, new: Obj) -> bool:
    """The generic store's ShouldDeleteDuringUpdate: an update leaves no finalizers on an object
    whose deletion was asked for with no grace period left (a graceful Pod is kept)."""
    old_meta = existing["metadata"]
    if new["metadata"].get("finalizers") or not old_meta.get("deletionTimestamp"):
        return False
    return not old_meta.get("deletionGracePeriodSeconds")


def graceful_deletion(info: ResourceInfo) -> bool:
    """Kinds whose storage deletes gracefully (a RESTGracefulDeleteStrategy): Pods."""
    return info.group_resource == ("", "pods")


@dataclass(frozen=True, kw_only=True)
class GraceStep:
    """What one DELETE does to a Pod: `period` None deletes it as it is (its grace period
    already 0); otherwise the new deletionGracePeriodSeconds and deletionTimestamp."""

    period: int | None
    deadline: dt.datetime
    first: bool  # the first mark: the generation moves on


def grace_step(pod: Obj, *, requested: int | None, now: dt.datetime) -> GraceStep | None:
    """rest.BeforeDelete with podStrategy.CheckGracefulDelete: None while a graceful deletion
    is pending and the request does not shorten it."""
    meta = pod["metadata"]
    if meta.get("deletionTimestamp"):
        current = meta.get("deletionGracePeriodSeconds")
        if not current:
            return GraceStep(period=None, deadline=now, first=False)
        if requested is None or requested >= int(current):
            return None
        deadline = parse_rfc3339(str(meta["deletionTimestamp"])) - \
            dt.timedelta(seconds=int(current)) + dt.timedelta(seconds=requested)
        period = requested
        if deadline < now:  # never into the past; a graceful request stays graceful
            deadline = now
            period = 1 if requested != 0 else 0
        return GraceStep(period=period, deadline=deadline, first=False)
    spec = pod.get("spec") or {}
    period = requested if requested is not None else \
        int(spec.get("terminationGracePeriodSeconds") or 0)
    phase = (pod.get("status") or {}).get("phase")
    if not spec.get("nodeName") or phase in ("Succeeded", "Failed"):
        period = 0  # not scheduled, or already finished: nothing to wait for
    if period < 0:
        period = 1
    return GraceStep(period=period, deadline=now + dt.timedelta(seconds=period), first=True)


def _grace_option(options: Obj) -> int | None:
    value = options.get("gracePeriodSeconds")
    if value is None:
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        raise errors.bad_request(f"gracePeriodSeconds must be an integer, not {value!r}") from None


def resource_version_set_on_create(value: Any) -> bool:
    """Whether etcd3's Create refuses a new object's metadata.resourceVersion: one that parses
    as a non-zero unsigned number (an unparsable one is not looked at)."""
    text = "" if value is None else str(value)
    return text.isascii() and text.isdigit() and int(text) != 0 and int(text) < 2**64


def patch_types(info: ResourceInfo) -> tuple[str, ...]:
    """The patch content types a resource accepts (no strategic merge for custom resources)."""
    return CUSTOM_PATCH_TYPES if info.custom else PATCH_TYPES


def _list_options_invalid(field_name: str, message: str, *,
                          cause: str = "FieldValueForbidden") -> errors.APIError:
    return errors.invalid(kind="ListOptions", group="meta.k8s.io", name="", causes=[
        errors.Cause(type=cause, field=field_name, message=message)])


def _deletion_finalizers(existing: Obj, options: Obj) -> builtins.list[str]:
    """The finalizers an object carries after a DELETE with these options (orphan and
    foregroundDeletion come from the propagation policy)."""
    finalizers = list(existing["metadata"].get("finalizers") or [])
    policy = options.get("propagationPolicy")
    orphan = options.get("orphanDependents")
    if policy is None and orphan is not None:
        policy = "Orphan" if orphan else "Background"
    if policy == "Orphan":
        if "orphan" not in finalizers:
            finalizers.append("orphan")
        finalizers = [f for f in finalizers if f != "foregroundDeletion"]
    elif policy == "Foreground":
        if "foregroundDeletion" not in finalizers:
            finalizers.append("foregroundDeletion")
        finalizers = [f for f in finalizers if f != "orphan"]
    elif policy == "Background":
        finalizers = [f for f in finalizers if f not in ("orphan", "foregroundDeletion")]
    return finalizers


def _scope_to_subresource(info: ResourceInfo, existing: Obj, new: Obj, subresource: str) -> Obj:
    """What of `new` a write through `subresource` may change; the rest comes from `existing`."""
    if subresource == "finalize":
        finalizers = (new.get("spec") or {}).get("finalizers") or []
        out = {**existing, "spec": {**(existing.get("spec") or {}), "finalizers": finalizers}}
        out["metadata"] = deep_copy(existing["metadata"])
        return out
    if subresource == "status":
        out = _without(existing, "status")
        if "status" in new:
            out["status"] = new["status"]
        meta = deep_copy(existing["metadata"])
        if "managedFields" in new["metadata"]:
            meta["managedFields"] = new["metadata"]["managedFields"]
        out["metadata"] = meta
        return out
    if "status" in info.subresources and info.kind != "Namespace":
        out = _without(new, "status")
        if "status" in existing:
            out["status"] = existing["status"]
        return out
    return new


def _builtin_defaults(info: ResourceInfo, obj: Obj) -> Obj:
    """What kube-apiserver fills in or converts for the built-in kinds the project uses."""
    if info.custom or info.group != "":
        return obj
    if info.kind == "Secret":
        string_data = obj.pop("stringData", None)
        if isinstance(string_data, dict) and string_data:
            data = dict(obj.get("data") or {})
            for key, value in string_data.items():
                data[key] = base64.b64encode(str(value).encode()).decode()
            obj["data"] = data
        obj.setdefault("type", "Opaque")
    elif info.kind == "Pod":
        if "status" not in obj:
            obj["status"] = {"phase": "Pending"}  # nothing schedules or runs it here
        spec = obj.get("spec")
        if isinstance(spec, dict) and spec.get("terminationGracePeriodSeconds") is None:
            obj["spec"] = {**spec, "terminationGracePeriodSeconds": 30}  # the API default
    elif info.kind == "Namespace":
        spec = obj.get("spec") or {}
        if "finalizers" not in spec:
            spec = {**spec, "finalizers": ["kubernetes"]}
        obj["spec"] = spec
        obj["status"] = {"phase": "Active", **(obj.get("status") or {})}
        if obj["metadata"].get("deletionTimestamp"):
            obj["status"]["phase"] = "Terminating"
        labels = dict(obj["metadata"].get("labels") or {})
        labels["kubernetes.io/metadata.name"] = obj["metadata"]["name"]
        obj["metadata"]["labels"] = labels
    return obj


def _key(obj: Obj) -> tuple[str, str]:
    meta = obj["metadata"]
    return (meta.get("namespace", ""), meta["name"])


def _random_suffix() -> str:
    alphabet = "bcdfghjklmnpqrstvwxz2456789"
    return "".join(secrets.choice(alphabet) for _ in range(5))
