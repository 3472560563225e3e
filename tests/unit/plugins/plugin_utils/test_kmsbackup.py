# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""kms_backup on a host (plugins/plugin_utils/_kmsbackup.py): its command lines, how it reads the
answers, and the step sequence (the pure half is in test_kmsbackup_plan.py).

Host answers are Windows output in the layouts of docs/windows-output.md (#e5 `sc query`, #e14
`dir`, #sc-failures), the recorded fixtures of tests/unit/fixtures and the lab's certutil / xcopy
text, framed by `_probe` section markers as cmd prints them. The scripted host replays them for
the paths the lab cannot reach (a service stuck in STOP_PENDING, a connection lost mid-copy, a
copy whose bytes differ, failure events right after a start).
"""

from __future__ import annotations

import re
import typing as t
from datetime import datetime, timezone

import pytest
from test_kmsbackup_plan import DEST, FILES, FREE, HASHES, KMSDATA

from ansible_collections.exchops.kms.plugins.plugin_utils._kmsbackup import (
    BackupFailed,
    KmsBackup,
    copy_line,
    read_survey,
    survey_sections,
    tree_reading,
)
from ansible_collections.exchops.kms.plugins.plugin_utils._kmsbackup_plan import (
    BackupRefused,
    FileItem,
    Survey,
    TreeReading,
)
from ansible_collections.exchops.kms.plugins.plugin_utils._probe import split_sections
from ansible_collections.exchops.kms.plugins.plugin_utils._winout import ParseError, parse_dir_tree
from ansible_collections.exchops.kms.plugins.plugin_utils._winrs import (
    CommandOutput,
    WinrsUnreachable,
)

PASSWORD = "HZGYYHACWLQACTI"  # the example KM Server startup password of KB Q184420


# ---------------------------------------------------------------------------------------------
# Command lines


def test_the_copy_keeps_hidden_files_subfolders_and_attributes_and_never_prompts() -> None:
    assert copy_line(KMSDATA, DEST) == (f'xcopy "{KMSDATA}" "{DEST}" /E /I /H /K /Y /Q < NUL')


def test_the_survey_lists_hidden_files_and_reads_the_destination_drive_root_unquoted() -> None:
    line = " & ".join(survey_sections(KMSDATA, "E:\\KMS\\one"))
    assert 'dir /-c /s /a "C:\\EXCHSRVR\\KMSDATA"' in line
    assert 'dir /-c /a "E:\\KMS\\one"' in line
    assert "(dir /-c /a E:\\)" in line  # a quoted "E:\" would end in an escaped quote
    assert "sc query MSExchangeKMS" in line


# ---------------------------------------------------------------------------------------------
# Readings

SC_STATES = {1: "STOPPED", 2: "START_PENDING", 3: "STOP_PENDING", 4: "RUNNING"}


def sc_block(
    code: int,
    win32: int = 0,
    service: int = 0,
    checkpoint: int = 0,
    wait_hint: int = 0,
    name: str = "MSExchangeKMS",
) -> str:
    """`sc query NAME` (docs/windows-output.md#e5 layout)."""
    return (
        f"\r\nSERVICE_NAME: {name}\r\n"
        "        TYPE               : 10  WIN32_OWN_PROCESS\r\n"
        f"        STATE              : {code}  {SC_STATES[code]}\r\n"
        "                                (STOPPABLE, NOT_PAUSABLE, ACCEPTS_SHUTDOWN)\r\n"
        f"        WIN32_EXIT_CODE    : {win32}  (0x{win32:x})\r\n"
        f"        SERVICE_EXIT_CODE  : {service}  (0x{service:x})\r\n"
        f"        CHECKPOINT         : 0x{checkpoint:x}\r\n"
        f"        WAIT_HINT          : 0x{wait_hint:x}\r\n\r\n"
    )


def sc_failed(operation: str, error: int, message: str) -> str:
    """`[SC] <operation> FAILED <n>:` (docs/windows-output.md#sc-failures)."""
    return f"[SC] {operation} FAILED {error}:\r\n\r\n{message}\r\n\r\n"


HEAD = " Volume in drive C is EXCHANGE\r\n Volume Serial Number is 1A2B-3C4D\r\n\r\n"


def tree(folder: str, files: dict[str, int], free: int = FREE) -> str:
    """`dir /-c /s /a FOLDER` of one folder (E14 layout, dir /s totals)."""
    lines = [
        f" Directory of {folder}\r\n\r\n",
        "14/03/2001  09:12    <DIR>          .\r\n",
        "14/03/2001  09:12    <DIR>          ..\r\n",
    ]
    lines += [f"14/03/2001  09:12{size:>18} {name}\r\n" for name, size in files.items()]
    total = f"{len(files):>16} File(s) {sum(files.values()):>14} bytes\r\n"
    return (
        HEAD
        + "".join(lines)
        + total
        + "\r\n     Total Files Listed:\r\n"
        + total
        + f"{2:>16} Dir(s) {free:>15} bytes free\r\n"
    )


def not_found(parent: str) -> str:
    return HEAD + f" Directory of {parent}\r\n\r\nFile Not Found\r\n"


def root(free: int = FREE) -> str:
    return (
        HEAD
        + " Directory of C:\\\r\n\r\n"
        + "14/03/2001  09:12    <DIR>          EXCHSRVR\r\n"
        + f"{0:>16} File(s) {0:>14} bytes\r\n"
        + f"{1:>16} Dir(s) {free:>15} bytes free\r\n"
    )


def certutil(path: str, digest: str) -> str:
    return f"SHA256 hash of {path}:\r\n{digest}\r\nCertUtil: -hashfile command completed successfully.\r\n"


def framed(**sections: str | tuple[str, bool]) -> str:
    """What cmd prints for `_probe` sections (echo keeps the space before `&` / `||`)."""
    out = []
    for name, answer in sections.items():
        text, ok = answer if isinstance(answer, tuple) else (answer, True)
        end = "ok" if ok else "failed"
        out.append(f"==exchops:begin:{name}== \r\n{text}==exchops:end:{end}== \r\n")
    return "".join(out)


KMS_FILES = {"edb.chk": 8192, "edb.log": 1048576, "Kmsmdb.edb": 2105344}
KMSERVER = "C:\\EXCHSRVR\\BIN\\KMSERVER.EXE"
# `wmic datafile ... get Version /value` of Kmserver.exe (docs/windows-output.md#e11 layout).
KMSERVER_VERSION = "\r\r\n\r\r\nVersion=5.5.2650.12\r\r\n\r\r\n\r\r\n\r\r\n"


def survey_answer(code: int = 1, free: int = FREE, checkpoint: int = 0, wait_hint: int = 0) -> str:
    return framed(
        kms=sc_block(code, checkpoint=checkpoint, wait_hint=wait_hint),
        source=tree(KMSDATA, KMS_FILES, free),
        target=(not_found("C:\\EXCHSRVR"), False),
        volume=root(free),
        kmserver=KMSERVER_VERSION,
    )


def test_a_survey_is_read_from_one_batched_answer() -> None:
    read = read_survey(split_sections(survey_answer(code=4)), KMSDATA)
    assert read == Survey(
        kms_state="running",
        source=TreeReading(FILES, ()),
        source_is_file=False,
        destination_exists=False,
        drive_found=True,
        free_bytes=FREE,
        kms_binary="5.5.2650.12",
    )


@pytest.mark.parametrize(
    ("answer", "version"),
    [
        (KMSERVER_VERSION, "5.5.2650.12"),
        # wmic on XP/2003 and later: the file is not there (docs/windows-output.md#e12).
        (("No Instance(s) Available.\r\n", True), None),
        # Windows 2000 and NT 4.0 have no wmic (docs/windows-output.md#which-tool-exists).
        (
            (
                "'wmic' is not recognized as an internal or external command,\r\n"
                "operable program or batch file.\r\n",
                False,
            ),
            None,
        ),
    ],
)
def test_the_survey_records_kmservers_version_beside_the_database_when_it_can_be_read(
    answer: str | tuple[str, bool], version: str | None
) -> None:
    assert f'wmic datafile where name="{KMSERVER.replace(chr(92), chr(92) * 2)}"' in "".join(
        survey_sections(KMSDATA, DEST)
    )
    sections = split_sections(
        framed(
            kms=sc_block(1),
            source=tree(KMSDATA, KMS_FILES),
            target=(not_found("C:\\EXCHSRVR"), False),
            volume=root(),
            kmserver=answer,
        )
    )
    assert read_survey(sections, KMSDATA).kms_binary == version


def test_a_database_folder_of_another_name_records_no_kmserver_and_asks_wmic_nothing() -> None:
    # kmserver_path knows KMSDATA (5.5, 2000) and SECURITY (4.0, 5.0); no source says where
    # Kmserver.exe is for any other folder, so it is not looked for, not guessed.
    elsewhere = "E:\\RESTORE\\KMS"
    lines = "".join(survey_sections(elsewhere, DEST))
    assert "wmic" not in lines
    sections = split_sections(
        framed(
            kms=sc_block(1),
            source=tree(elsewhere, KMS_FILES),
            target=(not_found("C:\\EXCHSRVR"), False),
            volume=root(),
        )
    )
    assert read_survey(sections, elsewhere).kms_binary is None


def test_a_survey_names_a_missing_kms_service_absent_and_a_file_as_not_a_folder() -> None:
    answer = framed(
        kms=(
            sc_failed(
                "EnumQueryServicesStatus:OpenService",
                1060,
                "The specified service does not exist as an installed service.",
            ),
            False,
        ),
        source=tree("C:\\EXCHSRVR", {"KMSDATA": 5}),
        target=(not_found("C:\\EXCHSRVR"), False),
        volume=root(),
        kmserver=("No Instance(s) Available.\r\n", True),
    )
    read = read_survey(split_sections(answer), KMSDATA)
    assert (read.kms_state, read.source, read.source_is_file) == ("absent", None, True)


def test_a_tree_is_read_relative_to_its_folder_with_subfolders() -> None:
    listing = (
        HEAD
        + f" Directory of {KMSDATA}\r\n\r\n"
        + "14/03/2001  09:12    <DIR>          .\r\n14/03/2001  09:12    <DIR>          ..\r\n"
        + "14/03/2001  09:12              8192 edb.chk\r\n"
        + "14/03/2001  09:12    <DIR>          Old\r\n"
        + f"{1:>16} File(s) {8192:>14} bytes\r\n\r\n"
        + f" Directory of {KMSDATA}\\Old\r\n\r\n"
        + "14/03/2001  09:12    <DIR>          .\r\n14/03/2001  09:12    <DIR>          ..\r\n"
        + "14/03/2001  09:12                 0 res1.log\r\n"
        + f"{1:>16} File(s) {0:>14} bytes\r\n\r\n"
        + "     Total Files Listed:\r\n"
        + f"{2:>16} File(s) {8192:>14} bytes\r\n"
        + f"{5:>16} Dir(s) {FREE:>15} bytes free\r\n"
    )
    read = tree_reading(parse_dir_tree(listing, "", 0), "c:\\exchsrvr\\kmsdata", "source")
    assert read == TreeReading((FileItem("edb.chk", 8192), FileItem("Old\\res1.log", 0)), ("Old",))
    with pytest.raises(ParseError, match="which is not under C:\\\\OTHER"):
        tree_reading(parse_dir_tree(listing, "", 0), "C:\\OTHER", "source")


# ---------------------------------------------------------------------------------------------
# The steps, against the scripted host of tests/unit/conftest.py. Each command's answers are
# taken in the order scripted (a command asked again gets its next answer); every test then
# compares the commands sent, in order, with the ones expected.

KMS_QUERY = r"^sc query MSExchangeKMS$"
SURVEY = [
    "sc query MSExchangeKMS",
    f'dir /-c /s /a "{KMSDATA}"',
    f'dir /-c /a "{DEST}"',
    "dir /-c /a C:\\",
    f'wmic datafile where name="{KMSERVER.replace(chr(92), chr(92) * 2)}" get Version /value < NUL',
]
STOP = [
    "sc enumdepend MSExchangeKMS 64000",
    "sc query MSExchangeKMS",
    "sc stop MSExchangeKMS",
    "sc query MSExchangeKMS",
]
COPY = [f'xcopy "{KMSDATA}" "{DEST}" /E /I /H /K /Y /Q < NUL']
VERIFY = [
    "sc query MSExchangeKMS",
    f'dir /-c /s /a "{KMSDATA}"',
    f'dir /-c /s /a "{DEST}"',
    *[
        f'certutil -hashfile "{folder}\\{name}" SHA256'
        for name in KMS_FILES
        for folder in (KMSDATA, DEST)
    ],
]
POLL = ["sc query MSExchangeKMS"]


def out(stdout: str, stderr: str = "", exit_code: int = 0) -> CommandOutput:
    return CommandOutput(stdout, stderr, exit_code, 0.01)


class KmsHost:
    """The scripted host with the answers of a KM Server, scripted in the order the backup asks."""

    def __init__(self, host: t.Any, recorded: t.Callable[[str], t.Any], clock: t.Any) -> None:
        self.host = host
        self.recorded = recorded
        self.clock = clock

    @property
    def commands(self) -> list[str]:
        return list(self.host.commands)

    @property
    def lines(self) -> list[str]:
        return list(self.host.lines)

    def answer(self, pattern: str, answer: t.Any) -> KmsHost:
        self.host.on_command(pattern, answer, once=True)
        return self

    def kms(self, *answers: t.Any) -> KmsHost:
        """`sc query MSExchangeKMS`, once per answer (sc_block codes, or text)."""
        for answer in answers:
            self.answer(KMS_QUERY, sc_block(answer) if isinstance(answer, int) else answer)
        return self

    def survey(self, code: int = 1, free: int = FREE) -> KmsHost:
        self.kms(code)
        self.answer(r'^dir /-c /s /a "C:\\EXCHSRVR\\KMSDATA"$', tree(KMSDATA, KMS_FILES, free))
        self.answer(
            rf'^dir /-c /a "{re.escape(DEST)}"$', out(not_found("C:\\EXCHSRVR"), exit_code=1)
        )
        self.answer(r"^dir /-c /a C:\\$", root(free))
        return self.answer(r"^wmic datafile where name=.*KMSERVER\.EXE", KMSERVER_VERSION)

    def stop(self, stop: t.Any = None, *, dependents: t.Any = None) -> KmsHost:
        """sc enumdepend and sc query (RUNNING), then sc stop and sc query (STOP_PENDING):
        follow with kms(...) for the polls."""
        self.answer(
            r"^sc enumdepend MSExchangeKMS 64000$",
            dependents or self.recorded("sc_enumdepend/no_dependents"),
        )
        self.kms(self.recorded("sc_query/e5_kms_running"))
        self.answer(r"^sc stop MSExchangeKMS$", stop or self.recorded("sc_stop/stop_pending"))
        if stop is None:
            self.kms(self.recorded("sc_stop/stop_pending"))
        return self

    def copy(self, answer: t.Any = "3 File(s) copied\r\n") -> KmsHost:
        self.host.on_line("^xcopy ", answer, once=True)
        return self

    def verify(self, copy_digest: str = HASHES["Kmsmdb.edb"]) -> KmsHost:
        self.kms(1)
        self.answer(r'^dir /-c /s /a "C:\\EXCHSRVR\\KMSDATA"$', tree(KMSDATA, KMS_FILES))
        self.answer(rf'^dir /-c /s /a "{re.escape(DEST)}"$', tree(DEST, KMS_FILES))
        for name in KMS_FILES:
            digest = copy_digest if name == "Kmsmdb.edb" else HASHES[name]
            for folder, value in ((KMSDATA, HASHES[name]), (DEST, digest)):
                path = f"{folder}\\{name}"
                self.answer(
                    rf'^certutil -hashfile "{re.escape(path)}" SHA256$', certutil(path, value)
                )
        return self

    def restart(
        self,
        *polls: t.Any,
        events: str = "wmic_ntevent/no_instance",
        kms_server: str = "reg_query/kms_server_key_typed_vista",
    ) -> KmsHost:
        """ServiceControl.ensure("started"): sc query and sc qc (STOPPED) with where KMS takes
        its startup password from (`kms_server`, KB Q196129); the newest event
        record with MSExchangeDS's state; sc start and sc query (START_PENDING); the polls
        (RUNNING if none are given); then, once, sc query (the last poll's answer again) and
        the events after the newest record (none: "No Instance(s) Available.")."""
        polls = polls or (4,)
        self.kms(1).answer(r"^sc qc MSExchangeKMS$", self.recorded("sc_qc/e7_kms"))
        self.answer(KMS_SERVER_QUERY, self.recorded(kms_server))
        self.answer(r"get RecordNumber /value < NUL$", self.recorded("wmic_ntevent/no_instance"))
        self.answer(r"^sc query MSExchangeDS$", sc_block(4, name="MSExchangeDS"))
        self.answer(r"^sc qc MSExchangeDS$", DS_QC)
        self.answer(r"^sc start MSExchangeKMS\b", self.recorded("sc_start/e6_start_pending"))
        self.kms(2, *polls, polls[-1])
        return self.answer(r"and RecordNumber > 0\" get EventCode,", self.recorded(events))

    def backup(self, password: str = PASSWORD, timeout: int = 5) -> KmsBackup:
        return KmsBackup(
            self.host.run,
            database_path=KMSDATA,
            destination=DEST,
            startup_password=password,
            timeout=timeout,
            now=datetime(2024, 1, 31, 22, 15, tzinfo=timezone.utc),
            clock=self.clock.clock,
        )


EVENTS = "wmic ntevent where \"LogFile='Application' and SourceName='MSExchangeKMS'"
KMS_SERVER = 'reg query "HKLM\\SOFTWARE\\Microsoft\\Exchange\\KMServer"'
KMS_SERVER_QUERY = "^" + re.escape(KMS_SERVER) + "$"
READ = ["sc query MSExchangeKMS", "sc qc MSExchangeKMS", KMS_SERVER]
START = [
    f'{EVENTS}" get RecordNumber /value < NUL',
    "sc query MSExchangeDS",
    "sc qc MSExchangeDS",
    f'sc start MSExchangeKMS "{PASSWORD}"',
    "sc query MSExchangeKMS",
]
NEW_EVENTS = [
    "sc query MSExchangeKMS",
    f'{EVENTS} and RecordNumber > 0" get EventCode,Message,RecordNumber,SourceName,'
    "TimeGenerated,Type /value < NUL",
]
RESTART = READ + START + POLL + NEW_EVENTS
DS_QC = (
    "[SC] QueryServiceConfig SUCCESS\r\n\r\nSERVICE_NAME: MSExchangeDS\r\n"
    "        TYPE               : 10  WIN32_OWN_PROCESS\r\n"
    "        START_TYPE         : 2   AUTO_START\r\n"
    "        ERROR_CONTROL      : 1   NORMAL\r\n"
    "        BINARY_PATH_NAME   : C:\\Exchsrvr\\Bin\\dsamain.exe\r\n"
    "        LOAD_ORDER_GROUP   : \r\n"
    "        TAG                : 0\r\n"
    "        DISPLAY_NAME       : Microsoft Exchange Directory\r\n"
    "        DEPENDENCIES       : MSExchangeSA\r\n"
    "        SERVICE_START_NAME : EXCHDOM\\ExchSvc\r\n\r\n"
)


@pytest.fixture
def kms_host(
    scripted_host: t.Any, recorded: t.Callable[[str], t.Any], fake_clock: t.Any
) -> KmsHost:
    return KmsHost(scripted_host, recorded, fake_clock)


def test_a_stopped_kms_takes_three_round_trips_and_never_sees_the_password(
    kms_host: KmsHost,
) -> None:
    backup = kms_host.survey().copy().verify().backup()
    outcome = backup.execute(backup.plan())
    assert (outcome.kms_state_before, outcome.kms_state_after) == ("stopped", "stopped")
    assert [entry.sha256 for entry in outcome.manifest] == list(HASHES.values())
    assert kms_host.commands == SURVEY + COPY + VERIFY
    assert len(kms_host.lines) == 3
    assert not any(PASSWORD in line for line in kms_host.lines)
    assert not any(
        word in line for line in kms_host.lines for word in ("del ", "rd ", "rmdir", "move")
    )


def test_a_running_kms_is_stopped_then_started_with_its_password_on_the_start_line_only(
    kms_host: KmsHost,
) -> None:
    kms_host.survey(code=4).stop().kms(1).survey().copy().verify().restart()
    backup = kms_host.backup()
    outcome = backup.execute(backup.plan())
    assert (outcome.kms_state_before, outcome.kms_state_after) == ("running", "running")
    assert outcome.plan.stop_kms is True
    assert outcome.warnings == ()
    assert kms_host.commands == SURVEY + STOP + POLL + SURVEY + COPY + VERIFY + RESTART
    assert len(kms_host.lines) == 12
    with_password = [line for line in kms_host.lines if PASSWORD in line]
    assert with_password == [line for line in kms_host.lines if "sc start" in line]
    assert len(with_password) == 1
    assert f'sc start MSExchangeKMS "{PASSWORD}"' in with_password[0]


def test_sc_refusing_to_stop_kms_is_refused_with_nothing_changed(kms_host: KmsHost) -> None:
    refusal = kms_host.recorded("sc_stop/dependent_services_1051")
    kms_host.survey(code=4).stop(refusal).kms(kms_host.recorded("sc_query/e5_kms_running"))
    backup = kms_host.backup()
    with pytest.raises(BackupRefused) as caught:
        backup.execute(backup.plan())
    message = str(caught.value)
    assert message.startswith(
        "MSExchangeKMS could not be stopped, and the KM database is copied only with KMS stopped "
        "(KB Q190713). MSExchangeKMS is still RUNNING: sc stop MSExchangeKMS failed with error "
        "1051 ("
    )
    assert message.endswith(
        "find which (sc enumdepend MSExchangeKMS) and what starts it, then run again."
    )
    assert caught.value.changed is False
    assert kms_host.commands == SURVEY + STOP


def test_a_connection_lost_before_sc_stop_was_sent_changes_nothing(kms_host: KmsHost) -> None:
    lost = WinrsUnreachable(
        "kms02 (http://10.0.0.2:5985/wsman)", "unreachable: the connection timed out."
    )
    kms_host.survey(code=4).answer(r"^sc enumdepend ", lost)
    backup = kms_host.backup()
    with pytest.raises(WinrsUnreachable):  # raised as it is: the action edge says nothing changed
        backup.execute(backup.plan())
    assert kms_host.commands == SURVEY + STOP[:2]


def test_kms_stuck_stopping_is_never_copied_nor_started_and_the_failure_says_so(
    kms_host: KmsHost,
) -> None:
    still = kms_host.recorded("sc_stop/stop_pending")
    kms_host.survey(code=4).stop().kms(*[still] * 3)
    backup = kms_host.backup(timeout=5)
    with pytest.raises(BackupFailed) as caught:
        backup.execute(backup.plan())
    message = str(caught.value)
    assert message.startswith(
        "MSExchangeKMS is still STOP_PENDING 5 s after sc stop (timeout 5 s): it accepted the "
        "stop but did not finish, and its process may be hung. "
    )
    assert "offline backup of the KM database exists (KB Q190713)" in message
    # A start would only queue behind the hung stop: none is sent, and the message says why.
    assert message.endswith(
        "Nothing was copied. MSExchangeKMS was RUNNING before the backup and is still "
        "STOP_PENDING, so it was not started again: a start would only queue behind the stop. "
        "Once sc query MSExchangeKMS shows it STOPPED, run the backup again."
    )
    assert caught.value.result["backup_path"] is None
    assert caught.value.result["kms_state_after"] == "stop_pending"
    assert kms_host.commands == SURVEY + STOP + POLL * 3
    assert PASSWORD not in message


@pytest.mark.parametrize(
    ("wait_hint_ms", "limit", "polls"),
    [(0, 30, 11), (2000, 30, 11), (45000, 45, 16)],
    ids=["no-wait-hint", "short-wait-hint", "wait-hint-longer-than-30-s"],
)
def test_a_stop_without_progress_is_hung_long_before_the_timeout(
    kms_host: KmsHost, wait_hint_ms: int, limit: int, polls: int
) -> None:
    still = sc_block(3, wait_hint=wait_hint_ms)
    kms_host.survey(code=4).stop(sc_block(3, wait_hint=wait_hint_ms)).kms(*[still] * (polls + 1))
    backup = kms_host.backup(timeout=600)
    with pytest.raises(BackupFailed) as caught:
        backup.execute(backup.plan())
    assert str(caught.value).startswith(
        f"MSExchangeKMS has been STOP_PENDING for {limit} s after sc stop without progress "
        f"(CHECKPOINT 0x0, WAIT_HINT {wait_hint_ms} ms): its process hangs while stopping. "
    )
    assert "Nothing was copied." in str(caught.value)
    assert kms_host.commands == SURVEY + STOP + POLL * polls
    assert kms_host.clock.time == limit  # long before the 600 s timeout


def test_a_stop_whose_checkpoint_moves_is_waited_for_until_the_timeout(kms_host: KmsHost) -> None:
    kms_host.survey(code=4).stop().kms(*[sc_block(3, checkpoint=step) for step in range(1, 16)])
    backup = kms_host.backup(timeout=40)
    with pytest.raises(BackupFailed, match="^MSExchangeKMS is still STOP_PENDING 40 s after"):
        backup.execute(backup.plan())
    assert kms_host.commands == SURVEY + STOP + POLL * 15


def test_a_connection_lost_during_the_copy_names_the_copy_folder_and_what_is_unknown(
    kms_host: KmsHost,
) -> None:
    lost = WinrsUnreachable(
        "kms02 (http://10.0.0.2:5985/wsman)", "unreachable: the connection timed out."
    )
    kms_host.survey().copy(lost).answer(r"^dir /-c /s /a ", lost).answer(KMS_QUERY, lost)
    backup = kms_host.backup()
    with pytest.raises(BackupFailed) as caught:
        backup.execute(backup.plan())
    message = str(caught.value)
    assert message.startswith(
        "the connection failed during the backup: kms02 (http://10.0.0.2:5985/wsman): unreachable"
    )
    assert f"Anything copied is in {DEST}; it could not be listed" in message
    assert message.endswith(
        "MSExchangeKMS was STOPPED before the backup and was not started (it is UNKNOWN)."
    )
    assert caught.value.result["backup_path"] == DEST


def test_a_copy_with_different_bytes_is_not_a_backup_and_kms_is_started_again(
    kms_host: KmsHost,
) -> None:
    kms_host.survey(code=4).stop().kms(1).survey().copy().verify(copy_digest="ab" * 32)
    kms_host.answer(rf'^dir /-c /s /a "{re.escape(DEST)}"$', tree(DEST, KMS_FILES))
    kms_host.answer(r'^dir /-c /s /a "C:\\EXCHSRVR\\KMSDATA"$', tree(KMSDATA, KMS_FILES))
    kms_host.restart()
    backup = kms_host.backup()
    with pytest.raises(BackupFailed) as caught:
        backup.execute(backup.plan())
    message = str(caught.value)
    assert message.startswith(
        f"the copy in {DEST} does not match the KM database: Kmsmdb.edb differs"
    )
    assert (
        f"The copy is in {DEST} (3 files, 3162112 bytes), but it is NOT a usable backup" in message
    )
    assert f"The KM database in {KMSDATA} was only read and still holds its 3 files" in message
    assert message.endswith("MSExchangeKMS was RUNNING before the backup and is RUNNING again.")
    assert (caught.value.result["kms_state_before"], caught.value.result["kms_state_after"]) == (
        "running",
        "running",
    )
    described = [f'dir /-c /s /a "{DEST}"', f'dir /-c /s /a "{KMSDATA}"']
    assert kms_host.commands == (
        SURVEY + STOP + POLL + SURVEY + COPY + VERIFY + described + RESTART
    )


def test_a_plan_refused_once_kms_stopped_starts_kms_again(kms_host: KmsHost) -> None:
    # Stopping flushed the logs: the database grew past the free space.
    kms_host.survey(code=4).stop().kms(1).survey(free=10240).restart()
    backup = kms_host.backup()
    with pytest.raises(BackupFailed) as caught:
        backup.execute(backup.plan())
    message = str(caught.value)
    assert message.startswith("once MSExchangeKMS had stopped, drive C: has 10240 bytes free")
    assert "Nothing was copied." in message
    assert "Nothing was changed" not in message
    assert message.endswith("is RUNNING again.")
    assert kms_host.commands == SURVEY + STOP + POLL + SURVEY + RESTART


def test_kms_started_again_by_someone_else_after_the_stop_is_not_copied(
    kms_host: KmsHost,
) -> None:
    kms_host.survey(code=4).stop().kms(1).survey(code=4)
    kms_host.kms(4).answer(r"^sc qc MSExchangeKMS$", kms_host.recorded("sc_qc/e7_kms"))
    kms_host.answer(KMS_SERVER_QUERY, kms_host.recorded("reg_query/kms_server_key_typed_vista"))
    backup = kms_host.backup()
    with pytest.raises(BackupFailed) as caught:
        backup.execute(backup.plan())
    message = str(caught.value)
    assert message.startswith(
        "MSExchangeKMS stopped, but the listing taken next shows it RUNNING: something else "
        "started it while the backup ran. Nothing was copied."
    )
    assert message.endswith("MSExchangeKMS was RUNNING before the backup and is RUNNING again.")
    assert kms_host.commands == SURVEY + STOP + POLL + SURVEY + READ  # no xcopy, no sc start


def test_dependents_stopped_with_kms_are_named_in_a_warning(kms_host: KmsHost) -> None:
    # Illustrative: no Exchange service depends on MSExchangeKMS, but the stop walks them all.
    dependent = sc_block(4, name="KMSAudit").replace(
        "SERVICE_NAME: KMSAudit\r\n", "SERVICE_NAME: KMSAudit\r\nDISPLAY_NAME: KMS Audit\r\n"
    )
    kms_host.survey(code=4)
    kms_host.answer(r"^sc enumdepend MSExchangeKMS 64000$", f"Enum: entriesRead = 1\r\n{dependent}")
    kms_host.kms(kms_host.recorded("sc_query/e5_kms_running"))
    kms_host.answer(r"^sc stop KMSAudit$", sc_block(3, name="KMSAudit"))
    kms_host.answer(r"^sc query KMSAudit$", sc_block(3, name="KMSAudit"))
    kms_host.answer(r"^sc query KMSAudit$", sc_block(1, name="KMSAudit"))
    kms_host.answer(r"^sc stop MSExchangeKMS$", kms_host.recorded("sc_stop/stop_pending"))
    kms_host.kms(kms_host.recorded("sc_stop/stop_pending"), 1)
    kms_host.survey().copy().verify().restart()
    backup = kms_host.backup()
    outcome = backup.execute(backup.plan())
    assert outcome.warnings == (
        "stopping MSExchangeKMS stopped KMSAudit, which depend on it; they were not started "
        "again. Start them with exchops.kms.exchange_service.",
    )
    assert kms_host.commands[len(SURVEY) : len(SURVEY) + 7] == [
        "sc enumdepend MSExchangeKMS 64000",
        "sc query MSExchangeKMS",
        "sc stop KMSAudit",
        "sc query KMSAudit",
        "sc query KMSAudit",
        "sc stop MSExchangeKMS",
        "sc query MSExchangeKMS",
    ]


def running_backup_whose_restart(kms_host: KmsHost, *polls: t.Any, **events: str) -> BackupFailed:
    """A backup of a running KMS, complete and verified, whose restart ends as scripted."""
    kms_host.survey(code=4).stop().kms(1).survey().copy().verify().restart(*polls, **events)
    backup = kms_host.backup()
    with pytest.raises(BackupFailed) as caught:
        backup.execute(backup.plan())
    assert kms_host.commands == SURVEY + STOP + POLL + SURVEY + COPY + VERIFY + RESTART
    assert caught.value.result["manifest"][2]["sha256"] == HASHES["Kmsmdb.edb"]
    assert PASSWORD not in str(caught.value)
    return caught.value


@pytest.mark.parametrize(
    ("win32", "service", "meaning"),
    [
        (
            2140,
            0,
            "error 2140 is KMS's answer to a wrong or missing startup password \\(event "
            "5057, KB Q184420\\)",
        ),
        (1066, 1, "error 1066 carries KMS's own code 1, .*event 5058 is a damaged"),
        (0, 0, "KMS exited without an error code\\. Event 5389, .*KB Q259906"),
        (
            1068,
            0,
            "\\(WIN32_EXIT_CODE 1068, SERVICE_EXIT_CODE 0\\). Read the Application and "
            "System logs",
        ),
    ],
)
def test_a_kms_that_stopped_after_its_start_is_explained_by_its_exit_codes(
    kms_host: KmsHost, win32: int, service: int, meaning: str
) -> None:
    failed = running_backup_whose_restart(kms_host, sc_block(1, win32=win32, service=service))
    message = str(failed)
    assert message.startswith(
        f"the backup in {DEST} is complete and verified (3 files, 3162112 bytes, same SHA256). "
        "MSExchangeKMS was RUNNING before the backup and did not start again: MSExchangeKMS "
        "started but was STOPPED again right after sc start: it logged no new MSExchangeKMS event "
    )
    assert re.search(meaning, message)
    assert (failed.result["kms_state_before"], failed.result["kms_state_after"]) == (
        "running",
        "stopped",
    )


def test_new_kms_failure_events_right_after_running_fail_the_restart_with_their_meaning(
    kms_host: KmsHost,
) -> None:
    failed = running_backup_whose_restart(kms_host, events="wmic_ntevent/three_events")
    message = str(failed)
    assert (
        "MSExchangeKMS was RUNNING before the backup and started again, with failures: MSExchangeKMS is "
        "running but logged event 5015 (record 1206, " in message
    )
    assert "; and event 5389 (record 1207, " in message
    assert message.endswith(
        "Events 5389 and 5015 together point to the service account's rights (KB Q274321). Give "
        "the service account back its rights (a local administrator, the same account as the "
        "Directory service, KB Q274321), then start MSExchangeKMS again."
    )
    assert failed.result["kms_state_after"] == "running"


# ---------------------------------------------------------------------------------------------
# A KMS that reads its startup password from a disk (KB Q196129)


def test_a_running_disk_mode_kms_is_backed_up_and_started_again_without_a_password(
    kms_host: KmsHost,
) -> None:
    kms_host.survey(code=4)
    kms_host.answer(KMS_SERVER_QUERY, kms_host.recorded("reg_query/kms_server_key_disk_vista"))
    kms_host.stop().kms(1).survey().copy().verify()
    kms_host.restart(kms_server="reg_query/kms_server_key_disk_vista")
    backup = kms_host.backup(password="")
    outcome = backup.execute(backup.plan())
    assert outcome.kms_state_after == "running"
    start = [command for command in kms_host.commands if command.startswith("sc start")]
    assert start == ["sc start MSExchangeKMS"]
    assert kms_host.commands == (
        SURVEY
        + [KMS_SERVER]
        + STOP
        + POLL
        + SURVEY
        + COPY
        + VERIFY
        + READ
        + [*START[:3], "sc start MSExchangeKMS", *START[4:]]
        + POLL
        + NEW_EVENTS
    )


def test_a_running_kms_that_needs_a_typed_password_is_refused_without_one(
    kms_host: KmsHost,
) -> None:
    kms_host.survey(code=4)
    kms_host.answer(KMS_SERVER_QUERY, kms_host.recorded("reg_query/kms_server_key_typed_vista"))
    with pytest.raises(BackupRefused, match=r"names no startup disk \(KB Q196129\)"):
        kms_host.backup(password="").plan()
    assert kms_host.commands == SURVEY + [KMS_SERVER]


def test_through_a_jump_host_every_path_is_the_servers_admin_share_and_every_tool_names_it() -> (
    None
):
    survey = " & ".join(survey_sections(KMSDATA, DEST, remote="KMSNEW"))
    assert 'dir /-c /s /a "\\\\KMSNEW\\C$\\EXCHSRVR\\KMSDATA"' in survey
    assert 'dir /-c /a "\\\\KMSNEW\\C$\\EXCHSRVR\\KMSDATA.backup-20240131-221500"' in survey
    assert "dir /-c /a \\\\KMSNEW\\C$\\)" in survey  # the volume's free bytes
    assert "sc \\\\KMSNEW query MSExchangeKMS" in survey
    # wmic reads the file where the server sees it.
    assert 'wmic /node:KMSNEW datafile where name="C:\\\\EXCHSRVR\\\\BIN\\\\KMSERVER.EXE"' in survey
    assert copy_line(KMSDATA, DEST, remote="KMSNEW") == (
        'xcopy "\\\\KMSNEW\\C$\\EXCHSRVR\\KMSDATA" '
        '"\\\\KMSNEW\\C$\\EXCHSRVR\\KMSDATA.backup-20240131-221500" /E /I /H /K /Y /Q < NUL'
    )
    # On the server itself nothing changes.
    assert copy_line(KMSDATA, DEST) == f'xcopy "{KMSDATA}" "{DEST}" /E /I /H /K /Y /Q < NUL'
