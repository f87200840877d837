"""A throwaway Mosquitto on a free port, with the config a test needs.

Real broker, real TCP: tests never depend on the machine's shared Mosquitto.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Mosquitto:
    """Start/stop/kill a private mosquitto; the port stays the same across restarts."""

    def __init__(self, workdir: Path | None = None, *, persistence: bool = False,
                 extra: str = "", port: int | None = None) -> None:
        exe = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        if not Path(exe).exists():
            raise RuntimeError("mosquitto is not installed (apt-get install mosquitto)")
        self.exe = exe
        self.dir = Path(workdir or tempfile.mkdtemp(prefix="officesec-mq-"))
        self.dir.mkdir(parents=True, exist_ok=True)
        # mosquitto started as root drops to user mosquitto: let it write here
        os.chmod(self.dir, 0o777)  # noqa: S103 - a private temp dir of the test
        self.port = port or free_port()
        self.host = "127.0.0.1"
        self.persistence = persistence
        self.extra = extra
        self.proc: subprocess.Popen[bytes] | None = None
        self.conf = self.dir / "mosquitto.conf"
        self.log = self.dir / "mosquitto.log"

    def write_conf(self) -> None:
        lines = [
            "per_listener_settings false",
            f"listener {self.port} 127.0.0.1",
            "allow_anonymous true",
            "set_tcp_nodelay true",
            "max_queued_messages 100000",
            "log_type error",
            "log_type warning",
        ]
        if os.geteuid() == 0:
            # as root, mosquitto would switch to user mosquitto, which cannot reach a
            # persistence dir under /tmp/pytest-of-root (0700): its sessions would be lost
            lines.append("user root")
        if self.persistence:
            lines += ["persistence true", f"persistence_location {self.dir}/",
                      "autosave_interval 1"]
        else:
            lines += ["persistence false"]
        if self.extra:
            lines.append(self.extra)
        self.conf.write_text("\n".join(lines) + "\n")

    def start(self, timeout: float = 10.0) -> Mosquitto:
        self.write_conf()
        logf = self.log.open("ab")
        self.proc = subprocess.Popen([self.exe, "-c", str(self.conf)], stdout=logf, stderr=logf)
        deadline = time.monotonic() + timeout
        while True:
            try:
                socket.create_connection((self.host, self.port), timeout=0.2).close()
                return self
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.kill()
                    raise RuntimeError(f"mosquitto did not start: {self.log.read_text()}") from None
                time.sleep(0.02)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)
        self.proc = None

    def restart(self) -> None:
        self.stop()
        self.start()

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


def terminate(proc: subprocess.Popen[bytes], timeout: float = 5.0) -> int:
    """SIGTERM, wait; kill if it does not stop in time. Returns the exit code."""
    proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(timeout)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
