"""What a guard sees and should do for each fault alarm, from the station's catalog.

Kept here in one place, so that the console, notifications and the docs say
the same thing; the texts are msgids (English) of the gettext catalog, German
in `locales/de` (controller/guard/i18n.py). `{label}` is the office's label
(or its id), `{office}` its id.
"""

from __future__ import annotations

from typing import Any

from controller.guard.i18n import LANGUAGES, N_, translator

FAULT_TEXTS: dict[str, tuple[str, str]] = {
    # fault: (title, what to do)
    "offline": (
        N_("Controller offline"),
        N_("The panic button of {label} does not work: the controller is disconnected. "
           "Send someone to check and tell the staff in the room; check the controller's "
           "power and network.")),
    "stale": (
        N_("Controller not responding"),
        N_("The panic button of {label} probably does not work: the controller has "
           "stopped reporting (hung). Send someone to check; have the controller "
           "restarted if it does not come back by itself.")),
    "missing": (
        N_("Controller never reported"),
        N_("{label} is in the roster but its controller has never reported since the "
           "guard station started: there is no working panic button there. Have the "
           "installation and network checked.")),
    "panic_line": (
        N_("Panic line fault"),
        N_("The wire to the panic button of {label} is cut or faulty: a new press "
           "cannot be detected there. Send someone now; call a technician.")),
    "door_forced": (
        N_("Door forced"),
        N_("The door of {label} was opened without a release. Check by camera or in "
           "person whether someone forced their way in; if in doubt, act as for a "
           "panic alarm.")),
    "door_held_open": (
        N_("Door held open"),
        N_("The door of {label} has been open longer than allowed. Have it checked "
           "and closed.")),
    "storage": (
        N_("Controller storage fault"),
        N_("The controller of {label} cannot store events safely (SD card): an alarm "
           "could be lost in a power cut. Call a technician to replace the card.")),
    "events_missing": (
        N_("Events missing"),
        N_("Events from {label} are missing and were not delivered again: one of them "
           "could be an alarm. Check with the office that all is well; have the "
           "network and broker checked.")),
    "notify": (
        N_("Notification failed"),
        N_("The guard station could not deliver an escalation notification (mail, "
           "messenger, SMS): the on-call team is not told about unacknowledged "
           "alarms. Call the on-call team; call the administrator.")),
    "broker": (
        N_("Guard station without broker"),
        N_("The guard station has lost its connection to the MQTT broker: new alarms "
           "cannot arrive. Call the administrator now; until then keep the offices "
           "reachable by phone.")),
}
FAULTS = tuple(FAULT_TEXTS)

KIND_TEXTS: dict[str, str] = {
    "panic": N_("Panic alarm"),
    "drill": N_("Drill alarm"),
    "fault": N_("Technical fault"),
}
STATION_LABEL = N_("Guard station {id}")


def kind_text(kind: str, language: str) -> str:
    """The alarm kind in words (`panic`, `drill`, `fault`)."""
    return str(translator(language).ugettext(KIND_TEXTS.get(kind, KIND_TEXTS["panic"])))


def station_label(guard_id: str, language: str) -> str:
    """The label of the guard station itself, for its own faults (`notify`, `broker`)."""
    return str(translator(language).ugettext(STATION_LABEL)).format(id=guard_id)


def fault_text(fault: str, location: dict[str, Any], office: str,
               language: str = "de") -> tuple[str, str]:
    """(title, what to do) for one fault, filled in for the office."""
    texts = FAULT_TEXTS.get(fault)
    if texts is None:
        return (fault, "")
    tr = translator(language)
    label = str(location.get("label") or office)
    return (str(tr.ugettext(texts[0])),
            str(tr.ugettext(texts[1])).format(label=label, office=office))


def describe(alarm: dict[str, Any]) -> dict[str, Any]:
    """`title` and `what_to_do` in every language, for the API (fault alarms only)."""
    fault = alarm.get("fault")
    if alarm.get("kind") != "fault" or not fault:
        return {}
    out: dict[str, dict[str, str]] = {"title": {}, "what_to_do": {}}
    for lang in LANGUAGES:
        title, todo = fault_text(fault, alarm.get("location") or {}, alarm["office"], lang)
        out["title"][lang], out["what_to_do"][lang] = title, todo
    return out
