"""Fixtures of the DemandEvent CLI suites: the API emulator with the chart installed."""

from tests.harness.fixtures import chart_operator, kube  # noqa: F401
