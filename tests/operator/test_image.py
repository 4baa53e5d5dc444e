"""The operator from its image, as a cluster would run it.

``make image``'s image (built here by ``.ci/build-image``: a cached Debian base, podman's
layer cache) runs ``headroom operator run`` under podman -- host network, the chart's
ServiceAccount kubeconfig mounted read-only, read-only root filesystem with only ``/tmp``
writable, non-root, no capabilities -- against the API emulator with the chart's RBAC and
the kubelet emulator's real redis pods. The real kubectl creates a RedisCluster and scales
it 3->4. No skip: when the image cannot be built or run, this fails.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.operator.support import NS, OperatorEnv, wait_for
from tests.support.chart import EXAMPLES_DIR
from tests.support.image import PODMAN, build_image
from tests.support.kubectl import KUBECTL_POLL, Kubectl, make_kubectl, table

pytestmark = [pytest.mark.k8s, pytest.mark.redis, pytest.mark.slow, pytest.mark.long]


def _columns(kubectl: Kubectl) -> list[str]:
    rows = table(kubectl("get", "redisclusters", "-n", NS).stdout)
    return rows[1][:4] if len(rows) > 1 else []


@pytest.mark.timeout(2400)  # a first build downloads the base packages and the wheels
def test_the_operator_image_forms_and_scales_a_rediscluster_with_kubectl(
    env: OperatorEnv, tmp_path: Path
) -> None:
    image = build_image()
    kubectl = make_kubectl(env.kube.kubeconfig(tmp_path / "admin", tls=True), tmp_path)
    op = env.start_operator("image-a", image=True)
    assert op.container is not None
    wait_for(lambda: env.holder() == "image-a", 120, "the image's operator to lead")
    user = subprocess.run(
        [*PODMAN, "inspect", "--format", "{{json .Config.User}} {{.ImageName}}", op.container],
        capture_output=True, text=True, timeout=60, check=True,
    ).stdout.split()  # fmt: skip
    assert user == [json.dumps("65532:65532"), image], user

    sample = EXAMPLES_DIR / "rediscluster-cart.yaml"
    created = kubectl("apply", "-n", NS, "-f", str(sample)).stdout.strip()
    assert created == "rediscluster.headroom.dev/cart created"
    wait_for(
        lambda: _columns(kubectl) == ["cart", "3", "3", "Ready"],
        180,
        "cart 3/3 Ready",
        KUBECTL_POLL,
    )
    scaled = kubectl("scale", "rediscluster/cart", "--replicas", "4", "-n", NS).stdout.strip()
    assert scaled == "rediscluster.headroom.dev/cart scaled"
    wait_for(
        lambda: _columns(kubectl) == ["cart", "4", "4", "Ready"],
        240,
        "cart 4/4 Ready",
        KUBECTL_POLL,
    )
    assert len(env.pods("cart").nodes) == 8
    slots = [row["slots"] for row in env.status("cart")["slotsPerMaster"]]
    assert len(slots) == 4 and sum(slots) == 16384, slots
    assert op.stop() == 0, op.text()[-3000:]
    assert "Traceback" not in op.text()
