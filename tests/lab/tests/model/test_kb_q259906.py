# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The KB Q259906 model: starting MSExchangeKMS against the KM database, and the fix."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from exchlab.exchange import damage_kms_database, fleet_server_build, from_fleet_spec
from exchlab.state import HostState
from exchlab.windows.shell import CommandResult

Run = Callable[[HostState, str], CommandResult]
Make = Callable[..., HostState]
PASSWORD = "HZGYYHACWLQACTI"
UPDATE_55 = r"D:\EXCH55SP3\ENG\SERVER\SETUP\I386\update.exe"
KMSERVER_VERSION = (
    r'wmic datafile where name="C:\\EXCHSRVR\\BIN\\KMSERVER.EXE" get Version /value < NUL'
)
FLEETS = Path(__file__).resolve().parents[2] / "fleets"


def state_of(run: Run, host: HostState, service: str = "MSExchangeKMS") -> str:
    line = next(
        line for line in run(host, f"sc query {service}").stdout.splitlines() if "STATE" in line
    )
    return line.split()[-1]


def kms_events(host: HostState) -> list[int]:
    return [event.event_id for event in host.events if event.source == "MSExchangeKMS"]


def database_digests(host: HostState) -> dict[str, str]:
    return {entry.path: entry.sha256() for entry in host.kms_database_files()}


def test_starting_kms_older_than_the_database_logs_5389_and_stops(run: Run, kb: HostState) -> None:
    before = database_digests(kb)
    started = run(kb, f"sc start MSExchangeKMS {PASSWORD}")
    assert "STATE              : 2  START_PENDING" in started.stdout
    assert started.exit_code == 0
    assert state_of(run, kb) == "STOPPED"
    assert kms_events(kb) == [5389, 5389]
    new = kb.events[-2:]
    assert [(e.source, e.event_id, e.type) for e in new] == [
        ("ESE97", 101, "Information"),
        ("MSExchangeKMS", 5389, "Information"),
    ]
    assert new[-1].message == "KMS is exiting with error 0."
    assert kb.kms_database is not None and kb.kms_database.stamp_build == "5.5.2650"
    assert database_digests(kb) == before


def test_reapplying_the_sp_fixes_the_kb_case_without_touching_the_database(
    run: Run, kb: HostState
) -> None:
    before = database_digests(kb)
    assert run(kb, UPDATE_55 + " /unattended").exit_code == 0
    assert "Version=5.5.2650.12\r\r\n" in run(kb, KMSERVER_VERSION).stdout
    events_before_start = len(kb.events)
    run(kb, f"sc start MSExchangeKMS {PASSWORD}")
    for _attempt in range(3):
        assert state_of(run, kb) == "RUNNING"
    assert kb.events[events_before_start:] == []
    assert kb.kms_database is not None and kb.kms_database.stamp_build == "5.5.2650"
    assert database_digests(kb) == before
    assert kb.kms_database_intact()


@pytest.mark.parametrize(
    ("line", "faults"),
    [
        ("sc start MSExchangeKMS WRONGPASSWORD", {}),
        ("sc start MSExchangeKMS", {}),
        (f"sc start MSExchangeKMS {PASSWORD.lower()}", {}),  # case-sensitive (Q190699)
        (f"sc start MSExchangeKMS {PASSWORD}", {"wrong_kms_password": True}),
    ],
)
def test_a_wrong_or_missing_startup_password_logs_5057(
    run: Run, make_host: Make, line: str, faults: dict[str, object]
) -> None:
    host = make_host(faults=faults)
    run(host, line)
    query = run(host, "sc query MSExchangeKMS").stdout
    assert "STATE              : 1  STOPPED" in query
    assert "WIN32_EXIT_CODE    : 2140  (0x85c)" in query
    assert (host.events[-1].event_id, host.events[-1].message) == (
        5057,
        "The supplied password is not valid.",
    )


@pytest.mark.parametrize("how", ["corrupt", "missing"])
def test_a_damaged_km_database_logs_5058(run: Run, make_host: Make, how: str) -> None:
    host = make_host()
    damage_kms_database(host, how)
    run(host, f"sc start MSExchangeKMS {PASSWORD}")
    assert state_of(run, host) == "STOPPED"
    assert host.events[-1].event_id == 5058
    assert host.to_show()["kms_database"]["intact"] is False


@pytest.mark.parametrize("how", ["corrupt", "missing"])
def test_a_damaged_km_database_on_exchange_2000_logs_5085_and_kms_keeps_running(
    run: Run, make_host: Make, how: str
) -> None:
    # KB 818952's event 5085: "The service started, but Admin/User can not do any operation
    # except restoring the database from a backup set."
    host = make_host(version="2000", sp=3, database_stamp="6.0.6249")
    damage_kms_database(host, how)
    before = database_digests(host)
    run(host, f"sc start MSExchangeKMS {PASSWORD}")
    assert state_of(run, host) == "RUNNING"
    assert (host.events[-1].source, host.events[-1].event_id, host.events[-1].type) == (
        "MSExchangeKMS",
        5085,
        "Error",
    )
    assert "The service started, but Admin/User can not do any operation" in (
        host.events[-1].message
    )
    # It mounted nothing: the database is as it was, its stamp unchanged.
    assert host.kms_database is not None and host.kms_database.stamp_build == "6.0.6249"
    assert database_digests(host) == before and not host.kms_database_intact()


def test_the_fleet_flag_database_corrupt_damages_kmsmdb(run: Run, make_host: Make) -> None:
    host = make_host(database_corrupt=True)
    assert not host.kms_database_intact()
    assert "A service specific error occurred: 1." in run(host, "net start MSExchangeKMS").stderr


def test_kms_reads_its_password_from_image_path_and_the_floppy_file(
    run: Run, make_host: Make
) -> None:
    in_image_path = make_host(image_path_password=True)
    assert run(in_image_path, "net start MSExchangeKMS").exit_code == 0
    floppy = make_host()
    floppy.drives["A:"] = type(floppy.drives["C:"])("A:", "", "0000-0000", 1_474_560, 1_000_000)
    floppy.make_dirs("A:\\")
    floppy.write_file("A:\\Kmserver.pwd", data=PASSWORD.encode() + b"\r\n")
    run(
        floppy, r"reg add HKLM\SOFTWARE\Microsoft\Exchange\KMServer /v MasterPasswordPath /d A:\ /f"
    )
    started = run(floppy, "net start MSExchangeKMS")
    assert started.stdout.endswith("service was started successfully.\r\n\r\n")


def test_a_later_build_raises_the_stamp_and_an_older_one_never_lowers_it(
    run: Run, make_host: Make
) -> None:
    host = make_host(sp=4, database_stamp="5.5.2650", kms_state="stopped")
    before = database_digests(host)
    run(host, f"sc start MSExchangeKMS {PASSWORD}")
    assert state_of(run, host) == "RUNNING"
    assert host.kms_database is not None and host.kms_database.stamp_build == "5.5.2653"
    after = database_digests(host)
    changed = [path for path in after if after[path] != before[path]]
    assert changed == [r"C:\EXCHSRVR\KMSDATA\Kmsmdb.edb"]
    assert host.kms_database_intact()
    # The database now belongs to SP4: SP3's Kmserver.exe is too old for it.
    older = make_host(database_stamp="5.5.2653")
    run(older, f"sc start MSExchangeKMS {PASSWORD}")
    assert state_of(run, older) == "STOPPED"
    assert older.kms_database is not None and older.kms_database.stamp_build == "5.5.2653"


def test_kms_needs_the_directory_running_and_starts_it(run: Run, make_host: Make) -> None:
    host = make_host()
    run(host, "net stop MSExchangeDS /y")
    run(host, f"sc start MSExchangeKMS {PASSWORD}")
    assert state_of(run, host, "MSExchangeDS") == "RUNNING"
    assert state_of(run, host) == "RUNNING"


def test_pending_polls_keep_start_pending_visible(run: Run, make_host: Make) -> None:
    host = make_host(faults={"pending_polls": 2})
    run(host, f"sc start MSExchangeKMS {PASSWORD}")
    assert [state_of(run, host) for _poll in range(4)] == [
        "START_PENDING",
        "START_PENDING",
        "RUNNING",
        "RUNNING",
    ]


def test_show_reports_the_outcome_of_a_start_without_changing_the_host(
    run: Run, kb: HostState
) -> None:
    run(kb, f"sc start MSExchangeKMS {PASSWORD}")
    shown = kb.to_show()
    assert shown["services"]["MSExchangeKMS"]["state"] == "stopped"
    assert [event["id"] for event in shown["events"]][-1] == 5389
    assert kb.services["MSExchangeKMS"].state == "START_PENDING"


def test_exchange_2000_has_the_same_fault_and_the_same_fix(run: Run, make_host: Make) -> None:
    host = make_host(
        "E2K-KMS-NEW",
        "2000",
        3,
        km_binary_build="6.0.4417.0",
        database_stamp="6.0.6249",
        events=[5389],
        media={"D:\\E2KSP3": "6.0.6249"},
        os="2003",
    )
    # [lab]: Q274321's wording (Exchange 5.5 SP3 on Windows 2000), which the lab gives its
    # Exchange 2000 hosts so that the same ID carries two texts.
    assert host.events[-1].message == (
        "Microsoft Exchange Key Management service is exiting with return code 0."
    )
    run(host, f"sc start MSExchangeKMS {PASSWORD}")
    assert state_of(run, host) == "STOPPED"
    assert run(host, r"D:\E2KSP3\I386\update.exe").exit_code == 0
    log = run(host, r'type "C:\Exchange Server Setup Progress.log"').stdout
    assert log.startswith("++++ Microsoft Exchange Setup initialized ++++\r\n")
    run(host, f"sc start MSExchangeKMS {PASSWORD}")
    assert state_of(run, host) == "RUNNING"


def test_the_q259906_fleet_builds_the_kb_pair(run: Run) -> None:
    fleet = yaml.safe_load((FLEETS / "q259906.yml").read_text(encoding="utf-8"))
    pair = fleet["pairs"][0]
    source = from_fleet_spec(pair["source"]["name"], "127.0.0.10", pair["source"])
    target = from_fleet_spec(pair["target"]["name"], "127.0.0.11", pair["target"])
    assert state_of(run, source) == "RUNNING"
    assert state_of(run, target) == "STOPPED"
    assert target.to_show()["exchange"]["kms_binary_build"] == "5.5.1960.8"
    assert target.to_show()["exchange"]["build"] == "5.5.2650"
    assert [event["id"] for event in target.to_show()["events"]] == [5389]
    assert target.to_show()["exchange"]["media"] == {"D:\\EXCH55SP3": "5.5.2650"}
    assert fleet_server_build(pair["source"]) == "5.5.2650"
    assert fleet_server_build({"exchange": {"version": "2000", "sp": 3}}) == "6.0.6249"
    assert fleet_server_build({"exchange": None}) is None


def test_the_disk_mode_fleet_keeps_the_startup_password_on_a_disk_and_kms_starts_without_it(
    run: Run,
) -> None:
    fleet = yaml.safe_load((FLEETS / "disk_mode.yml").read_text(encoding="utf-8"))
    pair = fleet["pairs"][0]
    target = from_fleet_spec(pair["target"]["name"], "127.0.0.11", pair["target"])
    source = from_fleet_spec(pair["source"]["name"], "127.0.0.10", pair["source"])
    key = r'reg query "HKLM\SOFTWARE\Microsoft\Exchange\KMServer"'
    for host in (source, target):
        answer = run(host, key).stdout
        assert "MasterPasswordPath    REG_SZ    A:\\\r\n" in answer  # KB Q196129's value
        assert "BackupPasswordPath    REG_SZ    A:\\\r\n" in answer
    assert state_of(run, source) == "RUNNING"
    # The KB case first: the RTM Kmserver.exe exits with 5389 though the disk is read.
    run(target, "sc start MSExchangeKMS")
    assert state_of(run, target) == "STOPPED"
    assert kms_events(target)[-1] == 5389
    run(target, UPDATE_55)
    run(target, "sc start MSExchangeKMS")
    assert state_of(run, target) == "RUNNING"
    assert target.kms_database_intact()


def test_a_disk_mode_kms_with_the_wrong_disk_logs_5057(run: Run) -> None:
    fleet = yaml.safe_load((FLEETS / "disk_mode.yml").read_text(encoding="utf-8"))
    target = from_fleet_spec("kms-new", "127.0.0.11", fleet["pairs"][0]["target"])
    target.write_file("A:\\Kmserver.pwd", data=b"NOTTHEPASSWORD")  # another server's disk
    run(target, UPDATE_55)
    run(target, "sc start MSExchangeKMS")
    assert state_of(run, target) == "STOPPED"
    assert kms_events(target)[-1] == 5057


def test_hosts_without_exchange_and_with_exchange_2016(run: Run, make_host: Make) -> None:
    bare = make_host("FILESRV", None)
    assert run(bare, "sc query MSExchangeKMS").exit_code == 1060
    assert run(bare, r"reg query HKLM\SOFTWARE\Microsoft\Exchange\Setup").exit_code == 1
    assert bare.to_show()["exchange"] == {"installed": False}
    modern = make_host("EX2016", "2016")
    setup = run(modern, r"reg query HKLM\SOFTWARE\Microsoft\ExchangeServer\v15\Setup").stdout
    assert "    MsiProductMinor    REG_DWORD    0x1\r\n" in setup
    assert "    MsiBuildMajor    REG_DWORD    0x9cb\r\n" in setup
    exsetup = run(
        modern,
        r'wmic datafile where name="C:\\Program Files\\Microsoft\\Exchange Server\\V15\\Bin'
        r'\\ExSetup.exe" get Version /value < NUL',
    )
    assert "Version=15.1.2507.6\r\r\n" in exsetup.stdout
    assert modern.to_show()["exchange"]["build"] == "15.1.2507.6"
