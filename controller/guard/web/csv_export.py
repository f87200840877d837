"""CSV exports: safe cells, and a header row people can read when they ask for one.

Scripts get the field names of the JSON API as the header (stable whatever the
language); the console's "Export CSV" asks for `header=labels`, the column
names in the station's language, for the shift report in a spreadsheet. Cell
values (codes such as `outcome`) stay as they are in both.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from controller.guard.i18n import N_, _
from controller.guard.web.access import BadRequestError

ALARM_COLUMNS = {
    "alarm_id": N_("Alarm ID"), "kind": N_("Kind"), "fault": N_("Fault"),
    "office": N_("Office"), "label": N_("Label"), "site": N_("Site"),
    "building": N_("Building"), "floor": N_("Floor"), "room": N_("Room"),
    "raised_at": N_("Raised (UTC)"), "acknowledged_by": N_("Acknowledged by"),
    "acknowledged_at": N_("Acknowledged (UTC)"), "responders": N_("On the way"),
    "escalated_at": N_("Escalated (UTC)"), "escalation_level": N_("Escalation level"),
    "cleared_at": N_("Condition cleared (UTC)"), "count": N_("Occurrences"),
    "presses": N_("Presses"), "outcome": N_("Outcome"), "note": N_("Note"),
    "resolved_by": N_("Resolved by"), "resolved_at": N_("Resolved (UTC)"),
    "closed_at": N_("Closed (UTC)"),
}
EVENT_COLUMNS = {
    "ts": N_("Time (UTC)"), "office": N_("Office"), "seq": N_("Sequence number"),
    "type": N_("Event"), "test": N_("Drill"), "alarm_id": N_("Alarm ID"), "by": N_("By"),
    "source": N_("Source"), "seconds": N_("Seconds"), "reason": N_("Reason"),
    "presses": N_("Presses"), "id": N_("Event ID"), "received_at": N_("Received (UTC)"),
}
HEADERS = ("fields", "labels")


def header_labels(request: Request, columns: dict[str, str]) -> dict[str, str] | None:
    """`header=labels` asks for the column names people read; the default is `fields`."""
    value = request.query_params.get("header", "fields")
    if value not in HEADERS:
        raise BadRequestError("header: " + _("must be one of {values}").format(
            values=", ".join(HEADERS)))
    return columns if value == "labels" else None


def csv_safe(value: Any) -> Any:
    """A cell a spreadsheet would run as a formula (or a DDE trick) gets a leading apostrophe."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r", "\n"):
        return "'" + value
    return value


def csv_response(rows: Iterable[dict[str, Any]], fields: Iterable[str], filename: str,
                 labels: dict[str, str] | None = None) -> Response:
    """The rows as a CSV download; `labels` (msgids per field) give a translated header."""
    fields = tuple(fields)
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow([_(labels[f]) for f in fields] if labels else fields)
    for row in rows:
        writer.writerow([csv_safe(row.get(f)) for f in fields])
    return Response(buf.getvalue(), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{filename}"'})
