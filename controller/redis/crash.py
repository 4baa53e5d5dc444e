"""Test hooks for crash-safety tests: the resharder SIGKILLs its own process at a chosen
step, as ``kill -9`` of a leader would, so tests can check what a crash there leaves.

Off unless asked for: ``headroom redis`` reads them from the environment
(``cli/redis.py``) and hands them to :class:`~headroom.controller.redis.resharder.Resharder`,
which passes them to each :class:`~headroom.controller.redis.migrate.PairMigrator`.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)

# Called after each step of a chunk's hand-over: "target", "source", then "other" per
# other master told (see ``PairMigrator.hand_over``).
HandOverHook = Callable[[str], None]


def crash_at(when: tuple[str, int] | None) -> HandOverHook | None:
    """SIGKILL this process right after the n-th hand-over step named ``step``
    (``when`` = (step, n)), counted over every pair of the run."""
    if when is None:
        return None
    step, n = when
    seen: list[str] = []
    lock = threading.Lock()

    def hook(done: str) -> None:
        with lock:
            seen.append(done)
            if seen.count(step) == n:
                log.warning("Killing myself at hand-over step=%s n=%d", step, n)
                os.kill(os.getpid(), signal.SIGKILL)

    return hook
