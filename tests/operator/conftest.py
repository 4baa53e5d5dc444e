"""Fixtures of the operator e2e suites: the chart's CRDs and RBAC in the API emulator, a
kubelet running real redis pods, and ``headroom operator run`` processes."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.harness.chart_install import install_chart
from tests.harness.harness import KubeHarness
from tests.operator.support import NS, OperatorEnv


@contextmanager
def operator_env(
    workdir: Path, edit_rules: Callable[[list[Any]], None] | None = None
) -> Iterator[OperatorEnv]:
    """RBAC enforced from the rendered chart (optionally edited); the operator runs with the
    chart's ServiceAccount."""
    kube = KubeHarness(workdir / "kube", rbac=True).start()
    op_env: OperatorEnv | None = None
    try:
        access = install_chart(
            kube, namespace=NS, kubeconfig=workdir / "kubeconfig", edit_rules=edit_rules
        )
        kubelet = kube.start_kubelet()
        op_env = OperatorEnv(kube, kubelet, workdir, access.kubeconfig, lease=access.lease_name)
        yield op_env
    finally:
        if op_env is not None:
            op_env.close()
        kube.close()


@pytest.fixture
def env(tmp_path: Path) -> Iterator[OperatorEnv]:
    with operator_env(tmp_path) as op_env:
        yield op_env
