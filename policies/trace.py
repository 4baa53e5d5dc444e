"""Parsing of history/trace CSV text (``timestamp,qps``) into a :class:`Series`.

Pure: callers read the file (``headroom.controller.signals.csv``, the CLI) and pass
the text in. Timestamps are ISO-8601 with an offset (``2026-06-18T20:00:00+08:00``)
or epoch seconds (epoch *milliseconds*, as Grafana and many exporters write them, are
recognised by their size: no epoch-seconds time before the year 5138 reaches 1e11);
naive ISO times are refused because their zone is unknowable. Empty values are gaps
(NaN), never zeros. A UTF-8 byte-order mark (spreadsheet exports) is ignored.
"""

from __future__ import annotations

import csv
import io
import math
from datetime import datetime

import numpy as np

from headroom.policies.bounds import LATEST
from headroom.policies.errors import REQUIRED, TraceError, excerpt, field_error, must_be
from headroom.policies.series import Series
from headroom.policies.validation import decode_text

TIME_COLUMNS = ("timestamp", "time", "ts")
MILLISECONDS_FROM = 1e11  # epoch numbers from here on are milliseconds (year 5138 in seconds)
VALUE_COLUMNS = ("qps", "value", "requests")


TIMESTAMP_HINT = "an ISO-8601 time with an offset or epoch seconds"


def parse_timestamp(raw: str, where: str, column: str = "timestamp") -> float:
    """Epoch seconds from ISO-8601-with-offset or a number of epoch seconds (or of epoch
    milliseconds: see the module docstring); errors name ``where`` and ``column``."""
    text = raw.strip()
    try:
        number = float(text)
    except ValueError:
        pass
    else:
        if not math.isfinite(number):
            raise TraceError(field_error(where, column, must_be("a finite number", text)))
        if number >= MILLISECONDS_FROM:
            number /= 1000.0
        if not 0.0 <= number <= LATEST:
            raise TraceError(
                field_error(where, column, must_be("in 1970..9999 (epoch s or ms)", text))
            )
        return number
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as err:
        raise TraceError(field_error(where, column, must_be(TIMESTAMP_HINT, text))) from err
    if when.tzinfo is None or when.utcoffset() is None:
        raise TraceError(
            field_error(where, column, must_be("an ISO-8601 time with an offset", text))
        )
    return when.timestamp()


VALUE_UNITS = ("per-second", "per-minute")
COUNT_COLUMNS = ("requests",)  # counts per row, not rates


def value_unit(column: str, values: str | None) -> str:
    """How a value column is read: ``per-second`` (a rate: ``qps``, ``value``),
    ``per-minute`` (counts per minute), or ``per-row`` (counts in each row's interval,
    the default for a ``requests`` column); ``values`` overrides the column's default."""
    if values is not None:
        if values not in VALUE_UNITS:
            raise TraceError(f"--values: {values!r} is not one of {', '.join(VALUE_UNITS)}")
        return values
    return "per-row" if column in COUNT_COLUMNS else "per-second"


def trace_value_column(text: str) -> str | None:
    """The value column :func:`parse_trace_csv` would read (None without a usable header)."""
    first = text.removeprefix("\ufeff").partition("\n")[0]
    header = [h.strip().lower() for h in next(csv.reader([first]), [])]
    return next((c for c in VALUE_COLUMNS if c in header), None)


def parse_trace_csv(
    text: str | bytes,
    source: str = "trace.csv",
    value_column: str | None = None,
    unit: str | None = None,
    *,
    quote: bool = True,
) -> Series:
    """Parse CSV text with a ``timestamp`` column and a ``qps`` (or ``value``, or
    ``requests``) column into QPS.

    The unit is explicit (:func:`value_unit`): ``qps``/``value`` are per second; a
    ``requests`` column holds counts per row, divided by the rows' median spacing (per-
    minute counts on 1-minute rows: /60); ``unit`` (``per-second``/``per-minute``, the
    CLI's ``--values``) overrides. Rows are sorted by time; duplicate timestamps are
    refused, blank values become gaps.

    ``quote=False`` (the operator, whose errors reach a CapacityPolicy's status and
    Events) keeps every piece of the file out of the messages: they name the line and
    the column only, so a file that is not a trace cannot be read back through them.
    """
    # newline=None: a lone "\r" ends a line too (old Mac exports), as csv expects.
    reader = csv.reader(io.StringIO(decode_text(text, source, TraceError), newline=None))
    try:
        rows = list(reader)
    except csv.Error as err:
        why = f" ({err})" if quote else ""
        raise TraceError(f"{source}: line {reader.line_num}: is not valid CSV{why}") from None
    if not rows:
        raise TraceError(f"{source}: is empty (expected the header timestamp,qps)")
    header = [h.strip().lower() for h in rows[0]]
    t_col = next((header.index(c) for c in TIME_COLUMNS if c in header), None)
    wanted = (value_column,) if value_column else VALUE_COLUMNS
    v_col = next((header.index(c) for c in wanted if c in header), None)
    if t_col is None or v_col is None:
        shown = f" {excerpt(','.join(header))}" if quote else " (line 1)"
        raise TraceError(f"{source}: header{shown} needs columns timestamp and qps")
    times: list[float] = []
    values: list[float] = []
    for lineno, row in enumerate(rows[1:], start=2):
        if not row or all(not cell.strip() for cell in row):
            continue
        where = f"{source}: line {lineno}"
        if len(row) <= max(t_col, v_col):
            missing = header[max(t_col, v_col)]
            raise TraceError(field_error(where, missing, REQUIRED))
        try:
            times.append(parse_timestamp(row[t_col], where, header[t_col]))
        except TraceError:
            if quote:
                raise
            hidden = _must(TIMESTAMP_HINT, None)
            raise TraceError(field_error(where, header[t_col], hidden)) from None
        raw = row[v_col].strip()
        if not raw:
            values.append(math.nan)
            continue
        quoted = raw if quote else None
        try:
            value = float(raw)
        except ValueError:
            raise TraceError(field_error(where, header[v_col], _must("a number", quoted))) from None
        if value < 0 or math.isinf(value):
            raise TraceError(field_error(where, header[v_col], _must("finite and >= 0", quoted)))
        values.append(value)
    if not times:
        raise TraceError(f"{source}: no data rows")
    t = np.asarray(times, dtype=np.float64)
    v = np.asarray(values, dtype=np.float64)
    order = np.argsort(t, kind="stable")
    t, v = t[order], v[order]
    dup = np.nonzero(np.diff(t) == 0)[0]
    if dup.size:
        raise TraceError(f"{source}: timestamp: {t[dup[0]]:.0f} is given twice")
    unit = value_unit(header[v_col], unit)
    if unit == "per-minute":
        v = v / 60.0
    elif unit == "per-row":
        if t.size < 2:
            raise TraceError(
                f"{source}: column {header[v_col]!r} holds counts per row; one row has no "
                "interval (say --values per-minute or per-second)"
            )
        v = v / float(np.median(np.diff(t)))
    return Series(t, v)


def _must(expected: str, value: str | None) -> str:
    """``must be X, not 'v'``, or just ``must be X`` when the value is not to be shown."""
    return must_be(expected, value) if value is not None else f"must be {expected}"


def format_trace_csv(series: Series) -> str:
    """The inverse of :func:`parse_trace_csv` with epoch-second timestamps."""
    lines = ["timestamp,qps"]
    for t, v in zip(series.t, series.v, strict=True):
        lines.append(f"{t:.0f}," + ("" if math.isnan(v) else f"{v:.6g}"))
    return "\n".join(lines) + "\n"
