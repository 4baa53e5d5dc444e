"""The operator-level alerts config: named sinks with secret references, delivery knobs,
the inbound receiver; and :func:`build_bindings`, which joins it with a policy's hooks.

The file (YAML; path from ``--alerts-config`` or ``$HEADROOM_ALERTS_CONFIG``) holds no
secret itself, only where to read one: ``{env: NAME}`` (an environment variable, e.g.
from a Kubernetes Secret via ``envFrom``) or ``{file: PATH}`` (a mounted Secret key)::

    externalUrl: https://grafana.example.com/d/headroom   # alert links (optional)
    sinks:
      oncall-slack: {type: slack, urlFrom: {env: HEADROOM_SLACK_URL}}
      oncall-pagerduty: {type: pagerduty, routingKeyFrom: {file: /etc/headroom/pd-key}}
      oncall-opsgenie: {type: opsgenie, tokenFrom: {env: HEADROOM_OPSGENIE_KEY}}
      team-alertmanager: {type: alertmanager, url: "http://alertmanager:9093"}
      audit: {type: webhook, url: "https://hooks.example.com/h", secretFrom: {env: HOOK_KEY}}
    delivery: {queueSize: 1000, attempts: 6, backoff: 1s, ratePerMinute: 30}
    inbound: {tokenFrom: {env: HEADROOM_INBOUND_TOKEN}}

Secrets are read when the sinks are built and held as :class:`~pydantic.SecretStr`;
errors name the field and the variable or file, never the value.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator
from pydantic.alias_generators import to_camel

from headroom.controller.alerts import alertmanager, opsgenie, pagerduty, slack, webhook
from headroom.controller.alerts.base import Alert, AlertSink, HttpPost, Severity, urllib_post
from headroom.controller.alerts.inbound import AlertmanagerReceiver, serve_inbound
from headroom.controller.alerts.notifier import (
    AlertNotifier,
    AlertState,
    Delivery,
    DeliveryOptions,
    SinkBinding,
)
from headroom.controller.alerts.receiver import HookServer
from headroom.controller.files import POLICY_MAX_BYTES, SECRET_MAX_BYTES, read_bounded
from headroom.controller.metrics import OperatorMetrics
from headroom.controller.surge import SurgeEvents
from headroom.policies.errors import AlertConfigError, AlertDeliveryError
from headroom.policies.policy import AlertHook, AlertSinkKind, PolicySpec
from headroom.policies.quantities import Duration
from headroom.policies.validation import load_yaml_documents

ENV_CONFIG = "HEADROOM_ALERTS_CONFIG"


class _Model(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True
    )


class SecretRef(_Model):
    """Where a secret is read: an environment variable or a file (one of the two)."""

    env: str | None = Field(None, min_length=1)
    file: str | None = Field(None, min_length=1)

    @model_validator(mode="after")
    def _one(self) -> SecretRef:
        if (self.env is None) == (self.file is None):
            raise ValueError("give exactly one of env or file")
        return self

    def resolve(self, where: str) -> SecretStr:
        if self.env is not None:
            value = os.environ.get(self.env)
            if value is None:
                raise AlertConfigError(f"{where}: environment variable {self.env} is not set")
            if not value.strip():  # "   " is no secret: an empty bearer token matched it
                raise AlertConfigError(f"{where}: environment variable {self.env} is blank")
            return SecretStr(value.strip())
        assert self.file is not None
        data = read_bounded(self.file, SECRET_MAX_BYTES, AlertConfigError, f"secret ({where})")
        text = data.decode("utf-8", errors="replace").strip()
        if not text:
            raise AlertConfigError(f"{where}: {self.file} is empty")
        return SecretStr(text)


class SinkConfig(_Model):
    type: AlertSinkKind
    url: str | None = Field(None, pattern=r"^https?://")
    url_from: SecretRef | None = None  # a URL that is itself a secret (Slack)
    secret_from: SecretRef | None = None  # webhook: the HMAC-SHA256 key
    routing_key_from: SecretRef | None = None  # pagerduty: the integration's routing key
    token_from: SecretRef | None = None  # alertmanager: a bearer token; opsgenie: the API key
    resend_interval: Duration = 60.0  # alertmanager: re-send firing alerts this often

    @model_validator(mode="after")
    def _fields(self) -> SinkConfig:
        if self.url is not None and self.url_from is not None:
            raise ValueError("give url or urlFrom, not both")
        if self.type is AlertSinkKind.SLACK and self.url_from is None:
            raise ValueError("a slack sink needs urlFrom (its webhook URL is a secret)")
        if self.type is AlertSinkKind.PAGERDUTY and self.routing_key_from is None:
            raise ValueError("a pagerduty sink needs routingKeyFrom")
        if self.type is AlertSinkKind.OPSGENIE and self.token_from is None:
            raise ValueError("an opsgenie sink needs tokenFrom (its API key)")
        if self.type in (AlertSinkKind.WEBHOOK, AlertSinkKind.ALERTMANAGER) and not (
            self.url or self.url_from
        ):
            raise ValueError(f"a {self.type.value} sink needs url (or urlFrom)")
        return self


class DeliveryConfig(_Model):
    queue_size: int = Field(1000, ge=1)
    attempts: int = Field(6, ge=1, le=50)
    backoff: Duration = 1.0
    backoff_max: Duration = 60.0
    rate_per_minute: float = Field(30.0, gt=0)
    batch: int = Field(20, ge=1)

    def options(self) -> DeliveryOptions:
        return DeliveryOptions(
            self.queue_size, self.attempts, self.backoff, self.backoff_max,
            self.rate_per_minute, self.batch,
        )  # fmt: skip


class InboundConfig(_Model):
    """``POST /hooks/alertmanager``: a bearer token, an HMAC key, or both, are required."""

    listen: str = "127.0.0.1:9095"
    token_from: SecretRef | None = None
    hmac_secret_from: SecretRef | None = None
    max_body_bytes: int = Field(256 * 1024, ge=1024)

    @model_validator(mode="after")
    def _auth(self) -> InboundConfig:
        if self.token_from is None and self.hmac_secret_from is None:
            raise ValueError("the receiver needs tokenFrom or hmacSecretFrom (no open endpoint)")
        return self


class AlertsConfig(_Model):
    external_url: str | None = Field(None, pattern=r"^https?://")
    sinks: dict[str, SinkConfig] = {}
    delivery: DeliveryConfig = DeliveryConfig()
    inbound: InboundConfig | None = None


def parse_alerts_config(data: Any, source: str = "alerts config") -> AlertsConfig:
    if data is None:
        return AlertsConfig()
    if not isinstance(data, dict):
        raise AlertConfigError(f"{source}: expected a mapping at the top level")
    try:
        return AlertsConfig.model_validate(data)
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "config"
        message = first["msg"].removeprefix("Value error, ")
        raise AlertConfigError(f"{source}: {where}: {message}") from None


def load_alerts_config(path: Path | None = None) -> AlertsConfig:
    """The config at ``path``, else at ``$HEADROOM_ALERTS_CONFIG``, else an empty one."""
    if path is None:
        env = os.environ.get(ENV_CONFIG)
        if not env:
            return AlertsConfig()
        path = Path(env)
    text = read_bounded(path, POLICY_MAX_BYTES, AlertConfigError, "alerts config")
    docs = load_yaml_documents(text, str(path), AlertConfigError)
    if len(docs) > 1:
        raise AlertConfigError(f"{path}: expected one YAML document, found {len(docs)}")
    return parse_alerts_config(docs[0] if docs else None, str(path))


# One builder per sink kind, in the sink's own file: adding a sink is one file in
# controller/alerts/ and one row in SINKS (docs/adding-a-sink.md). Each gets the sink's
# name, its config, its secrets (read by ``secret(ref, field)``), its URL (``url`` or
# ``urlFrom``) and the HTTP poster.
Secret = Callable[[SecretRef | None, str], SecretStr | None]
SinkBuilder = Callable[[str, SinkConfig, Secret, str | None, HttpPost], AlertSink]


@dataclass(frozen=True)
class SinkRow:
    """One sink type: how it is built from its config, and one line for the docs and the
    schema (what it needs, which class)."""

    build: SinkBuilder
    doc: str


# The only list of sink types: the policy schema's AlertSinkKind (policies/plugins.py)
# and the table in docs/adding-a-sink.md are generated from it by `make registry`.
SINKS: Mapping[str, SinkRow] = {
    "alertmanager": SinkRow(
        alertmanager.alertmanager,
        "`url`; optional `tokenFrom`, `resendInterval` (`alertmanager.py`: POST /api/v2/alerts)",
    ),
    "opsgenie": SinkRow(
        opsgenie.opsgenie,
        "`tokenFrom`: the API key; optional `url`: the API's base, e.g. "
        "https://api.eu.opsgenie.com (`opsgenie.py`: Alert API v2)",
    ),
    "pagerduty": SinkRow(
        pagerduty.pagerduty, "`routingKeyFrom`; optional `url` (`pagerduty.py`: Events API v2)"
    ),
    "slack": SinkRow(
        slack.slack, "`urlFrom`: a Slack webhook URL is a secret (`slack.py`: Block Kit)"
    ),
    "webhook": SinkRow(
        webhook.webhook,
        "`url`; optional `secretFrom`: an HMAC-SHA256 signature (`webhook.py`: JSON)",
    ),
}


def build_sink(
    name: str, config: SinkConfig, post: HttpPost = urllib_post, where: str = ""
) -> AlertSink:
    """One sink from its config, reading its secrets now."""
    where = where or f"sinks.{name}"

    def secret(ref: SecretRef | None, field: str) -> SecretStr | None:
        return ref.resolve(f"{where}.{field}") if ref is not None else None

    url_secret = secret(config.url_from, "urlFrom")
    url = config.url or (url_secret.get_secret_value() if url_secret else None)
    return SINKS[config.type].build(name, config, secret, url, post)


def hook_sink_name(spec: PolicySpec, index: int, hook: AlertHook) -> str:
    """A sink's name in logs and metrics: its config name, or ``policy.alerts[i]``."""
    return hook.sink or f"{spec.name}.alerts[{index}]"


def build_bindings(
    spec: PolicySpec, config: AlertsConfig, post: HttpPost = urllib_post
) -> list[SinkBinding]:
    """The sinks ``spec.alerts`` names, each with the alert names it is sent."""
    bindings: list[SinkBinding] = []
    for i, hook in enumerate(spec.alerts):
        name = hook_sink_name(spec, i, hook)
        if hook.sink is not None:
            sink_config = config.sinks.get(hook.sink)
            if sink_config is None:
                known = ", ".join(sorted(config.sinks)) or "none"
                raise AlertConfigError(
                    f"policy {spec.name}: alerts[{i}].sink: no sink {hook.sink!r} in the "
                    f"alerts config (it has: {known})"
                )
            sink = build_sink(name, sink_config, post)
        else:
            assert hook.url is not None
            where = f"policy {spec.name}: alerts[{i}]"
            try:
                inline = SinkConfig(type=hook.type, url=hook.url)
            except ValidationError as err:  # a sink that needs a secret has no inline form
                message = err.errors()[0]["msg"].removeprefix("Value error, ")
                raise AlertConfigError(
                    f"{where}.type: {message}: name it in the alerts config and refer to it "
                    "with sink"
                ) from None
            sink = build_sink(name, inline, post, where=where)
        bindings.append(SinkBinding(sink, frozenset(n.value for n in hook.on)))
    return bindings


def build_inbound(
    config: AlertsConfig,
    policies: Callable[[], Mapping[str, PolicySpec]],
    surges: SurgeEvents,
    now: Callable[[], float] = time.time,
) -> HookServer | None:
    """Start the ``/hooks/alertmanager`` receiver the config's ``inbound`` describes."""
    inbound = config.inbound
    if inbound is None:
        return None
    token = inbound.token_from.resolve("inbound.tokenFrom") if inbound.token_from else None
    key = inbound.hmac_secret_from
    secret = key.resolve("inbound.hmacSecretFrom") if key else None
    host, _, port = inbound.listen.rpartition(":")
    if not host or not port.isdigit():
        raise AlertConfigError(f"inbound.listen: {inbound.listen!r} is not HOST:PORT")
    receiver = AlertmanagerReceiver(policies, surges, token=token, hmac_secret=secret, now=now)
    return serve_inbound(receiver, host, int(port), inbound.max_body_bytes)


def policy_link(spec: PolicySpec, config: AlertsConfig) -> str | None:
    """Where a human reads about the policy: ``externalUrl``/``policy``, if configured."""
    return f"{config.external_url.rstrip('/')}/{spec.name}" if config.external_url else None


def build_notifier(
    spec: PolicySpec,
    config: AlertsConfig,
    *,
    metrics: OperatorMetrics | None = None,
    state: AlertState | None = None,
    post: HttpPost = urllib_post,
    on_delivery: Callable[[Delivery], None] | None = None,
) -> AlertNotifier:
    """The notifier for one policy: its hooks' sinks, the config's delivery knobs and link."""
    link = policy_link(spec, config)
    return AlertNotifier(
        spec,
        build_bindings(spec, config, post),
        metrics=metrics,
        state=state,
        options=config.delivery.options(),
        link=link,
        on_delivery=on_delivery,
    )


@dataclass(frozen=True)
class TestResult:
    """What one sink answered to ``headroom alerts test`` (no URL, no secret)."""

    sink: str
    type: str
    on: tuple[str, ...]
    ok: bool
    error: str | None
    seconds: float

    def to_json(self) -> dict[str, Any]:
        return {"sink": self.sink, "type": self.type, "on": list(self.on), "ok": self.ok,
                "error": self.error, "seconds": round(self.seconds, 3)}  # fmt: skip


def send_test_alerts(
    spec: PolicySpec, config: AlertsConfig, post: HttpPost = urllib_post, now: float | None = None
) -> list[TestResult]:
    """Send every sink of ``spec`` a test alert (firing, then resolved, so no incident
    stays open), synchronously and once each; one result per sink."""
    at = time.time() if now is None else now
    alert = Alert(
        "test", spec.name, spec.targets[0].name, Severity.INFO,
        f"Test alert from Headroom for policy {spec.name} (headroom alerts test)", at, at,
        numbers={"test": 1.0}, link=policy_link(spec, config),
    )  # fmt: skip
    results: list[TestResult] = []
    for i, binding in enumerate(build_bindings(spec, config, post)):
        hook = spec.alerts[i]
        kind = config.sinks[hook.sink].type if hook.sink else hook.type
        started = time.monotonic()
        error = None
        try:
            binding.sink.send([alert])
            binding.sink.send([alert.resolved(at)])
        except AlertDeliveryError as err:
            error = str(err)
        results.append(TestResult(binding.sink.name, kind.value, tuple(sorted(binding.on)),
                                  error is None, error, time.monotonic() - started))  # fmt: skip
    return results
