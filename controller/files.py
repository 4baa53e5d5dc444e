"""Reading a user's file with a size bound: the one way Headroom opens an input file.

Every reader of a file a user names (a policy, a calendar, a trace CSV, the alerts config,
a secret file) calls :func:`read_bounded`: it refuses what is not a regular file (a
device such as ``/dev/zero``, a FIFO, a directory), refuses a file over its limit before
reading it, and reads at most ``limit + 1`` bytes, so a file that grows while it is read
cannot exhaust memory either. Errors are one line naming the path and the limit, never
the content.

The limits (bytes) are generous for real inputs and far below what would hurt the
operator (its chart memory limit is 512 MiB):

======================  ==========  ==============================================
what                    limit       a real one
======================  ==========  ==============================================
policy, alerts config   1 MiB       a few KiB
calendar (YAML / ICS)   4 MiB       a year of hourly events is ~1.5 MiB of YAML
trace / history CSV     64 MiB      a year of 1-minute samples is ~12 MiB
secret file             64 KiB      a token or a key
======================  ==========  ==============================================
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from headroom.policies.errors import InputError

KIB = 1024
MIB = 1024 * KIB

POLICY_MAX_BYTES = 1 * MIB
CALENDAR_MAX_BYTES = 4 * MIB
TRACE_MAX_BYTES = 64 * MIB
SECRET_MAX_BYTES = 64 * KIB


def size_text(n: int) -> str:
    """``n`` bytes for a message: ``4 MiB``, ``64 KiB``, ``812 bytes``."""
    if n >= MIB:
        return f"{n // MIB} MiB" if n % MIB == 0 else f"{n / MIB:.1f} MiB"
    if n >= KIB:
        return f"{n // KIB} KiB" if n % KIB == 0 else f"{n / KIB:.1f} KiB"
    return f"{n} bytes"


def read_bounded(
    path: Path | str,
    limit: int,
    error: type[InputError] = InputError,
    what: str = "file",
) -> bytes:
    """The bytes of the regular file ``path``, at most ``limit`` of them; otherwise an
    ``error`` naming ``path`` (and ``what`` it was meant to be) without quoting it."""
    name = str(path)
    try:
        fd = os.open(name, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0))
    except OSError as err:
        raise error(f"{name}: cannot read {what}: {err.strerror or type(err).__name__}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise error(f"{name}: is not a regular file (a {what} must be one)")
        if info.st_size > limit:
            raise error(
                f"{name}: is {size_text(info.st_size)}, over the {size_text(limit)} limit "
                f"of a {what}"
            )
        chunks: list[bytes] = []
        left = limit + 1
        while left > 0:
            chunk = os.read(fd, min(left, MIB))
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
    except OSError as err:
        raise error(f"{name}: cannot read {what}: {err.strerror or type(err).__name__}") from None
    finally:
        os.close(fd)
    data = b"".join(chunks)
    if len(data) > limit:
        raise error(f"{name}: grew over the {size_text(limit)} limit of a {what} while read")
    return data
