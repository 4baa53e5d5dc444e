"""A minimal OpenAPI v3 description of what the emulator serves, for kubectl.

kubectl asks ``/openapi/v3`` before it writes: it sends ``fieldValidation=Strict`` only to a
server whose PATCH operations declare that parameter (else it wants the protobuf OpenAPI v2
document to validate client-side). So each group version gets a document with the paths of
its resources, operations tagged ``x-kubernetes-group-version-kind`` and the
``fieldValidation`` parameter, and, for custom resources, the CRD's schema. Built-in kinds
get no schema, and no operation lists the strategic-merge content type (the emulator does
accept it): kubectl then builds strategic merge patches from its compiled-in types, as it
does against a server without OpenAPI v2, instead of from a schema that has no fields.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from tests.harness.resources import ResourceType

Obj = dict[str, Any]
_QUERY = ("dryRun", "fieldManager", "fieldValidation", "pretty")


def gv_path(group: str, version: str) -> str:
    """``api/v1`` or ``apis/GROUP/VERSION``, the keys of the root document."""
    return f"apis/{group}/{version}" if group else f"api/{version}"


def schema_id(rt: ResourceType, version: str) -> str:
    """The components key of a kind, reverse-DNS like the real server's."""
    group = ".".join(reversed(rt.group.split("."))) if rt.group else "io.k8s.api.core"
    return f"{group}.{version}.{rt.kind}"


def group_versions(types: list[ResourceType]) -> list[tuple[str, str]]:
    return sorted({(t.group, v) for t in types for v in t.versions})


def root_document(types: list[ResourceType], gv_doc: Any) -> Obj:
    """``/openapi/v3``: each group version's URL, with a hash of its document."""
    paths = {}
    for group, version in group_versions(types):
        body = json.dumps(gv_doc(group, version), sort_keys=True).encode()
        digest = hashlib.sha512(body).hexdigest()[:64].upper()
        paths[gv_path(group, version)] = {
            "serverRelativeURL": f"/openapi/v3/{gv_path(group, version)}?hash={digest}"
        }
    return {"paths": paths}


def _operation(rt: ResourceType, version: str, action: str, ref: str, sub: str = "") -> Obj:
    gvk = {"group": rt.group, "version": version, "kind": rt.kind}
    if sub == "scale":
        gvk = {"group": "autoscaling", "version": "v1", "kind": "Scale"}
    params = [
        {"name": n, "in": "query", "schema": {"type": "string"}, "uniqueItems": True}
        for n in _QUERY
        if action in ("post", "put", "patch") or n == "pretty"
    ]
    op: Obj = {
        "operationId": f"{action}{rt.kind}{sub.capitalize()}",
        "parameters": params,
        "responses": {
            "200": {
                "description": "OK",
                "content": {"application/json": {"schema": {"$ref": ref}}},
            }
        },
        "x-kubernetes-action": action,
        "x-kubernetes-group-version-kind": gvk,
    }
    if action in ("post", "put", "patch"):
        media = (
            ["application/json-patch+json", "application/merge-patch+json"]
            if action == "patch"
            else ["application/json"]
        )
        op["requestBody"] = {
            "content": {m: {"schema": {"$ref": ref}} for m in media},
            "required": True,
        }
    return op


def group_version_document(types: list[ResourceType], group: str, version: str) -> Obj:
    """``/openapi/v3/apis/GROUP/VERSION``: paths and (custom resources') schemas."""
    paths: Obj = {}
    schemas: Obj = {}
    prefix = "/" + gv_path(group, version)
    for rt in sorted(types, key=lambda t: t.plural):
        if rt.group != group or version not in rt.versions:
            continue
        sid = schema_id(rt, version)
        ref = f"#/components/schemas/{sid}"
        gvk = [{"group": rt.group, "version": version, "kind": rt.kind}]
        if rt.custom and rt.schemas.get(version):
            schemas[sid] = {**rt.schemas[version], "x-kubernetes-group-version-kind": gvk}
        else:
            schemas[sid] = {"type": "object", "x-kubernetes-group-version-kind": gvk}
        base = (
            f"{prefix}/namespaces/{{namespace}}/{rt.plural}"
            if rt.namespaced
            else (f"{prefix}/{rt.plural}")
        )
        paths[base] = {
            "get": _operation(rt, version, "list", ref),
            "post": _operation(rt, version, "post", ref),
        }
        item = {
            "get": _operation(rt, version, "get", ref),
            "put": _operation(rt, version, "put", ref),
            "patch": _operation(rt, version, "patch", ref),
            "delete": _operation(rt, version, "delete", ref),
        }
        paths[f"{base}/{{name}}"] = item
        for sub, present in (("status", rt.status), ("scale", rt.scale is not None)):
            if present:
                sub_ref = (
                    "#/components/schemas/io.k8s.api.autoscaling.v1.Scale"
                    if sub == "scale"
                    else ref
                )
                paths[f"{base}/{{name}}/{sub}"] = {
                    a: _operation(rt, version, a, sub_ref, sub) for a in ("get", "put", "patch")
                }
                if sub == "scale":
                    schemas["io.k8s.api.autoscaling.v1.Scale"] = {
                        "type": "object",
                        "x-kubernetes-group-version-kind": [
                            {"group": "autoscaling", "version": "v1", "kind": "Scale"}
                        ],
                    }
    return {
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes (headroom emulator)", "version": "v1.31.0"},
        "paths": paths,
        "components": {"schemas": schemas},
    }
