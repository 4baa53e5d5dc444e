"""`headroom local`: Run a real Redis Cluster on loopback (the embedded default).

Thin commands over :class:`headroom.controller.provisioning.local.LocalProvisioner`
and :class:`headroom.controller.redis.scaler.ClusterScaler` (the same pair
``headroom demo`` drives). State lives in ``--dir`` (default
``$HEADROOM_LOCAL_DIR`` or ``.headroom/local``), so ``up``, ``scale``,
``status`` and ``down`` can run as separate commands.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from headroom.cli._common import JsonOpt, console, count, err_console, errors_to_exit, print_json
from headroom.cli._progress import slots_bar
from headroom.controller.provisioning.local import (
    BUS_PORT_OFFSET,
    DEFAULT_BASE_PORT,
    DEFAULT_HOST,
    LocalClusterSpec,
    LocalProvisioner,
    port_in_use,
)
from headroom.controller.redis.reports import ClusterStatus
from headroom.controller.redis.scaler import ClusterScaler
from headroom.policies.errors import InputError

app = typer.Typer(
    help="Run a real Redis Cluster on loopback (the embedded default).", no_args_is_help=True
)

DirOption = typer.Option(
    None, "--dir", help="State dir (default: $HEADROOM_LOCAL_DIR or .headroom/local)."
)


def state_dir(given: Path | None) -> Path:
    """The state dir a command works on."""
    if given is not None:
        return given
    return Path(os.environ.get("HEADROOM_LOCAL_DIR") or ".headroom/local")


@app.command()
def up(
    masters: int = typer.Option(..., "--masters", help="Number of masters."),
    replicas: int = typer.Option(0, "--replicas", help="Replicas per master."),
    base_port: int = typer.Option(DEFAULT_BASE_PORT, "--base-port", help="First port to use."),
    directory: Path | None = DirOption,
    json_out: JsonOpt = False,
) -> None:
    """Start a Redis Cluster of MASTERS masters (and REPLICAS replicas each) on loopback."""
    with errors_to_exit():
        _check_shape(masters, replicas)
        where = state_dir(directory)
        if LocalProvisioner.exists(where) and LocalProvisioner.open(where).list_nodes():
            raise InputError(
                f"{where}: a local cluster is already up; "
                "use `headroom local scale` or `headroom local down`"
            )
        count = masters * (1 + replicas)
        ports = list(range(base_port, base_port + count))
        if base_port < 1 or ports[-1] + BUS_PORT_OFFSET > 65535:
            raise InputError(
                f"--base-port {base_port}: {count} nodes need ports up to "
                f"{ports[-1]} and bus ports up to {ports[-1] + BUS_PORT_OFFSET} (max 65535)"
            )
        for port in ports:
            if port_in_use(DEFAULT_HOST, port):
                raise InputError(
                    f"port {port} (or its bus port {port + BUS_PORT_OFFSET}) on {DEFAULT_HOST} "
                    f"is in use; {count} nodes need ports {ports[0]}-{ports[-1]} (--base-port)"
                )
        provisioner = LocalProvisioner.create(where, host=DEFAULT_HOST, base_port=base_port)
        try:
            with provisioner.exclusive():
                provisioner.set_spec(LocalClusterSpec(masters, replicas))
                for port in ports:
                    provisioner.add_node(port=port)
                scaler = ClusterScaler(
                    provisioner, replicas_per_master=replicas, auth=provisioner.auth
                )
                with slots_bar(not json_out and err_console.is_terminal, err_console) as show:
                    scaler.on_phase = show.phase
                    scaler.scale_masters(masters)
                status = scaler.status()
                scaler.close()
        except BaseException:
            provisioner.destroy()  # a half-built cluster is worse than none
            raise
        _report(provisioner, status, json_out)


@app.command()
def scale(
    masters: int = typer.Option(..., "--masters", help="Number of masters to converge on."),
    replicas: int | None = typer.Option(
        None, "--replicas", help="Replicas per master (default: keep the current setting)."
    ),
    directory: Path | None = DirOption,
    json_out: JsonOpt = False,
) -> None:
    """Grow or shrink the local cluster online; run again to finish an interrupted run."""
    with errors_to_exit():
        _check_shape(masters, replicas or 0)
        provisioner = LocalProvisioner.open(state_dir(directory))
        with provisioner.exclusive():
            spec = provisioner.spec
            keep = replicas if replicas is not None else (spec.replicas if spec else 0)
            provisioner.set_spec(LocalClusterSpec(masters, keep))
            scaler = ClusterScaler(provisioner, replicas_per_master=keep, auth=provisioner.auth)
            with slots_bar(not json_out and err_console.is_terminal, err_console) as show:
                scaler.on_phase = show.phase
                report = scaler.scale_masters(masters, progress=show.update)
            status = scaler.status()
            scaler.close()
        if json_out:
            print_json({"scale": report.to_json(), **_status_json(provisioner, status)})
            return
        console.print(
            f"Scaled masters {report.masters_before} -> {report.masters_after} "
            f"(replicas per master {report.replicas_per_master}) in {report.seconds:.1f}s; "
            f"started {count(len(report.added), 'node')}, stopped {len(report.removed)}"
        )
        _report(provisioner, status, json_out=False)


@app.command()
def status(directory: Path | None = DirOption, json_out: JsonOpt = False) -> None:
    """Show nodes, roles, slots and keys of the local cluster."""
    with errors_to_exit():
        provisioner = LocalProvisioner.open(state_dir(directory))
        spec = provisioner.spec
        scaler = ClusterScaler(
            provisioner,
            replicas_per_master=spec.replicas if spec else 0,
            auth=provisioner.auth,
        )
        cluster = scaler.status()
        scaler.close()
        _report(provisioner, cluster, json_out)


@app.command()
def down(directory: Path | None = DirOption, json_out: JsonOpt = False) -> None:
    """Stop every node of the local cluster and delete its state dir."""
    with errors_to_exit():
        where = state_dir(directory)
        if not LocalProvisioner.exists(where):
            if json_out:
                print_json({"dir": str(where), "stopped_pids": []})
            else:
                print(f"No local cluster in {where}; nothing to stop.", file=sys.stderr)
            return
        provisioner = LocalProvisioner.open(where)
        with provisioner.exclusive():
            pids = provisioner.destroy()
        if json_out:
            print_json({"dir": str(provisioner.state_dir), "stopped_pids": pids})
        else:
            console.print(
                f"Stopped {count(len(pids), 'redis-server process', 'redis-server processes')}; "
                f"removed {where}"
            )


# -- helpers -------------------------------------------------------------------------------------


def _check_shape(masters: int, replicas: int) -> None:
    if masters < 1:
        raise InputError(f"--masters must be at least 1, got {masters}")
    if replicas < 0:
        raise InputError(f"--replicas must be 0 or more, got {replicas}")


def _status_json(provisioner: LocalProvisioner, status: ClusterStatus) -> dict[str, Any]:
    spec = provisioner.spec
    pids = {p.info.name: p.pid for p in provisioner.processes()}
    nodes = []
    for node in status.nodes:
        row = node.to_json()
        row["pid"] = pids.get(node.name) if node.name else None
        nodes.append(row)
    return {
        "dir": str(provisioner.state_dir),
        # Where the password is (owner-readable only), never the password itself.
        "password_file": str(provisioner.password_file),
        "spec": {"masters": spec.masters, "replicas": spec.replicas} if spec else None,
        "cluster": {**status.to_json(), "nodes": nodes},
    }


def _report(provisioner: LocalProvisioner, status: ClusterStatus, json_out: bool) -> None:
    if json_out:
        print_json(_status_json(provisioner, status))
        return
    data = _status_json(provisioner, status)
    spec = provisioner.spec
    table = Table(title=f"Local Redis Cluster in {provisioner.state_dir}")
    for column in ("name", "addr", "pid", "role", "node id", "slots", "keys"):
        table.add_column(column, justify="right" if column in ("slots", "keys") else "left")
    for row in data["cluster"]["nodes"]:
        node_id = row["node_id"] or "-"
        role = row["role"]
        if role == "replica" and row["master_id"]:
            role = f"replica of {row['master_id'][:8]}"
        table.add_row(
            row["name"] or "-",
            row["addr"],
            str(row["pid"] or "-"),
            role,
            node_id[:8],
            str(row["slots"]),
            "-" if row["keys"] is None else str(row["keys"]),
        )
    console.print(table)
    health = "ok" if status.healthy else "NOT OK: " + "; ".join(status.problems[:3])
    wanted = f" (asked for {spec.masters} x {1 + spec.replicas} nodes)" if spec else ""
    console.print(
        f"masters {status.masters_serving}{wanted}, slots covered {status.slots_covered}/16384, "
        f"keys {status.keys}, cluster {health}"
    )
    console.print(f"password (AUTH) in {provisioner.password_file}")
    sys.stdout.flush()
