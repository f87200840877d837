"""`officesec provision`: real subprocess runs over real files, as an installer would."""

from __future__ import annotations

import contextlib
import hashlib
import io
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest
from cryptography import x509

from controller import cli
from controller.deploy import pki, render
from controller.deploy.inventory import FleetCfg, parse_csv
from controller.guard.guard_config import load_guard_config
from controller.office.office_config import load_office_config

REPO = Path(__file__).resolve().parent.parent
OFFICESEC = [str(REPO / ".venv" / "bin" / "officesec")]
HEADER = "id,site,building,floor,room,label,neighbors\n"


def inventory_csv(n: int, *, extra: str = "") -> str:
    rows = []
    for i in range(1, n + 1):
        nb = " ".join(f"o-{j:02d}" for j in (i - 1, i + 1) if 1 <= j <= n)
        rows.append(f"o-{i:02d},Jobcenter Hattingen,Haus A,EG,{100 + i},\"Beratung {i}, EG\",{nb}")
    return HEADER + "\n".join(rows) + "\n" + extra


def run(*args: str | Path) -> subprocess.CompletedProcess[str]:
    """The CLI in-process (same code path as the console script, without interpreter start-up)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.main(["provision", *map(str, args)])
    return subprocess.CompletedProcess(args, code, out.getvalue(), err.getvalue())


def test_console_script_exit_codes(tmp_path: Path) -> None:
    inv = tmp_path / "inventory.csv"
    inv.write_text(HEADER + "a-1,S,B,F,R,L,\n")
    res = subprocess.run([*OFFICESEC, "provision", str(inv), "--out", str(tmp_path / "out")],
                         capture_output=True, text=True, timeout=120, check=False)
    assert res.returncode == 0, res.stderr
    inv.write_text(HEADER + "a 1,S,B,F,R,L,\n")
    res = subprocess.run([*OFFICESEC, "provision", str(inv), "--out", str(tmp_path / "out2")],
                         capture_output=True, text=True, timeout=120, check=False)
    assert res.returncode == 2
    assert "inventory.csv: line 2: id:" in res.stderr


def snapshot(root: Path) -> dict[str, tuple[str, int]]:
    return {str(p.relative_to(root)): (hashlib.sha256(p.read_bytes()).hexdigest(),
                                       p.stat().st_mode & 0o777)
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def fleet20(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """20 offices provisioned once (CA and keys take a moment); tests copy it."""
    root = tmp_path_factory.mktemp("fleet20")
    inv = root / "inventory.csv"
    inv.write_text(inventory_csv(20))
    (root / "out").mkdir()
    (root / "out" / "fleet.toml").write_text(
        '[fleet]\nbroker_host = "127.0.0.1"\noffice_dir = ""\nguard_dir = ""\nbroker_dir = ""\n')
    res = run(inv, "--out", root / "out")
    assert res.returncode == 0, res.stderr
    assert "20 offices" in res.stdout
    return root


def copy_fleet(fleet20: Path, tmp_path: Path) -> tuple[Path, Path]:
    shutil.copytree(fleet20 / "out", tmp_path / "out")
    shutil.copy(fleet20 / "inventory.csv", tmp_path / "inventory.csv")
    # "" directories mean "in place": configs name absolute paths, so settle them here
    res = run(tmp_path / "inventory.csv", "--out", tmp_path / "out")
    assert res.returncode == 0, res.stderr
    return tmp_path / "inventory.csv", tmp_path / "out"


def test_twenty_offices_generate_valid_configs_and_private_secrets(fleet20: Path) -> None:
    out = fleet20 / "out"
    for i in (1, 7, 20):
        bundle = out / "offices" / f"o-{i:02d}"
        cfg = load_office_config(bundle / "office.toml")  # files resolve: "" dirs = in place
        assert cfg.office.id == f"o-{i:02d}"
        assert cfg.mqtt.username == cfg.office.id
        assert cfg.mqtt.read_password() == (bundle / "mqtt-password").read_text().strip()
        assert cfg.office.label == f"Beratung {i}, EG"
        for secret in ("client.key", "mqtt-password"):
            assert (bundle / secret).stat().st_mode & 0o777 == 0o600
        assert (bundle / "guard-signing.pub").read_bytes() == (
            out / "guard" / "guard-signing.pub").read_bytes()
    assert load_office_config(out / "offices" / "o-07" / "office.toml").office.neighbors == [
        "o-06", "o-08"]
    for secret in ("pki/ca.key", "broker/server.key", "broker/passwd", "guard/client.key",
                   "guard/guard-signing.key", "guard/mqtt-password"):
        assert (out / secret).stat().st_mode & 0o777 == 0o600, secret
    assert out.stat().st_mode & 0o777 == 0o700
    guard = load_guard_config(out / "guard" / "guard.toml")
    assert [o.id for o in guard.roster()] == [f"o-{i:02d}" for i in range(1, 21)]
    users = [line.split(":")[0] for line in (out / "broker" / "passwd").read_text().splitlines()]
    assert users == sorted([*(f"o-{i:02d}" for i in range(1, 21)), "guard-1", "guard-1-states"])


def test_certificates_chain_to_the_ca_and_name_their_user(fleet20: Path) -> None:
    out = fleet20 / "out"
    ca = x509.load_pem_x509_certificate((out / "pki" / "ca.crt").read_bytes())
    for bundle, user in ((out / "offices" / "o-03", "o-03"), (out / "guard", "guard-1")):
        cert = x509.load_pem_x509_certificate((bundle / "client.crt").read_bytes())
        cert.verify_directly_issued_by(ca)
        assert cert.subject.rfc4514_string().startswith(f"CN={user}")
    server = (out / "broker" / "server.crt").read_bytes()
    assert {"127.0.0.1", "localhost"} <= pki.server_hosts(server)
    # openssl agrees that the chain is valid for TLS clients and servers
    if shutil.which("openssl") is None:
        return
    res = subprocess.run(["openssl", "verify", "-CAfile", str(out / "pki" / "ca.crt"),
                          str(out / "offices" / "o-03" / "client.crt"),
                          str(out / "broker" / "server.crt")],
                         capture_output=True, text=True, check=False)
    assert res.returncode == 0, res.stdout + res.stderr


def test_rerun_is_idempotent(fleet20: Path, tmp_path: Path) -> None:
    inv, out = copy_fleet(fleet20, tmp_path)
    before = snapshot(out)
    res = run(inv, "--out", out)
    assert res.returncode == 0, res.stderr
    assert "0 files written" in res.stdout
    assert snapshot(out) == before


def test_new_office_is_added_and_existing_secrets_are_kept(fleet20: Path, tmp_path: Path) -> None:
    inv, out = copy_fleet(fleet20, tmp_path)
    before = snapshot(out)
    before_passwd = (out / "broker" / "passwd").read_text()
    inv.write_text(inventory_csv(20, extra="o-21,Jobcenter Hattingen,Haus B,1,201,Neu,o-20\n"))
    res = run(inv, "--out", out)
    assert res.returncode == 0, res.stderr
    assert "new: o-21" in res.stdout
    after = snapshot(out)
    for name in ("pki/ca.key", "guard/guard-signing.key", "offices/o-05/client.key",
                 "offices/o-05/mqtt-password", "offices/o-20/client.crt"):
        assert after[name] == before[name], name
    assert "offices/o-21/client.key" in after
    assert "topic read officesec/office/o-20/alarm" in (out / "broker" / "acl").read_text()
    passwd = (out / "broker" / "passwd").read_text()
    new_pw = (out / "offices" / "o-21" / "mqtt-password").read_text().strip()
    entry = next(line for line in passwd.splitlines() if line.startswith("o-21:"))
    assert pki.mosquitto_verify(new_pw, entry.partition(":")[2])
    # unchanged users keep their exact hash line (the file only changes where it must)
    old_line = next(line for line in passwd.splitlines() if line.startswith("o-05:"))
    assert old_line in before_passwd


def test_rotate_reissues_one_office_and_revokes_its_old_certificate(fleet20: Path,
                                                                    tmp_path: Path) -> None:
    inv, out = copy_fleet(fleet20, tmp_path)
    before = snapshot(out)
    old_serial = pki.serial_of((out / "offices" / "o-04" / "client.crt").read_bytes())
    res = run(inv, "--out", out, "--rotate", "o-04")
    assert res.returncode == 0, res.stderr
    assert "rotated: o-04" in res.stdout
    after = snapshot(out)
    for name in ("client.key", "client.crt", "mqtt-password"):
        assert after[f"offices/o-04/{name}"] != before[f"offices/o-04/{name}"]
        assert after[f"offices/o-05/{name}"] == before[f"offices/o-05/{name}"]
    assert pki.crl_serials((out / "broker" / "crl.pem").read_bytes()) == [old_serial]
    new_pw = (out / "offices" / "o-04" / "mqtt-password").read_text().strip()
    line = next(x for x in (out / "broker" / "passwd").read_text().splitlines()
                if x.startswith("o-04:"))
    assert pki.mosquitto_verify(new_pw, line.partition(":")[2])
    # and a later plain run keeps the rotated credentials
    rerun = run(inv, "--out", out)
    assert rerun.returncode == 0 and "0 files written" in rerun.stdout


def test_rotate_unknown_office_is_refused(fleet20: Path, tmp_path: Path) -> None:
    inv, out = copy_fleet(fleet20, tmp_path)
    before = snapshot(out)
    res = run(inv, "--out", out, "--rotate", "nope")
    assert res.returncode == 2
    assert "--rotate nope: no such office" in res.stderr
    assert snapshot(out) == before


def test_damaged_credentials_are_reissued(fleet20: Path, tmp_path: Path) -> None:
    inv, out = copy_fleet(fleet20, tmp_path)
    (out / "offices" / "o-09" / "client.key").write_bytes(
        (out / "offices" / "o-10" / "client.key").read_bytes())  # key no longer matches cert
    res = run(inv, "--out", out)
    assert res.returncode == 0, res.stderr
    assert "re-issued (were missing or invalid): o-09" in res.stdout
    pair = pki.Issued((out / "offices" / "o-09" / "client.crt").read_bytes(),
                      (out / "offices" / "o-09" / "client.key").read_bytes())
    assert pki.leaf_is_sound(pki.Issued((out / "pki" / "ca.crt").read_bytes(),
                                        (out / "pki" / "ca.key").read_bytes()), pair, "o-09")


@pytest.mark.parametrize(("body", "expected"), [
    (HEADER + "a-1,S,B,F,R,L,\nBad_Id,S,B,F,R,L,\n", "line 3: id: String should match"),
    (HEADER + "a-1,S,B,F,R,L,\na-1,S,B,F,R,L,\n", "line 3: id a-1 is already used (line 2)"),
    (HEADER + "a-1,S,B,F,R,L,zz-9\n", "line 2: neighbors: unknown office(s) zz-9"),
    (HEADER + "a-1,S,B,F,R\n", "line 2: expected 7 fields, got 5"),
    (HEADER + "a-1,S,B,F,R,L,a-1\n", "line 2: neighbors: must not contain the office's own id"),
    ("id,site,colour\n", "line 1: unknown column(s) colour"),
    (HEADER + "# comment\n\na-1,S,B,F,R,L,\nguard-1,S,B,F,R,L,\n",
     "line 5: id guard-1 is the guard station's id"),
    (HEADER, "lists no offices"),
])
def test_bad_csv_names_the_line_exits_2_and_writes_nothing(tmp_path: Path, body: str,
                                                           expected: str) -> None:
    inv = tmp_path / "inventory.csv"
    inv.write_text(body)
    res = run(inv, "--out", tmp_path / "out")
    assert res.returncode == 2, res.stdout + res.stderr
    assert expected in res.stderr, res.stderr
    assert not (tmp_path / "out").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["inventory.csv"]  # no staging left


def test_bad_toml_office_names_its_line(tmp_path: Path) -> None:
    inv = tmp_path / "inventory.toml"
    inv.write_text('[fleet]\nbroker_host = "mqtt.example"\n\n[[offices]]\nid = "a-1"\n\n'
                   '[[offices]]\nid = "a-2"\nroom = 7\n\n[[offices]]\nid = "a-3"\n'
                   '[offices.hardware]\npanic_pin = 99\n')
    res = run(inv, "--out", tmp_path / "out")
    assert res.returncode == 2
    assert "inventory.toml: line 7: room: Input should be a valid string" in res.stderr
    assert not (tmp_path / "out").exists()
    inv.write_text('[[offices]]\nid = "a-1"\n\n[[offices]]\nid = "a-3"\n'
                   '[offices.hardware]\npanic_pin = 99\n')
    res = run(inv, "--out", tmp_path / "out")
    assert res.returncode == 2
    assert "line 4: hardware.panic_pin: Input should be less than or equal to 27" in res.stderr
    inv.write_text('[[offices]]\nid = "a-1"\n[offices.mqtt]\nhost = "elsewhere"\n')
    res = run(inv, "--out", tmp_path / "out")
    assert res.returncode == 2
    assert "line 1: mqtt.host: set by provision" in res.stderr
    assert not (tmp_path / "out").exists()


def test_bad_inventory_leaves_an_existing_fleet_untouched(fleet20: Path, tmp_path: Path) -> None:
    inv, out = copy_fleet(fleet20, tmp_path)
    before = snapshot(out)
    inv.write_text(inventory_csv(20, extra="o-21,S,B,F,R,L,ghost\n"))
    res = run(inv, "--out", out, "--rotate", "o-01")
    assert res.returncode == 2
    assert "line 22: neighbors: unknown office(s) ghost" in res.stderr
    assert snapshot(out) == before


def test_toml_inventory_with_fleet_and_defaults(tmp_path: Path) -> None:
    inv = tmp_path / "inventory.toml"
    inv.write_text("""
[fleet]
broker_host = "mqtt.jobcenter.example"
broker_alt_names = ["10.0.0.5"]
guard_id = "leitstelle"
homeassistant_user = "ha"

[defaults.hardware]
panic_contact = "no"

[[offices]]
id = "og-201"
site = "Jobcenter"
neighbors = ["og-202"]
[offices.door]
release_s = 3

[[offices]]
id = "og-202"
""")
    res = run(inv, "--out", tmp_path / "out")
    assert res.returncode == 0, res.stderr
    out = tmp_path / "out"
    data = tomllib.loads((out / "offices" / "og-201" / "office.toml").read_text())
    assert data["mqtt"]["host"] == "mqtt.jobcenter.example"
    assert data["mqtt"]["tls_cert"] == "/etc/officesec/client.crt"
    assert data["hardware"]["panic_contact"] == "no"
    assert data["door"]["release_s"] == 3
    assert "door" not in tomllib.loads((out / "offices" / "og-202" / "office.toml").read_text())
    assert {"mqtt.jobcenter.example", "10.0.0.5"} <= pki.server_hosts(
        (out / "broker" / "server.crt").read_bytes())
    assert "user leitstelle" in (out / "broker" / "acl").read_text()
    assert "user ha\ntopic deny officesec/office/ha/#\n" in (out / "broker" / "acl").read_text()
    assert (out / "homeassistant" / "client.key").stat().st_mode & 0o777 == 0o600
    assert "ha:" in (out / "broker" / "passwd").read_text()
    assert "password_file /etc/mosquitto/officesec/passwd" in (
        out / "broker" / "officesec.conf").read_text()
    # the guard config keeps what the operator added
    guard_toml = out / "guard" / "guard.toml"
    guard_toml.write_text(guard_toml.read_text() + '\n[escalation]\nafter_s = 45\n')
    res = run(inv, "--out", out)
    assert res.returncode == 0, res.stderr
    guard = tomllib.loads(guard_toml.read_text())
    assert guard["escalation"]["after_s"] == 45
    assert guard["guard"]["id"] == "leitstelle"


def test_removed_office_loses_broker_access(fleet20: Path, tmp_path: Path) -> None:
    inv, out = copy_fleet(fleet20, tmp_path)
    inv.write_text(inventory_csv(19))
    res = run(inv, "--out", out)
    assert res.returncode == 0, res.stderr
    assert "removed from the broker: o-20" in res.stdout
    assert "o-20:" not in (out / "broker" / "passwd").read_text()
    assert "o-20" not in (out / "broker" / "acl").read_text()


def test_missing_half_of_the_ca_is_refused(fleet20: Path, tmp_path: Path) -> None:
    inv, out = copy_fleet(fleet20, tmp_path)
    (out / "pki" / "ca.key").unlink()
    res = run(inv, "--out", out)
    assert res.returncode == 2
    assert "restore it from your backup" in res.stderr


def test_password_hash_matches_mosquitto_passwd(tmp_path: Path) -> None:
    exe = shutil.which("mosquitto_passwd")
    if exe is None:
        pytest.skip("mosquitto_passwd not installed")
    pwfile = tmp_path / "pw"
    subprocess.run([exe, "-c", "-b", str(pwfile), "alice", "s3cret pass"], check=True,
                   capture_output=True)
    hashed = pwfile.read_text().strip().partition(":")[2]
    assert hashed.startswith("$7$101$")
    assert pki.mosquitto_verify("s3cret pass", hashed)
    assert not pki.mosquitto_verify("s3cret pas", hashed)
    salt = __import__("base64").b64decode(hashed.split("$")[3])
    assert pki.mosquitto_hash("s3cret pass", salt) == hashed


def test_repo_broker_config_matches_what_provision_writes() -> None:
    fleet = FleetCfg()
    assert (REPO / "config" / "mosquitto" / "officesec.conf").read_text() == render.broker_conf(
        fleet, fleet.broker_dir)


def test_toml_writer_round_trips() -> None:
    data = {"a": 1, "b": 2.5, "c": "quote \" and \\ and ünïcode\n\t\x00\x1f\x7f", "d": [1, 2],
            "e": True,
            "t": {"x": "y", "sub": {"z": False}}, "arr": [{"k": "v"}, {"k": "w"}],
            "weird key": "ok"}
    assert tomllib.loads(render.dump_toml(data, "header\nline two")) == data


def test_concurrent_runs_do_not_mix_secrets(tmp_path: Path) -> None:
    inv = tmp_path / "inventory.csv"
    inv.write_text(inventory_csv(6))
    procs = [subprocess.Popen([*OFFICESEC, "provision", str(inv), "--out", str(tmp_path / "out")],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(3)]
    results = [p.communicate(timeout=120) for p in procs]
    assert all(p.returncode == 0 for p in procs), results
    written = sorted(out.split("; ")[1].split()[0] for out, _ in results)
    assert written[:2] == ["0", "0"], written  # the first run wrote, the others found it done
    passwd = dict(line.split(":", 1) for line in
                  (tmp_path / "out" / "broker" / "passwd").read_text().splitlines())
    for i in range(1, 7):
        pw = (tmp_path / "out" / "offices" / f"o-{i:02d}" / "mqtt-password").read_text().strip()
        assert pki.mosquitto_verify(pw, passwd[f"o-{i:02d}"])


def test_repo_example_acl_matches_what_provision_writes() -> None:
    inv = parse_csv(HEADER + "eg-101,S,A,EG,101,L,eg-102\neg-102,S,A,EG,102,L,eg-101 eg-103\n"
                    "eg-103,S,A,EG,103,L,eg-102\n")
    expected = render.acl(inv.offices, FleetCfg(homeassistant_user="homeassistant"))
    assert (REPO / "config" / "mosquitto" / "acl.example").read_text() == expected


def test_foreign_ca_key_is_refused(fleet20: Path, tmp_path: Path) -> None:
    inv, out = copy_fleet(fleet20, tmp_path)
    before = snapshot(out)
    (out / "pki" / "ca.key").write_bytes(pki.make_ca().key_pem)
    before["pki/ca.key"] = snapshot(out)["pki/ca.key"]
    res = run(inv, "--out", out)
    assert res.returncode == 2
    assert "do not belong together" in res.stderr
    assert snapshot(out) == before


def test_rotate_the_guard_station(fleet20: Path, tmp_path: Path) -> None:
    inv, out = copy_fleet(fleet20, tmp_path)
    before = snapshot(out)
    res = run(inv, "--out", out, "--rotate", "guard-1")
    assert res.returncode == 0, res.stderr
    assert "rotated: guard-1" in res.stdout
    after = snapshot(out)
    assert after["guard/mqtt-password"] != before["guard/mqtt-password"]
    assert after["guard/guard-signing.key"] == before["guard/guard-signing.key"]  # not a login
    assert after["offices/o-01/client.crt"] == before["offices/o-01/client.crt"]


def test_placeholder_broker_host_is_pointed_out(tmp_path: Path) -> None:
    inv = tmp_path / "inventory.csv"
    inv.write_text(HEADER + "a-1,S,B,F,R,L,\n")
    out = tmp_path / "out"
    for _ in range(2):  # also once fleet.toml names the placeholder explicitly
        res = run(inv, "--out", out)
        assert res.returncode == 0, res.stderr
        assert "NOTE: fleet.broker_host is the placeholder" in res.stdout
    fleet_toml = out / "fleet.toml"
    fleet_toml.write_text(fleet_toml.read_text().replace("officesec-broker.local", "mqtt.example"))
    res = run(inv, "--out", out)
    assert "NOTE" not in res.stdout
    assert tomllib.loads((out / "offices" / "a-1" / "office.toml").read_text())["mqtt"][
        "host"] == "mqtt.example"


def test_semicolon_csv_from_a_german_spreadsheet(tmp_path: Path) -> None:
    inv = tmp_path / "inventory.csv"
    inv.write_bytes("id;site;building;floor;room;label;neighbors\r\n"
                    "eg-101;Jobcenter Hattingen;Haus A;EG;101;Beratung 101, Fenster;eg-102\r\n"
                    "eg-102;Jobcenter Hattingen;Haus A;EG;102;Beratung 102;eg-101\r\n"
                    "EG 103;Jobcenter Hattingen;Haus A;EG;103;Beratung 103;\r\n"
                    .encode("utf-8-sig"))
    res = run(inv, "--out", tmp_path / "out")
    assert res.returncode == 2
    assert "inventory.csv: line 4: id:" in res.stderr
    inv.write_bytes(inv.read_bytes().replace(b"EG 103", b"eg-103"))
    res = run(inv, "--out", tmp_path / "out")
    assert res.returncode == 0, res.stderr
    cfg = tomllib.loads((tmp_path / "out" / "offices" / "eg-101" / "office.toml").read_text())
    assert cfg["office"]["label"] == "Beratung 101, Fenster"
    assert cfg["office"]["neighbors"] == ["eg-102"]
