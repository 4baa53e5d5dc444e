"""The RedisCluster spec as the controller reads it, with one-line errors naming the field.

The CRD's OpenAPI schema (``charts/headroom/crds/``) rejects most bad specs at
the API server; this model checks the same rules again (a schema can be
loosened, an old object can predate it) plus what a schema cannot say, so an
invalid spec becomes ``Ready=False, reason=InvalidSpec`` instead of an action.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from headroom.policies.errors import InputError

PLURAL = "redisclusters"  # the resource (headroom.dev/v1alpha1)
KIND = "RedisCluster"
MIN_MASTERS = 3  # fewer masters cannot elect a failover majority
_QUANTITY = re.compile(r"^[0-9]+(?:\.[0-9]+)?(?:[KMGTPE]i?|[kmgtpe])?$")
_MEMORY = re.compile(r"^[0-9]+(?:[kmg]b?|[KMGT]i|[KMGT])?$", re.IGNORECASE)


class InvalidSpec(InputError):
    """A RedisCluster spec the controller refuses; ``str()`` is one line naming the field."""


class AuthRef(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    secret_name: str = Field(alias="secretName", min_length=1)
    key: str = Field(default="password", min_length=1)


class Persistence(BaseModel):
    """``spec.persistence``: each pod's data on its own PersistentVolumeClaim, with AOF."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)

    storage_class_name: str | None = Field(default=None, alias="storageClassName", min_length=1)
    size: str = Field(default="1Gi")


class TlsRef(BaseModel):
    """A Secret with the nodes' certificate, its key and the CA that signed it (the layout
    cert-manager writes: ``tls.crt``, ``tls.key``, ``ca.crt``)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    secret_name: str = Field(alias="secretName", min_length=1)
    cert_key: str = Field(default="tls.crt", alias="certKey", min_length=1)
    key_key: str = Field(default="tls.key", alias="keyKey", min_length=1)
    ca_key: str = Field(default="ca.crt", alias="caKey", min_length=1)


class RedisClusterSpec(BaseModel):
    """``spec`` of a ``headroom.dev/v1alpha1`` RedisCluster."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)

    masters: int = Field(ge=MIN_MASTERS, le=1000)
    replicas_per_master: int = Field(default=1, alias="replicasPerMaster", ge=0, le=5)
    image: str = Field(default="redis:7.2", min_length=1)
    port: int = Field(default=6379, ge=1, le=65535)
    maxmemory: str = Field(default="256mb")
    resources: dict[str, Any] = Field(default_factory=dict)
    auth: AuthRef | None = None
    persistence: Persistence | None = None
    tls: TlsRef | None = None

    @property
    def pods(self) -> int:
        return self.masters * (1 + self.replicas_per_master)


def parse_spec(raw: Any) -> RedisClusterSpec:
    """Validate ``spec``; raise :class:`InvalidSpec` with ``spec.<field>: <problem>``."""
    if not isinstance(raw, dict):
        raise InvalidSpec("spec: must be an object")
    try:
        spec = RedisClusterSpec.model_validate(raw)
    except ValidationError as err:
        raise InvalidSpec(_one_line(err)) from err
    if spec.persistence is not None and not _QUANTITY.match(spec.persistence.size):
        raise InvalidSpec(
            f"spec.persistence.size: {spec.persistence.size!r} is not a storage size "
            "(e.g. 1Gi, 500Mi)"
        )
    if not _MEMORY.match(spec.maxmemory):
        raise InvalidSpec(
            f"spec.maxmemory: {spec.maxmemory!r} is not a memory size (e.g. 256mb, 1gb, 512Mi)"
        )
    return spec


def redis_maxmemory(text: str) -> str:
    """Kubernetes-style ``512Mi``/``1G`` to what redis-server reads (bytes or ``mb``/``gb``)."""
    m = re.fullmatch(r"([0-9]+)([KMGT])i", text)
    if m:
        return str(int(m[1]) * 1024 ** " KMGT".index(m[2]))
    m = re.fullmatch(r"([0-9]+)([KMGT])", text)
    if m:
        return str(int(m[1]) * 1000 ** " KMGT".index(m[2]))
    return text


def _one_line(err: ValidationError) -> str:
    first = err.errors()[0]
    where = "spec." + ".".join(str(p) for p in first["loc"]) if first["loc"] else "spec"
    kind, ctx = first["type"], first.get("ctx") or {}
    got = first.get("input")
    if kind == "extra_forbidden":
        return f"{where}: is not a known field"
    if kind == "missing":
        return f"{where}: is required"
    if kind in ("greater_than_equal", "greater_than"):
        return f"{where}: must be at least {ctx.get('ge', ctx.get('gt'))}, got {got!r}"
    if kind in ("less_than_equal", "less_than"):
        return f"{where}: must be at most {ctx.get('le', ctx.get('lt'))}, got {got!r}"
    if kind.startswith(("int", "string")) or kind.endswith("_type"):
        return f"{where}: wrong type, got {got!r}"
    return f"{where}: {first['msg']}"
