"""Kubeconfig files and client configurations pointing at the API emulator."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client


def kubeconfig_dict(
    server: str,
    token: str,
    namespace: str = "default",
    name: str = "headroom-emulator",
    ca_pem: bytes | None = None,
) -> dict[str, Any]:
    cluster: dict[str, Any] = {"server": server}
    if ca_pem is not None:
        cluster["certificate-authority-data"] = base64.b64encode(ca_pem).decode()
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": name, "cluster": cluster}],
        "users": [{"name": name, "user": {"token": token}}],
        "contexts": [
            {"name": name, "context": {"cluster": name, "user": name, "namespace": namespace}}
        ],
        "current-context": name,
        "preferences": {},
    }


def write_kubeconfig(
    path: Path, server: str, token: str, namespace: str = "default", ca_pem: bytes | None = None
) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    doc = kubeconfig_dict(server, token, namespace, ca_pem=ca_pem)
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def client_configuration(server: str, token: str) -> Any:
    """A fresh ``kubernetes.client.Configuration`` (never the process-wide default)."""
    cfg = client.Configuration()
    cfg.host = server
    cfg.api_key = {"BearerToken": token}
    cfg.api_key_prefix = {"BearerToken": "Bearer"}
    cfg.retries = 0
    return cfg
