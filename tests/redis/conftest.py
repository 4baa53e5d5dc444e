"""Fixtures shared with the local suites: clusters of the local provisioner with a scaler."""

from tests.local.conftest import local_factory

__all__ = ["local_factory"]
