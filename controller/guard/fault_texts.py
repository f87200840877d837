"""What a guard sees and should do for each fault alarm, in German (first) and English.

Kept here as data, in one place, so that the console, notifications and the
docs say the same thing, and the translation catalogs can be built from it.
`{label}` is the office's label (or its id), `{office}` its id.
"""

from __future__ import annotations

from typing import Any

LANGUAGES = ("de", "en")

FAULT_TEXTS: dict[str, dict[str, tuple[str, str]]] = {
    # fault: {language: (title, what to do)}
    "offline": {
        "de": ("Controller offline",
               "Der Panikknopf von {label} funktioniert nicht: Der Controller ist vom Netz "
               "getrennt. Jemanden zur Kontrolle schicken und die Mitarbeitenden im Raum "
               "informieren; Stromversorgung und Netzwerk des Controllers prüfen."),
        "en": ("Controller offline",
               "The panic button of {label} does not work: the controller is disconnected. "
               "Send someone to check and tell the staff in the room; check the controller's "
               "power and network."),
    },
    "stale": {
        "de": ("Controller antwortet nicht",
               "Der Panikknopf von {label} funktioniert vermutlich nicht: Der Controller "
               "meldet sich nicht mehr (hängt). Jemanden zur Kontrolle schicken; den "
               "Controller neu starten lassen, wenn er nicht von selbst wiederkommt."),
        "en": ("Controller not responding",
               "The panic button of {label} probably does not work: the controller has "
               "stopped reporting (hung). Send someone to check; have the controller "
               "restarted if it does not come back by itself."),
    },
    "missing": {
        "de": ("Controller nie gemeldet",
               "{label} steht im Verzeichnis, ihr Controller hat sich seit dem Start der "
               "Leitstelle nie gemeldet: Dort gibt es keinen funktionierenden Panikknopf. "
               "Installation und Netzwerk prüfen lassen."),
        "en": ("Controller never reported",
               "{label} is in the roster but its controller has never reported since the "
               "guard station started: there is no working panic button there. Have the "
               "installation and network checked."),
    },
    "panic_line": {
        "de": ("Störung der Paniklinie",
               "Die Leitung zum Panikknopf von {label} ist unterbrochen oder gestört: Ein "
               "neuer Druck kann dort nicht erkannt werden. Sofort jemanden hinschicken; "
               "Techniker rufen."),
        "en": ("Panic line fault",
               "The wire to the panic button of {label} is cut or faulty: a new press "
               "cannot be detected there. Send someone now; call a technician."),
    },
    "door_forced": {
        "de": ("Tür aufgebrochen",
               "Die Tür von {label} wurde ohne Freigabe geöffnet. Über Kamera oder vor "
               "Ort prüfen, ob jemand eingedrungen ist; im Zweifel wie bei einem "
               "Panikalarm handeln."),
        "en": ("Door forced",
               "The door of {label} was opened without a release. Check by camera or in "
               "person whether someone forced their way in; if in doubt, act as for a "
               "panic alarm."),
    },
    "door_held_open": {
        "de": ("Tür steht offen",
               "Die Tür von {label} steht länger offen als erlaubt. Prüfen lassen, warum, "
               "und die Tür schließen lassen."),
        "en": ("Door held open",
               "The door of {label} has been open longer than allowed. Have it checked "
               "and closed."),
    },
    "storage": {
        "de": ("Speicherfehler im Controller",
               "Der Controller von {label} kann Ereignisse nicht sicher speichern "
               "(SD-Karte): Ein Alarm könnte bei einem Stromausfall verloren gehen. "
               "Techniker rufen, Karte tauschen lassen."),
        "en": ("Controller storage fault",
               "The controller of {label} cannot store events safely (SD card): an alarm "
               "could be lost in a power cut. Call a technician to replace the card."),
    },
    "events_missing": {
        "de": ("Ereignisse fehlen",
               "Von {label} fehlen Ereignisse, die nicht nachgeliefert wurden: Es könnte "
               "ein Alarm darunter sein. Beim Büro nachfragen, ob alles in Ordnung ist; "
               "Netzwerk und Broker prüfen lassen."),
        "en": ("Events missing",
               "Events from {label} are missing and were not delivered again: one of them "
               "could be an alarm. Check with the office that all is well; have the "
               "network and broker checked."),
    },
    "notify": {
        "de": ("Benachrichtigung fehlgeschlagen",
               "Die Leitstelle konnte eine Eskalations-Benachrichtigung nicht zustellen "
               "(Mail, Messenger, SMS): Bereitschaft und Leitung erfahren nichts von "
               "unquittierten Alarmen. Bereitschaft telefonisch informieren; "
               "Administrator rufen."),
        "en": ("Notification failed",
               "The guard station could not deliver an escalation notification (mail, "
               "messenger, SMS): the on-call team is not told about unacknowledged "
               "alarms. Call the on-call team; call the administrator."),
    },
    "broker": {
        "de": ("Leitstelle ohne Broker",
               "Die Leitstelle hat die Verbindung zum MQTT-Broker verloren: Neue Alarme "
               "können nicht ankommen. Sofort den Administrator rufen; bis dahin die Büros "
               "telefonisch erreichbar halten."),
        "en": ("Guard station without broker",
               "The guard station has lost its connection to the MQTT broker: new alarms "
               "cannot arrive. Call the administrator now; until then keep the offices "
               "reachable by phone."),
    },
}
FAULTS = tuple(FAULT_TEXTS)

KIND_TEXTS: dict[str, dict[str, str]] = {
    "panic": {"de": "Panikalarm", "en": "Panic alarm"},
    "drill": {"de": "Übungsalarm", "en": "Drill"},
    "fault": {"de": "Technische Störung", "en": "Technical fault"},
}


def fault_text(fault: str, location: dict[str, Any], office: str,
               language: str = "de") -> tuple[str, str]:
    """(title, what to do) for one fault, filled in for the office."""
    texts = FAULT_TEXTS.get(fault)
    if texts is None:
        return (fault, "")
    title, todo = texts.get(language, texts["de"])
    label = str(location.get("label") or office)
    return title, todo.format(label=label, office=office)


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
