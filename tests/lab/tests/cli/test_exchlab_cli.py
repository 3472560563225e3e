# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""`exchlab up / show / fault / down` as a user runs them, with the real pywinrm client."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
import winrm
from conftest import FLEETS, Lab, exchlab, lab_processes, next_base


def session(lab: Lab, host: str) -> winrm.Session:
    variables = lab.inventory()["all"]
    host_vars = next(
        group["hosts"][host] for group in variables["children"].values() if host in group["hosts"]
    )
    scheme = host_vars["ansible_winrm_scheme"]
    return winrm.Session(
        f"{scheme}://{host_vars['ansible_host']}:{host_vars['ansible_port']}/wsman",
        auth=(host_vars["ansible_user"], variables["vars"]["ansible_password"]),
        transport=host_vars["ansible_winrm_transport"],
        server_cert_validation="validate",
        ca_trust_path=host_vars.get("ansible_winrm_ca_trust_path"),
    )


def test_the_kb_target_answers_sc_query_with_kms_stopped_and_shows_event_5389(lab: Lab) -> None:
    started = lab.up("q259906.yml")
    assert "2 host(s) listening" in started.stdout

    result = session(lab, "kms-new").run_cmd("sc query MSExchangeKMS")

    assert result.status_code == 0
    assert b"SERVICE_NAME: MSExchangeKMS\r\n" in result.std_out
    assert b"        STATE              : 1  STOPPED\r\n" in result.std_out
    shown = lab.show()["hosts"]
    assert shown["kms-new"]["services"]["MSExchangeKMS"]["state"] == "stopped"
    assert any(
        event["id"] == 5389 and event["source"].lower() == "msexchangekms"
        for event in shown["kms-new"]["events"]
    )
    assert shown["kms-new"]["requests"]["commands"] == 1
    assert shown["kms-new"]["requests"]["http"] == 8  # pywinrm run_cmd over NTLM/HTTP
    assert shown["kms-old"]["requests"]["http"] == 0


def test_the_inventory_carries_everything_the_playbooks_need(lab: Lab) -> None:
    lab.up("q259906.yml")
    inventory = lab.inventory()["all"]
    assert inventory["vars"]["ansible_connection"] == "winrm"
    assert inventory["vars"]["kms_startup_password"]
    target = inventory["children"]["kms_targets"]["hosts"]["kms-new"]
    assert target["kms_source_host"] == "kms-old"
    assert target["kms_remediate_sp_media"] == r"D:\EXCH55SP3\ENG\SERVER\SETUP\I386"
    assert target["kms_remediate_sp_build"].startswith("5.5.2650")
    assert "kms-old" in inventory["children"]["kms_sources"]["hosts"]
    assert (lab.state / "inventory.yml").stat().st_mode & 0o077 == 0


def test_state_survives_down_and_up(lab: Lab) -> None:
    lab.up("q259906.yml")
    session(lab, "kms-new").run_cmd("sc start MSExchangeKMS wrong-password")
    before = lab.show("kms-new")["hosts"]["kms-new"]
    lab.down()
    assert lab_processes(lab.state) == []

    assert "kept from the last run" in lab.up("q259906.yml").stdout
    after = lab.show("kms-new")["hosts"]["kms-new"]
    assert after["events"] == before["events"]
    assert after["kms_database"] == before["kms_database"]


def test_show_works_while_the_lab_is_down(lab: Lab) -> None:
    lab.up("matched.yml")
    lab.down()
    shown = lab.show()
    assert set(shown["hosts"]) == {"kms-new", "kms-old"}
    assert shown["hosts"]["kms-new"]["services"]["MSExchangeKMS"]["state"] == "running"


def test_a_state_directory_in_use_is_refused(lab: Lab) -> None:
    lab.up("q259906.yml")
    again = lab.up("q259906.yml", check=False)
    assert again.returncode == 1
    assert f"state directory {lab.state} is in use" in again.stderr
    assert "exchlab down" in again.stderr


def test_a_port_already_taken_is_named(lab: Lab) -> None:
    with socket.socket() as squatter:
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        squatter.bind((lab.base.rsplit(".", 1)[0] + ".2", 25985))
        squatter.listen()
        result = lab.up("q259906.yml", check=False)
    assert result.returncode == 1
    assert "the lab did not start" in result.stderr
    assert f"{lab.base.rsplit('.', 1)[0]}.2:25985" in result.stderr
    assert lab_processes(lab.state) == []


def test_a_bad_fleet_file_names_the_line_and_the_key(tmp_path: Path, lab: Lab) -> None:
    fleet = tmp_path / "bad.yml"
    fleet.write_text(
        "pairs:\n  - source:\n      name: kms-old\n      exchange: {version: '5.5', sp: three}\n"
        "    target:\n      name: kms-new\n",
        encoding="utf-8",
    )
    result = exchlab("up", "--fleet", str(fleet), "--state", str(lab.state), check=False)
    assert result.returncode == 1
    assert (
        f"{fleet} line 4: pairs[0].source.exchange.sp: 'three' is not of type 'integer'"
        in result.stderr
    )
    assert not (lab.state / "lab.json").exists()


def test_faults_can_be_set_at_run_time(lab: Lab) -> None:
    lab.up("q259906.yml")
    exchlab("fault", "--state", str(lab.state), "kms-new", "auth_refused=true")
    try:
        session(lab, "kms-new").run_cmd("hostname")
    except winrm.exceptions.InvalidCredentialsError:
        refused = True
    else:
        refused = False
    assert refused
    exchlab("fault", "--state", str(lab.state), "kms-new", "auth_refused=false")
    assert session(lab, "kms-new").run_cmd("hostname").std_out == b"KMS-NEW\r\n"


def test_every_fleet_file_is_valid() -> None:
    from exchlab.fleet import load_fleet  # pylint: disable=import-outside-toplevel

    names = sorted(path.name for path in FLEETS.glob("*.yml"))
    assert {
        "q259906.yml",
        "matched.yml",
        "target_newer.yml",
        "exchange2000.yml",
        "bench.yml",
    } <= set(names)
    bench = load_fleet(FLEETS / "bench.yml")
    assert len(bench.hosts) == 400
    assert len({host.address for host in bench.hosts}) == 400


@pytest.fixture
def other_lab(tmp_path: Path) -> Iterator[Lab]:
    """A second lab, in its own state folder, stopped however the test ends."""
    state = tmp_path / "other-lab"
    instance = Lab(state, next_base())
    try:
        yield instance
    finally:
        exchlab("down", "--state", str(state), check=False)
        for pid in lab_processes(state):
            os.kill(pid, 9)


def test_an_up_that_cannot_listen_writes_no_inventory_and_names_the_lab_holding_them(
    lab: Lab, other_lab: Lab
) -> None:
    other_lab.up("q259906.yml")  # an earlier run of this state folder left an inventory
    other_lab.down()
    assert (other_lab.state / "inventory.yml").exists()
    lab.up("q259906.yml")
    result = other_lab.up("q259906.yml", "--fresh", "--base-address", lab.base, check=False)
    assert result.returncode == 1
    assert "the lab did not start: " in result.stderr
    assert f"cannot listen on {lab.base}:25985: Address already in use" in result.stderr
    assert f"the lab of state folder {lab.state} (pid " in result.stderr
    assert f"exchlab down --state {lab.state}" in result.stderr
    assert "--base-address auto" in result.stderr
    assert "No inventory was written" in result.stderr
    assert not (other_lab.state / "inventory.yml").exists()
    assert lab_processes(other_lab.state) == []
    assert lab.show("kms-new")["hosts"]["kms-new"]["address"] == lab.base.rsplit(".", 1)[0] + ".2"


def test_base_address_auto_starts_a_second_lab_beside_one_on_the_same_addresses(
    lab: Lab, other_lab: Lab
) -> None:
    other_lab.up("q259906.yml")
    other_lab.down()
    kept = other_lab.up("q259906.yml", "--base-address", "auto")  # its stored range is free
    assert f"listening from {other_lab.base} " in kept.stdout
    other_lab.down()
    lab.up("q259906.yml")
    same = Lab(other_lab.state, lab.base)
    assert same.up("q259906.yml", "--fresh", check=False).returncode == 1
    beside = same.up("q259906.yml", "--fresh", "--base-address", "auto")
    assert "2 host(s) listening" in beside.stdout

    def addresses(of: Lab) -> dict[str, str]:
        return {
            host: variables["ansible_host"]
            for group in of.inventory()["all"]["children"].values()
            for host, variables in group["hosts"].items()
        }

    ours, theirs = addresses(lab), addresses(same)
    assert set(ours) == set(theirs) and not set(ours.values()) & set(theirs.values())
    for host, address in theirs.items():
        assert same.show(host)["hosts"][host]["address"] == address
        assert session(same, host).run_cmd("hostname").std_out.strip().decode() == host.upper()
    assert lab_processes(lab.state) and lab_processes(same.state)
