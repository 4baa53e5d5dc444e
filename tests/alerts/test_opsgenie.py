"""The Opsgenie sink against a real HTTP receiver on loopback: the create and close
requests of Alert API v2, built from the alerts config, retried through the notifier on a
5xx, and its API key in no log, repr, error or CLI output."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
import yaml
from pydantic import SecretStr
from typer.testing import CliRunner

from headroom.cli.main import app
from headroom.controller.alerts.base import Alert, Severity
from headroom.controller.alerts.config import build_sink, parse_alerts_config
from headroom.controller.alerts.notifier import AlertNotifier, DeliveryOptions, SinkBinding
from headroom.controller.alerts.opsgenie import OpsgenieSink
from headroom.policies.errors import AlertConfigError, AlertDeliveryError
from headroom.policies.policy import AlertName
from tests.alerts.reports import T0, report, spec
from tests.support.chart import of_kind, render_chart
from tests.support.procs import wait_until
from tests.support.receivers import Receiver

KEY = "og-api-key-NEVER-PRINTED-0123456789"
T = 1_800_000_000.0
ALL = frozenset(n.value for n in AlertName)
ACCEPTED = b'{"result":"Request will be processed","took":0.2,"requestId":"43a29c5c"}'


def _alert(severity: Severity = Severity.WARNING, summary: str | None = None) -> Alert:
    return Alert(
        "forecastMiss", "shop", "cart", severity,
        summary or "cart: demand 5.2k QPS is 30% above the forecast's p90 band", T - 600, T,
        event="Friday live", numbers={"demand_qps": 5200.0, "forecast_upper_qps": 4000.0},
        link="https://grafana.example.com/d/headroom/shop",
    )  # fmt: skip


@pytest.fixture
def opsgenie():
    r = Receiver(status=202, reply=ACCEPTED)
    yield r
    r.stop()


def test_firing_creates_and_resolved_closes_the_alert_by_alias(opsgenie) -> None:
    sink = OpsgenieSink("og", opsgenie.url, SecretStr(KEY))
    sink.send([_alert(), _alert(Severity.CRITICAL, "x" * 300), _alert(Severity.INFO)])
    sink.send([_alert().resolved(T + 60)])
    create, long, info, close = opsgenie.received
    assert create.path == long.path == "/v2/alerts"
    assert create.headers["Authorization"] == f"GenieKey {KEY}"
    assert create.headers["Content-Type"] == "application/json"
    body = create.json()
    assert body["message"] == "cart: demand 5.2k QPS is 30% above the forecast's p90 band"
    assert body["alias"] == f"headroom-{_alert().fingerprint}"
    assert body["priority"] == "P3" and long.json()["priority"] == "P1"
    assert info.json()["priority"] == "P5"
    assert len(long.json()["message"]) == 130 and long.json()["description"].startswith("x" * 300)
    assert body["entity"] == "cart" and body["source"] == "Headroom"
    assert set(body["tags"]) == {"headroom", "shop", "forecastMiss", "warning"}
    assert body["details"]["key"] == "shop/cart/forecastMiss"
    assert body["details"]["demand_qps"] == "5200" and body["details"]["event"] == "Friday live"
    assert all(isinstance(v, str) for v in body["details"].values())  # a map of strings
    assert "https://grafana.example.com/d/headroom/shop" in body["description"]
    # Resolve: the close action on the same alias, by alias.
    assert close.path == f"/v2/alerts/{body['alias']}/close?identifierType=alias"
    assert close.headers["Authorization"] == f"GenieKey {KEY}"
    assert close.json()["source"] == "Headroom" and "Resolved" in close.json()["note"]


def test_built_from_the_alerts_config_with_a_base_url(opsgenie, monkeypatch) -> None:
    monkeypatch.setenv("OG_KEY", KEY)
    og = {"type": "opsgenie", "url": opsgenie.url + "/", "tokenFrom": {"env": "OG_KEY"}}
    sink = build_sink("og", parse_alerts_config({"sinks": {"og": og}}).sinks["og"])
    sink.send([_alert()])
    (got,) = opsgenie.received
    assert got.path == "/v2/alerts" and got.headers["Authorization"] == f"GenieKey {KEY}"
    del og["url"]
    default = build_sink("og", parse_alerts_config({"sinks": {"og": og}}).sinks["og"])
    assert isinstance(default, OpsgenieSink) and default.url == "https://api.opsgenie.com"


@pytest.mark.parametrize(
    ("sink", "expected"),
    [
        (
            {"type": "opsgenie"},
            "alerts config: sinks.og: an opsgenie sink needs tokenFrom (its API key)",
        ),
        (
            {"type": "opsgenie", "url": "api.eu.opsgenie.com", "tokenFrom": {"env": "OG_KEY"}},
            "alerts config: sinks.og.url: String should match pattern",
        ),
        (
            {"type": "opsgenie", "tokenFrom": {"env": "OG_KEY"}, "routingKey": "x"},
            "alerts config: sinks.og.routingKey: Extra inputs are not permitted",
        ),
    ],
)
def test_a_bad_config_is_one_line_naming_the_field(sink: dict[str, object], expected: str) -> None:
    with pytest.raises(AlertConfigError) as err:
        parse_alerts_config({"sinks": {"og": sink}})
    assert str(err.value).startswith(expected) and "\n" not in str(err.value)


def test_an_unset_key_names_the_field_and_the_variable(monkeypatch) -> None:
    monkeypatch.delenv("UNSET_OG_KEY", raising=False)
    config = parse_alerts_config(
        {"sinks": {"og": {"type": "opsgenie", "tokenFrom": {"env": "UNSET_OG_KEY"}}}}
    )
    with pytest.raises(AlertConfigError, match=r"^sinks\.og\.tokenFrom: environment variable "
                                               r"UNSET_OG_KEY is not set$"):  # fmt: skip
        build_sink("og", config.sinks["og"])


def test_a_5xx_is_retried_by_the_notifier_until_opsgenie_accepts(opsgenie) -> None:
    opsgenie.status = 503
    options = DeliveryOptions(attempts=40, backoff=0.02, backoff_max=0.1, rate_per_minute=6000)
    quick = spec(alertRules={"forecastMissFor": 0, "sloBreachFor": 0, "stuckFor": 0})
    notifier = AlertNotifier(
        quick, [SinkBinding(OpsgenieSink("og", opsgenie.url, SecretStr(KEY)), ALL)],
        options=options,
    )  # fmt: skip
    try:
        fired = notifier.observe(report(T0, demand=3500.0, upper=1500.0, ready=3))
        wait_until(lambda: opsgenie.attempts >= 3, 20, "three refused attempts")
        assert not opsgenie.received
        opsgenie.status = 202
        assert notifier.flush(20)
    finally:
        notifier.close()
    created = [r.json()["alias"] for r in opsgenie.received]
    assert sorted(created) == sorted(f"headroom-{a.fingerprint}" for a in fired)  # once each
    assert notifier.dropped == 0


def test_the_key_is_in_no_log_repr_error_or_cli_output(tmp_path: Path, monkeypatch, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    echoing = Receiver(status=400, reply=KEY.encode())  # a server that repeats the key
    down = Receiver(up=False)
    sinks = [OpsgenieSink("og", echoing.url, SecretStr(KEY)),
             OpsgenieSink("og-down", down.url, SecretStr(KEY))]  # fmt: skip
    errors = []
    try:
        for sink in sinks:
            with pytest.raises(AlertDeliveryError) as err:
                sink.send([_alert()])
            errors.append(err.value)
        assert str(errors[0]) == "alert sink og: HTTP 400" and not errors[0].retryable
        assert str(errors[1]).startswith("alert sink og-down: no answer") and errors[1].retryable
        options = DeliveryOptions(attempts=2, backoff=0.01, backoff_max=0.01, rate_per_minute=6000)
        notifier = AlertNotifier(spec(alertRules={"sloBreachFor": 0}),
                                 [SinkBinding(s, ALL) for s in sinks], options=options)  # fmt: skip
        try:
            notifier.observe(report(T0, demand=3500.0, upper=5000.0, ready=3))
            wait_until(lambda: notifier.dropped == 2, 10, "both deliveries dropped")
            state = json.dumps(notifier.state())
            deliveries = json.dumps([d.to_json() for d in notifier.deliveries])
        finally:
            notifier.close()
        # headroom alerts test, with the key from a mounted file
        (tmp_path / "og-key").write_text(KEY + "\n")
        config = tmp_path / "alerts.yaml"
        config.write_text(f'sinks: {{og: {{type: opsgenie, url: "{echoing.url}", '
                          f'tokenFrom: {{file: "{tmp_path / "og-key"}"}}}}}}\n')  # fmt: skip
        policy = tmp_path / "p.yaml"
        policy.write_text("name: shop\ntargets: [{name: cart, capacityPerUnit: 10}]\n"
                          "alerts: [{sink: og}]\n")  # fmt: skip
        result = CliRunner().invoke(app, ["alerts", "test", "--policy", str(policy),
                                          "--alerts-config", str(config), "--json"])  # fmt: skip
    finally:
        echoing.stop()
    assert echoing.attempts >= 3  # the sinks' own, the notifier's and the CLI's requests
    assert "alert sink og: HTTP 400" in result.output
    outputs = [caplog.text, state, deliveries, result.output, *map(str, errors),
               *map(repr, sinks), repr([s.__dict__ for s in sinks])]  # fmt: skip
    assert "Dropped alert" in caplog.text
    for text in outputs:
        assert KEY not in text, text


def test_an_inline_opsgenie_hook_is_one_line_naming_the_field(tmp_path: Path) -> None:
    """A policy cannot give an Opsgenie sink by ``url`` (its key lives in the alerts
    config): one line naming ``alerts[0].type``, not a traceback."""
    policy = tmp_path / "p.yaml"
    policy.write_text("name: shop\ntargets: [{name: cart, capacityPerUnit: 10}]\n"
                      "alerts: [{type: opsgenie, url: 'http://127.0.0.1:9/x'}]\n")  # fmt: skip
    config = tmp_path / "alerts.yaml"
    config.write_text("sinks: {}\n")
    result = CliRunner().invoke(
        app, ["alerts", "test", "--policy", str(policy), "--alerts-config", str(config)]
    )
    assert result.exit_code == 2, result.output
    assert result.stderr.strip() == (
        "error: policy shop: alerts[0].type: an opsgenie sink needs tokenFrom (its API key): "
        "name it in the alerts config and refer to it with sink"
    )


def test_the_chart_passes_the_key_by_secret_reference(monkeypatch) -> None:
    """Through the Helm chart: the key is a Secret key in an environment variable, and the
    rendered alerts config builds an Opsgenie sink with the EU base URL."""
    og = {"type": "opsgenie", "url": "https://api.eu.opsgenie.com",
          "tokenFrom": {"secretName": "opsgenie", "key": "apiKey"}}  # fmt: skip
    objs = render_chart({"alerts": {"sinks": {"oncall-og": og}}})
    (cm,) = [o for o in of_kind(objs, "ConfigMap") if o["metadata"]["name"].endswith("-alerts")]
    config = parse_alerts_config(yaml.safe_load(cm["data"]["alerts.yaml"]), "alerts.yaml")
    (deployment,) = of_kind(objs, "Deployment")
    env = {e["name"]: e for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]}
    ref = env["HEADROOM_ALERT_ONCALL_OG_TOKEN"]["valueFrom"]["secretKeyRef"]
    assert ref == {"name": "opsgenie", "key": "apiKey"}
    assert KEY not in json.dumps(objs)
    monkeypatch.setenv("HEADROOM_ALERT_ONCALL_OG_TOKEN", KEY)
    sink = build_sink("oncall-og", config.sinks["oncall-og"])
    assert isinstance(sink, OpsgenieSink) and sink.url == "https://api.eu.opsgenie.com"
    assert sink.api_key.get_secret_value() == KEY
