# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""update.exe and the faults of the Windows layer: installer failure, disk full, hung services."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from exchlab.exchange import KMS_COMPONENT_KEY, SETUP_KEY
from exchlab.state import HostState, waiting_releases
from exchlab.windows.shell import CommandResult

Run = Callable[[HostState, str], CommandResult]
Make = Callable[..., HostState]
PASSWORD = "HZGYYHACWLQACTI"
UPDATE_55 = r"D:\EXCH55SP3\ENG\SERVER\SETUP\I386\update.exe"
LOG = "C:\\Exchange Server Setup.log"
KMSDATA = r"C:\EXCHSRVR\KMSDATA"


def last_run(host: HostState) -> list[str]:
    entry = host.fs.file_entry(LOG)
    assert entry is not None
    text = entry.content().decode("ascii")
    return text[text.rindex("++++ Microsoft Exchange Setup initialized ++++") :].splitlines()


def versions(host: HostState) -> dict[str, str | None]:
    return {e.name: e.version for e in host.fs.children(r"C:\EXCHSRVR\BIN")[1]}


def digests(host: HostState) -> dict[str, str]:
    return {entry.path: entry.sha256() for entry in host.kms_database_files()}


def test_update_stops_exchange_replaces_binaries_and_restarts_all_but_kms(
    run: Run, make_host: Make
) -> None:
    host = make_host(
        sp=2,
        kms_state="running",
        database_stamp="5.5.2448",
        media={"D:\\EXCH55SP3": "5.5.2650"},
    )
    before = digests(host)
    assert run(host, UPDATE_55 + " -q /Z").exit_code == 0
    assert versions(host)["STORE.EXE"] == "5.5.2650.23"
    assert versions(host)["KMSERVER.EXE"] == "5.5.2650.12"
    assert versions(host)["KMSUPGRD.DLL"] == "5.5.2418.0"  # not in SP3's list: left as it was
    registry = host.registry
    assert [
        registry.data(SETUP_KEY, n)
        for n in ("ServicePackNumber", "ServicePackBuild", "NewestBuild", "Build")
    ] == [3, 2650, 2650, 1960]
    states = {name: status.state for name, status in host.services.items()}
    assert states == {
        "MSExchangeSA": "RUNNING",
        "MSExchangeDS": "RUNNING",
        "MSExchangeIS": "RUNNING",
        "MSExchangeMTA": "RUNNING",
        "MSExchangeKMS": "STOPPED",
    }
    lines = last_run(host)
    assert lines[0] == "++++ Microsoft Exchange Setup initialized ++++"
    stopping = [line.split()[-1] for line in lines if "Stopping service" in line]
    assert (
        stopping.index("MSExchangeKMS")
        < stopping.index("MSExchangeDS")
        < stopping.index("MSExchangeSA")
    )
    assert any("MSExchangeKMS was not restarted" in line for line in lines)
    # [lab] realistic: no completion wording (no source shows one, Q202258).
    assert not any("successfully" in line or "Setup failed" in line for line in lines)
    assert digests(host) == before
    run_record = host.installer_runs[-1]
    assert (run_record.switches, run_record.exit_code, run_record.media) == (
        ("-q", "/Z"),
        0,
        "D:\\EXCH55SP3",
    )
    assert host.to_show()["exchange"]["updates"][-1]["outcome"] == "succeeded"


def test_update_takes_its_configured_time(run: Run, make_host: Make) -> None:
    host = make_host(media={"D:\\EXCH55SP3": "5.5.2650"}, faults={"update_duration_s": 0.2})
    started = time.monotonic()
    assert run(host, UPDATE_55).exit_code == 0
    assert time.monotonic() - started >= 0.2


def test_while_update_waits_other_commands_see_its_process_and_its_log_so_far(
    run: Run, make_host: Make
) -> None:
    host = make_host(sp=2, database_stamp="5.5.2448", media={"D:\\EXCH55SP3": "5.5.2650"})
    seen: list[tuple[str, list[str]]] = []

    def meanwhile(_seconds: float) -> None:
        # What a poll from another shell reads during update.exe's two waits.
        tasks = run(host, 'tasklist /fi "imagename eq update.exe" /fo csv /nh').stdout
        seen.append((tasks, last_run(host)))

    with waiting_releases(meanwhile):
        assert run(host, UPDATE_55).exit_code == 0
    assert len(seen) == 2
    assert all(tasks.startswith('"update.exe",') for tasks, _log in seen)
    assert seen[0][1][-1].endswith("Stopping service MSExchangeSA")
    assert len(seen[1][1]) < len(last_run(host))
    assert not any("successfully" in line for line in last_run(host))
    assert "No tasks" in run(host, 'tasklist /fi "imagename eq update.exe"').stdout


def test_update_refuses_a_password_in_the_kms_image_path(run: Run, make_host: Make) -> None:
    # KB Q235418: "The system cannot find the file specified."
    host = make_host(
        km_binary_build="5.5.1960.8", image_path_password=True, media={"D:\\EXCH55SP3": "5.5.2650"}
    )
    before = versions(host)
    result = run(host, UPDATE_55)
    assert result.exit_code == 0xC0020002
    # The error is a dialog (Q290226), not a log line: the log simply ends.
    assert last_run(host)[-1].endswith(
        "Checking the installed version of C:\\Exchsrvr\\Bin\\Kmserver.exe"
    )
    assert versions(host) == before
    assert host.services["MSExchangeIS"].state == "RUNNING"
    assert PASSWORD not in "\n".join(last_run(host))


def test_update_fails_half_way_when_the_installer_fault_is_set(run: Run, make_host: Make) -> None:
    host = make_host(
        km_binary_build="5.5.1960.8",
        sp=3,
        media={"D:\\EXCH55SP3": "5.5.2650"},
        faults={"sp_installer_fails": True},
    )
    host.registry.set_value(SETUP_KEY, "ServicePackNumber", "REG_DWORD", 3)
    before_db = digests(host)
    result = run(host, UPDATE_55)
    assert result.exit_code == 0xC0070020
    after = versions(host)
    assert after["STORE.EXE"] == "5.5.2650.23"  # the first half was replaced
    assert after["KMSERVER.EXE"] == "5.5.1960.8"  # the second half was not
    assert not any("error" in line.lower() for line in last_run(host))  # a dialog, not the log
    assert not any("completed successfully" in line for line in last_run(host))
    assert all(status.state == "STOPPED" for status in host.services.values())
    assert digests(host) == before_db


def test_update_refuses_a_half_removed_kms_logging_only_the_first_line(
    run: Run, make_host: Make
) -> None:
    # KB Q290226: 0xc0020002, and the log holds only "++++ ... initialized ++++".
    host = make_host(media={"D:\\EXCH55SP3": "5.5.2650"})
    host.registry.delete_key(KMS_COMPONENT_KEY)
    assert run(host, UPDATE_55).exit_code == 0xC0020002
    assert last_run(host) == ["++++ Microsoft Exchange Setup initialized ++++"]


def test_update_refuses_to_downgrade(run: Run, make_host: Make) -> None:
    host = make_host(sp=4, media={"D:\\EXCH55SP3": "5.5.2650"})
    assert run(host, UPDATE_55).exit_code == 0xC00A0015
    assert versions(host)["STORE.EXE"] == "5.5.2653.23"


def test_forklift_update_restarts_nothing_and_media_can_change_start_types(
    run: Run, make_host: Make
) -> None:
    from exchlab.exchange import add_media

    host = make_host()
    add_media(host, "E:\\SP3", "5.5.2650", start_types={"MSExchangeKMS": 2})
    assert run(host, r"E:\SP3\ENG\SERVER\SETUP\I386\UPDATE.EXE /R").exit_code == 0
    assert all(status.state == "STOPPED" for status in host.services.values())
    assert "2   AUTO_START" in run(host, "sc qc MSExchangeKMS").stdout


def test_a_hung_service_stops_the_update_and_stays_stop_pending(run: Run, make_host: Make) -> None:
    host = make_host(
        kms_state="running",
        media={"D:\\EXCH55SP3": "5.5.2650"},
        faults={"service_wont_stop": ["msexchangekms"]},
    )
    assert run(host, UPDATE_55).exit_code == 0xC0020420
    # The error is a dialog; the log ends at the stop it tried (Q202258's plain ending).
    assert last_run(host)[-1].endswith("Stopping service MSExchangeKMS")
    assert "STATE              : 3  STOP_PENDING" in run(host, "sc query MSExchangeKMS").stdout
    assert run(host, "sc stop MSExchangeKMS").exit_code == 1061
    assert run(host, "net stop MSExchangeKMS").exit_code == 2


def test_net_stop_of_a_hung_service_says_it_could_not_be_stopped(run: Run, make_host: Make) -> None:
    host = make_host(kms_state="running", faults={"service_wont_stop": ["MSExchangeKMS"]})
    result = run(host, "net stop MSExchangeKMS")
    assert result.stdout == "The Microsoft Exchange Key Management Server service is stopping.\r\n"
    assert result.stderr == (
        "The Microsoft Exchange Key Management Server service could not be stopped.\r\n\r\n"
    )
    assert result.exit_code == 2


def test_disk_full_during_xcopy_fails_part_way_and_leaves_the_source_intact(
    run: Run, make_host: Make
) -> None:
    host = make_host(faults={"disk_full": True})
    before = digests(host)
    result = run(host, rf"xcopy {KMSDATA} C:\KMSBACKUP /E /I /H /Y /K")
    assert result.stdout == f"{KMSDATA}\\edb.chk\r\n{KMSDATA}\\edb.log\r\n1 File(s) copied\r\n"
    assert (result.stderr, result.exit_code) == ("Insufficient disk space\r\n", 4)
    assert [e.name for e in host.fs.children(r"C:\KMSBACKUP")[1]] == ["edb.chk"]
    assert digests(host) == before and host.kms_database_intact()
    backups = host.to_show()["backups"]
    assert backups == []  # no Kmsmdb.edb was copied


def test_disk_full_during_copy_and_robocopy(run: Run, make_host: Make) -> None:
    host = make_host(faults={"disk_full": True, "disk_full_free_bytes": 0}, os="2012")
    copied = run(host, rf"copy {KMSDATA}\edb.chk C:\edb.chk")
    assert (copied.stdout, copied.stderr, copied.exit_code) == (
        "        0 file(s) copied.\r\n",
        "There is not enough space on the disk.\r\n",
        1,
    )
    robo = run(host, rf"robocopy {KMSDATA} C:\KMSBACKUP /E /COPY:DAT /R:0 /NJH /NJS")
    assert robo.exit_code == 8
    assert rf"ERROR 112 (0x00000070) Copying File {KMSDATA}\edb.chk" in robo.stdout
    assert "There is not enough space on the disk.\r\n" in robo.stdout


def test_a_verified_backup_shows_up_in_show(run: Run, make_host: Make) -> None:
    host = make_host()
    assert run(host, rf"xcopy {KMSDATA} C:\KMSBACKUP\20010314 /E /I /H /Y /K").exit_code == 0
    assert host.to_show()["backups"] == [
        {
            "path": "C:\\KMSBACKUP\\20010314",
            "files": 3,
            "bytes": 3_162_112,
            "matches_database": True,
        }
    ]


def test_update_runs_from_its_own_folder_as_cmd_finds_it(run: Run, make_host: Make) -> None:
    host = make_host(km_binary_build="5.5.1960.8", media={"D:\\EXCH55SP3": "5.5.2650"})
    result = run(host, r"cd /d D:\EXCH55SP3\ENG\SERVER\SETUP\I386 && update /q")
    assert result.exit_code == 0
    assert versions(host)["KMSERVER.EXE"] == "5.5.2650.12"
    assert host.installer_runs[-1].installer == r"D:\EXCH55SP3\ENG\SERVER\SETUP\I386\UPDATE.EXE"


def test_clearing_the_hang_fault_lets_the_pending_stop_finish(run: Run, make_host: Make) -> None:
    host = make_host(kms_state="running", faults={"service_wont_stop": ["MSExchangeKMS"]})
    run(host, "sc stop MSExchangeKMS")
    assert "STATE              : 3  STOP_PENDING" in run(host, "sc query MSExchangeKMS").stdout

    # As when the operator ends the hung process: the stop that was waiting completes.
    host.faults["service_wont_stop"] = []
    assert "STATE              : 1  STOPPED" in run(host, "sc query MSExchangeKMS").stdout


def test_update_waiting_for_input_stays_alive_without_progress_then_leaves_services_stopped(
    run: Run, make_host: Make
) -> None:
    host = make_host(
        km_binary_build="5.5.1960.8",
        sp=3,
        media={"D:\\EXCH55SP3": "5.5.2650"},
        faults={"update_waits_for_input_s": 30},
    )
    before_db = digests(host)
    seen: list[tuple[str, int, dict[str, str]]] = []

    def meanwhile(seconds: float) -> None:
        tasks = run(host, 'tasklist /fi "imagename eq update.exe" /fo csv /nh').stdout
        seen.append((tasks, len(last_run(host)), dict(versions(host))))
        assert seen[-1][0].startswith('"update.exe",')
        del seconds

    with waiting_releases(meanwhile):
        result = run(host, UPDATE_55)
    # The first wait is the run's own; the prompt is the second: alive, nothing logged or copied.
    prompt = seen[-1]
    assert prompt[1] == len(last_run(host)) and prompt[2] == versions(host)
    assert result.exit_code == 0xC00204FF  # [lab] cancelled
    assert versions(host)["KMSERVER.EXE"] == "5.5.1960.8"
    assert all(status.state == "STOPPED" for status in host.services.values())
    assert digests(host) == before_db


def test_a_half_installed_service_pack_is_completed_by_running_update_exe_again(
    run: Run, make_host: Make
) -> None:
    # The registry says SP3, Store.exe is still SP2's (KB Q278518, Q243604): update.exe of SP3
    # reinstalls the kit's files, Store.exe among them.
    host = make_host(store_build="5.5.2448.8", media={"D:\\EXCH55SP3": "5.5.2650"})
    assert versions(host)["STORE.EXE"] == "5.5.2448.8"
    assert versions(host)["KMSERVER.EXE"] == "5.5.2650.12"
    assert host.registry.data(SETUP_KEY, "NewestBuild") == 2650
    assert run(host, UPDATE_55).exit_code == 0
    assert versions(host)["STORE.EXE"] == "5.5.2650.23"
    assert host.services["MSExchangeKMS"].state == "STOPPED"


def test_a_store_build_of_another_exchange_version_is_refused(make_host: Make) -> None:
    with pytest.raises(ValueError, match="store_build 6.0.5762.4 is not an Exchange 5.5 build"):
        make_host(store_build="6.0.5762.4")
