"""`headroom redis`: inspect, rebalance, drain and repair any reachable Redis Cluster.

Thin commands over :class:`headroom.controller.redis.resharder.Resharder`, the
same object the local provisioner and the operator use. Every command takes
AUTH/ACL and TLS options, prints a table (or ``--json``), shows a progress bar
on a terminal, and turns errors into one stderr line and a non-zero exit.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Annotated, Any

import typer
from rich.table import Table

from headroom.cli._common import (
    REQUIRED_OPTION,
    DryRunOpt,
    JsonOpt,
    console,
    count,
    fail,
    print_json,
    with_options,
)
from headroom.cli._progress import SlotsBar, slots_bar
from headroom.controller.redis.connection import RedisAuth, make_connect, password_from_env
from headroom.controller.redis.migrate import MigrateOptions
from headroom.controller.redis.reports import ReshardReport
from headroom.controller.redis.resharder import CLIENT_NAME, Resharder
from headroom.controller.redis.slotplan import SlotPlan
from headroom.controller.redis.topology import Topology
from headroom.policies.errors import InputError

app = typer.Typer(
    help="Inspect, rebalance, drain and repair any Redis Cluster.", no_args_is_help=True
)

# Test hooks for crash-safety tests: SIGKILL ourselves mid-slot after N keys moved, or
# right after the N-th hand-over step STEP (target, source, other), given as STEP:N.
CRASH_ENV = "HEADROOM_RESHARD_CRASH_AFTER_KEYS"
CRASH_HANDOVER_ENV = "HEADROOM_RESHARD_CRASH_AT_HANDOVER"

Seed = Annotated[str, typer.Option("--seed", help="Any node of the cluster, HOST:PORT.")]
User = Annotated[str | None, typer.Option("--user", help="ACL user name.", envvar="REDISCLI_USER")]
# The password is read from an environment variable, never given as an argument: argv is
# readable by every user of the machine (/proc/<pid>/cmdline) and lands in shell history.
PASSWORD_ENV = "REDISCLI_AUTH"
Password = Annotated[
    str,
    typer.Option(
        "--password-env",
        metavar="VAR",
        help=f"Environment variable holding the AUTH password ({PASSWORD_ENV}, as redis-cli).",
    ),
]
Tls = Annotated[bool, typer.Option("--tls", help="Connect with TLS.")]
TlsCa = Annotated[str | None, typer.Option("--tls-ca", help="CA certificate file.")]
TlsCert = Annotated[str | None, typer.Option("--tls-cert", help="Client certificate file.")]
TlsKey = Annotated[str | None, typer.Option("--tls-key", help="Client private key file.")]
TlsInsecure = Annotated[
    bool, typer.Option("--tls-insecure", help="Do not verify the server certificate.")
]


def _password(var: str) -> str | None:
    """The password in environment variable ``var``; naming an unset one is an error."""
    password = password_from_env(var)
    if password is None and var != PASSWORD_ENV:
        raise InputError(f"--password-env {var}: the environment variable is not set")
    return password


@dataclass(frozen=True)
class Link:
    """How a command reaches the cluster: its seed and the AUTH/ACL and TLS options."""

    seed: str
    auth: RedisAuth

    def resharder(self, bar: SlotsBar | None = None) -> Resharder:
        """The Resharder over the seed (feeding ``bar`` when it is shown)."""
        crash = os.environ.get(CRASH_ENV)
        step, _, n = os.environ.get(CRASH_HANDOVER_ENV, "").partition(":")
        return Resharder(
            self.seed,
            connect=make_connect(self.auth, client_name=CLIENT_NAME),
            progress=bar.update if bar is not None and bar.shown else None,
            options=MigrateOptions(username=self.auth.username, password=self.auth.password),
            crash_after_keys=int(crash) if crash else None,
            crash_at_handover=(step, int(n or 1)) if step else None,
        )


def _link(values: dict[str, Any]) -> tuple[Link, bool]:
    auth = RedisAuth(
        username=values["user"], password=_password(values["password_env"]),
        tls=values["tls"], tls_ca=values["tls_ca"], tls_cert=values["tls_cert"],
        tls_key=values["tls_key"], tls_insecure=values["tls_insecure"],
    )  # fmt: skip
    return Link(values["seed"], auth), values["as_json"]


# Every command: body(link, as_json, **its own options), the connection options after them.
cluster_command = with_options(
    before=[("seed", Seed, REQUIRED_OPTION)],
    after=[
        ("as_json", JsonOpt, False), ("user", User, None), ("password_env", Password, PASSWORD_ENV),
        ("tls", Tls, False), ("tls_ca", TlsCa, None), ("tls_cert", TlsCert, None),
        ("tls_key", TlsKey, None), ("tls_insecure", TlsInsecure, False),
    ],
    takes=2,
    make=_link,
)  # fmt: skip


def _parse_weights(items: list[str]) -> dict[str, float]:
    out: dict[str, float] = {}
    for item in items:
        node, sep, value = item.partition("=")
        try:
            if not sep or not node:
                raise ValueError
            out[node] = float(value)
        except ValueError:
            raise InputError(f"--weight {item!r}: expected NODE_ID=NUMBER") from None
    return out


def _plan_table(plan: SlotPlan) -> Table:
    table = Table(
        title=f"Plan: {plan.slots} slot moves, ~{plan.keys:,} keys, ~{plan.bytes / 1e6:.1f} MB"
    )
    for col in ("source", "target", "slots", "keys", "MB"):
        table.add_column(col, justify="right" if col in ("slots", "keys", "MB") else "left")
    for p in plan.pairs():
        table.add_row(
            p.source[:8], p.target[:8], str(p.slots), f"{p.keys:,}", f"{p.bytes / 1e6:.1f}"
        )
    return table


def _moved(report: ReshardReport, what: str) -> str:
    rate = report.keys_moved / report.seconds if report.seconds else 0.0
    return (
        f"{what}: {report.slots_moved} slots, {report.keys_moved:,} keys, "
        f"{report.bytes_moved / 1e6:.1f} MB in {report.seconds:.2f}s ({rate:,.0f} keys/s)"
    )


def _finish(report: ReshardReport, as_json: bool, summary: str) -> None:
    """What every command that moves or repairs slots prints: the report as JSON, or the
    slots repaired, ``summary`` and the nodes forgotten; an error exits non-zero."""
    if as_json:
        print_json(report.to_json())
    else:
        for line in report.repaired:
            console.print(f"repaired {line}")
        console.print(summary)
        for node in report.forgotten:
            console.print(f"forgot node {node}")
    if report.errors:
        fail(report.errors[0])


def _status_table(topo: Topology) -> Table:
    table = Table(
        title=f"Redis Cluster at {topo.seed}: {'healthy' if topo.healthy else 'NOT healthy'}"
    )
    for col in ("id", "addr", "role", "slots", "keys", "state"):
        table.add_column(col, justify="right" if col in ("slots", "keys") else "left")
    for n in topo.nodes:
        role = n.role if n.is_master else f"replica of {(n.master_id or '?')[:8]}"
        table.add_row(
            n.short, n.addr, role, str(len(n.slots)) if n.is_master else "",
            "" if n.keys is None else f"{n.keys:,}", n.state or "no answer",
        )  # fmt: skip
    return table


@app.command()
@cluster_command
def status(link: Link, as_json: bool) -> None:
    """Masters, replicas, slots and keys per master, open slots, health."""
    topo = link.resharder().topology()
    if as_json:
        print_json(topo.to_json())
        return
    console.print(_status_table(topo))
    for problem in topo.problems():
        console.print(f"[yellow]problem:[/] {problem}")


@app.command()
@cluster_command
def rebalance(
    link: Link,
    as_json: bool,
    use_empty_masters: Annotated[
        bool, typer.Option("--use-empty-masters", help="Give slots to masters that own none.")
    ] = False,
    weight: Annotated[
        list[str] | None,
        typer.Option(
            "--weight", metavar="NODE_ID=W", help="Weight of a master (id prefix ok), repeatable."
        ),
    ] = None,
    dry_run: DryRunOpt = False,
) -> None:
    """Balance slots (weighted) with the fewest moves, migrating keys online."""
    weights = _parse_weights(weight or []) or None
    show = console.is_terminal and not as_json and not dry_run
    with slots_bar(show, console) as bar:
        r = link.resharder(bar)
        if dry_run:
            plan = r.plan_rebalance(use_empty_masters=use_empty_masters, weights=weights)
            balanced = plan.slots == 0
            if as_json:
                print_json({"dry_run": True, "balanced": balanced, "plan": plan.to_json()})
            elif balanced:
                console.print("already balanced: no slot would move", highlight=False)
            else:
                console.print(_plan_table(plan))
            return
        report = r.rebalance(
            use_empty_masters=use_empty_masters, weights=weights, raise_on_error=False
        )
    _finish(report, as_json, _moved(report, "rebalanced"))


@app.command()
@cluster_command
def drain(
    link: Link,
    as_json: bool,
    node: Annotated[
        list[str],
        typer.Option(
            "--node",
            metavar="NODE_ID",
            help="Id (or unique prefix) of a master; repeat to drain several at once.",
        ),
    ],
    forget: Annotated[
        bool, typer.Option("--forget", help="Then CLUSTER FORGET it everywhere and reset it.")
    ] = False,
) -> None:
    """Move every slot off one or more masters; with --forget remove them from the cluster."""
    with slots_bar(console.is_terminal and not as_json, console) as bar:
        report = link.resharder(bar).drain(node, forget=forget, raise_on_error=False)
    _finish(report, as_json, _moved(report, "drained"))


@app.command()
@cluster_command
def fix(link: Link, as_json: bool) -> None:
    """Complete or roll back migrations left open by a crash, cover uncovered slots."""
    report = link.resharder().fix()
    _finish(report, as_json, f"fixed: {count(len(report.repaired), 'slot')} repaired, cluster ok")
