"""The control loops a real control plane runs beside the API server, reduced to what the project
relies on: garbage collection of dependents, namespace termination, CRD establishment and cleanup,
ClusterRole aggregation and the RBAC authorizer's view of the stored roles.

They run on the event loop after the write that triggered them (`loop.call_soon`), as the real
controllers act asynchronously after the API server answered.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
from collections.abc import Callable
from typing import Any

from kubevirt_usb.apiserver import errors, rbac, schema
from kubevirt_usb.apiserver.api import API, CRD_CLEANUP, RequestContext
from kubevirt_usb.apiserver.auth import UserInfo
from kubevirt_usb.apiserver.resources import PrinterColumn, ResourceInfo
from kubevirt_usb.apiserver.store import Obj
from kubevirt_usb.clock import rfc3339

SYSTEM = UserInfo(name="system:kube-controller-manager", groups=("system:masters",))
CRD_GR = ("apiextensions.k8s.io", "customresourcedefinitions")
RBAC_GROUP = "rbac.authorization.k8s.io"


def _owner_uids(obj: Obj | None) -> frozenset[str]:
    if obj is None:
        return frozenset()
    refs = obj["metadata"].get("ownerReferences") or []
    return frozenset(str(r.get("uid", "")) for r in refs if isinstance(r, dict))


def crd_resources(crd: Obj) -> list[tuple[ResourceInfo, bool]]:
    """The resources a CRD serves, one per served version, with whether it is the storage one."""
    spec = crd.get("spec") or {}
    names = spec.get("names") or {}
    out: list[tuple[ResourceInfo, bool]] = []
    storage = next((v["name"] for v in spec.get("versions") or [] if v.get("storage")), "")
    for version in spec.get("versions") or []:
        if not version.get("served", True):
            continue
        subresources = version.get("subresources") or {}
        columns = tuple(
            PrinterColumn(name=c["name"], type=c.get("type", "string"),
                          json_path=c.get("jsonPath", ""), description=c.get("description", ""),
                          priority=int(c.get("priority", 0)), format=c.get("format", ""))
            for c in version.get("additionalPrinterColumns") or [])
        info = ResourceInfo(
            group=spec["group"], version=version["name"], resource=names["plural"],
            kind=names["kind"], singular=names.get("singular") or names["kind"].lower(),
            namespaced=spec.get("scope", "Namespaced") == "Namespaced",
            short_names=tuple(names.get("shortNames") or ()),
            categories=tuple(names.get("categories") or ()),
            subresources=tuple(s for s in ("status", "scale") if s in subresources),
            printer_columns=columns,
            schema=(version.get("schema") or {}).get("openAPIV3Schema"),
            custom=True, storage_version=storage, has_generation=True,
            list_kind=names.get("listKind") or f"{names['kind']}List",
            allow_unconditional_update=False,
        )
        out.append((info, version["name"] == storage))
    return out


def validate_crd(crd: Obj) -> list[errors.Cause]:
    spec = crd.get("spec") or {}
    names = spec.get("names") or {}
    causes: list[errors.Cause] = []
    for key in ("plural", "kind"):
        if not names.get(key):
            causes.append(errors.Cause(type="FieldValueRequired", field=f"spec.names.{key}",
                                       message="Required value"))
    if not spec.get("group"):
        causes.append(errors.Cause(type="FieldValueRequired", field="spec.group",
                                   message="Required value"))
    elif names.get("plural") and crd["metadata"]["name"] != f"{names['plural']}.{spec['group']}":
        causes.append(errors.Cause(
            type="FieldValueInvalid", field="metadata.name",
            message=f'Invalid value: "{crd["metadata"]["name"]}": must be spec.names.plural+"."'
            '+spec.group'))
    scope = spec.get("scope")
    if not scope:
        causes.append(errors.Cause(type="FieldValueRequired", field="spec.scope",
                                   message="Required value"))
    elif scope not in ("Cluster", "Namespaced"):
        causes.append(errors.Cause(
            type="FieldValueNotSupported", field="spec.scope",
            message=f'Unsupported value: {json.dumps(scope)}: supported values: "Cluster", '
            '"Namespaced"'))
    versions = spec.get("versions") or []
    if not versions:
        causes.append(errors.Cause(type="FieldValueRequired", field="spec.versions",
                                   message="Required value: must have exactly one version "
                                   "marked as storage version"))
    elif sum(1 for v in versions if v.get("storage")) != 1:
        causes.append(errors.Cause(type="FieldValueInvalid", field="spec.versions",
                                   message="Invalid value: must have exactly one version marked "
                                   "as storage version"))
    for index, version in enumerate(versions):
        body = (version.get("schema") or {}).get("openAPIV3Schema")
        if body is None:
            causes.append(errors.Cause(
                type="FieldValueRequired",
                field=f"spec.versions[{index}].schema.openAPIV3Schema",
                message="Required value: schemas are required"))
            continue
        for cause in schema.check_structural(body):
            causes.append(errors.Cause(
                type=cause.type, message=cause.message,
                field=f"spec.versions[{index}].schema.openAPIV3Schema"
                + (f".{cause.field}" if cause.field else "")))
    return causes


class ControlPlane:
    """Wires the in-process controllers to the API's write hooks."""

    def __init__(self, api: API) -> None:
        self.api = api
        self._uids: dict[str, tuple[ResourceInfo, str, str]] = {}
        self._owned: dict[str, set[tuple[tuple[str, str], str, str]]] = {}
        self._authorizer: rbac.Authorizer | None = None
        self.on_crd_change: list[Callable[[], None]] = []
        self.root_ca_pem = ""  # what each namespace's kube-root-ca.crt ConfigMap publishes
        api.on_write.append(self._on_write)
        api.validators[CRD_GR] = validate_crd

    # ---- authorizer -----------------------------------------------------------------------

    @property
    def authorizer(self) -> rbac.Authorizer:
        if self._authorizer is None:
            store = self.api.store
            self._authorizer = rbac.Authorizer(
                roles=store.items((RBAC_GROUP, "roles")),
                cluster_roles=store.items((RBAC_GROUP, "clusterroles")),
                role_bindings=store.items((RBAC_GROUP, "rolebindings")),
                cluster_role_bindings=store.items((RBAC_GROUP, "clusterrolebindings")),
            )
        return self._authorizer

    # ---- dispatch ---------------------------------------------------------------------------

    def _on_write(self, info: ResourceInfo, old: Obj | None, new: Obj | None) -> None:
        obj = new if new is not None else old
        assert obj is not None
        meta = obj["metadata"]
        self._index_owners(info, old, new)
        if new is None:
            self._uids.pop(meta.get("uid", ""), None)
            self._later(lambda: self._collect_dependents(meta.get("uid", "")))
            if info.namespaced:
                ns = meta.get("namespace", "")
                self._later(lambda: self._maybe_finish_namespace(ns))
            if info.custom:
                self.crd_instance_deleted(info)
            for owner_uid in _owner_uids(old):
                self._later(functools.partial(self._owner_may_finish, owner_uid))
        else:
            self._uids[meta["uid"]] = (info, meta.get("namespace", ""), meta["name"])
        if info.group == RBAC_GROUP:
            self._authorizer = None
            if info.resource == "clusterroles":
                self._later(self._aggregate_cluster_roles)
        if info.group_resource == CRD_GR:
            if new is not None and not meta.get("deletionTimestamp"):
                for res, is_storage in crd_resources(new):
                    self.api.registry.add(res, preferred=is_storage)
            self._later(lambda: self._reconcile_crd(meta["name"]))
        if info.group_resource == ("", "namespaces") and new is not None and \
                meta.get("deletionTimestamp"):
            self._later(lambda: self._terminate_namespace(meta["name"]))
        if info.group_resource == ("", "namespaces") and old is None and new is not None:
            self._later(lambda: self._populate_namespace(meta["name"]))
        if new is not None and meta.get("deletionTimestamp"):
            fin = meta.get("finalizers") or []
            if "orphan" in fin or "foregroundDeletion" in fin:
                self._later(lambda: self._handle_deletion_finalizers(info, new))

    def _later(self, action: Callable[[], None]) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            action()
            return
        loop.call_soon(self._run_safely, action)

    @staticmethod
    def _run_safely(action: Callable[[], None]) -> None:
        with contextlib.suppress(errors.APIError):
            action()  # an APIError: the object changed under us; the next event brings us back

    def _ctx(self) -> RequestContext:
        return RequestContext(user=SYSTEM, field_manager="kube-controller-manager")

    # ---- garbage collection -----------------------------------------------------------------

    def exists(self, uid: str) -> bool:
        return uid in self._uids

    def _index_owners(self, info: ResourceInfo, old: Obj | None, new: Obj | None) -> None:
        """Keep owner uid -> dependents current, so garbage collection never scans everything."""
        before = _owner_uids(old)
        after = _owner_uids(new)
        if before == after:
            return
        obj = new if new is not None else old
        assert obj is not None
        key = (info.group_resource, obj["metadata"].get("namespace", ""), obj["metadata"]["name"])
        for uid in before - after:
            dependents = self._owned.get(uid)
            if dependents is not None:
                dependents.discard(key)
                if not dependents:
                    del self._owned[uid]
        for uid in after - before:
            self._owned.setdefault(uid, set()).add(key)

    def _owner_may_finish(self, uid: str) -> None:
        """A dependent is gone: an owner in foreground deletion may be done waiting."""
        found = self._uids.get(uid)
        if found is None:
            return
        info, namespace, name = found
        owner = self.api.store.get(info.group_resource, namespace, name)
        if owner is not None and owner["metadata"].get("deletionTimestamp") and \
                "foregroundDeletion" in (owner["metadata"].get("finalizers") or []):
            self._handle_deletion_finalizers(info, owner)

    def _dependents(self, uid: str) -> list[tuple[ResourceInfo, Obj]]:
        if uid not in self._owned:
            return []
        infos = {i.group_resource: i for i in self._stored_infos()}
        out: list[tuple[ResourceInfo, Obj]] = []
        for gr, namespace, name in sorted(self._owned.get(uid, ())):
            obj = self.api.store.get(gr, namespace, name)
            if obj is not None and gr in infos:
                out.append((infos[gr], obj))
        return out

    def _stored_infos(self) -> list[ResourceInfo]:
        seen: dict[tuple[str, str], ResourceInfo] = {}
        for info in self.api.registry.all():
            if info.stored and (not info.custom or info.version == info.storage_version):
                seen.setdefault(info.group_resource, info)
        return list(seen.values())

    def _collect_dependents(self, uid: str) -> None:
        for info, obj in self._dependents(uid):
            refs = obj["metadata"].get("ownerReferences") or []
            if any(self.exists(r.get("uid", "")) for r in refs):
                continue
            meta = obj["metadata"]
            self.api.delete(info, namespace=meta.get("namespace", ""), name=meta["name"],
                            options={"propagationPolicy": "Background"}, ctx=self._ctx())

    def _handle_deletion_finalizers(self, info: ResourceInfo, obj: Obj) -> None:
        meta = obj["metadata"]
        fin = list(meta.get("finalizers") or [])
        uid = meta["uid"]
        if "orphan" in fin:
            for dep_info, dep in self._dependents(uid):
                refs = [r for r in dep["metadata"].get("ownerReferences") or []
                        if r.get("uid") != uid]
                patch: dict[str, Any] = {"metadata": {"ownerReferences": refs or None}}
                self.api.patch(dep_info, namespace=dep["metadata"].get("namespace", ""),
                               name=dep["metadata"]["name"], patch=patch,
                               content_type="application/merge-patch+json", ctx=self._ctx())
            fin.remove("orphan")
        if "foregroundDeletion" in fin:
            dependents = self._dependents(uid)
            for dep_info, dep in dependents:
                if not dep["metadata"].get("deletionTimestamp"):
                    self.api.delete(dep_info, namespace=dep["metadata"].get("namespace", ""),
                                    name=dep["metadata"]["name"],
                                    options={"propagationPolicy": "Foreground"}, ctx=self._ctx())
            if dependents:
                return  # the dependents' DELETED events bring us back here
            fin.remove("foregroundDeletion")
        self._set_finalizers(info, obj, fin)

    def _set_finalizers(self, info: ResourceInfo, obj: Obj, finalizers: list[str]) -> None:
        meta = obj["metadata"]
        current = self.api.store.get(info.group_resource, meta.get("namespace", ""), meta["name"])
        if current is None:
            return
        self.api.patch(info, namespace=meta.get("namespace", ""), name=meta["name"],
                       patch={"metadata": {"finalizers": finalizers or None}},
                       content_type="application/merge-patch+json", ctx=self._ctx())

    # ---- namespaces -------------------------------------------------------------------------

    def _namespaced_infos(self) -> list[ResourceInfo]:
        return [i for i in self._stored_infos() if i.namespaced]

    def _terminate_namespace(self, name: str) -> None:
        for info in self._namespaced_infos():
            for obj in self.api.store.items(info.group_resource, name):
                if not obj["metadata"].get("deletionTimestamp"):
                    self.api.delete(info, namespace=name, name=obj["metadata"]["name"],
                                    options={}, ctx=self._ctx())
        self._maybe_finish_namespace(name)

    def _maybe_finish_namespace(self, name: str) -> None:
        ns = self.api.store.get(("", "namespaces"), "", name)
        if ns is None or not ns["metadata"].get("deletionTimestamp"):
            return
        for info in self._namespaced_infos():
            if self.api.store.items(info.group_resource, name):
                return
        ns_info = self.api.registry.get("", "v1", "namespaces")
        assert ns_info is not None
        spec = {**(ns.get("spec") or {}), "finalizers": []}
        updated = {**ns, "spec": spec}
        self.api.update(ns_info, namespace="", name=name, body=updated, ctx=self._ctx(),
                        subresource="finalize")
        current = self.api.store.get(("", "namespaces"), "", name)
        if current is not None and not current["metadata"].get("finalizers"):
            self.api.remove_finalized(ns_info, current)

    def _populate_namespace(self, name: str) -> None:
        """What kube-controller-manager puts in every new namespace: the `default`
        ServiceAccount and the `kube-root-ca.crt` ConfigMap with the cluster's CA."""
        ns = self.api.store.get(("", "namespaces"), "", name)
        if ns is None or ns["metadata"].get("deletionTimestamp"):
            return
        objects: list[tuple[str, Obj]] = [("serviceaccounts", {"metadata": {"name": "default"}})]
        if self.root_ca_pem:
            objects.append(("configmaps", {
                "metadata": {"name": "kube-root-ca.crt", "annotations": {
                    "kubernetes.io/description": "Contains a CA bundle that can be used to "
                    "verify the kube-apiserver when using internal endpoints such as the "
                    "internal service IP or kubernetes.default.svc. No other usage is "
                    "guaranteed across distributions of Kubernetes clusters."}},
                "data": {"ca.crt": self.root_ca_pem}}))
        for resource, body in objects:
            info = self.api.registry.get("", "v1", resource)
            assert info is not None
            if self.api.store.get(info.group_resource, name, body["metadata"]["name"]) is None:
                self.api.create(info, namespace=name, body=body, ctx=self._ctx())

    # ---- CRDs -------------------------------------------------------------------------------

    def _reconcile_crd(self, name: str) -> None:
        crd = self.api.store.get(CRD_GR, "", name)
        if crd is None:
            return
        info = self.api.registry.get(*CRD_GR[:1], "v1", CRD_GR[1])
        assert info is not None
        served = crd_resources(crd)
        if crd["metadata"].get("deletionTimestamp"):
            self._cleanup_crd(crd, info, served)
            return
        for res, is_storage in served:
            self.api.registry.add(res, preferred=is_storage)
        names = (crd.get("spec") or {}).get("names") or {}
        now = rfc3339(self.api.clock())
        status = {
            "acceptedNames": {k: v for k, v in names.items()},
            "storedVersions": sorted({v["name"] for v in crd["spec"].get("versions") or []
                                      if v.get("storage")}),
            "conditions": [
                {"type": "NamesAccepted", "status": "True", "reason": "NoConflicts",
                 "message": "no conflicts found", "lastTransitionTime": now},
                {"type": "Established", "status": "True", "reason": "InitialNamesAccepted",
                 "message": "the initial names have been accepted", "lastTransitionTime": now},
            ],
        }
        old_status = crd.get("status") or {}
        if {k: v for k, v in old_status.items() if k != "conditions"} != \
                {k: v for k, v in status.items() if k != "conditions"} or \
                len(old_status.get("conditions") or []) != 2:
            self.api.update(info, namespace="", name=name, body={**crd, "status": status},
                            ctx=self._ctx(), subresource="status")
        for hook in self.on_crd_change:
            hook()

    def _cleanup_crd(self, crd: Obj, info: ResourceInfo,
                     served: list[tuple[ResourceInfo, bool]]) -> None:
        storage = next((r for r, is_storage in served if is_storage), None)
        remaining = 0
        if storage is not None:
            for obj in self.api.store.items(storage.group_resource):
                remaining += 1
                if not obj["metadata"].get("deletionTimestamp"):
                    self.api.delete(storage, namespace=obj["metadata"].get("namespace", ""),
                                    name=obj["metadata"]["name"], options={}, ctx=self._ctx())
            remaining = self.api.store.count(storage.group_resource)
        if remaining:
            return  # the instances' DELETED events bring us back through the GC hook below
        fin = [f for f in crd["metadata"].get("finalizers") or [] if f != CRD_CLEANUP]
        if storage is not None:
            self.api.registry.remove_group_resource(storage.group, storage.resource)
            self.api.store.close_watchers(storage.group_resource)
            self.api.store.drop_resource(storage.group_resource)
        self._set_finalizers(info, crd, fin)
        for hook in self.on_crd_change:
            hook()

    def crd_instance_deleted(self, info: ResourceInfo) -> None:
        """An instance of a custom resource is gone: a terminating CRD may finish now."""
        for crd in self.api.store.items(CRD_GR):
            spec = crd.get("spec") or {}
            if spec.get("group") == info.group and \
                    (spec.get("names") or {}).get("plural") == info.resource and \
                    crd["metadata"].get("deletionTimestamp"):
                self._later(functools.partial(self._reconcile_crd, crd["metadata"]["name"]))

    # ---- RBAC aggregation -------------------------------------------------------------------

    def _aggregate_cluster_roles(self) -> None:
        info = self.api.registry.get(RBAC_GROUP, "v1", "clusterroles")
        assert info is not None
        current = self.api.store.items(info.group_resource)
        for role in rbac.aggregate_cluster_roles(current):
            stored = self.api.store.get(info.group_resource, "", role["metadata"]["name"])
            if stored is not None and stored.get("rules") != role.get("rules"):
                self.api.update(info, namespace="", name=role["metadata"]["name"],
                                body={**stored, "rules": role.get("rules")}, ctx=self._ctx())
