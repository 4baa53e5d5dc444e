"""Install the rendered Helm chart's CRDs and RBAC into the API emulator.

E2E tests run the operator with the permissions the chart grants, not a hand-written copy:
``install_chart(kube)`` renders ``charts/headroom`` (tests.support.chart), applies its
CRDs, ServiceAccount, Roles/ClusterRoles and bindings, and returns the operator's
ServiceAccount token and a kubeconfig for it. The operator Deployment itself is not applied:
tests start the operator as a process with that kubeconfig.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.harness.harness import KubeHarness
from tests.harness.store import Obj
from tests.support.chart import NAMESPACE, RELEASE, of_kind, render_chart

# What a test cluster needs from the chart to run the operator out of a pod.
INSTALLED_KINDS = (
    "CustomResourceDefinition",
    "ServiceAccount",
    "Role",
    "RoleBinding",
    "ClusterRole",
    "ClusterRoleBinding",
)


@dataclass(frozen=True)
class OperatorAccess:
    """The operator's identity in the emulated cluster, as the chart installs it."""

    namespace: str  # the release namespace (the operator's, and its Lease's)
    service_account: str
    token: str  # bearer token of the ServiceAccount
    kubeconfig: Path  # points at the emulator with ``token``; context namespace = ``namespace``
    lease_name: str  # HEADROOM_LEASE_NAME of the rendered Deployment
    args: tuple[str, ...]  # the rendered container's args after "headroom"
    objects: tuple[Obj, ...]  # what was applied, as rendered


def _operator_container(objects: list[Obj]) -> dict[str, Any]:
    deployments = of_kind(objects, "Deployment")
    if not deployments:
        return {}
    containers = deployments[0]["spec"]["template"]["spec"]["containers"]
    return dict(containers[0])


def install_chart(
    kube: KubeHarness,
    values: Mapping[str, Any] | None = None,
    *,
    release: str = RELEASE,
    namespace: str = NAMESPACE,
    kubeconfig: Path | None = None,
    edit_rules: Callable[[list[Obj]], None] | None = None,
) -> OperatorAccess:
    """Render the chart with ``values`` and apply its CRDs and RBAC to ``kube``.

    ``edit_rules`` may change the rendered RBAC objects in place before they are applied
    (to show that a missing verb is a 403). Returns the operator's token and kubeconfig.
    """
    rendered = render_chart(values, release=release, namespace=namespace)
    objects = of_kind(rendered, *INSTALLED_KINDS)
    if edit_rules is not None:
        edit_rules(objects)
    kube.ensure_namespace(namespace)
    kube.apply(objects, namespace=namespace)
    accounts = of_kind(objects, "ServiceAccount")
    container = _operator_container(rendered)
    if accounts:
        sa = accounts[0]["metadata"]["name"]
    else:  # serviceAccount.create=false: the Deployment names an existing one
        deployment = of_kind(rendered, "Deployment")[0]
        sa = deployment["spec"]["template"]["spec"]["serviceAccountName"]
    token = kube.service_account_token(namespace, sa)
    env = {e["name"]: e.get("value") for e in container.get("env") or []}
    path = kubeconfig or kube.workdir / f"kubeconfig-{namespace}-{sa}"
    return OperatorAccess(
        namespace=namespace,
        service_account=sa,
        token=token,
        kubeconfig=kube.kubeconfig(path, token=token, namespace=namespace),
        lease_name=str(env.get("HEADROOM_LEASE_NAME") or ""),
        args=tuple(container.get("args") or ()),
        objects=tuple(objects),
    )


def drop_verb(objects: list[Obj], resource: str, verb: str, group: str | None = None) -> int:
    """Remove ``verb`` on ``resource`` (``"statefulsets"``, ``"redisclusters/status"``) from
    every rendered Role/ClusterRole rule; returns how many rules lost it."""
    dropped = 0
    for role in of_kind(objects, "Role", "ClusterRole"):
        for rule in role.get("rules") or []:
            if group is not None and group not in (rule.get("apiGroups") or []):
                continue
            if resource in (rule.get("resources") or []) and verb in (rule.get("verbs") or []):
                rule["verbs"] = [v for v in rule["verbs"] if v != verb]
                dropped += 1
    return dropped
