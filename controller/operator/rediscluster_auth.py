"""A RedisCluster's password and TLS settings, as its controller keeps them in Secrets.

The RedisCluster reconciler (``rediscluster.py``) calls :func:`cluster_auth` once per
pass: it creates the auth Secret the operator owns on the first pass (from
``spec.auth``'s Secret, or a generated password) and reads it after that. The
CapacityPolicy reconciler calls :func:`cluster_endpoint` to read a cluster's Redis
INFO with the same settings. A password is never logged.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Mapping
from typing import Any

from headroom.controller.kube import GROUP, VERSION, Kube, call, not_found, owner_reference
from headroom.controller.operator import resources
from headroom.controller.operator.conditions import EventRecorder, object_key
from headroom.controller.operator.specs import PLURAL, InvalidSpec, RedisClusterSpec, parse_spec
from headroom.controller.provisioning.statefulset import StatefulSetProvisioner
from headroom.controller.redis.connection import NodeAddr, RedisAuth, generate_password
from headroom.policies.errors import KubernetesError, SourceUnavailable

log = logging.getLogger(__name__)

#: ``record(body, type, reason, message)``: post a Kubernetes Event about ``body``.


def cluster_auth(
    kube: Kube, body: Mapping[str, Any], spec: RedisClusterSpec, record: EventRecorder
) -> RedisAuth:
    """The password (and with ``spec.tls`` the CA) the operator connects with."""
    return with_tls(kube, body["metadata"]["namespace"], spec, _password(kube, body, spec, record))


def _password(
    kube: Kube, body: Mapping[str, Any], spec: RedisClusterSpec, record: EventRecorder
) -> str:
    """The cluster's password, from the auth Secret the operator owns; creating that
    Secret first (from ``spec.auth``'s Secret, or a generated password) if it is new.

    The pods read the password from the owned Secret, so the operator does too: a
    later change to ``spec.auth``'s Secret is reported, not half-applied.
    """
    ns, name = object_key(body)
    owned = resources.auth_secret_name(name)
    given = _given_password(kube, ns, spec) if spec.auth is not None else None
    password = owned_password(kube, ns, name)
    if password is None:
        password = given or generate_password()
        manifest = resources.auth_secret(name, password, owner_reference(dict(body)))
        try:
            call(
                lambda: kube.core.create_namespaced_secret(ns, manifest),
                f"create Secret {ns}/{owned}",
            )
        except KubernetesError as err:
            if getattr(err, "status", None) != 409:
                raise
            return _password(kube, body, spec, record)  # created meanwhile (another pass): use it
        origin = f"from Secret {spec.auth.secret_name}" if spec.auth else "generated"
        log.info("Created Secret %s/%s password=%s", ns, owned, origin)
        record(body, "Normal", "AuthSecretCreated", f"Secret {owned}: password {origin}")
        return password
    if given is not None and given != password:
        log.warning(
            "Kept RedisCluster %s/%s password: Secret %s changed after the cluster was "
            "created; rotation is not supported",
            ns,
            name,
            spec.auth.secret_name if spec.auth else "",
        )
    return password


def _given_password(kube: Kube, ns: str, spec: RedisClusterSpec) -> str:
    assert spec.auth is not None
    ref = spec.auth
    raw = _secret_data(kube, ns, ref.secret_name, "spec.auth.secretName").get(ref.key)
    if raw is None:
        raise InvalidSpec(f"spec.auth.key: Secret {ref.secret_name} has no key {ref.key!r}")
    password = base64.b64decode(raw).decode()
    if not password:
        raise InvalidSpec(f"spec.auth.key: key {ref.key!r} of Secret {ref.secret_name} is empty")
    return password


def _secret(kube: Kube, ns: str, name: str) -> dict[str, str] | None:
    """A Secret's ``data`` (base64 values); None when there is no such Secret."""
    try:
        secret = call(
            lambda: kube.core.read_namespaced_secret(name, ns), f"read Secret {ns}/{name}"
        )
    except KubernetesError as err:
        if not_found(err):
            return None
        raise
    return dict(secret.data or {})


def _secret_data(kube: Kube, ns: str, name: str, where: str) -> dict[str, str]:
    """The ``data`` of a Secret that a spec field (``where``) names."""
    data = _secret(kube, ns, name)
    if data is None:
        raise InvalidSpec(f"{where}: Secret {name!r} not found in {ns}")
    return data


def owned_password(kube: Kube, ns: str, name: str) -> str | None:
    """The password in the auth Secret the operator owns for RedisCluster ``name`` (None:
    not created yet)."""
    owned = resources.auth_secret_name(name)
    data = _secret(kube, ns, owned)
    if data is None:
        return None
    raw = data.get(resources.PASSWORD_KEY)
    if not raw:
        raise InvalidSpec(f"Secret {owned}: has no key {resources.PASSWORD_KEY!r}")
    return base64.b64decode(raw).decode()


def with_tls(kube: Kube, ns: str, spec: RedisClusterSpec, password: str) -> RedisAuth:
    """The :class:`RedisAuth` of a cluster with ``password``: with ``spec.tls``, its CA too."""
    if spec.tls is None:
        return RedisAuth(password=password)
    ref = spec.tls
    data = _secret_data(kube, ns, ref.secret_name, "spec.tls.secretName")
    for field_name, key in (("certKey", ref.cert_key), ("keyKey", ref.key_key)):
        if not data.get(key):
            raise InvalidSpec(f"spec.tls.{field_name}: Secret {ref.secret_name} has no key {key!r}")
    ca = data.get(ref.ca_key)
    if not ca:
        raise InvalidSpec(f"spec.tls.caKey: Secret {ref.secret_name} has no key {ref.ca_key!r}")
    # Nodes are reached by pod IP, which no certificate issued ahead of the pods names:
    # the chain is verified against the cluster's CA, the host name is not.
    return RedisAuth(
        password=password,
        tls=True,
        tls_ca_data=base64.b64decode(ca).decode(),
        tls_check_hostname=False,
    )


def cluster_endpoint(kube: Kube, ns: str, name: str) -> tuple[NodeAddr, RedisAuth]:
    """Where and how the operator reads RedisCluster ``ns/name`` (a CapacityPolicy's Redis
    INFO source): a Ready pod's address, and the cluster's own password and TLS settings
    from the Secrets its controller keeps. Nothing is created; a cluster that is not
    there or not ready yet raises :class:`SourceUnavailable` (the pass is retried)."""
    try:
        body = call(
            lambda: kube.custom.get_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, name),
            f"read RedisCluster {ns}/{name}",
        )
    except KubernetesError as err:
        if not_found(err):
            raise SourceUnavailable(f"RedisCluster {ns}/{name} not found") from err
        raise
    try:
        spec = parse_spec(body.get("spec"))
        password = owned_password(kube, ns, name)
        if password is None:
            raise SourceUnavailable(f"RedisCluster {ns}/{name} has no password Secret yet")
        auth = with_tls(kube, ns, spec, password)
    except InvalidSpec as err:
        raise SourceUnavailable(f"RedisCluster {ns}/{name}: {err}") from err
    nodes = StatefulSetProvisioner(kube, ns, name, port=spec.port).list_nodes()
    if not nodes:
        raise SourceUnavailable(f"RedisCluster {ns}/{name} has no Ready pod yet")
    return nodes[0].addr, auth
