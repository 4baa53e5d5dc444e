"""A CapacityPolicy measures an operator-created (password-protected) RedisCluster.

``metrics.qps: {source: redis, redisCluster: cart}`` makes the real ``headroom operator
run`` (the chart's RBAC) read Redis INFO from cart's pods with cart's own password, from
the Secret the RedisCluster controller keeps: under a small paced load the operator
reports the measured demand (its /metrics) and MetricsUnavailable=False. A twin policy
that gives the same pod as a plain ``url`` is still refused with NOAUTH (the password
goes to no address a policy names), and the password is in no status, Event or log line.
"""

from __future__ import annotations

import base64
import json
import re
import threading
import urllib.request
from typing import Any

import pytest

from headroom.controller.redis.connection import NodeAddr, RedisAuth, make_cluster_client
from tests.operator.support import GROUP, NS, VERSION, OperatorEnv, wait_for

pytestmark = [pytest.mark.k8s, pytest.mark.redis, pytest.mark.slow]

PACE = 0.005  # s between two commands of the load: ~200 QPS, far below the unit's capacity


def _policy(name: str, qps: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "CapacityPolicy",
        "metadata": {"name": name, "namespace": NS},
        "spec": {
            "targets": [
                {"name": "cart", "kind": "RedisCluster", "capacityPerUnit": 50000,
                 "minUnits": 3, "maxUnits": 3}
            ],
            "metrics": {"qps": qps},
            "dryRun": True,
        },
    }  # fmt: skip


def _status(env: OperatorEnv, name: str) -> dict[str, Any]:
    body = env.custom.get_namespaced_custom_object(GROUP, VERSION, NS, "capacitypolicies", name)
    return dict(body.get("status") or {})


def _condition(env: OperatorEnv, name: str, type_: str) -> dict[str, Any]:
    for cond in _status(env, name).get("conditions") or ():
        if cond["type"] == type_:
            return dict(cond)
    return {}


def test_a_policy_measures_a_password_protected_cluster_by_name(env: OperatorEnv) -> None:
    op = env.start_operator("op-a", "--policy-interval", "2")  # metrics on a port it binds
    env.create_cluster("cart", masters=3, replicas=0)
    wait_for(env.ready_with("cart", 3), 120, "cart Ready with 3 masters")
    secret = env.core.read_namespaced_secret("cart-redis-auth", NS)
    password = base64.b64decode(secret.data["password"]).decode()

    stop = threading.Event()
    errors: list[BaseException] = []

    def load() -> None:
        try:
            client = make_cluster_client(
                NodeAddr.parse(env.pods("cart").seed), RedisAuth(password=password)
            )
            i = 0
            while not stop.wait(PACE):
                client.set(f"k{i % 1000}", i)
                i += 1
            client.close()
        except Exception as err:  # noqa: BLE001 - reported by the test below
            errors.append(err)

    loader = threading.Thread(target=load, daemon=True)
    loader.start()
    try:
        seed = env.pods("cart").seed
        for name, qps in (
            ("by-name", {"source": "redis", "redisCluster": "cart"}),
            ("by-url", {"source": "redis", "url": seed}),
        ):
            env.custom.create_namespaced_custom_object(
                GROUP, VERSION, NS, "capacitypolicies", _policy(name, qps)
            )

        # Two Redis INFO samples (10 s apart, the operator's sampling interval) give a
        # rate; the pass after that reports it.
        def measured() -> float:
            if errors:
                return -1.0  # the load failed: stop waiting, say so below
            with urllib.request.urlopen(f"{op.base_url()}/metrics", timeout=10) as resp:
                text = resp.read().decode()
            found = re.search(
                r'^headroom_demand_requests_per_second\{target="cart"\} (\S+)$', text, re.M
            )
            return float(found.group(1)) if found else 0.0

        demand = wait_for(measured, 90, "cart's measured demand")
        assert not errors, errors  # the load ran throughout
        assert 20 < demand < 2000, demand  # the paced load, not nothing and not garbage
        cond = _condition(env, "by-name", "MetricsUnavailable")
        assert (cond["status"], cond["reason"]) == ("False", "MetricsFresh"), cond

        # The same pod named as a url: no password is sent there (Redis answers NOAUTH).
        wait_for(
            lambda: _condition(env, "by-url", "MetricsUnavailable").get("status") == "True",
            60,
            "by-url MetricsUnavailable=True",
        )
    finally:
        stop.set()
        loader.join(10)
    assert not errors, errors

    seen = [json.dumps(_status(env, n)) for n in ("by-name", "by-url")]
    seen += [e.message or "" for e in env.core.list_namespaced_event(NS).items]
    seen.append(op.text())
    assert not any(password in text for text in seen)
    assert op.proc.poll() is None
