"""YAML calendars and DemandEvent custom resources -> :class:`Calendar`.

Accepted shapes (called by ``load_calendar``, ``headroom calendar`` and the operator,
which reads DemandEvent objects with :func:`event_from_resource`):

- a mapping with ``events:`` (a list of event mappings) and an optional file-level
  ``timezone:`` for naive times;
- a list of events, or of DemandEvent objects;
- one or more DemandEvent objects (``---`` separated), or a ``kind: List`` of them.

Times are ISO-8601 with an offset, or naive plus ``timezone:`` (file or event level,
an IANA name such as ``Asia/Shanghai``); timestamps are never guessed by YAML.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from headroom.policies.calendar import MAX_EVENTS_PER_CALENDAR, Calendar, DemandEvent
from headroom.policies.calendars._event import build_event, event_to_fields
from headroom.policies.errors import UNKNOWN_FIELD, CalendarError, excerpt, field_error, must_be
from headroom.policies.text import zone
from headroom.policies.validation import CALENDAR, document_kind, load_yaml_documents

API_VERSION = "headroom.dev/v1alpha1"
KIND = "DemandEvent"


def _is_resource(doc: Any) -> bool:
    return isinstance(doc, dict) and doc.get("kind") == KIND and "spec" in doc


def event_from_resource(obj: dict[str, Any], source: str, index: int = 0) -> DemandEvent:
    """A DemandEvent custom resource (apiVersion headroom.dev/v1alpha1) as an event."""
    spec = obj.get("spec")
    meta = obj.get("metadata") or {}
    name = meta.get("name") if isinstance(meta, dict) else None
    if not isinstance(spec, dict):
        raise CalendarError(f'{source}: DemandEvent "{name or index + 1}": spec: is required')
    fields = dict(spec)
    if "name" not in fields and isinstance(name, str):
        fields["name"] = name
    if "labels" not in fields and isinstance(meta, dict) and isinstance(meta.get("labels"), dict):
        fields["labels"] = meta["labels"]
    return build_event(fields, source=source, index=index)


def event_to_resource(
    event: DemandEvent,
    name: str,
    namespace: str | None = None,
    labels: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The DemandEvent custom resource for an event (``headroom calendar export``, the
    import's objects), with ``labels`` on its metadata."""
    meta: dict[str, Any] = {"name": name}
    if namespace:
        meta["namespace"] = namespace
    if labels is not None:
        meta["labels"] = dict(labels)
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": meta,
        "spec": event_to_fields(event),
    }


def parse_yaml_calendar(text: str | bytes, source: str) -> Calendar:
    """Every event in a YAML calendar; a bad field is one ``CalendarError`` line."""
    docs = load_yaml_documents(text, source, CalendarError)
    if not docs:
        # Almost always a mistake (an empty calendar is written ``events: []``).
        raise CalendarError(f"{source}: is empty (a calendar needs events:, even events: [])")
    items: list[Any] = []
    file_tz: str | None = None
    for doc in docs:
        if (kind := document_kind(doc)) not in (None, CALENDAR):
            raise CalendarError(f"{source}: is {kind}, not a calendar")
        if isinstance(doc, dict) and "events" in doc:
            extra = sorted(set(doc) - {"events", "timezone", "name", "description"}, key=str)
            if extra:
                raise CalendarError(field_error(source, excerpt(extra[0]), UNKNOWN_FIELD))
            tz = doc.get("timezone")
            if tz is not None:
                try:
                    zone(tz)
                except ValueError as err:
                    raise CalendarError(field_error(source, "timezone", str(err))) from None
            file_tz = tz
            if not isinstance(doc["events"], list):
                raise CalendarError(
                    field_error(source, "events", must_be("a list of events", doc["events"]))
                )
            items.extend(doc["events"])
        elif isinstance(doc, dict) and doc.get("kind") in ("List", f"{KIND}List"):
            items.extend(doc.get("items") or [])
        elif isinstance(doc, list):
            items.extend(doc)
        elif isinstance(doc, dict):
            items.append(doc)
        else:
            raise CalendarError(f"{source}: expected 'events:', a list of events or DemandEvents")
    if len(items) > MAX_EVENTS_PER_CALENDAR:
        raise CalendarError(
            f"{source}: has {len(items):,} events, more than {MAX_EVENTS_PER_CALENDAR:,}"
        )
    events = [
        event_from_resource(item, source, i)
        if _is_resource(item)
        else build_event(item, source=source, index=i, default_tz=file_tz)
        for i, item in enumerate(items)
    ]
    return Calendar.of(events)
