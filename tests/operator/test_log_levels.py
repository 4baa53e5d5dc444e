"""Converging is INFO, failing is not: kopf's temporary-error records as the operator logs them."""

from __future__ import annotations

import logging

import pytest

from headroom.controller.operator.rediscluster_kopf import REQUEUE_MARK, quiet_requeues


def test_a_requeue_is_info_and_a_real_temporary_failure_stays_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    logger = logging.getLogger("kopf.objects.test-levels")
    quiet_requeues(logger)
    quiet_requeues(logger)  # idempotent: one filter
    assert len(logger.filters) == 1
    with caplog.at_level(logging.DEBUG, logger=logger.name):
        # What kopf's execution.py logs for TemporaryError(msg, delay=...), verbatim shape.
        logger.error(
            f"Handler 'handle' failed temporarily: {REQUEUE_MARK}Scaling: migrating slots 4096/4096"
        )
        logger.error("Handler 'handle' failed temporarily: Kubernetes API 500 on PATCH")
        logger.error("Handler 'handle' failed permanently: masters: must be at least 1")
    got = [(r.levelname, r.getMessage()) for r in caplog.records]
    assert got == [
        ("INFO", "Requeued Handler 'handle' while converging: Scaling: migrating slots 4096/4096"),
        ("ERROR", "Handler 'handle' failed temporarily: Kubernetes API 500 on PATCH"),
        ("ERROR", "Handler 'handle' failed permanently: masters: must be at least 1"),
    ]
