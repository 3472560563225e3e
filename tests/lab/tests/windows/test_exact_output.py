# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Windows' exact output bytes: examples E1-E16 of docs/windows-output.md.

The expected values are that document's bytes literals (the authority), split at line ends only.
Each test builds the state its example describes and compares every byte: CRLF, TABs, trailing
spaces, wmic's \r\r\n, the stream and the exit code.
"""

from __future__ import annotations

from collections.abc import Callable

from exchlab.exchange import SETUP_KEY, build_exchange_host
from exchlab.state import HostState
from exchlab.windows.shell import CommandResult

Run = Callable[[HostState, str], CommandResult]
PASSWORD = "HZGYYHACWLQACTI"  # KB Q184420's example startup password
CLOCK = "2001-03-14T09:12:40"  # E13's event time; E14 shows 09:12

# fmt: off
E1 = (
    b'\r\n'
    b'HKEY_LOCAL_MACHINE\\SOFTWARE\\Microsoft\\Exchange\\Setup\r\n'
    b'    Services    REG_SZ    C:\\EXCHSRVR\r\n'
    b'    Services Version    REG_DWORD    0x37\r\n'
    b'    ServicePackNumber    REG_DWORD    0x3\r\n'
    b'    NewestBuild    REG_DWORD    0xa5a\r\n'
    b'    Build    REG_DWORD    0x7a8\r\n'
    b'\r\n'
    b'HKEY_LOCAL_MACHINE\\SOFTWARE\\Microsoft\\Exchange\\Setup\\Key Management Server\r\n'
)
E2 = (
    b'\r\n'
    b'HKEY_LOCAL_MACHINE\\SOFTWARE\\Microsoft\\Exchange\\KMServer\r\n'
    b'    MasterPasswordPath    REG_SZ    \r\n'
    b'\r\n'
)
E3 = (
    b'\r\n'
    b'! REG.EXE VERSION 3.0\r\n'
    b'\r\n'
    b'HKEY_LOCAL_MACHINE\\SOFTWARE\\Microsoft\\Exchange\\Setup\r\n'
    b'    Services Version\tREG_DWORD\t0x37\r\n'
    b'\r\n'
)
E4 = (
    b'ERROR: The system was unable to find the specified registry key or value.\r\n'
)
E16 = (
    b'Error:  The system was unable to find the specified registry key or value\r\n'
)
E5 = (
    b'\r\n'
    b'SERVICE_NAME: MSExchangeKMS\r\n'
    b'        TYPE               : 10  WIN32_OWN_PROCESS\r\n'
    b'        STATE              : 4  RUNNING\r\n'
    b'                                (STOPPABLE, NOT_PAUSABLE, ACCEPTS_SHUTDOWN)\r\n'
    b'        WIN32_EXIT_CODE    : 0  (0x0)\r\n'
    b'        SERVICE_EXIT_CODE  : 0  (0x0)\r\n'
    b'        CHECKPOINT         : 0x0\r\n'
    b'        WAIT_HINT          : 0x0\r\n'
    b'\r\n'
)
E6 = (
    b'\r\n'
    b'SERVICE_NAME: MSExchangeKMS\r\n'
    b'        TYPE               : 10  WIN32_OWN_PROCESS\r\n'
    b'        STATE              : 2  START_PENDING\r\n'
    b'                                (NOT_STOPPABLE, NOT_PAUSABLE, IGNORES_SHUTDOWN)\r\n'
    b'        WIN32_EXIT_CODE    : 0  (0x0)\r\n'
    b'        SERVICE_EXIT_CODE  : 0  (0x0)\r\n'
    b'        CHECKPOINT         : 0x0\r\n'
    b'        WAIT_HINT          : 0x7d0\r\n'
    b'        PID                : 1320\r\n'
    b'        FLAGS              : \r\n'
    b'\r\n'
)
E7 = (
    b'[SC] QueryServiceConfig SUCCESS\r\n'
    b'\r\n'
    b'SERVICE_NAME: MSExchangeKMS\r\n'
    b'        TYPE               : 10  WIN32_OWN_PROCESS\r\n'
    b'        START_TYPE         : 3   DEMAND_START\r\n'
    b'        ERROR_CONTROL      : 1   NORMAL\r\n'
    b'        BINARY_PATH_NAME   : C:\\Exchsrvr\\Bin\\Kmserver.exe\r\n'
    b'        LOAD_ORDER_GROUP   : \r\n'
    b'        TAG                : 0\r\n'
    b'        DISPLAY_NAME       : Microsoft Exchange Key Management Server\r\n'
    b'        DEPENDENCIES       : MSExchangeDS\r\n'
    b'        SERVICE_START_NAME : EXCHDOM\\ExchSvc\r\n'
    b'\r\n'
)
E8 = (
    b'[SC] OpenService FAILED 1060:\r\n'
    b'\r\n'
    b'The specified service does not exist as an installed service.\r\n'
    b'\r\n'
)
E9 = (
    b'[SC] ControlService FAILED 1062:\r\n'
    b'\r\n'
    b'The service has not been started.\r\n'
    b'\r\n'
)
E10 = (
    b'The Microsoft Exchange Key Management Server service is stopping.\r\n'
    b'The Microsoft Exchange Key Management Server service was stopped successfully.\r\n'
    b'\r\n'
)
E11 = (
    b'\r\r\n'
    b'\r\r\n'
    b'Version=5.5.2650.23\r\r\n'
    b'\r\r\n'
    b'\r\r\n'
    b'\r\r\n'
)
E12 = (
    b'No Instance(s) Available.\r\n'
)
E13 = (
    b'Event[0]:\r\n'
    b'  Log Name: Application\r\n'
    b'  Source: MSExchangeKMS\r\n'
    b'  Date: 2001-03-14T09:12:40.0000000Z\r\n'
    b'  Event ID: 5389\r\n'
    b'  Task: N/A\r\n'
    b'  Level: Information\r\n'
    b'  Opcode: N/A\r\n'
    b'  Keyword: Classic\r\n'
    b'  User: N/A\r\n'
    b'  User Name: N/A\r\n'
    b'  Computer: KMSNEW\r\n'
    b'  Description: \r\n'
    b'KMS is exiting with error 0.\r\n'
)
E14 = (
    b' Volume in drive C is EXCHANGE\r\n'
    b' Volume Serial Number is 1A2B-3C4D\r\n'
    b'\r\n'
    b' Directory of C:\\EXCHSRVR\\KMSDATA\r\n'
    b'\r\n'
    b'14/03/2001  09:12    <DIR>          .\r\n'
    b'14/03/2001  09:12    <DIR>          ..\r\n'
    b'14/03/2001  09:12              8192 edb.chk\r\n'
    b'14/03/2001  09:12           1048576 edb.log\r\n'
    b'14/03/2001  09:12           2105344 Kmsmdb.edb\r\n'
    b'               3 File(s)        3162112 bytes\r\n'
    b'               2 Dir(s)      1234567890 bytes free\r\n'
)
E15 = (
    b"'wevtutil' is not recognized as an internal or external command,\r\n"
    b'operable program or batch file.\r\n'
)
# fmt: on


def test_e1_reg_query_of_the_setup_key_on_vista_and_later(run: Run, sp3: HostState) -> None:
    # E1's host records no ServicePackBuild (a real host may lack some values, docs/registry.md).
    sp3.registry.delete_value(SETUP_KEY, "ServicePackBuild")
    result = run(sp3, r"reg query HKLM\SOFTWARE\Microsoft\Exchange\Setup")
    assert (result.stdout.encode(), result.stderr, result.exit_code) == (E1, "", 0)


def test_e2_an_empty_reg_sz_keeps_its_four_trailing_spaces(run: Run, sp3: HostState) -> None:
    result = run(sp3, r"reg query HKLM\SOFTWARE\Microsoft\Exchange\KMServer /v MasterPasswordPath")
    assert (result.stdout.encode(), result.exit_code) == (E2, 0)


def test_e3_reg_exe_3_0_on_server_2003_separates_with_tabs(run: Run) -> None:
    host = build_exchange_host("KMS-OLD", "127.0.0.3", "5.5", 3, os="2003", clock=CLOCK)
    result = run(host, r'reg query HKLM\SOFTWARE\Microsoft\Exchange\Setup /v "Services Version"')
    assert (result.stdout.encode(), result.exit_code) == (E3, 0)


def test_e4_a_missing_key_is_an_error_on_stderr_with_exit_code_1(run: Run, sp3: HostState) -> None:
    result = run(sp3, r"reg query HKLM\SOFTWARE\Microsoft\ExchangeServer\v15\Setup")
    assert (result.stdout, result.stderr.encode(), result.exit_code) == ("", E4, 1)


def test_e16_reg_exe_3_0_words_a_missing_key_its_own_way_on_server_2003(run: Run) -> None:
    host = build_exchange_host("KMS-OLD", "127.0.0.3", "5.5", 3, os="2003", clock=CLOCK)
    for line in (
        r"reg query HKLM\SOFTWARE\Microsoft\ExchangeServer\v15\Setup",
        r"reg query HKLM\SOFTWARE\Microsoft\Exchange\Setup /v NoSuchValue",
        r"reg delete HKLM\SOFTWARE\Microsoft\ExchangeServer\v15\Setup /f",
    ):
        result = run(host, line)
        assert (result.stdout, result.stderr.encode(), result.exit_code) == ("", E16, 1), line
    # Through 2>&1, as the collection's probe runs it, the line arrives on stdout.
    merged = run(host, r"reg query HKLM\SOFTWARE\Microsoft\ExchangeServer\v14\Setup 2>&1")
    assert (merged.stdout.encode(), merged.stderr, merged.exit_code) == (E16, "", 1)


def test_e5_sc_query_of_a_running_kms(run: Run, sp3_running: HostState) -> None:
    result = run(sp3_running, "sc query MSExchangeKMS")
    assert (result.stdout.encode(), result.exit_code) == (E5, 0)


def test_e6_sc_start_with_the_startup_password_returns_at_start_pending(
    run: Run, sp3: HostState
) -> None:
    result = run(sp3, f"sc start MSExchangeKMS {PASSWORD}")
    assert (result.stdout.encode(), result.exit_code) == (E6, 0)
    assert PASSWORD not in result.stdout


def test_e7_sc_qc_of_kms_on_a_5_5_server(run: Run, sp3: HostState) -> None:
    result = run(sp3, "sc qc MSExchangeKMS")
    assert (result.stdout.encode(), result.exit_code) == (E7, 0)


def test_e8_sc_qc_of_kms_on_a_server_without_kms(run: Run) -> None:
    host = build_exchange_host("EXCH-1", "127.0.0.4", "5.5", 3, kms=False, clock=CLOCK)
    result = run(host, "sc qc MSExchangeKMS")
    assert (result.stdout.encode(), result.exit_code) == (E8, 1060)


def test_e9_sc_stop_of_kms_after_it_exited(run: Run, kb: HostState) -> None:
    result = run(kb, "sc stop MSExchangeKMS")
    assert (result.stdout.encode(), result.exit_code) == (E9, 1062)


def test_e10_net_stop_of_a_running_kms(run: Run, sp3_running: HostState) -> None:
    result = run(sp3_running, "net stop MSExchangeKMS")
    assert (result.stdout.encode(), result.stderr, result.exit_code) == (E10, "", 0)


def test_e11_wmic_datafile_version_of_store_exe_on_sp3(run: Run, sp3: HostState) -> None:
    result = run(
        sp3, r'wmic datafile where name="C:\\EXCHSRVR\\BIN\\STORE.EXE" get Version /value < NUL'
    )
    assert (result.stdout.encode(), result.stderr, result.exit_code) == (E11, "", 0)


def test_e12_wmic_datafile_of_a_missing_file(run: Run, sp3: HostState) -> None:
    result = run(
        sp3, r'wmic datafile where name="C:\\EXCHSRVR\\BIN\\NOPE.EXE" get Version /value < NUL'
    )
    assert (result.stdout, result.stderr.encode(), result.exit_code) == ("", E12, 0)


def test_e13_wevtutil_text_of_one_5389_event(run: Run) -> None:
    host = build_exchange_host(
        "KMSNEW",
        "127.0.0.5",
        "5.5",
        3,
        km_binary_build="5.5.1960.8",
        database_stamp="5.5.2650",
        events=[{"id": 5389, "time": "2001-03-14T09:12:40"}],
        clock=CLOCK,
    )
    query = "*[System[Provider[@Name='MSExchangeKMS'] and (EventID=5389)]]"
    result = run(host, f'wevtutil qe Application /q:"{query}" /f:text /c:5 /rd:true')
    assert (result.stdout.encode(), result.exit_code) == (E13, 0)


def test_e14_dir_of_the_km_database_folder(run: Run, sp3: HostState) -> None:
    result = run(sp3, r"dir /-c C:\EXCHSRVR\KMSDATA")
    assert (result.stdout.encode(), result.exit_code) == (E14, 0)


def test_e15_wevtutil_is_not_recognized_on_server_2003(
    run: Run, make_kb: Callable[..., HostState]
) -> None:
    host = make_kb(os="2003")
    result = run(host, "wevtutil qe Application /c:1 /f:text")
    assert (result.stdout, result.stderr.encode(), result.exit_code) == ("", E15, 9009)
