"""Fixtures of the operator e2e suites: the chart's CRDs and RBAC in the API emulator, a
kubelet running real redis pods, and ``headroom operator run`` processes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.harness.chart_install import install_chart
from tests.harness.harness import KubeHarness
from tests.operator.support import NS, OperatorEnv


@pytest.fixture
def env(tmp_path: Path) -> Iterator[OperatorEnv]:
    """RBAC enforced from the rendered chart; the operator runs with its ServiceAccount."""
    kube = KubeHarness(tmp_path / "kube", rbac=True).start()
    op_env: OperatorEnv | None = None
    try:
        access = install_chart(kube, namespace=NS, kubeconfig=tmp_path / "kubeconfig")
        kubelet = kube.start_kubelet()
        op_env = OperatorEnv(kube, kubelet, tmp_path, access.kubeconfig, lease=access.lease_name)
        yield op_env
    finally:
        if op_env is not None:
            op_env.close()
        kube.close()
