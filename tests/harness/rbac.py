"""Bearer-token authentication and RBAC authorization for the API emulator.

Tokens map to users (ServiceAccounts as ``system:serviceaccount:NS:NAME``); requests are
allowed only by Role/ClusterRole rules bound to the user, read from the store, so the
Helm chart's rendered RBAC can be loaded and proven sufficient (and no more). The admin
token bypasses RBAC for test setup.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from tests.harness.errors import ApiError
from tests.harness.store import Store

ADMIN_USER = "system:admin"
# Paths any authenticated user may GET (the real server's system:discovery and
# system:public-info-viewer roles).
PUBLIC_PATHS = ("/api", "/apis", "/version", "/healthz", "/readyz", "/livez", "/openapi")


@dataclass(frozen=True)
class User:
    name: str
    groups: tuple[str, ...] = ()

    @staticmethod
    def service_account(namespace: str, name: str) -> User:
        return User(
            f"system:serviceaccount:{namespace}:{name}",
            (
                "system:serviceaccounts",
                f"system:serviceaccounts:{namespace}",
                "system:authenticated",
            ),
        )


@dataclass(frozen=True)
class Attributes:
    """What a request wants to do, as the real authorizer sees it."""

    verb: str
    group: str = ""
    resource: str = ""
    subresource: str = ""
    namespace: str = ""
    name: str = ""
    path: str = ""

    @property
    def is_resource(self) -> bool:
        return bool(self.resource)


@dataclass
class Tokens:
    admin_token: str
    _users: dict[str, User] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, token: str, user: User) -> None:
        with self._lock:
            self._users[token] = user

    def user(self, token: str | None) -> User | None:
        if token is None:
            return None
        if token == self.admin_token:
            return User(ADMIN_USER, ("system:masters", "system:authenticated"))
        with self._lock:
            return self._users.get(token)


def unauthorized() -> ApiError:
    return ApiError(401, "Unauthorized", "Unauthorized")


def forbidden(user: User, a: Attributes) -> ApiError:
    if not a.is_resource:
        return ApiError(
            403,
            "Forbidden",
            f'forbidden: User "{user.name}" cannot {a.verb.lower()} path "{a.path}"',
            {},
        )
    gr = f"{a.resource}.{a.group}" if a.group else a.resource
    what = f'{gr} "{a.name}"' if a.name else gr
    res = f"{a.resource}/{a.subresource}" if a.subresource else a.resource
    scope = f'in the namespace "{a.namespace}"' if a.namespace else "at the cluster scope"
    details: dict[str, Any] = {"kind": a.resource}
    if a.name:
        details["name"] = a.name
    if a.group:
        details["group"] = a.group
    return ApiError(
        403,
        "Forbidden",
        f'{what} is forbidden: User "{user.name}" cannot {a.verb} resource "{res}" in API '
        f'group "{a.group}" {scope}',
        details,
    )


def _rule_allows(rule: dict[str, Any], a: Attributes) -> bool:
    verbs = rule.get("verbs") or []
    if "*" not in verbs and a.verb not in verbs:
        return False
    if not a.is_resource:
        urls = rule.get("nonResourceURLs") or []
        return any(
            u == "*" or u == a.path or (u.endswith("*") and a.path.startswith(u[:-1])) for u in urls
        )
    groups = rule.get("apiGroups") or []
    if "*" not in groups and a.group not in groups:
        return False
    res = f"{a.resource}/{a.subresource}" if a.subresource else a.resource
    resources = rule.get("resources") or []
    if not any(
        r in ("*", res)
        or (a.subresource and r == f"*/{a.subresource}")
        or (r == f"{a.resource}/*" and a.subresource)
        for r in resources
    ):
        return False
    names = rule.get("resourceNames") or []
    return not names or (bool(a.name) and a.name in names)


def _subject_matches(subject: dict[str, Any], binding_ns: str, user: User) -> bool:
    kind = subject.get("kind")
    if kind == "ServiceAccount":
        ns = subject.get("namespace") or binding_ns
        return user.name == f"system:serviceaccount:{ns}:{subject.get('name')}"
    if kind == "User":
        return bool(user.name == subject.get("name"))
    if kind == "Group":
        return subject.get("name") in user.groups
    return False


class Authorizer:
    """RBAC over the Role/ClusterRole/RoleBinding/ClusterRoleBinding objects in the store."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def _objects(self, plural: str) -> list[dict[str, Any]]:
        rt = self.store.type("rbac.authorization.k8s.io", plural)
        return self.store.list_objects(rt, None)[0]

    def _rules_for(self, user: User, namespace: str) -> Iterable[dict[str, Any]]:
        roles = {
            (r["metadata"]["namespace"], r["metadata"]["name"]): r for r in self._objects("roles")
        }
        cluster_roles = {r["metadata"]["name"]: r for r in self._objects("clusterroles")}
        bindings = [(b, "") for b in self._objects("clusterrolebindings")]
        if namespace:
            bindings += [
                (b, namespace)
                for b in self._objects("rolebindings")
                if b["metadata"]["namespace"] == namespace
            ]
        for binding, ns in bindings:
            if not any(_subject_matches(s, ns, user) for s in binding.get("subjects") or []):
                continue
            ref = binding.get("roleRef") or {}
            if ref.get("kind") == "ClusterRole":
                role = cluster_roles.get(ref.get("name", ""))
            else:
                role = roles.get((ns, ref.get("name", ""))) if ns else None
            if role is not None:
                yield from role.get("rules") or []

    def allowed(self, user: User, a: Attributes) -> bool:
        if user.name == ADMIN_USER or "system:masters" in user.groups:
            return True
        if not a.is_resource and a.verb == "get" and a.path.startswith(PUBLIC_PATHS):
            return True
        return any(_rule_allows(rule, a) for rule in self._rules_for(user, a.namespace))
