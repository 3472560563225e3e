# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""exchops.kms.exchange_service as the action plugin behaves today: its refusals, `changed` and
the unreachable mapping when the shell fails before or after a command that changes the host,
the masking of the startup password, and check mode, with `sc` and `net` answers recorded in
fixtures/."""

from __future__ import annotations

import typing as t

import pytest

PASSWORD = "HZGYYHACWLQACTI"  # the example KM Server startup password of KB Q184420
KMS = {"name": "MSExchangeKMS"}
RUNNING, STOPPED = "sc_query/e5_kms_running", "sc_query/kms_stopped_no_controls_line"
CHANGING = ("sc start", "sc stop", "sc config")
# Where KMS takes its startup password from (KB Q196129): typed, or a startup disk in A:.
TYPED, DISK = "reg_query/kms_server_key_typed_vista", "reg_query/kms_server_key_disk_vista"
KMS_SERVER_QUERY = r'^reg query "HKLM\\SOFTWARE\\Microsoft\\Exchange\\KMServer"$'
KMS_SERVER_KEY = r"HKLM\SOFTWARE\Microsoft\Exchange\KMServer"
OPTIONS = (
    "Its options are name, startup_password, state, timeout, watch (ansible-doc "
    "exchops.kms.exchange_service); fix the task and run it again. Nothing was changed."
)


@pytest.fixture
def kms_host(fake_winrs: t.Any, recorded: t.Callable[..., t.Any]) -> t.Callable[..., t.Any]:
    """kms_host(*states, qc=): MSExchangeKMS as `sc qc` shows it, and as `sc query` shows it:
    each of `states` once, in turn, then the last one from then on."""

    def script(*states: str, qc: str = "sc_qc/e7_kms", kms_server: str = TYPED) -> t.Any:
        states = states or (RUNNING,)
        fake_winrs.on_command(KMS_SERVER_QUERY, recorded(kms_server))
        for state in states[:-1]:
            fake_winrs.on_command(r"^sc query MSExchangeKMS$", recorded(state), once=True)
        fake_winrs.on_command(r"^sc query MSExchangeKMS$", recorded(states[-1]))
        fake_winrs.on_command(r"^sc qc MSExchangeKMS$", recorded(qc))
        fake_winrs.on_command(
            r"^sc enumdepend MSExchangeKMS 64000$", recorded("sc_enumdepend/no_dependents")
        )
        return fake_winrs

    return script


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param(
            {**KMS, "startup_pasword": PASSWORD},
            "kms02: exchops.kms.exchange_service: unknown option 'startup_pasword' (did you mean "
            f"'startup_password'?); missing required arguments: state. {OPTIONS}",
            id="password under a misspelt option",
        ),
        pytest.param(
            {**KMS, "state": "stoped", "startup_password": PASSWORD},
            "kms02: exchops.kms.exchange_service: value of state must be one of: started, "
            f"stopped, restarted, got: stoped. {OPTIONS}",
            id="choice",
        ),
        pytest.param(
            {"state": "stopped", "startup_password": PASSWORD},
            f"kms02: exchops.kms.exchange_service: missing required arguments: name. {OPTIONS}",
            id="required",
        ),
        pytest.param(
            {**KMS, "state": "stopped", "watch": "long", "startup_password": PASSWORD},
            f"kms02: exchops.kms.exchange_service: watch is 'long'; it must be an integer. {OPTIONS}",
            id="wrong type",
        ),
        # pinned: today's wording ("watch is -5; it must be", unlike other modules' ", it must")
        pytest.param(
            {**KMS, "state": "started", "watch": -5, "startup_password": PASSWORD},
            "kms02: watch is -5; it must be 0 or more seconds (0 checks once, right after the "
            "start). Set watch to 0 or more seconds, e.g. its default 15. Nothing was changed.",
            id="watch -5",
        ),
        # pinned: today's wording ("timeout is 0; it must be")
        pytest.param(
            {**KMS, "state": "started", "timeout": 0, "startup_password": PASSWORD},
            "kms02: timeout is 0; it must be more than 0 seconds. Set timeout to more than 0 seconds, "
            "e.g. its default 300. Nothing was changed.",
            id="timeout 0",
        ),
        pytest.param(
            {"name": "Microsoft Exchange KMS", "state": "stopped"},
            "kms02: name 'Microsoft Exchange KMS' is not a service key name (letters, digits, "
            "'_', '.', '-', '$'). Use the key name that sc query prints after SERVICE_NAME, e.g. "
            "MSExchangeKMS, not the display name. Nothing was changed.",
            id="display name",
        ),
        pytest.param(
            {**KMS, "state": "started", "startup_password": f"{PASSWORD}%calc%"},
            "kms02: startup_password holds a space, a double quote, a %, a ! or a control character, "
            "or ends with a backslash: cmd.exe and sc cannot pass it unchanged on the sc start "
            "command line (KM Server startup passwords are letters, KB Q184420). Check the value "
            "of startup_password, or start MSExchangeKMS from the Services console with it. "
            "Nothing was changed.",
            id="unsafe password",
        ),
    ],
)
def test_bad_options_are_refused_naming_the_host_and_the_option(
    refused: t.Callable[..., str], args: dict[str, t.Any], message: str
) -> None:
    assert refused("exchange_service", args, "kms02: ", secret=PASSWORD) == message


def test_a_host_reached_without_winrm_is_refused_before_anything_is_sent(
    refused: t.Callable[..., str],
) -> None:
    args = {**KMS, "state": "stopped"}
    assert refused("exchange_service", args, "winrm", connection="ssh") == (
        "kms02: exchops.kms.exchange_service controls the service over WinRM and needs "
        "ansible_connection=winrm (this host uses 'ssh'). Set ansible_connection: winrm and the "
        "ansible_winrm_* settings for it. Nothing was changed."
    )


def test_a_shell_failure_before_any_command_changes_nothing(
    run_action: t.Callable[..., t.Any], fake_winrs: t.Any, shell_failure: Exception
) -> None:
    fake_winrs.refuse_shell(shell_failure)
    outcome = run_action("exchange_service", {**KMS, "state": "stopped"})
    unreachable = shell_failure.unreachable  # type: ignore[attr-defined]
    # Unreachable is returned; every other failure is raised.
    assert (outcome.raised, outcome.seen) == (
        not unreachable,
        (unreachable, not unreachable, False),
    )
    # The action says "Nothing was changed." once, whatever the transport's failure.
    assert outcome.msg == f"{shell_failure} Nothing was changed."


def test_a_shell_failure_after_sc_stop_was_sent_reports_changed(
    run_action: t.Callable[..., t.Any], kms_host: t.Callable[..., t.Any], shell_failure: Exception
) -> None:
    kms_host().on_command(r"^sc stop MSExchangeKMS$", shell_failure)
    outcome = run_action("exchange_service", {**KMS, "state": "stopped"})
    unreachable = shell_failure.unreachable  # type: ignore[attr-defined]
    assert (outcome.raised, outcome.seen) == (not unreachable, (unreachable, not unreachable, True))
    # sc stop was sent: the message never says "Nothing was changed.".
    assert outcome.msg == str(shell_failure)
    assert "Nothing was changed" not in outcome.msg


def test_the_startup_password_in_a_failure_text_is_masked(
    run_action: t.Callable[..., t.Any], fake_winrs: t.Any, winrs_error: t.Callable[..., Exception]
) -> None:
    fake_winrs.on_command(
        "sc query", winrs_error("winrm_error", f": sc start MSExchangeKMS {PASSWORD}")
    )
    outcome = run_action(
        "exchange_service", {**KMS, "state": "started", "startup_password": PASSWORD}
    )
    assert outcome.seen == (False, True, False)
    assert outcome.msg == (
        "kms02 (https://10.0.0.2:5986/wsman): WinRM error while starting a command: the shell "
        "could not be created: sc start MSExchangeKMS ********. Nothing was changed."
    )
    assert outcome.shows(PASSWORD) == []


@pytest.mark.parametrize(
    "args", [{"state": "started"}, {**KMS, "state": "started", "startup_password": PASSWORD}]
)
def test_a_failure_carries_no_traceback_whatever_the_ansible_core_line(
    run_action: t.Callable[..., t.Any],
    fake_winrs: t.Any,
    winrs_error: t.Callable[..., Exception],
    args: dict[str, t.Any],
) -> None:
    # ansible-core 2.16 to 2.18 would print the traceback's last line (the helper's raw error)
    # at any verbosity, or "NoneType: None" after a refusal.
    fake_winrs.on_command(
        "sc query", winrs_error("winrm_error", f": sc start MSExchangeKMS {PASSWORD}")
    )
    outcome = run_action("exchange_service", args)
    assert outcome.raised
    assert "exception" not in outcome.result


def test_the_startup_password_is_handed_to_the_shell_as_a_secret(
    run_action: t.Callable[..., t.Any], kms_host: t.Callable[..., t.Any]
) -> None:
    host = kms_host()
    run_action("exchange_service", {**KMS, "state": "started", "startup_password": PASSWORD})
    assert [shell.details["secrets"] for shell in host.shells] == [(PASSWORD,)]


def test_a_password_the_host_shows_in_image_path_is_masked_in_warnings_and_diff(
    run_action: t.Callable[..., t.Any], kms_host: t.Callable[..., t.Any]
) -> None:
    kms_host(qc="sc_qc/image_path_with_password")
    outcome = run_action(
        "exchange_service",
        {**KMS, "state": "stopped", "startup_password": PASSWORD},
        check_mode=True,
        diff=True,
    )
    assert outcome.shows(PASSWORD) == []
    assert outcome.result["warnings"] == [
        # No "used only for MSExchangeKMS" warning: stopping KMS needs no password.
        "kms02: MSExchangeKMS's ImagePath holds arguments after the program "
        "(C:\\Exchsrvr\\Bin\\Kmserver.exe ********); a startup password there makes the service "
        "pack's update.exe fail (KB Q235418). Remove them with: sc config MSExchangeKMS binPath= "
        "<the program alone>.",
    ]


@pytest.mark.parametrize(
    ("state", "found", "changed", "predicted"),
    [
        ("stopped", RUNNING, True, "stopped"),
        ("stopped", STOPPED, False, "stopped"),
        ("started", RUNNING, False, "running"),
        ("started", STOPPED, True, "running"),
        ("restarted", RUNNING, True, "running"),
        ("restarted", STOPPED, True, "running"),
    ],
)
def test_check_mode_reads_once_predicts_and_sends_no_change(
    run_action: t.Callable[..., t.Any],
    kms_host: t.Callable[..., t.Any],
    state: str,
    found: str,
    changed: bool,
    predicted: str,
) -> None:
    host = kms_host(found)
    args = {**KMS, "state": state, "startup_password": PASSWORD}
    outcome = run_action("exchange_service", args, check_mode=True, diff=True)
    before = "running" if found == RUNNING else "stopped"
    assert (outcome.raised, outcome.seen) == (False, (False, False, changed))
    assert {key: outcome.result[key] for key in ("name", "state", "previous_state", "events")} == {
        "name": "MSExchangeKMS",
        "state": predicted,
        "previous_state": before,
        "events": [],
    }
    assert outcome.result["diff"] == {
        "before": {"name": "MSExchangeKMS", "state": before},
        "after": {"name": "MSExchangeKMS", "state": predicted},
    }
    # A start reads, in the same round trip, where KMS takes its startup password from.
    kms_server = [f'reg query "{KMS_SERVER_KEY}"'] if state != "stopped" else []
    assert host.commands == ["sc query MSExchangeKMS", "sc qc MSExchangeKMS", *kms_server]
    assert len(host.lines) == 1


def test_stopping_a_running_kms_returns_changed_with_its_dependents_none(
    run_action: t.Callable[..., t.Any],
    kms_host: t.Callable[..., t.Any],
    recorded: t.Callable[..., t.Any],
) -> None:
    host = kms_host(RUNNING, STOPPED)
    host.on_command(r"^sc stop MSExchangeKMS$", recorded("sc_stop/stop_pending"))
    outcome = run_action("exchange_service", {**KMS, "state": "stopped"})
    assert outcome.result == {
        "changed": True,
        "name": "MSExchangeKMS",
        "state": "stopped",
        "previous_state": "running",
        "events": [],
        "dependents_stopped": [],
        "warnings": [],
    }
    assert [command for command in host.commands if command.startswith(CHANGING)] == [
        "sc stop MSExchangeKMS"
    ]


@pytest.mark.parametrize("state", ["started", "restarted"])
def test_a_kms_start_without_a_password_is_refused_after_reading_that_kms_needs_one(
    run_action: t.Callable[..., t.Any], kms_host: t.Callable[..., t.Any], state: str
) -> None:
    host = kms_host(STOPPED, kms_server=TYPED)
    outcome = run_action("exchange_service", {**KMS, "state": state})
    assert (outcome.raised, outcome.seen) == (True, (False, True, False))
    assert outcome.msg == (
        f"kms02: state={state} for MSExchangeKMS needs startup_password: MasterPasswordPath is empty "
        f"({KMS_SERVER_KEY}), so KMS takes its startup password as its start parameter (KB "
        "Q196129, Q184420), decrypts the KM database with it and without it exits with event "
        "5057. Set startup_password (for example to the vaulted variable kms_startup_password) "
        "to the startup password of the KM Server that created this KM database: after a move or "
        "a restore, the ORIGINAL KM Server's (KB Q154531, Q198814). Nothing was changed."
    )
    assert not [command for command in host.commands if command.startswith(CHANGING)]


def test_check_mode_predicts_a_disk_mode_kms_start_without_a_password(
    run_action: t.Callable[..., t.Any], kms_host: t.Callable[..., t.Any]
) -> None:
    kms_host(STOPPED, kms_server=DISK)
    outcome = run_action("exchange_service", {**KMS, "state": "started"}, check_mode=True)
    assert (outcome.raised, outcome.seen) == (False, (False, False, True))
    assert (outcome.result["state"], outcome.result["password_source"]) == ("running", "disk")
    assert outcome.result["warnings"] == []
