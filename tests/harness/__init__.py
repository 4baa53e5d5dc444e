"""Kubernetes API and kubelet emulators for tests (not shipped in the wheel).

Start one with :class:`tests.harness.harness.KubeHarness` or the pytest fixtures in
:mod:`tests.harness.fixtures`; see ``tests/harness/README.md``.
"""
