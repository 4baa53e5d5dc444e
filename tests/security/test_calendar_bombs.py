"""Calendars cannot exhaust memory or time (issue 21, item 9): each bomb the review used
runs ``headroom calendar validate`` in a subprocess under a 1 GiB address-space cap
(``resource.setrlimit``) and a wall-clock budget, and must end in seconds with a one-line
error naming the problem -- never a MemoryError, a traceback or a kill."""

from __future__ import annotations

import resource
import subprocess
import sys
import time
from pathlib import Path

import pytest

from headroom.controller.files import CALENDAR_MAX_BYTES

HEADROOM = str(Path(sys.executable).with_name("headroom"))
MEMORY_CAP = 1024 * 1024 * 1024  # the issue saw 1.43 to 4.1 GiB


def _cap_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_CAP, MEMORY_CAP))


def _validate(path: Path, budget: float = 60.0) -> tuple[int, str, float]:
    started = time.monotonic()
    done = subprocess.run(
        [HEADROOM, "calendar", "validate", str(path)],
        capture_output=True,
        text=True,
        timeout=budget,
        preexec_fn=_cap_memory,  # noqa: PLW1509 - no threads in the parent at this point
    )
    return done.returncode, done.stderr, time.monotonic() - started


def _ics(rule: str, start: str = "20260101T000000Z") -> str:
    return (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//t//EN\r\n"
        f"BEGIN:VEVENT\r\nUID:bomb@t\r\nSUMMARY:Bomb\r\nDTSTART:{start}\r\n"
        f"DURATION:PT1S\r\nRRULE:{rule}\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
    )


BILLION_LAUGHS = """\
a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]
events: [*i]
"""


@pytest.mark.parametrize(
    ("name", "content", "error"),
    [
        ("minutely.ics", _ics("FREQ=MINUTELY"), 'event "Bomb": RRULE: FREQ=MINUTELY repeats about'),
        ("secondly.ics", _ics("FREQ=SECONDLY"), 'event "Bomb": RRULE: FREQ=SECONDLY repeats about'),
        (
            "since-1970.ics",
            _ics("FREQ=HOURLY;BYMINUTE=0,10,20,30,40,50", start="19700101T000000Z"),
            'event "Bomb": RRULE: FREQ=HOURLY repeats about',
        ),
        ("count.ics", _ics("FREQ=SECONDLY;COUNT=1000000"), 'event "Bomb": RRULE: FREQ=SECONDLY'),
        ("hourly.ics", _ics("FREQ=HOURLY"), 'event "Bomb": repeats more than 5,000 times'),
        ("laughs.yaml", BILLION_LAUGHS, "line 1: YAML anchors and aliases (&name, *name) are"),
    ],
)
def test_a_calendar_bomb_is_one_line_in_seconds_under_a_memory_cap(
    tmp_path: Path, name: str, content: str, error: str
) -> None:
    path = tmp_path / name
    path.write_text(content)
    code, stderr, seconds = _validate(path)
    assert code == 2, stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {path}: "), stderr
    assert error in lines[0], lines[0]
    assert seconds < 20, seconds  # the review's took 70 s to forever


def test_an_oversized_calendar_is_refused_unread(tmp_path: Path) -> None:
    path = tmp_path / "huge.yaml"
    with path.open("w") as f:  # 200 MB of real events in the review; here just over the cap
        line = '  - {name: "Sale", start: "2026-01-01T00:00:00Z", end: "2026-01-01T01:00:00Z"}\n'
        f.write("events:\n")
        f.write(line * (CALENDAR_MAX_BYTES // len(line) + 1))
    code, stderr, seconds = _validate(path)
    assert code == 2
    assert stderr.strip() == f"error: {path}: is 4.0 MiB, over the 4 MiB limit of a calendar"
    assert seconds < 30
