# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""exchops.kms.exchange_facts as the action plugin behaves today: its refusals, what each WinRS
failure becomes, and the facts read from the lab's recorded probe answers (fixtures/probe)."""

from __future__ import annotations

import typing as t

import pytest

PASSWORD = "HZGYYHACWLQACTI"  # the example KM Server startup password of KB Q184420
PROBE = r"==exchops:begin:setup_legacy=="
OPTIONS = (
    "Its options are kms_event_count, timeout (ansible-doc exchops.kms.exchange_facts); fix the "
    "task and run it again. Nothing was changed."
)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param(
            {"kms_event_cont": 3},
            "kms02: exchops.kms.exchange_facts: unknown option 'kms_event_cont' (did you mean "
            f"'kms_event_count'?). {OPTIONS}",
            id="typo",
        ),
        pytest.param(
            {"ansible_password": PASSWORD},
            "kms02: exchops.kms.exchange_facts: unknown option 'ansible_password'. " f"{OPTIONS}",
            id="password as an option",
        ),
        pytest.param(
            {"timeout": "soon"},
            f"kms02: exchops.kms.exchange_facts: timeout is 'soon'; it must be an integer. {OPTIONS}",
            id="wrong type",
        ),
    ],
)
def test_bad_options_are_refused_naming_the_host_and_the_option(
    refused: t.Callable[..., str], args: dict[str, t.Any], message: str
) -> None:
    assert refused("exchange_facts", args, "kms02: ", secret=PASSWORD) == message


@pytest.mark.parametrize("name", ["exchange_facts", "kms_move_facts"])
@pytest.mark.parametrize(
    ("args", "message"),
    [
        # One wording for every minimum of every module (_action.Minimum).
        (
            {"timeout": 0},
            "kms02: timeout is 0; it must be more than 0 seconds. Set timeout to more than 0 seconds, "
            "e.g. its default 120. Nothing was changed.",
        ),
        (
            {"kms_event_count": -1},
            "kms02: kms_event_count is -1; it must be 0 or more (how many MSExchangeKMS events to "
            "read; 0 skips the log). Set kms_event_count to 0 or more, e.g. its default 10. Nothing "
            "was changed.",
        ),
    ],
)
def test_both_reading_actions_refuse_the_read_limits_alike(
    refused: t.Callable[..., str], name: str, args: dict[str, t.Any], message: str
) -> None:
    assert refused(name, args, "kms02: ") == message


@pytest.mark.parametrize("connection", ["ssh", "ansible.windows.psrp", "local"])
def test_a_host_reached_without_winrm_is_refused_before_anything_is_sent(
    refused: t.Callable[..., str], connection: str
) -> None:
    transport = connection.rsplit(".", 1)[-1]
    assert refused(
        "exchange_facts", {}, "needs ansible_connection=winrm", connection=connection
    ) == (
        "kms02: exchops.kms.exchange_facts reads the host over WinRM and needs "
        f"ansible_connection=winrm (this host uses '{transport}'). Set ansible_connection: winrm "
        "and the ansible_winrm_* settings for it. Nothing was changed."
    )


@pytest.mark.parametrize("at", ["opening the shell", "running the probe"])
def test_a_shell_failure_is_returned_as_the_shell_worded_it(
    run_action: t.Callable[..., t.Any], fake_winrs: t.Any, shell_failure: Exception, at: str
) -> None:
    if at == "opening the shell":
        fake_winrs.refuse_shell(shell_failure)
    else:
        fake_winrs.on_line(PROBE, shell_failure)
    outcome = run_action("exchange_facts")
    unreachable = shell_failure.unreachable  # type: ignore[attr-defined]
    # Returned, never raised, so that failed_when / ignore_errors apply (see _read_exchange).
    assert (outcome.raised, outcome.seen) == (False, (unreachable, not unreachable, False))
    assert outcome.msg == f"{shell_failure} Nothing was changed."


@pytest.mark.parametrize(
    ("kind", "unreachable", "message"),
    [
        (
            "connection_refused",
            True,
            "kms02 (https://10.0.0.2:5986/wsman): unreachable: nothing listens on port 5986 "
            "(connection refused). Check ansible_host, ansible_port and that the WinRM service "
            "runs and its listener is enabled (winrm enumerate winrm/config/listener). A server "
            "on Windows NT 4.0 or 2000 runs no WinRM: reach it through a Windows jump host by "
            "setting exchange_jump_host to the jump host's inventory name. Nothing was changed.",
        ),
        (
            "tls_untrusted",
            True,
            "kms02 (https://10.0.0.2:5986/wsman): TLS certificate not trusted (self-signed "
            "certificate in certificate chain). Set ansible_winrm_ca_trust_path to the PEM file "
            "of the issuing CA. Nothing was changed.",
        ),
        (
            "credentials",
            False,
            "kms02 (https://10.0.0.2:5986/wsman): the host refused the credentials of "
            "'CORP\\ops' (ntlm). Check ansible_user and ansible_password (for NTLM a domain "
            "account is DOMAIN\\user), and that the account may use WinRM on the host. Nothing "
            "was changed.",
        ),
    ],
)
def test_the_unreachable_and_failed_messages_say_nothing_was_changed_once(
    run_action: t.Callable[..., t.Any],
    fake_winrs: t.Any,
    winrs_error: t.Callable[..., Exception],
    kind: str,
    unreachable: bool,
    message: str,
) -> None:
    fake_winrs.refuse_shell(winrs_error(kind, doing="opening a shell"))
    outcome = run_action("exchange_facts")
    assert outcome.seen == (unreachable, not unreachable, False)
    # "Nothing was changed." is said once, by the action, whatever the transport's failure.
    assert outcome.msg == message


@pytest.mark.parametrize("check_mode", [False, True])
@pytest.mark.parametrize("connection", ["winrm", "ansible.builtin.winrm"])
def test_the_kb_target_is_read_in_one_round_trip(
    run_action: t.Callable[..., t.Any],
    fake_winrs: t.Any,
    recorded: t.Callable[..., t.Any],
    check_mode: bool,
    connection: str,
) -> None:
    fake_winrs.on_line(PROBE, recorded("probe/kb_target"))
    outcome = run_action("exchange_facts", check_mode=check_mode, connection=connection)
    exchange = outcome.result["ansible_facts"]["exchange"]
    assert (outcome.raised, outcome.seen, outcome.result["warnings"]) == (
        False,
        (False, False, False),
        [],
    )
    assert (exchange["release"], exchange["build"]) == ("Exchange Server 5.5 SP3", "5.5.2650.0")
    assert (exchange["kms"]["binary_build"], exchange["kms"]["matches_server"]) == (
        "5.5.1960.8",
        False,
    )
    assert [event["id"] for event in exchange["kms"]["events"]] == [5389]
    (shell,) = fake_winrs.shells
    assert (shell.name, shell.closed, len(shell.lines)) == ("kms02", True, 1)
    assert "==exchops:begin:kms_events==" in shell.lines[0]
    target = shell.details["target"]
    assert (target.endpoint, target.user, target.command_timeout_sec) == (
        "https://10.0.0.2:5986/wsman",
        "CORP\\ops",
        120,
    )


def test_the_options_reach_the_probe_and_the_shell(
    run_action: t.Callable[..., t.Any], fake_winrs: t.Any, recorded: t.Callable[..., t.Any]
) -> None:
    fake_winrs.on_line(PROBE, recorded("probe/kb_target"))
    outcome = run_action("exchange_facts", {"kms_event_count": 0, "timeout": 45})
    (shell,) = fake_winrs.shells
    assert "kms_events" not in shell.lines[0]
    assert shell.details["target"].command_timeout_sec == 45
    assert outcome.result["ansible_facts"]["exchange"]["kms"]["events"] == []


def test_an_option_given_as_none_is_not_set_whatever_the_ansible_core_line(
    run_action: t.Callable[..., t.Any], fake_winrs: t.Any, recorded: t.Callable[..., t.Any]
) -> None:
    # YAML null, or a template's none on 2.19; 2.16 to 2.18 would refuse it for a string option.
    fake_winrs.on_line(PROBE, recorded("probe/kb_target"))
    outcome = run_action("exchange_facts", {"kms_event_count": None, "timeout": None})
    (shell,) = fake_winrs.shells
    assert shell.details["target"].command_timeout_sec == 120
    assert not outcome.raised and "exchange" in outcome.result["ansible_facts"]


def test_a_delegated_task_reads_and_names_the_delegated_host(
    run_action: t.Callable[..., t.Any], fake_winrs: t.Any, recorded: t.Callable[..., t.Any]
) -> None:
    outcome = run_action("exchange_facts", {"timeout": 0}, delegate_to="jump01")
    assert (
        outcome.msg == "jump01: timeout is 0; it must be more than 0 seconds. Set timeout to more "
        "than 0 seconds, e.g. its default 120. Nothing was changed."
    )
    fake_winrs.on_line(PROBE, recorded("probe/kb_target"))
    run_action("exchange_facts", delegate_to="jump01")
    (shell,) = fake_winrs.shells
    assert (shell.name, shell.details["target"].label) == (
        "jump01",
        "jump01 (https://10.0.0.2:5986/wsman)",
    )


def test_an_exchange_installed_elsewhere_is_read_with_a_second_command_in_the_same_shell(
    run_action: t.Callable[..., t.Any], fake_winrs: t.Any, recorded: t.Callable[..., t.Any]
) -> None:
    source = recorded("probe/kb_source")
    moved = source.stdout.replace(
        "Services\tREG_SZ\tC:\\EXCHSRVR", "Services\tREG_SZ\tE:\\EXCHSRVR"
    )
    fake_winrs.on_line(PROBE, moved)
    # Kmserver.exe, Kmsmsg.dll and Store.exe under E:, each answered as Store.exe of SP3 is.
    fake_winrs.on_command(r"E:\\\\EXCHSRVR\\\\BIN", recorded("wmic_datafile/e11_store_sp3"))
    outcome = run_action("exchange_facts")
    (shell,) = fake_winrs.shells
    assert len(shell.lines) == 2 and "E:\\\\EXCHSRVR\\\\BIN\\\\KMSERVER.EXE" in shell.lines[1]
    kms = outcome.result["ansible_facts"]["exchange"]["kms"]
    assert (kms["binary_build"], kms["matches_server"]) == ("5.5.2650.23", True)


def test_an_answer_in_an_unexpected_form_is_returned_failed_naming_the_section(
    run_action: t.Callable[..., t.Any], fake_winrs: t.Any, recorded: t.Callable[..., t.Any]
) -> None:
    garbled = recorded("probe/kb_target").stdout.replace(
        "        STATE              : 1  STOPPED", "        STATE : sideways", 1
    )
    fake_winrs.on_line(PROBE, garbled)
    outcome = run_action("exchange_facts")
    assert (outcome.raised, outcome.seen) == (False, (False, True, False))
    assert outcome.msg.startswith("kms02: could not read the Exchange facts: kms_query")
    assert outcome.msg.endswith(
        "The host answered in an unexpected form; run with -vvvv to see the commands and report "
        "it. Nothing was changed."
    )
