# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""`parse_dir`, `parse_dir_tree` and `split_merged_dir_streams`
(plugins/plugin_utils/_winout/dir.py).

`dir /-c`: the dir fixtures (docs/windows-output.md#dir, #e14). `dir /-c /s /a`: bytes literals in
the layout of #e14 (columns, `/-c`, totals) extended by `dir /s`'s documented shape (one block per
folder, then "Total Files Listed:"), as the lab prints them; file names and sizes are those of E14
(KB Q201271).
"""

from __future__ import annotations

import pytest
from conftest import load

from ansible_collections.exchops.kms.plugins.plugin_utils._winout import (
    CommandFailed,
    DirEntry,
    DirListing,
    ParseError,
    ToolMissing,
    parse_dir,
    parse_dir_tree,
    split_merged_dir_streams,
)

# ---------------------------------------------------------------------------------------------
# dir /-c


E14_ENTRIES = (
    DirEntry(".", None, True, "14/03/2001", "09:12"),
    DirEntry("..", None, True, "14/03/2001", "09:12"),
    DirEntry("edb.chk", 8192, False, "14/03/2001", "09:12"),
    DirEntry("edb.log", 1048576, False, "14/03/2001", "09:12"),
    DirEntry("Kmsmdb.edb", 2105344, False, "14/03/2001", "09:12"),
)


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        (
            "e14_kmsdata",
            DirListing(
                found=True,
                directory="C:\\EXCHSRVR\\KMSDATA",
                entries=E14_ENTRIES,
                file_count=3,
                total_bytes=3162112,
                dir_count=2,
                free_bytes=1234567890,
                volume_label="EXCHANGE",
                serial_number="1A2B-3C4D",
            ),
        ),
        (
            "us_12_hour_no_label",
            DirListing(
                found=True,
                directory="C:\\Exchsrvr\\KMSDATA",
                entries=(
                    DirEntry(".", None, True, "03/14/2001", "09:12 AM"),
                    DirEntry("..", None, True, "03/14/2001", "09:12 AM"),
                    DirEntry("edb.chk", 8192, False, "03/14/2001", "09:12 AM"),
                    DirEntry("Kmsmdb.edb", 2105344, False, "03/14/2001", "01:47 PM"),
                ),
                file_count=2,
                total_bytes=2113536,
                dir_count=2,
                free_bytes=1234567890,
                volume_label="",
                serial_number="1A2B-3C4D",
            ),
        ),
        (
            "iso_date_subdirectory",
            DirListing(
                found=True,
                directory="C:\\EXCHSRVR",
                entries=tuple(
                    DirEntry(name, None, True, "2001-03-14", "09:12")
                    for name in (".", "..", "KMSDATA", "Program Files Backup")
                ),
                file_count=0,
                total_bytes=0,
                dir_count=4,
                free_bytes=1234567890,
                volume_label="EXCHANGE",
                serial_number="1A2B-3C4D",
            ),
        ),
        (
            "file_not_found",
            DirListing(
                found=False,
                directory="C:\\EXCHSRVR\\KMSDATA",
                volume_label="EXCHANGE",
                serial_number="1A2B-3C4D",
            ),
        ),
        ("path_not_found", DirListing(found=False, directory=None)),
    ],
)
def test_dir_listings_are_read_with_sizes_and_totals(case: str, expected: DirListing) -> None:
    assert parse_dir(*load("dir", case)) == expected


def test_dir_entries_are_found_case_insensitively() -> None:
    listing = parse_dir(*load("dir", "e14_kmsdata"))
    assert listing.entry("KMSMDB.EDB") == E14_ENTRIES[4]
    assert listing.entry("missing.edb") is None
    assert [entry.name for entry in listing.files] == ["edb.chk", "edb.log", "Kmsmdb.edb"]


@pytest.mark.parametrize(
    ("stdout", "stderr", "message"),
    [
        ("", "", "no ' Directory of', File"),
        (" Directory of C:\\X\r\n\r\n", "", "no ' Directory of', File"),
        (
            "",
            "The device is not ready.\r\n",
            r"the command failed \(exit code 0\): The device is not ready\.",
        ),
        (
            " Directory of C:\\X\r\n\r\n14/03/2001  09:12              8192 edb.chk\r\n",
            "File Not Found\r\n",
            "a listing and 'File Not Found' together",
        ),
    ],
)
def test_dir_edge_output_is_refused_with_a_reason(stdout: str, stderr: str, message: str) -> None:
    with pytest.raises(ParseError, match=message):
        parse_dir(stdout, stderr, 0)


# ---------------------------------------------------------------------------------------------
# dir /-c /s /a, and dir's messages inside a `2>&1`-merged answer


HEAD = b" Volume in drive C is EXCHANGE\r\n Volume Serial Number is 1A2B-3C4D\r\n\r\n"
KMSDATA_TREE = (
    HEAD + b" Directory of C:\\EXCHSRVR\\KMSDATA\r\n\r\n"
    b"14/03/2001  09:12    <DIR>          .\r\n"
    b"14/03/2001  09:12    <DIR>          ..\r\n"
    b"14/03/2001  09:12              8192 edb.chk\r\n"
    b"14/03/2001  09:12           1048576 edb.log\r\n"
    b"14/03/2001  09:12           2105344 Kmsmdb.edb\r\n"
    b"14/03/2001  09:12    <DIR>          Old Logs\r\n"
    b"               3 File(s)        3162112 bytes\r\n\r\n"
    b" Directory of C:\\EXCHSRVR\\KMSDATA\\Old Logs\r\n\r\n"
    b"14/03/2001  09:12    <DIR>          .\r\n"
    b"14/03/2001  09:12    <DIR>          ..\r\n"
    b"14/03/2001  09:12           1048576 edb00001.log\r\n"
    b"14/03/2001  09:12                 0 res1.tmp\r\n"
    b"               2 File(s)        1048576 bytes\r\n\r\n"
    b"     Total Files Listed:\r\n"
    b"               5 File(s)        4210688 bytes\r\n"
    b"               5 Dir(s)      1234567890 bytes free\r\n"
)
# Exactly what the lab answered for `dir /-c /s /a C:\EXCHSRVR\KMSDATA` on the KB target.
LAB_ONE_FOLDER = (
    b" Volume in drive C is EXCHANGE\r\n Volume Serial Number is 1A2B-3C4D\r\n\r\n"
    b" Directory of C:\\EXCHSRVR\\KMSDATA\r\n\r\n"
    b"14/03/2001  09:12    <DIR>          .\r\n14/03/2001  09:12    <DIR>          ..\r\n"
    b"14/03/2001  09:12              8192 edb.chk\r\n"
    b"14/03/2001  09:12           1048576 edb.log\r\n"
    b"14/03/2001  09:12           2105344 Kmsmdb.edb\r\n"
    b"               3 File(s)        3162112 bytes\r\n\r\n"
    b"     Total Files Listed:\r\n"
    b"               3 File(s)        3162112 bytes\r\n"
    b"               2 Dir(s)      1234567890 bytes free\r\n"
)


def text(data: bytes) -> str:
    return data.decode("cp437")


def test_a_dir_tree_lists_every_folder_with_its_files_and_the_free_bytes() -> None:
    tree = parse_dir_tree(text(KMSDATA_TREE), "", 0)
    assert tree.found is True
    assert tree.root == "C:\\EXCHSRVR\\KMSDATA"
    assert [folder.directory for folder in tree.folders] == [
        "C:\\EXCHSRVR\\KMSDATA",
        "C:\\EXCHSRVR\\KMSDATA\\Old Logs",
    ]
    assert [(path, entry.size) for path, entry in tree.files()] == [
        ("C:\\EXCHSRVR\\KMSDATA\\edb.chk", 8192),
        ("C:\\EXCHSRVR\\KMSDATA\\edb.log", 1048576),
        ("C:\\EXCHSRVR\\KMSDATA\\Kmsmdb.edb", 2105344),
        ("C:\\EXCHSRVR\\KMSDATA\\Old Logs\\edb00001.log", 1048576),
        ("C:\\EXCHSRVR\\KMSDATA\\Old Logs\\res1.tmp", 0),
    ]
    assert (tree.file_count, tree.total_bytes, tree.dir_count) == (5, 4210688, 5)
    assert tree.free_bytes == 1234567890
    assert (tree.volume_label, tree.serial_number) == ("EXCHANGE", "1A2B-3C4D")


def test_the_labs_one_folder_tree_is_read() -> None:
    tree = parse_dir_tree(text(LAB_ONE_FOLDER), "", 0)
    assert [entry.name for _path, entry in tree.files()] == ["edb.chk", "edb.log", "Kmsmdb.edb"]
    assert tree.total_bytes == 3162112


@pytest.mark.parametrize(
    "stderr",
    ["File Not Found\r\n", "The system cannot find the path specified.\r\n"],
)
def test_a_missing_folder_is_an_answer_not_an_error(stderr: str) -> None:
    tree = parse_dir_tree(text(HEAD), stderr, 1)
    assert tree.found is False
    assert tree.folders == ()
    assert tree.root is None


@pytest.mark.parametrize(
    ("stdout", "stderr", "message"),
    [
        pytest.param(
            KMSDATA_TREE.replace(b"5 File(s)        4210688", b"5 File(s)        4210689"),
            "",
            "do not match the folders",
            id="grand total disagrees",
        ),
        pytest.param(
            KMSDATA_TREE.replace(
                b"2 File(s)        1048576 bytes", b"3 File(s)        1048576 bytes"
            ),
            "",
            "does not match its entries",
            id="folder total disagrees",
        ),
        pytest.param(
            KMSDATA_TREE.split(b"     Total Files Listed:", maxsplit=1)[0],
            "",
            "no ' Directory of', 'Total Files Listed:' or Dir\\(s\\) line",
            id="cut before the totals",
        ),
        pytest.param(
            KMSDATA_TREE.split(b"               2 File(s)", maxsplit=1)[0],
            "",
            "was cut short",
            id="cut inside a folder",
        ),
        pytest.param(
            KMSDATA_TREE.replace(
                b"           2105344 Kmsmdb.edb", b"         2,105,344 Kmsmdb.edb"
            ),
            "",
            "digit grouping",
            id="sizes grouped (no /-c)",
        ),
        pytest.param(HEAD + b"garbage\r\n", "", "not a line of a dir /s listing", id="garbage"),
        pytest.param(
            KMSDATA_TREE, "Access is denied.\r\n", "Access is denied.", id="unreadable subfolder"
        ),
        pytest.param(
            LAB_ONE_FOLDER, "File Not Found\r\n", "and 'File Not Found' together", id="both"
        ),
    ],
)
def test_a_dir_tree_that_is_not_whole_and_consistent_is_refused(
    stdout: bytes, stderr: str, message: str
) -> None:
    with pytest.raises(ParseError, match=message):
        parse_dir_tree(text(stdout), stderr, 0 if not stderr else 1)


def test_an_unreadable_subfolder_is_a_command_failure() -> None:
    with pytest.raises(CommandFailed):
        parse_dir_tree(text(KMSDATA_TREE), "Access is denied.\r\n", 1)


def test_cmd_not_knowing_dir_is_a_missing_tool() -> None:
    stderr = "'dir' is not recognized as an internal or external command,\r\noperable program or batch file.\r\n"
    with pytest.raises(ToolMissing):
        parse_dir_tree("", stderr, 9009)


def test_merged_dir_output_gets_its_messages_back_on_stderr() -> None:
    merged = text(HEAD) + " Directory of C:\\EXCHSRVR\r\n\r\nFile Not Found\r\n"
    stdout, stderr = split_merged_dir_streams(merged)
    assert stderr == "File Not Found\r\n"
    assert "File Not Found" not in stdout
    assert parse_dir(stdout, stderr, 1).found is False
    path_missing = text(HEAD) + "The system cannot find the path specified.\r\n"
    assert (
        split_merged_dir_streams(path_missing)[1]
        == "The system cannot find the path specified.\r\n"
    )


def test_merged_dir_output_keeps_listing_lines_on_stdout() -> None:
    stdout, stderr = split_merged_dir_streams(text(LAB_ONE_FOLDER))
    assert (stdout, stderr) == (text(LAB_ONE_FOLDER), "")
