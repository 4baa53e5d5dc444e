"""Fixtures of the chart suites: the API emulator and the chart installed into it."""

from tests.harness.fixtures import chart_operator, kube  # noqa: F401
