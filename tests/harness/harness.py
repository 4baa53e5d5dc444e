"""Entry point of the Kubernetes test harness: one emulated cluster per test.

``KubeHarness`` owns a :class:`Store`, an :class:`ApiServer` on 127.0.0.1 (random port), the
tokens, the fault rules and optionally a :class:`Kubelet`. Use it as a context manager or
through the fixtures in :mod:`tests.harness.fixtures`.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client

from tests.harness.apiserver import ApiServer, AuditRecord
from tests.harness.faults import Faults
from tests.harness.kubeconfig import client_configuration, write_kubeconfig
from tests.harness.kubelet import Kubelet
from tests.harness.rbac import Tokens, User
from tests.harness.store import Obj, Store
from tests.harness.tls import server_context, serving_cert


class KubeHarness:
    """An emulated Kubernetes API (and kubelet) for one test."""

    def __init__(
        self,
        workdir: Path,
        *,
        rbac: bool = True,
        history_size: int = 2000,
        bookmark_interval: float = 1.0,
    ) -> None:
        self.workdir = workdir
        self.store = Store(history_size=history_size)
        self.tokens = Tokens(admin_token=secrets.token_hex(16))
        self.faults = Faults()
        self.server = ApiServer(
            self.store,
            self.tokens,
            authorize=rbac,
            faults=self.faults,
            bookmark_interval=bookmark_interval,
        )
        self.kubelet: Kubelet | None = None
        self._clients: list[Any] = []

    # ---- lifecycle -------------------------------------------------------------------
    def start(self) -> KubeHarness:
        self.server.start()
        return self

    def close(self) -> None:
        if self.kubelet is not None:
            self.kubelet.stop()
        for api in self._clients:
            api.close()
        self._clients.clear()
        self.server.stop()

    def __enter__(self) -> KubeHarness:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start_kubelet(self, startup_delay: float = 0.0, poll_interval: float = 0.1) -> Kubelet:
        if self.kubelet is None:
            self.kubelet = Kubelet(
                self.store,
                self.workdir / "kubelet",
                startup_delay=startup_delay,
                poll_interval=poll_interval,
            ).start()
        return self.kubelet

    # ---- access ----------------------------------------------------------------------
    @property
    def url(self) -> str:
        return self.server.url

    @property
    def admin_token(self) -> str:
        return self.tokens.admin_token

    def service_account_token(self, namespace: str, name: str) -> str:
        """A bearer token for ServiceAccount NAMESPACE/NAME (created if missing)."""
        token = secrets.token_hex(16)
        self.tokens.add(token, User.service_account(namespace, name))
        sa = self.store.type("", "serviceaccounts")
        if self.store.try_get(sa, namespace, name) is None:
            self.ensure_namespace(namespace)
            self.store.create(sa, namespace, {"metadata": {"name": name}})
        return token

    def user_token(self, name: str, groups: Iterable[str] = ()) -> str:
        token = secrets.token_hex(16)
        self.tokens.add(token, User(name, (*groups, "system:authenticated")))
        return token

    def api_client(self, token: str | None = None) -> Any:
        """A ``kubernetes.client.ApiClient`` for ``token`` (admin by default), closed at the end."""
        return self.track(
            client.ApiClient(client_configuration(self.url, token or self.admin_token))
        )

    def track(self, api: Any) -> Any:
        """Close ``api`` (anything with ``close()``) when the harness closes."""
        self._clients.append(api)
        return api

    def kubeconfig(
        self, path: Path, token: str | None = None, namespace: str = "default", *, tls: bool = False
    ) -> Path:
        """A kubeconfig for ``token`` (admin by default). ``tls=True`` points it at the HTTPS
        listener (started on first use) with the emulator's CA: kubectl sends a token only
        over TLS."""
        token = token or self.admin_token
        if not tls:
            return write_kubeconfig(path, self.url, token, namespace)
        ca = self.enable_tls()
        return write_kubeconfig(path, self.server.tls_url, token, namespace, ca_pem=ca)

    def enable_tls(self) -> bytes:
        """Serve HTTPS too (``server.tls_url``, kept across restarts); returns the CA (PEM)."""
        cert = serving_cert(self.server.host)
        if self.server.tls is None:
            self.server.enable_tls(server_context(cert, self.workdir / "tls"))
        return cert.cert_pem

    @property
    def audit(self) -> list[AuditRecord]:
        return list(self.server.audit)

    # ---- setup helpers (admin, in-process) -------------------------------------------
    def ensure_namespace(self, name: str) -> None:
        ns = self.store.type("", "namespaces")
        if self.store.try_get(ns, "", name) is None:
            self.store.create(ns, "", {"metadata": {"name": name}})

    def apply(
        self, manifests: str | Path | Obj | list[Obj], namespace: str = "default"
    ) -> list[Obj]:
        """Create or replace every object in YAML text, a YAML file, a dict or a list of them."""
        if isinstance(manifests, Path):
            docs: list[Any] = list(yaml.safe_load_all(manifests.read_text()))
        elif isinstance(manifests, str):
            docs = list(yaml.safe_load_all(manifests))
        elif isinstance(manifests, dict):
            docs = [manifests]
        else:
            docs = list(manifests)
        out = []
        for doc in docs:
            if not doc:
                continue
            if doc.get("kind", "").endswith("List") and "items" in doc:
                out += self.apply(doc["items"], namespace)
                continue
            rt = self.store.type_for_kind(doc["apiVersion"], doc["kind"])
            ns = (doc.get("metadata") or {}).get("namespace") or namespace if rt.namespaced else ""
            if ns:
                self.ensure_namespace(ns)
            name = doc["metadata"]["name"]
            if self.store.try_get(rt, ns, name) is None:
                out.append(self.store.create(rt, ns, doc, internal=True))
            else:
                out.append(self.store.update(rt, ns, name, doc, internal=True))
        return out

    def get(self, api_version: str, kind: str, name: str, namespace: str = "") -> Obj | None:
        rt = self.store.type_for_kind(api_version, kind)
        return self.store.try_get(rt, namespace, name)

    # ---- disruptions -----------------------------------------------------------------
    def stop_api(self) -> None:
        """The API goes away: listener closed, connections reset, watches broken."""
        self.server.stop()

    def start_api(self) -> None:
        """The API comes back on the same port with the same data."""
        deadline = time.monotonic() + 5
        while True:
            try:
                self.server.start()
                return
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    @contextmanager
    def api_down(self) -> Iterator[None]:
        self.stop_api()
        try:
            yield
        finally:
            self.start_api()

    def drop_watches(self) -> int:
        return self.server.drop_watches()

    def compact(self) -> int:
        """Forget the watch history: watches from an older resourceVersion get 410 Gone."""
        return self.store.compact()
