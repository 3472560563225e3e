# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""README's CI samples run as written: every file a step names is in the repository, is made by
an earlier step of the same sample, or is the inventory the operator adds."""

from __future__ import annotations

import fnmatch
import re
import shlex
import subprocess
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
README = REPO / "README.md"
# What README says the operator adds to the checkout: their inventory, nothing else.
OPERATOR_FILES = {"inventory.yml"}
# Options whose value is a file the command reads.
FILE_OPTIONS = {"-r", "--requirement", "-c", "--constraint", "-i", "--inventory"}
# Options and variables whose value is a folder the command writes.
MADE_BY_OPTION = {"--output-path", "-p"}
MADE_BY_VARIABLE = re.compile(r"^\w*_dir=(.+)$")
FILE_SUFFIXES = (".txt", ".yml", ".yaml", ".tar.gz", ".md", ".xml", ".json", ".cfg")


def ci_samples() -> list[tuple[str, dict]]:
    """(name, parsed YAML) of every ```yaml block in README that is a CI job."""
    samples = []
    for block in re.findall(r"```yaml\n(.*?)```", README.read_text(encoding="utf-8"), re.S):
        document = yaml.safe_load(block)
        for name, job in (document or {}).items():
            if isinstance(job, dict) and ("steps" in job or "script" in job):
                samples.append((name, job))
    return samples


def steps_of(job: dict) -> list[tuple[str | None, dict]]:
    """(command line or None, the step's `with:`) in order, for GitHub Actions or GitLab CI."""
    if "steps" in job:
        return [(step.get("run"), step.get("with") or {}) for step in job["steps"]]
    return [(line, {}) for line in job["script"]] + [(None, job.get("artifacts") or {})]


def tracked(pattern: str) -> bool:
    files = subprocess.run(
        ["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.splitlines()
    return any(fnmatch.fnmatch(name, pattern) for name in files)


def check_sample(job: dict) -> list[str]:
    """The files the sample names that nothing gives it, in order."""
    made: list[str] = []
    missing = []

    def given(path: str) -> bool:
        path = path.rstrip("/")
        return (
            path in OPERATOR_FILES
            or any(path == folder or path.startswith(folder + "/") for folder in made)
            or tracked(path)
        )

    for command, settings in steps_of(job):
        named: list[str] = []
        if command:
            words = shlex.split(command.split(" >>")[0], comments=True)
            for option, value in zip(words, words[1:]):
                if option in FILE_OPTIONS:
                    named.append(value)
                if option in MADE_BY_OPTION:
                    made.append(value.rstrip("/"))
                match = MADE_BY_VARIABLE.match(value) if option in ("-e", "--extra-vars") else None
                if match:
                    made.append(match.group(1).rstrip("/"))
            named += [
                word
                for word in words
                if word.endswith(FILE_SUFFIXES) and not word.startswith("-") and "=" not in word
            ]
        for value in settings.values():
            for item in value if isinstance(value, list) else [value]:
                if isinstance(item, str) and ("/" in item or item.endswith(FILE_SUFFIXES)):
                    named.append(item)
                if isinstance(item, dict):
                    named += [v for v in item.values() if isinstance(v, str) and "/" in v]
        missing += [path for path in dict.fromkeys(named) if not given(path)]
    return missing


def test_readme_has_the_github_actions_and_gitlab_samples() -> None:
    kinds = {"steps" if "steps" in job else "script" for _name, job in ci_samples()}
    assert kinds == {"steps", "script"}


@pytest.mark.parametrize(("name", "job"), ci_samples(), ids=lambda value: str(value)[:20])
def test_every_file_a_ci_sample_names_exists_or_is_made_by_an_earlier_step(
    name: str, job: dict
) -> None:
    assert check_sample(job) == [], name


@pytest.mark.parametrize(("name", "job"), ci_samples(), ids=lambda value: str(value)[:20])
def test_a_ci_sample_installs_ansible_core_before_it_runs_ansible(name: str, job: dict) -> None:
    commands = [command for command, _with in steps_of(job) if command]
    installs = next(i for i, command in enumerate(commands) if command.startswith("pip install"))
    assert "ansible-core" in commands[installs], name
    first_ansible = next(i for i, command in enumerate(commands) if command.startswith("ansible"))
    assert installs < first_ansible


@pytest.mark.parametrize(
    ("job", "missing"),
    [
        (  # the sample as it was: a requirements file and a tarball nothing provides
            {
                "steps": [
                    {"run": "pip install -r requirements-ansible.txt   # ansible-core"},
                    {"run": "ansible-galaxy collection install exchops-kms-*.tar.gz"},
                ]
            },
            ["requirements-ansible.txt", "exchops-kms-*.tar.gz"],
        ),
        (  # a tarball installed before the step that builds it
            {
                "script": [
                    "ansible-galaxy collection install dist/exchops-kms-*.tar.gz",
                    "ansible-galaxy collection build --output-path dist",
                ]
            },
            ["dist/exchops-kms-*.tar.gz"],
        ),
        (  # a report read that no step writes
            {"steps": [{"uses": "x", "with": {"report_paths": "kms-report/junit.xml"}}]},
            ["kms-report/junit.xml"],
        ),
    ],
)
def test_the_check_finds_files_that_nothing_provides(job: dict, missing: list[str]) -> None:
    assert check_sample(job) == missing
