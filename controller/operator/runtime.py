"""Starts the operator: config, health port, leader election, then kopf with our handlers.

Called by ``headroom operator run``. The order matters:

1. the health/metrics port comes up first (a standby is live and scrapeable);
2. :class:`LeaseElector` blocks until this process holds the Lease — a standby
   runs no handler and watches nothing;
3. kopf runs (standalone: our Lease replaces kopf's own peering) with one
   handler module per kind; ``settings.scanning`` is off, so the operator needs
   no cluster-wide permission to watch CRDs or namespaces;
4. when the Lease cannot be renewed, the process stops acting at once (exit 3):
   workers mid-migration die with it, and the next leader's scaler repairs the
   open slots before it moves anything.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from headroom.controller.alerts.config import build_inbound, load_alerts_config
from headroom.controller.demand_events import DemandEventSurges
from headroom.controller.kube import Kube, load_config
from headroom.controller.metrics import OperatorMetrics
from headroom.controller.operator import (
    capacitypolicy,
    rediscluster,
    rediscluster_kopf,
    rediscluster_pods,
)
from headroom.controller.operator.health import HealthServer
from headroom.controller.operator.leader import LeaseElector, LeaseTimings
from headroom.controller.signals.access import SourceAccess

log = logging.getLogger(__name__)

EXIT_LEASE_LOST = 3
STORAGE_PREFIX = "headroom.dev"


@dataclass(frozen=True)
class OperatorOptions:
    kubeconfig: Path | None = None
    context: str | None = None
    namespace: str | None = None  # None with all_namespaces=False: the lease namespace
    all_namespaces: bool = False
    dry_run: bool = False
    host: str = "0.0.0.0"
    port: int = 8080
    lease_name: str = "headroom-operator"
    lease_namespace: str | None = None
    identity: str | None = None
    timings: LeaseTimings = LeaseTimings()
    requeue: float = 2.0
    timer: float = 10.0
    policy_interval: float = 60.0  # seconds between two passes of a CapacityPolicy
    pods_ready_deadline: float = rediscluster_pods.DEFAULT_DEADLINE  # then PodsStuck
    pod_add_timeout: float = rediscluster_pods.DEFAULT_ADD_TIMEOUT  # then the add is retried
    alerts_config: Path | None = None  # default: $HEADROOM_ALERTS_CONFIG, else none
    # What policies' metrics may reach (docs/operator.md "Security model"): no file source
    # unless under one of these directories; only these Prometheus/Redis hosts if any.
    file_dirs: tuple[Path, ...] = ()
    addresses: tuple[str, ...] = ()

    def access(self) -> SourceAccess:
        return SourceAccess(file_dirs=self.file_dirs, addresses=self.addresses, quote=False)


def default_namespace() -> str:
    """The pod's namespace in a cluster (downward API or service account), else ``default``."""
    env = os.environ.get("POD_NAMESPACE")
    if env:
        return env
    sa = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
    return sa.read_text().strip() if sa.exists() else "default"


def run_operator(opts: OperatorOptions) -> int:
    """Run until stopped (SIGINT/SIGTERM: 0) or the Lease is lost (3)."""
    import kopf

    api = load_config(opts.kubeconfig, opts.context)
    kube = Kube(api)
    lease_ns = opts.lease_namespace or opts.namespace or default_namespace()
    identity = (
        opts.identity or f"{os.environ.get('POD_NAME') or socket.gethostname()}-{os.getpid()}"
    )
    metrics = OperatorMetrics()
    metrics.set_leader(False)
    state = {"phase": "standby"}
    health = HealthServer(
        metrics.registry,
        ready=lambda: (state["phase"] in ("standby", "leading"), state["phase"]),
        host=opts.host,
        port=opts.port,
    ).start()
    log.info("Serving health and metrics port=%d identity=%s", health.port, identity)
    elector = LeaseElector(kube, lease_ns, opts.lease_name, identity, opts.timings)
    lost = threading.Event()

    def on_lost() -> None:
        state["phase"] = "lost"
        metrics.set_leader(False)
        lost.set()
        # kopf stops on SIGTERM as on a shutdown. (kopf's stop_flag is waited for in an
        # executor thread, which would keep the process alive after a plain SIGTERM.)
        os.kill(os.getpid(), signal.SIGTERM)
        # Stop acting now: a standby may take the Lease once it expires.
        threading.Timer(2.0, lambda: os._exit(EXIT_LEASE_LOST)).start()

    try:
        if not elector.acquire():
            return 0
        state["phase"] = "leading"
        metrics.set_leader(True)
        elector.keep(on_lost)

        alerts_config = load_alerts_config(opts.alerts_config)
        registry = kopf.OperatorRegistry()
        reconciler = rediscluster.RedisClusterReconciler(
            kube,
            record=_kopf_event,
            metrics=metrics,
            busy_requeue=opts.requeue,
            pods_ready_deadline=opts.pods_ready_deadline,
            ready_timeout=opts.pod_add_timeout,
            dry_run=opts.dry_run,
        )
        rediscluster_kopf.register(registry, reconciler, timer=opts.timer)
        policies = capacitypolicy.CapacityPolicyReconciler(
            kube,
            access=opts.access(),
            record=_kopf_event,
            metrics=metrics,
            interval=opts.policy_interval,
            dry_run=opts.dry_run,
            alerts=alerts_config,
        )
        capacitypolicy.register(registry, policies, interval=opts.policy_interval)
        # Alertmanager's webhooks (POST /hooks/alertmanager) become surge DemandEvents;
        # only the leader listens, so a surge is written once.
        inbound = build_inbound(
            alerts_config,
            policies=policies.known_specs,
            surges=DemandEventSurges(kube, policies.namespace_of, policies.namespaces),
        )
        if inbound is not None:
            log.info("Serving Alertmanager webhooks url=%s", inbound.url("/hooks/alertmanager"))

        @kopf.on.startup(registry=registry)
        def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
            settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(
                prefix=STORAGE_PREFIX
            )
            settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
                prefix=STORAGE_PREFIX, key="last-handled-configuration"
            )
            settings.persistence.finalizer = f"{STORAGE_PREFIX}/finalizer"
            settings.scanning.disabled = True
            settings.posting.level = logging.INFO
            settings.watching.server_timeout = 60
            settings.watching.client_timeout = 90
            settings.networking.request_timeout = 30

        @kopf.on.login(registry=registry)
        def login(**_: Any) -> Any:
            return _connection_info(api.configuration, lease_ns)

        namespaces = [] if opts.all_namespaces else [opts.namespace or lease_ns]
        log.info(
            "Started operator namespaces=%s dry_run=%s",
            ",".join(namespaces) or "*",
            opts.dry_run,
        )
        kopf.run(
            registry=registry,
            standalone=True,
            clusterwide=opts.all_namespaces,
            namespaces=namespaces,
        )
        reconciler.close()
        if inbound is not None:
            inbound.stop()
    finally:
        if not lost.is_set():
            elector.release()
        health.stop()
        kube.close()
    return EXIT_LEASE_LOST if lost.is_set() else 0


def _connection_info(cfg: Any, namespace: str) -> Any:
    """kopf's credentials from the kubernetes client's configuration (the one source of truth,
    whether it came from a kubeconfig or the pod's service account)."""
    import kopf

    auth = (cfg.api_key or {}).get("authorization") or (cfg.api_key or {}).get("BearerToken")
    prefix = (cfg.api_key_prefix or {}).get("authorization")
    token = None
    if auth:
        token = auth.split(" ", 1)[1] if auth.lower().startswith("bearer ") else auth
        if prefix and prefix.lower() != "bearer":
            token = auth
    return kopf.ConnectionInfo(
        server=cfg.host,
        ca_path=cfg.ssl_ca_cert,
        insecure=not cfg.verify_ssl,
        username=cfg.username or None,
        password=cfg.password or None,
        scheme="Bearer" if token else None,
        token=token,
        certificate_path=cfg.cert_file,
        private_key_path=cfg.key_file,
        default_namespace=namespace,
    )


def _kopf_event(body: Any, type_: str, reason: str, message: str) -> None:
    """Post a Kubernetes Event through kopf (only inside a handler's context)."""
    import kopf

    try:
        kopf.event(dict(body), type=type_, reason=reason, message=message)
    except Exception as err:  # an Event is best effort, never a failed reconcile
        log.warning("Failed to post Event reason=%s error=%s", reason, err)


def configure_logging(verbose: bool = False) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
