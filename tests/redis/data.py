"""Test data for resharder tests: load keys of several types, verify them all, a live client."""

from __future__ import annotations

import hashlib
import random
import threading
import time
from dataclasses import dataclass, field

import redis

from tests.support.redis_cluster import RedisTestCluster

BIG = 4 << 20  # bytes per big key


def cluster_client(cluster: RedisTestCluster) -> redis.RedisCluster:
    node = cluster.nodes[0]
    return redis.RedisCluster(host=node.host, port=node.port, socket_timeout=10)


def load(cluster: RedisTestCluster, keys: int, big: int = 0, hashes: int = 0) -> None:
    """``keys`` strings k:i=v:i, ``hashes`` hashes h:i, ``big`` strings big:i of BIG bytes."""
    rc = cluster_client(cluster)
    pipe = rc.pipeline()
    for i in range(keys):
        pipe.set(f"k:{i}", f"v:{i}")
        if i % 5000 == 4999:
            pipe.execute()
            pipe = rc.pipeline()
    for i in range(hashes):
        pipe.hset(f"h:{i}", mapping={"a": str(i), "b": "x" * 50})
    pipe.execute()
    for i in range(big):
        rc.set(f"big:{i}", _big_value(i))
    rc.close()


def _big_value(i: int) -> bytes:
    return bytes([65 + i % 26]) * BIG


def verify(cluster: RedisTestCluster, keys: int, big: int = 0, hashes: int = 0) -> list[str]:
    """Names of missing or wrong keys (empty when every key is intact)."""
    rc = cluster_client(cluster)
    bad: list[str] = []
    names = [f"k:{i}" for i in range(keys)]
    for start in range(0, keys, 5000):
        chunk = names[start : start + 5000]
        values = rc.mget_nonatomic(chunk)
        bad += [k for k, v in zip(chunk, values, strict=True) if v != f"v:{k[2:]}".encode()]
    for i in range(hashes):
        if rc.hget(f"h:{i}", "a") != str(i).encode():
            bad.append(f"h:{i}")
    for i in range(big):
        if rc.get(f"big:{i}") != _big_value(i):
            bad.append(f"big:{i}")
    rc.close()
    return bad


def total_keys(cluster: RedisTestCluster) -> int:
    total = 0
    for n in cluster.nodes:
        c = n.client()
        try:
            if c.info("replication")["role"] == "master":
                total += int(c.dbsize())
        except redis.ConnectionError:
            continue
    return total


def digest(cluster: RedisTestCluster, keys: int) -> str:
    rc = cluster_client(cluster)
    h = hashlib.sha256()
    names = [f"k:{i}" for i in range(keys)]
    for start in range(0, keys, 5000):
        for v in rc.mget_nonatomic(names[start : start + 5000]):
            h.update(v or b"<nil>")
    rc.close()
    return h.hexdigest()


@dataclass
class LiveClient:
    """A cluster-aware client reading and writing in a thread while slots move."""

    cluster: RedisTestCluster
    preloaded: int
    errors: list[str] = field(default_factory=list)
    written: dict[str, int] = field(default_factory=dict)
    ops: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> LiveClient:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        assert self._thread is not None
        self._thread.join(30)

    def _run(self) -> None:
        rc = cluster_client(self.cluster)
        rnd = random.Random(7)
        i = 0
        while not self._stop.is_set():
            try:
                key = f"live:{i}"
                rc.set(key, i)
                self.written[key] = i
                j = rnd.randrange(self.preloaded)
                if rc.get(f"k:{j}") != f"v:{j}".encode():
                    self.errors.append(f"k:{j} wrong during migration")
                back = rc.get(f"live:{rnd.randrange(i + 1)}")
                if back is None:
                    self.errors.append("a written key read back as nil")
                self.ops += 1
            except redis.RedisError as err:
                self.errors.append(repr(err))
            except Exception as err:  # noqa: BLE001 - e.g. redis-py issue 4015 AttributeError
                self.errors.append(repr(err))
            i += 1
            time.sleep(0.001)
        rc.close()

    def lost_writes(self) -> list[str]:
        rc = cluster_client(self.cluster)
        lost = [k for k, v in self.written.items() if rc.get(k) != str(v).encode()]
        rc.close()
        return lost
