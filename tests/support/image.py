"""The operator image (``Containerfile``) for the image e2e test and ``make playground``.

``build_image()`` runs ``.ci/build-image`` (what ``make image`` runs: a cached Debian base
from mmdebstrap, podman's layer cache, ``dist/headroom-<version>.oci.tar``) and returns
the image reference. ``operator_argv()`` is ``podman run`` of that image as the chart runs
it: non-root, read-only root filesystem with a writable ``/tmp``, no capabilities, the
kubeconfig mounted read-only. These machines need runc, cgroupfs and explicit ulimits
(podman's default crun and ulimits are refused), and the host network reaches the API
emulator and the redis pods on loopback.
"""

from __future__ import annotations

import shutil
import subprocess
import tomllib
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
PODMAN = ("podman", "--runtime", "runc", "--cgroup-manager=cgroupfs")
RUN_LIMITS = ("--network=host", "--ulimit", "nofile=4096:4096", "--ulimit", "nproc=4096:4096")
KUBECONFIG_IN_IMAGE = "/etc/headroom/kubeconfig"


def version() -> str:
    with (REPO_ROOT / "pyproject.toml").open("rb") as f:
        return str(tomllib.load(f)["project"]["version"])


def image_ref() -> str:
    return f"localhost/headroom:{version()}"


def have_podman() -> bool:
    return shutil.which("podman") is not None


def image_built() -> bool:
    """Whether ``make image`` has built this version's image on this machine."""
    if not have_podman():
        return False
    done = subprocess.run(
        ["podman", "image", "exists", image_ref()], capture_output=True, timeout=60
    )
    return done.returncode == 0


def build_image(timeout: float = 1800.0) -> str:
    """Build (or reuse, when nothing changed) the image; its reference. Raises
    ``RuntimeError`` with the build's output when it fails."""
    done = subprocess.run(
        [str(REPO_ROOT / ".ci" / "build-image")],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if done.returncode != 0:
        raise RuntimeError(f"make image failed ({done.returncode}):\n{done.stdout}{done.stderr}")
    return image_ref()


def run_argv(name: str, *args: str, mounts: dict[Path, str] | None = None) -> list[str]:
    """``podman run`` of the image, named ``name``, with ``args`` after the entrypoint."""
    volumes = [f"--volume={src}:{dst}:ro" for src, dst in (mounts or {}).items()]
    return [
        *PODMAN, "run", "--rm", f"--name={name}", *RUN_LIMITS,
        "--read-only", "--read-only-tmpfs=false", "--tmpfs=/tmp:rw,size=64m",
        "--cap-drop=all", "--security-opt=no-new-privileges", *volumes,
        image_ref(), *args,
    ]  # fmt: skip


def operator_argv(name: str, kubeconfig: Path, *args: str) -> list[str]:
    """``headroom operator run`` in the image, acting with ``kubeconfig`` (mounted
    read-only), its other arguments ``args``."""
    return run_argv(
        name,
        "operator", "run", "--kubeconfig", KUBECONFIG_IN_IMAGE, *args,
        mounts={kubeconfig.resolve(): KUBECONFIG_IN_IMAGE},
    )  # fmt: skip


def remove_container(name: str) -> None:
    """Stop and remove the container ``name`` if it is still there (podman's client may
    have been killed while its container went on)."""
    subprocess.run(
        [*PODMAN, "rm", "--force", "--time=2", "--ignore", name],
        capture_output=True,
        timeout=60,
    )
