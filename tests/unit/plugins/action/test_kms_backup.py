# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""exchops.kms.kms_backup as the action plugin behaves today: its refusals, what each WinRS
failure becomes before and after the copy began, the masking of the startup password, and check
mode's predicted backup, with `reg`, `sc` and `dir` answers recorded in fixtures/."""

from __future__ import annotations

import typing as t

import pytest

PASSWORD = "HZGYYHACWLQACTI"  # the example KM Server startup password of KB Q184420
KMSDATA, DEST = "C:\\EXCHSRVR\\KMSDATA", "D:\\KMS-BACKUP"
PATHS = {"database_path": KMSDATA, "destination": DEST}
RUNNING, STOPPED = "sc_query/e5_kms_running", "sc_query/kms_stopped_no_controls_line"
CHANGING = ("sc stop", "sc start", "xcopy")
NOTHING = "Nothing was changed."
OPTIONS = (
    "Its options are copy_to, database_path, destination, startup_password, timeout, "
    "verify_against (ansible-doc "
    "exchops.kms.kms_backup); fix the task and run it again. Nothing was changed."
)


@pytest.fixture
def kms_server(fake_winrs: t.Any, recorded: t.Callable[..., t.Any]) -> t.Callable[..., t.Any]:
    """kms_server(kms=None, drive="D:"): the KB target as the backup's survey sees it: Exchange
    in C:\\EXCHSRVR, MSExchangeKMS running (or as `kms` answers), the lab's KM database (3
    files), no destination folder yet, and room on the destination's `drive` (only the free
    bytes of that listing are read)."""

    def script(kms: t.Any = None, drive: str = "D:") -> t.Any:
        setup = r'^reg query "HKLM\\SOFTWARE\\Microsoft\\Exchange\\Setup"$'
        fake_winrs.on_command(setup, recorded("reg_query/xp_setup_with_subkey"))
        fake_winrs.on_command(r"^sc query MSExchangeKMS$", kms or recorded(RUNNING))
        source = r'^dir /-c /s /a "C:\\EXCHSRVR\\KMSDATA"$'
        fake_winrs.on_command(source, recorded("dir_tree/kmsdata_lab"))
        fake_winrs.on_command(r'^dir /-c /a "[A-Z]:\\', recorded("dir/file_not_found"))
        fake_winrs.on_command(rf"^dir /-c /a {drive}\\$", recorded("dir/e14_kmsdata"))
        # Kmserver.exe beside Kmsdata: the e11 layout (Store.exe's recording stands in for it).
        kmserver = r"^wmic datafile where name=.*KMSERVER\.EXE"
        fake_winrs.on_command(kmserver, recorded("wmic_datafile/e11_store_sp3"))
        return fake_winrs

    return script


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param(
            {"startup_pasword": PASSWORD},
            "kms02: exchops.kms.kms_backup: unknown option 'startup_pasword' (did you mean "
            f"'startup_password'?). {OPTIONS}",
            id="password under a misspelt option",
        ),
        pytest.param(
            {"timeout": "10m", "startup_password": PASSWORD},
            f"kms02: exchops.kms.kms_backup: timeout is '10m'; it must be an integer. {OPTIONS}",
            id="wrong type",
        ),
        pytest.param(
            {"timeout": 0, "startup_password": PASSWORD},
            "kms02: timeout is 0; it must be more than 0 seconds. Set timeout to more than 0 seconds, "
            "e.g. its default 600. Nothing was changed.",
            id="timeout 0",
        ),
        pytest.param(
            {"database_path": "KMSDATA", "startup_password": PASSWORD},
            "kms02: database_path is 'KMSDATA', not a full path on a drive of the host. Give a "
            "folder such as C:\\EXCHSRVR\\KMSDATA. Nothing was changed.",
            id="relative path",
        ),
        pytest.param(
            {"destination": "\\\\nas01\\kms", "startup_password": PASSWORD},
            "kms02: destination is '\\\\\\\\nas01\\\\kms', a UNC path. The copy runs on the host "
            "itself, which cannot pass the WinRM credentials on to another server (the second "
            "hop). Give a folder on a drive of the host, such as C:\\KMS-BACKUP. Nothing was "
            "changed.",
            id="UNC destination",
        ),
        pytest.param(
            {"verify_against": [], "database_path": KMSDATA},
            "kms02: verify_against is empty. Give the manifest of the backup that was restored: "
            "the 'manifest' a kms_backup task returned, or the one in the manifest.json of its "
            "controller copy. Nothing was changed.",
            id="verify against an empty manifest",
        ),
        pytest.param(
            {"verify_against": [{"name": "Kmsmdb.edb", "size": 1, "sha256": "x"}]},
            "kms02: verify_against[0] (Kmsmdb.edb) has sha256 'x', not 64 hex digits. Nothing "
            "was changed.",
            id="verify against a bad digest",
        ),
        pytest.param(
            {
                "verify_against": [{"name": "Kmsmdb.edb", "size": 1, "sha256": None}],
                "destination": DEST,
                "startup_password": PASSWORD,
            },
            "kms02: verify_against only checks the KM database folder against a backup's "
            "manifest: it copies nothing and never starts MSExchangeKMS, so destination and "
            "startup_password cannot be used with it. Start MSExchangeKMS afterwards with "
            "exchops.kms.exchange_service. Nothing was changed.",
            id="verify with backup options",
        ),
    ],
)
def test_bad_options_are_refused_naming_the_host_and_the_option(
    refused: t.Callable[..., str], args: dict[str, t.Any], message: str
) -> None:
    assert refused("kms_backup", args, "kms02: ", secret=PASSWORD) == message


@pytest.mark.parametrize("password", [f"{PASSWORD} %X%", f"{PASSWORD}!X!", f"{PASSWORD}\\"])
def test_a_startup_password_is_refused_in_the_words_exchange_service_uses(
    refused: t.Callable[..., str], password: str
) -> None:
    """One rule for the sc start line (_kms.py): the backup restarts KMS with the same line."""
    backup = refused("kms_backup", {"startup_password": password}, "kms02: ", secret=password)
    service = refused(
        "exchange_service",
        {"name": "MSExchangeKMS", "state": "started", "startup_password": password},
        "kms02: ",
        secret=password,
    )
    assert backup == service
    assert backup.startswith("kms02: startup_password holds ")
    assert backup.endswith("Nothing was changed.")


def test_a_host_reached_without_winrm_is_refused_before_anything_is_sent(
    refused: t.Callable[..., str],
) -> None:
    assert refused("kms_backup", {}, "winrm", connection="ansible.windows.psrp") == (
        "kms02: exchops.kms.kms_backup works on the host over WinRM and needs "
        "ansible_connection=winrm (this host uses 'psrp'). Set ansible_connection: winrm and the "
        "ansible_winrm_* settings for it. Nothing was changed."
    )


def test_a_destination_inside_the_database_is_refused_before_any_command(
    run_action: t.Callable[..., t.Any], fake_winrs: t.Any
) -> None:
    inside = f"{KMSDATA}\\backup"
    outcome = run_action("kms_backup", {"database_path": KMSDATA, "destination": inside})
    assert (outcome.raised, outcome.seen) == (True, (False, True, False))
    assert outcome.msg == (
        f"kms02: destination {inside} lies inside the KM database folder {KMSDATA}. xcopy would "
        "copy the folder into itself, and the backup would become part of the database. Choose "
        "a folder outside it, or leave destination empty. Nothing was changed."
    )
    # pinned: the shell is opened before this check, but no command is sent.
    assert [len(shell.lines) for shell in fake_winrs.shells] == [0]


@pytest.mark.parametrize("at", ["opening the shell", "surveying"])
def test_a_shell_failure_before_the_copy_says_nothing_was_changed_once(
    run_action: t.Callable[..., t.Any],
    kms_server: t.Callable[..., t.Any],
    shell_failure: Exception,
    at: str,
) -> None:
    host = kms_server()
    if at == "opening the shell":
        host.refuse_shell(shell_failure)
    else:
        host.on_line("==exchops:begin:kms==", shell_failure)
    outcome = run_action("kms_backup", {**PATHS, "startup_password": PASSWORD})
    unreachable = shell_failure.unreachable  # type: ignore[attr-defined]
    # pinned: unreachable returns changed=False; a failure is raised without `changed`.
    expected = (True, False, False) if unreachable else (False, True, False)
    assert (outcome.raised, outcome.seen) == (not unreachable, expected)
    assert outcome.msg.startswith(str(shell_failure).removesuffix(f" {NOTHING}"))
    assert outcome.msg.endswith(NOTHING) and outcome.msg.count(NOTHING) == 1


def test_a_connection_lost_during_the_copy_fails_with_changed_and_says_where_the_copy_is(
    run_action: t.Callable[..., t.Any],
    kms_server: t.Callable[..., t.Any],
    recorded: t.Callable[..., t.Any],
    winrs_error: t.Callable[..., Exception],
) -> None:
    lost = winrs_error("connection_reset", doing="reading command output")
    host = kms_server(kms=recorded(STOPPED))
    host.on_line("^xcopy ", lost)
    host.on_command(r'^dir /-c /s /a "D:\\KMS-BACKUP"$', lost)
    outcome = run_action("kms_backup", {**PATHS, "startup_password": PASSWORD})
    # pinned: not unreachable although the connection was lost; changed, as a copy began.
    assert (outcome.raised, outcome.seen) == (True, (False, True, True))
    assert outcome.msg == (
        f"kms02: the connection failed during the backup: {lost} Anything copied is in {DEST}; "
        f"it could not be listed ({lost}). It is not a usable backup. The KM database in "
        f"{KMSDATA} was only read. MSExchangeKMS was STOPPED before the backup and was not "
        "started (it is STOPPED)."
    )
    assert {key: value for key, value in outcome.result.items() if key.startswith("kms")} == {
        "kms_stop_required": False,
        "kms_state_before": "stopped",
        "kms_state_after": "stopped",
    }
    assert outcome.result["backup_path"] == DEST
    assert [command for command in host.commands if command.startswith(CHANGING)] == [
        f'xcopy "{KMSDATA}" "{DEST}" /E /I /H /K /Y /Q < NUL'
    ]


def test_the_startup_password_in_a_failure_text_is_masked(
    run_action: t.Callable[..., t.Any],
    kms_server: t.Callable[..., t.Any],
    winrs_error: t.Callable[..., Exception],
) -> None:
    kms_server().on_line("==exchops:begin:kms==", winrs_error("winrm_error", f" ({PASSWORD})"))
    outcome = run_action("kms_backup", {**PATHS, "startup_password": PASSWORD})
    assert outcome.msg == (
        "kms02 (https://10.0.0.2:5986/wsman): WinRM error while starting a command: the shell "
        "could not be created (********). Nothing was changed."
    )
    assert outcome.shows(PASSWORD) == []


def test_the_startup_password_in_an_unreadable_answer_is_masked(
    run_action: t.Callable[..., t.Any],
    kms_server: t.Callable[..., t.Any],
    recorded: t.Callable[..., t.Any],
) -> None:
    garbled = recorded(RUNNING).stdout.replace("4  RUNNING", f"4  {PASSWORD}")
    kms_server(kms=garbled)
    outcome = run_action("kms_backup", {**PATHS, "startup_password": PASSWORD})
    assert (outcome.raised, outcome.seen) == (True, (False, True, False))
    assert outcome.msg.startswith(
        "kms02: could not read the KM database folder or the state of MSExchangeKMS: kms: "
    )
    assert "********" in outcome.msg and outcome.shows(PASSWORD) == []
    assert outcome.msg.endswith(
        "The host answered in an unexpected form; run with -vvvv to see the commands and "
        "report it. Nothing was changed."
    )


def test_the_startup_password_is_handed_to_the_shell_as_a_secret(
    run_action: t.Callable[..., t.Any], kms_server: t.Callable[..., t.Any]
) -> None:
    host = kms_server()
    run_action("kms_backup", {**PATHS, "startup_password": PASSWORD}, check_mode=True)
    assert [shell.details["secrets"] for shell in host.shells] == [(PASSWORD,)]
    assert host.shells[0].details["target"].command_timeout_sec == 600


def test_check_mode_predicts_the_backup_and_sends_no_change(
    run_action: t.Callable[..., t.Any], kms_server: t.Callable[..., t.Any]
) -> None:
    host = kms_server()
    outcome = run_action("kms_backup", {**PATHS, "startup_password": PASSWORD}, check_mode=True)
    assert (outcome.raised, outcome.seen) == (False, (False, False, True))
    assert outcome.result == {
        "changed": True,
        "msg": f"Would stop MSExchangeKMS, copy 3 files, 3162112 bytes from {KMSDATA} to {DEST}, "
        "verify file list, sizes and SHA256, start MSExchangeKMS again.",
        "database_path": KMSDATA,
        "backup_path": DEST,
        "manifest": [
            {"name": "edb.chk", "size": 8192},
            {"name": "edb.log", "size": 1048576},
            {"name": "Kmsmdb.edb", "size": 2105344},
        ],
        "files": 3,
        "bytes": 3162112,
        "free_bytes": 1234567890,
        "required_bytes": 3162112 + 64 * 1024 * 1024,
        "kms_stop_required": True,
        "kms_state_before": "running",
        "kms_state_after": "running",
        "kms_binary_build": "5.5.2650.23",
        "kms_binary_path": "C:\\EXCHSRVR\\BIN\\KMSERVER.EXE",
    }
    assert host.commands == [
        "sc query MSExchangeKMS",
        f'dir /-c /s /a "{KMSDATA}"',
        f'dir /-c /a "{DEST}"',
        "dir /-c /a D:\\",
        'wmic datafile where name="C:\\\\EXCHSRVR\\\\BIN\\\\KMSERVER.EXE" get Version /value < NUL',
    ]


def test_check_mode_finds_the_database_through_the_registry_and_names_a_new_folder(
    run_action: t.Callable[..., t.Any],
    kms_server: t.Callable[..., t.Any],
    recorded: t.Callable[..., t.Any],
) -> None:
    host = kms_server(kms=recorded(STOPPED), drive="C:")
    outcome = run_action("kms_backup", check_mode=True)
    assert outcome.result["msg"].startswith(
        f"Would copy 3 files, 3162112 bytes from {KMSDATA} to {KMSDATA}.backup-"
    )
    assert outcome.result["backup_path"][len(KMSDATA) :].startswith(".backup-20")
    assert host.commands[0] == 'reg query "HKLM\\SOFTWARE\\Microsoft\\Exchange\\Setup"'
    assert [shell.details["secrets"] for shell in host.shells] == [()]


def test_a_running_kms_without_its_password_is_refused_with_nothing_changed_once(
    run_action: t.Callable[..., t.Any],
    kms_server: t.Callable[..., t.Any],
    recorded: t.Callable[..., t.Any],
) -> None:
    host = kms_server()
    host.on_command(
        r'^reg query "HKLM\\SOFTWARE\\Microsoft\\Exchange\\KMServer"$',
        recorded("reg_query/kms_server_key_typed_vista"),
    )
    outcome = run_action("kms_backup", PATHS)
    assert (outcome.raised, outcome.seen) == (True, (False, True, False))
    assert outcome.msg == (
        "kms02: MSExchangeKMS is running and startup_password is not set, and MasterPasswordPath "
        "(HKLM\\SOFTWARE\\Microsoft\\Exchange\\KMServer) names no startup disk (KB Q196129). "
        "The KM database is copied only with KMS stopped (KB Q190713), and KMS cannot be started "
        "again without its startup password (KB Q184420). Set startup_password (for example to "
        "the vaulted kms_startup_password) to the startup password of the KM Server that created "
        "this KM database, after a move the ORIGINAL server's (KB Q154531), or stop KMS yourself "
        "first. Nothing was changed."
    )
    assert not [command for command in host.commands if command.startswith(CHANGING)]


def test_a_stop_that_sc_refuses_fails_with_nothing_changed_once(
    run_action: t.Callable[..., t.Any],
    kms_server: t.Callable[..., t.Any],
    recorded: t.Callable[..., t.Any],
) -> None:
    host = kms_server()
    host.on_command(r"^sc enumdepend MSExchangeKMS 64000$", recorded("sc_enumdepend/no_dependents"))
    host.on_command(r"^sc stop MSExchangeKMS$", recorded("sc_stop/dependent_services_1051"))
    outcome = run_action("kms_backup", {**PATHS, "startup_password": PASSWORD})
    assert (outcome.raised, outcome.seen) == (True, (False, True, False))
    assert outcome.msg == (
        "kms02: MSExchangeKMS could not be stopped, and the KM database is copied only with KMS "
        "stopped (KB Q190713). MSExchangeKMS is still RUNNING: sc stop MSExchangeKMS failed with "
        "error 1051 (A stop control has been sent to a service that other running services are "
        "dependent on.). A service that depends on it was started meanwhile: find which (sc "
        "enumdepend MSExchangeKMS) and what starts it, then run again. Nothing was changed."
    )
    assert [command for command in host.commands if command.startswith(CHANGING)] == [
        "sc stop MSExchangeKMS"
    ]


def test_check_mode_with_copy_to_names_the_controller_folder_and_creates_nothing(
    run_action: t.Callable[..., t.Any], kms_server: t.Callable[..., t.Any], tmp_path: t.Any
) -> None:
    kms_server()
    arguments = {**PATHS, "startup_password": PASSWORD, "copy_to": str(tmp_path / "copies")}
    outcome = run_action("kms_backup", arguments, check_mode=True)
    folder = tmp_path / "copies" / "kms02" / "KMS-BACKUP"
    assert outcome.result["controller_copy"] == {"path": str(folder)}
    assert outcome.result["msg"].endswith(
        f"start MSExchangeKMS again, then fetch the copy to {folder} on the controller and verify "
        "its SHA256 there."
    )
    assert not (tmp_path / "copies").exists()


def test_verify_only_refuses_a_running_kms_after_one_read_with_nothing_changed_once(
    run_action: t.Callable[..., t.Any], kms_server: t.Callable[..., t.Any]
) -> None:
    host = kms_server()
    manifest = [{"name": "Kmsmdb.edb", "size": 2105344, "sha256": None}]
    outcome = run_action("kms_backup", {"database_path": KMSDATA, "verify_against": manifest})
    assert outcome.raised
    assert outcome.msg.startswith(f"kms02: MSExchangeKMS is RUNNING, so {KMSDATA} is not checked")
    assert outcome.msg.endswith(
        "restore the backup again if KMS already ran on it. Nothing was changed."
    )
    assert outcome.msg.count(NOTHING) == 1
    assert host.commands == ["sc query MSExchangeKMS", f'dir /-c /s /a "{KMSDATA}"']
    assert not any(command.startswith(CHANGING) for command in host.commands)
