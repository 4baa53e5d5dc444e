"""The chart's alerts values become the operator's alerts config with secrets by reference:
a ConfigMap that names environment variables, filled from Secret keys — never the secret."""

from __future__ import annotations

from typing import Any

import kubernetes_validate
import pytest
import yaml

from headroom.controller.alerts.config import build_bindings, parse_alerts_config
from headroom.policies.policy import parse_policy
from tests.support.chart import ChartError, of_kind, render_chart

SINKS: dict[str, Any] = {
    "oncall": {"type": "pagerduty", "routingKeyFrom": {"secretName": "pd", "key": "routingKey"}},
    "team-chat": {"type": "slack", "urlFrom": {"secretName": "slack", "key": "url"}},
    "hook": {"type": "webhook", "url": "https://hooks.example.test/headroom",
             "secretFrom": {"secretName": "hook", "key": "hmac"}},
    "am": {"type": "alertmanager", "url": "http://alertmanager:9093", "resendInterval": "2m"},
}  # fmt: skip


def test_sinks_render_to_a_config_and_secret_key_refs(monkeypatch: pytest.MonkeyPatch) -> None:
    objs = render_chart({"alerts": {"sinks": SINKS, "delivery": {"attempts": 4}}})
    (cm,) = [o for o in of_kind(objs, "ConfigMap") if o["metadata"]["name"].endswith("-alerts")]
    text = cm["data"]["alerts.yaml"]
    config = parse_alerts_config(yaml.safe_load(text), "alerts.yaml")
    assert set(config.sinks) == set(SINKS) and config.delivery.attempts == 4
    (deployment,) = of_kind(objs, "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    env = {e["name"]: e for e in pod["containers"][0]["env"]}
    assert env["HEADROOM_ALERTS_CONFIG"]["value"] == "/etc/headroom/alerts.yaml"
    refs = {n: e["valueFrom"]["secretKeyRef"] for n, e in env.items() if "valueFrom" in e
            and "secretKeyRef" in e["valueFrom"]}  # fmt: skip
    assert refs == {
        "HEADROOM_ALERT_ONCALL_ROUTING_KEY": {"name": "pd", "key": "routingKey"},
        "HEADROOM_ALERT_TEAM_CHAT_URL": {"name": "slack", "key": "url"},
        "HEADROOM_ALERT_HOOK_SECRET": {"name": "hook", "key": "hmac"},
    }
    assert {v["name"] for v in pod["volumes"]} >= {"alerts"}
    for obj in (cm, deployment):
        kubernetes_validate.validate(obj, "1.25", strict=True)
    # The operator, given those variables, builds every sink; no secret is in the ConfigMap.
    secrets = {"HEADROOM_ALERT_ONCALL_ROUTING_KEY": "pd-key-123",
               "HEADROOM_ALERT_TEAM_CHAT_URL": "https://hooks.slack.test/T0/B0/s3cr3t",
               "HEADROOM_ALERT_HOOK_SECRET": "hmac-key-456"}  # fmt: skip
    for name, value in secrets.items():
        monkeypatch.setenv(name, value)
        assert value not in text
    spec = parse_policy({"targets": [{"name": "web", "capacityPerUnit": 100}],
                         "alerts": [{"sink": name} for name in SINKS]})  # fmt: skip
    bindings = build_bindings(spec, config, lambda *a, **k: None)  # type: ignore[arg-type]
    assert len(bindings) == len(SINKS)


def test_no_sinks_no_config() -> None:
    objs = render_chart()
    assert not [o for o in of_kind(objs, "ConfigMap") if o["metadata"]["name"].endswith("-alerts")]
    (deployment,) = of_kind(objs, "Deployment")
    names = {e["name"] for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert "HEADROOM_ALERTS_CONFIG" not in names


@pytest.mark.parametrize(
    "sink",
    [
        {"type": "slack", "url": "https://hooks.slack.test/T0/B0/s3cr3t", "secret": "inline"},
        {"type": "sms"},
        {"type": "pagerduty", "routingKeyFrom": {"secretName": "pd"}},
    ],
)
def test_the_values_schema_refuses_inline_secrets_and_unknown_sinks(sink: dict[str, Any]) -> None:
    with pytest.raises(ChartError):
        render_chart({"alerts": {"sinks": {"oncall": sink}}})


def test_the_documented_inbound_path_installs_and_answers(monkeypatch: pytest.MonkeyPatch) -> None:
    """docs/alerts.md points Alertmanager at headroom-operator.headroom:9095: the chart's
    alerts.inbound renders that Service, the container port, the config and the token's
    Secret key, and the rendered config serves the receiver (issue 21, item 8)."""
    import json
    import urllib.error
    import urllib.request

    from headroom.controller.alerts.config import build_inbound
    from headroom.controller.surge import LocalSurges

    values = {
        "alerts": {"inbound": {"enabled": True, "tokenFrom": {"secretName": "am", "key": "t"}}}
    }
    objs = render_chart(values)
    services = {o["metadata"]["name"]: o for o in of_kind(objs, "Service")}
    port = services["headroom-operator"]["spec"]["ports"][0]
    assert (port["port"], port["targetPort"]) == (9095, "inbound")
    (deployment,) = of_kind(objs, "Deployment")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert {"name": "inbound", "containerPort": 9095, "protocol": "TCP"} in container["ports"]
    env = {e["name"]: e for e in container["env"]}
    ref = env["HEADROOM_ALERT_INBOUND_TOKEN"]["valueFrom"]["secretKeyRef"]
    assert ref == {"name": "am", "key": "t"}
    (cm,) = [o for o in of_kind(objs, "ConfigMap") if o["metadata"]["name"].endswith("-alerts")]
    config = parse_alerts_config(yaml.safe_load(cm["data"]["alerts.yaml"]), "alerts.yaml")
    assert config.inbound is not None and config.inbound.listen == "0.0.0.0:9095"
    # Served on loopback here (the pod listens on every address); the token from the env.
    monkeypatch.setenv("HEADROOM_ALERT_INBOUND_TOKEN", "am-token")
    inbound = config.inbound.model_copy(update={"listen": "127.0.0.1:0"})
    server = build_inbound(config.model_copy(update={"inbound": inbound}), dict, LocalSurges())
    assert server is not None
    try:
        request = urllib.request.Request(
            server.url("/hooks/alertmanager"), data=b"{}", method="POST",
            headers={"Authorization": "Bearer am-token", "Content-Type": "application/json"},
        )  # fmt: skip
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(request, timeout=10)  # noqa: S310
        assert err.value.code == 400  # authenticated, then the (empty) payload refused
        assert "version" in json.loads(err.value.read())["error"]
    finally:
        server.stop()
    with pytest.raises(ChartError, match="tokenFrom"):
        render_chart({"alerts": {"inbound": {"enabled": True}}})
    assert "headroom-operator" not in {
        o["metadata"]["name"] for o in of_kind(render_chart(), "Service")
    }
