"""Kubeconfig files and client configurations pointing at the API emulator."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from kubernetes import client


def kubeconfig_dict(
    server: str, token: str, namespace: str = "default", name: str = "headroom-emulator"
) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": name, "cluster": {"server": server}}],
        "users": [{"name": name, "user": {"token": token}}],
        "contexts": [
            {"name": name, "context": {"cluster": name, "user": name, "namespace": namespace}}
        ],
        "current-context": name,
        "preferences": {},
    }


def write_kubeconfig(path: Path, server: str, token: str, namespace: str = "default") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(kubeconfig_dict(server, token, namespace), sort_keys=False))
    return path


def client_configuration(server: str, token: str) -> Any:
    """A fresh ``kubernetes.client.Configuration`` (never the process-wide default)."""
    cfg = client.Configuration()
    cfg.host = server
    cfg.api_key = {"BearerToken": token}
    cfg.api_key_prefix = {"BearerToken": "Bearer"}
    cfg.retries = 0
    return cfg
