"""What a policy's metrics may reach: files and addresses, checked before a source is built.

A CapacityPolicy is written by whoever may edit CapacityPolicies in a namespace (with the
chart's aggregated roles, every namespace editor), but the operator reads its sources
with the operator's own filesystem and network. So the operator builds sources under a
:class:`SourceAccess` from its chart values:

- ``file_dirs``: a file source (``metrics.qps.source: csv``) may only name a file under
  one of these directories (after symlinks and ``..`` are resolved). The operator's
  default is none: file sources are refused (they are for the CLI and ``headroom demo``).
- ``addresses``: when given, a Prometheus URL or Redis seed must name one of these hosts
  (``HOST`` or ``HOST:PORT``; ``*`` globs as in ``*.monitoring.svc``). Empty or None:
  any address.
- ``quote``: whether a source's error may quote what it read (never, in the operator:
  its errors reach a policy's status and Events).

The CLI and the demo read with the user's own rights, so :data:`UNRESTRICTED` lets them
read any file and reach any address.
"""

from __future__ import annotations

import fnmatch
import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from headroom.policies.errors import PolicyError, field_error

DEFAULT_PORTS = {"http": 80, "https": 443, "redis": 6379, "rediss": 6379}


@dataclass(frozen=True)
class SourceAccess:
    """The files and addresses a policy's sources may use (see the module docstring)."""

    file_dirs: tuple[Path, ...] | None = None  # None: any file
    addresses: tuple[str, ...] | None = None  # None or (): any address
    quote: bool = True

    def file(self, url: str, field: str) -> Path:
        """The path a file source reads, if this access allows it; else a one-line
        :class:`PolicyError` naming ``field`` (and never the file's content)."""
        raw = url.removeprefix("file://")
        if self.file_dirs is None:
            return Path(raw)
        if not self.file_dirs:
            raise PolicyError(
                field_error(
                    "policy",
                    field,
                    "file sources are refused by the operator (they are for the CLI and the "
                    "demo; the chart's operator.sources.fileDirs allows a directory)",
                )
            )
        path = Path(os.path.realpath(raw)) if os.path.isabs(raw) else None
        if path is not None:
            for root in self.file_dirs:
                base = Path(os.path.realpath(root))
                if path == base or base in path.parents:
                    return path
        allowed = ", ".join(str(d) for d in self.file_dirs)
        raise PolicyError(field_error("policy", field, f"must be an absolute path under {allowed}"))

    def address(self, url: str, field: str, scheme: str) -> None:
        """Refuse ``url`` (``scheme://host:port/...`` or ``host:port``) unless its host
        (and port) is in :attr:`addresses`; any address when none are given."""
        if not self.addresses:
            return
        parts = urlsplit(url if "://" in url else f"{scheme}://{url}")
        try:
            port = parts.port or DEFAULT_PORTS.get(parts.scheme)
        except ValueError:
            port = None
        host = (parts.hostname or "").lower()
        for entry in self.addresses:
            want_host, _, want_port = entry.lower().rpartition(":")
            if not want_host or not want_port.isdigit():  # no port given: any port
                want_host, want_port = entry.lower(), ""
            if fnmatch.fnmatchcase(host, want_host.strip("[]")) and (
                not want_port or int(want_port) == port
            ):
                return
        shown = host or "no host"
        raise PolicyError(
            field_error(
                "policy",
                field,
                f"{shown}:{port} is not an address the operator may reach "
                "(the chart's operator.sources.addresses)",
            )
        )


UNRESTRICTED = SourceAccess()
OPERATOR_DEFAULT = SourceAccess(file_dirs=(), addresses=None, quote=False)
