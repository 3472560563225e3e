# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""exchops.kms.kms_move_facts as the action plugin behaves today: its refusals, how the KM
source server's WinRM settings are taken from its inventory entry, what a failure of either
server's shell becomes, and the verdict on the lab's recorded KB Q259906 pair (fixtures/probe:
kb_target is this task's host kms02, kb_source its source kms01)."""

from __future__ import annotations

import typing as t

import pytest

PASSWORD = "HZGYYHACWLQACTI"  # the example KM Server startup password of KB Q184420
SOURCE_PASSWORD = "S0urce-Pa55"
SOURCE = {
    "ansible_connection": "winrm",
    "ansible_host": "10.0.0.1",
    "ansible_port": 5985,
    "ansible_user": "CORP\\kmsadmin",
    "ansible_password": SOURCE_PASSWORD,
}
PROBE = "==exchops:begin:setup_legacy=="
REASON = (
    "kms02 runs Exchange 5.5 SP3 (5.5.2650) but its KM Server binaries (Kmserver.exe) are "
    "Exchange 5.5 RTM (5.5.1960), older than 5.5.2650, the build that last ran the KM database "
    "(from kms01's Kmserver.exe): KMS will exit with event 5389 (KB Q259906)."
)
FIX = "Reapply Exchange 5.5 SP3 on kms02 (playbook exchops.kms.remediate_kms_move)."
FINDING = (
    "event 5389 at 2026-11-27T05:33:36+00:00: MSExchangeKMS exited; with KM binaries older than "
    "the KM database's last build this is KB Q259906 (reapply the SP; that KB is written for "
    "Exchange 5.5, so on Exchange 2000 the link is inferred)"
)
OPTIONS = (
    "Its options are allow_newer_target, backup_manifest, database_build, fail_on_mismatch, "
    "kms_event_count, listed_twice, source_host, timeout (ansible-doc exchops.kms.kms_move_facts); fix the task and run it "
    "again. Nothing was changed."
)


@pytest.fixture
def pair(
    fake_winrs: t.Any, recorded: t.Callable[..., t.Any], task_vars: t.Callable[..., t.Any]
) -> t.Callable[..., dict[str, t.Any]]:
    """pair(**source_vars) -> task_vars: kms02 (the KB target) names kms01 (the KB source) as
    its kms_source_host; both answer the probe as the lab did."""

    def variables(**source: t.Any) -> dict[str, t.Any]:
        fake_winrs.on_line(PROBE, recorded("probe/kb_target"), host="kms02")
        fake_winrs.on_line(PROBE, recorded("probe/kb_source"), host="kms01")
        hostvars = {"kms01": {**SOURCE, **source}, "kms02": {}}
        return task_vars(kms_source_host="kms01", hostvars=hostvars)

    return variables


def verdict(outcome: t.Any) -> dict[str, t.Any]:
    keys = ("status", "source", "reason", "fix", "findings", "unreachable_servers")
    return {key: outcome.result[key] for key in keys}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param(
            {"source_hots": "kms01"},
            "kms02: exchops.kms.kms_move_facts: unknown option 'source_hots' (did you mean "
            f"'source_host'?). {OPTIONS}",
            id="typo",
        ),
        pytest.param(
            {"password": PASSWORD},
            f"kms02: exchops.kms.kms_move_facts: unknown option 'password'. {OPTIONS}",
            id="password as an option",
        ),
        pytest.param(
            {"kms_event_count": "ten"},
            "kms02: exchops.kms.kms_move_facts: kms_event_count is 'ten'; it must be an integer. "
            f"{OPTIONS}",
            id="wrong type",
        ),
        pytest.param(
            {"fail_on_mismatch": "maybe", "listed_twice": "yes"},
            "kms02: exchops.kms.kms_move_facts: fail_on_mismatch is 'maybe'; it must be true or "
            f"false; listed_twice is 'yes'; it must be a mapping of names to values. {OPTIONS}",
            id="two wrong types",
        ),
        pytest.param(
            {"listed_twice": {"reason": "kms01 is listed twice"}},
            "kms02: exchops.kms.kms_move_facts: missing required arguments: fix found in "
            f"listed_twice. {OPTIONS}",
            id="suboption",
        ),
    ],
)
def test_bad_options_are_refused_naming_the_host_and_the_option(
    refused: t.Callable[..., str], args: dict[str, t.Any], message: str
) -> None:
    # timeout and kms_event_count limits: test_exchange_facts.py, shared by both reading actions.
    assert refused("kms_move_facts", args, "kms02: ", secret=PASSWORD) == message


def test_a_host_reached_without_winrm_is_refused_before_anything_is_sent(
    refused: t.Callable[..., str],
) -> None:
    assert refused("kms_move_facts", {}, "winrm", connection="local") == (
        "kms02: exchops.kms.kms_move_facts reads the host over WinRM and needs "
        "ansible_connection=winrm (this host uses 'local'). Set ansible_connection: winrm and the "
        "ansible_winrm_* settings for it. Nothing was changed."
    )


def test_a_source_host_that_is_not_a_name_is_refused_before_anything_is_read(
    refused: t.Callable[..., str], task_vars: t.Callable[..., t.Any]
) -> None:
    variables = task_vars(kms_source_host=["kms01"])
    assert refused("kms_move_facts", {}, "kms_source_host", variables=variables) == (
        "kms02: kms_source_host is ['kms01']; it must be the inventory name of the server KM "
        "Server moved from. Nothing was changed."
    )


@pytest.mark.parametrize("check_mode", [False, True])
def test_the_kb_pair_is_read_at_once_each_server_with_its_own_settings(
    run_action: t.Callable[..., t.Any],
    fake_winrs: t.Any,
    pair: t.Callable[..., dict[str, t.Any]],
    check_mode: bool,
) -> None:
    outcome = run_action("kms_move_facts", {"timeout": 90}, pair(), check_mode=check_mode)
    assert (outcome.raised, outcome.seen) == (False, (False, False, False))
    assert verdict(outcome) == {
        "status": "mismatch",
        "source": "kms01",
        "reason": REASON,
        "fix": FIX,
        "findings": [FINDING],
        "unreachable_servers": [],
    }
    assert outcome.result["ansible_facts"]["exchange"]["kms"]["binary_build"] == "5.5.1960.8"
    assert outcome.result["source_facts"]["kms"]["binary_build"] == "5.5.2650.12"
    shells = {shell.name: shell for shell in fake_winrs.shells}
    target, source = shells["kms02"].details["target"], shells["kms01"].details["target"]
    assert (target.endpoint, target.user, target.command_timeout_sec) == (
        "https://10.0.0.2:5986/wsman",
        "CORP\\ops",
        90,
    )
    assert (source.endpoint, source.user, source.password, source.command_timeout_sec) == (
        "http://10.0.0.1:5985/wsman",
        "CORP\\kmsadmin",
        SOURCE_PASSWORD,
        90,
    )
    # The source's events are not read: only the target's tell whether KMS fails there.
    assert ["kms_events" in shell.lines[0] for shell in (shells["kms02"], shells["kms01"])] == [
        True,
        False,
    ]
    assert outcome.shows(SOURCE_PASSWORD) == []


def test_a_mismatch_with_fail_on_mismatch_is_returned_failed_without_the_facts(
    run_action: t.Callable[..., t.Any], pair: t.Callable[..., dict[str, t.Any]]
) -> None:
    outcome = run_action("kms_move_facts", {"fail_on_mismatch": True}, pair())
    assert (outcome.raised, outcome.seen) == (False, (False, True, False))
    assert outcome.msg == f"{REASON} {FIX} Also: {FINDING}."
    assert {"ansible_facts", "source_facts"} & set(outcome.result) == set()


def test_a_server_listed_twice_replaces_the_verdict(
    run_action: t.Callable[..., t.Any], pair: t.Callable[..., dict[str, t.Any]]
) -> None:
    twice = {"reason": "kms01 is the source of kms02 and kms03.", "fix": "Give each one source."}
    outcome = run_action(
        "kms_move_facts", {"listed_twice": twice, "fail_on_mismatch": True}, pair()
    )
    assert (outcome.result["status"], outcome.result["remedy"]) == ("error", None)
    assert outcome.msg == f"{twice['reason']} {twice['fix']} Also: {FINDING}."


def test_an_unreachable_source_makes_the_pair_unreachable(
    run_action: t.Callable[..., t.Any],
    fake_winrs: t.Any,
    pair: t.Callable[..., dict[str, t.Any]],
    winrs_error: t.Callable[..., Exception],
) -> None:
    variables = pair()
    lost = winrs_error("connection_refused", host="kms01", remote_addr="10.0.0.1", port=5985)
    fake_winrs.refuse_shell(lost, host="kms01")
    outcome = run_action("kms_move_facts", {}, variables)
    assert verdict(outcome) == {
        "status": "unreachable",
        "source": "kms01",
        "reason": str(lost),
        "fix": "Make kms01 reachable over WinRM (see the message), then run again; or, if kms01 "
        "is gone, give the build that last ran the KM database: sp_parity_backup_manifest (the "
        "result of exchops.kms.kms_backup taken on kms01) or kms_database_build.",
        "findings": [],
        "unreachable_servers": ["kms01"],
    }
    assert outcome.seen == (False, False, False) and "ansible_facts" in outcome.result
    outcome = run_action("kms_move_facts", {"fail_on_mismatch": True}, variables)
    # Unreachable, not failed: ansible-playbook ends with exit code 4.
    assert (outcome.raised, outcome.seen, outcome.msg) == (False, (True, False, False), str(lost))


def test_a_failure_of_the_target_s_shell_is_the_verdict(
    run_action: t.Callable[..., t.Any],
    fake_winrs: t.Any,
    pair: t.Callable[..., dict[str, t.Any]],
    shell_failure: Exception,
) -> None:
    variables = pair()
    fake_winrs.refuse_shell(shell_failure, host="kms02")
    outcome = run_action("kms_move_facts", {"fail_on_mismatch": True}, variables)
    if shell_failure.unreachable:  # type: ignore[attr-defined]
        assert (outcome.result["status"], outcome.result["unreachable_servers"]) == (
            "unreachable",
            ["kms02"],
        )
        assert (outcome.seen, outcome.msg) == ((True, False, False), str(shell_failure))
    else:
        assert (outcome.result["status"], outcome.result["unreachable_servers"]) == ("error", [])
        assert (outcome.seen, outcome.msg) == (
            (False, True, False),
            f"{shell_failure} Fix what the message says on kms02, then run again.",
        )
    assert outcome.raised is False


def test_a_source_not_reached_with_winrm_is_not_read(
    run_action: t.Callable[..., t.Any],
    fake_winrs: t.Any,
    pair: t.Callable[..., dict[str, t.Any]],
) -> None:
    outcome = run_action("kms_move_facts", {}, pair(ansible_connection="ssh"))
    assert (outcome.result["status"], outcome.result["reason"]) == (
        "error",
        "kms01: exchops.kms.kms_move_facts reads the KM source server over WinRM and needs "
        "ansible_connection=winrm for it (its inventory entry says 'ssh'). Set "
        "ansible_connection: winrm and the ansible_winrm_* settings for it. Nothing was changed.",
    )
    assert [shell.name for shell in fake_winrs.shells] == ["kms02"]


def test_a_source_whose_settings_cannot_be_read_is_named_and_not_read(
    run_action: t.Callable[..., t.Any],
    fake_winrs: t.Any,
    pair: t.Callable[..., dict[str, t.Any]],
) -> None:
    outcome = run_action("kms_move_facts", {}, pair(ansible_port="five"))
    assert (outcome.result["status"], outcome.result["reason"]) == (
        "error",
        "kms01: its WinRM settings in the inventory cannot be read: ansible_port is 'five'; it "
        "must be an integer. Fix them (ansible-inventory --host NAME shows them). Nothing was "
        "changed.",
    )
    assert [shell.name for shell in fake_winrs.shells] == ["kms02"]


def test_a_source_outside_the_inventory_is_named_and_only_the_target_is_read(
    run_action: t.Callable[..., t.Any],
    fake_winrs: t.Any,
    pair: t.Callable[..., dict[str, t.Any]],
) -> None:
    outcome = run_action("kms_move_facts", {"source_host": "kms09"}, pair())
    assert verdict(outcome) == {
        "status": "error",
        "source": "kms09",
        "reason": "kms02's kms_source_host 'kms09' is not a host of this inventory.",
        "fix": "Add kms09 to the inventory (group kms_sources) with its WinRM settings, or fix "
        "kms_source_host of kms02.",
        "findings": [],
        "unreachable_servers": [],
    }
    assert [shell.name for shell in fake_winrs.shells] == ["kms02"]


# kms_backup's result, taken on kms01 before the move.
MANIFEST = {
    "changed": True,
    "backup_path": "C:\\EXCHSRVR\\KMSDATA.backup",
    "kms_binary_build": "5.5.2650.12",
}


@pytest.mark.parametrize(
    ("args", "host_vars", "status", "read_from"),
    [
        ({"backup_manifest": MANIFEST}, {}, "mismatch", "backup_manifest"),
        ({}, {"kms_backup_manifest": MANIFEST}, "mismatch", "backup_manifest"),
        ({"database_build": "5.5.2650.12"}, {}, "mismatch", "kms_database_build"),
        # The KB target's own RTM build, stated: not older, so a match judged from the record.
        ({}, {"kms_database_build": "5.5.1960.8"}, "match", "kms_database_build"),
    ],
)
def test_an_unreachable_source_with_a_recorded_build_is_judged_from_the_record(
    run_action: t.Callable[..., t.Any],
    fake_winrs: t.Any,
    pair: t.Callable[..., dict[str, t.Any]],
    winrs_error: t.Callable[..., Exception],
    args: dict[str, t.Any],
    host_vars: dict[str, t.Any],
    status: str,
    read_from: str,
) -> None:
    variables = {**pair(), **host_vars}
    lost = winrs_error("connection_refused", host="kms01", remote_addr="10.0.0.1", port=5985)
    fake_winrs.refuse_shell(lost, host="kms01")
    outcome = run_action("kms_move_facts", args, variables)
    result = outcome.result
    assert (result["status"], result["database_build_from"]) == (status, read_from)
    assert result["unreachable_servers"] == ["kms01"] and result["source_build"] is None
    assert result["findings"][-1].startswith(f"kms01 was not read ({str(lost).rstrip('. ')})")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            {"backup_manifest": {"backup_path": "C:\\B"}},
            "kms02: the backup manifest has no kms_binary_build",
        ),
        ({"backup_manifest": ["5.5.2650"]}, "kms02: backup_manifest is \\['5.5.2650'\\]"),
        ({"database_build": "SP3"}, "kms02: kms_database_build is 'SP3': not an Exchange build"),
    ],
)
def test_a_record_without_a_build_is_refused_before_anything_is_read(
    refused: t.Callable[..., str], args: dict[str, t.Any], message: str
) -> None:
    assert "Nothing was changed." in refused("kms_move_facts", args, message)
