"""The alerts config (sinks with secret references) and ``headroom alerts test``: every
sink gets a test alert, each result is printed, and no secret appears anywhere."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from headroom.cli.main import app
from headroom.controller.alerts.config import load_alerts_config, parse_alerts_config
from headroom.controller.alerts.webhook import verify_signature
from headroom.policies.errors import AlertConfigError
from tests.support.receivers import Receiver

HMAC_KEY = "hmac-key-NEVER-PRINTED"
PD_KEY = "pd-routing-key-NEVER-PRINTED"
SLACK_PATH = "services/T0/B0/slack-path-NEVER-PRINTED"


@pytest.fixture
def receivers():
    made = {"hook": Receiver(), "slack": Receiver(), "pd": Receiver(status=202), "am": Receiver(),
            "down": Receiver(up=False)}  # fmt: skip
    yield made
    for r in made.values():
        r.stop()


def _files(tmp_path: Path, receivers, monkeypatch) -> tuple[Path, Path]:
    monkeypatch.setenv("HOOK_KEY", HMAC_KEY)
    monkeypatch.setenv("PD_KEY", PD_KEY)
    (tmp_path / "slack-url").write_text(f"{receivers['slack'].url}/{SLACK_PATH}\n")
    config = tmp_path / "alerts.yaml"
    config.write_text(f"""
externalUrl: https://grafana.example.com/d/headroom
sinks:
  audit: {{type: webhook, url: "{receivers["hook"].url}/h", secretFrom: {{env: HOOK_KEY}}}}
  oncall-slack: {{type: slack, urlFrom: {{file: {tmp_path / "slack-url"}}}}}
  oncall-pd: {{type: pagerduty, url: "{receivers["pd"].url}", routingKeyFrom: {{env: PD_KEY}}}}
  team-am: {{type: alertmanager, url: "{receivers["am"].url}"}}
  broken: {{type: webhook, url: "{receivers["down"].url}", secretFrom: {{env: HOOK_KEY}}}}
delivery: {{attempts: 3, backoff: 100ms}}
""")
    policy = tmp_path / "policy.yaml"
    policy.write_text("""
name: shop
targets: [{name: cart, capacityPerUnit: 1000}]
alerts:
  - {sink: audit}
  - {sink: oncall-slack, on: [sloBreach]}
  - {sink: oncall-pd, on: [sloBreach, scaleFailed]}
  - {sink: team-am}
  - {sink: broken}
""")
    return config, policy


def test_alerts_test_reaches_every_sink_and_prints_no_secret(
    tmp_path: Path, receivers, monkeypatch
) -> None:
    config, policy = _files(tmp_path, receivers, monkeypatch)
    result = CliRunner().invoke(
        app, ["alerts", "test", "--policy", str(policy), "--alerts-config", str(config), "--json"]
    )
    assert result.exit_code == 1, result.output  # one sink is down
    doc = json.loads(result.stdout)
    by_sink = {r["sink"]: r for r in doc["results"]}
    assert [r["sink"] for r in doc["results"]] == ["audit", "oncall-slack", "oncall-pd",
                                                   "team-am", "broken"]  # fmt: skip
    assert all(by_sink[s]["ok"] for s in ("audit", "oncall-slack", "oncall-pd", "team-am"))
    assert by_sink["broken"]["ok"] is False
    assert by_sink["broken"]["error"].startswith("alert sink broken: no answer")
    assert by_sink["oncall-pd"]["on"] == ["scaleFailed", "sloBreach"]
    # Each sink got a firing and a resolved test alert, in its own format.
    hook = receivers["hook"].received
    assert [r.json()["status"] for r in hook] == ["firing", "resolved"]
    assert all(verify_signature(HMAC_KEY, r.headers, r.body) is None for r in hook)
    assert receivers["slack"].received[0].path == "/" + SLACK_PATH
    assert [b["event_action"] for b in receivers["pd"].bodies()] == ["trigger", "resolve"]
    assert receivers["am"].received[0].path == "/api/v2/alerts"
    assert receivers["am"].bodies()[0][0]["labels"]["alertname"] == "HeadroomTest"
    assert hook[0].json()["alerts"][0]["link"] == "https://grafana.example.com/d/headroom/shop"
    for secret in (HMAC_KEY, PD_KEY, SLACK_PATH, str(receivers["down"].port)):
        assert secret not in result.output


def test_table_output_and_success_exit(tmp_path: Path, receivers, monkeypatch) -> None:
    config, policy = _files(tmp_path, receivers, monkeypatch)
    policy.write_text(policy.read_text().replace("  - {sink: broken}\n", ""))
    result = CliRunner().invoke(
        app, ["alerts", "test", "--policy", str(policy), "--alerts-config", str(config)]
    )
    assert result.exit_code == 0, result.output
    assert result.output.count("delivered") == 4
    assert PD_KEY not in result.output and SLACK_PATH not in result.output


@pytest.mark.parametrize(
    ("policy_alerts", "config_text", "expected"),
    [
        ("[{sink: nope}]", "sinks: {}", "alerts[0].sink: no sink 'nope' in the alerts config"),
        (
            "[{sink: pd}]",
            "sinks: {pd: {type: pagerduty, routingKeyFrom: {env: UNSET_PD_KEY}}}",
            "sinks.pd.routingKeyFrom: environment variable UNSET_PD_KEY is not set",
        ),
        (
            "[{sink: s}]",
            "sinks: {s: {type: slack, url: 'https://hooks.slack.com/x'}}",
            "sinks.s: a slack sink needs urlFrom",
        ),
        (
            "[{url: 'http://127.0.0.1:9/x', on: [capped]}]",
            "sinks: {}",
            "alerts[0].on: unknown alert 'capped'",
        ),
    ],
)
def test_bad_config_is_one_line_naming_the_field(
    tmp_path: Path, policy_alerts: str, config_text: str, expected: str
) -> None:
    policy = tmp_path / "p.yaml"
    policy.write_text(f"name: shop\ntargets: [{{name: cart, capacityPerUnit: 10}}]\n"
                      f"alerts: {policy_alerts}\n")  # fmt: skip
    config = tmp_path / "alerts.yaml"
    config.write_text(config_text)
    result = CliRunner().invoke(
        app, ["alerts", "test", "--policy", str(policy), "--alerts-config", str(config)]
    )
    assert result.exit_code == 2, result.output
    assert expected in result.stderr and result.stderr.strip().count("\n") == 0


def test_secret_refs_and_env_config(tmp_path: Path, monkeypatch) -> None:
    with pytest.raises(AlertConfigError, match="give exactly one of env or file"):
        both = {"env": "A", "file": "/b"}
        parse_alerts_config({"sinks": {"a": {"type": "webhook", "url": "http://x",
                                             "secretFrom": both}}})  # fmt: skip
    monkeypatch.delenv("HEADROOM_ALERTS_CONFIG", raising=False)
    assert load_alerts_config().sinks == {}
    path = tmp_path / "a.yaml"
    path.write_text("inbound: {tokenFrom: {env: T}}\n")
    monkeypatch.setenv("HEADROOM_ALERTS_CONFIG", str(path))
    inbound = load_alerts_config().inbound
    assert inbound is not None and inbound.token_from is not None
    path.write_text("inbound: {listen: '127.0.0.1:0'}\n")
    with pytest.raises(AlertConfigError, match="inbound: the receiver needs tokenFrom"):
        load_alerts_config()


def test_every_sink_kind_has_one_builder() -> None:
    """Adding a sink kind is one row in alerts.config.SINKS (docs/adding-a-sink.md)."""
    from headroom.controller.alerts.config import SINKS
    from headroom.policies.policy import AlertSinkKind

    assert list(AlertSinkKind) == list(SINKS) == sorted(SINKS)
