"""Options and connection shared by the commands that talk to a cluster
(``headroom calendar import``, ``headroom surge``, ``headroom status``, and ``forecast``
and ``plan --from-cluster``): ``--kubeconfig``, ``--context`` and ``-n/--namespace`` as
kubectl reads them, declared once (:data:`cluster_command`) and connected through
:meth:`Cluster.connect`."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from headroom.cli._common import EXIT_INPUT, Option, fail, with_options
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
AllNamespacesOpt = Annotated[
    bool, typer.Option("--all-namespaces", "-A", help="Every namespace.", show_default=False)
]
NamespaceOpt = Annotated[
    str | None,
    typer.Option(
        "--namespace", "-n", help="Namespace (default: the context's).", show_default=False
    ),
]


@dataclass(frozen=True)
class Cluster:
    """The connection options a command was given. It connects only when the command has
    checked its own input, so a bad flag is reported without touching a cluster."""

    kubeconfig: Path | None
    context: str | None
    namespace: str | None

    @contextmanager
    def connect(self) -> Iterator[tuple[Kube, str]]:
        """A :class:`~headroom.controller.kube.Kube` and the namespace to use (the
        context's unless ``--namespace`` says), closed when the block ends."""
        kube, ns = connect(self.kubeconfig, self.context, self.namespace)
        try:
            yield kube, ns
        finally:
            kube.close()


CLUSTER_OPTIONS: list[Option] = [
    ("namespace", NamespaceOpt, None), ("kubeconfig", KubeconfigOpt, None),
    ("context", ContextOpt, None),
]  # fmt: skip


def cluster_of(values: dict[str, Any]) -> Cluster:
    return Cluster(values["kubeconfig"], values["context"], values["namespace"])


# A command that talks to a cluster: body(cluster, **its own options), then the options.
cluster_command = with_options(after=CLUSTER_OPTIONS, takes=1, make=lambda v: (cluster_of(v),))


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
