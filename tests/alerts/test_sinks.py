"""Each sink against a real HTTP receiver on loopback: the payload matches the documented
format of its service, and the webhook's signature verifies and exposes tampering."""

from __future__ import annotations

import time

import pytest
from pydantic import SecretStr

from headroom.controller.alerts.alertmanager import AlertmanagerSink
from headroom.controller.alerts.base import Alert, Severity, Status
from headroom.controller.alerts.pagerduty import PagerDutySink
from headroom.controller.alerts.slack import SlackSink
from headroom.controller.alerts.webhook import WebhookSink, sign, verify_signature
from headroom.policies.errors import AlertDeliveryError
from tests.support.receivers import Receiver

T = 1_800_000_000.0
SECRET = "s3cret-hmac-key-0123456789"


def _alert(status: Status = Status.FIRING, target: str | None = "cart") -> Alert:
    alert = Alert(
        "forecastMiss", "shop", target, Severity.WARNING,
        "cart: demand 5.2k QPS is 30% above the forecast's p90 band", T - 600, T,
        event="Friday live", numbers={"demand_qps": 5200.0, "forecast_upper_qps": 4000.0},
        link="https://grafana.example.com/d/headroom/shop",
    )  # fmt: skip
    return alert if status is Status.FIRING else alert.resolved(T + 60)


@pytest.fixture
def receiver():
    r = Receiver(reply=b"ok")
    yield r
    r.stop()


def test_webhook_is_signed_and_a_replayed_or_altered_body_is_detected(receiver) -> None:
    WebhookSink("audit", receiver.url + "/hook", SecretStr(SECRET)).send([_alert()])
    (got,) = receiver.received
    doc = got.json()
    assert doc["version"] == "1" and doc["source"] == "headroom" and doc["status"] == "firing"
    (alert,) = doc["alerts"]
    assert alert["key"] == "shop/cart/forecastMiss" and alert["severity"] == "warning"
    assert alert["numbers"]["demand_qps"] == 5200.0 and alert["event"] == "Friday live"
    assert alert["since"] == "2027-01-15T07:50:00.000Z"
    # The receiver's check, as docs/alerts.md shows it:
    assert verify_signature(SECRET, got.headers, got.body) is None
    assert "does not match" in (verify_signature(SECRET, got.headers, got.body + b" ") or "")
    assert "does not match" in (verify_signature("other", got.headers, got.body) or "")
    later = time.time() + 3600  # the same request replayed an hour later
    assert "tolerance" in (verify_signature(SECRET, got.headers, got.body, now=later) or "")
    forged = dict(got.headers, **{"X-Headroom-Timestamp": str(int(later))})
    assert verify_signature(SECRET, forged, got.body, now=later) is not None  # old signature
    # A retry of the same delivery carries the same delivery id; new content another.
    WebhookSink("audit", receiver.url, SecretStr(SECRET)).send([_alert()])
    WebhookSink("audit", receiver.url, SecretStr(SECRET)).send([_alert(Status.RESOLVED)])
    ids = [r.headers["X-Headroom-Delivery"] for r in receiver.received]
    assert ids[0] == ids[1] != ids[2]
    assert sign(SECRET, "1", b"x") == sign(SECRET.encode(), "1", b"x")


def test_unsigned_webhook_has_no_signature(receiver) -> None:
    WebhookSink("plain", receiver.url).send([_alert()])
    assert "X-Headroom-Signature" not in receiver.received[0].headers


def test_slack_block_kit_message(receiver) -> None:
    SlackSink("oncall", SecretStr(receiver.url + "/services/T0/B0/XYZ")).send(
        [_alert(), _alert(target="web")]
    )
    (got,) = receiver.received
    assert got.path == "/services/T0/B0/XYZ"
    doc = got.json()
    assert doc["text"].startswith("cart: demand 5.2k QPS")  # the notification fallback
    blocks = doc["blocks"]
    assert blocks[0]["type"] == "header" and blocks[0]["text"]["type"] == "plain_text"
    assert blocks[0]["text"]["text"] == "Headroom shop: 2 firing, 0 resolved"
    sections = [b for b in blocks if b["type"] == "section"]
    assert len(sections) == 2
    assert (
        sections[0]["text"]["type"] == "mrkdwn" and "*forecastMiss*" in sections[0]["text"]["text"]
    )
    fields = {f["text"] for f in sections[0]["fields"]}
    assert fields == {"*demand_qps*\n5,200", "*forecast_upper_qps*\n4,000"}
    contexts = [b for b in blocks if b["type"] == "context"]
    assert "`shop/cart/forecastMiss`" in contexts[0]["elements"][0]["text"]
    assert all(len(b["text"]["text"]) <= 150 for b in blocks if b["type"] == "header")


def test_pagerduty_trigger_and_resolve_share_a_stable_dedup_key(receiver) -> None:
    receiver.status, receiver.reply = 202, b'{"status":"success","message":"Event processed"}'
    sink = PagerDutySink("pd", SecretStr("R0UTINGKEY0123456789abcdef012345"), receiver.url)
    sink.send([_alert()])
    sink.send([_alert()])
    sink.send([_alert(Status.RESOLVED)])
    trigger, again, resolve = receiver.bodies()
    assert trigger["routing_key"] == "R0UTINGKEY0123456789abcdef012345"
    assert trigger["event_action"] == "trigger" and resolve["event_action"] == "resolve"
    assert trigger["dedup_key"] == again["dedup_key"] == resolve["dedup_key"]
    assert trigger["dedup_key"].startswith("headroom-") and len(trigger["dedup_key"]) <= 255
    payload = trigger["payload"]
    assert set(payload) >= {"summary", "source", "severity", "timestamp"}
    assert payload["severity"] in {"critical", "error", "warning", "info"}
    assert payload["component"] == "cart" and payload["group"] == "shop"
    assert payload["class"] == "forecastMiss" and len(payload["summary"]) <= 1024
    assert payload["custom_details"]["demand_qps"] == 5200.0
    assert set(resolve) == {"routing_key", "event_action", "dedup_key"}


def test_alertmanager_postable_alerts(receiver) -> None:
    sink = AlertmanagerSink("am", receiver.url, SecretStr("tok"), wall=lambda: T + 5)
    sink.send([_alert(), _alert(Status.RESOLVED, target="web")])
    (got,) = receiver.received
    assert got.path == "/api/v2/alerts" and got.headers["Authorization"] == "Bearer tok"
    firing, resolved = got.json()
    assert firing["labels"] == {
        "alertname": "HeadroomForecastMiss", "severity": "warning", "headroom_policy": "shop",
        "headroom_target": "cart", "headroom_event": "Friday live",
    }  # fmt: skip
    assert firing["annotations"]["summary"].startswith("cart: demand")
    assert firing["startsAt"] == "2027-01-15T07:50:00.000Z"
    assert firing["endsAt"] > "2027-01-15T08:00:05"  # held a few resend intervals ahead
    assert resolved["endsAt"] == "2027-01-15T08:00:05.000Z"
    assert firing["generatorURL"] == "https://grafana.example.com/d/headroom/shop"


def test_failures_name_the_sink_never_its_url_or_secret() -> None:
    down = Receiver(up=False)
    secret_url = f"{down.url}/services/T0/B0/SUPERSECRET"
    with pytest.raises(AlertDeliveryError) as err:
        SlackSink("oncall-slack", SecretStr(secret_url)).send([_alert()])
    assert "oncall-slack" in str(err.value) and err.value.retryable
    assert "SUPERSECRET" not in str(err.value) and str(down.port) not in str(err.value)
    assert err.value.__cause__ is None and err.value.__suppress_context__
    rejecting = Receiver(status=400)
    try:
        with pytest.raises(AlertDeliveryError) as err:
            PagerDutySink("pd", SecretStr("KEY-SECRET"), rejecting.url).send([_alert()])
        assert str(err.value) == "alert sink pd: HTTP 400" and not err.value.retryable
    finally:
        rejecting.stop()
    assert repr(SecretStr("KEY-SECRET")) == "SecretStr('**********')"
