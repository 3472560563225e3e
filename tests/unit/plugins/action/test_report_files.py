# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""exchops.kms.report_files as the action plugin behaves today: it writes the reports on the
controller, never opens a WinRS shell, needs no winrm connection, and refuses bad names and
folders it cannot write."""

from __future__ import annotations

import stat
import typing as t
from pathlib import Path

import pytest

PASSWORD = "HZGYYHACWLQACTI"  # the example KM Server startup password of KB Q184420
REPORT = {"report.json": '{"status": "match"}\n', "report.md": "# Gate\n"}
OPTIONS = (
    "Its options are files, path (ansible-doc exchops.kms.report_files); fix the task and run it "
    "again. Nothing was written."
)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param(
            {"fiels": REPORT},
            "kms02: exchops.kms.report_files: unknown option 'fiels' (did you mean 'files'?). "
            f"{OPTIONS}",
            id="typo",
        ),
        pytest.param(
            {"files": REPORT, "password": PASSWORD},
            f"kms02: exchops.kms.report_files: unknown option 'password'. {OPTIONS}",
            id="password as an option",
        ),
        pytest.param(
            {"files": {"..\\report.json": "{}", "../report.json": "{}"}},
            "kms02: exchops.kms.report_files: '../report.json' is not a file name; give names "
            "such as report.json, without a folder. Nothing was written.",
            id="folder in a name",
        ),
        pytest.param(
            {"files": {"..": "{}"}},
            "kms02: exchops.kms.report_files: '..' is not a file name; give names such as "
            "report.json, without a folder. Nothing was written.",
            id="dot dot",
        ),
    ],
)
def test_bad_options_are_refused_naming_the_host_and_the_option(
    refused: t.Callable[..., str], tmp_path: Path, args: dict[str, t.Any], message: str
) -> None:
    folder = tmp_path / "reports"
    assert refused("report_files", {"path": str(folder), **args}, "kms02: ", PASSWORD) == message
    assert not folder.exists()


def test_a_missing_path_is_refused(refused: t.Callable[..., str]) -> None:
    assert refused("report_files", {"files": REPORT}, "path") == (
        f"kms02: exchops.kms.report_files: missing required arguments: path. {OPTIONS}"
    )


@pytest.mark.parametrize("check_mode", [False, True])
@pytest.mark.parametrize("connection", ["winrm", "local", "ssh"])
def test_the_files_are_written_on_the_controller_whole_and_unchanged(
    run_action: t.Callable[..., t.Any],
    fake_winrs: t.Any,
    winrs_error: t.Callable[..., Exception],
    tmp_path: Path,
    check_mode: bool,
    connection: str,
) -> None:
    fake_winrs.refuse_shell(winrs_error("connection_refused"))
    folder = tmp_path / "out" / "reports"
    files = {**REPORT, "count.txt": 3}
    outcome = run_action(
        "report_files",
        {"path": str(folder), "files": files},
        check_mode=check_mode,
        connection=connection,
    )
    # Output of the run, written in check mode too: not a change.
    assert outcome.result == {
        "changed": False,
        "path": str(folder),
        "written": [str(folder / name) for name in files],
    }
    assert {path.name: path.read_text() for path in folder.iterdir()} == {
        **REPORT,
        "count.txt": "3",
    }
    assert {stat.S_IMODE(path.stat().st_mode) for path in folder.iterdir()} == {0o644}
    assert fake_winrs.shells == []


def test_a_folder_that_is_a_file_fails_naming_kms_report_dir(
    run_action: t.Callable[..., t.Any], tmp_path: Path
) -> None:
    taken = tmp_path / "reports"
    taken.write_text("not a folder")
    outcome = run_action("report_files", {"path": str(taken), "files": REPORT})
    assert (outcome.raised, outcome.seen) == (True, (False, True, False))
    assert outcome.msg == (
        f"kms02: the report folder {taken} cannot be written on the controller (it is a file, "
        "not a folder). The report of this run goes there. Set kms_report_dir to a folder you "
        "can write. Nothing was written."
    )
