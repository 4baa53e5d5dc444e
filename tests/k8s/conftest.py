"""Fixtures of the Kubernetes suites: the API emulator (``kube``) and kubelet (``kubelet``)."""

from tests.harness.fixtures import kube, kubelet  # noqa: F401
