"""Pytest fixtures for the Kubernetes harness.

A conftest enables them with
``from tests.harness.fixtures import chart_operator, kube, kubelet  # noqa: F401``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.harness.chart_install import OperatorAccess, install_chart
from tests.harness.harness import KubeHarness
from tests.harness.kubelet import Kubelet


@pytest.fixture
def kube(tmp_path: Path) -> Iterator[KubeHarness]:
    """An emulated API server with RBAC on; ``kube.api_client()`` is an admin client."""
    harness = KubeHarness(tmp_path / "kube").start()
    try:
        yield harness
    finally:
        harness.close()


@pytest.fixture
def kubelet(kube: KubeHarness) -> Kubelet:
    """The kubelet emulator on ``kube``'s store; its processes die with ``kube``."""
    return kube.start_kubelet()


@pytest.fixture
def chart_operator(kube: KubeHarness) -> OperatorAccess:
    """The chart (default values) installed into ``kube``: its CRDs and RBAC, and the
    operator ServiceAccount's token and kubeconfig (namespace ``headroom``)."""
    return install_chart(kube)
