"""Resource types the emulator serves: the built-in ones Headroom uses and CRD-defined ones.

The store keeps objects per :class:`ResourceType`; the server maps URLs onto them and
builds discovery documents from :func:`discovery_resources`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

ALL_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")


@dataclass(frozen=True)
class ScaleSpec:
    """Where a ``/scale`` subresource reads and writes replicas (JSONPath-ish ``.a.b``)."""

    spec_replicas_path: str = ".spec.replicas"
    status_replicas_path: str = ".status.replicas"
    # None: build the selector string from spec.selector (Deployment, StatefulSet).
    label_selector_path: str | None = None


@dataclass(frozen=True)
class ResourceType:
    group: str
    versions: tuple[str, ...]
    plural: str
    kind: str
    namespaced: bool
    singular: str = ""
    short_names: tuple[str, ...] = ()
    status: bool = False
    scale: ScaleSpec | None = None
    # version -> openAPIV3Schema (custom resources only)
    schemas: dict[str, dict[str, Any]] = field(default_factory=dict, compare=False)
    # version -> additionalPrinterColumns (custom resources only; what `kubectl get` shows)
    printer_columns: dict[str, tuple[dict[str, Any], ...]] = field(
        default_factory=dict, compare=False
    )
    custom: bool = False
    # Objects removed at delete time are returned to the caller (pods, custom resources);
    # others get a Success Status, as the real server does.
    return_deleted: bool = False

    @property
    def key(self) -> tuple[str, str]:
        return (self.group, self.plural)

    def api_version(self, version: str | None = None) -> str:
        v = version or self.versions[0]
        return f"{self.group}/{v}" if self.group else v

    @property
    def group_resource(self) -> str:
        return f"{self.plural}.{self.group}" if self.group else self.plural


def _t(
    group: str,
    version: str,
    plural: str,
    kind: str,
    namespaced: bool = True,
    short: tuple[str, ...] = (),
    status: bool = False,
    scale: bool = False,
    return_deleted: bool = False,
) -> ResourceType:
    return ResourceType(
        group=group,
        versions=(version,),
        plural=plural,
        kind=kind,
        namespaced=namespaced,
        singular=kind.lower(),
        short_names=short,
        status=status,
        scale=ScaleSpec() if scale else None,
        return_deleted=return_deleted,
    )


def builtin_types() -> list[ResourceType]:
    rbac = "rbac.authorization.k8s.io"
    return [
        _t("", "v1", "namespaces", "Namespace", namespaced=False, short=("ns",), status=True),
        _t("", "v1", "pods", "Pod", short=("po",), status=True, return_deleted=True),
        _t("", "v1", "services", "Service", short=("svc",), status=True),
        _t("", "v1", "configmaps", "ConfigMap", short=("cm",)),
        _t("", "v1", "secrets", "Secret"),
        _t("", "v1", "events", "Event", short=("ev",)),
        _t(
            "", "v1", "persistentvolumeclaims", "PersistentVolumeClaim", short=("pvc",), status=True
        ),
        _t("", "v1", "serviceaccounts", "ServiceAccount", short=("sa",)),
        _t("events.k8s.io", "v1", "events", "Event", short=("ev",)),
        _t("apps", "v1", "deployments", "Deployment", short=("deploy",), status=True, scale=True),
        _t("apps", "v1", "statefulsets", "StatefulSet", short=("sts",), status=True, scale=True),
        _t(
            "autoscaling",
            "v2",
            "horizontalpodautoscalers",
            "HorizontalPodAutoscaler",
            short=("hpa",),
            status=True,
        ),
        _t("coordination.k8s.io", "v1", "leases", "Lease"),
        _t(
            "policy",
            "v1",
            "poddisruptionbudgets",
            "PodDisruptionBudget",
            short=("pdb",),
            status=True,
        ),
        _t(
            "apiextensions.k8s.io",
            "v1",
            "customresourcedefinitions",
            "CustomResourceDefinition",
            namespaced=False,
            short=("crd", "crds"),
            status=True,
        ),
        _t(rbac, "v1", "roles", "Role"),
        _t(rbac, "v1", "rolebindings", "RoleBinding"),
        _t(rbac, "v1", "clusterroles", "ClusterRole", namespaced=False),
        _t(rbac, "v1", "clusterrolebindings", "ClusterRoleBinding", namespaced=False),
    ]


def type_from_crd(crd: dict[str, Any]) -> ResourceType:
    """The servable type a CustomResourceDefinition declares."""
    spec = crd["spec"]
    names = spec["names"]
    served = [v for v in spec["versions"] if v.get("served", True)]
    # Storage version first: objects are stored once and presented in the asked version.
    served.sort(key=lambda v: not v.get("storage", False))
    subresources: dict[str, Any] = next(
        (v.get("subresources") for v in served if v.get("subresources")), {}
    )
    scale = None
    if subresources and "scale" in subresources:
        s = subresources["scale"]
        scale = ScaleSpec(
            spec_replicas_path=s["specReplicasPath"],
            status_replicas_path=s["statusReplicasPath"],
            label_selector_path=s.get("labelSelectorPath") or "",
        )
    schemas = {
        v["name"]: v["schema"]["openAPIV3Schema"]
        for v in served
        if v.get("schema", {}).get("openAPIV3Schema")
    }
    return ResourceType(
        group=spec["group"],
        versions=tuple(v["name"] for v in served),
        plural=names["plural"],
        kind=names["kind"],
        namespaced=spec.get("scope", "Namespaced") == "Namespaced",
        singular=names.get("singular", names["kind"].lower()),
        short_names=tuple(names.get("shortNames", ())),
        status=bool(subresources and "status" in subresources),
        scale=scale,
        schemas=schemas,
        printer_columns={v["name"]: tuple(v.get("additionalPrinterColumns") or ()) for v in served},
        custom=True,
        return_deleted=True,
    )


def discovery_resources(types: list[ResourceType], version: str) -> list[dict[str, Any]]:
    """``APIResourceList.resources`` for one group version, subresources included."""
    out: list[dict[str, Any]] = []
    for t in sorted(types, key=lambda t: t.plural):
        entry: dict[str, Any] = {
            "name": t.plural,
            "singularName": t.singular,
            "namespaced": t.namespaced,
            "kind": t.kind,
            "verbs": list(ALL_VERBS),
        }
        if t.short_names:
            entry["shortNames"] = list(t.short_names)
        out.append(entry)
        if t.status:
            out.append(
                {
                    "name": f"{t.plural}/status",
                    "singularName": "",
                    "namespaced": t.namespaced,
                    "kind": t.kind,
                    "verbs": ["get", "patch", "update"],
                }
            )
        if t.key == ("", "pods"):
            out.append(
                {
                    "name": "pods/eviction",
                    "singularName": "",
                    "namespaced": True,
                    "group": "policy",
                    "version": "v1",
                    "kind": "Eviction",
                    "verbs": ["create"],
                }
            )
        if t.scale:
            out.append(
                {
                    "name": f"{t.plural}/scale",
                    "singularName": "",
                    "namespaced": t.namespaced,
                    "group": "autoscaling",
                    "version": "v1",
                    "kind": "Scale",
                    "verbs": ["get", "patch", "update"],
                }
            )
    return out
