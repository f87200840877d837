"""Issue 16.1: the strict_gpiod check of the start-up warning and `officesec selftest`."""

from __future__ import annotations

from pathlib import Path

import pytest

from controller.deploy.office_selftest import check_gpio_persistence
from controller.office import gpio_persist
from controller.office.office_config import OfficeConfig


def files(tmp_path: Path, *, param: str | None = None, config: str | None = None,
          cmdline: str = "console=tty1 root=/dev/mmcblk0p2") -> dict[str, object]:
    p, c, k = tmp_path / "param", tmp_path / "config.txt", tmp_path / "cmdline"
    if param is not None:
        p.write_text(param + "\n")
    if config is not None:
        c.write_text(config)
    k.write_text(cmdline)
    return {"param": p, "configs": (tmp_path / "firmware-config.txt", c), "cmdline": k}


@pytest.mark.parametrize(("param", "persists"), [("Y", True), ("N", False)])
def test_the_running_kernels_parameter_wins(tmp_path: Path, param: str, persists: bool) -> None:
    found = gpio_persist.check(**files(tmp_path, param=param, config="dtparam=strict_gpiod\n"))
    assert found.persists is persists


@pytest.mark.parametrize(("config", "persists"), [
    ("[all]\ndtparam=audio=on\n", True),  # Raspberry Pi OS default: outputs stay driven
    ("dtparam=strict_gpiod\n", False),
    ("dtparam=audio=on,strict_gpiod\n", False),
    ("dtparam=strict_gpiod=on  # revert on release\n", False),
    ("#dtparam=strict_gpiod\n", True),  # commented out is not set
])
def test_config_txt_is_read_when_the_parameter_is_not(tmp_path: Path, config: str,
                                                      persists: bool) -> None:
    assert gpio_persist.check(**files(tmp_path, config=config)).persists is persists


def test_kernel_command_line_switch_counts(tmp_path: Path) -> None:
    found = gpio_persist.check(**files(tmp_path, config="",
                                       cmdline="quiet pinctrl_bcm2835.persist_gpio_outputs=n"))
    assert found.persists is False


def test_unknown_off_a_pi_and_no_warning(tmp_path: Path) -> None:
    found = gpio_persist.check(**files(tmp_path))
    assert found.persists is None
    assert gpio_persist.persistence_warning(found) is None


def test_warning_and_selftest_failure_when_outputs_persist(tmp_path: Path) -> None:
    found = gpio_persist.check(**files(tmp_path, config="dtparam=audio=on\n"))
    warning = gpio_persist.persistence_warning(found)
    assert warning is not None and "dtparam=strict_gpiod" in warning
    cfg = OfficeConfig(office={"id": "eg-101"}, hardware={"pin_factory": "lgpio"})
    check = check_gpio_persistence(cfg, found)
    assert check.ok is False and "strict_gpiod" in check.detail
    ok = check_gpio_persistence(cfg, gpio_persist.check(**files(tmp_path, param="N")))
    assert ok.ok is True
    mock = OfficeConfig(office={"id": "eg-101"}, hardware={"pin_factory": "mock"})
    assert check_gpio_persistence(mock).ok is None
