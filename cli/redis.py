"""`headroom redis`: inspect, rebalance, drain and repair any reachable Redis Cluster.

Thin commands over :class:`headroom.controller.redis.resharder.Resharder`, the
same object the local provisioner and the operator use. Every command takes
AUTH/ACL and TLS options, prints a table (or ``--json``), shows a progress bar
on a terminal, and turns errors into one stderr line and a non-zero exit.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from headroom.cli._common import console, count, errors_to_exit, fail, print_json
from headroom.controller.redis.connection import RedisAuth, make_connect, password_from_env
from headroom.controller.redis.migrate import MigrateOptions
from headroom.controller.redis.reports import ReshardProgress, ReshardReport
from headroom.controller.redis.resharder import CLIENT_NAME, Resharder
from headroom.controller.redis.slotplan import SlotPlan
from headroom.controller.redis.topology import Topology
from headroom.policies.errors import InputError

app = typer.Typer(
    help="Inspect, rebalance, drain and repair any Redis Cluster.", no_args_is_help=True
)

# Test hook for crash-safety tests: SIGKILL ourselves mid-slot after N keys moved.
CRASH_ENV = "HEADROOM_RESHARD_CRASH_AFTER_KEYS"

Seed = Annotated[str, typer.Option("--seed", help="Any node of the cluster, HOST:PORT.")]
Json = Annotated[bool, typer.Option("--json", help="Print one JSON document.")]
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


def _resharder(
    seed: str,
    user: str | None,
    password_env: str,
    tls: bool,
    tls_ca: str | None,
    tls_cert: str | None,
    tls_key: str | None,
    tls_insecure: bool,
    progress: Progress | None = None,
) -> Resharder:
    crash = os.environ.get(CRASH_ENV)
    password = _password(password_env)
    auth = RedisAuth(
        username=user, password=password, tls=tls, tls_ca=tls_ca, tls_cert=tls_cert,
        tls_key=tls_key, tls_insecure=tls_insecure,
    )  # fmt: skip
    connect = make_connect(auth, client_name=CLIENT_NAME)
    task: list[TaskID] = []

    def listener(p: ReshardProgress) -> None:
        assert progress is not None
        if not task:
            task.append(
                progress.add_task("moving", total=p.slots_total, keys=0, mb=0.0, current="")
            )
        progress.update(
            task[0], completed=p.slots_done, total=p.slots_total,
            keys=p.keys_moved, mb=p.bytes_moved / 1e6, current=p.current,
        )  # fmt: skip

    return Resharder(
        seed,
        connect=connect,
        progress=listener if progress is not None else None,
        options=MigrateOptions(username=user, password=password),
        crash_after_keys=int(crash) if crash else None,
    )


@contextmanager
def _progress(enabled: bool) -> Iterator[Progress | None]:
    if not enabled:
        yield None
        return
    bar = Progress(
        TextColumn("[bold]slots"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("keys {task.fields[keys]:,}  {task.fields[mb]:.1f} MB  {task.fields[current]}"),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        console=console,
        transient=False,
    )
    with bar:
        yield bar


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


def _finish(report: ReshardReport, as_json: bool, what: str) -> None:
    if as_json:
        print_json(report.to_json())
    else:
        for line in report.repaired:
            console.print(f"repaired {line}")
        rate = report.keys_moved / report.seconds if report.seconds else 0.0
        console.print(
            f"{what}: {report.slots_moved} slots, {report.keys_moved:,} keys, "
            f"{report.bytes_moved / 1e6:.1f} MB in {report.seconds:.2f}s ({rate:,.0f} keys/s)"
        )
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
def status(
    seed: Seed, as_json: Json = False, user: User = None, password_env: Password = PASSWORD_ENV,
    tls: Tls = False, tls_ca: TlsCa = None, tls_cert: TlsCert = None, tls_key: TlsKey = None,
    tls_insecure: TlsInsecure = False,
) -> None:  # fmt: skip
    """Masters, replicas, slots and keys per master, open slots, health."""
    with errors_to_exit():
        r = _resharder(seed, user, password_env, tls, tls_ca, tls_cert, tls_key, tls_insecure)
        topo = r.topology()
        if as_json:
            print_json(topo.to_json())
            return
        console.print(_status_table(topo))
        for problem in topo.problems():
            console.print(f"[yellow]problem:[/] {problem}")


@app.command()
def rebalance(
    seed: Seed,
    use_empty_masters: Annotated[
        bool, typer.Option("--use-empty-masters", help="Give slots to masters that own none.")
    ] = False,
    weight: Annotated[
        list[str] | None,
        typer.Option(
            "--weight", metavar="NODE_ID=W", help="Weight of a master (id prefix ok), repeatable."
        ),
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the plan only.")] = False,
    as_json: Json = False, user: User = None, password_env: Password = PASSWORD_ENV,
    tls: Tls = False, tls_ca: TlsCa = None, tls_cert: TlsCert = None, tls_key: TlsKey = None,
    tls_insecure: TlsInsecure = False,
) -> None:  # fmt: skip
    """Balance slots (weighted) with the fewest moves, migrating keys online."""
    with errors_to_exit():
        weights = _parse_weights(weight or []) or None
        show = console.is_terminal and not as_json and not dry_run
        with _progress(show) as bar:
            r = _resharder(
                seed, user, password_env, tls, tls_ca, tls_cert, tls_key, tls_insecure, bar
            )
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
        _finish(report, as_json, "rebalanced")


@app.command()
def drain(
    seed: Seed,
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
    as_json: Json = False, user: User = None, password_env: Password = PASSWORD_ENV,
    tls: Tls = False, tls_ca: TlsCa = None, tls_cert: TlsCert = None, tls_key: TlsKey = None,
    tls_insecure: TlsInsecure = False,
) -> None:  # fmt: skip
    """Move every slot off one or more masters; with --forget remove them from the cluster."""
    with errors_to_exit():
        with _progress(console.is_terminal and not as_json) as bar:
            r = _resharder(
                seed, user, password_env, tls, tls_ca, tls_cert, tls_key, tls_insecure, bar
            )
            report = r.drain(node, forget=forget, raise_on_error=False)
        _finish(report, as_json, "drained")


@app.command()
def fix(
    seed: Seed, as_json: Json = False, user: User = None, password_env: Password = PASSWORD_ENV,
    tls: Tls = False, tls_ca: TlsCa = None, tls_cert: TlsCert = None, tls_key: TlsKey = None,
    tls_insecure: TlsInsecure = False,
) -> None:  # fmt: skip
    """Complete or roll back migrations left open by a crash, cover uncovered slots."""
    with errors_to_exit():
        r = _resharder(seed, user, password_env, tls, tls_ca, tls_cert, tls_key, tls_insecure)
        report = r.fix()
        if as_json:
            print_json(report.to_json())
            return
        for line in report.repaired:
            console.print(f"repaired {line}")
        console.print(f"fixed: {count(len(report.repaired), 'slot')} repaired, cluster ok")
