"""A CapacityPolicy's inputs as the cluster holds them: the policy, the demand history
from the policy's own metrics source, and the units its targets run now (the
namespace's DemandEvents are read by :mod:`headroom.controller.demand_events`).

``headroom plan --from-cluster`` and ``headroom forecast --from-cluster`` read them
here, so a plan shown on a laptop is made from what the operator reads: the same
conversion (:func:`~headroom.policies.resources.policy_from_resource`), the same events,
the same history builder (:mod:`headroom.controller.assembly`) and the same targets.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from headroom.controller import assembly
from headroom.controller.demand_events import POLICIES
from headroom.controller.kube import GROUP, VERSION, Kube, call, not_found
from headroom.controller.signals.redis_info import RedisInfoSource
from headroom.policies.errors import HeadroomError, InputError, KubernetesError, field_error
from headroom.policies.policy import PolicySpec
from headroom.policies.resources import policy_from_resource
from headroom.policies.series import Series

log = logging.getLogger(__name__)


def read_policy(kube: Kube, namespace: str, name: str) -> tuple[PolicySpec, dict[str, Any]]:
    """The CapacityPolicy ``namespace/name`` as a spec, and the object (for its status)."""
    try:
        obj = call(
            lambda: kube.custom.get_namespaced_custom_object(
                GROUP, VERSION, namespace, POLICIES, name
            ),
            f"read CapacityPolicy {namespace}/{name}",
        )
    except KubernetesError as err:
        if not_found(err):
            raise InputError(
                f"--from-cluster: no CapacityPolicy {name!r} in namespace {namespace!r}"
            ) from None
        raise
    return policy_from_resource(obj), dict(obj)


def policy_history(
    kube: Kube, spec: PolicySpec, end: float, source_name: str, *, step: float = 60.0
) -> Series:
    """The policy's demand history up to ``end`` (``forecast.history`` of it, on the loop's
    grid) from the source ``spec.metrics`` names. Redis INFO keeps no history (the operator
    samples it while it runs), so a policy on it is refused with a one-line error."""
    source = assembly.build_source(spec.metrics, assembly.World(kube=kube))
    if isinstance(source, RedisInfoSource):
        raise InputError(
            field_error(
                source_name,
                "spec.metrics.qps.source",
                "redis keeps no history to read from outside the operator "
                "(use prometheus or csv, or pass --history)",
            )
        )
    return assembly.build_history(spec, source, step=step).history(end)


def running_units(
    kube: Kube, namespace: str, spec: PolicySpec, status: Mapping[str, Any]
) -> dict[str, int]:
    """Units each target asks for now, read from the target as the operator's pass reads
    it; a target that cannot be read (not there, not allowed) falls back to the
    ``currentUnits`` the operator last wrote to the policy's ``status``, else is left out."""
    written = {
        str(t.get("name")): int(t["currentUnits"])
        for t in status.get("targets") or ()
        if isinstance(t, dict) and isinstance(t.get("currentUnits"), int)
    }
    units: dict[str, int] = {}
    for target in spec.targets:
        try:
            units[target.name] = assembly.targets_for(kube, namespace, target).status().desired
        except HeadroomError as err:
            log.debug("Read no units of %s error=%s", target.name, err)
            if target.name in written:
                units[target.name] = written[target.name]
    return units
