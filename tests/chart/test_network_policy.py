"""The chart's optional NetworkPolicy for Redis pods, rendered: off by default; on, it admits
the clusters' own nodes (replication, bus), the operator and labelled clients, no one else.

Its selectors are checked against the labels of the real objects: the pod template the
operator builds for a RedisCluster and the operator Deployment the chart renders.
"""

from __future__ import annotations

from typing import Any

from headroom.controller.operator import resources
from headroom.controller.operator.specs import RedisClusterSpec
from tests.support.chart import of_kind, render_chart

OWNER = {"apiVersion": "headroom.dev/v1alpha1", "kind": "RedisCluster", "name": "cart", "uid": "u"}


def _matches(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    return bool(selector["matchLabels"].items() <= labels.items())


def _redis_pod(port: int = 6379) -> dict[str, Any]:
    spec = RedisClusterSpec(masters=3, port=port)
    template: dict[str, Any] = resources.statefulset("cart", spec, OWNER, replicas=6)["spec"][
        "template"
    ]
    return template


def test_no_network_policy_unless_asked() -> None:
    assert of_kind(render_chart(), "NetworkPolicy") == []


def test_redis_pods_admit_their_nodes_the_operator_and_labelled_clients_only() -> None:
    objs = render_chart({"networkPolicy": {"enabled": True}})
    (policy,) = of_kind(objs, "NetworkPolicy")
    spec = policy["spec"]
    assert spec["policyTypes"] == ["Ingress"]
    pod = _redis_pod(port=7000)
    pod_labels = pod["metadata"]["labels"]
    assert _matches(spec["podSelector"], pod_labels)
    (deployment,) = of_kind(objs, "Deployment")
    operator_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert not _matches(spec["podSelector"], operator_labels)

    nodes, others = spec["ingress"]
    # Nodes reach each other on the client and bus ports, whatever spec.port is: the
    # policy names the container ports.
    port_names = {p["name"] for p in pod["spec"]["containers"][0]["ports"]}
    assert {p["port"] for p in nodes["ports"]} == port_names == {"redis", "bus"}
    assert [_matches(peer["podSelector"], pod_labels) for peer in nodes["from"]] == [True]
    # The operator and clients reach the Redis port only; an unlabelled pod matches nothing.
    assert [p["port"] for p in others["ports"]] == ["redis"]
    client = {"app": "web", "headroom.dev/redis-client": "true"}
    stranger = {"app": "web"}
    matched = [
        [_matches(peer["podSelector"], labels) for peer in others["from"]]
        for labels in (operator_labels, client, stranger)
    ]
    assert matched == [[True, False], [False, True], [False, False]]
    assert all("namespaceSelector" not in peer for peer in others["from"])  # own namespace


def test_extra_sources_and_client_labels_come_from_values() -> None:
    extra = [{"namespaceSelector": {"matchLabels": {"team": "shop"}}}]
    objs = render_chart(
        {
            "networkPolicy": {
                "enabled": True,
                "clientLabels": {"role": "cache-client"},
                "extraFrom": extra,
            }
        }
    )
    (policy,) = of_kind(objs, "NetworkPolicy")
    peers = policy["spec"]["ingress"][1]["from"]
    assert peers[1] == {"podSelector": {"matchLabels": {"role": "cache-client"}}}
    assert peers[2:] == extra
