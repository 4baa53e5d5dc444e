"""`headroom status`: what the operator sees and plans, read from the cluster.

Reads CapacityPolicies (targets' current/ready/planned size, next actions with their
reasons, last actions, conditions) and RedisClusters (masters, slots, migration) from
their ``status`` — what the operator wrote — through the same Kubernetes client the
operator uses. ``--json`` prints the same as one document.
"""

from __future__ import annotations

from typing import Any

import typer
from rich.table import Table

from headroom.cli._common import JsonOpt, console, print_json
from headroom.cli._kube import AllNamespacesOpt, Cluster, cluster_command


def register(app: typer.Typer) -> None:
    app.command("status")(status)


@cluster_command
def status(
    cluster: Cluster, all_namespaces: AllNamespacesOpt = False, json_out: JsonOpt = False
) -> None:
    """Policies, targets and Redis Clusters as the operator reports them."""
    from headroom.controller.operator.status import read_status

    with cluster.connect() as (kube, ns):
        doc = read_status(kube, None if all_namespaces else ns)
    if json_out:
        print_json(doc)
        return
    _render(doc)


def _render(doc: dict[str, Any]) -> None:
    policies = doc["policies"]
    if not policies and not doc["redisClusters"]:
        console.print("No CapacityPolicies or RedisClusters found.")
        return
    if policies:
        table = Table(title="Capacity policies", title_justify="left")
        for col in ("policy", "target", "now", "ready", "needed now", "next action", "status"):
            table.add_column(col, overflow="fold")
        for p in policies:
            for i, t in enumerate(p["targets"] or [{}]):
                action = t.get("nextAction")
                table.add_row(
                    f"{p['namespace']}/{p['name']}" if i == 0 else "",
                    t.get("name", "-"),
                    str(t.get("currentUnits", "-")),
                    str(t.get("readyUnits", "-")),
                    str(t.get("requiredUnits", "-")),
                    _action(action),
                    p["summary"] if i == 0 else "",
                )
        console.print(table)
        for p in policies:
            for a in reversed(p["lastActions"][-3:]):  # newest first
                console.print(
                    f"  last: {a['at']} {a['target']} {a['fromUnits']}→{a['toUnits']}: "
                    f"{a['reason']}"
                )
    if doc["redisClusters"]:
        table = Table(title="Redis Clusters", title_justify="left")
        for col in ("cluster", "masters", "ready", "phase", "slots per master", "migration"):
            table.add_column(col)
        for rc in doc["redisClusters"]:
            mig = rc.get("migration")
            table.add_row(
                f"{rc['namespace']}/{rc['name']}",
                f"{rc['masters']} (want {rc['wantMasters']})",
                str(rc["readyMasters"]),
                rc["phase"],
                " ".join(str(n) for n in rc["slotsPerMaster"]) or "-",
                f"{mig['slotsLeft']} slots left, {mig['keysMoved']} keys moved" if mig else "-",
            )
        console.print(table)


def _action(action: dict[str, Any] | None) -> str:
    """``02:16 2→12 for 'Flash sale'``: when, how many, why (the reason is in --json)."""
    if not action:
        return "-"
    when = str(action["at"])[11:16] or str(action["at"])
    why = f" for {action['event']!r}" if action.get("event") else ""
    return f"{when} {action['fromUnits']}→{action['toUnits']}{why}"
