"""Runs a resharding's slot moves over source->target pairs on worker threads.

The resharder (``redis/resharder.py``) queues the slots of each pair; :func:`run_pairs`
hands out chunks so that up to min(#sources, #targets) pairs move at once (also when
several masters drain together) and a node is never in two migrations at the same
time. Each worker keeps one :class:`~headroom.controller.redis.migrate.PairMigrator`
per pair it served and closes its clients at the end.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Mapping

from headroom.controller.redis.migrate import MigrateOptions, PairMigrator
from headroom.policies.errors import HeadroomError, MigrationError


def run_pairs(
    queues: dict[tuple[str, str], deque[int]],
    keys: Mapping[int, int],
    migrator: Callable[[str, str], PairMigrator],
    opts: MigrateOptions,
    *,
    chunk_slots: int | None = None,
    parallel: bool = True,
) -> None:
    """Empty every queue: chunks of a pair's slots (at most ``chunk_slots`` slots or
    ``opts.chunk_keys`` keys) move on worker threads, min(#sources, #targets) of them
    (one with ``parallel`` off), and a node is never in two migrations at once. The
    first failure stops the run: a Headroom error as is, anything else as a
    :class:`MigrationError`."""
    cond = threading.Condition()
    busy: set[str] = set()
    failures: list[BaseException] = []
    per_chunk = chunk_slots or opts.chunk_slots

    def take() -> tuple[tuple[str, str], list[int]] | None:
        with cond:
            while True:
                if failures or not any(queues.values()):
                    return None
                free = [p for p, q in queues.items() if q and not busy & set(p)]
                if free:
                    pair = max(free, key=lambda p: len(queues[p]))
                    q = queues[pair]
                    chunk: list[int] = []
                    nkeys = 0
                    while q and len(chunk) < per_chunk and nkeys < opts.chunk_keys:
                        s = q.popleft()
                        chunk.append(s)
                        nkeys += keys.get(s, 0)
                    busy.update(pair)
                    return pair, chunk
                cond.wait(0.5)

    def worker() -> None:
        movers: dict[tuple[str, str], PairMigrator] = {}
        while (job := take()) is not None:
            pair, chunk = job
            try:
                if pair not in movers:
                    movers[pair] = migrator(*pair)
                movers[pair].move(chunk)
            except BaseException as err:  # noqa: BLE001 - reported by the caller
                with cond:
                    failures.append(err)
            finally:
                with cond:
                    busy.difference_update(pair)
                    cond.notify_all()
        for m in movers.values():
            m.source.client.close()
            m.target.client.close()

    sources = {s for s, _ in queues}
    targets = {t for _, t in queues}
    n = min(len(sources), len(targets)) if parallel else 1
    threads = [threading.Thread(target=worker, name=f"reshard-{i}") for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if failures:
        first = failures[0]
        if isinstance(first, HeadroomError):
            raise first
        raise MigrationError(f"migration stopped: {first}; run `headroom redis fix`") from first
