# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""kms_backup's two steps of a KM Server move (KB Q154531): the verification of a restored KM
database folder against a backup's manifest (`verify_restore`, `RestoreCheck`), and the second
copy on the controller (`check_fetched`, `fetch_backup`).

Host answers are framed `_probe` sections in the layouts test_kmsbackup.py replays (`sc query`,
`dir /s`, `certutil -hashfile`), plus `certutil -encode`'s answer and the Base64 file read back.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from pathlib import Path

import pytest
from test_kmsbackup import KMS_FILES, certutil, framed, not_found, sc_block, tree
from test_kmsbackup_plan import DEST, FILES, KMSDATA, plan

from ansible_collections.exchops.kms.plugins.plugin_utils._kmsbackup_plan import (
    BackupOutcome,
    BackupRefused,
    FileItem,
    ManifestEntry,
    RestoreMismatch,
    TreeReading,
    check_fetched,
    manifest_from_option,
    refuse_unsettled_kms,
    restore_result,
    verify_restore,
)
from ansible_collections.exchops.kms.plugins.plugin_utils._kmsmove import (
    FETCH_SUFFIX,
    FetchFailed,
    RestoreCheck,
    controller_folder,
    fetch_backup,
    fetch_sections,
)
from ansible_collections.exchops.kms.plugins.plugin_utils._winout import ParseError
from ansible_collections.exchops.kms.plugins.plugin_utils._winrs import CommandOutput

CONTENT = {name: bytes([index + 1]) * size for index, (name, size) in enumerate(KMS_FILES.items())}
SHA = {name: hashlib.sha256(data).hexdigest() for name, data in CONTENT.items()}
MANIFEST = tuple(ManifestEntry(item.name, item.size, SHA[item.name]) for item in FILES)
OPTION = [entry.to_json() for entry in MANIFEST]
FOUND = TreeReading(FILES, ())


# ---------------------------------------------------------------------------------------------
# The option


def test_a_manifest_as_kms_backup_returned_it_is_taken_whole() -> None:
    assert manifest_from_option(OPTION) == MANIFEST
    upper = [{**entry, "sha256": entry["sha256"].upper()} for entry in OPTION]
    assert manifest_from_option(upper) == MANIFEST
    sizes_only = manifest_from_option([{"name": "a\\b.log", "size": 0, "sha256": None}])
    assert sizes_only == (ManifestEntry("a\\b.log", 0, None),)


@pytest.mark.parametrize(
    ("entries", "match"),
    [
        pytest.param([], "verify_against is empty", id="empty"),
        pytest.param(["Kmsmdb.edb"], r"verify_against\[0\] is 'Kmsmdb.edb', not a dict", id="str"),
        pytest.param([{"size": 1}], "has name None", id="no name"),
        pytest.param([{"name": "C:\\x", "size": 1}], "not a path relative", id="drive"),
        pytest.param([{"name": "..\\x", "size": 1}], "'..' part", id="dot dot"),
        pytest.param([{"name": "x", "size": "1"}], "size '1', not a number", id="size str"),
        pytest.param([{"name": "x", "size": True}], "size True", id="size bool"),
        pytest.param([{"name": "x", "size": -1}], "size -1", id="size negative"),
        pytest.param([{"name": "x", "size": 1, "sha256": "abc"}], "not 64 hex digits", id="short"),
        pytest.param(
            [{"name": "x", "size": 1}, {"name": "X", "size": 1}],
            r"verify_against\[1\] names X a second time",
            id="twice (NTFS ignores case)",
        ),
    ],
)
def test_a_manifest_that_is_not_one_is_refused_naming_the_entry(entries: list, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        manifest_from_option(entries)


# ---------------------------------------------------------------------------------------------
# The decision


@pytest.mark.parametrize("state", ["stopped", "absent"])
def test_a_stopped_or_absent_kms_lets_the_folder_be_checked(state: str) -> None:
    refuse_unsettled_kms(KMSDATA, state)


@pytest.mark.parametrize("state", ["running", "start_pending", "stop_pending", "paused"])
def test_a_kms_that_runs_or_moves_refuses_the_check_and_says_why(state: str) -> None:
    with pytest.raises(BackupRefused, match=f"MSExchangeKMS is {state.upper()}, so ") as caught:
        refuse_unsettled_kms(KMSDATA, state)
    assert "KB Q190713" in str(caught.value)
    assert "ESE97, KB Q274321" in str(caught.value)


def test_a_folder_with_the_manifests_files_sizes_and_hashes_passes() -> None:
    verify_restore(KMSDATA, MANIFEST, FOUND, dict(SHA))
    # Case differs: NTFS names compare case-insensitively.
    lower = TreeReading(tuple(FileItem(item.name.lower(), item.size) for item in FILES), ())
    verify_restore(KMSDATA, MANIFEST, lower, dict(SHA))


@pytest.mark.parametrize(
    ("found", "hashes", "problems"),
    [
        pytest.param(
            FOUND,
            {**SHA, "Kmsmdb.edb": "0" * 64},
            ["Kmsmdb.edb differs: SHA256 0000000000000000... in the folder, "],
            id="changed content",
        ),
        pytest.param(
            TreeReading(FILES[:2], ()),
            SHA,
            ["Kmsmdb.edb is missing from the folder"],
            id="missing file",
        ),
        pytest.param(
            TreeReading((*FILES, FileItem("res1.log", 5242880)), ()),
            SHA,
            ["the folder holds res1.log, which the backup does not"],
            id="a fresh install's log left beside the restore (Q198814)",
        ),
        pytest.param(
            TreeReading((FILES[0], FileItem("edb.log", 1), FILES[2]), ()),
            SHA,
            ["edb.log is 1 bytes in the folder but 1048576 bytes in the backup"],
            id="other size",
        ),
        pytest.param(
            FOUND,
            {name: digest for name, digest in SHA.items() if name != "edb.log"},
            ["the SHA256 of edb.log could not be read (no answer)"],
            id="hash not read",
        ),
        pytest.param(None, SHA, ["the folder does not exist"], id="no folder"),
    ],
)
def test_every_difference_is_named_and_nothing_passes(
    found: TreeReading | None, hashes: dict[str, str], problems: list[str]
) -> None:
    with pytest.raises(RestoreMismatch) as caught:
        verify_restore(KMSDATA, MANIFEST, found, hashes)
    assert len(caught.value.problems) == len(problems)
    for problem, wanted in zip(caught.value.problems, problems):
        assert problem.startswith(wanted)
    message = str(caught.value)
    assert message.startswith(
        f"the KM database folder {KMSDATA} does not match the backup's manifest: "
    )
    assert message.endswith(
        "Do not start MSExchangeKMS on it: with MSExchangeKMS stopped, delete the files in "
        f"{KMSDATA} and restore the backup into it again (KB Q190713, Q198814), then run this "
        "check again"
    )


def test_without_hashing_only_the_list_and_sizes_decide() -> None:
    verify_restore(KMSDATA, MANIFEST, FOUND, {}, hashing=False)


def test_a_verification_that_passed_reports_no_change() -> None:
    result = restore_result(KMSDATA, MANIFEST, "stopped", hashing=True)
    assert result["changed"] is False
    assert result["msg"] == (
        f"{KMSDATA} matches the backup's manifest: the same 3 files, sizes and SHA256. "
        "MSExchangeKMS is stopped and was not touched."
    )
    assert (result["files"], result["bytes"], result["verification"]) == (3, 3162112, "sha256")
    sizes = restore_result(KMSDATA, (ManifestEntry("a", 1, None),), "absent", hashing=True)
    assert sizes["verification"] == "sizes"


# ---------------------------------------------------------------------------------------------
# On a host


class Host:
    """Answers each command line from its sections: sc query, dir /s, certutil -hashfile,
    certutil -encode, type of the encoded file, del. Records every line."""

    def __init__(self, files: dict[str, bytes], kms: int = 1) -> None:
        self.files = files
        self.kms = kms
        self.lines: list[str] = []

    def __call__(self, line: str) -> CommandOutput:
        self.lines.append(line)
        sections = {}
        for name, command in re.findall(r"begin:(\w+)== & \((.*?)\) 2>&1", line):
            sections[name] = self.answer(name, command)
        return CommandOutput(framed(**sections), "", 0, 0.1)

    def answer(self, name: str, command: str) -> str | tuple[str, bool]:
        if name == "kms":
            return sc_block(self.kms)
        if name == "source":
            sizes = {key: len(value) for key, value in self.files.items()}
            return tree(KMSDATA, sizes) if sizes else (not_found("C:\\EXCHSRVR"), False)
        file_name = re.search(r'"[^"]*\\([^"\\]+)"', command).group(1)
        if name.startswith("sha_"):
            return certutil(file_name, hashlib.sha256(self.files[file_name]).hexdigest())
        if name == "encode":
            return "Input Length = 1\r\nOutput Length = 1\r\nCertUtil: -encode command completed successfully.\r\n"
        if name == "encoded":
            source = self.lines[-1].split('-encode "', 1)[1].split('"', 1)[0].rsplit("\\", 1)[1]
            text = base64.b64encode(self.files[source]).decode("ascii")
            body = "".join(text[i : i + 64] + "\r\n" for i in range(0, len(text), 64))
            return f"-----BEGIN CERTIFICATE-----\r\n{body}-----END CERTIFICATE-----\r\n"
        return ""  # del prints nothing


def test_a_restored_folder_is_read_in_two_round_trips_and_never_changed() -> None:
    host = Host(dict(CONTENT))
    result, warnings = RestoreCheck(host, MANIFEST, database_path=KMSDATA).check()
    assert result["changed"] is False
    assert warnings == ()
    assert len(host.lines) == 2
    every = " ".join(host.lines)
    for verb in ("sc start", "sc stop", "xcopy", "del ", "copy ", "move ", "rd ", "md "):
        assert verb not in every


def test_a_running_kms_is_refused_after_one_read() -> None:
    host = Host(dict(CONTENT), kms=4)
    with pytest.raises(BackupRefused, match="MSExchangeKMS is RUNNING"):
        RestoreCheck(host, MANIFEST, database_path=KMSDATA).check()
    assert len(host.lines) == 1


def test_a_changed_file_on_the_host_fails_the_check_naming_it() -> None:
    host = Host({**CONTENT, "edb.log": b"\x00" * KMS_FILES["edb.log"]})
    with pytest.raises(RestoreMismatch, match="edb.log differs: SHA256"):
        RestoreCheck(host, MANIFEST, database_path=KMSDATA).check()


# ---------------------------------------------------------------------------------------------
# The controller copy


def test_each_file_is_encoded_beside_the_backup_read_back_and_its_encoding_deleted() -> None:
    encoded = DEST + FETCH_SUFFIX
    line = " & ".join(fetch_sections(f"{DEST}\\Kmsmdb.edb", encoded))
    assert f'certutil -f -encode "{DEST}\\Kmsmdb.edb" "{encoded}"' in line
    assert f'type "{encoded}"' in line
    assert f'del "{encoded}" < NUL' in line
    assert "*" not in line and "/s" not in line


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (CONTENT["edb.chk"], None),
        (CONTENT["edb.chk"][:-1], "edb.chk arrived with 8191 bytes, not 8192"),
        (b"\x00" * 8192, "edb.chk arrived with SHA256 "),
    ],
)
def test_a_fetched_file_must_have_its_manifest_size_and_sha256(
    data: bytes, problem: str | None
) -> None:
    said = check_fetched(MANIFEST[0], data)
    assert said == problem if problem is None else said.startswith(problem)


def outcome() -> BackupOutcome:
    return BackupOutcome(plan(), MANIFEST, "stopped", "stopped")


def test_the_copy_arrives_whole_with_its_manifest_and_no_staging_left(tmp_path: Path) -> None:
    folder = controller_folder(str(tmp_path), "kms-old", DEST)
    assert folder == tmp_path / "kms-old" / "KMSDATA.backup-20240131-221500"
    copy, warnings = fetch_backup(Host(dict(CONTENT)), outcome(), folder, {"host": "kms-old"})
    assert warnings == ()
    assert copy["files"] == 3 and copy["verification"] == "sha256"
    for name, data in CONTENT.items():
        assert (folder / "KMSDATA" / name).read_bytes() == data
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    assert manifest == {"host": "kms-old", "manifest": OPTION}
    assert [path.name for path in folder.parent.iterdir()] == [folder.name]
    # Made with tempfile.mkdtemp: only the controller's user may open the keys' folder.
    assert folder.stat().st_mode & 0o777 == 0o700


def test_a_file_changed_in_transit_leaves_nothing_on_the_controller(tmp_path: Path) -> None:
    folder = controller_folder(str(tmp_path), "kms-old", DEST)
    host = Host({**CONTENT, "Kmsmdb.edb": b"\x07" * KMS_FILES["Kmsmdb.edb"]})
    with pytest.raises(FetchFailed, match="Kmsmdb.edb arrived with SHA256 .* the transfer changed"):
        fetch_backup(host, outcome(), folder, {})
    assert list(folder.parent.iterdir()) == []


def test_an_answer_cut_short_leaves_nothing_on_the_controller(tmp_path: Path) -> None:
    folder = controller_folder(str(tmp_path), "kms-old", DEST)

    class CutShort(Host):
        def answer(self, name: str, command: str) -> str | tuple[str, bool]:
            said = super().answer(name, command)
            return said.split("-----END")[0] if name == "encoded" else said

    with pytest.raises(ParseError, match="cut short"):
        fetch_backup(CutShort(dict(CONTENT)), outcome(), folder, {})
    assert list(folder.parent.iterdir()) == []


def test_an_existing_copy_is_never_overwritten(tmp_path: Path) -> None:
    folder = controller_folder(str(tmp_path), "kms-old", DEST)
    folder.mkdir(parents=True)
    (folder / "keep").write_text("earlier copy", encoding="utf-8")
    with pytest.raises(FetchFailed, match="already exists on the controller"):
        fetch_backup(Host(dict(CONTENT)), outcome(), folder, {})
    assert (folder / "keep").read_text(encoding="utf-8") == "earlier copy"


def test_an_encoded_file_that_del_could_not_remove_is_named_in_a_warning(tmp_path: Path) -> None:
    class Locked(Host):
        def answer(self, name: str, command: str) -> str | tuple[str, bool]:
            if name == "cleanup":
                return ("Access is denied.\r\n", True)
            return super().answer(name, command)

    folder = controller_folder(str(tmp_path), "kms-old", DEST)
    _copy, warnings = fetch_backup(Locked(dict(CONTENT)), outcome(), folder, {})
    assert len(warnings) == 3
    assert warnings[0] == (
        f"{DEST}{FETCH_SUFFIX} (a Base64 copy of {DEST}\\edb.chk) may be left on the host (del "
        "answered 'Access is denied.'); delete that one file."
    )


def test_the_fetch_never_deletes_a_path_that_is_or_holds_the_kms_database(tmp_path: Path) -> None:
    database = f"{DEST}{FETCH_SUFFIX}\\KMSDATA"
    odd = BackupOutcome(plan(database_path=database), MANIFEST, "stopped", "stopped")
    host = Host(dict(CONTENT))
    with pytest.raises(FetchFailed, match="the file the fetch writes and deletes, is the KM"):
        fetch_backup(host, odd, controller_folder(str(tmp_path), "kms-old", DEST), {})
    assert host.lines == []
