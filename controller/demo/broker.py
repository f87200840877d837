"""The demo's MQTT broker: a private Mosquitto when installed, else embedded amqtt.

The demo must run on a fresh machine, so it never relies on a system broker:
Mosquitto (the production broker) is started privately on a free port in the
demo's temporary directory; without it the pure-Python amqtt broker runs in a
thread of the demo process. amqtt speaks only MQTT 3.1.1 and queues QoS 1 for
offline sessions only when anonymous access is off (then any client that sends
a username is accepted), so the generated configs switch protocol and set a
username for every client (libraries.md §3.2).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO, Any, Literal, Protocol

START_TIMEOUT_S = 10.0  # mosquitto starts in milliseconds; a slow CI box gets plenty of slack
STOP_TIMEOUT_S = 2.0  # within the demo's 5 s shutdown budget
SBIN_MOSQUITTO = ("/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto")


# Run in the child's own fresh interpreter, then exec the real command: the child asks the
# kernel for SIGTERM when the demo dies (PR_SET_PDEATHSIG, kept across exec), and exits if the
# demo is already gone. (A preexec_fn would do this between fork and exec, which is unsafe in
# a process with threads, such as the embedded broker's.)
_LAUNCHER = (
    "import os, sys\n"
    "try:\n"
    "    import ctypes\n"
    "    ctypes.CDLL(None, use_errno=True).prctl(1, 15)\n"
    "except (OSError, AttributeError):\n"
    "    pass\n"
    "if os.getppid() != int(sys.argv[1]):\n"
    "    sys.exit(1)\n"
    "os.execv(sys.argv[2], sys.argv[2:])\n"
)


def die_with_parent(argv: list[str]) -> list[str]:
    """`argv` (absolute program path first), started so that it dies with this process."""
    return [sys.executable, "-c", _LAUNCHER, str(os.getpid()), *argv]


class BrokerError(RuntimeError):
    """No broker could be started (the message says why and what to install)."""


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free right now (a second demo then never collides)."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _wait_listening(host: str, port: int, deadline: float, alive: Any) -> bool:
    while time.monotonic() < deadline:
        try:
            socket.create_connection((host, port), timeout=0.2).close()
        except OSError:
            if not alive():
                return False
            time.sleep(0.02)
        else:
            return True
    return False


class Broker(Protocol):
    """What the demo needs from either broker."""

    host: str
    port: int
    protocol: Literal["5", "3.1.1"]
    description: str

    def start(self) -> None:
        """Start listening; raise BrokerError when that fails."""

    def stop(self) -> None:
        """Stop and release the port (idempotent)."""


class MosquittoBroker:
    """A private mosquitto: own config, free port, no persistence, no system files."""

    protocol: Literal["5", "3.1.1"] = "5"

    def __init__(self, exe: str, workdir: Path) -> None:
        """Only remember where things go; `start` does the work."""
        self.exe = exe
        self.dir = workdir
        self.host = "127.0.0.1"
        self.port = 0
        self.description = f"mosquitto ({exe}), private instance"
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    def start(self) -> None:
        """Write the config and start mosquitto; wait until it accepts connections."""
        self.port = free_port(self.host)
        conf = self.dir / "mosquitto.conf"
        conf.write_text("\n".join([
            f"listener {self.port} {self.host}",
            "allow_anonymous true",
            "persistence false",
            "max_queued_messages 100000",
            "log_dest stderr",
            "log_type error",
            "log_type warning",
            # started as root, mosquitto would switch to user mosquitto, which clears the
            # parent-death signal: the demo's broker runs as whoever runs the demo
            *(["user root"] if os.geteuid() == 0 else []),
        ]) + "\n", encoding="utf-8")
        conf.chmod(0o644)  # mosquitto started as root drops to user mosquitto
        self._log = (self.dir / "mosquitto.log").open("ab")
        self._proc = subprocess.Popen(die_with_parent([self.exe, "-c", str(conf)]),
                                      stdin=subprocess.DEVNULL, stdout=self._log,
                                      stderr=self._log)
        proc = self._proc
        deadline = time.monotonic() + START_TIMEOUT_S
        if not _wait_listening(self.host, self.port, deadline, lambda: proc.poll() is None):
            self.stop()
            log = (self.dir / "mosquitto.log").read_text(encoding="utf-8", errors="replace")
            raise BrokerError(f"mosquitto did not start on port {self.port}: {log.strip()}")

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if it hangs."""
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(STOP_TIMEOUT_S)
        if self._log is not None:
            self._log.close()
            self._log = None


class EmbeddedBroker:
    """amqtt in a background thread of the demo process (MQTT 3.1.1 only)."""

    protocol: Literal["5", "3.1.1"] = "3.1.1"

    def __init__(self) -> None:
        """Only remember the address; `start` does the work."""
        self.host = "127.0.0.1"
        self.port = 0
        self.description = "embedded amqtt (MQTT 3.1.1; mosquitto not found on PATH)"
        self._loop: asyncio.AbstractEventLoop | None = None
        self._broker: Any = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    def start(self) -> None:
        """Start the broker thread and wait until it listens."""
        try:
            import amqtt.broker  # noqa: F401, PLC0415  (optional dependency: fail clearly)
        except ImportError as exc:
            raise BrokerError("neither mosquitto (apt-get install mosquitto) nor amqtt "
                              "(pip install 'officesec[demo]') is installed") from exc
        # amqtt logs every connection (and tracebacks for ordinary disconnects) at INFO/ERROR
        logging.getLogger("amqtt").setLevel(logging.CRITICAL)
        logging.getLogger("transitions").setLevel(logging.WARNING)
        self.port = free_port(self.host)
        self._thread = threading.Thread(target=self._run, name="amqtt", daemon=True)
        self._thread.start()
        if not self._ready.wait(START_TIMEOUT_S) or self._error is not None:
            self.stop()
            raise BrokerError(f"amqtt did not start on port {self.port}: {self._error}")
        deadline = time.monotonic() + START_TIMEOUT_S
        if not _wait_listening(self.host, self.port, deadline, lambda: True):
            self.stop()
            raise BrokerError(f"amqtt does not accept connections on port {self.port}")

    def _run(self) -> None:
        from amqtt.broker import Broker as AmqttBroker  # noqa: PLC0415

        config = {
            "listeners": {"default": {"type": "tcp", "bind": f"{self.host}:{self.port}"}},
            # anonymous off: queued QoS 1 for offline sessions works (any username is accepted)
            "plugins": {"amqtt.plugins.authentication.AnonymousAuthPlugin":
                        {"allow_anonymous": False}},
        }
        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        try:
            self._broker = AmqttBroker(config, loop=loop)
            loop.run_until_complete(self._broker.start())
        except Exception as exc:  # noqa: BLE001  (reported to start() in the main thread)
            self._error = exc
            self._ready.set()
            loop.close()
            return
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            loop.close()

    def stop(self) -> None:
        """Shut the broker down and end its thread (idempotent)."""
        loop, thread = self._loop, self._thread
        self._loop = self._thread = None
        if loop is None or thread is None or loop.is_closed():
            return
        if self._broker is not None:
            future = asyncio.run_coroutine_threadsafe(self._broker.shutdown(), loop)
            # a broker that fails to stop cleanly is dropped with its thread anyway
            with contextlib.suppress(Exception):
                future.result(STOP_TIMEOUT_S)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(STOP_TIMEOUT_S)


def choose_broker(workdir: Path, *, no_mosquitto: bool) -> Broker:
    """Mosquitto from PATH unless told otherwise; else the embedded amqtt broker."""
    exe = None if no_mosquitto else shutil.which("mosquitto")
    if exe:
        return MosquittoBroker(exe, workdir)
    broker = EmbeddedBroker()
    if no_mosquitto:
        broker.description = "embedded amqtt (MQTT 3.1.1; --no-mosquitto given)"
    else:
        hidden = next((p for p in SBIN_MOSQUITTO if Path(p).is_file()), None)
        if hidden:  # Debian puts it in /usr/sbin, which is not on a normal user's PATH
            broker.description = (f"embedded amqtt (MQTT 3.1.1; mosquitto not found on PATH; "
                                  f"add {Path(hidden).parent} to PATH to use {hidden})")
    return broker
