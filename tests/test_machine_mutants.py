"""Mutation check of the relay rules (issue 16.11): the safety model must kill every mutant.

Each mutant changes one rule of `machine.py` / `machine_door.py` (a textual
edit of the real source, loaded as a throwaway module) and runs the property
test's scenarios (tests/machine_model.py) against it. A mutant that survives
means a relay rule the invariants do not cover. Each edit must match the source
exactly once, so a refactoring of the machine cannot silently skip a mutant.
Deterministic (`derandomize`), no shrinking: well under a minute on the CI box.
"""

from __future__ import annotations

import sys
import types
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings

from controller.office import machine as real_machine
from tests.machine_model import SCENARIOS, run_scenario

OFFICE = Path(real_machine.__file__).parent
DOOR, CORE = "machine_door.py", "machine.py"

# (name, file, original text, mutated text)
MUTANTS: list[tuple[str, str, str, str]] = [
    ("rex energises the strike", CORE,
     '        elif name == "fire":\n',
     '        elif name == "rex" and active:\n'
     '            self._release("button", at, wall, None)\n'
     '        elif name == "fire":\n'),
    ("panic press energises the strike", CORE,
     "        self.panic_since = at\n        self._press(",
     '        self.panic_since = at\n        self._release("button", at, wall, None)\n'
     "        self._press("),
    ("release without the stability filter", CORE,
     '_STABLE_S = {"release": RELEASE_STABLE_S, "fire": FIRE_STABLE_S}',
     '_STABLE_S = {"fire": FIRE_STABLE_S}'),
    ("release on letting go as well", CORE,
     '        elif name == "release":\n            if active:\n',
     '        elif name == "release":\n            if True:\n'),
    ("lockdown does not block the button", DOOR,
     "        if self.lockdown:\n            self._emit(\"release_blocked\"",
     "        if False:\n            self._emit(\"release_blocked\""),
    ("the pulse never times out", DOOR,
     "        if self.relay_until is not None and at >= self.relay_until:",
     "        if False:"),
    ("the pulse lasts twice release_s", DOOR,
     "        self.relay_until = at + self.release_s",
     "        self.relay_until = at + 2 * self.release_s"),
    ("lockdown leaves a running pulse on", CORE,
     '                self._emit("lockdown_on", ev.wall, by=ev.by, nonce=ev.nonce)\n'
     "                self._relay_off(ev.at, ev.wall)\n",
     '                self._emit("lockdown_on", ev.wall, by=ev.by, nonce=ev.nonce)\n'),
    ("lockdown is not set", CORE,
     "                self.lockdown = True\n",
     "                pass\n"),
    ("remote release ignores allow_remote_release", CORE,
     "        elif not self.allow_remote_release:",
     "        elif False:"),
    ("fire releases where not configured", DOOR,
     "            if self.release_on_fire:\n                self.relay_until = None",
     "            if True:\n                self.relay_until = None"),
    ("the fire release outlasts the fire", DOOR,
     '        self._emit("fire_alarm_off", wall)\n        if self.release_on_fire:',
     '        self._emit("fire_alarm_off", wall)\n        if False:'),
    ("fire does not lift lockdown", DOOR,
     "            if self.lockdown:\n                # the fire brigade",
     "            if False:\n                # the fire brigade"),
    ("closing the door does not relock", DOOR,
     '        if self.outputs["relay"] and self.opened_during_release and not self.fire_held:',
     "        if False:"),
    ("start does not clear a restored pulse timer", CORE,
     '        self._set("relay", False)\n        self.relay_until = None\n'
     '        void_from, void_to',
     '        self.relay_until = None\n        self._set("relay", True)\n'
     '        void_from, void_to'),
]


def _mutate(source: str, old: str, new: str, name: str) -> str:
    count = source.count(old)
    assert count == 1, f"mutant {name!r}: the original text occurs {count} times, expected 1"
    return source.replace(old, new)


@contextmanager
def mutant_machine(file: str, old: str, new: str, name: str) -> Iterator[type[Any]]:
    """The Machine class built from the real sources with one edit applied."""
    door_src = (OFFICE / DOOR).read_text()
    core_src = (OFFICE / CORE).read_text()
    if file == DOOR:
        door_src = _mutate(door_src, old, new, name)
    else:
        core_src = _mutate(core_src, old, new, name)
    door_name, core_name = "controller.office._mutant_door", "controller.office._mutant_core"
    core_src = core_src.replace("from controller.office.machine_door import",
                                f"from {door_name} import")
    made = []
    try:
        for mod_name, src in ((door_name, door_src), (core_name, core_src)):
            mod = types.ModuleType(mod_name)
            mod.__file__ = f"<{mod_name}>"
            sys.modules[mod_name] = mod  # dataclasses look their module up while building
            made.append(mod_name)
            exec(compile(src, mod.__file__, "exec"), mod.__dict__)  # noqa: S102 - our own source
        yield sys.modules[core_name].Machine
    finally:
        for mod_name in made:
            sys.modules.pop(mod_name, None)


def _survives(machine_cls: type[Any]) -> bool:
    @settings(max_examples=600, deadline=None, derandomize=True, database=None,
              phases=[Phase.generate], report_multiple_bugs=False,
              suppress_health_check=list(HealthCheck))
    @given(scenario=SCENARIOS)
    def prop(scenario: dict[str, Any]) -> None:
        run_scenario(machine_cls, **scenario)

    try:
        prop()
    except AssertionError:
        return False
    return True


def test_the_unmutated_sources_pass_the_same_check() -> None:
    with mutant_machine(CORE, "class Machine(DoorMachine):", "class Machine(DoorMachine):",
                        "identity") as cls:
        assert _survives(cls)


@pytest.mark.parametrize(("name", "file", "old", "new"), MUTANTS, ids=[m[0] for m in MUTANTS])
def test_every_relay_rule_mutant_is_killed(name: str, file: str, old: str, new: str) -> None:
    with mutant_machine(file, old, new, name) as cls:
        assert not _survives(cls), f"mutant survived the safety invariants: {name}"
