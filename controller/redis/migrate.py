"""Moves slots between two masters with the standard protocol, many slots per round trip.

Called by the resharder (one :class:`PairMigrator` per busy source->target pair,
at most one pair per node at a time) and by the repair code (to finish a
half-done migration). For a chunk of slots of one pair:

1. ``CLUSTER SETSLOT s IMPORTING src`` on the target, then ``MIGRATING tgt`` on
   the source (target first, as redis-cli does: a crash in between leaves only
   an importing flag and no key anywhere but the source);
2. fast path: one short ``EVAL`` per slot on the source (``MOVE_SLOT_SCRIPT``:
   ``GETKEYSINSLOT``, ``MEMORY USAGE`` per key, ``MIGRATE ... KEYS`` of the small
   keys in byte-sized batches), a few slots per round trip; big keys come back
   by name and move alone from here with a longer timeout. Key names never
   cross to Python, which made the client the bottleneck (~30k keys/s before,
   ~110k after on 2 cores). Any slot whose script fails (scripts denied by
   ACL, cluster down, a MIGRATE timeout) goes to the key-by-key path:
   ``GETKEYSINSLOT`` + ``MEMORY USAGE`` pipelined, ``MIGRATE`` batches with
   adaptive sizes and timeouts; repeat until every slot is empty on the source;
3. ``COUNTKEYSINSLOT`` must be 0 on the source for a slot before any
   ``SETSLOT NODE`` is sent for it (a failed MIGRATE must never hand a slot
   over with keys left behind); then ``SETSLOT NODE`` on the target, the
   source, and every other master.

MIGRATE cannot mix slots in one command (CROSSSLOT), so slots stay separate
commands but share round trips; Redis also saves nodes.conf once per event
loop pass, so pipelined SETSLOTs cost one config write instead of hundreds.

BUSYKEY: while a slot is MIGRATING on the source and IMPORTING on the target,
clients are served from the source for every key the source still holds
(ASK only happens for keys the source lacks). A key present on both sides is
therefore stale on the target: a copy restored by an earlier MIGRATE whose
reply was lost (timeout, crash). Overwriting it with REPLACE keeps the
authoritative copy, so REPLACE is used, but only on that BUSYKEY retry and only
while this pair's own IMPORTING/MIGRATING flags are set. Repairs of slots whose
state we cannot vouch for pass ``replace_on_busykey=False`` and stop instead.
"""

from __future__ import annotations

import logging
import os
import signal
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from headroom.controller.redis.connection import Client, as_text, cmd, ping, pipelined
from headroom.controller.redis.crash import HandOverHook
from headroom.policies.errors import (
    ClusterError,
    ClusterUnreachable,
    CommandRefused,
    MigrationError,
)

log = logging.getLogger(__name__)

# The fast path, run on the source for one slot: GETKEYSINSLOT, MEMORY USAGE of
# each key, MIGRATE ... KEYS of the small ones in byte-sized batches. Big keys
# are only reported (name, size), to be moved alone from outside with a long
# timeout. Key names never cross to Python, which was the bottleneck (two
# commands per key through the client). Every call is short: at most
# ARGV[2] keys and one MIGRATE timeout (ARGV[7]) per batch, well inside the
# busy-script threshold. Returns {moved, bytes, error or "", keys seen, big}.
MOVE_SLOT_SCRIPT = """
local slot, want = tonumber(ARGV[1]), tonumber(ARGV[2])
local big_bytes, batch_bytes = tonumber(ARGV[3]), tonumber(ARGV[4])
local head = {'MIGRATE', ARGV[5], ARGV[6], '', '0', ARGV[7]}
if ARGV[8] == '1' then head[#head + 1] = 'REPLACE' end
if ARGV[9] == 'AUTH' then
  head[#head + 1] = 'AUTH'; head[#head + 1] = ARGV[11]
elseif ARGV[9] == 'AUTH2' then
  head[#head + 1] = 'AUTH2'; head[#head + 1] = ARGV[10]; head[#head + 1] = ARGV[11]
end
head[#head + 1] = 'KEYS'
local keys = redis.call('CLUSTER', 'GETKEYSINSLOT', slot, want)
local moved, nbytes, big = 0, 0, {}
local batch, bb = {}, 0
local function flush()
  if #batch == 0 then return '' end
  local c = {}
  for i = 1, #head do c[i] = head[i] end
  for i = 1, #batch do c[#head + i] = batch[i] end
  local r = redis.pcall(unpack(c))
  if type(r) == 'table' and r.err then return r.err end
  moved = moved + #batch; nbytes = nbytes + bb; batch = {}; bb = 0
  return ''
end
for _, k in ipairs(keys) do
  local size = redis.call('MEMORY', 'USAGE', k) or 0
  if size >= big_bytes then
    big[#big + 1] = k; big[#big + 1] = size
  else
    if #batch > 0 and bb + size > batch_bytes then
      local e = flush()
      if e ~= '' then return {moved, nbytes, e, #keys, big} end
    end
    batch[#batch + 1] = k; bb = bb + size
  end
end
local e = flush()
return {moved, nbytes, e, #keys, big}
"""


@dataclass(frozen=True)
class MigrateOptions:
    """Batch sizes and timeouts; batches shrink on timeouts and grow back on success."""

    batch_keys: int = 1000  # keys per GETKEYSINSLOT and at most per MIGRATE
    batch_bytes: int = 4 << 20
    min_batch_bytes: int = 64 << 10
    big_key_bytes: int = 1 << 20  # such keys move alone, with big_timeout_ms
    timeout_ms: int = 10_000
    big_timeout_ms: int = 30_000
    max_timeout_ms: int = 60_000  # the source's client must wait longer than this
    chunk_slots: int = 128  # slots opened together per pair
    chunk_keys: int = 20_000  # ... or fewer, when they hold many keys
    retries: int = 6  # other MIGRATE errors (CLUSTERDOWN, TRYAGAIN) before giving up
    server_side: bool = True  # size and MIGRATE small keys in a script on the source
    # MIGRATE timeout inside the script: a loopback/LAN batch takes milliseconds, and an
    # IOERR only moves the slot to the key-by-key path, which has the adaptive timeouts.
    script_timeout_ms: int = 1_000
    # Scripts per round trip: a silent target costs each queued script one timeout
    # before we can notice, so this bounds that wait (script_slots * script_timeout_ms).
    script_slots: int = 8
    # New masters are introduced to clients before the bulk move (see the resharder).
    intro_slots: int = 128  # per new master
    intro_chunk_slots: int = 4
    intro_wait_s: float = 10.0  # at most, for application clients to learn new masters
    ping_timeout_s: float = 5.0  # how long a node may stay silent when we check it is alive
    username: str | None = None
    password: str | None = field(default=None, repr=False)  # never printed


@dataclass(frozen=True)
class Endpoint:
    """A master and a client connected to it."""

    id: str
    host: str
    port: int
    client: Client

    @property
    def name(self) -> str:
        return f"{self.id[:8]} ({self.host}:{self.port})"


ProgressFn = Callable[[int, int, int, str], None]  # slots done, keys, bytes, current
CrashHook = Callable[[int], bool]  # keys moved so far -> die now (tests only)


@dataclass
class _SlotState:
    timeout_ms: int
    batch_bytes: int
    replace: bool = False
    failures: int = 0


_NOT_RUN = CommandRefused("not run: an earlier script in the round timed out")


def _timed_out(res: Any) -> bool:
    """A script reply (or error) saying MIGRATE hit its timeout or an I/O error."""
    if isinstance(res, list) and len(res) > 2 and res[2]:
        text = as_text(res[2])
    elif isinstance(res, Exception) and res is not _NOT_RUN:
        text = str(res)
    else:
        return False
    return text.upper().startswith("IOERR") or "timeout" in text.lower()


def _is(err: BaseException, code: str) -> bool:
    """Whether a MIGRATE error carries ``code``, also when relayed from the target
    (Redis 7.0: ``ERR Target instance replied with error: BUSYKEY ...``)."""
    text = str(err).upper()
    return text.startswith(code) or f"REPLIED WITH ERROR: {code}" in text


def _unreachable(ep: Endpoint, slots: Sequence[int], err: BaseException) -> MigrationError:
    first = f"slot {slots[0]}" if len(slots) == 1 else f"slots {min(slots)}..{max(slots)}"
    return MigrationError(
        f"node {ep.name} stopped answering while moving {first} ({err.__class__.__name__}); "
        "the cluster is left repairable: run `headroom redis fix`"
    )


@dataclass
class PairMigrator:
    """Moves chunks of slots from ``source`` to ``target``; not thread-safe, one per worker."""

    source: Endpoint
    target: Endpoint
    others: Sequence[Endpoint]
    options: MigrateOptions = field(default_factory=MigrateOptions)
    progress: ProgressFn | None = None
    crash_hook: CrashHook | None = None
    silent: set[str] = field(default_factory=set)  # shared by a run's migrators
    handover_hook: HandOverHook | None = None
    keys_moved: int = 0
    bytes_moved: int = 0
    _batch_bytes: int = 0
    _no_script: bool = False

    def __post_init__(self) -> None:
        self._batch_bytes = self.options.batch_bytes

    # -- the whole protocol for one chunk -------------------------------------------------
    def move(self, slots: Sequence[int]) -> None:
        """Open, empty and hand over ``slots``; raises MigrationError leaving them repairable."""
        src, tgt = self.source, self.target
        self._pipeline(tgt, slots, [("CLUSTER", "SETSLOT", s, "IMPORTING", src.id) for s in slots])
        self._pipeline(src, slots, [("CLUSTER", "SETSLOT", s, "MIGRATING", tgt.id) for s in slots])
        self.move_keys(slots, replace_on_busykey=True)
        self.hand_over(slots)

    def move_keys(self, slots: Sequence[int], *, replace_on_busykey: bool) -> None:
        """Empty ``slots`` on the source; both migration flags must already be set."""
        opts = self.options
        state = {s: _SlotState(opts.timeout_ms, self._batch_bytes) for s in slots}
        pending = list(slots)
        if opts.server_side and not self._no_script:
            pending = self._move_keys_scripted(pending, state, replace_on_busykey)
        while pending:
            found = self._pipeline(
                self.source, pending,
                [("CLUSTER", "GETKEYSINSLOT", s, opts.batch_keys) for s in pending],
            )  # fmt: skip
            keyed = {s: list(keys) for s, keys in zip(pending, found, strict=True) if keys}
            if not keyed:
                return
            pending = list(keyed)
            all_keys = [k for keys in keyed.values() for k in keys]
            sizes_raw = self._pipeline(
                self.source, pending, [("MEMORY", "USAGE", k) for k in all_keys]
            )
            sizes = {k: int(v or 0) for k, v in zip(all_keys, sizes_raw, strict=True)}
            small: list[tuple[int, list[str], int]] = []
            big: list[tuple[int, list[str], int]] = []
            for s, keys in keyed.items():
                for batch, nbytes in self._batches(keys, sizes, state[s].batch_bytes):
                    is_big = len(batch) == 1 and nbytes >= opts.big_key_bytes
                    (big if is_big else small).append((s, batch, nbytes))
            if self.crash_hook is not None and self.crash_hook(self.keys_moved):
                self._crash_mid_slot(small + big, state)
            cmds = [
                self._migrate_args(b, state[s].timeout_ms, state[s].replace) for s, b, _ in small
            ]
            results: list[Any] = self._pipeline(self.source, pending, cmds, raise_errors=False)
            for (s, batch, nbytes), res in zip(small, results, strict=True):
                self._account(s, batch, nbytes, res, state[s], replace_on_busykey)
            for s, batch, nbytes in big:
                timeout = max(state[s].timeout_ms, opts.big_timeout_ms)
                res = self._call(
                    self.source, [s], self._migrate_args(batch, timeout, state[s].replace)
                )
                self._account(s, batch, nbytes, res, state[s], replace_on_busykey)

    def _move_keys_scripted(
        self, slots: Sequence[int], state: dict[int, _SlotState], replace_ok: bool
    ) -> list[int]:
        """The fast path; returns the slots left for the key-by-key path (errors, crash hook)."""
        opts = self.options
        auth: tuple[str, str, str] = ("", "", "")
        if opts.password is not None:
            auth = ("AUTH2", opts.username, opts.password) if opts.username else (
                "AUTH", "", opts.password,
            )  # fmt: skip
        pending = list(slots)
        classic: list[int] = []
        while pending:
            if self.crash_hook is not None and self.crash_hook(self.keys_moved):
                return classic + pending  # the key-by-key path crashes mid-slot
            cmds = [
                ("EVAL", MOVE_SLOT_SCRIPT, 0, s, opts.batch_keys, opts.big_key_bytes,
                 state[s].batch_bytes, self.target.host, self.target.port,
                 min(state[s].timeout_ms, opts.script_timeout_ms),
                 1 if state[s].replace else 0, *auth)
                for s in pending
            ]  # fmt: skip
            results: list[Any] = []
            for i in range(0, len(cmds), opts.script_slots):
                group = pending[i : i + opts.script_slots]
                got = self._pipeline(
                    self.source, group, cmds[i : i + opts.script_slots], raise_errors=False
                )
                results += got
                if any(_timed_out(r) for r in got):
                    results += [_NOT_RUN] * (len(cmds) - len(results))
                    break
            again: list[int] = []
            for s, res in zip(pending, results, strict=True):
                if res is _NOT_RUN:
                    again.append(s)
                    continue
                if isinstance(res, Exception):
                    # Scripts refused (ACL, a key that expired under us, ...): no harm done,
                    # the key-by-key path handles this slot and the rest of this pair.
                    log.warning("Fell back to key-by-key MIGRATE slot=%d error=%s", s, res)
                    self._no_script = True
                    classic.append(s)
                    continue
                moved, nbytes, err, seen, big = res
                if moved:
                    self._account(s, [""] * int(moved), int(nbytes), b"OK", state[s], replace_ok)
                if err:
                    failure = CommandRefused(as_text(err))
                    if _timed_out(res):
                        # The key-by-key path owns the adaptive timeouts and batch sizes.
                        self._ping_target([s])
                        classic.append(s)
                        continue
                    self._account(s, ["?"], 0, failure, state[s], replace_ok)
                    again.append(s)
                    continue
                for i in range(0, len(big), 2):
                    key, size = big[i], int(big[i + 1])
                    timeout = max(state[s].timeout_ms, opts.big_timeout_ms)
                    res1 = self._call(
                        self.source, [s], self._migrate_args([key], timeout, state[s].replace)
                    )
                    self._account(s, [key], size, res1, state[s], replace_ok)
                if int(seen) >= opts.batch_keys or big:
                    again.append(s)
            pending = again
        return classic

    def hand_over(self, slots: Sequence[int]) -> None:
        """SETSLOT NODE everywhere, but only for slots the source reports empty."""
        src, tgt = self.source, self.target
        counts = self._pipeline(src, slots, [("CLUSTER", "COUNTKEYSINSLOT", s) for s in slots])
        left = [s for s, c in zip(slots, counts, strict=True) if int(c) > 0]
        if left:  # a key we could not see yet (never expected): empty them again first
            self.move_keys(left, replace_on_busykey=True)
            return self.hand_over(slots)
        node_cmds = [("CLUSTER", "SETSLOT", s, "NODE", tgt.id) for s in slots]
        self._pipeline(tgt, slots, node_cmds)
        self._handed("target")
        self._pipeline(src, slots, node_cmds)
        self._handed("source")
        for other in self.others:
            # Others learn the new owner by gossip too; telling them only speeds that up.
            # One that does not answer in time (down, or busy with a long MIGRATE of its
            # own) is left to gossip for the rest of the run, not waited for per chunk.
            if other.id in self.silent:
                continue
            try:
                pipelined(other.client, node_cmds)
            except ClusterUnreachable as err:
                self.silent.add(other.id)
                log.warning("Left node to gossip node=%s error=%s", other.name, err)
            except ClusterError as err:
                log.warning("Skipped SETSLOT NODE on node=%s error=%s", other.name, err)
            self._handed("other")
        if self.progress is not None:
            self.progress(len(slots), 0, 0, f"{src.id[:8]}->{tgt.id[:8]} slot {slots[-1]}")
        return None

    # -- helpers --------------------------------------------------------------------------
    def _handed(self, step: str) -> None:
        if self.handover_hook is not None:
            self.handover_hook(step)

    def _batches(
        self, keys: list[str], sizes: dict[str, int], limit: int
    ) -> list[tuple[list[str], int]]:
        out: list[tuple[list[str], int]] = []
        batch: list[str] = []
        nbytes = 0
        for k in keys:
            size = sizes.get(k, 0)
            if size >= self.options.big_key_bytes:
                out.append(([k], size))
                continue
            if batch and (nbytes + size > limit or len(batch) >= self.options.batch_keys):
                out.append((batch, nbytes))
                batch, nbytes = [], 0
            batch.append(k)
            nbytes += size
        if batch:
            out.append((batch, nbytes))
        return out

    def _migrate_args(self, keys: list[str], timeout_ms: int, replace: bool) -> tuple[Any, ...]:
        args: list[Any] = ["MIGRATE", self.target.host, self.target.port, "", 0, timeout_ms]
        if replace:
            args.append("REPLACE")
        if self.options.password is not None:
            if self.options.username:
                args += ["AUTH2", self.options.username, self.options.password]
            else:
                args += ["AUTH", self.options.password]
        return (*args, "KEYS", *keys)

    def _account(
        self, slot: int, batch: list[str], nbytes: int, res: Any, st: _SlotState, replace_ok: bool
    ) -> None:
        opts = self.options
        if not isinstance(res, Exception):
            self.keys_moved += len(batch)
            self.bytes_moved += nbytes
            self._batch_bytes = min(opts.batch_bytes, self._batch_bytes * 2)
            if self.progress is not None:
                self.progress(
                    0, len(batch), nbytes, f"{self.source.id[:8]}->{self.target.id[:8]} slot {slot}"
                )
            return
        where = f"slot {slot} {self.source.name} -> {self.target.name}"
        if _is(res, "BUSYKEY"):
            if not replace_ok or st.replace:
                raise MigrationError(
                    f"{where}: key {batch[0]!r} already exists on the target with a copy we "
                    "cannot prove stale; left for inspection, nothing was overwritten"
                ) from res
            log.warning("Replaced stale target copies slot=%d keys=%d", slot, len(batch))
            st.replace = True
            return
        if _is(res, "IOERR") or "timeout" in str(res).lower():
            if st.timeout_ms >= opts.max_timeout_ms and st.batch_bytes <= opts.min_batch_bytes:
                raise MigrationError(
                    f"{where}: MIGRATE keeps timing out ({res}); run `headroom redis fix`"
                ) from res
            st.timeout_ms = min(opts.max_timeout_ms, st.timeout_ms * 2)
            st.batch_bytes = max(opts.min_batch_bytes, st.batch_bytes // 4)
            self._batch_bytes = max(opts.min_batch_bytes, self._batch_bytes // 2)
            log.warning(
                "Shrank MIGRATE batch slot=%d bytes=%d timeout_ms=%d",
                slot,
                st.batch_bytes,
                st.timeout_ms,
            )
            self._ping_target([slot])
            return
        st.failures += 1
        if st.failures > opts.retries:
            raise MigrationError(
                f"{where}: MIGRATE failed: {res}; run `headroom redis fix`"
            ) from res
        time.sleep(0.05 * 2**st.failures)

    def _ping_target(self, slots: Sequence[int]) -> None:
        """Fail fast with a clear error when the target went silent (not after minutes)."""
        try:
            ping(self.target.client, self.options.ping_timeout_s)
        except ClusterError as err:
            raise _unreachable(self.target, slots, err) from err

    def _crash_mid_slot(
        self, batches: list[tuple[int, list[str], int]], state: dict[int, _SlotState]
    ) -> None:
        """Test hook: move part of one slot, then die as ``kill -9`` would."""
        slot, keys, _ = max(batches, key=lambda b: len(b[1]))
        part = keys[: max(1, len(keys) // 2)]
        self._call(self.source, [slot], self._migrate_args(part, state[slot].timeout_ms, True))
        log.warning("Killing myself mid-slot slot=%d moved=%d of=%d", slot, len(part), len(keys))
        os.kill(os.getpid(), signal.SIGKILL)

    def _call(self, ep: Endpoint, slots: Sequence[int], args: Sequence[Any]) -> Any:
        try:
            return cmd(ep.client, *args)
        except CommandRefused as err:
            return err
        except ClusterUnreachable as err:
            raise _unreachable(ep, slots, err) from err

    def _pipeline(
        self,
        ep: Endpoint,
        slots: Sequence[int],
        cmds: Sequence[Sequence[Any]],
        *,
        raise_errors: bool = True,
    ) -> list[Any]:
        if not cmds:
            return []
        try:
            results = pipelined(ep.client, cmds)
        except ClusterUnreachable as err:
            raise _unreachable(ep, slots, err) from err
        if raise_errors:
            for cmd, res in zip(cmds, results, strict=True):
                if isinstance(res, Exception):
                    shown = " ".join(str(c) for c in cmd[:5])
                    raise MigrationError(
                        f"{ep.name} refused `{shown}`: {res}; run `headroom redis fix`"
                    ) from res
        return results
