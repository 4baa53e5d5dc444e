"""Fixtures of the scale-target suites: the API emulator (RBAC on, admin client) and a
:class:`~headroom.controller.kube.Kube` over the real ``kubernetes`` client."""

from __future__ import annotations

import pytest

from headroom.controller.kube import Kube
from tests.harness.fixtures import kube, kubelet  # noqa: F401
from tests.harness.harness import KubeHarness


@pytest.fixture
def api(kube: KubeHarness) -> Kube:  # noqa: F811 - the fixture above
    """The typed APIs over an admin client of ``kube`` (closed with the harness)."""
    return Kube(kube.api_client())
