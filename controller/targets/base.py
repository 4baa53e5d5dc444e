"""The scale-target seam every actuator implements.

A target is anything whose size in *units* Headroom sets: a Redis Cluster's
masters, a Deployment's replicas, an HPA's floor. The control loop (and later the
operator) only sees this Protocol; ``docs/adding-a-target.md`` is the recipe.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from headroom.policies.errors import HeadroomError

# One RBAC rule (a Role's ``rules`` entry): what a target kind needs the operator to be
# granted (each file's ``*_rules``, listed by the registry; the chart's are generated).
Rule = dict[str, Any]


@dataclass(frozen=True)
class ScaleStatus:
    """What a target reports: asked-for units, units ready to serve, and progress."""

    desired: int
    ready: int
    busy: bool = False  # a change is still converging (pods starting, slots moving)
    detail: str = ""  # e.g. "migrating slots 1200/5461"


class TargetBusy(HeadroomError):
    """``scale`` refused to stack a new order on a change still converging (a slot
    migration); nothing was written. Ask again after ``retry_after`` seconds."""

    def __init__(self, message: str, retry_after: float = 30.0) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class ScaleTarget(Protocol):
    """A thing with a size. ``scale`` must be idempotent and must not block for long."""

    @property
    def name(self) -> str:
        """Stable identity, e.g. ``redis/cart`` or ``deployment/shop/web``."""
        ...

    def status(self) -> ScaleStatus:
        """Read the current size; never changes anything."""
        ...

    def scale(self, units: int, reason: str) -> None:
        """Ask for ``units``; convergence may continue after the call returns."""
        ...
