# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Code and docs cite only what a clone of the repository holds: KB numbers, URLs, repo files.

Every `*.md` named in a text file under plugins/, roles/, playbooks/, docs/ or tests/ (not
tests/output), or in README.md, must be a file of the repository: a path from the repository
root (`docs/windows-output.md`) or from the naming file's folder (a Markdown link such as
`../../../docs/windows-output.md`, or `registry.md` inside docs/). A bare name of a note kept
outside the repository (`kms.md §2`, `windows-output.md` without `docs/`) fails, and so does a
machine path or "../shared". The files the collection writes at run time (report.md,
remediation.md) are names, not citations. A "§" section mark outside docs/ must stand on a line
that names its existing document.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCOPE = ("plugins", "roles", "playbooks", "docs", "tests", "README.md")
TEXT_SUFFIXES = frozenset(
    {".py", ".yml", ".yaml", ".json", ".md", ".j2", ".txt", ".cfg", ".ini", ".toml", ".ps1", ".sh"}
)
# This file names the forbidden forms as examples.
THIS_FILE = Path(__file__).resolve().relative_to(ROOT).as_posix()
# Report files the roles and playbooks write (kms_report_dir); never cited as sources.
GENERATED_NAMES = frozenset({"report.md", "remediation.md"})
# A *.md name starting at a word boundary of prose, code or Markdown (not inside a URL or a
# pattern like `kb/<n>/README.md`): optional ./ ../ or /, folders, then the file name.
MD_NAME = re.compile(
    r"(?:^|(?<=[\s`'\"(\[{|,;=*]))((?:\.{0,2}/)?(?:[\w.-]+/)*[\w-][\w.-]*\.md)\b(?![\w-])"
)
OUTSIDE_NOTES = re.compile(r"(?:\.\./|/work/)shared\b")
# A finding of the team's audit (U2, W11) by its number: the audit ships nowhere.
AUDIT_FINDING = re.compile(r"\baudit,? [UW][0-9]+\b")


def scanned_files() -> list[Path]:
    files = []
    for top in SCOPE:
        path = ROOT / top
        if path.is_file():
            files.append(path)
            continue
        for candidate in sorted(path.rglob("*")):
            parts = candidate.relative_to(ROOT).parts
            if parts[:2] == ("tests", "output") or any(
                part.startswith(".") or part == "__pycache__" for part in parts
            ):
                continue
            if candidate.is_file() and candidate.suffix in TEXT_SUFFIXES:
                files.append(candidate)
    return files


def resolves(name: str, folder: Path) -> bool:
    """`name` is a file of the repository, from its root or from the naming file's folder."""
    if name.startswith("/"):
        return False  # a machine path
    for base in (ROOT, folder):
        target = (base / name).resolve()
        if target.is_file() and ROOT in target.parents:
            return True
    return False


def line_problems(line: str, folder: Path, in_docs: bool) -> list[str]:
    problems = []
    names_a_document = False
    for match in MD_NAME.finditer(line):
        name = match.group(1)
        if name.rsplit("/", 1)[-1] in GENERATED_NAMES:
            continue
        if resolves(name, folder):
            names_a_document = True
        else:
            problems.append(f"{name} is not a file of the repository")
    if "§" in line and not names_a_document and not in_docs:
        problems.append("a § section mark without its document (docs/...md) on the line")
    if OUTSIDE_NOTES.search(line):
        problems.append("a path to notes outside the repository")
    if AUDIT_FINDING.search(line):
        problems.append("an audit finding by number: cite docs/unsourced.md or the KB instead")
    return problems


def file_problems(path: Path) -> list[str]:
    relative = path.relative_to(ROOT)
    in_docs = relative.parts[0] == "docs"
    found = []
    text = path.read_text(encoding="utf-8")
    for number, line in enumerate(text.splitlines(), start=1):
        for problem in line_problems(line, path.parent, in_docs):
            found.append(f"{relative.as_posix()}:{number}: {problem}: {line.strip()[:90]}")
    return found


FILES = [path for path in scanned_files() if path.relative_to(ROOT).as_posix() != THIS_FILE]


def test_the_scan_sees_the_code_docs_and_fixtures() -> None:
    names = {path.relative_to(ROOT).as_posix() for path in FILES}
    assert {
        "README.md",
        "docs/windows-output.md",
        "plugins/plugin_utils/_facts.py",
        "tests/lab/exchlab/exchange.py",
        "tests/unit/fixtures/README.md",
        "tests/unit/fixtures/reg_query/e1_setup_vista.meta.json",
    } <= names


@pytest.mark.parametrize(
    ("line", "folder", "expected"),
    [
        ("see docs/windows-output.md#reg-vista", ROOT / "plugins", []),
        ("docs/windows-output.md §1.1 layout", ROOT / "tests/unit/fixtures", []),
        (
            "[`docs/windows-output.md`](../../../docs/windows-output.md)",
            ROOT / "tests/unit/fixtures",
            [],
        ),
        ("[registry](registry.md), README.md and SECURITY.md", ROOT / "docs", []),
        ("writes report.md and kms-report/remediation.md", ROOT / "roles", []),
        ("https://github.com/jeffpar/kbarchive/blob/master/README.md", ROOT / "docs", []),
        ("`kb/<first 3 digits>/Q<n>/README.md`", ROOT / "docs", []),
        ("findings.md4_available", ROOT / "plugins", []),
        ("(docs/unsourced.md, U2)", ROOT / "plugins", []),
        (
            "(audit U2: unsourced)",
            ROOT / "plugins",
            ["an audit finding by number: cite docs/unsourced.md or the KB instead"],
        ),
        (
            "(kms.md §2)",
            ROOT / "plugins",
            [
                "kms.md is not a file of the repository",
                "a § section mark without its document (docs/...md) on the line",
            ],
        ),
        (
            "windows-output.md E5",
            ROOT / "tests",
            ["windows-output.md is not a file of the repository"],
        ),
        (
            "domain/registry.md §4",
            ROOT / "plugins",
            [
                "domain/registry.md is not a file of the repository",
                "a § section mark without its document (docs/...md) on the line",
            ],
        ),
        ("(DESIGN.md)", ROOT / "plugins", ["DESIGN.md is not a file of the repository"]),
        (
            "/work/shared/domain/builds.md",
            ROOT / "tests",
            [
                "/work/shared/domain/builds.md is not a file of the repository",
                "a path to notes outside the repository",
            ],
        ),
        ("see ../shared/notes", ROOT / "tests", ["a path to notes outside the repository"]),
        (
            "(neither §1.1 nor §1.2)",
            ROOT / "tests",
            ["a § section mark without its document (docs/...md) on the line"],
        ),
    ],
)
def test_what_counts_as_a_citation(line: str, folder: Path, expected: list[str]) -> None:
    assert line_problems(line, folder, in_docs=folder == ROOT / "docs") == expected


@pytest.mark.parametrize("path", FILES, ids=lambda path: path.relative_to(ROOT).as_posix())
def test_every_cited_markdown_file_is_in_the_repository(path: Path) -> None:
    problems = file_problems(path)
    assert not problems, "cite a KB, a URL or a docs/ page instead:\n" + "\n".join(problems)
