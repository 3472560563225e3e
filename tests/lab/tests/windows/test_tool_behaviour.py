# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""reg, sc, net, wmic, dir, type, copy/xcopy/robocopy, certutil, md: behaviour beyond E1-E15."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable

import pytest

from exchlab.exchange import build_exchange_host
from exchlab.state import HostState
from exchlab.windows.shell import CommandResult

Run = Callable[[HostState, str], CommandResult]
SETUP = r"HKLM\SOFTWARE\Microsoft\Exchange\Setup"
KMS_KEY = r"HKLM\SYSTEM\CurrentControlSet\Services\MSExchangeKMS"
EVENTS = "LogFile='Application' and SourceName='MSExchangeKMS'"
EVENT_FIELDS = "EventCode,Message,RecordNumber,SourceName,TimeGenerated,Type"
KMSDATA = r"C:\EXCHSRVR\KMSDATA"


def test_tools_stay_hashable_although_modules_are_named_hash_type_dir_copy() -> None:
    from exchlab.windows.tools import registry

    internal, programs = registry()
    assert len({*internal.values(), *programs.values()}) >= 15


# -- reg ------------------------------------------------------------------------------------


def test_reg_query_is_case_insensitive_and_prints_the_stored_spelling(
    run: Run, sp3: HostState
) -> None:
    result = run(sp3, r"reg query hklm\software\microsoft\exchange\setup /v servicepacknumber")
    assert result.stdout == (
        "\r\nHKEY_LOCAL_MACHINE\\SOFTWARE\\Microsoft\\Exchange\\Setup\r\n"
        "    ServicePackNumber    REG_DWORD    0x3\r\n\r\n"
    )


def test_reg_query_s_prints_every_key_with_an_empty_line_after_it(run: Run, sp3: HostState) -> None:
    result = run(sp3, r"reg query HKLM\SOFTWARE\Microsoft\Exchange /s")
    assert result.stdout.startswith("\r\nHKEY_LOCAL_MACHINE\\SOFTWARE\\Microsoft\\Exchange\r\n\r\n")
    assert (
        "HKEY_LOCAL_MACHINE\\SOFTWARE\\Microsoft\\Exchange\\KMServer\r\n"
        "    MasterPasswordPath    REG_SZ    \r\n"
        "    BackupPasswordPath    REG_SZ    \r\n\r\n"
    ) in result.stdout
    assert result.stdout.endswith("Setup\\Key Management Server\r\n\r\n")


def test_reg_query_v_with_s_searches_subkeys(run: Run, sp3: HostState) -> None:
    result = run(sp3, r"reg query HKLM\SOFTWARE\Microsoft /v NewestBuild /s")
    assert result.stdout.endswith(
        "    NewestBuild    REG_DWORD    0xa5a\r\n\r\nEnd of search: 1 match(es) found.\r\n"
    )


@pytest.mark.parametrize(
    ("os", "line"),
    [
        ("2016", "    DependOnService    REG_MULTI_SZ    MSExchangeDS\r\n"),
        ("2003", "    DependOnService\tREG_MULTI_SZ\tMSExchangeDS\\0\\0\r\n"),
        ("2000", "    DependOnService\tREG_MULTI_SZ\tMSExchangeDS\\0\\0\r\n"),
    ],
)
def test_reg_multi_sz_per_era(run: Run, os: str, line: str) -> None:
    host = build_exchange_host("KMS-OLD", "127.0.0.3", "5.5", 3, os=os)
    result = run(host, f"reg query {KMS_KEY} /v DependOnService")
    assert line in result.stdout
    if os == "2000":
        assert result.stdout.startswith("\r\n! REG.EXE VERSION 2.0\r\n\r\n")


def test_reg_query_ve_of_a_key_without_default_value(run: Run, sp3: HostState) -> None:
    result = run(sp3, f"reg query {SETUP} /ve")
    assert "    (Default)    REG_SZ    (value not set)\r\n" in result.stdout
    assert result.exit_code == 0


@pytest.mark.parametrize(
    ("line", "stdout", "stderr", "exit_code"),
    [
        (
            f"reg query {SETUP} /v Nope",
            "\r\n",
            "ERROR: The system was unable to find the specified registry key or value.\r\n",
            1,
        ),
        (
            "reg query HKXX\\Software",
            "",
            'ERROR: Invalid key name.\r\nType "REG QUERY /?" for usage.\r\n',
            1,
        ),
        (
            f"reg query {SETUP} /q",
            "",
            'ERROR: Invalid syntax.\r\nType "REG QUERY /?" for usage.\r\n',
            1,
        ),
        (
            r"reg query \\ELSEWHERE\HKLM\Software",
            "",
            "ERROR: The network path was not found.\r\n\r\n",
            1,
        ),
    ],
)
def test_reg_errors(
    run: Run, sp3: HostState, line: str, stdout: str, stderr: str, exit_code: int
) -> None:
    result = run(sp3, line)
    assert (result.stdout, result.stderr, result.exit_code) == (stdout, stderr, exit_code)


def test_reg_accepts_the_host_itself_as_remote_machine(run: Run, sp3: HostState) -> None:
    assert run(sp3, rf"reg query \\KMS-OLD\{SETUP} /v Build").exit_code == 0


def test_reg_add_and_delete_change_the_registry(run: Run, sp3: HostState) -> None:
    added = run(sp3, rf'reg add {KMS_KEY} /v ImagePath /t REG_EXPAND_SZ /d "C:\X\Kmserver.exe" /f')
    assert (added.stdout, added.exit_code) == ("The operation completed successfully.\r\n", 0)
    config = sp3.service_config("MSExchangeKMS")
    assert config is not None and config.image_path == r"C:\X\Kmserver.exe"
    deleted = run(sp3, rf"reg delete {SETUP} /v ServicePackBuild /f")
    assert deleted.exit_code == 0
    assert run(sp3, rf"reg query {SETUP} /v ServicePackBuild").exit_code == 1


# -- sc -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "stdout", "exit_code"),
    [
        (
            "sc query NoSuchService",
            "[SC] EnumQueryServicesStatus:OpenService FAILED 1060:\r\n\r\n"
            "The specified service does not exist as an installed service.\r\n\r\n",
            1060,
        ),
        (
            "sc start NoSuchService",
            "[SC] StartService: OpenService FAILED 1060:\r\n\r\n"
            "The specified service does not exist as an installed service.\r\n\r\n",
            1060,
        ),
        (
            "sc stop MSExchangeDS",
            "[SC] ControlService FAILED 1051:\r\n\r\nA stop control has been "
            "sent to a service that other running services are dependent on.\r\n\r\n",
            1051,
        ),
        (
            "sc start MSExchangeDS",
            "[SC] StartService FAILED 1056:\r\n\r\nAn instance of the "
            "service is already running.\r\n\r\n",
            1056,
        ),
    ],
)
def test_sc_failures(run: Run, sp3: HostState, line: str, stdout: str, exit_code: int) -> None:
    result = run(sp3, line)
    assert (result.stdout, result.exit_code) == (stdout, exit_code)


def test_sc_queryex_of_a_stopped_service_shows_pid_0(run: Run, sp3: HostState) -> None:
    result = run(sp3, "sc queryex MSExchangeKMS")
    assert result.stdout.endswith(
        "        WIN32_EXIT_CODE    : 1077  (0x435)\r\n"
        "        SERVICE_EXIT_CODE  : 0  (0x0)\r\n"
        "        CHECKPOINT         : 0x0\r\n"
        "        WAIT_HINT          : 0x0\r\n"
        "        PID                : 0\r\n"
        "        FLAGS              : \r\n\r\n"
    )


def test_sc_stop_returns_at_stop_pending_and_the_next_query_sees_stopped(
    run: Run, sp3_running: HostState
) -> None:
    stopping = run(sp3_running, "sc stop MSExchangeKMS")
    assert "        STATE              : 3  STOP_PENDING\r\n" in stopping.stdout
    assert "STATE              : 1  STOPPED" in run(sp3_running, "sc query MSExchangeKMS").stdout


def test_sc_query_without_a_name_lists_active_services_with_display_names(
    run: Run, sp3: HostState
) -> None:
    result = run(sp3, "sc query")
    assert result.stdout.startswith(
        "\r\nSERVICE_NAME: MSExchangeDS\r\nDISPLAY_NAME: Microsoft Exchange Directory\r\n"
    )
    assert "\r\n\r\nSERVICE_NAME: MSExchangeIS\r\n" in result.stdout
    assert "MSExchangeKMS" not in result.stdout


def test_sc_config_rewrites_the_image_path(run: Run, sp3: HostState) -> None:
    result = run(
        sp3, r'sc config MSExchangeKMS binPath= "C:\Exchsrvr\Bin\Kmserver.exe" start= auto'
    )
    assert (result.stdout, result.exit_code) == ("[SC] ChangeServiceConfig SUCCESS\r\n", 0)
    assert "2   AUTO_START" in run(sp3, "sc qc MSExchangeKMS").stdout


def test_sc_start_starts_stopped_dependencies_first(run: Run, sp3: HostState) -> None:
    for line in ("net stop MSExchangeSA /y", "sc start MSExchangeKMS HZGYYHACWLQACTI"):
        run(sp3, line)
    run(sp3, "sc query MSExchangeKMS")
    states = {name: status.state for name, status in sp3.services.items()}
    assert states["MSExchangeSA"] == states["MSExchangeDS"] == states["MSExchangeKMS"] == "RUNNING"
    assert states["MSExchangeIS"] == "STOPPED"


def test_sc_enumdepend_lists_every_dependent_dependents_first(
    run: Run, sp3_running: HostState
) -> None:
    result = run(sp3_running, "sc enumdepend MSExchangeSA 64000")
    lines = result.stdout.splitlines()
    names = [line.split(": ", 1)[1] for line in lines if line.startswith("SERVICE_NAME:")]
    assert (lines[0], result.exit_code) == (f"Enum: entriesRead = {len(names)}", 0)
    # KMS, IS and MTA need the Directory, which needs the System Attendant: all of them are
    # listed, and each one before the services it depends on (the order to stop them in).
    assert set(names) >= {"MSExchangeDS", "MSExchangeIS", "MSExchangeMTA", "MSExchangeKMS"}
    assert names.index("MSExchangeKMS") < names.index("MSExchangeDS")
    assert "DISPLAY_NAME: Microsoft Exchange Directory" in lines
    assert run(sp3_running, "sc enumdepend MSExchangeKMS").stdout == "Enum: entriesRead = 0\r\n"


def test_sc_enumdepend_of_a_missing_service_fails_with_1060(run: Run, sp3: HostState) -> None:
    result = run(sp3, "sc enumdepend NoSuchService")
    assert (result.stdout.splitlines()[0], result.exit_code) == (
        "[SC] OpenService FAILED 1060:",
        1060,
    )


def test_sc_start_fails_with_1068_when_a_dependency_is_disabled(run: Run, sp3: HostState) -> None:
    run(sp3, "net stop MSExchangeDS /y & sc config MSExchangeDS start= disabled")
    result = run(sp3, "sc start MSExchangeKMS HZGYYHACWLQACTI")
    assert (result.stdout.splitlines()[0], result.exit_code) == (
        "[SC] StartService FAILED 1068:",
        1068,
    )


# -- net ------------------------------------------------------------------------------------


def test_net_start_of_kms_without_password_fails_with_error_2140(run: Run, sp3: HostState) -> None:
    result = run(sp3, "net start MSExchangeKMS")
    assert result.stdout == "The Microsoft Exchange Key Management Server service is starting.\r\n"
    assert result.stderr == (
        "The Microsoft Exchange Key Management Server service could not be started.\r\n\r\n"
        "A system error has occurred.\r\n\r\n"
        "System error 2140 has occurred.\r\n\r\n"
        "An internal Windows NT error occurred.\r\n\r\n"
    )
    assert result.exit_code == 2
    assert (sp3.events[-1].event_id, sp3.events[-1].message) == (
        5057,
        "The supplied password is not valid.",
    )


@pytest.mark.parametrize(
    ("line", "stdout", "stderr"),
    [
        (
            "net start NoSuch",
            "",
            "The service name is invalid.\r\n\r\n"
            "More help is available by typing NET HELPMSG 2185.\r\n\r\n",
        ),
        (
            "net stop MSExchangeKMS",
            "",
            "The Microsoft Exchange Key Management Server service is "
            "not started.\r\n\r\nMore help is available by typing NET HELPMSG 3521.\r\n\r\n",
        ),
        (
            'net start "Microsoft Exchange Directory"',
            "",
            "The requested service has already been "
            "started.\r\n\r\nMore help is available by typing NET HELPMSG 2182.\r\n\r\n",
        ),
    ],
)
def test_net_failures_go_to_stderr_with_exit_code_2(
    run: Run, sp3: HostState, line: str, stdout: str, stderr: str
) -> None:
    result = run(sp3, line)
    assert (result.stdout, result.stderr, result.exit_code) == (stdout, stderr, 2)


def test_net_start_without_arguments_lists_started_services(run: Run, sp3: HostState) -> None:
    result = run(sp3, "net start")
    assert result.stdout == (
        "These Windows services are started:\r\n\r\n"
        "   Microsoft Exchange Directory\r\n"
        "   Microsoft Exchange Information Store\r\n"
        "   Microsoft Exchange Message Transfer Agent\r\n"
        "   Microsoft Exchange System Attendant\r\n"
        "\r\nThe command completed successfully.\r\n\r\n"
    )


def test_net_stop_ds_without_y_stops_nothing(run: Run, sp3_running: HostState) -> None:
    result = run(sp3_running, "net stop MSExchangeDS < NUL")
    assert result.exit_code == 2
    assert "   Microsoft Exchange Key Management Server\r\n" in result.stdout
    assert sp3_running.services["MSExchangeKMS"].state == "RUNNING"


def test_net_stop_ds_with_y_stops_kms_first(run: Run, sp3_running: HostState) -> None:
    result = run(sp3_running, "net stop MSExchangeDS /y")
    assert result.exit_code == 0
    stops = [line for line in result.stdout.splitlines() if line.endswith("stopped successfully.")]
    assert len(stops) == 4  # KMS, IS, MTA (in any order), then the Directory itself
    assert "The Microsoft Exchange Key Management Server service was stopped successfully." in stops
    assert stops[-1] == "The Microsoft Exchange Directory service was stopped successfully."
    assert sp3_running.services["MSExchangeSA"].state == "RUNNING"


# -- wmic -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("condition", "records"),
    [
        ("", [3, 1]),
        (" and EventCode=5389", [3, 1]),
        (" and RecordNumber>1", [3]),
        (" and RecordNumber<3", [1]),
        (" and TimeGenerated>'20010314091200.000000+000'", [3]),
        (" and Message like 'KMS is exiting%'", [3, 1]),
        (" and (EventCode=5057 or EventCode=5058)", []),
    ],
)
def test_wmic_ntevent_where_clauses(
    run: Run, kb: HostState, condition: str, records: list[int]
) -> None:
    run(kb, "sc start MSExchangeKMS HZGYYHACWLQACTI")  # logs ESE97 101 and MSExchangeKMS 5389
    result = run(kb, f'wmic ntevent where "{EVENTS}{condition}" get RecordNumber /value < NUL')
    found = [int(line[13:]) for line in result.stdout.split("\r\r\n") if line.startswith("Record")]
    assert found == records
    if not records:
        assert (result.stdout, result.stderr) == ("", "No Instance(s) Available.\r\n")


def test_wmic_ntevent_value_fields_are_alphabetical(run: Run, kb: HostState) -> None:
    result = run(kb, f'wmic ntevent where "{EVENTS}" get {EVENT_FIELDS} /value < NUL')
    assert result.stdout == (
        "\r\r\n\r\r\n"
        "EventCode=5389\r\r\n"
        "Message=KMS is exiting with error 0.\r\r\n"
        "RecordNumber=1\r\r\n"
        "SourceName=MSExchangeKMS\r\r\n"
        "TimeGenerated=20010314091140.000000+000\r\r\n"
        "Type=Information\r\r\n"
        "\r\r\n\r\r\n\r\r\n"
    )


def test_wmic_datafile_of_a_file_without_version_prints_only_empty_lines(
    run: Run, sp3: HostState
) -> None:
    result = run(
        sp3, r'wmic datafile where name="C:\\EXCHSRVR\\KMSDATA\\edb.log" get Version /value < NUL'
    )
    assert (result.stdout, result.exit_code) == ("\r\r\n" * 5, 0)


def test_wmic_where_with_single_backslashes_is_an_invalid_query(run: Run, sp3: HostState) -> None:
    result = run(sp3, r'wmic datafile where name="C:\EXCHSRVR\BIN\STORE.EXE" get Version /value')
    assert result.stderr == "Node - KMS-OLD\r\nERROR:\r\nDescription = Invalid query\r\n\r\n"
    assert result.stdout == ""


def test_wmic_service_and_csv_format(run: Run, sp3: HostState) -> None:
    result = run(sp3, "wmic service where \"Name='MSExchangeKMS'\" get State,StartMode /format:csv")
    assert result.stdout == "\r\r\nNode,StartMode,State\r\r\nKMS-OLD,Manual,Stopped\r\r\n"


# -- dir, type, md --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "stdout"),
    [
        (rf"dir /b {KMSDATA}", "edb.chk\r\nedb.log\r\nKmsmdb.edb\r\n"),
        (
            r"dir /s /b C:\EXCHSRVR\KMSDATA",
            f"{KMSDATA}\\edb.chk\r\n{KMSDATA}\\edb.log\r\n" f"{KMSDATA}\\Kmsmdb.edb\r\n",
        ),
        (rf"dir /b {KMSDATA}\*.edb", "Kmsmdb.edb\r\n"),
    ],
)
def test_dir_bare_forms(run: Run, sp3: HostState, line: str, stdout: str) -> None:
    assert run(sp3, line).stdout == stdout


def test_dir_groups_digits_without_minus_c(run: Run, sp3: HostState) -> None:
    result = run(sp3, rf"dir {KMSDATA}\Kmsmdb.edb")
    assert "14/03/2001  09:12         2,105,344 Kmsmdb.edb\r\n" in result.stdout
    assert result.stdout.endswith("               0 Dir(s)   1,234,567,890 bytes free\r\n")


def test_dir_of_a_missing_file_says_file_not_found(run: Run, sp3: HostState) -> None:
    result = run(sp3, rf"dir {KMSDATA}\nothing.txt")
    assert (result.stderr, result.exit_code) == ("File Not Found\r\n", 1)
    assert result.stdout.endswith(f" Directory of {KMSDATA}\r\n\r\n")


def test_type_prints_the_setup_log(run: Run, sp3: HostState) -> None:
    result = run(sp3, 'type "C:\\Exchange Server Setup.log"')
    assert result.stdout.startswith("++++ Microsoft Exchange Setup initialized ++++\r\n")
    missing = run(sp3, r"type C:\nope.txt")
    assert (missing.stderr, missing.exit_code) == (
        "The system cannot find the file specified.\r\n",
        1,
    )


def test_md_creates_parents_and_refuses_an_existing_folder(run: Run, sp3: HostState) -> None:
    assert run(sp3, r"md C:\KMSBACKUP\20010314\KMSDATA").exit_code == 0
    again = run(sp3, r"mkdir C:\KMSBACKUP")
    assert (again.stderr, again.exit_code) == (
        "A subdirectory or file C:\\KMSBACKUP already exists.\r\n",
        1,
    )


# -- copy, xcopy, robocopy ------------------------------------------------------------------


def test_xcopy_copies_the_km_database_byte_for_byte(run: Run, sp3: HostState) -> None:
    result = run(sp3, rf"xcopy {KMSDATA} C:\KMSBACKUP\KMSDATA /E /I /H /Y /K")
    assert result.stdout == (
        f"{KMSDATA}\\edb.chk\r\n{KMSDATA}\\edb.log\r\n{KMSDATA}\\Kmsmdb.edb\r\n3 File(s) copied\r\n"
    )
    assert result.exit_code == 0
    for name in ("edb.chk", "edb.log", "Kmsmdb.edb"):
        source = sp3.fs.file_entry(f"{KMSDATA}\\{name}")
        copy = sp3.fs.file_entry(f"C:\\KMSBACKUP\\KMSDATA\\{name}")
        assert source is not None and copy is not None
        assert (copy.content(), copy.mtime) == (source.content(), source.mtime)


def test_xcopy_asks_file_or_directory_for_a_new_single_file(run: Run, sp3: HostState) -> None:
    unanswered = run(sp3, rf"xcopy {KMSDATA}\edb.chk C:\copy.chk < NUL")
    assert unanswered.stdout == (
        "Does C:\\copy.chk specify a file name\r\nor directory name on the target\r\n"
        "(F = file, D = directory)? "
    )
    assert unanswered.exit_code == 4
    answered = run(sp3, rf"echo f| xcopy {KMSDATA}\edb.chk C:\copy.chk")
    assert answered.stdout.endswith("? F\r\nC:\\EXCHSRVR\\KMSDATA\\edb.chk\r\n1 File(s) copied\r\n")
    assert sp3.fs.is_file("C:\\copy.chk")


def test_xcopy_of_a_missing_source(run: Run, sp3: HostState) -> None:
    result = run(sp3, r"xcopy C:\NOPE C:\KMSBACKUP /E /I")
    assert (result.stdout, result.stderr, result.exit_code) == (
        "0 File(s) copied\r\n",
        "File not found - NOPE\r\n",
        4,
    )


def test_copy_of_one_file(run: Run, sp3: HostState) -> None:
    result = run(sp3, rf"copy /y {KMSDATA}\edb.chk C:\edb.chk")
    assert (result.stdout, result.exit_code) == ("        1 file(s) copied.\r\n", 0)
    missing = run(sp3, r"copy C:\nope.txt C:\x.txt")
    assert (missing.stdout, missing.stderr, missing.exit_code) == (
        "        0 file(s) copied.\r\n",
        "The system cannot find the file specified.\r\n",
        1,
    )


def test_robocopy_exit_codes(run: Run) -> None:
    host = build_exchange_host("KMS-OLD", "127.0.0.3", "5.5", 3, os="2012")
    line = rf"robocopy {KMSDATA} C:\KMSBACKUP /E /COPY:DAT /R:0 /NJH /NJS /NP"
    first = run(host, line)
    assert first.exit_code == 1  # files copied
    assert "\t    New File  \t\t    8192\tedb.chk\r\n" in first.stdout
    assert run(host, line).exit_code == 0  # nothing new
    assert run(host, r"robocopy C:\NOPE C:\X /E").exit_code == 16
    assert run(host, r"robocopy C:\NOPE C:\X").stdout.startswith("\r\n" + "-" * 79 + "\r\n")


# -- certutil -------------------------------------------------------------------------------


def test_certutil_hashfile_sha256_on_server_2016(run: Run, sp3: HostState) -> None:
    entry = sp3.fs.file_entry(f"{KMSDATA}\\edb.chk")
    assert entry is not None
    result = run(sp3, rf"certutil -hashfile {KMSDATA}\edb.chk SHA256")
    assert result.stdout == (
        f"SHA256 hash of {KMSDATA}\\edb.chk:\r\n{hashlib.sha256(entry.content()).hexdigest()}\r\n"
        "CertUtil: -hashfile command completed successfully.\r\n"
    )
    assert result.exit_code == 0


def test_certutil_before_windows_10_spaces_the_hash_and_defaults_to_sha1(run: Run) -> None:
    host = build_exchange_host("KMS-OLD", "127.0.0.3", "5.5", 3, os="2012")
    entry = host.fs.file_entry(f"{KMSDATA}\\edb.chk")
    assert entry is not None
    digest = hashlib.sha1(entry.content()).hexdigest()
    spaced = " ".join(digest[i : i + 2] for i in range(0, 40, 2))
    result = run(host, f'certutil -hashfile "{KMSDATA}\\edb.chk"')
    assert result.stdout == (
        f"SHA1 hash of file {KMSDATA}\\edb.chk:\r\n{spaced}\r\n"
        "CertUtil: -hashfile command completed successfully.\r\n"
    )


def test_certutil_encode_writes_base64_between_the_certificate_lines(
    run: Run, sp3: HostState
) -> None:
    entry = sp3.fs.file_entry(f"{KMSDATA}\\Kmsmdb.edb")
    assert entry is not None
    out = r"C:\EXCHSRVR\KMSDATA.exchops-fetch.b64"
    result = run(sp3, f'certutil -f -encode "{KMSDATA}\\Kmsmdb.edb" "{out}"')
    written = sp3.fs.file_entry(out)
    assert written is not None
    text = written.content().decode("ascii")
    assert result.stdout == (
        f"Input Length = {entry.size}\r\nOutput Length = {written.size}\r\n"
        "CertUtil: -encode command completed successfully.\r\n"
    )
    lines = text.split("\r\n")
    assert lines[0] == "-----BEGIN CERTIFICATE-----"
    assert lines[-2:] == ["-----END CERTIFICATE-----", ""]
    assert {len(line) for line in lines[1:-3]} == {64}
    assert base64.b64decode("".join(lines[1:-2])) == entry.content()
    # Without -f an existing OUT is refused; with it, replaced.
    again = run(sp3, f'certutil -encode "{KMSDATA}\\edb.chk" "{out}"')
    assert again.stdout.startswith(
        "CertUtil: -encode command FAILED: 0x80070050 (WIN32: 80 ERROR_FILE_EXISTS)\r\n"
    )
    assert run(sp3, f'certutil -f -encode "{KMSDATA}\\edb.chk" "{out}"').exit_code == 0
    missing = run(sp3, r"certutil -f -encode C:\nope.bin C:\nope.b64")
    assert "ERROR_FILE_NOT_FOUND" in missing.stdout


def test_certutil_on_a_missing_file(run: Run, sp3: HostState) -> None:
    result = run(sp3, r"certutil -hashfile C:\nope.bin SHA256")
    assert result.stdout == (
        "CertUtil: -hashfile command FAILED: 0x80070002 (WIN32: 2 ERROR_FILE_NOT_FOUND)\r\n"
        "CertUtil: The system cannot find the file specified.\r\n"
    )
    assert result.exit_code == 0x80070002
