"""What a policy's Prometheus URL answers cannot hurt or leak through the operator (issue
21, High 1): an endless or huge answer is refused after a bounded read, a redirect is not
followed, and a refusal's body (another service's content) is never quoted."""

from __future__ import annotations

import tracemalloc

from headroom.controller.signals.base import Metric, Unavailable
from headroom.controller.signals.prometheus import MAX_ANSWER_BYTES, PrometheusSource
from tests.support.receivers import Receiver

SECRET = "internal-admin-password-9c1d"


def test_a_huge_answer_is_refused_after_a_bounded_read() -> None:
    server = Receiver(
        reply=b'{"status":"success","data":{"result":[' + b" " * (MAX_ANSWER_BYTES + 2)
    )
    try:
        source = PrometheusSource.connect(server.url, timeout=20.0)
        tracemalloc.start()
        got = source.instant(Metric.QPS)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    finally:
        server.stop()
    assert isinstance(got, Unavailable)
    assert got.reason == "unreadable answer: the answer is over 32 MiB"
    assert peak < 3 * MAX_ANSWER_BYTES, peak  # one bounded read, not the whole body


def test_a_redirect_is_not_followed_and_a_refusal_is_not_quoted() -> None:
    inner = Receiver(reply=b'{"status":"success","data":{"resultType":"vector","result":[]}}')
    outer = Receiver(status=302)
    outer.answer_headers["Location"] = inner.url + "/api/v1/query"
    leaky = Receiver(status=404, reply=SECRET.encode())
    try:
        redirected = PrometheusSource.connect(outer.url).instant(Metric.QPS)
        refused = PrometheusSource.connect(leaky.url).instant(Metric.QPS)
    finally:
        for server in (inner, outer, leaky):
            server.stop()
    assert isinstance(redirected, Unavailable)
    assert redirected.reason == "unreadable answer: answered a redirect (HTTP 302), not followed"
    assert inner.attempts == 0
    assert isinstance(refused, Unavailable)
    assert refused.reason == "query refused: HTTP 404"
    assert SECRET not in refused.reason
