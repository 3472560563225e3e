# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The read-only modules on a host behind a Windows jump host (exchange_jump_host): the shell
opens on the jump host with its own inventory settings, the commands name the legacy server,
the facts say where they came from; the change modules control such a host through it. The probe's answers are the lab's recorded ones (fixtures/probe).
"""

from __future__ import annotations

import re
import typing as t

import pytest

from ansible_collections.exchops.kms.plugins.plugin_utils._winrs import CommandOutput

PROBE = r"==exchops:begin:setup_legacy=="
JUMP_PASSWORD = "Jump-Pa55"
JUMP = {
    "ansible_connection": "winrm",
    "ansible_host": "10.0.0.9",
    "ansible_port": 5985,
    "ansible_user": "CORP\\kmsadmin",
    "ansible_password": JUMP_PASSWORD,
    "ansible_winrm_transport": "credssp",
}
LEGACY = {"remote_addr": "KMSNEW"}


def behind_jump(task_vars: t.Callable[..., dict[str, t.Any]], **jump: t.Any) -> dict[str, t.Any]:
    """kms02's variables: behind jump01 (whose inventory entry is JUMP, changed by `jump`)."""
    return task_vars(
        exchange_jump_host="jump01", hostvars={"jump01": {**JUMP, **jump}, "kms02": {}}
    )


def test_exchange_facts_reads_the_legacy_server_through_its_jump_host(
    run_action: t.Callable[..., t.Any],
    fake_winrs: t.Any,
    recorded: t.Callable[..., t.Any],
    task_vars: t.Callable[..., dict[str, t.Any]],
) -> None:
    fake_winrs.on_line(PROBE, recorded("probe/kb_target"), host="kms02")
    outcome = run_action("exchange_facts", {}, variables=behind_jump(task_vars), options=LEGACY)
    assert not outcome.raised, outcome.msg
    facts = outcome.result["ansible_facts"]["exchange"]
    assert facts["reach"] == {"via": "jump01", "auth": "delegated"}
    assert (facts["build"], facts["kms"]["binary_build"]) == ("5.5.2650.0", "5.5.1960.8")
    (shell,) = fake_winrs.shells
    target = shell.details["target"]
    assert (target.address, target.transport, target.via) == ("10.0.0.9", "credssp", "jump01")
    (line,) = shell.lines
    assert 'reg query "\\\\KMSNEW\\HKLM\\SOFTWARE\\Microsoft\\Exchange\\Setup"' in line
    assert "sc \\\\KMSNEW query MSExchangeKMS" in line
    assert "wmic /node:KMSNEW datafile" in line
    assert outcome.shows(JUMP_PASSWORD) == []


def test_a_direct_host_says_it_was_read_directly(
    run_action: t.Callable[..., t.Any],
    fake_winrs: t.Any,
    recorded: t.Callable[..., t.Any],
) -> None:
    fake_winrs.on_line(PROBE, recorded("probe/kb_target"), host="kms02")
    outcome = run_action("exchange_facts", {})
    assert outcome.result["ansible_facts"]["exchange"]["reach"] == {"via": None, "auth": "ntlm"}
    line = fake_winrs.shells[0].lines[0]
    assert 'reg query "HKLM\\SOFTWARE\\Microsoft\\Exchange\\Setup"' in line
    assert "sc query MSExchangeKMS" in line and "/node:" not in line


def test_a_jump_host_reached_with_ntlm_fails_the_read_naming_the_double_hop(
    run_action: t.Callable[..., t.Any],
    fake_winrs: t.Any,
    task_vars: t.Callable[..., dict[str, t.Any]],
) -> None:
    variables = behind_jump(task_vars, ansible_winrm_transport="ntlm")
    outcome = run_action("exchange_facts", {}, variables=variables, options=LEGACY)
    assert outcome.seen[1] is True
    assert outcome.msg.startswith("kms02 (through jump01): jump01 is reached with ")
    assert "(the double hop)" in outcome.msg
    assert "Set ansible_winrm_transport: credssp for jump01" in outcome.msg
    assert fake_winrs.shells == []


def test_a_jump_host_missing_from_the_inventory_is_named(
    run_action: t.Callable[..., t.Any],
    fake_winrs: t.Any,
    task_vars: t.Callable[..., dict[str, t.Any]],
) -> None:
    variables = task_vars(exchange_jump_host="jump99", hostvars={"kms02": {}})
    outcome = run_action("exchange_facts", {}, variables=variables, options=LEGACY)
    assert "exchange_jump_host is 'jump99', which is not a host of the inventory" in outcome.msg
    assert fake_winrs.shells == []


def test_exchange_service_pack_reads_the_legacy_server_and_its_media_through_the_jump_host(
    run_action: t.Callable[..., t.Any],
    fake_winrs: t.Any,
    recorded: t.Callable[..., t.Any],
    task_vars: t.Callable[..., dict[str, t.Any]],
) -> None:
    """The read goes to jump01 and names KMSNEW; an answer without the module's sections is
    refused naming the host, before anything is changed."""
    fake_winrs.on_line(PROBE, recorded("probe/kb_target"), host="kms02")
    args = {"media": "D:\\EXCH55SP3", "media_build": "5.5.2650"}
    outcome = run_action(
        "exchange_service_pack", args, variables=behind_jump(task_vars), options=LEGACY
    )
    (shell,) = fake_winrs.shells
    assert shell.details["target"].via == "jump01"
    (line,) = shell.lines
    assert 'wmic /node:KMSNEW datafile where name="D:\\\\EXCH55SP3\\\\update.exe"' in line
    assert 'tasklist /s KMSNEW /fi "imagename eq update.exe"' in line
    assert outcome.msg.startswith("kms02: could not read the host")
    assert "Nothing was changed." in outcome.msg
    assert outcome.shows(JUMP_PASSWORD) == []


def test_kms_move_facts_reads_a_source_behind_a_jump_host_through_it(
    run_action: t.Callable[..., t.Any],
    fake_winrs: t.Any,
    recorded: t.Callable[..., t.Any],
    task_vars: t.Callable[..., dict[str, t.Any]],
) -> None:
    fake_winrs.on_line(PROBE, recorded("probe/kb_target"), host="kms02")
    fake_winrs.on_line(PROBE, recorded("probe/kb_source"), host="kms01")
    source = {
        "ansible_connection": "winrm",
        "ansible_host": "KMSOLD",
        "exchange_jump_host": "jump01",
    }
    variables = task_vars(
        kms_source_host="kms01",
        exchange_jump_host="jump01",
        hostvars={"jump01": JUMP, "kms01": source, "kms02": {}},
    )
    outcome = run_action(
        "kms_move_facts", {"fail_on_mismatch": False}, variables=variables, options=LEGACY
    )
    assert outcome.result["status"] == "mismatch", outcome.result
    shells = {shell.name: shell for shell in fake_winrs.shells}
    assert set(shells) == {"kms01", "kms02"}
    assert shells["kms01"].details["target"].label == (
        "kms01 (through jump01, http://10.0.0.9:5985/wsman)"
    )
    assert "\\\\KMSOLD\\HKLM" in shells["kms01"].lines[0]
    assert "\\\\KMSNEW\\HKLM" in shells["kms02"].lines[0]
    assert outcome.result["source_facts"]["reach"] == {"via": "jump01", "auth": "delegated"}


def wmi_unanswered(recording: t.Any, description: str) -> t.Any:
    """RECORDING (a probe answer) with every wmic section answered by wmic's error block, as a
    jump host's `wmic /node:` prints it for a server whose WMI does not answer."""
    block = f"Node - KMSNEW\r\nERROR:\r\nDescription = {description}\r\n\r\n"
    stdout = re.sub(
        r"(==exchops:begin:(?:kmserver|kmsmsg|store)_\d+== \r\n|==exchops:begin:kms_events== \r\n)"
        r".*?==exchops:end:ok== ",
        lambda match: f"{match.group(1)}{block}==exchops:end:failed== ",
        recording.stdout,
        flags=re.S,
    )
    return recording._replace(stdout=stdout)


def test_without_wmi_the_versions_and_events_are_unknown_and_say_why(
    run_action: t.Callable[..., t.Any],
    fake_winrs: t.Any,
    recorded: t.Callable[..., t.Any],
    task_vars: t.Callable[..., dict[str, t.Any]],
) -> None:
    answer = wmi_unanswered(recorded("probe/kb_target"), "The RPC server is unavailable.")
    fake_winrs.on_line(PROBE, answer, host="kms02")
    outcome = run_action("exchange_facts", {}, variables=behind_jump(task_vars), options=LEGACY)
    facts = outcome.result["ansible_facts"]["exchange"]
    assert facts["build"] == "5.5.2650.0"  # from the registry
    assert facts["kms"].get("binary_build") is None  # never guessed
    assert facts["kms"]["events"] == []
    assert facts["sources"]["file_versions"] == "unavailable (WMI: The RPC server is unavailable.)"
    assert facts["sources"]["events"] == "unavailable (WMI: The RPC server is unavailable.)"
    assert any("WMI did not answer" in warning for warning in outcome.result["warnings"])


@pytest.mark.parametrize(
    ("printed", "says"),
    [
        pytest.param(
            "ERROR: The network path was not found.\r\n",
            "KMSNEW's name does not resolve from jump01; jump01 lacks the SMB 1.0/CIFS client",
            id="53",
        ),
        pytest.param(
            "ERROR: Access is denied.\r\n",
            "KMSNEW refused the account jump01 passes on: it is not an administrator on KMSNEW",
            id="5",
        ),
    ],
)
def test_a_server_the_jump_host_cannot_read_is_unreachable_with_every_cause_of_the_text(
    run_action: t.Callable[..., t.Any],
    fake_winrs: t.Any,
    task_vars: t.Callable[..., dict[str, t.Any]],
    printed: str,
    says: str,
) -> None:
    fake_winrs.on_command(".", CommandOutput("", printed, 1, 0.01), host="kms02")
    outcome = run_action("exchange_facts", {}, variables=behind_jump(task_vars), options=LEGACY)
    assert outcome.seen[0] is True, outcome.result
    assert outcome.msg.startswith(
        f"kms02 (through jump01, http://10.0.0.9:5985/wsman): jump01 could not read KMSNEW "
        f"({printed.strip()}): "
    )
    assert says in outcome.msg
    assert outcome.msg.endswith("Nothing was changed.")


def test_exchange_service_controls_the_legacy_server_through_its_jump_host(
    run_action: t.Callable[..., t.Any],
    fake_winrs: t.Any,
    recorded: t.Callable[..., t.Any],
    task_vars: t.Callable[..., dict[str, t.Any]],
) -> None:
    fake_winrs.on_command(
        r"^sc \\\\KMSNEW query MSExchangeKMS$", recorded("sc_query/e5_kms_running")
    )
    fake_winrs.on_command(r"^sc \\\\KMSNEW qc MSExchangeKMS$", recorded("sc_qc/e7_kms"))
    fake_winrs.on_command(
        r'^reg query "\\\\KMSNEW\\HKLM\\SOFTWARE\\Microsoft\\Exchange\\KMServer"$',
        recorded("reg_query/kms_server_key_typed_vista"),
    )
    outcome = run_action(
        "exchange_service",
        {"name": "MSExchangeKMS", "state": "restarted", "startup_password": "HZGYYHACWLQACTI"},
        variables=behind_jump(task_vars),
        options=LEGACY,
        check_mode=True,
    )
    assert not outcome.raised, outcome.msg
    assert (outcome.result["changed"], outcome.result["state"]) == (True, "running")
    (shell,) = fake_winrs.shells
    assert shell.details["target"].via == "jump01"
    assert shell.details["secrets"] == ("HZGYYHACWLQACTI",)
    assert outcome.shows(JUMP_PASSWORD) == []
