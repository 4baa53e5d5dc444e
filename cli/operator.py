"""`headroom operator`: run the Kubernetes operator, in or out of a cluster.

A thin command over :func:`headroom.controller.operator.runtime.run_operator`:
with ``--kubeconfig`` (or ``$KUBECONFIG``/``~/.kube/config``) it runs anywhere,
otherwise it uses the pod's in-cluster service account.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from headroom.cli._common import EXIT_INPUT, errors_to_exit, fail
from headroom.cli._kube import AllNamespacesOpt

app = typer.Typer(help="Run the Headroom Kubernetes operator.", no_args_is_help=True)


@app.command("run")
def run(
    kubeconfig: Annotated[
        Path | None,
        typer.Option(
            "--kubeconfig",
            help="Kubeconfig file (default: in-cluster, then ~/.kube).",
            envvar="KUBECONFIG",
        ),
    ] = None,
    context: Annotated[str | None, typer.Option("--context", help="Kubeconfig context.")] = None,
    namespace: Annotated[
        str | None,
        typer.Option("--namespace", "-n", help="Watch this namespace (default: the pod's own)."),
    ] = None,
    all_namespaces: AllNamespacesOpt = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Change nothing; status says what would be done.")
    ] = False,
    host: Annotated[str, typer.Option("--host", help="Address of the health/metrics port.")] = (
        "0.0.0.0"
    ),
    port: Annotated[
        int,
        typer.Option(
            "--port", help="Port of /healthz, /readyz, /metrics.", envvar="HEADROOM_METRICS_PORT"
        ),
    ] = 8080,
    lease_name: Annotated[
        str,
        typer.Option(
            "--lease-name", help="Lease used for leader election.", envvar="HEADROOM_LEASE_NAME"
        ),
    ] = "headroom-operator",
    lease_duration: Annotated[
        float,
        typer.Option(
            "--lease-duration",
            help="Seconds a standby waits after the leader's last renewal before it takes over.",
            envvar="HEADROOM_LEASE_DURATION_SECONDS",
        ),
    ] = 15.0,
    lease_namespace: Annotated[
        str | None, typer.Option("--lease-namespace", help="Namespace of the Lease.")
    ] = None,
    identity: Annotated[
        str | None, typer.Option("--identity", help="This process's name in the Lease.")
    ] = None,
    policy_interval: Annotated[
        float,
        typer.Option(
            "--policy-interval", help="Seconds between two passes of each CapacityPolicy."
        ),
    ] = 60.0,
    pods_ready_deadline: Annotated[
        float,
        typer.Option(
            "--pods-ready-deadline",
            help="Seconds a RedisCluster's pods may stay not Ready (unschedulable, an image "
            "that never pulls) before a PodsStuck Warning and condition say which and why.",
            envvar="HEADROOM_PODS_READY_DEADLINE_SECONDS",
        ),
    ] = 600.0,
    pod_add_timeout: Annotated[
        float,
        typer.Option(
            "--pod-add-timeout",
            help="Seconds a RedisCluster scale-out waits for each pod it adds to be Ready "
            "before that attempt fails and is retried (waiting for the same pod).",
            envvar="HEADROOM_POD_ADD_TIMEOUT_SECONDS",
        ),
    ] = 180.0,
    alerts_config: Annotated[
        Path | None,
        typer.Option(
            "--alerts-config",
            help="Alert sinks and delivery settings (YAML; secrets by reference).",
            envvar="HEADROOM_ALERTS_CONFIG",
        ),
    ] = None,
    allow_file_dir: Annotated[
        list[Path] | None,
        typer.Option(
            "--allow-file-dir",
            metavar="DIR",
            help="A directory whose files policies' csv sources may read (repeatable; "
            "default: none, file sources are refused).",
        ),
    ] = None,
    allow_address: Annotated[
        list[str] | None,
        typer.Option(
            "--allow-address",
            metavar="ADDRESS",
            help="HOST or HOST:PORT (globs: *.svc) policies' Prometheus/Redis sources may "
            "reach (repeatable; default: any).",
        ),
    ] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Debug logging.")] = False,
) -> None:
    """Watch RedisClusters and reconcile them (only the Lease holder acts)."""
    from headroom.controller.operator.leader import LeaseTimings
    from headroom.controller.operator.rediscluster_pods import check_add_timeout, check_deadline
    from headroom.controller.operator.runtime import (
        OperatorOptions,
        configure_logging,
        run_operator,
    )

    if namespace and all_namespaces:
        fail("--namespace and --all-namespaces exclude each other", EXIT_INPUT)
    if not 3 <= lease_duration <= 600:
        fail(f"--lease-duration: {lease_duration:g} is outside 3..600 seconds", EXIT_INPUT)
    if not 1 <= policy_interval <= 3600:
        fail(f"--policy-interval: {policy_interval:g} is outside 1..3600 seconds", EXIT_INPUT)
    try:
        check_deadline(pods_ready_deadline)
        check_add_timeout(pod_add_timeout)
    except ValueError as err:
        fail(str(err), EXIT_INPUT)
    if not 0 <= port < 65536:
        fail(f"--port: {port} is not a port number", EXIT_INPUT)
    for directory in allow_file_dir or []:
        if not directory.is_absolute() or not directory.is_dir():
            fail(f"--allow-file-dir: {directory}: is not an absolute directory path", EXIT_INPUT)
    for address in allow_address or []:
        if not address.strip() or any(c.isspace() or c in "/@" for c in address):
            fail(f"--allow-address: {address!r}: must be HOST or HOST:PORT", EXIT_INPUT)
    if kubeconfig is not None and not kubeconfig.is_file():
        fail(f"--kubeconfig: {kubeconfig}: no such file", EXIT_INPUT)
    configure_logging(verbose)
    with errors_to_exit():
        code = run_operator(
            OperatorOptions(
                kubeconfig=kubeconfig,
                context=context,
                namespace=namespace,
                all_namespaces=all_namespaces,
                dry_run=dry_run,
                host=host,
                port=port,
                lease_name=lease_name,
                lease_namespace=lease_namespace,
                identity=identity,
                policy_interval=policy_interval,
                pods_ready_deadline=pods_ready_deadline,
                pod_add_timeout=pod_add_timeout,
                alerts_config=alerts_config,
                file_dirs=tuple(allow_file_dir or ()),
                addresses=tuple(allow_address or ()),
                timings=LeaseTimings(
                    lease_duration=lease_duration,
                    renew_deadline=lease_duration * 2 / 3,
                    retry_period=max(1.0, lease_duration / 7.5),
                ),
            )
        )
    raise typer.Exit(code)
