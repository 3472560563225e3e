# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Fleets with jump hosts: what they plan, what the inventory says, and the refused mistakes."""

from __future__ import annotations

from pathlib import Path

import pytest

from exchlab.fleet import FleetError, load_fleet
from exchlab.hosts import build_host_state, inventory_for
from exchlab.layout import StateLayout
from exchlab.reach import (
    admin_shares_enabled,
    netbios_enabled,
    remote_registry_reachable,
    sends_ntlmv2_only,
    service_pack_number,
    smb1_client_ready,
    wmi_installed,
)

FLEETS = Path(__file__).resolve().parents[2] / "fleets"

JUMP = """jump_hosts:
  - name: jump01
    os: "2016"
"""
LEGACY_PAIR = JUMP + """pairs:
  - source:
      name: kms-old
      os: nt4
      reach: {via: jump01}
      exchange: {version: "5.5", sp: 3}
    target:
      name: kms-new
      os: nt4
      sp: 6a
      wmi_core: true
      reach: {via: jump01, name: KMSNEW}
      exchange: {version: "5.5", sp: 3}
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "fleet.yml"
    path.write_text(text, encoding="utf-8")
    return path


def test_jump_hosts_are_planned_first_and_legacy_hosts_listen_nowhere(tmp_path: Path) -> None:
    fleet = load_fleet(write(tmp_path, LEGACY_PAIR))
    assert [
        (host.name, host.role, host.os, host.listens, host.via, host.reach_name)
        for host in fleet.hosts
    ] == [
        ("jump01", "jump", "2016", True, None, None),
        ("kms-old", "source", "nt4", False, "jump01", "KMS-OLD"),
        ("kms-new", "target", "nt4", False, "jump01", "KMSNEW"),
    ]
    assert fleet.hosts[0].connection == "credssp_http"


def test_the_inventory_reaches_legacy_hosts_through_their_jump_host(tmp_path: Path) -> None:
    fleet = load_fleet(write(tmp_path, LEGACY_PAIR))
    children = inventory_for(fleet, StateLayout(tmp_path / "lab"))["all"]["children"]
    assert children["kms_targets"]["hosts"]["kms-new"] == {
        "ansible_host": "KMSNEW",
        "exchange_jump_host": "jump01",
        "kms_source_host": "kms-old",
    }
    assert children["kms_sources"]["hosts"]["kms-old"] == {
        "ansible_host": "KMS-OLD",
        "exchange_jump_host": "jump01",
    }
    assert children["jump_hosts"]["hosts"]["jump01"] == {
        "ansible_host": "127.0.10.1",
        "ansible_port": 5985,
        "ansible_winrm_scheme": "http",
        "ansible_winrm_transport": "credssp",
        "ansible_user": "LAB\\labadmin",
    }


def test_a_jump_host_over_https_gets_the_ca_path(tmp_path: Path) -> None:
    text = LEGACY_PAIR.replace('os: "2016"\n', 'os: "2016"\n    connection: credssp_https\n', 1)
    layout = StateLayout(tmp_path / "lab")
    children = inventory_for(load_fleet(write(tmp_path, text)), layout)["all"]["children"]
    jump = children["jump_hosts"]["hosts"]["jump01"]
    assert jump["ansible_winrm_transport"] == "credssp"
    assert jump["ansible_port"] == 5986
    assert jump["ansible_winrm_ca_trust_path"] == str(layout.ca_file)


def test_fleets_without_jump_hosts_keep_their_inventory(tmp_path: Path) -> None:
    fleet = load_fleet(FLEETS / "q259906.yml")
    children = inventory_for(fleet, StateLayout(tmp_path / "lab"))["all"]["children"]
    assert set(children) == {"kms_targets", "kms_sources"}
    assert all(
        "exchange_jump_host" not in variables
        for group in children.values()
        for variables in group["hosts"].values()
    )


def test_the_jump_hosts_state_follows_its_knobs(tmp_path: Path) -> None:
    text = (
        "jump_hosts:\n"
        "  - {name: j2016, os: '2016'}\n"
        "  - {name: j2019, os: '2019'}\n"
        "  - {name: j2019smb1, os: '2019', smb1_client: true, netbios: false, lm_compatibility: 2}\n"
        "hosts:\n  - {name: kms, os: nt4, reach: {via: j2016}}\n"
    )
    fleet = load_fleet(write(tmp_path, text))
    states = {host.name: build_host_state(host, fleet.lab) for host in fleet.hosts}
    assert smb1_client_ready(states["j2016"]) and not smb1_client_ready(states["j2019"])
    assert smb1_client_ready(states["j2019smb1"])
    assert netbios_enabled(states["j2016"]) and not netbios_enabled(states["j2019smb1"])
    assert sends_ntlmv2_only(states["j2016"]) and not sends_ntlmv2_only(states["j2019smb1"])
    assert all(states[name].command_lines == [] for name in ("j2016", "j2019", "j2019smb1"))


def test_jump_hosts_allow_thirty_shells_per_user_unless_the_fleet_says_otherwise(
    tmp_path: Path,
) -> None:
    text = (
        "jump_hosts:\n"
        "  - {name: j2012, os: '2012'}\n"
        "  - {name: j2022, os: '2022', faults: {max_shells_per_user: 7}}\n"
        "hosts:\n"
        "  - {name: kms, os: nt4, reach: {via: j2012}}\n"
        "  - {name: direct, os: '2016'}\n"
    )
    fleet = load_fleet(write(tmp_path, text))
    states = {host.name: build_host_state(host, fleet.lab) for host in fleet.hosts}
    assert states["j2012"].faults["max_shells_per_user"] == 30
    assert states["j2022"].faults["max_shells_per_user"] == 7
    # The other hosts keep the WS-Man layer's default.
    assert "max_shells_per_user" not in states["kms"].faults
    assert "max_shells_per_user" not in states["direct"].faults


def test_the_legacy_hosts_state_follows_its_knobs(tmp_path: Path) -> None:
    text = JUMP + (
        "hosts:\n"
        "  - {name: nt4plain, os: nt4, reach: {via: jump01}, exchange: {version: '5.5'}}\n"
        "  - name: nt4sp3\n    os: nt4\n    sp: 3\n    wmi_core: true\n"
        "    admin_shares: false\n    admins: ['NT4SP3\\Administrator']\n"
        "    reach: {via: jump01}\n"
        "  - {name: w2k, os: '2000', remote_registry: stopped, reach: {via: jump01}}\n"
    )
    fleet = load_fleet(write(tmp_path, text))
    states = {host.name: build_host_state(host, fleet.lab) for host in fleet.hosts}
    plain, sp3, w2k = states["nt4plain"], states["nt4sp3"], states["w2k"]
    assert (service_pack_number(plain), service_pack_number(sp3), service_pack_number(w2k)) == (
        6,
        3,
        4,
    )
    assert not wmi_installed(plain) and wmi_installed(sp3) and wmi_installed(w2k)
    assert remote_registry_reachable(plain) and not remote_registry_reachable(w2k)
    assert admin_shares_enabled(plain) and not admin_shares_enabled(sp3)
    assert plain.local_admins == ["LAB\\labadmin"] and sp3.local_admins == ["NT4SP3\\Administrator"]
    assert plain.command_lines is None


def test_count_numbers_the_names_the_jump_host_reaches(tmp_path: Path) -> None:
    text = LEGACY_PAIR.replace("  - source:", "  - count: 2\n    source:")
    fleet = load_fleet(write(tmp_path, text))
    assert [(host.name, host.reach_name) for host in fleet.hosts[1:]] == [
        ("kms-old-001", "KMS-OLD-001"),
        ("kms-new-001", "KMSNEW-001"),
        ("kms-old-002", "KMS-OLD-002"),
        ("kms-new-002", "KMSNEW-002"),
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "hosts:\n  - {name: kms, os: nt4}\n",
            "line 2: hosts[0].os: Windows NT 4.0 runs no WinRM; reach it through a jump host",
        ),
        (
            JUMP + "hosts:\n  - {name: kms, os: nt4, reach: {via: jump02}}\n",
            "line 5: hosts[0].reach.via: no jump host 'jump02' (declared: jump01)",
        ),
        (
            JUMP + "hosts:\n  - {name: kms, os: '2003', reach: {via: jump01}}\n",
            "line 5: hosts[0].os: a host behind a jump host runs Windows NT 4.0 or 2000",
        ),
        (
            JUMP + "hosts:\n  - {name: kms, os: '2000', wmi_core: true, reach: {via: jump01}}\n",
            "hosts[0].wmi_core: wmi_core is NT 4.0's (Windows 2000 includes WMI)",
        ),
        (
            JUMP
            + "hosts:\n  - {name: kms, os: nt4, remote_registry: stopped, reach: {via: jump01}}\n",
            "hosts[0].remote_registry: on NT 4.0 the remote registry server runs inside Winlogon "
            "(KB Q264684)",
        ),
        (
            "hosts:\n  - {name: kms, os: '2000', admin_shares: false}\n",
            "hosts[0].admin_shares: admin_shares is a knob of a server behind a jump host",
        ),
        (
            JUMP + "hosts:\n  - {name: kms, os: '2000', sp: 6a, reach: {via: jump01}}\n",
            "hosts[0].sp: Windows 2000 service packs are 0, 1, 2, 3, 4; not '6a'",
        ),
        (
            JUMP
            + "hosts:\n  - {name: kms, os: nt4, connection: ntlm_http, reach: {via: jump01}}\n",
            "hosts[0].connection: a host behind a jump host has no WinRM listener",
        ),
        (
            JUMP
            + "hosts:\n  - {name: a, os: nt4, reach: {via: jump01, name: KMS}}\n"
            + "  - {name: b, os: nt4, reach: {via: jump01, name: kms}}\n",
            "hosts[1].reach: jump01 already reaches 'KMS' (line 5)",
        ),
        (
            "jump_hosts:\n  - {name: jump01, os: '2008'}\nhosts:\n  - {name: a}\n",
            "line 2: jump_hosts[0].os: '2008' is not one of ['2012', '2016', '2019', '2022']",
        ),
    ],
)
def test_jump_mistakes_name_the_line_and_the_fix(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(FleetError) as refused:
        load_fleet(write(tmp_path, text))
    assert message in str(refused.value)


def test_the_jump_fleets_load_with_every_legacy_host_behind_jump01() -> None:
    expected = {
        "jump_q259906.yml": 3,
        "jump_matched.yml": 3,
        "jump_mixed.yml": 6,
        "jump_bench.yml": 201,
    }
    for name, count in expected.items():
        fleet = load_fleet(FLEETS / name)
        assert len(fleet.hosts) == count, name
        assert [host.name for host in fleet.hosts if host.listens] == ["jump01"], name
        assert {host.via for host in fleet.hosts if not host.listens} == {"jump01"}, name
        assert len({host.reach_name for host in fleet.hosts}) == count, name


def test_jump_doctor_puts_each_legacy_server_behind_the_jump_host_its_fault_needs() -> None:
    fleet = load_fleet(FLEETS / "jump_doctor.yml")
    jumps = {host.name: host.spec for host in fleet.hosts if host.listens}
    assert set(jumps) == {"jump01", "jump19", "jumpnb", "jumpcs"}
    assert (jumps["jump19"]["os"], jumps["jumpnb"]["netbios"]) == ("2019", False)
    assert jumps["jumpcs"]["faults"] == {"credssp_enabled": False}
    assert {host.name: host.via for host in fleet.hosts if not host.listens} == {
        "kms-ok": "jump01",
        "w2k-rr": "jump01",
        "nt4-nowmi": "jump01",
        "nt4-user": "jump01",
        "nt4-sp3": "jump01",
        "w2k-smb1": "jump19",
        "nt4-nbt": "jumpnb",
        "kms-cs": "jumpcs",
    }


def test_jump_mixed_holds_every_legacy_kind() -> None:
    fleet = load_fleet(FLEETS / "jump_mixed.yml")
    kinds = {
        (host.os, host.spec.get("wmi_core"), (host.spec.get("exchange") or {}).get("version"))
        for host in fleet.hosts
        if not host.listens
    }
    assert kinds >= {
        ("nt4", True, "5.5"),
        ("nt4", False, "5.5"),
        ("2000", None, "5.5"),
        ("2000", None, "2000"),
    }


def test_jump_bench_is_the_kb_pair_a_hundred_times() -> None:
    fleet = load_fleet(FLEETS / "jump_bench.yml")
    targets = [host for host in fleet.hosts if host.role == "target"]
    assert len(targets) == 100
    assert targets[0].name == "kms-new-001" and targets[-1].reach_name == "KMS-NEW-100"
    assert all(host.spec["kms"]["binary_build"] == "5.5.1960.8" for host in targets)


def test_console_faults_of_a_legacy_host_land_where_windows_keeps_them(tmp_path: Path) -> None:
    text = LEGACY_PAIR.replace(
        "      reach: {via: jump01, name: KMSNEW}\n",
        "      reach: {via: jump01, name: KMSNEW}\n"
        "      faults: {schedule_stopped: true, admin_shares_off: true, scm_access_denied: true}\n",
    )
    fleet = load_fleet(write(tmp_path, text))
    built = {host.name: build_host_state(host, fleet.lab) for host in fleet.hosts}
    target, source = built["kms-new"], built["kms-old"]
    assert (target.services["Schedule"].state, source.services["Schedule"].state) == (
        "STOPPED",
        "RUNNING",
    )
    assert (admin_shares_enabled(target), admin_shares_enabled(source)) == (False, True)
    assert target.faults["scm_access_denied"] is True


def test_a_console_fault_on_a_bad_value_is_refused(tmp_path: Path) -> None:
    text = LEGACY_PAIR.replace(
        "      reach: {via: jump01, name: KMSNEW}\n",
        "      reach: {via: jump01, name: KMSNEW}\n      faults: {schedule_stopped: maybe}\n",
    )
    with pytest.raises(FleetError, match="schedule_stopped"):
        load_fleet(write(tmp_path, text))
