"""Fault injection for the API emulator: failing, slow and dropped requests.

Tests arm rules through :attr:`tests.harness.harness.KubeHarness.faults`; the server asks
:meth:`Faults.take` before serving each request.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass, field
from typing import Any

from tests.harness.errors import ApiError


@dataclass
class FaultRule:
    pattern: re.Pattern[str]
    methods: frozenset[str] | None
    status: int | None  # None: serve normally (after ``delay``)
    delay: float
    remaining: int | None  # None: forever
    hits: int = 0

    def applies(self, method: str, path: str) -> bool:
        return (self.methods is None or method in self.methods) and bool(self.pattern.search(path))


_REASONS = {
    409: ("Conflict", "Operation cannot be fulfilled: the object has been modified (injected)"),
    429: ("TooManyRequests", "Too many requests, please try again later."),
    500: ("InternalError", "Internal error occurred: injected fault"),
    503: ("ServiceUnavailable", "The server is currently unable to handle the request"),
    504: ("Timeout", "The server was unable to return a response in the time allotted"),
}


def fault_error(status: int) -> ApiError:
    reason, message = _REASONS.get(status, ("InternalError", f"injected fault {status}"))
    details: dict[str, Any] = {"retryAfterSeconds": 1} if status == 429 else {}
    return ApiError(status, reason, message, details)


@dataclass
class Faults:
    """Armed fault rules; the first rule that applies to a request wins."""

    _rules: list[FaultRule] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def fail(
        self, path: str, status: int = 500, times: int | None = 1, methods: str | None = None
    ) -> FaultRule:
        """The next ``times`` requests whose path matches regex ``path`` get ``status``.

        ``methods`` is e.g. ``"PUT,PATCH"``; None matches every method.
        """
        return self._add(path, status, 0.0, times, methods)

    def delay(
        self, path: str, seconds: float, times: int | None = 1, methods: str | None = None
    ) -> FaultRule:
        """The next ``times`` matching requests are served ``seconds`` late."""
        return self._add(path, None, seconds, times, methods)

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()

    def take(self, method: str, path: str) -> FaultRule | None:
        """The rule to apply to this request, consuming one of its uses."""
        with self._lock:
            for rule in self._rules:
                if rule.applies(method, path):
                    rule.hits += 1
                    if rule.remaining is not None:
                        rule.remaining -= 1
                        if rule.remaining <= 0:
                            self._rules.remove(rule)
                    return rule
        return None

    def _add(
        self, path: str, status: int | None, delay: float, times: int | None, methods: str | None
    ) -> FaultRule:
        ms = frozenset(m.strip().upper() for m in methods.split(",")) if methods else None
        rule = FaultRule(re.compile(path), ms, status, delay, times)
        with self._lock:
            self._rules.append(rule)
        return rule
