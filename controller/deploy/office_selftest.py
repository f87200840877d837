"""`officesec selftest` and `officesec relay-off`: installer checks on the Pi.

The self-test claims the pins through the hardware adapter, reads every input,
pulses the relay only when asked, proves the broker round trip with the
office's own credentials and checks the clock. It prints one pass/fail table;
the exit code is the number of failures, so scripts can gate on it.
`relay-off` is the unit's ExecStopPost: it drives the strike relay to its
de-energised (locked) level whatever state the daemon died in.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from controller.errors import ConfigError, ControllerError, print_problems
from controller.office import gpio_persist
from controller.office.board import Board
from controller.office.office_config import HardwareCfg, OfficeConfig, load_office_config
from controller.protocol.messages import SimOutput, Topics
from controller.settings import read_toml

PULSE_S = 1.0  # shorter than any allowed release_s (>= 1 s)
BROKER_TIMEOUT_S = 5.0
CERT_WARN_DAYS = 30


@dataclass(frozen=True)
class Check:
    """One line of the result table; `ok=None` means unknown or skipped (not a failure)."""

    name: str
    ok: bool | None
    detail: str


def _mark(ok: bool | None) -> str:
    return {True: "PASS", False: "FAIL", None: "----"}[ok]


def table(checks: list[Check]) -> str:
    """The aligned pass/fail table printed to the installer."""
    width = max(len(c.name) for c in checks)
    lines = [f"{c.name:<{width}}  {_mark(c.ok)}  {c.detail}" for c in checks]
    failures = sum(1 for c in checks if c.ok is False)
    lines.append(f"{failures} failure(s)")
    return "\n".join(lines)


# ------------------------------------------------------------------- GPIO

_IDLE = {"panic": "idle", "release": "idle", "rex": "idle", "door": "closed"}
_ACTIVE = {"panic": "ACTIVE (pressed, or the nc line is cut)", "release": "PRESSED",
           "rex": "ACTIVE", "door": "open"}


def check_gpio(cfg: OfficeConfig, pulse: bool, factory: Any = None) -> list[Check]:
    """Claim the pins, read the inputs, pulse relay and LEDs only when asked."""
    hw = cfg.hardware
    board = Board(hw, lambda *_: None, factory=factory, panic_line=cfg.panic_line)
    try:
        board.start()
    except ControllerError as exc:
        hint = " (is officesec-office running? stop it first)" if hw.pin_factory == "lgpio" else ""
        return [Check("gpio", False, f"{exc}{hint}")]
    checks = [Check("gpio", True, f"pins claimed with the {hw.pin_factory} pin factory, "
                                  f"relay GPIO{hw.relay_pin} de-energised")]
    try:
        levels = board.levels()
        pins = {"panic": hw.panic_pin, "release": hw.release_pin, "door": hw.door_pin,
                "rex": hw.rex_pin}
        for name, active in levels.items():
            text = _ACTIVE[name] if active else _IDLE[name]
            # at install time nothing should be pressed; an open door is only information
            ok = None if name == "door" else not active
            checks.append(Check(f"{name} input", ok, f"GPIO{pins[name]}: {text}"))
        if board.supervised:
            cond = board.line_condition
            checks.append(Check("panic line", cond == "ok",
                                f"EOL supervision, MCP3008 channel {cfg.panic_line.channel}: "
                                f"{'ok' if cond == 'ok' else cond.upper()} (reads "
                                f"{board.line.read() if board.line else 0:.2f} of Vref)"))
        checks.append(_pulse(board, hw) if pulse else
                      Check("relay", None, "not pulsed (add --pulse-relay to test the strike)"))
    finally:
        board.close()
    return checks


def _pulse(board: Board, hw: HardwareCfg) -> Check:
    leds = [n for n, pin in (("ack_led", hw.ack_led_pin), ("neighbor_led", hw.neighbor_led_pin))
            if pin is not None]
    try:
        board.set_output("relay", True)
        for led in leds:
            board.set_output(led, True)
        energised = board.relay_is_on()
        time.sleep(PULSE_S)
    finally:
        board.set_output("relay", False)
        for led in leds:
            board.set_output(led, False)
    released = not board.relay_is_on()
    ok = energised and released
    detail = (f"GPIO{hw.relay_pin} energised for {PULSE_S:g} s and de-energised again "
              "(did the strike click?)") if ok else (
        f"GPIO{hw.relay_pin} energised={energised}, de-energised afterwards={released}")
    if leds:
        detail += f"; {' and '.join(leds)} lit meanwhile"
    return Check("relay", ok, detail)


# ----------------------------------------------------------------- broker


class _Probe:
    """A one-shot paho client with the office's credentials and no last will."""

    def __init__(self, cfg: OfficeConfig) -> None:
        from controller.mqttclient import make_client  # noqa: PLC0415 - paho only when used

        self.v5 = cfg.mqtt.protocol == "5"
        self.client = make_client(cfg.mqtt, f"officesec-selftest-{cfg.office.id}")
        self.events: dict[str, threading.Event] = {k: threading.Event() for k in
                                                   ("connack", "suback", "puback", "message")}
        self.results: dict[str, Any] = {}
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = self._on_subscribe
        self.client.on_publish = self._on_publish
        self.client.on_message = self._on_message

    def _on_connect(self, _c: Any, _u: Any, _f: Any, rc: Any, _p: Any = None) -> None:
        self.results["connack"] = rc
        self.events["connack"].set()

    def _on_subscribe(self, _c: Any, _u: Any, _mid: int, rcs: Any, _p: Any = None) -> None:
        self.results["suback"] = rcs
        self.events["suback"].set()

    def _on_publish(self, _c: Any, _u: Any, _mid: int, rc: Any, _p: Any = None) -> None:
        self.results["puback"] = rc
        self.events["puback"].set()

    def _on_message(self, _c: Any, _u: Any, msg: Any) -> None:
        self.results["message"] = (msg.topic, msg.payload, time.monotonic())
        self.events["message"].set()

    def wait(self, what: str, timeout: float) -> Any:
        return self.results.get(what) if self.events[what].wait(timeout) else None


def check_broker(cfg: OfficeConfig, timeout: float = BROKER_TIMEOUT_S) -> list[Check]:
    """Connect as the office, subscribe to its own topics, publish and receive a message."""
    topics = Topics(cfg.mqtt.prefix)
    office = cfg.office.id
    host, port = cfg.mqtt.endpoints()[0]
    where = f"{host}:{port}"
    try:
        probe = _Probe(cfg)
        probe.client.connect_timeout = timeout
        # synchronous: a refused connection or a failed TLS handshake is reported at once
        probe.client.connect(host, port, keepalive=cfg.mqtt.keepalive_s)
    except (OSError, ValueError) as exc:  # ssl.SSLError is an OSError
        return [Check("broker", False, f"{where}: {exc}")]
    probe.client.loop_start()
    try:
        return _broker_steps(probe, topics, office, where, timeout)
    finally:
        probe.client.disconnect()
        probe.client.loop_stop()


def _broker_steps(probe: _Probe, topics: Topics, office: str, where: str,
                  timeout: float) -> list[Check]:
    rc = probe.wait("connack", timeout)
    if rc is None or rc.is_failure:
        why = "no answer (unreachable, TLS refused or wrong port)" if rc is None else str(rc)
        return [Check("broker", False, f"{where}: {why}")]
    checks = [Check("broker", True, f"{where}: connected as {office}")]
    probe.client.subscribe([(topics.cmd(office), 1), (topics.sim_output(office), 1)])
    codes = probe.wait("suback", timeout)
    granted = codes is not None and not any(getattr(c, "is_failure", False) or c == 128
                                            for c in codes)
    checks.append(Check("subscribe", granted, "own cmd and sim/output topics" if granted else
                        f"refused: {codes}"))
    payload = SimOutput(relay=False, ack_led=False, neighbor_led=False).to_bytes()
    sent = time.monotonic()
    probe.client.publish(topics.sim_output(office), payload, qos=1, retain=False)
    ack = probe.wait("puback", timeout)
    msg = probe.wait("message", timeout) if ack is not None else None
    if ack is not None and getattr(ack, "is_failure", False):
        checks.append(Check("round trip", False, f"publish refused by the broker: {ack}"))
    elif msg is None:
        checks.append(Check("round trip", False, f"no message back within {timeout:g} s"))
    else:
        ms = (msg[2] - sent) * 1000
        checks.append(Check("round trip", True, f"published and received in {ms:.0f} ms"))
    return checks


def check_signing_key(cfg: OfficeConfig) -> Check:
    """Without the guard's public key every command (ack, resolve...) is rejected."""
    from controller.protocol.signing import load_public_key  # noqa: PLC0415

    path = cfg.security.guard_public_key
    if path is None:
        return Check("guard key", False, "security.guard_public_key is not set: the office "
                                         "will reject every command, acknowledgements included")
    try:
        load_public_key(Path(path))
    except ConfigError as exc:
        return Check("guard key", False, "; ".join(exc.problems))
    return Check("guard key", True, f"{path}: Ed25519 public key")


def check_certificate(cfg: OfficeConfig) -> Check | None:
    """Days until the client certificate expires (rotate with `provision --rotate`)."""
    if cfg.mqtt.tls_cert is None:
        return None
    from cryptography import x509  # noqa: PLC0415

    try:
        cert = x509.load_pem_x509_certificate(Path(cfg.mqtt.tls_cert).read_bytes())
    except (OSError, ValueError) as exc:
        return Check("certificate", False, f"{cfg.mqtt.tls_cert}: {exc}")
    days = (cert.not_valid_after_utc - dt.datetime.now(dt.UTC)).days
    return Check("certificate", days >= CERT_WARN_DAYS,
                 f"client certificate valid for {days} more days")


def check_gpio_persistence(cfg: OfficeConfig,
                           found: gpio_persist.Persistence | None = None) -> Check:
    """Issue 16.1: without strict_gpiod a killed daemon leaves the strike relay driven."""
    if cfg.hardware.pin_factory == "mock":
        return Check("strict_gpiod", None, "not checked with simulated pins")
    found = found if found is not None else gpio_persist.check()
    if found.persists is None:
        return Check("strict_gpiod", None, f"unknown: {found.detail}")
    if found.persists:
        return Check("strict_gpiod", False, f"{found.detail}. A killed daemon would leave the "
                     "door released until the unit's ExecStopPost runs (forever when started "
                     "by hand): add dtparam=strict_gpiod to config.txt and reboot")
    return Check("strict_gpiod", True, f"{found.detail}: a released GPIO line reverts to an "
                                       "input, the pull resistor de-energises the relay")


def check_clock() -> Check:
    """NTP sync as systemd-timesyncd reports it; unknown when timedatectl is absent."""
    exe = shutil.which("timedatectl")
    if exe is None:
        return Check("clock", None, "unknown (no timedatectl); commands need a correct clock")
    try:
        res = subprocess.run([exe, "show", "-p", "NTPSynchronized", "--value"],
                             capture_output=True, text=True, timeout=5, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return Check("clock", None, f"unknown ({exc})")
    value = res.stdout.strip()
    if res.returncode != 0 or value not in ("yes", "no"):
        why = ((res.stderr or value).strip().splitlines() or ["no answer"])[0]
        return Check("clock", None, f"unknown ({why[:80]})")
    return Check("clock", value == "yes", "NTP synchronised" if value == "yes" else
                 "NOT synchronised: signed commands will be rejected if the clock drifts")


def run_selftest(cfg: OfficeConfig, *, pulse: bool, factory: Any = None) -> list[Check]:
    """Every check, in the order an installer fixes them."""
    checks = [Check("config", True, f"office {cfg.office.id} ({cfg.office.label or 'no label'})")]
    checks += check_gpio(cfg, pulse, factory)
    checks.append(check_gpio_persistence(cfg))
    if _pins_busy(checks[1]):
        # the broker allows one connection per office: testing it would knock the running
        # daemon off the broker for a moment
        checks.append(Check("broker", None, "not tested while the office daemon runs"))
    else:
        checks += check_broker(cfg)
    checks.append(check_signing_key(cfg))
    cert = check_certificate(cfg)
    if cert is not None:
        checks.append(cert)
    checks.append(check_clock())
    return checks


def _pins_busy(gpio: Check) -> bool:
    text = gpio.detail.lower()
    return gpio.ok is False and ("busy" in text or "in use" in text)


def main(args: argparse.Namespace) -> int:
    """`officesec selftest --config FILE [--pulse-relay]`: exit code = number of failures."""
    try:
        cfg = load_office_config(args.config)
    except ConfigError as exc:
        return print_problems(exc)
    # lgpio creates its notification FIFO in the working directory (or $LG_WD); an installer
    # running `sudo -u officesec officesec selftest` from a home directory cannot write there
    if "LG_WD" not in os.environ and not os.access(os.getcwd(), os.W_OK):
        os.environ["LG_WD"] = tempfile.gettempdir()
    checks = run_selftest(cfg, pulse=args.pulse_relay)
    print(table(checks), flush=True)
    return sum(1 for c in checks if c.ok is False)


# -------------------------------------------------------------- relay-off


def _hardware_only(path: Path) -> HardwareCfg:
    """The [hardware] table alone: the relay must be made safe even if the rest is broken."""
    try:
        return load_office_config(path).hardware
    except ConfigError as full:
        try:
            table_ = read_toml(path).get("hardware", {})
            return HardwareCfg(**table_) if isinstance(table_, dict) else HardwareCfg()
        except (ConfigError, ValueError, TypeError):
            raise full from None


def relay_off(args: argparse.Namespace) -> int:
    """ExecStopPost: claim the relay pin de-energised, then exit (0 ok, 1 GPIO, 2 config)."""
    try:
        hw = _hardware_only(args.config)
    except ConfigError as exc:
        return print_problems(exc)
    board = Board(hw, lambda *_: None)
    try:
        board.start()  # claims the relay first, with initial_value=False
    except ControllerError as exc:
        print(f"relay-off: {exc}", file=sys.stderr)
        return 1
    ok = not board.relay_is_on()
    board.close()
    print(f"relay GPIO{hw.relay_pin} de-energised" if ok else
          f"relay GPIO{hw.relay_pin}: could not confirm the de-energised level", flush=True)
    return 0 if ok else 1
