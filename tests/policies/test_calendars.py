"""Calendar parsers: YAML, DemandEvent resources, ICS with RRULE/EXDATE, time zones, DST,
and one-line errors naming the file, the event and the field."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from headroom.controller.alerts.config import load_alerts_config
from headroom.policies.calendar import EventKind, Expectation
from headroom.policies.calendars import (
    event_from_resource,
    event_to_resource,
    load_calendar,
    parse_time,
)
from headroom.policies.errors import CalendarError, PolicyError
from headroom.policies.policy import load_policy
from headroom.policies.trace import parse_trace_csv

SH = ZoneInfo("Asia/Shanghai")
NY = ZoneInfo("America/New_York")
EXAMPLES = Path(__file__).resolve().parents[2] / "policies" / "examples"


def local(epoch: float, tz: ZoneInfo) -> datetime:
    return datetime.fromtimestamp(epoch, tz=tz)


YAML = """
timezone: Asia/Shanghai
events:
  - name: Spring livestream
    kind: livestream
    start: 2025-03-20 20:00
    end: 2025-03-20T22:30:00
    ramp: 30m
    labels: {host: lin, channel: app, region: 1}
    expectation: {multiplier: 4}
    selector: {matchLabels: {app: cart}}
  - name: 618
    kind: promotion
    start: 2025-06-17T12:00:00Z
    end: 2025-06-18T16:00:00+00:00
    expectation: {peakQps: 1.2e6}
    appliesTo: {app: web}
  - name: New York launch
    start: 2025-03-09 20:00
    end: 2025-03-09 21:00
    timezone: America/New_York
"""


def test_yaml_calendar_fields_and_zones() -> None:
    cal = load_calendar(YAML, "cal.yaml")
    ny, spring, promo = cal.events  # sorted by start
    assert spring.name == "Spring livestream" and spring.kind is EventKind.LIVESTREAM
    assert local(spring.start, SH) == datetime(2025, 3, 20, 20, 0, tzinfo=SH)
    assert spring.end - spring.start == 2.5 * 3600
    assert spring.ramp == 1800 and spring.window_start == spring.start - 1800
    assert dict(spring.labels) == {"host": "lin", "channel": "app", "region": "1"}
    assert spring.expectation == Expectation(multiplier=4.0)
    assert dict(spring.selector) == {"app": "cart"} and spring.tz == "Asia/Shanghai"
    assert promo.kind is EventKind.PROMOTION and promo.expectation == Expectation(peak_qps=1.2e6)
    assert dict(promo.selector) == {"app": "web"}
    assert promo.start == datetime(2025, 6, 17, 12, tzinfo=ZoneInfo("UTC")).timestamp()
    # Event-level timezone wins over the file's; 9 March 2025 is the US DST switch day.
    assert local(ny.start, NY).hour == 20 and ny.tz == "America/New_York"
    assert ny.kind is EventKind.CUSTOM and ny.expectation is None


def test_demand_event_resources_use_the_same_parser() -> None:
    text = (EXAMPLES / "demand-events.yaml").read_text()
    cal = load_calendar(text, "demand-events.yaml")
    assert [e.name for e in cal.events] == ["Spring livestream", "flash-sale"]
    flash = cal.events[1]
    assert dict(flash.labels) == {"campaign": "flash"}  # from metadata.labels
    assert flash.kind is EventKind.PROMOTION
    # Round trip: an event exported as a resource reads back equal.
    spring = cal.events[0]
    again = event_from_resource(event_to_resource(spring, "spring"), "x")
    assert again == spring


ICS_NY = """BEGIN:VCALENDAR
VERSION:2.0
PRODID:-//headroom tests//EN
BEGIN:VEVENT
UID:weekly@test
SUMMARY:Weekly show
DTSTART;TZID=America/New_York:20250301T200000
DTEND;TZID=America/New_York:20250301T220000
RRULE:FREQ=WEEKLY;COUNT=5
EXDATE;TZID=America/New_York:20250315T200000
X-HEADROOM-KIND:livestream
X-HEADROOM-RAMP:15m
X-HEADROOM-LABELS:host=ann,channel=tv
DESCRIPTION:Our weekly show.\\nmultiplier: 2.5\\nselector: app=web\\nkind: promotion
END:VEVENT
END:VCALENDAR
"""


def _window(a: str, b: str) -> tuple[float, float]:
    return parse_time(a), parse_time(b)


def test_ics_rrule_exdate_and_dst_keep_local_time() -> None:
    cal = load_calendar(ICS_NY, "show.ics", window=_window("2025-01-01", "2026-01-01"))
    starts = [local(e.start, NY) for e in cal.events]
    # Five weekly occurrences minus the EXDATE on 15 March.
    assert [d.day for d in starts] == [1, 8, 22, 29]
    # 20:00 local before and after the DST switch on 9 March: the UTC hour moves.
    assert all(d.hour == 20 for d in starts)
    assert [d.strftime("%z") for d in starts] == ["-0500", "-0500", "-0400", "-0400"]
    first = cal.events[0]
    assert first.kind is EventKind.LIVESTREAM  # X- property wins over DESCRIPTION
    assert first.ramp == 900 and first.expectation == Expectation(multiplier=2.5)
    assert dict(first.labels) == {"host": "ann", "channel": "tv"}
    assert dict(first.selector) == {"app": "web"}
    assert first.tz == "America/New_York" and first.end - first.start == 7200


def test_ics_window_limits_expansion() -> None:
    cal = load_calendar(ICS_NY, "show.ics", window=_window("2025-03-05", "2025-03-25"))
    assert [local(e.start, NY).day for e in cal.events] == [8, 22]


def test_a_byte_order_mark_is_ignored_in_yaml_and_ics() -> None:
    window = _window("2025-01-01", "2026-01-01")
    for text, name in ((YAML, "cal.yaml"), (ICS_NY, "show.ics")):
        plain = load_calendar(text.encode(), name, window=window)
        marked = load_calendar(b"\xef\xbb\xbf" + text.encode(), name, window=window)
        assert marked.events == plain.events and len(plain.events) >= 3
        assert load_calendar("\ufeff" + text, name, window=window).events == plain.events


def test_example_weekly_livestream_in_shanghai() -> None:
    data = (EXAMPLES / "weekly-livestream.ics").read_bytes()
    cal = load_calendar(data, "weekly.ics", window=_window("2025-03-01", "2025-04-30"))
    fridays = [e for e in cal.events if e.name == "Friday night live"]
    days = [local(e.start, SH).strftime("%m-%d %H:%M") for e in fridays]
    assert days == [
        "03-07 20:00", "03-14 20:00", "03-21 20:00", "03-28 20:00",
        "04-11 20:00", "04-18 20:00", "04-25 20:00",
    ]  # fmt: skip
    assert fridays[0].expectation == Expectation(multiplier=3.0)


def test_example_files_all_parse() -> None:
    for path in EXAMPLES.iterdir():
        if "policy" in path.name:
            assert load_policy(path.read_bytes(), path.name).targets
        elif path.suffix == ".csv":
            assert len(parse_trace_csv(path.read_bytes(), path.name)) > 1000
        elif path.name == "alerts.yaml":
            assert load_alerts_config(path).sinks
        else:
            assert len(load_calendar(path.read_bytes(), path.name, now=parse_time("2025-06-01")))
    promos = load_calendar((EXAMPLES / "livestream-calendar.yaml").read_text(), "c.yaml")
    names = {e.name for e in promos.events}
    assert {"618 Promotion", "Singles' Day"} <= names


def test_floating_ics_time_takes_x_wr_timezone() -> None:
    body = ICS_NY.replace(";TZID=America/New_York", "")
    with pytest.raises(CalendarError) as err:
        load_calendar(body, "f.ics", window=_window("2025-01-01", "2026-01-01"))
    assert str(err.value).startswith('f.ics: event "Weekly show": DTSTART: floating time')
    body = body.replace("VERSION:2.0", "VERSION:2.0\nX-WR-TIMEZONE:Asia/Shanghai")
    cal = load_calendar(body, "f.ics", window=_window("2025-01-01", "2026-01-01"))
    assert local(cal.events[0].start, SH).hour == 20


BAD_YAML = [
    (
        "events:\n  - name: Spring sale\n    start: 2025-03-01T20:00:00+08:00\n"
        "    end: 2025-03-01T19:00:00+08:00\n",
        'cal.yaml: event "Spring sale": end is before start',
    ),
    (
        "events:\n  - name: Spring sale\n    start: 2025-03-01 20:00\n    end: 2025-03-01 21:00\n",
        "cal.yaml: event \"Spring sale\": start: '2025-03-01 20:00' has no time zone",
    ),
    (
        "events:\n  - name: A\n    kind: Flash Sale!\n    start: 1\n    end: 2\n",
        "cal.yaml: event \"A\": kind: 'Flash Sale!' is not a kind name",
    ),
    (
        "events:\n  - name: A\n    start: 1\n    end: 2\n    expectation: {multiplier: -2}\n",
        'cal.yaml: event "A": expectation.multiplier: must be > 0, not -2',
    ),
    (
        "events:\n  - name: A\n    start: 1\n    end: 2\n    ramp: soon\n",
        'cal.yaml: event "A": ramp: must be a duration (seconds, or e.g. 90s, 10m, 2h), '
        "not 'soon'",
    ),
    ("events:\n  - name: A\n    start: 1\n", 'cal.yaml: event "A": end: is required'),
    ("events:\n  - start: 1\n    end: 2\n", "cal.yaml: event #1: name: is required"),
    (
        "events:\n  - name: A\n    start: 1\n    end: 2\n    colour: red\n",
        'cal.yaml: event "A": colour: is not a known field',
    ),
    (
        "timezone: Mars/Olympus\nevents:\n  - name: A\n    start: 2025-01-01 10:00\n"
        "    end: 2025-01-01 11:00\n",
        "cal.yaml: timezone: must be a time zone name like Asia/Shanghai, not 'Mars/Olympus'",
    ),
    (
        "events:\n  - name: A\n    start: tomorrow\n    end: 2\n",
        "cal.yaml: event \"A\": start: must be an ISO-8601 time, not 'tomorrow'",
    ),
    ("events:\n  - name: A\n   start: 1\n", "cal.yaml: line 3: "),
]


@pytest.mark.parametrize(("text", "message"), BAD_YAML)
def test_bad_yaml_is_one_line_naming_event_and_field(text: str, message: str) -> None:
    with pytest.raises(CalendarError) as err:
        load_calendar(text, "cal.yaml")
    assert str(err.value).startswith(message), str(err.value)
    assert "\n" not in str(err.value)


def test_bad_ics_properties() -> None:
    bad = ICS_NY.replace("X-HEADROOM-LABELS:host=ann,channel=tv", "X-HEADROOM-LABELS:host")
    with pytest.raises(CalendarError, match=r"^x\.ics: event \"Weekly show\": labels: 'host'"):
        load_calendar(bad, "x.ics", window=_window("2025-01-01", "2026-01-01"))
    bad = ICS_NY.replace("X-HEADROOM-KIND:livestream", "X-HEADROOM-KIND:big party")
    with pytest.raises(CalendarError, match=r'^x\.ics: event "Weekly show": kind: '):
        load_calendar(bad, "x.ics", window=_window("2025-01-01", "2026-01-01"))
    with pytest.raises(CalendarError, match=r"^x\.ics: not a valid iCalendar file"):
        load_calendar("BEGIN:VCALENDAR\nnonsense", "x.ics")


def test_policy_yaml_errors_are_one_line() -> None:
    with pytest.raises(PolicyError, match=r"^p\.yaml: line 3: "):
        load_policy("targets:\n  - name: a\n   x: 1\n", "p.yaml")
    with pytest.raises(PolicyError) as err:
        load_policy("targets:\n  - name: cart\n    capacityPerUnit: 0\n", "p.yaml")
    assert str(err.value) == ("p.yaml: targets[0:cart].capacityPerUnit: must be > 0, not 0")
    freeze = (
        "targets: [{name: a, capacityPerUnit: 1}]\nfreezeWindows:\n"
        "  - {start: '2025-01-02T00:00:00+08:00', end: '2025-01-01T00:00:00+08:00'}\n"
    )
    with pytest.raises(PolicyError, match=r"^p\.yaml: freezeWindows\[0\]: end .* is not after"):
        load_policy(freeze, "p.yaml")
    with pytest.raises(
        PolicyError, match=r"freezeWindows\[0\]\.end: must be an ISO-8601 time with an"
    ):
        load_policy(freeze.replace("+08:00'}", "'}"), "p.yaml")


def test_redis_sizes_take_kubernetes_style_quantities() -> None:
    text = (
        "targets:\n  - name: cart\n    kind: RedisCluster\n    capacityPerUnit: 1\n"
        "    provisioning: {dataBytes: %s, reshardBytesPerSecond: %s}\n"
    )
    sizes = load_policy(text % ("50Gi", "100Mi/s"), "p.yaml").targets[0].provisioning
    assert sizes.data_bytes == 50 * 2**30 and sizes.reshard_bytes_per_second == 100 * 2**20
    decimal = load_policy(text % ("1.5GB", "2e6"), "p.yaml").targets[0].provisioning
    assert decimal.data_bytes == 1.5e9 and decimal.reshard_bytes_per_second == 2e6
    with pytest.raises(PolicyError) as err:
        load_policy(text % ("lots", "1"), "p.yaml")
    assert str(err.value) == (
        "p.yaml: targets[0:cart].provisioning.dataBytes: must be a size (bytes, or e.g. 50Gi, "
        "100Mi, 2G), not 'lots'"
    )


def test_kind_accepts_any_name_and_kinds_still_group_learning() -> None:
    text = (
        "events:\n"
        "  - {name: Sale 1, kind: Flash-Sale, start: '2025-03-01T20:00:00+08:00',"
        " end: '2025-03-01T21:00:00+08:00'}\n"
        "  - {name: Gig, kind: concert, start: '2025-03-02T20:00:00+08:00',"
        " end: '2025-03-02T21:00:00+08:00'}\n"
        "  - {name: Show, kind: livestream, start: '2025-03-03T20:00:00+08:00',"
        " end: '2025-03-03T21:00:00+08:00'}\n"
    )
    sale, gig, show = load_calendar(text, "cal.yaml").events
    assert sale.kind == "flash-sale" and gig.kind == "concert"
    assert show.kind is EventKind.LIVESTREAM
    assert sale.similarity_key()[0] != gig.similarity_key()[0]
