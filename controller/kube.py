"""The Kubernetes API as Headroom uses it: clients, bounded retries, one error boundary.

Everything in ``headroom.controller`` that writes to Kubernetes (the operator's
reconcilers, the StatefulSet provisioner, leader election) goes through
:class:`Kube`, which bundles the official client's typed APIs over one
``ApiClient`` and :func:`call`, which retries transient failures (429, 5xx,
connection errors) a bounded number of times with backoff and translates the
rest into :class:`headroom.policies.errors.KubernetesError`. A 409 conflict is
not retried blindly here: the caller re-reads and recomputes (level-triggered).
Nothing here knows whether the server is a real cluster or the test emulator.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import urllib3
import yaml
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from tenacity import (
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    stop_after_delay,
    wait_exponential,
)

from headroom.policies.errors import ConflictError, InputError, KubernetesError

log = logging.getLogger(__name__)

T = TypeVar("T")

TRANSIENT_CODES = frozenset({429, 500, 502, 503, 504})
GROUP = "headroom.dev"
VERSION = "v1alpha1"


def is_transient(err: BaseException) -> bool:
    """A failure worth retrying as is: overload, server errors, a dropped connection."""
    if isinstance(err, ApiException):
        return err.status in TRANSIENT_CODES or err.status == 0
    return isinstance(err, urllib3.exceptions.HTTPError | ConnectionError | TimeoutError)


def status_of(err: BaseException) -> int | None:
    """The HTTP status of an API error (None for a connection failure)."""
    return err.status if isinstance(err, ApiException) else None


def call(fn: Callable[[], T], what: str, *, attempts: int = 5, max_seconds: float = 15.0) -> T:
    """Run one API call, retrying transient failures; raise Headroom errors for the rest.

    404 and 409 are raised as :class:`KubernetesError` (``ConflictError`` for
    409) with ``.status`` set, so callers can branch on them without importing
    the client's exception types.
    """
    try:
        for attempt in Retrying(
            retry=retry_if_exception(is_transient),
            stop=stop_after_attempt(attempts) | stop_after_delay(max_seconds),
            wait=wait_exponential(multiplier=0.2, max=3.0),
            reraise=True,
        ):
            with attempt:
                return fn()
    except ApiException as err:
        raise _translate(err, what) from err
    except (urllib3.exceptions.HTTPError, ConnectionError, TimeoutError) as err:
        raise ApiError(f"{what}: Kubernetes API unreachable: {err}", None) from err
    raise AssertionError("unreachable")  # pragma: no cover - Retrying always returns or raises


class ApiError(KubernetesError):
    """A Kubernetes API failure with its HTTP status (None: no answer)."""

    def __init__(self, message: str, status: int | None) -> None:
        super().__init__(message)
        self.status = status


class ApiConflict(ConflictError):
    """409: the object changed under us, or already exists."""

    status = 409


def _translate(err: ApiException, what: str) -> KubernetesError:
    reason = (err.reason or "").strip()
    message = f"{what}: {err.status} {reason}".rstrip()
    body = err.body.decode(errors="replace") if isinstance(err.body, bytes) else err.body
    detail = _status_message(body)
    if detail:
        message += f": {detail}"
    if err.status == 409:
        return ApiConflict(message)
    return ApiError(message, err.status)


def _status_message(body: Any) -> str:
    if not body:
        return ""
    try:
        doc = json.loads(body)
    except (TypeError, ValueError):
        return ""
    return str(doc.get("message", "")) if isinstance(doc, dict) else ""


def retry_conflicts(step: Callable[[], T], *, attempts: int = 4) -> T:
    """Run ``step`` (read, recompute, write) again after a 409, up to ``attempts`` times.

    ``step`` must re-read what it writes each time: a conflict means the object changed
    under us, so the write is recomputed from the new state, never resent as is. The
    last :class:`ApiConflict` is raised when every attempt conflicted.
    """
    for attempt in Retrying(
        retry=retry_if_exception(lambda err: isinstance(err, ApiConflict)),
        stop=stop_after_attempt(attempts),
        wait=wait_exponential(multiplier=0.05, max=0.5),
        reraise=True,
    ):
        with attempt:
            return step()
    raise AssertionError("unreachable")  # pragma: no cover - Retrying always returns or raises


@dataclass(frozen=True)
class Retries:
    """How hard a scale target retries one object: ``attempts`` and ``max_seconds`` bound
    each call's retries of transient failures (so ``scale`` and ``status`` return within
    seconds even when the API is down), ``conflicts`` the re-read-and-retry on a 409."""

    attempts: int = 3
    max_seconds: float = 5.0
    conflicts: int = 4

    def call(self, fn: Callable[[], T], what: str) -> T:
        return call(fn, what, attempts=self.attempts, max_seconds=self.max_seconds)

    def on_conflict(self, step: Callable[[], T]) -> T:
        return retry_conflicts(step, attempts=self.conflicts)


TARGET_RETRIES = Retries()


def not_found(err: BaseException) -> bool:
    return isinstance(err, ApiError) and err.status == 404


# What the client's kubeconfig loader raises for a file that is not a usable kubeconfig
# (a YAML scalar raises TypeError deep inside it).
_BAD_CONFIG = (
    config.ConfigException,
    ValueError,
    OSError,
    TypeError,
    AttributeError,
    yaml.YAMLError,
)


def load_config(kubeconfig: Path | None = None, context: str | None = None) -> client.ApiClient:
    """An ApiClient from a kubeconfig, or in-cluster config when there is none.

    A missing or unreadable ``kubeconfig``, an unknown ``context`` or no configuration at
    all is one :class:`InputError` / :class:`KubernetesError` line, never a traceback."""
    if kubeconfig is not None:
        if not kubeconfig.is_file():
            raise InputError(f"--kubeconfig: {kubeconfig}: no such file")
        cfg = client.Configuration()
        try:
            config.load_kube_config(  # type: ignore[no-untyped-call]
                config_file=str(kubeconfig), context=context, client_configuration=cfg
            )
        except _BAD_CONFIG as err:
            why = (
                "not a kubeconfig (a YAML mapping of clusters, contexts and users)"
                if isinstance(err, TypeError | AttributeError)
                else f"not a usable kubeconfig: {_one_line(err)}"
            )
            raise InputError(f"--kubeconfig: {kubeconfig}: {why}") from None
        cfg.retries = 0  # retries are ours (call()), with backoff and a bound
        client.Configuration.set_default(cfg)
        return client.ApiClient(cfg)
    try:
        config.load_kube_config(context=context)  # type: ignore[no-untyped-call]
    except _BAD_CONFIG as first:
        try:
            config.load_incluster_config()  # type: ignore[no-untyped-call]
        except config.ConfigException:
            # Bad input like a wrong --kubeconfig (exit 2 from every command), not an API
            # failure.
            raise InputError(
                "no Kubernetes configuration: no usable kubeconfig "
                f"($KUBECONFIG or ~/.kube/config: {_one_line(first)}) and not in a cluster; "
                "pass --kubeconfig"
            ) from None
    cfg = client.Configuration.get_default_copy()
    cfg.retries = 0
    client.Configuration.set_default(cfg)
    return client.ApiClient(cfg)


def _one_line(err: BaseException) -> str:
    text = " ".join(str(err).split()) or type(err).__name__
    return text if len(text) <= 200 else text[:199] + "…"


@dataclass
class Kube:
    """The typed APIs Headroom uses, sharing one ApiClient."""

    # Typed as Any: manifests are plain dicts here, which the client accepts as bodies.
    api: Any
    core: Any = field(init=False)
    apps: Any = field(init=False)
    policy: Any = field(init=False)
    coordination: Any = field(init=False)
    custom: Any = field(init=False)
    autoscaling: Any = field(init=False)

    def __post_init__(self) -> None:
        self.core = client.CoreV1Api(self.api)
        self.apps = client.AppsV1Api(self.api)
        self.policy = client.PolicyV1Api(self.api)
        self.coordination = client.CoordinationV1Api(self.api)
        self.custom = client.CustomObjectsApi(self.api)
        self.autoscaling = client.AutoscalingV2Api(self.api)

    def close(self) -> None:
        self.api.close()


def now_rfc3339() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def owner_reference(obj: dict[str, Any]) -> dict[str, Any]:
    """An ownerReference to ``obj`` (a custom object as a dict) for garbage collection."""
    meta = obj["metadata"]
    return {
        "apiVersion": obj["apiVersion"],
        "kind": obj["kind"],
        "name": meta["name"],
        "uid": meta["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


def context_namespace(kubeconfig: Path | None = None, context: str | None = None) -> str:
    """The namespace of the kubeconfig's (current) context, as kubectl picks it: the
    context's ``namespace``, else the pod's own (in a cluster), else ``default``."""
    try:
        contexts, active = config.list_kube_config_contexts(  # type: ignore[no-untyped-call]
            config_file=str(kubeconfig) if kubeconfig is not None else None
        )
    except (config.ConfigException, OSError):
        contexts, active = [], None
    chosen = next((c for c in contexts or [] if c.get("name") == context), None) or active
    namespace = ((chosen or {}).get("context") or {}).get("namespace")
    if isinstance(namespace, str) and namespace:
        return namespace
    pod = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
    try:
        return pod.read_text().strip() or "default"
    except OSError:
        return "default"
