"""ClusterScaler on real local clusters: scale out and in with a live client, replicas."""

from __future__ import annotations

import threading

import pytest
import redis

from headroom.controller.provisioning.local import LocalProvisioner
from headroom.policies.errors import InputError
from tests.local.conftest import (
    LocalFactory,
    cluster_client,
    load_keys,
    missing_keys,
    pid_alive,
)

pytestmark = [pytest.mark.redis, pytest.mark.slow]


class LiveClient(threading.Thread):
    """A cluster-aware client that keeps writing and reading back its own keys."""

    def __init__(self, provisioner: LocalProvisioner) -> None:
        super().__init__(daemon=True)
        self.provisioner = provisioner
        self.client = cluster_client(provisioner)
        self.issue_4015 = 0
        self.stop = threading.Event()
        self.errors: list[str] = []
        self.written: dict[str, str] = {}

    def run(self) -> None:
        i = 0
        while not self.stop.is_set():
            key, value = f"live:{i}", f"w{i}"
            try:
                self.client.set(key, value)
                self.written[key] = value
                if self.client.get(key) != value:
                    self.errors.append(f"read back wrong value for {key}")
            except redis.RedisError as err:
                self.errors.append(f"{key}: {err!r}")
            except AttributeError:
                # redis-py issue 4015: an ASK to a master the client has not seen yet.
                # The resharder gives new masters an empty slot first, which makes this
                # rare but cannot make it impossible for a client that never touches
                # that slot; an application would rebuild its client, so do that.
                self.issue_4015 += 1
                self.client.close()
                self.client = cluster_client(self.provisioner)
            i += 1

    def finish(self) -> None:
        self.stop.set()
        self.join(30)


def serving(provisioner: LocalProvisioner) -> dict[str, int]:
    """node id -> slots, for every master that owns slots, read from every node."""
    out: dict[str, int] = {}
    for node in provisioner.list_nodes():
        client = redis.Redis(
            host=node.addr.host,
            port=node.addr.port,
            decode_responses=True,
            password=provisioner.auth.password,
        )
        for line in client.execute_command("CLUSTER", "NODES").splitlines():
            parts = line.split()
            if "master" in parts[2] and len(parts) > 8:
                out[parts[0]] = sum(
                    int(r.split("-")[1]) - int(r.split("-")[0]) + 1 if "-" in r else 1
                    for r in parts[8:]
                    if not r.startswith("[")
                )
        client.close()
    return out


def test_scale_3_to_5_to_2_keeps_every_key_while_a_client_reads_and_writes(
    local_factory: LocalFactory,
) -> None:
    provisioner, scaler = local_factory(masters=3)
    client = cluster_client(provisioner)
    values = load_keys(client, 20_000)
    live = LiveClient(provisioner)
    live.start()
    try:
        report = scaler.scale_masters(5)
        assert (report.masters_before, report.masters_after) == (3, 5)
        assert len(report.added) == 2 and report.removed == ()
        assert sum(r.slots_moved for r in report.reshards) > 0
        status = scaler.status()
        assert status.healthy and status.slots_covered == 16384
        assert sorted(n.slots for n in status.nodes) == [3276, 3277, 3277, 3277, 3277]
        assert missing_keys(provisioner, values) == []

        before = {p.info.name: p for p in provisioner.processes()}
        report = scaler.scale_masters(2)
        assert (report.masters_before, report.masters_after) == (5, 2)
        # The newest masters leave first.
        assert sorted(report.removed) == ["node2", "node3", "node4"]
        status = scaler.status()
        assert status.healthy and status.slots_covered == 16384
        assert sorted(n.slots for n in status.nodes) == [8192, 8192]
        assert missing_keys(provisioner, values) == []
    finally:
        live.finish()

    assert live.errors == []
    # The mitigation (each new master first gets an empty slot alone) makes issue 4015
    # rare, not impossible: an ASK to a new master can still reach a client that never
    # touched that slot. Each rebuild reads the whole topology, new masters included, so
    # a correct mitigation leaves at most one rebuild per master added (two here; scale-in
    # adds no master a client could not know); tests/redis/data.py, whose client never
    # rebuilds, counts any as a failure.
    added = 2
    assert live.issue_4015 <= added, f"{live.issue_4015} rebuilds for {added} new masters"
    assert len(live.written) > 100
    assert missing_keys(provisioner, live.written) == []
    client.close()
    for name in report.removed:
        pid = before[name].pid
        assert pid is not None and not pid_alive(pid)
    gone = {before[name].info.node_id for name in report.removed}
    remaining = serving(provisioner)
    assert len(remaining) == 2 and not gone & set(remaining)
    for node in provisioner.list_nodes():
        c = redis.Redis(
            host=node.addr.host,
            port=node.addr.port,
            decode_responses=True,
            password=provisioner.auth.password,
        )
        known = {line.split()[0] for line in c.execute_command("CLUSTER", "NODES").splitlines()}
        assert not gone & known, f"{node.addr} still knows a drained node"
        c.close()


def test_replicas_per_master_are_kept_through_scale_out_and_in(
    local_factory: LocalFactory,
) -> None:
    provisioner, scaler = local_factory(masters=2, replicas=1)

    def shape() -> tuple[int, list[int]]:
        status = scaler.status()
        assert status.healthy
        masters = [n for n in status.nodes if n.role == "master"]
        per_master = [
            sum(1 for r in status.nodes if r.role == "replica" and r.master_id == m.node_id)
            for m in masters
        ]
        assert len(status.nodes) == len(provisioner.list_nodes())  # no spare left behind
        return len(masters), per_master

    assert shape() == (2, [1, 1])
    client = cluster_client(provisioner)
    values = load_keys(client, 5_000)
    scaler.scale_masters(3)
    assert shape() == (3, [1, 1, 1])
    scaler.scale_masters(2, replicas=0)
    assert shape() == (2, [0, 0])
    assert len(provisioner.list_nodes()) == 2
    assert missing_keys(provisioner, values) == []
    client.close()


def test_masters_below_one_is_refused_before_anything_changes(
    local_factory: LocalFactory,
) -> None:
    provisioner, scaler = local_factory(masters=1)
    with pytest.raises(InputError, match="masters must be at least 1"):
        scaler.scale_masters(0)
    assert len(provisioner.list_nodes()) == 1
    assert scaler.status().healthy
