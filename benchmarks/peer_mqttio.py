"""The nearest peer, flyte/mqtt-io, installed and run for the office benchmark.

mqtt-io is pinned and installed by the benchmark into its own venv, never into
the project's: `python -m venv` + pip in a temporary directory under
`benchmarks/.cache/` (gitignored), renamed into place only once the install
worked, then reused by later runs. It runs with its `gpiozero` GPIO module on
gpiozero's MockFactory and a sim bridge in its own process
(`benchmarks/mqttio_bridge.py`), so a sim press takes the same two broker hops
as officesec's sim path.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from benchmarks.common import ROOT

MQTTIO_VERSION = "2.7.0"
# the gpiozero of the project (pyproject), so both sides run the same pin code
REQUIREMENTS = (f"mqtt-io=={MQTTIO_VERSION}", "gpiozero==2.0.1.post3")
CACHE = ROOT / "benchmarks" / ".cache"
BRIDGE = ROOT / "benchmarks" / "mqttio_bridge.py"
PREFIX = "mqttio-bench"
PIN = 17
SIM_TOPIC = f"{PREFIX}/sim/input/panic"
EVENT_TOPIC = f"{PREFIX}/input/panic"
STATUS_TOPIC = f"{PREFIX}/status"


def _base_python() -> str:
    """The interpreter the project venv was made from: the peer's venv must not nest in ours."""
    return getattr(sys, "_base_executable", None) or sys.executable


def ensure_installed() -> Path:
    """mqtt-io's python, installing it first if the cache has none (about 10 s)."""
    venv = CACHE / f"mqtt-io-{MQTTIO_VERSION}"
    python = venv / "bin" / "python"
    if (venv / "installed.txt").exists() and python.exists():
        return python
    CACHE.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f"mqtt-io-{MQTTIO_VERSION}.", dir=CACHE))
    try:
        subprocess.run([_base_python(), "-m", "venv", str(tmp)], check=True)
        pip = [str(tmp / "bin" / "python"), "-m", "pip", "--disable-pip-version-check"]
        subprocess.run([*pip, "install", "--quiet", *REQUIREMENTS], check=True)
        frozen = subprocess.run([*pip, "freeze"], check=True, capture_output=True,
                                text=True).stdout
        (tmp / "installed.txt").write_text(frozen, encoding="utf-8")
        if venv.exists():
            shutil.rmtree(venv)
        tmp.rename(venv)  # only a finished install is ever reused
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return python


def installed_versions() -> str:
    """`name==version` of what the peer's venv holds, for the results file."""
    frozen = (CACHE / f"mqtt-io-{MQTTIO_VERSION}" / "installed.txt").read_text(encoding="utf-8")
    wanted = ("mqtt-io", "aiomqtt", "paho-mqtt", "gpiozero")
    return ", ".join(line for line in frozen.split() if line.split("==")[0].lower() in wanted)


def write_config(workdir: Path, host: str, port: int, keepalive_s: int) -> Path:
    """mqtt-io's YAML: one interrupt-driven input on the gpiozero module, logs at WARNING.

    The keepalive is officesec's (so idle traffic is alike); `install_requirements`
    is off because the benchmark installed everything; the log level matches the
    office's `[log] level = "warning"`.
    """
    path = workdir / "mqtt-io.yml"
    path.write_text(f"""
mqtt:
  host: {host}
  port: {port}
  client_id: {PREFIX}
  topic_prefix: {PREFIX}
  keepalive: {keepalive_s}

gpio_modules:
  - name: pins
    module: gpiozero

digital_inputs:
  - name: panic
    module: pins
    pin: {PIN}
    pullup: yes
    interrupt: both

options:
  install_requirements: no

logging:
  version: 1
  handlers:
    console:
      class: logging.StreamHandler
      level: WARNING
  loggers:
    mqtt_io:
      level: WARNING
      handlers: [console]
""", encoding="utf-8")
    return path


def command(python: Path, host: str, port: int, config: Path) -> list[str]:
    """The command line of mqtt-io with the sim bridge."""
    return [str(python), str(BRIDGE), host, str(port), SIM_TOPIC, str(PIN), str(config)]
