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
