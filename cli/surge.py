"""`headroom surge TARGET --factor 2 --for 30m`: on-call's emergency button.

Creates an immediate DemandEvent (start now, end now + duration, expectation multiplier =
factor) selecting the CapacityPolicy that sizes TARGET; the operator's next pass sizes
the policy's targets for it, as for any event. The object comes from
``headroom.policies.resources.surge_resource``; the write from
``headroom.controller.demand_events``.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Annotated

import typer

from headroom.cli._common import (
    EXIT_INPUT,
    JsonOpt,
    duration_option,
    fail,
    print_json,
)
from headroom.cli._kube import Cluster, cluster_command
from headroom.policies.bounds import MAX_MULTIPLIER


@cluster_command
def surge(
    cluster: Cluster,
    target: Annotated[
        str,
        typer.Argument(help="The target a policy sizes: NAME or KIND/NAME.", show_default=False),
    ],
    factor: Annotated[
        float, typer.Option("--factor", help="Expected demand over normal (> 1).")
    ] = 2.0,
    for_: Annotated[str, typer.Option("--for", help="How long, from now (e.g. 30m, 2h).")] = "30m",
    policy: Annotated[
        str | None,
        typer.Option(
            "--policy",
            help="The CapacityPolicy (needed when several size TARGET).",
            show_default=False,
        ),
    ] = None,
    reason: Annotated[str, typer.Option("--reason", help="Why, for the event's description.")] = "",
    json_out: JsonOpt = False,
) -> None:
    """Expect FACTOR times normal demand on TARGET's policy from now on, for a while."""
    from headroom.controller.demand_events import create_event, policies_for_target
    from headroom.policies.resources import surge_resource

    seconds = duration_option(for_, "--for")
    if not 1 < factor <= MAX_MULTIPLIER:
        fail(f"--factor: must be > 1 and <= {MAX_MULTIPLIER:g}, not {factor:g}", EXIT_INPUT)
    if not seconds > 0:
        fail(f"--for: must be > 0, not {for_!r}", EXIT_INPUT)
    with cluster.connect() as (kube, ns):
        found = policies_for_target(kube, ns, target, policy)
        if not found:
            which = f"CapacityPolicy {policy!r}" if policy else "no CapacityPolicy"
            fail(
                f"{target}: {which} in namespace {ns} sizes it"
                + ("" if not policy else " (or it does not exist)"),
                EXIT_INPUT,
            )
        if len(found) > 1:
            fail(
                f"{target}: sized by CapacityPolicies {', '.join(found)} in namespace {ns}; "
                "choose one with --policy",
                EXIT_INPUT,
            )
        now = time.time()
        obj = surge_resource(
            policy=found[0],
            target=target.rpartition("/")[2],
            factor=factor,
            duration=seconds,
            now=now,
            namespace=ns,
            reason=reason,
        )
        stored = create_event(kube, obj)
    if json_out:
        print_json(stored)
        return
    until = datetime.fromtimestamp(now + seconds, tz=UTC).strftime("%H:%M:%SZ")
    typer.echo(
        f"demandevent/{stored['metadata']['name']} created in {ns}: CapacityPolicy "
        f"{found[0]} expects x{factor:g} demand on {target} until {until}"
    )


def register(app: typer.Typer) -> None:
    app.command("surge")(surge)
