"""A cluster-aware client load that follows a demand curve, and proves no write was lost.

``headroom demo`` runs it against the local Redis Cluster while Headroom reshards:
it sends ``rate(now)`` operations per wall-clock second (reads of the loaded
dataset and writes of fresh keys) through redis-py's ``RedisCluster`` (which
follows MOVED/ASK; reached through the client boundary, ``redis/connection.py``),
counts client-visible errors, and remembers every acknowledged write so
:meth:`LoadGenerator.verify` can check each one is still there afterwards.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from headroom.controller.redis.connection import ClusterClient, pipelined, translated
from headroom.policies.errors import ClusterError

log = logging.getLogger("headroom.loadgen")

DATASET_PREFIX = "ds:"
WRITE_PREFIX = "w:"


@dataclass(frozen=True)
class LoadStats:
    ops: int
    reads: int
    writes_acked: int
    errors: int
    last_error: str
    rebuilds: int = 0  # fresh clients after redis-py issue 4015 (an ASK to an unseen node)
    dropped: int = 0  # ops owed while the client was stalled beyond ``max_backlog``, not sent


@dataclass(frozen=True)
class Verification:
    dataset_expected: int
    dataset_missing: int
    writes_expected: int
    writes_missing: int
    writes_wrong: int

    @property
    def keys_lost(self) -> int:
        return self.dataset_missing + self.writes_missing + self.writes_wrong


def load_dataset(
    client: ClusterClient,
    keys: int,
    value_bytes: int = 64,
    batch: int = 2000,
    progress: Callable[[int], None] | None = None,
) -> None:
    """Write ``keys`` dataset keys ``ds:<i>`` whose value encodes ``i`` (checkable later)."""
    pad = "x" * max(0, value_bytes - 12)
    for lo in range(0, keys, batch):
        ids = range(lo, min(keys, lo + batch))
        cmds = [("SET", f"{DATASET_PREFIX}{i}", f"{i}:{pad}") for i in ids]
        failed = next((r for r in pipelined(client, cmds) if isinstance(r, ClusterError)), None)
        if failed is not None:
            raise failed
        if progress:
            progress(min(keys, lo + batch))


class LoadGenerator:
    """Sends ``rate()`` ops per second from a background thread until stopped."""

    def __init__(
        self,
        client_factory: Callable[[], ClusterClient],
        rate: Callable[[], float],
        dataset_keys: int,
        write_share: float = 0.2,
        tick: float = 0.05,
        seed: int = 7,
        max_backlog: float = 0.5,
    ) -> None:
        """``max_backlog``: wall seconds of ops it still sends after a stall (a slow reply,
        a client rebuild); what it owed beyond that is dropped and counted, as a client
        with a bounded queue would. Catching up on seconds of owed ops in one pipeline would
        put a burst on Redis the demand curve never asked for."""
        self._max_backlog = max_backlog
        self._dropped = 0
        self._factory = client_factory
        self._rate = rate
        self._dataset_keys = dataset_keys
        self._write_share = write_share
        self._tick = tick
        self._rng = random.Random(seed)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._ops = self._reads = self._errors = self._rebuilds = 0
        self._last_error = ""
        self._next_write = 0
        self._acked: list[int] = []  # ids of writes the server acknowledged
        self._broken = False  # the client failed in a way it may not recover from

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="headroom-load", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=30)

    def stats(self) -> LoadStats:
        with self._lock:
            return LoadStats(
                self._ops,
                self._reads,
                len(self._acked),
                self._errors,
                self._last_error,
                self._rebuilds,
                self._dropped,
            )

    def _run(self) -> None:
        client = self._factory()
        owed = 0.0
        last = time.monotonic()
        try:
            while not self._stop.is_set():
                now = time.monotonic()
                rate = max(0.0, self._rate())
                owed += rate * (now - last)
                last = now
                cap = max(1.0, rate * self._max_backlog)
                if owed > cap:
                    with self._lock:
                        self._dropped += int(owed - cap)
                    owed -= int(owed - cap)
                count = int(owed)
                if count:
                    owed -= count
                    self._send(client, count)
                if self._broken:
                    client.close()
                    client = self._factory()
                    self._broken = False
                self._stop.wait(max(0.0, self._tick - (time.monotonic() - now)))
        finally:
            client.close()

    def _send(self, client: ClusterClient, count: int) -> None:
        cmds: list[tuple[Any, ...]] = []
        order: list[int | None] = []  # write id per queued command, None for a read
        for _ in range(count):
            if self._rng.random() < self._write_share:
                wid = self._next_write
                self._next_write += 1
                order.append(wid)
                cmds.append(("SET", f"{WRITE_PREFIX}{wid}", str(wid)))
            else:
                order.append(None)
                key = f"{DATASET_PREFIX}{self._rng.randrange(max(1, self._dataset_keys))}"
                cmds.append(("GET", key))
        try:
            results = pipelined(client, cmds)
        except (AttributeError, KeyError) as err:
            # redis-py's cluster client trips over an ASK to a node it has not seen yet
            # (redis-py issue 4015): nothing of the batch was acknowledged, so no
            # acknowledged write can be lost. An application rebuilds its client; count the
            # rebuild (the resharder's mitigation bounds it by the masters added), not an
            # error per command of the batch.
            with self._lock:
                self._rebuilds += 1
                self._last_error = f"{type(err).__name__}: {err}"
            self._broken = True
            return
        except ClusterError as err:
            with self._lock:
                self._errors += count
                self._last_error = f"{type(err).__name__}: {err}"
            self._broken = True
            return
        acked: list[int] = []
        errors = 0
        last_error = ""
        for result, write_id in zip(results, order, strict=True):
            if isinstance(result, Exception):
                errors += 1
                last_error = f"{type(result).__name__}: {result}"
            elif write_id is not None:
                acked.append(write_id)
        with self._lock:
            self._ops += count
            self._reads += order.count(None)
            self._errors += errors
            if last_error:
                self._last_error = last_error
            self._acked.extend(acked)

    def verify(self, client: ClusterClient, batch: int = 5000) -> Verification:
        """Check every dataset key and every acknowledged write is present and correct."""
        with self._lock:
            acked = list(self._acked)
        dataset_missing = 0
        for lo in range(0, self._dataset_keys, batch):
            ids = range(lo, min(self._dataset_keys, lo + batch))
            with translated():
                values = client.mget_nonatomic([f"{DATASET_PREFIX}{i}" for i in ids])
            dataset_missing += sum(
                1 for i, v in zip(ids, values, strict=True)
                if v is None or not _text(v).startswith(f"{i}:")
            )  # fmt: skip
        missing = wrong = 0
        for lo in range(0, len(acked), batch):
            ids_w = acked[lo : lo + batch]
            with translated():
                values = client.mget_nonatomic([f"{WRITE_PREFIX}{i}" for i in ids_w])
            for wid, v in zip(ids_w, values, strict=True):
                if v is None:
                    missing += 1
                elif _text(v) != str(wid):
                    wrong += 1
        return Verification(self._dataset_keys, dataset_missing, len(acked), missing, wrong)


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
