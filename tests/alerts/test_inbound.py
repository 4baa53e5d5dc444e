"""``POST /hooks/alertmanager``: authenticated, well-formed alerts for a known target
start and end surges; anything else is a 4xx with a clear message and changes nothing
(hypothesis fuzzes 300+ bad or unauthenticated requests)."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import SecretStr

from headroom.controller.alerts.inbound import PATH, AlertmanagerReceiver, serve_inbound
from headroom.controller.alerts.webhook import sign
from headroom.controller.surge import LocalSurges
from headroom.policies.calendar import Calendar
from tests.alerts.reports import spec

TOKEN = "inbound-token-0123456789"
KEY = "inbound-hmac-key"
NOW = 1_800_000_000.0
POLICY = spec(alertRules={"surgeMaxFactor": 3, "surgeMaxDuration": "1h"},
              eventSelector={"app": "shop"})  # fmt: skip


def _alert(status: str = "firing", **labels: str) -> dict[str, Any]:
    base = {"alertname": "CheckoutQpsJump", "headroom_policy": "shop", "headroom_target": "cart"}
    return {"status": status, "labels": {**base, **labels}, "annotations": {},
            "startsAt": "2027-01-15T08:00:00Z", "endsAt": "0001-01-01T00:00:00Z",
            "fingerprint": "a1b2c3d4e5f60718"}  # fmt: skip


def _payload(*alerts: dict[str, Any], status: str = "firing") -> dict[str, Any]:
    return {"version": "4", "status": status, "receiver": "headroom", "groupKey": "{}:{}",
            "truncatedAlerts": 0, "groupLabels": {}, "commonLabels": {},
            "commonAnnotations": {}, "externalURL": "http://am",
            "alerts": list(alerts)}  # fmt: skip


def _bearer(token: str = TOKEN) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}


def _receiver() -> tuple[AlertmanagerReceiver, LocalSurges]:
    surges = LocalSurges(now=lambda: NOW)
    receiver = AlertmanagerReceiver(lambda: {"shop": POLICY}, surges, token=SecretStr(TOKEN),
                                    hmac_secret=SecretStr(KEY), now=lambda: NOW)  # fmt: skip
    return receiver, surges


def test_a_firing_alert_starts_a_bounded_surge_and_its_resolve_ends_it() -> None:
    receiver, surges = _receiver()
    status, answer = receiver.handle(_bearer(), json.dumps(_payload(_alert())).encode())
    assert status == 200 and answer["started"][0]["factor"] == 2.0  # the default factor
    (surge,) = surges.active()
    assert (surge.policy, surge.target, surge.start, surge.end) == ("shop", "cart", NOW,
                                                                    NOW + 3600)  # fmt: skip
    (event,) = surges.calendar().for_labels(POLICY.event_selector).events
    assert event.expectation is not None and event.expectation.multiplier == 2.0
    assert event.labels["headroom_surge"] == "CheckoutQpsJump"
    # Re-sent with a bigger factor than the policy allows: renewed, capped, one surge.
    bigger = _alert(headroom_factor="10", headroom_duration="20m")
    status, _ = receiver.handle(_bearer(), json.dumps(_payload(bigger)).encode())
    (surge,) = surges.active()
    assert status == 200 and surge.factor == 3.0 and surge.end == NOW + 1200
    status, answer = receiver.handle(
        _bearer(), json.dumps(_payload(_alert("resolved"), status="resolved")).encode()
    )
    assert status == 200 and answer["ended"] == [{"key": "a1b2c3d4e5f60718", "policy": "shop",
                                                   "target": "cart"}]  # fmt: skip
    assert surges.active() == [] and surges.calendar() == Calendar()


def test_a_signature_authenticates_and_a_replay_does_not() -> None:
    receiver, surges = _receiver()
    body = json.dumps(_payload(_alert())).encode()
    ts = str(int(time.time()))
    signed = {"X-Headroom-Timestamp": ts, "X-Headroom-Signature": sign(KEY, ts, body)}
    assert receiver.handle(signed, body)[0] == 200
    receiver2, surges2 = _receiver()
    old = str(int(time.time()) - 3600)
    replay = {"X-Headroom-Timestamp": old, "X-Headroom-Signature": sign(KEY, old, body)}
    status, answer = receiver2.handle(replay, body)
    assert status == 401 and "tolerance" in answer["error"] and surges2.active() == []


@pytest.mark.parametrize(
    ("headers", "payload", "status", "message"),
    [
        ({}, _payload(_alert()), 401, "authentication required (a bearer token or a signature)"),
        (_bearer("wrong"), _payload(_alert()), 401, "the bearer token is not valid"),
        (
            _bearer(),
            _payload(_alert(headroom_policy="nope")),
            422,
            "alerts[0]: unknown policy 'nope'",
        ),
        (
            _bearer(),
            _payload(_alert(headroom_target="web")),
            422,
            "alerts[0]: policy shop has no target 'web'",
        ),
        (
            _bearer(),
            _payload({"status": "firing", "labels": {"alertname": "X"}}),
            422,
            "alerts[0]: labels headroom_policy and headroom_target are required",
        ),
        (
            _bearer(),
            _payload(_alert(), _alert(headroom_target="web")),
            422,
            "alerts[1]: policy shop has no target 'web'",
        ),
        (
            _bearer(),
            _payload(_alert(headroom_factor="0.5")),
            422,
            "alerts[0]: headroom_factor must be at least 1",
        ),
        (
            _bearer(),
            _payload(_alert(headroom_factor="lots")),
            422,
            "alerts[0]: headroom_factor 'lots' is not a number",
        ),
        (_bearer(), _payload(_alert(headroom_duration="soon")), 422, "headroom_duration"),
        (_bearer(), {**_payload(_alert()), "version": "3"}, 400, "version"),
        (_bearer(), [1, 2], 400, "expected an Alertmanager webhook object"),
        (_bearer(), _payload(), 400, "alerts: List should have at least 1 item"),
        ({**_bearer(), "Content-Type": "text/plain"}, _payload(_alert()), 415, "not JSON"),
    ],
)
def test_bad_requests_are_4xx_with_a_clear_message_and_change_nothing(
    headers: dict[str, str], payload: Any, status: int, message: str
) -> None:
    receiver, surges = _receiver()
    got, answer = receiver.handle(headers, json.dumps(payload).encode())
    assert got == status and message in answer["error"], answer
    assert "\n" not in answer["error"] and TOKEN not in answer["error"]
    assert surges.active() == []


def _post(url: str, body: bytes, headers: dict[str, str], method: str = "POST"):
    request = urllib.request.Request(url, data=body if method == "POST" else None,
                                     headers=headers, method=method)  # fmt: skip
    try:
        with urllib.request.urlopen(request, timeout=5) as resp:  # noqa: S310 - loopback
            return resp.status, json.load(resp)
    except urllib.error.HTTPError as err:
        return err.code, json.load(err)


def test_over_http_size_path_and_method_are_checked() -> None:
    receiver, surges = _receiver()
    server = serve_inbound(receiver, max_body=4096)
    try:
        ok = json.dumps(_payload(_alert())).encode()
        assert _post(server.url(PATH), ok, _bearer())[0] == 200
        surges.end_surge("a1b2c3d4e5f60718", NOW)
        big = json.dumps(_payload(*[_alert()] * 40)).encode()
        status, answer = _post(server.url(PATH), big, _bearer())
        assert status == 413 and answer["error"] == "body over 4096 bytes"
        assert _post(server.url("/hooks/other"), ok, _bearer())[0] == 404
        assert _post(server.url(PATH), b"", _bearer(), method="GET")[0] == 405
        assert surges.active() == []
    finally:
        server.stop()


# -- fuzzing -------------------------------------------------------------------------------

_text = st.text(max_size=20)
_json = st.recursive(
    st.none() | st.booleans() | st.floats(allow_nan=True) | st.integers() | _text,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_text, inner, max_size=4),
    max_leaves=12,
)
_bad_labels = st.fixed_dictionaries(
    {"headroom_policy": st.sampled_from(["shop", "nope", "", "SHOP"]),
     "headroom_target": st.sampled_from(["web", "", "cart ", "Cart"])},
)  # fmt: skip
_bad_values = st.fixed_dictionaries(
    {"headroom_policy": st.just("shop"), "headroom_target": st.just("cart"),
     "headroom_factor": st.sampled_from(["0", "-2", "nan", "inf", "x", "0.99", "1e999"])},
)  # fmt: skip


@st.composite
def _bad_bodies(draw: st.DrawFn) -> bytes:
    kind = draw(st.sampled_from(["bytes", "json", "mutated", "unknown", "values"]))
    if kind == "bytes":
        return draw(st.binary(max_size=200))
    if kind == "json":
        return json.dumps(draw(_json)).encode()
    payload = _payload(_alert())
    if kind == "mutated":  # a valid payload with one field removed or of the wrong type
        alert = payload["alerts"][0]
        field = draw(st.sampled_from(["version", "status", "alerts", "a.status", "a.labels"]))
        value = draw(st.sampled_from([None, 4, "4x", [], {}, "maybe", {"a": 1}, [1]]))
        if field.startswith("a."):
            alert[field[2:]] = value
        elif draw(st.booleans()):
            payload[field] = value
        else:
            del payload[field]
        return json.dumps(payload).encode()
    labels = draw(_bad_labels if kind == "unknown" else _bad_values)
    payload["alerts"].append({**_alert(), "labels": labels})
    return json.dumps(payload).encode()


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=_bad_bodies(), auth=st.sampled_from(["bearer", "none", "wrong", "badsig"]))
def test_fuzz_bad_or_unauthenticated_requests_change_nothing(body: bytes, auth: str) -> None:
    receiver, surges = _receiver()
    bad_signature = {"X-Headroom-Timestamp": str(int(time.time())),
                     "X-Headroom-Signature": sign("not-the-key", "1", body)}  # fmt: skip
    headers = {"none": {}, "bearer": _bearer(), "wrong": _bearer("x" * len(TOKEN)),
               "badsig": bad_signature}[auth]  # fmt: skip
    status, answer = receiver.handle(headers, body)
    if auth != "bearer":
        assert status == 401
    assert 400 <= status < 500, (status, answer)
    assert isinstance(answer["error"], str) and answer["error"] and "\n" not in answer["error"]
    assert surges.active() == [] and surges.calendar() == Calendar()


@settings(max_examples=60, deadline=None)
@given(token=st.text(min_size=0, max_size=40).filter(lambda t: t.strip() != TOKEN))
def test_fuzz_any_other_token_is_refused(token: str) -> None:
    receiver, surges = _receiver()
    headers = {"Authorization": f"Bearer {token}"}
    status, _ = receiver.handle(headers, json.dumps(_payload(_alert())).encode())
    assert status == 401 and surges.active() == []
