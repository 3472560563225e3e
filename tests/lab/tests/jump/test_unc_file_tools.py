# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A jump host's file tools on a legacy server's admin share: the KM database backup's commands
(dir, xcopy, certutil, md, type, del, `echo > file`) with `\\\\NAME\\C$\\path`.

Copies go within one server, from a server to the jump host's disk, from the jump host to a
server, and between two servers; each refusal of the remote-call layer (exchlab.windows.remote)
is printed in the tool's own words and leaves the destination as it was.
"""

from __future__ import annotations

import contextlib
import hashlib
import threading
from collections.abc import Callable, Iterator

import pytest
from jump_support import DOMAIN, PASSWORD, USER, JumpLab, credssp, jump_host, legacy_host, ntlm

from exchlab.state import HostState
from exchlab.windows.remote import ServerNetwork
from exchlab.windows.shell import run_command
from exchlab.wsman.backend import LogonSession

KMSDATA = r"C:\EXCHSRVR\KMSDATA"
UNC_KMSDATA = r"\\KMSNEW\C$\EXCHSRVR\KMSDATA"
# The backup's copy (plugins/plugin_utils/_kmsbackup.py, XCOPY_SWITCHES).
SWITCHES = "/E /I /H /K /Y /Q < NUL"
KMSDATA_FILES = ["edb.chk", "edb.log", "Kmsmdb.edb"]


def files_of(host: HostState, folder: str) -> dict[str, str]:
    """The files of a folder tree: path relative to it -> SHA-256 of the bytes."""
    found: dict[str, str] = {}
    for entry in host.fs.all_files():
        if entry.path.upper().startswith(folder.upper() + "\\"):
            found[entry.path[len(folder) + 1 :]] = entry.sha256()
    return found


def snapshot(host: HostState) -> tuple[dict[str, str], dict[str, int]]:
    """Every file and each drive's free bytes: what a refused call must leave as it was."""
    return (
        {entry.path: entry.sha256() for entry in host.fs.all_files()},
        {letter: drive.free_bytes for letter, drive in host.drives.items()},
    )


@pytest.fixture
def lab() -> JumpLab:
    return JumpLab(jump_host(), legacy_host())


# ---------------------------------------------------------------------------------------------
# Copies through the share


def test_xcopy_within_the_legacy_server_copies_kmsdata_beside_itself(lab: JumpLab) -> None:
    server = lab.servers["KMSNEW"]
    backup = r"\\KMSNEW\C$\EXCHSRVR\KMSDATA.exchops-20261203T221500"
    result = lab.run(f'xcopy "{UNC_KMSDATA}" "{backup}" {SWITCHES}', credssp())
    assert (result.stdout, result.stderr, result.exit_code) == ("3 File(s) copied\r\n", "", 0)
    copied = files_of(server, r"C:\EXCHSRVR\KMSDATA.exchops-20261203T221500")
    assert sorted(copied) == sorted(KMSDATA_FILES)
    assert copied == files_of(server, KMSDATA)
    # Nothing of it landed on the jump host.
    assert not lab.jump.fs.exists(r"C:\EXCHSRVR\KMSDATA.exchops-20261203T221500")


def test_xcopy_from_the_legacy_server_to_the_jump_hosts_disk(lab: JumpLab) -> None:
    server = lab.servers["KMSNEW"]
    free_before = server.drives["C:"].free_bytes
    destination = r"C:\exchops-backups\KMSNEW\KMSDATA.exchops-20261203T221500"
    result = lab.run(f'xcopy "{UNC_KMSDATA}" "{destination}" {SWITCHES}', credssp())
    assert (result.stdout, result.exit_code) == ("3 File(s) copied\r\n", 0)
    assert files_of(lab.jump, destination) == files_of(server, KMSDATA)
    assert server.drives["C:"].free_bytes == free_before
    assert server.kms_database_intact()


def test_xcopy_from_the_jump_hosts_disk_to_the_legacy_server(lab: JumpLab) -> None:
    server = lab.servers["KMSNEW"]
    staged = r"C:\exchops-backups\KMSNEW\KMSDATA"
    assert lab.run(f'xcopy "{UNC_KMSDATA}" "{staged}" {SWITCHES}', credssp()).exit_code == 0
    back = r"\\KMSNEW\C$\exchops\restore"
    result = lab.run(f'xcopy "{staged}" "{back}" {SWITCHES}', credssp())
    assert (result.stdout, result.exit_code) == ("3 File(s) copied\r\n", 0)
    assert files_of(server, r"C:\exchops\restore") == files_of(lab.jump, staged)


def test_xcopy_between_two_legacy_servers_streams_through_the_jump_host() -> None:
    lab = JumpLab(jump_host(), legacy_host(), legacy_host("KMSW2K", "2000", service_pack="4"))
    result = lab.run(f'xcopy "{UNC_KMSDATA}" "\\\\KMSW2K\\C$\\FROMNT4" {SWITCHES}', credssp())
    assert (result.stdout, result.exit_code) == ("3 File(s) copied\r\n", 0)
    assert files_of(lab.servers["KMSW2K"], r"C:\FROMNT4") == files_of(
        lab.servers["KMSNEW"], KMSDATA
    )


def test_xcopy_names_the_servers_files_as_typed(lab: JumpLab) -> None:
    assert lab.run(r"md \\KMSNEW\c$\COPY", credssp()).exit_code == 0
    result = lab.run(f"xcopy {UNC_KMSDATA}\\edb.chk \\\\KMSNEW\\c$\\COPY /F /Y", credssp())
    assert result.stdout == (
        f"{UNC_KMSDATA}\\edb.chk -> \\\\KMSNEW\\c$\\COPY\\edb.chk\r\n1 File(s) copied\r\n"
    )


def test_copy_and_robocopy_copy_through_the_share(lab: JumpLab) -> None:
    copied = lab.run(f'copy "{UNC_KMSDATA}\\edb.chk" C:\\edb.chk', credssp())
    assert (copied.stdout, copied.stderr, copied.exit_code) == (
        "        1 file(s) copied.\r\n",
        "",
        0,
    )
    robo = lab.run(f'robocopy "{UNC_KMSDATA}" C:\\ROBO /E /R:0 /NJH /NJS', credssp())
    assert robo.exit_code == 1
    assert f"\t  New Dir         3\t{UNC_KMSDATA}\\\r\n" in robo.stdout
    assert files_of(lab.jump, r"C:\ROBO") == files_of(lab.servers["KMSNEW"], KMSDATA)


def test_a_full_disk_on_the_legacy_server_leaves_no_partial_file(lab: JumpLab) -> None:
    # The destination host's rules apply: the server's drive fills up after edb.chk (8192 bytes).
    server = lab.servers["KMSNEW"]
    server.faults.update(disk_full=True, disk_full_free_bytes=10_000)
    assert lab.run(f"xcopy {UNC_KMSDATA} C:\\STAGED {SWITCHES}", credssp()).exit_code == 0
    result = lab.run(f"xcopy C:\\STAGED \\\\KMSNEW\\C$\\BACK {SWITCHES}", credssp())
    assert (result.stdout, result.stderr, result.exit_code) == (
        "1 File(s) copied\r\n",
        "Insufficient disk space\r\n",
        4,
    )
    assert list(files_of(server, r"C:\BACK")) == ["edb.chk"]


def test_a_full_jump_host_disk_leaves_no_partial_file_and_the_server_untouched(
    lab: JumpLab,
) -> None:
    server = lab.servers["KMSNEW"]
    lab.jump.faults.update(disk_full=True, disk_full_free_bytes=0)
    before = snapshot(server)
    result = lab.run(f'copy "{UNC_KMSDATA}\\edb.chk" C:\\edb.chk', credssp())
    assert (result.stderr, result.exit_code) == ("There is not enough space on the disk.\r\n", 1)
    assert not lab.jump.fs.exists(r"C:\edb.chk")
    assert snapshot(server) == before


# ---------------------------------------------------------------------------------------------
# certutil, dir, md, type, del and redirection through the share


def test_certutil_hashfile_over_the_share_is_the_hash_of_the_servers_file(lab: JumpLab) -> None:
    server = lab.servers["KMSNEW"]
    path = f"{UNC_KMSDATA}\\Kmsmdb.edb"
    result = lab.run(f'certutil -hashfile "{path}" SHA256', credssp())
    local = server.fs.file_entry(f"{KMSDATA}\\Kmsmdb.edb")
    assert local is not None
    expected = hashlib.sha256(local.content()).hexdigest()
    assert (result.stdout, result.exit_code) == (
        f"SHA256 hash of {path}:\r\n{expected}\r\n"
        "CertUtil: -hashfile command completed successfully.\r\n",
        0,
    )
    # The copy on the jump host's disk hashes the same.
    assert lab.run(f'xcopy "{UNC_KMSDATA}" C:\\B {SWITCHES}', credssp()).exit_code == 0
    assert expected in lab.run(r"certutil -hashfile C:\B\Kmsmdb.edb SHA256").stdout


def test_certutil_encode_reads_the_servers_file_and_writes_beside_it(lab: JumpLab) -> None:
    server = lab.servers["KMSNEW"]
    result = lab.run(
        f'certutil -f -encode "{UNC_KMSDATA}\\edb.chk" "\\\\KMSNEW\\C$\\exchops.b64"', credssp()
    )
    assert result.exit_code == 0
    assert result.stdout.startswith("Input Length = 8192\r\n")
    encoded = server.fs.file_entry(r"C:\exchops.b64")
    assert encoded is not None
    assert encoded.content().startswith(b"-----BEGIN CERTIFICATE-----\r\n")


def test_md_dir_type_and_del_over_the_share(lab: JumpLab) -> None:
    server = lab.servers["KMSNEW"]
    made = lab.run(r'mkdir "\\KMSNEW\C$\exchops"', credssp())
    assert (made.stdout, made.stderr, made.exit_code) == ("", "", 0)
    assert server.fs.is_dir(r"C:\exchops") and not lab.jump.fs.exists(r"C:\exchops")
    again = lab.run(r'mkdir "\\KMSNEW\C$\exchops"', credssp())
    assert (again.stderr, again.exit_code) == (
        "A subdirectory or file \\\\KMSNEW\\C$\\exchops already exists.\r\n",
        1,
    )
    written = lab.run(r'echo KMS backup> "\\KMSNEW\C$\exchops\note.txt"', credssp())
    assert written.exit_code == 0
    appended = lab.run(r'echo done>> "\\KMSNEW\C$\exchops\note.txt"', credssp())
    assert appended.exit_code == 0
    shown = lab.run(r'type "\\KMSNEW\C$\exchops\note.txt"', credssp())
    assert shown.stdout == "KMS backup\r\ndone\r\n"
    listed = lab.run(r"dir /-c \\KMSNEW\C$\exchops", credssp())
    assert " Directory of \\\\KMSNEW\\C$\\exchops\r\n" in listed.stdout
    assert "             18 note.txt\r\n" in listed.stdout
    deleted = lab.run(r'del "\\KMSNEW\C$\exchops\note.txt"', credssp())
    assert (deleted.stderr, deleted.exit_code) == ("", 0)
    assert not server.fs.exists(r"C:\exchops\note.txt")
    missing = lab.run(r'del "\\KMSNEW\C$\exchops\note.txt"', credssp())
    assert (missing.stderr, missing.exit_code) == (
        "Could Not Find \\\\KMSNEW\\C$\\exchops\\note.txt\r\n",
        0,
    )


def test_if_exist_looks_through_the_share(lab: JumpLab) -> None:
    line = f'if exist "{UNC_KMSDATA}\\Kmsmdb.edb" (echo there) else (echo missing)'
    assert lab.run(line, credssp()).stdout == "there\r\n"
    assert lab.run(line.replace("Kmsmdb", "nothing"), credssp()).stdout == "missing\r\n"
    # Refused (the double hop): not there.
    assert lab.run(line, ntlm()).stdout == "missing\r\n"


def test_admin_dollar_is_the_servers_system_root(lab: JumpLab) -> None:
    listed = lab.run(r"dir /b \\KMSNEW\ADMIN$", credssp())
    assert listed.exit_code == 0
    assert "system32" in listed.stdout.lower().split()


def test_cmd_c_on_the_jump_host_reaches_the_share_too(lab: JumpLab) -> None:
    result = lab.run(f'cmd /c dir /b "{UNC_KMSDATA}"', credssp())
    assert (result.stdout, result.exit_code) == ("edb.chk\r\nedb.log\r\nKmsmdb.edb\r\n", 0)


# ---------------------------------------------------------------------------------------------
# Refusals: each tool's words, the destination untouched

BAD_NETPATH = "The network path was not found."
BAD_NET_NAME = "The network name cannot be found."
DENIED = "Access is denied."
LOGON_FAILURE = "The user name or password is incorrect."
HRESULT_NAMES = {
    BAD_NETPATH: (0x80070035, "WIN32: 53 ERROR_BAD_NETPATH"),
    BAD_NET_NAME: (0x80070043, "WIN32: 67 ERROR_BAD_NET_NAME"),
    DENIED: (0x80070005, "WIN32: 5 ERROR_ACCESS_DENIED"),
    LOGON_FAILURE: (0x8007052E, "WIN32: 1326 ERROR_LOGON_FAILURE"),
}


def _unknown_name() -> tuple[JumpLab, LogonSession, str]:
    return JumpLab(jump_host(), legacy_host()), credssp(), "NOSUCH"


# The lab, the logon session and the name the tools are given; the system message expected.
Refused = tuple[JumpLab, LogonSession, str, str]
REFUSALS: dict[str, tuple[Callable[[], tuple[JumpLab, LogonSession, str]], str]] = {
    "unknown name": (_unknown_name, BAD_NETPATH),
    "admin shares off (AutoShareServer 0)": (
        lambda: (JumpLab(jump_host(), legacy_host(admin_shares=False)), credssp(), "KMSNEW"),
        BAD_NET_NAME,
    ),
    "not a local administrator": (
        lambda: (
            JumpLab(jump_host(), legacy_host(admins=("LAB\\someone-else",))),
            credssp(),
            "KMSNEW",
        ),
        DENIED,
    ),
    "no delegated credentials (double hop)": (
        lambda: (JumpLab(jump_host(), legacy_host()), ntlm(), "KMSNEW"),
        DENIED,
    ),
    "NT 4.0 without NetBIOS on the jump host": (
        lambda: (JumpLab(jump_host(netbios=False), legacy_host()), credssp(), "KMSNEW"),
        BAD_NETPATH,
    ),
    "NT 4.0 SP3 and an NTLMv2-only jump host": (
        lambda: (JumpLab(jump_host(), legacy_host(service_pack="3")), credssp(), "KMSNEW"),
        LOGON_FAILURE,
    ),
    "no SMB1 client on a 2019 jump host": (
        lambda: (JumpLab(jump_host("2019"), legacy_host()), credssp(), "KMSNEW"),
        BAD_NETPATH,
    ),
}


@pytest.fixture(params=list(REFUSALS), ids=list(REFUSALS))
def refused(request: pytest.FixtureRequest) -> Refused:
    build, message = REFUSALS[request.param]
    lab, session, name = build()
    return lab, session, name, message


def test_xcopy_from_a_refused_share_leaves_the_jump_hosts_disk_untouched(
    refused: Refused,
) -> None:
    lab, session, name, message = refused
    before = snapshot(lab.jump)
    destination = r"C:\exchops-backups\KMSNEW\KMSDATA.exchops-20261203T221500"
    result = lab.run(
        f'xcopy "\\\\{name}\\C$\\EXCHSRVR\\KMSDATA" "{destination}" {SWITCHES}', session
    )
    assert (result.stdout, result.stderr, result.exit_code) == ("", message + "\r\n", 4)
    assert snapshot(lab.jump) == before


def test_xcopy_to_a_refused_share_leaves_the_server_untouched(
    refused: Refused,
) -> None:
    lab, session, name, message = refused
    before = snapshot(lab.servers["KMSNEW"])
    result = lab.run(f'xcopy "{KMSDATA}" "\\\\{name}\\C$\\BACK" {SWITCHES}', session)
    assert (result.stdout, result.stderr, result.exit_code) == ("", message + "\r\n", 4)
    assert snapshot(lab.servers["KMSNEW"]) == before


def test_xcopy_within_a_refused_server_copies_nothing(
    refused: Refused,
) -> None:
    lab, session, name, message = refused
    before = snapshot(lab.servers["KMSNEW"])
    line = f'xcopy "\\\\{name}\\C$\\EXCHSRVR\\KMSDATA" "\\\\{name}\\C$\\EXCHSRVR\\KMSDATA.bak" {SWITCHES}'
    result = lab.run(line, session)
    assert (result.stderr, result.exit_code) == (message + "\r\n", 4)
    assert snapshot(lab.servers["KMSNEW"]) == before


def test_certutil_on_a_refused_share_fails_with_the_win32_error(
    refused: Refused,
) -> None:
    lab, session, name, message = refused
    hresult, detail = HRESULT_NAMES[message]
    line = f'certutil -hashfile "\\\\{name}\\C$\\EXCHSRVR\\KMSDATA\\Kmsmdb.edb" SHA256'
    result = lab.run(line, session)
    assert (result.stdout, result.stderr, result.exit_code) == (
        f"CertUtil: -hashfile command FAILED: 0x{hresult:08x} ({detail})\r\n"
        f"CertUtil: {message}\r\n",
        "",
        hresult,
    )


def test_certutil_encode_to_a_refused_share_writes_nothing(
    refused: Refused,
) -> None:
    lab, session, name, message = refused
    line = f'certutil -f -encode "{KMSDATA}\\edb.chk" "\\\\{name}\\C$\\edb.b64"'
    # The jump host has no KMSDATA of its own: put the file there first.
    lab.jump.make_dirs(KMSDATA)
    lab.jump.write_file(f"{KMSDATA}\\edb.chk", data=b"checkpoint")
    before = snapshot(lab.servers["KMSNEW"]), snapshot(lab.jump)
    result = lab.run(line, session)
    assert result.exit_code == HRESULT_NAMES[message][0]
    assert f"CertUtil: {message}\r\n" in result.stdout
    assert (snapshot(lab.servers["KMSNEW"]), snapshot(lab.jump)) == before


def test_md_echo_and_robocopy_on_a_refused_share(
    refused: Refused,
) -> None:
    lab, session, name, message = refused
    before = snapshot(lab.servers["KMSNEW"]), snapshot(lab.jump)
    made = lab.run(f"md \\\\{name}\\C$\\exchops", session)
    assert (made.stdout, made.stderr, made.exit_code) == ("", message + "\r\n", 1)
    echoed = lab.run(f"echo x> \\\\{name}\\C$\\x.txt", session)
    assert (echoed.stdout, echoed.stderr, echoed.exit_code) == ("", message + "\r\n", 1)
    robo = lab.run(f"robocopy \\\\{name}\\C$\\EXCHSRVR\\KMSDATA C:\\R /E /R:0 /NJH /NJS", session)
    code = {BAD_NETPATH: 53, BAD_NET_NAME: 67, DENIED: 5, LOGON_FAILURE: 1326}[message]
    assert robo.exit_code == 16
    assert robo.stdout.endswith(
        f" ERROR {code} (0x{code:08X}) Accessing Source Directory "
        f"\\\\{name}\\C$\\EXCHSRVR\\KMSDATA\\\r\n{message}\r\n"
    )
    assert (snapshot(lab.servers["KMSNEW"]), snapshot(lab.jump)) == before


def test_a_share_that_is_no_admin_share_holds_no_files(lab: JumpLab) -> None:
    result = lab.run(r"dir \\KMSNEW\IPC$", credssp())
    assert (result.stderr, result.exit_code) == (BAD_NET_NAME + "\r\n", 1)


def test_a_host_that_reaches_nobody_refuses_unc_paths_as_before() -> None:
    alone = jump_host()
    result = run_command(alone, f'xcopy "{UNC_KMSDATA}" C:\\B {SWITCHES}')
    assert (result.stderr, result.exit_code) == (BAD_NETPATH + "\r\n", 4)
    assert not alone.fs.exists(r"C:\B")


# ---------------------------------------------------------------------------------------------
# One server, held once per command line


class _OnceLockedServer:
    """A server behind a non-reentrant lock, as the lab's runtime holds one: opening it twice in
    one call would wait for ever, so here it fails at once."""

    def __init__(self, state: HostState) -> None:
        self.state = state
        self.lock = threading.Lock()
        self.opens = 0

    @contextlib.contextmanager
    def opened(self) -> Iterator[HostState]:
        if not self.lock.acquire(timeout=1):
            raise AssertionError("the server was opened twice at once")
        self.opens += 1
        try:
            yield self.state
        finally:
            self.lock.release()


def test_a_copy_within_one_server_opens_it_once_and_advances_its_clock_once() -> None:
    jump, server = jump_host(), legacy_host()
    held = _OnceLockedServer(server)
    network = ServerNetwork({"KMSNEW": held}, USER, PASSWORD, DOMAIN)
    sequence = server.command_seq
    result = run_command(
        jump,
        f'xcopy "{UNC_KMSDATA}" "{UNC_KMSDATA}.bak" {SWITCHES}',
        session=credssp(),
        network=network,
    )
    assert (result.stdout, result.exit_code) == ("3 File(s) copied\r\n", 0)
    assert held.opens == 1 and server.command_seq == sequence + 1
    assert files_of(server, KMSDATA + ".bak") == files_of(server, KMSDATA)
