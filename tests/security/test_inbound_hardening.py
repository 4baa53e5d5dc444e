"""The inbound receiver and the alert sinks hold up against the review's attacks (issue 21,
items 3-7), on real sockets: slow bodies and idle connections, replays, a blank secret,
a redirecting sink, and the same policy name in two namespaces."""

from __future__ import annotations

import json
import os
import selectors
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import SecretStr

from headroom.controller.alerts.alertmanager import AlertmanagerSink
from headroom.controller.alerts.base import Alert, Severity
from headroom.controller.alerts.config import SecretRef
from headroom.controller.alerts.inbound import PATH, AlertmanagerReceiver, serve_inbound
from headroom.controller.alerts.webhook import sign
from headroom.controller.demand_events import DemandEventSurges
from headroom.controller.httpserve import MAX_CONNECTIONS, SOCKET_TIMEOUT
from headroom.controller.kube import Kube
from headroom.controller.metrics import OperatorMetrics
from headroom.controller.operator.health import HealthServer
from headroom.controller.surge import LocalSurges
from headroom.policies.errors import AlertConfigError, AlertDeliveryError
from tests.alerts.reports import spec
from tests.harness.chart_install import install_chart
from tests.harness.harness import KubeHarness
from tests.support.receivers import Receiver

TOKEN = "inbound-token-0123456789"
KEY = "inbound-hmac-key"
POLICY = spec(alertRules={"surgeMaxFactor": 3, "surgeMaxDuration": "1h"})


def _alert(status: str = "firing", policy: str = "shop") -> dict[str, Any]:
    return {"status": status, "fingerprint": "a1b2c3d4e5f60718",
            "labels": {"alertname": "CheckoutQpsJump", "headroom_policy": policy,
                       "headroom_target": "cart"}}  # fmt: skip


def _body(status: str = "firing", policy: str = "shop") -> bytes:
    doc = {"version": "4", "status": status, "alerts": [_alert(status, policy)]}
    return json.dumps(doc).encode()


def _post(url: str, body: bytes, headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(
        url, data=body, method="POST", headers={"Content-Type": "application/json", **headers}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:  # noqa: S310
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def _signed(body: bytes, at: str | None = None) -> dict[str, str]:
    ts = at if at is not None else str(int(time.time()))
    return {"X-Headroom-Timestamp": ts, "X-Headroom-Signature": sign(KEY, ts, body)}


@pytest.fixture
def inbound() -> Iterator[tuple[Any, LocalSurges]]:
    surges = LocalSurges()
    receiver = AlertmanagerReceiver(
        lambda: {"shop": POLICY}, surges, token=SecretStr(TOKEN), hmac_secret=SecretStr(KEY)
    )
    server = serve_inbound(receiver)
    try:
        yield server, surges
    finally:
        server.stop()


def _threads() -> int:
    return threading.active_count()


def _stall(port: int, count: int, head: bytes) -> list[socket.socket]:
    socks = []
    for _ in range(count):
        sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        sock.sendall(head)
        socks.append(sock)
    return socks


def _wait_closed(socks: list[socket.socket], timeout: float) -> list[socket.socket]:
    """Wait until the server closed every socket (EOF); returns those still open."""
    open_ = {s.fileno(): s for s in socks}
    deadline = time.monotonic() + timeout
    with selectors.DefaultSelector() as sel:
        for sock in socks:
            sock.setblocking(False)
            sel.register(sock, selectors.EVENT_READ)
        while open_ and time.monotonic() < deadline:
            for key, _ in sel.select(timeout=0.5):
                ready = open_.get(key.fd)
                if ready is None:
                    continue
                try:
                    data = ready.recv(65536)
                except BlockingIOError:
                    continue
                except OSError:
                    data = b""
                if not data:
                    sel.unregister(ready)
                    del open_[key.fd]
    return list(open_.values())


def _closed(sock: socket.socket) -> bool:
    """True once the server has closed ``sock`` (reads EOF after any answer)."""
    sock.settimeout(0.5)
    try:
        while data := sock.recv(65536):
            del data
        return True
    except TimeoutError:
        return False
    except OSError:
        return True


def test_a_slow_unauthenticated_body_is_refused_before_it_is_read(inbound: Any) -> None:
    """Item 3: 200 connections announce 200 KB without credentials, send 1 KB and stall:
    each is answered 401 at once and closed, no thread waits on any of them."""
    server, surges = inbound
    before = _threads()
    head = (
        f"POST {PATH} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        "Content-Length: 200000\r\n\r\n"
    ).encode() + b"{" * 1024
    socks = _stall(server.port, 200, head)
    try:
        answers = []
        for sock in socks:
            sock.settimeout(10)
            answers.append(sock.recv(4096).split(b"\r\n", 1)[0])
        assert set(answers) == {b"HTTP/1.0 401 Unauthorized"}, set(answers)
        deadline = time.monotonic() + 10
        while _threads() > before + 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert _threads() <= before + 2
        assert all(_closed(s) for s in socks)
    finally:
        for sock in socks:
            sock.close()
    assert surges.active() == []


@pytest.mark.slow
def test_stalled_connections_are_capped_and_time_out(inbound: Any) -> None:
    """Items 3: authenticated bodies that stall, and idle connections to the health port,
    hold at most MAX_CONNECTIONS threads each, and are closed after SOCKET_TIMEOUT."""
    server, _ = inbound
    health = HealthServer(OperatorMetrics().registry, lambda: (True, "ok"), port=0).start()
    before = _threads()
    head = (
        f"POST {PATH} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n"
        "Content-Type: application/json\r\nContent-Length: 200000\r\n\r\n{"
    ).encode()
    socks = _stall(server.port, 150, head) + _stall(health.port, 150, b"")
    try:
        time.sleep(1.0)
        assert _threads() <= before + 2 * MAX_CONNECTIONS + 2, _threads()
        # Every connection is closed by the server: the ones over the cap at once, the
        # others SOCKET_TIMEOUT after their last byte (a backlog's turn comes after).
        still_open = _wait_closed(socks, 3 * SOCKET_TIMEOUT + 15)
        assert still_open == [], len(still_open)
        deadline = time.monotonic() + 10
        while _threads() > before + 2 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert _threads() <= before + 2, _threads()
        # Still serving afterwards.
        with urllib.request.urlopen(f"http://127.0.0.1:{health.port}/healthz", timeout=10) as r:  # noqa: S310
            assert r.status == 200
    finally:
        for sock in socks:
            sock.close()
        health.stop()


def test_a_signed_request_is_accepted_once(inbound: Any) -> None:
    """Item 4: the same signed request again is 401 (within the window), so is the firing
    request replayed after its resolve, and a NaN timestamp."""
    server, surges = inbound
    url = server.url(PATH)
    firing = _body()
    headers = _signed(firing)
    assert _post(url, firing, headers)[0] == 200
    status, answer = _post(url, firing, headers)
    assert status == 401 and "replay" in answer["error"], answer
    resolved = _body("resolved")
    assert _post(url, resolved, _signed(resolved))[0] == 200
    assert surges.active() == []
    status, _ = _post(url, firing, headers)
    assert status == 401 and surges.active() == []
    status, answer = _post(url, firing, _signed(firing, at="nan"))
    assert status == 401 and "is not unix seconds" in answer["error"], answer
    assert surges.active() == []


def test_a_blank_secret_is_refused_and_an_empty_bearer_gets_nothing(inbound: Any) -> None:
    """Item 5: a token of spaces is refused where it is read, and by the receiver."""
    os.environ["HEADROOM_TEST_BLANK"] = "   "
    try:
        with pytest.raises(AlertConfigError, match="HEADROOM_TEST_BLANK is blank"):
            SecretRef(env="HEADROOM_TEST_BLANK").resolve("inbound.tokenFrom")
    finally:
        del os.environ["HEADROOM_TEST_BLANK"]
    with pytest.raises(ValueError, match="blank"):
        AlertmanagerReceiver(dict, LocalSurges(), token=SecretStr("   "))
    server, surges = inbound
    status, _ = _post(server.url(PATH), _body(), {"Authorization": "Bearer "})
    assert status == 401 and surges.active() == []


def test_a_sink_that_redirects_fails_and_gets_no_credentials() -> None:
    """Item 6: a 302 from the Alertmanager sink is a failed delivery; the token is not
    sent to the redirect's target."""
    elsewhere = Receiver()
    sink = Receiver(status=302)
    sink.answer_headers["Location"] = elsewhere.url + "/api/v2/alerts"
    try:
        am = AlertmanagerSink("team-am", sink.url, token=SecretStr("am-secret-token"))
        alert = Alert("test", "shop", "cart", Severity.INFO, "test", 0.0, 0.0)
        with pytest.raises(AlertDeliveryError, match=r"^alert sink team-am: HTTP 302$"):
            am.send([alert])
    finally:
        sink.stop()
        elsewhere.stop()
    assert sink.attempts == 1
    assert elsewhere.attempts == 0 and elsewhere.received == []


def test_surges_stay_in_their_policy_namespace(tmp_path: Any) -> None:
    """Item 7: with one policy name in two namespaces, a bare name is refused, a
    namespaced one surges only there, and a resolve ends only the surge this receiver
    made for that policy (never another namespace's object of the same name)."""
    kube = KubeHarness(tmp_path / "kube").start()
    try:
        install_chart(kube)
        for ns in ("team-a", "team-b"):
            kube.ensure_namespace(ns)
        client = Kube(kube.api_client())
        custom: Any = client.custom
        name = DemandEventSurges.object_name("a1b2c3d4e5f60718")
        foreign = {
            "apiVersion": "headroom.dev/v1alpha1", "kind": "DemandEvent",
            "metadata": {"name": name, "namespace": "team-a"},
            "spec": {"name": "their own", "start": "2030-01-01T00:00:00Z",
                     "end": "2030-01-02T00:00:00Z"},
        }  # fmt: skip
        custom.create_namespaced_custom_object("headroom.dev", "v1alpha1", "team-a",
                                               "demandevents", foreign)  # fmt: skip
        policies = {"team-a/shop": POLICY, "team-b/shop": POLICY}
        surges = DemandEventSurges(client, lambda p: None, lambda: ["team-a", "team-b"])
        receiver = AlertmanagerReceiver(lambda: policies, surges, token=SecretStr(TOKEN))
        bearer = {"Authorization": f"Bearer {TOKEN}"}
        status, answer = receiver.handle(bearer, _body())
        assert status == 422 and "runs in several namespaces (team-a, team-b)" in answer["error"]
        assert receiver.handle(bearer, _body(policy="team-b/shop"))[0] == 200

        def events(ns: str) -> dict[str, Any]:
            items = custom.list_namespaced_custom_object(
                "headroom.dev", "v1alpha1", ns, "demandevents"
            )["items"]
            return {o["metadata"]["name"]: o for o in items}

        assert name in events("team-b")
        assert events("team-a")[name]["spec"]["name"] == "their own"
        # A resolve for team-a's policy: team-a's object is not a surge this receiver made.
        status, answer = receiver.handle(bearer, _body("resolved", "team-a/shop"))
        assert status == 200 and answer["ended"] == []
        assert events("team-a")[name]["spec"]["end"] == "2030-01-02T00:00:00Z"
        status, answer = receiver.handle(bearer, _body("resolved", "team-b/shop"))
        assert status == 200 and len(answer["ended"]) == 1
        assert events("team-b")[name]["spec"]["end"] < "2030"
        assert events("team-a")[name]["spec"]["end"] == "2030-01-02T00:00:00Z"
    finally:
        kube.close()
