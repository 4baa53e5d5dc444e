"""A target that refuses to stack an order on a change still converging (TargetBusy) is
asked again next pass; it is not a failure, so no ScaleFailed event (nor alert) comes of it."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from headroom.controller.loop import ControlLoop, ListSink
from headroom.controller.targets.base import ScaleStatus, TargetBusy
from headroom.policies.calendar import Calendar
from headroom.policies.forecast.model import HeadroomForecaster
from headroom.policies.policy import parse_policy
from headroom.policies.series import Series
from tests.controller.test_loop import ManualClock, StaticHistory

T0 = 1_700_006_400.0


@dataclass
class MigratingCluster:
    name: str = "cart"
    units: int = 3
    asked: list[int] = field(default_factory=list)

    def status(self) -> ScaleStatus:
        return ScaleStatus(self.units, self.units, busy=True, detail="migrating slots")

    def scale(self, units: int, reason: str) -> None:
        self.asked.append(units)
        raise TargetBusy("cart: migrating 3->4 masters, 100 slots left", retry_after=5.0)


def test_a_busy_target_is_deferred_not_failed() -> None:
    spec = parse_policy({"targets": [{"name": "cart", "capacityPerUnit": 1000, "maxUnits": 12}]})
    t = np.arange(T0 - 86400.0, T0, 60.0)
    sink = ListSink()
    cluster = MigratingCluster()
    loop = ControlLoop(
        spec,
        targets={"cart": cluster},
        history=StaticHistory(Series(t, np.full(t.shape, 6000.0))),  # needs 8 units
        calendar=Calendar,
        clock=ManualClock(T0),
        forecaster=lambda: HeadroomForecaster(spec.forecast),
        sink=sink,
    )
    report = loop.reconcile()
    assert cluster.asked and cluster.asked[-1] > 3  # it was asked to grow
    assert [e.kind for e in report.events if e.kind == "ScaleFailed"] == []
    assert report.targets[0].status.desired == 3  # nothing was ordered
    assert loop.state.for_target("cart").last_scale_out is None  # no action counted
