"""Options and connection shared by the commands that talk to a cluster
(``headroom calendar import``, ``headroom surge``): ``--kubeconfig``, ``--context`` and
``-n/--namespace`` as kubectl reads them."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from headroom.cli._common import EXIT_INPUT, fail
from headroom.policies.errors import HeadroomError

if TYPE_CHECKING:
    from headroom.controller.kube import Kube

KubeconfigOpt = Annotated[
    Path | None,
    typer.Option(
        "--kubeconfig",
        help="Kubeconfig file (default: $KUBECONFIG, ~/.kube/config, or in-cluster).",
        show_default=False,
    ),
]
ContextOpt = Annotated[
    str | None, typer.Option("--context", help="Kubeconfig context.", show_default=False)
]
NamespaceOpt = Annotated[
    str | None,
    typer.Option(
        "--namespace", "-n", help="Namespace (default: the context's).", show_default=False
    ),
]


def connect(
    kubeconfig: Path | None, context: str | None, namespace: str | None
) -> tuple[Kube, str]:
    """A :class:`~headroom.controller.kube.Kube` and the namespace to use."""
    from headroom.controller.kube import Kube, context_namespace, load_config

    try:
        api = load_config(kubeconfig, context)  # its errors are one line naming the flag
    except HeadroomError as err:
        fail(str(err), EXIT_INPUT)
    except Exception as err:  # noqa: BLE001 - the client's config errors have no common base
        fail(f"--kubeconfig: cannot load a Kubernetes configuration: {err}", EXIT_INPUT)
    return Kube(api), namespace or context_namespace(kubeconfig, context)
