"""The real kubectl drives the real operator: apply, get, scale, describe.

``kubectl apply -f`` the rendered chart's CRDs and the sample RedisCluster, the
operator (with the chart's RBAC) forms it, ``kubectl get`` shows the printer
columns, ``kubectl scale --replicas 6`` resizes it through /scale, and
``kubectl describe`` shows the Events the operator posted.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from headroom.cli.main import app
from tests.operator.support import NS, OperatorEnv, wait_for
from tests.support.chart import EXAMPLES_DIR, of_kind, render_chart
from tests.support.kubectl import KUBECTL_POLL, Kubectl, have_kubectl, make_kubectl, table

pytestmark = [
    pytest.mark.k8s,
    pytest.mark.redis,
    pytest.mark.slow,
    pytest.mark.skipif(not have_kubectl(), reason="needs kubectl (.ci/install-system-deps all)"),
]


def _columns(kubectl: Kubectl) -> list[str]:
    rows = table(kubectl("get", "redisclusters", "-n", NS).stdout)
    assert rows[0] == ["NAME", "MASTERS", "READY", "PHASE", "AGE"]
    return rows[1][:4]


def test_kubectl_applies_gets_scales_and_describes_with_the_operator(
    env: OperatorEnv, tmp_path: Path
) -> None:
    kubectl = make_kubectl(env.kube.kubeconfig(tmp_path / "admin", tls=True), tmp_path)
    crds = tmp_path / "crds.yaml"
    crds.write_text(yaml.safe_dump_all(of_kind(render_chart(), "CustomResourceDefinition")))
    assert "redisclusters.headroom.dev" in kubectl("apply", "-f", str(crds)).stdout
    env.start_operator("op-a")
    sample = EXAMPLES_DIR / "rediscluster-cart.yaml"
    out = kubectl("apply", "-n", NS, "-f", str(sample)).stdout.strip()
    assert out == "rediscluster.headroom.dev/cart created"
    wait_for(
        lambda: _columns(kubectl) == ["cart", "3", "3", "Ready"],
        120,
        "cart 3/3 Ready",
        KUBECTL_POLL,
    )

    done = kubectl("scale", "rediscluster/cart", "--replicas", "6", "-n", NS).stdout.strip()
    assert done == "rediscluster.headroom.dev/cart scaled"
    wait_for(
        lambda: _columns(kubectl) == ["cart", "6", "6", "Ready"],
        240,
        "cart 6/6 Ready",
        KUBECTL_POLL,
    )
    assert len(env.pods("cart").nodes) == 12

    # headroom status reads the same status the printer columns show.
    result = CliRunner().invoke(
        app, ["status", "-n", NS, "--kubeconfig", str(env.kubeconfig), "--json"]
    )
    assert result.exit_code == 0, result.output
    (rc,) = json.loads(result.stdout)["redisClusters"]
    assert (rc["name"], rc["masters"], rc["readyMasters"], rc["phase"]) == ("cart", 6, 6, "Ready")
    assert sum(rc["slotsPerMaster"]) == 16384 and rc["migration"] is None
    table_out = CliRunner().invoke(app, ["status", "-n", NS, "--kubeconfig", str(env.kubeconfig)])
    assert table_out.exit_code == 0 and "headroom/cart" in table_out.stdout
    print(table_out.stdout)

    described = kubectl("describe", "rediscluster", "cart", "-n", NS).stdout
    assert re.search(r"^\s+Masters:\s+6$", described, re.M)
    events = described[described.index("Events:") :]
    assert re.search(r"Normal\s+ScalingStarted\s+.*masters 3->6", events), events
    assert re.search(r"Normal\s+Scaled\s+.*masters 3->6, slots balanced", events), events
