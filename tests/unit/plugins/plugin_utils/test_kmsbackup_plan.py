# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The pure half of kms_backup (plugins/plugin_utils/_kmsbackup_plan.py): path checks, the plan
and its refusals, the verification of a copy, and the results."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
import yaml

from ansible_collections.exchops.kms.plugins.modules import kms_backup as stub
from ansible_collections.exchops.kms.plugins.plugin_utils._kmsbackup_plan import (
    EMPTY_SHA256,
    FREE_SPACE_MARGIN_MIN,
    PLAN_MESSAGES,
    PLAN_RULES,
    BackupOutcome,
    BackupPlan,
    BackupRefused,
    FileItem,
    ManifestEntry,
    Survey,
    TreeReading,
    VerificationFailed,
    check_destination,
    check_host_path,
    default_destination,
    kmserver_path,
    make_plan,
    margin_bytes,
    outcome_result,
    plan_result,
    verify_copy,
)

KMSDATA = "C:\\EXCHSRVR\\KMSDATA"
DEST = "C:\\EXCHSRVR\\KMSDATA.backup-20240131-221500"
FILES = (FileItem("edb.chk", 8192), FileItem("edb.log", 1048576), FileItem("Kmsmdb.edb", 2105344))
HASHES = {
    "edb.chk": "fbefe80c275d59cccb0530c67514bc8980a19622f45919a0922c3aedeaca1f78",
    "edb.log": "b865afe5d878e2bc047b74140ba546278181f26a4c7ffc0b6ceccf11b56ae522",
    "Kmsmdb.edb": "76282cacd87dcbd492b3cdf8f9b91c6f39a7a72050b451d1980c83bbe2f97d50",
}
FREE = 1_234_567_890


def survey(**changes: object) -> Survey:
    values: dict[str, object] = {
        "kms_state": "stopped",
        "source": TreeReading(FILES, ()),
        "source_is_file": False,
        "destination_exists": False,
        "drive_found": True,
        "free_bytes": FREE,
    }
    values.update(changes)
    return Survey(**values)  # type: ignore[arg-type]


def plan(**changes: object) -> BackupPlan:
    values: dict[str, object] = {
        "database_path": KMSDATA,
        "destination": DEST,
        "files": FILES,
        "folders": (),
        "free_bytes": FREE,
        "kms_state": "stopped",
    }
    values.update(changes)
    return BackupPlan(**values)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------
# Options


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("C:\\EXCHSRVR\\KMSDATA", "C:\\EXCHSRVR\\KMSDATA"),
        ("c:\\exchsrvr\\kmsdata\\", "C:\\exchsrvr\\kmsdata"),
        ("  D:\\KMS backups\\before SP4  ", "D:\\KMS backups\\before SP4"),
        (
            "C:\\Program Files (x86)\\Exchsrvr\\KMSDATA",
            "C:\\Program Files (x86)\\Exchsrvr\\KMSDATA",
        ),
    ],
)
def test_host_paths_are_normalised(value: str, expected: str) -> None:
    assert check_host_path("database_path", value) == expected


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("\\\\backup01\\kms", "a UNC path. The copy runs on the host itself"),
        ("KMSDATA", "not a full path on a drive of the host"),
        ("/exchsrvr/kmsdata", "not a full path on a drive of the host"),
        ("C:", "not a full path on a drive of the host"),
        ("C:\\", "a whole drive"),
        ("C:\\\\", "a whole drive"),
        ('C:\\EXCH"SRVR', "holds '\"'"),
        ("C:\\EXCH%SRVR%", "holds '%'"),
        ("C:\\EXCHSRVR/KMSDATA", "holds '/'"),
        ("C:\\KMS*", "holds '\\*'"),
        ("C:\\KMS\tDATA", "holds '\\\\t'"),
        ("C:\\EXCHSRVR\\..\\KMSDATA", "has an empty, '.' or '..' part"),
        ("C:\\EXCHSRVR\\\\KMSDATA", "has an empty, '.' or '..' part"),
    ],
)
def test_host_paths_that_cmd_or_the_host_cannot_use_are_refused(value: str, message: str) -> None:
    with pytest.raises(ValueError, match=message) as caught:
        check_host_path("destination", value)
    assert str(caught.value).startswith("destination is ")


def test_the_default_destination_is_beside_kmsdata_named_by_the_controllers_utc_time() -> None:
    now = datetime(2024, 1, 31, 22, 15, 0, tzinfo=timezone.utc)
    assert default_destination(KMSDATA, now) == DEST


@pytest.mark.parametrize(
    ("destination", "message"),
    [
        ("c:\\exchsrvr\\kmsdata", "is the KM database folder itself"),
        ("C:\\EXCHSRVR\\KMSDATA\\backup", "lies inside the KM database folder"),
        ("C:\\EXCHSRVR", "holds the KM database folder"),
    ],
)
def test_a_destination_that_overlaps_the_database_is_refused(
    destination: str, message: str
) -> None:
    with pytest.raises(BackupRefused, match=message) as caught:
        check_destination(KMSDATA, destination)
    assert caught.value.changed is False
    assert "Nothing was changed" not in str(caught.value)  # the action edge says it, once


@pytest.mark.parametrize(
    ("database_path", "kmserver"),
    [
        # 5.5 / 2000: BIN beside Kmsdata (KB Q235418, Q201271).
        ("C:\\EXCHSRVR\\KMSDATA", "C:\\EXCHSRVR\\BIN\\KMSERVER.EXE"),
        (
            "D:\\Program Files\\Exchsrvr\\KMSData\\",
            "D:\\Program Files\\Exchsrvr\\BIN\\KMSERVER.EXE",
        ),
        # 4.0 / 5.0: SECURITY\BIN (KB Q143380), the Security directory being the KM data (Q155216).
        ("C:\\SECURITY", "C:\\SECURITY\\BIN\\KMSERVER.EXE"),
        # Any other folder: no source says where its Kmserver.exe is; none is guessed.
        ("E:\\RESTORE\\KMS", None),
        ("C:\\EXCHSRVR\\KMSDATA.backup-20240131-221500", None),
    ],
)
def test_kmserver_is_looked_for_only_where_the_sources_put_it(
    database_path: str, kmserver: str | None
) -> None:
    assert kmserver_path(database_path) == kmserver


def test_a_destination_beside_the_database_is_fine() -> None:
    check_destination(KMSDATA, DEST)
    check_destination(KMSDATA, "C:\\EXCHSRVR\\KMSDATA2")


# ---------------------------------------------------------------------------------------------
# Planning


def test_a_stopped_kms_is_copied_without_touching_the_service() -> None:
    made = make_plan(survey(), KMSDATA, DEST, have_password=False)
    assert (made.bytes, made.stop_kms, made.kms_state) == (3162112, False, "stopped")
    assert made.required_bytes == 3162112 + FREE_SPACE_MARGIN_MIN


def test_a_running_kms_with_its_password_is_stopped_for_the_copy() -> None:
    made = make_plan(survey(kms_state="running"), KMSDATA, DEST, have_password=True)
    assert made.stop_kms is True


def test_a_host_without_the_kms_service_is_backed_up_as_is() -> None:
    assert (
        make_plan(survey(kms_state="absent"), KMSDATA, DEST, have_password=False).stop_kms is False
    )


@pytest.mark.parametrize(
    ("total", "margin"),
    [(0, FREE_SPACE_MARGIN_MIN), (3162112, FREE_SPACE_MARGIN_MIN), (10 * 1024**3, 1024**3)],
)
def test_the_free_space_margin_is_a_tenth_of_the_copy_and_at_least_64_mib(
    total: int, margin: int
) -> None:
    assert margin_bytes(total) == margin


def test_free_space_exactly_at_the_requirement_is_enough() -> None:
    needed = 3162112 + FREE_SPACE_MARGIN_MIN
    assert make_plan(survey(free_bytes=needed), KMSDATA, DEST, have_password=False)
    with pytest.raises(BackupRefused, match=f"drive C: has {needed - 1} bytes free"):
        make_plan(survey(free_bytes=needed - 1), KMSDATA, DEST, have_password=False)


@pytest.mark.parametrize(
    ("changes", "have_password", "message"),
    [
        ({"source_is_file": True, "source": None}, True, "is a file, not the KM database folder"),
        ({"source": None}, True, "the KM database folder C:\\\\EXCHSRVR\\\\KMSDATA does not exist"),
        (
            {"source": TreeReading((), ("empty",))},
            True,
            "holds no files \\(1 subfolders\\)",
        ),
        ({"destination_exists": True}, True, "already exists"),
        ({"drive_found": False, "free_bytes": None}, True, "drive C: of destination"),
        (
            {"free_bytes": 10240},
            True,
            "drive C: has 10240 bytes free, but the copy needs 3162112 bytes plus a margin of "
            "67108864 \\(70270976 bytes\\)",
        ),
        ({"kms_state": "stop_pending"}, True, "MSExchangeKMS is STOP_PENDING"),
        ({"kms_state": "start_pending"}, True, "MSExchangeKMS is START_PENDING"),
        ({"kms_state": "paused"}, True, "MSExchangeKMS is PAUSED"),
        (
            {"kms_state": "running"},
            False,
            "MSExchangeKMS is running and startup_password is not set",
        ),
    ],
)
def test_each_reason_not_to_back_up_is_refused_before_anything_changes(
    changes: dict[str, object], have_password: bool, message: str
) -> None:
    with pytest.raises(BackupRefused, match=message) as caught:
        make_plan(survey(**changes), KMSDATA, DEST, have_password=have_password)
    assert caught.value.changed is False
    assert "Nothing was changed" not in str(caught.value)  # the action edge says it, once


def test_every_refusal_rule_has_its_wording_and_the_last_rule_makes_the_plan() -> None:
    ids = [rule.id for rule in PLAN_RULES]
    assert ids[-1] == "ok" and len(set(ids)) == len(ids)
    assert set(PLAN_MESSAGES) == set(ids[:-1])


def test_a_missing_folder_found_through_the_registry_says_where_it_came_from() -> None:
    with pytest.raises(BackupRefused, match="taken from Exchange's Services folder"):
        make_plan(survey(source=None), KMSDATA, DEST, have_password=True, from_registry=True)


# ---------------------------------------------------------------------------------------------
# Verification


def good(**changes: dict[str, str]) -> dict[str, dict[str, str]]:
    return {"source": dict(HASHES), "copy": dict(HASHES), **changes}


def test_an_identical_copy_gives_the_manifest() -> None:
    manifest = verify_copy(plan(), TreeReading(FILES, ()), TreeReading(FILES, ()), HASHES, HASHES)
    assert manifest == tuple(ManifestEntry(f.name, f.size, HASHES[f.name]) for f in FILES)


def test_names_are_compared_as_ntfs_does_case_insensitively() -> None:
    copy = TreeReading(tuple(FileItem(f.name.upper(), f.size) for f in FILES), ())
    assert len(verify_copy(plan(), TreeReading(FILES, ()), copy, HASHES, HASHES)) == 3


@pytest.mark.parametrize(
    ("copy_files", "copy_hashes", "message"),
    [
        pytest.param(FILES[:2], HASHES, "Kmsmdb.edb is missing from the copy", id="missing file"),
        pytest.param(
            (FILES[0], FILES[1], FileItem("Kmsmdb.edb", 2097152)),
            HASHES,
            "Kmsmdb.edb is 2097152 bytes in the copy but 2105344 bytes in the KM database",
            id="size mismatch",
        ),
        pytest.param(
            FILES,
            {**HASHES, "Kmsmdb.edb": "0" * 64},
            "Kmsmdb.edb differs: SHA256 0000000000000000... in the copy, 76282cacd87dcbd4... in "
            "the KM database",
            id="hash mismatch",
        ),
        pytest.param(
            (*FILES, FileItem("stray.tmp", 1)),
            HASHES,
            "the copy holds stray.tmp, which the KM database does not",
            id="extra file",
        ),
        pytest.param(
            FILES,
            {key: value for key, value in HASHES.items() if key != "edb.log"},
            "the SHA256 of edb.log in the copy could not be read \\(no answer\\)",
            id="hash unreadable",
        ),
    ],
)
def test_a_copy_that_differs_is_named_file_by_file(
    copy_files: tuple[FileItem, ...], copy_hashes: dict[str, str], message: str
) -> None:
    with pytest.raises(VerificationFailed, match=message) as caught:
        verify_copy(
            plan(), TreeReading(FILES, ()), TreeReading(copy_files, ()), HASHES, copy_hashes
        )
    assert str(caught.value).startswith(f"the copy in {DEST} does not match the KM database: ")


def test_a_database_that_changed_during_the_copy_fails_verification() -> None:
    changed = (FILES[0], FileItem("edb.log", 2097152), FILES[2])
    with pytest.raises(VerificationFailed, match="edb.log is 2097152 bytes in the KM database now"):
        verify_copy(plan(), TreeReading(changed, ()), TreeReading(FILES, ()), HASHES, HASHES)


def test_a_missing_copy_folder_and_missing_subfolders_fail_verification() -> None:
    with pytest.raises(VerificationFailed, match="the copy folder .* does not exist"):
        verify_copy(plan(), TreeReading(FILES, ()), None, HASHES, HASHES)
    with_folder = plan(folders=("Old",))
    with pytest.raises(VerificationFailed, match="folder Old is missing from the copy"):
        verify_copy(
            with_folder, TreeReading(FILES, ("Old",)), TreeReading(FILES, ()), HASHES, HASHES
        )


def test_why_a_hash_is_missing_is_said() -> None:
    errors = {
        "copy:edb.log": "certutil: the command failed (exit code 1): CertUtil: -hashfile command FAILED"
    }
    copy_hashes = {key: value for key, value in HASHES.items() if key != "edb.log"}
    with pytest.raises(VerificationFailed, match="-hashfile command FAILED"):
        verify_copy(
            plan(),
            TreeReading(FILES, ()),
            TreeReading(FILES, ()),
            HASHES,
            copy_hashes,
            hash_errors=errors,
        )


def test_empty_files_need_no_certutil_and_get_the_known_empty_sha256() -> None:
    files = (*FILES, FileItem("res1.log", 0))
    manifest = verify_copy(
        plan(files=files), TreeReading(files, ()), TreeReading(files, ()), HASHES, HASHES
    )
    assert manifest[-1] == ManifestEntry("res1.log", 0, EMPTY_SHA256)
    assert EMPTY_SHA256 == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


def test_without_certutil_only_the_list_and_sizes_are_compared() -> None:
    manifest = verify_copy(
        plan(), TreeReading(FILES, ()), TreeReading(FILES, ()), {}, {}, hashing=False
    )
    assert [entry.sha256 for entry in manifest] == [None, None, None]
    with pytest.raises(VerificationFailed, match="is missing from the copy"):
        verify_copy(
            plan(), TreeReading(FILES, ()), TreeReading(FILES[:1], ()), {}, {}, hashing=False
        )


def test_many_differences_are_summed_up() -> None:
    many = tuple(FileItem(f"edb{index:05d}.log", 1) for index in range(10))
    with pytest.raises(VerificationFailed, match="; and 4 more$"):
        verify_copy(
            plan(files=many), TreeReading(many, ()), TreeReading((), ()), {}, {}, hashing=False
        )


# ---------------------------------------------------------------------------------------------
# Results


def documented_returns() -> set[str]:
    return set(yaml.safe_load(stub.RETURN))


def test_check_mode_results_are_documented_and_say_what_would_happen() -> None:
    result = plan_result(plan(kms_state="running"))
    assert set(result) - {"changed", "msg"} <= documented_returns()
    assert result["changed"] is True
    assert result["msg"] == (
        f"Would stop MSExchangeKMS, copy 3 files, 3162112 bytes from {KMSDATA} to {DEST}, verify "
        "file list, sizes and SHA256, start MSExchangeKMS again."
    )
    assert result["manifest"] == [{"name": f.name, "size": f.size} for f in FILES]


def test_backup_results_are_documented() -> None:
    manifest = tuple(ManifestEntry(f.name, f.size, HASHES[f.name]) for f in FILES)
    result = outcome_result(BackupOutcome(plan(), manifest, "stopped", "stopped"))
    # controller_copy is added by the action, only with copy_to.
    assert set(result) - {"changed", "msg"} == documented_returns() - {"controller_copy"}
    assert result["verification"] == "sha256"
    assert result["manifest"][2] == {
        "name": "Kmsmdb.edb",
        "size": 2105344,
        "sha256": HASHES["Kmsmdb.edb"],
    }
