# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Bad input, as operators type it: every case fails, names the host, says what was wrong and
what to do, and leaves every server of the lab as it was (request counters aside)."""

from __future__ import annotations

import copy
import json
import os
import re
import typing as t
from pathlib import Path

import pytest
import yaml
from conftest import FLEETS, RunningLab, lab_unchanged, run_tool

# ansible / ansible-playbook exit code for a failed host; also the gate's "not a match".
HOST_FAILED = 2
MEDIA_SP3 = "D:\\EXCH55SP3\\ENG\\SERVER\\SETUP\\I386"
# The kits the operator might mistake for the SP3 one; the lab extracts them on kms-new.
MEDIA_SP2 = "D:\\EXCH55SP2\\ENG\\SERVER\\SETUP\\I386"
MEDIA_SP4 = "D:\\EXCH55SP4\\ENG\\SERVER\\SETUP\\I386"
# A folder without write permission stops any user but root; root is stopped by /sys.
READ_ONLY_FOLDER = "/sys" if os.geteuid() == 0 else "<tmp>/read-only"

Inventory = dict[str, t.Any]


@pytest.fixture(scope="module")
def lab(lab_factory, tmp_path_factory: pytest.TempPathFactory) -> RunningLab:
    """The KB Q259906 pair, with SP2 and SP4 kits extracted on kms-new beside its SP3 kit."""
    fleet = yaml.safe_load((FLEETS / "q259906.yml").read_text(encoding="utf-8"))
    fleet["pairs"][0]["target"]["media"].update(
        {"D:\\EXCH55SP2": "5.5.2448", "D:\\EXCH55SP4": "5.5.2653"}
    )
    path = tmp_path_factory.mktemp("fleet") / "q259906-with-more-kits.yml"
    path.write_text(yaml.safe_dump(fleet), encoding="utf-8")
    # An absolute fleet path: FLEETS / path is path itself.
    return lab_factory(str(path))


# ---------------------------------------------------------------------------------------------
# Inventory changes (applied to a copy of the lab's inventory)


def _target(inventory: Inventory) -> dict[str, t.Any]:
    return inventory["all"]["children"]["kms_targets"]["hosts"]["kms-new"]


def set_source(name: str) -> t.Callable[[Inventory], None]:
    def change(inventory: Inventory) -> None:
        _target(inventory)["kms_source_host"] = name

    return change


def set_password(value: str) -> t.Callable[[Inventory], None]:
    """An inventory password (ansible-playbook -vvvv prints -e values, so never pass one there)."""

    def change(inventory: Inventory) -> None:
        inventory["all"]["vars"]["kms_startup_password"] = value

    return change


def without_source(inventory: Inventory) -> None:
    del _target(inventory)["kms_source_host"]


def rename_target(alias: str) -> t.Callable[[Inventory], None]:
    def change(inventory: Inventory) -> None:
        hosts = inventory["all"]["children"]["kms_targets"]["hosts"]
        hosts[alias] = hosts.pop("kms-new")

    return change


def second_target_for_the_same_source(inventory: Inventory) -> None:
    """kms-new-b: another new KM Server (no server behind it) that also names kms-old."""
    twin = {**_target(inventory), "ansible_host": "127.0.0.254"}
    inventory["all"]["children"]["kms_targets"]["hosts"]["kms-new-b"] = twin


def same_target_in_two_groups(inventory: Inventory) -> None:
    """kms-new under site_a, and again under site_b by another name for the same address."""
    target = inventory["all"]["children"]["kms_targets"].pop("hosts")["kms-new"]
    inventory["all"]["children"]["kms_targets"]["children"] = {
        "site_a": {"hosts": {"kms-new": target}},
        "site_b": {"hosts": {"kms-new.lab.example": copy.deepcopy(target)}},
    }


# ---------------------------------------------------------------------------------------------
# The cases


class Case(t.NamedTuple):
    """One bad input and the message README promises for it: HOST, PROBLEM and FIX must all be
    in one message of the output (a line, or a result's msg), so a case cannot pass with any of
    them missing."""

    command: list[str]  # after the tool: "<tmp>" is this test's folder
    host: str  # the host the message names
    problem: str  # what was wrong, with the values seen
    fix: str  # what to do
    inventory: t.Callable[[Inventory], None] | None = None
    exit_code: int = HOST_FAILED
    # Also in the output: "Nothing was changed." where the command could have changed a server
    # (the gate only reads, so it does not say it).
    also: tuple[str, ...] = ()


def module(name: str, arguments: str, host: str = "kms-new") -> list[str]:
    return ["ansible", host, "-m", f"exchops.kms.{name}", "-a", arguments]


def gate(*extra: str) -> list[str]:
    return [
        "ansible-playbook",
        "exchops.kms.check_kms_move",
        "-e",
        "kms_report_dir=<tmp>/report",
        *extra,
    ]


def remediate(*extra: str) -> list[str]:
    return [
        "ansible-playbook",
        "exchops.kms.remediate_kms_move",
        "-e",
        "kms_report_dir=<tmp>/report",
        *extra,
    ]


NOTHING = ("Nothing was changed.",)
KMS_PASSWORD = "startup_password={{ kms_startup_password }}"


def fix_the_task(name: str) -> str:
    """The fix every option error of a module gives."""
    return f"(ansible-doc exchops.kms.{name}); fix the task and run it again."


SET_MEDIA = (
    "Set media to the folder of the extracted service pack kit that holds update.exe (5.5: "
    "<kit>\\ENG\\SERVER\\SETUP\\I386, KB Q191013)."
)
CMD_CANNOT_PASS = (
    "startup_password holds a space, a double quote, a %, a ! or a control character",
    "Check the value of startup_password, or start MSExchangeKMS from the Services console "
    "with it.",
)
FIX_REMEDIATION_SETTINGS = (
    "Correct them (ansible-doc -t role exchops.kms.kms_remediate, and exchops.kms.sp_parity for "
    "sp_parity_*, list each with its type) and run again."
)

CASES = {
    # Unknown, mistyped and wrongly typed module options.
    "unknown-option-medai": Case(
        module("exchange_service_pack", f"medai={MEDIA_SP3}"),
        "kms-new",
        "kms-new: exchops.kms.exchange_service_pack: unknown option 'medai' (did you mean "
        "'media'?); missing required arguments: media.",
        fix_the_task("exchange_service_pack"),
        also=NOTHING,
    ),
    "mistyped-option-of-facts": Case(
        module("exchange_facts", "kms_event_cout=5"),
        "kms-new",
        "unknown option 'kms_event_cout' (did you mean 'kms_event_count'?)",
        "Its options are kms_event_count, timeout " + fix_the_task("exchange_facts"),
        also=NOTHING,
    ),
    "option-of-another-module": Case(
        module("kms_backup", "media=D:\\EXCH55SP3"),
        "kms-new",
        "exchops.kms.kms_backup: unknown option 'media'.",
        "Its options are copy_to, database_path, destination, startup_password, timeout, "
        "verify_against " + fix_the_task("kms_backup"),
        also=NOTHING,
    ),
    "timeout-not-a-number": Case(
        module("exchange_facts", "timeout=abc"),
        "kms-new",
        "exchops.kms.exchange_facts: timeout is 'abc'; it must be an integer.",
        fix_the_task("exchange_facts"),
        also=NOTHING,
    ),
    "watch-not-a-number-beside-the-password": Case(
        module("exchange_service", f"name=MSExchangeKMS state=started watch=abc {KMS_PASSWORD}"),
        "kms-new",
        "exchops.kms.exchange_service: watch is 'abc'; it must be an integer.",
        fix_the_task("exchange_service"),
        also=NOTHING,
    ),
    "watch-negative": Case(
        module("exchange_service", f"name=MSExchangeKMS state=started watch=-5 {KMS_PASSWORD}"),
        "kms-new",
        "watch is -5; it must be 0 or more seconds",
        "Set watch to 0 or more seconds, e.g. its default 15.",
        also=NOTHING,
    ),
    "state-not-a-choice": Case(
        module("exchange_service", "name=MSExchangeKMS state=running"),
        "kms-new",
        "exchops.kms.exchange_service: value of state must be one of: started, stopped, "
        "restarted, got: running",
        fix_the_task("exchange_service"),
        also=NOTHING,
    ),
    "poll-interval-zero": Case(
        module("exchange_service_pack", f"media={MEDIA_SP3} poll_interval=0"),
        "kms-new",
        "poll_interval is 0; it must be more than 0 seconds.",
        "Set poll_interval to more than 0 seconds, e.g. its default 15.",
        also=NOTHING,
    ),
    "backup-timeout-zero": Case(
        module("kms_backup", f"timeout=0 {KMS_PASSWORD}"),
        "kms-new",
        "timeout is 0; it must be more than 0 seconds.",
        "Set timeout to more than 0 seconds, e.g. its default 600.",
        also=NOTHING,
    ),
    "display-name-instead-of-service-name": Case(
        module("exchange_service", "name='Microsoft Exchange Key Management Server' state=stopped"),
        "kms-new",
        "name 'Microsoft Exchange Key Management Server' is not a service key name",
        "Use the key name that sc query prints after SERVICE_NAME, e.g. MSExchangeKMS, not the "
        "display name.",
        also=NOTHING,
    ),
    # Builds and service pack media.
    "unparseable-build": Case(
        module("exchange_service_pack", f"media={MEDIA_SP3} build=5.5.x"),
        "kms-new",
        "build is '5.5.x': not an Exchange build",
        "Set it to the build the service pack installs, e.g. 5.5.2650",
        also=NOTHING,
    ),
    "media-empty": Case(
        module("exchange_service_pack", "media=''"),
        "kms-new",
        "media is empty.",
        "Set it to the folder on the host that holds the service pack's update.exe",
        also=NOTHING,
    ),
    "media-missing": Case(
        module("exchange_service_pack", "media=D:\\EXCH55SP9\\I386"),
        "kms-new",
        "no update.exe at D:\\EXCH55SP9\\I386\\update.exe.",
        SET_MEDIA,
        also=NOTHING,
    ),
    "media-not-an-sp-kit": Case(
        module("exchange_service_pack", "media=D:\\EXCH55SP3"),
        "kms-new",
        "no update.exe at D:\\EXCH55SP3\\update.exe.",
        SET_MEDIA,
        also=NOTHING,
    ),
    "media-of-another-sp-than-build": Case(
        module("exchange_service_pack", f"media={MEDIA_SP3} media_build=5.5.2650 build=5.5.2653"),
        "kms-new",
        f"the media at {MEDIA_SP3} installs 5.5.2650 (5.5 SP3) but build asks for 5.5.2653 "
        "(5.5 SP4).",
        "Point media at the 5.5 SP4 kit, or set build to 5.5.2650 if that is the service pack "
        "you want.",
        also=NOTHING,
    ),
    "media-build-unstated": Case(
        module("exchange_service_pack", f"media={MEDIA_SP3} build=5.5.2650"),
        "kms-new",
        "media_build is not set.",
        f"State the build the kit at {MEDIA_SP3} installs, from its name and readme, with "
        "media_build (role variable kms_remediate_sp_build)",
        also=NOTHING,
    ),
    "media-path-with-non-ascii": Case(
        module("exchange_service_pack", "media=D:\\Médias\\EXCH55SP3\\ENG\\SERVER\\SETUP\\I386"),
        "kms-new",
        "no update.exe at D:\\Médias\\EXCH55SP3\\ENG\\SERVER\\SETUP\\I386\\update.exe.",
        SET_MEDIA,
        also=NOTHING,
    ),
    # Startup passwords and conflicting options.
    "startup-password-empty": Case(
        module("exchange_service", "name=MSExchangeKMS state=started startup_password=''"),
        "kms-new",
        "state=started for MSExchangeKMS needs startup_password",
        "Set startup_password (for example to the vaulted variable kms_startup_password) to the "
        "startup password of the KM Server that created this KM database",
        also=NOTHING,
    ),
    "startup-password-cmd-cannot-pass": Case(
        module("exchange_service", f"name=MSExchangeKMS state=started {KMS_PASSWORD}"),
        "kms-new",
        *CMD_CANNOT_PASS,
        inventory=set_password("Bad%Pass"),
        also=NOTHING,
    ),
    "backup-destination-inside-the-database": Case(
        module("kms_backup", f"destination=C:\\EXCHSRVR\\KMSDATA\\copy {KMS_PASSWORD}"),
        "kms-new",
        "destination C:\\EXCHSRVR\\KMSDATA\\copy lies inside the KM database folder",
        "Choose a folder outside it, or leave destination empty.",
        also=NOTHING,
    ),
    # The gate (documented exit code 2: a pair is an error) on broken pairs.
    "gate-target-without-source": Case(
        gate(),
        "kms-new",
        "kms-new has no kms_source_host",
        "Set the host variable kms_source_host of kms-new to its old KM Server.",
        inventory=without_source,
    ),
    "gate-source-not-in-inventory": Case(
        gate(),
        "kms-new",
        "kms_source_host 'kms-gone' is not a host of this inventory.",
        "Add kms-gone to the inventory (group kms_sources) with its WinRM settings, or fix "
        "kms_source_host of kms-new.",
        inventory=set_source("kms-gone"),
    ),
    "gate-target-is-its-own-source": Case(
        gate(),
        "kms-new",
        "kms-new is its own kms_source_host.",
        "Set kms_source_host of kms-new to the old KM Server it replaces.",
        inventory=set_source("kms-new"),
    ),
    "gate-non-ascii-source-alias": Case(
        gate(),
        "kms-new",
        "kms_source_host 'kms-ancien-é' is not a host of this inventory.",
        "Add kms-ancien-é to the inventory (group kms_sources) with its WinRM settings",
        inventory=set_source("kms-ancien-é"),
    ),
    "gate-non-ascii-target-alias": Case(
        gate(),
        "kms-nouveau-é",
        "runs Exchange 5.5 SP3 (5.5.2650) but its KM Server binaries (Kmserver.exe) are "
        "Exchange 5.5 RTM (5.5.1960)",
        "Reapply Exchange 5.5 SP3 on kms-nouveau-é (playbook exchops.kms.remediate_kms_move).",
        inventory=rename_target("kms-nouveau-é"),
    ),
    "gate-two-targets-name-one-source": Case(
        gate(),
        "kms-new",
        "kms-new and kms-new-b both name kms-old as their kms_source_host",
        "Keep one new KM Server per kms_source_host in kms_targets: correct kms_source_host of "
        "the others.",
        inventory=second_target_for_the_same_source,
    ),
    "gate-same-target-in-two-groups": Case(
        gate(),
        "kms-new",
        "kms-new and kms-new.lab.example are the same server",
        "List each new KM Server once in kms_targets (remove its other name).",
        inventory=same_target_in_two_groups,
    ),
    "gate-report-dir-is-a-file": Case(
        gate("-e", "kms_report_dir=<tmp>/a-file"),
        "kms-new",
        "the report folder <tmp>/a-file cannot be written on the controller (it is a file, not a "
        "folder)",
        "Set kms_report_dir to a folder you can write.",
    ),
    "gate-report-dir-in-read-only-folder": Case(
        gate("-e", f"kms_report_dir={READ_ONLY_FOLDER}/kms-report"),
        "kms-new",
        f"the report folder {READ_ONLY_FOLDER}/kms-report cannot be written on the controller",
        "Set kms_report_dir to a folder you can write.",
    ),
    "gate-allow-newer-not-a-boolean": Case(
        gate("-e", "sp_parity_allow_newer_target=perhaps"),
        # Refused by the gate's argument spec (ansible-core's words for the problem, with the
        # valid booleans), before any server is read; the role adds the host and the fix.
        "kms-new",
        # "of type str" on 2.19, "of type <class 'str'>" on 2.16 to 2.18.
        "the settings of the role exchops.kms.sp_parity are wrong: argument "
        "'sp_parity_allow_newer_target' is of type",
        "Correct them (ansible-doc -t role exchops.kms.sp_parity lists each with its type) and "
        "run the gate again.",
        also=("The value 'perhaps' is not a valid boolean",),
    ),
    # The remediation: refused before the backup, so nothing changes.
    "remediate-without-source": Case(
        remediate(),
        "kms-new",
        "kms-new has no kms_source_host",
        "Set the host variable kms_source_host of kms-new to its old KM Server.",
        inventory=without_source,
        also=NOTHING,
    ),
    "remediate-media-missing": Case(
        remediate("-e", "kms_remediate_sp_media=D:\\EXCH55SP9\\I386"),
        "kms-new",
        "no update.exe at D:\\EXCH55SP9\\I386\\update.exe.",
        SET_MEDIA,
        also=NOTHING,
    ),
    "remediate-media-not-an-sp-kit": Case(
        remediate("-e", "kms_remediate_sp_media=D:\\EXCH55SP3"),
        "kms-new",
        "no update.exe at D:\\EXCH55SP3\\update.exe.",
        SET_MEDIA,
        also=NOTHING,
    ),
    "remediate-media-of-another-sp": Case(
        remediate(
            "-e", f"kms_remediate_sp_media={MEDIA_SP4}", "-e", "kms_remediate_sp_build=5.5.2653"
        ),
        "kms-new",
        f"the media at {MEDIA_SP4} installs 5.5.2653 (5.5 SP4) but build asks for 5.5.2650 "
        "(5.5 SP3).",
        "Point media at the 5.5 SP3 kit",
        also=NOTHING,
    ),
    "remediate-media-not-the-stated-kit": Case(
        remediate("-e", f"kms_remediate_sp_media={MEDIA_SP4}"),
        "kms-new",
        f"media_build states that the media at {MEDIA_SP4} installs 5.5.2650 (5.5 SP3), but its "
        "update.exe's file version is 5.5.2653 (5.5 SP4).",
        "Check the kit's name and readme, then point media at the 5.5 SP3 kit or correct "
        "media_build (role variable kms_remediate_sp_build).",
        also=NOTHING,
    ),
    "remediate-media-build-unstated": Case(
        remediate("-e", "kms_remediate_sp_build="),
        "kms-new",
        "The remediation cannot start without kms_remediate_sp_build, which is empty.",
        "To fix it, set kms_remediate_sp_build (the build the kit there installs, from its name "
        "and readme, e.g. 5.5.2650; no source gives a way to read it on the host).",
        also=NOTHING,
    ),
    "remediate-media-older-sp": Case(
        remediate(
            "-e", f"kms_remediate_sp_media={MEDIA_SP2}", "-e", "kms_remediate_sp_build=5.5.2448"
        ),
        "kms-new",
        f"the media at {MEDIA_SP2} installs 5.5.2448 (5.5 SP2) but Exchange is already 5.5.2650 "
        "(5.5 SP3): update.exe would downgrade the server",
        "Use the media of 5.5 SP3 or later.",
        also=NOTHING,
    ),
    "remediate-media-empty": Case(
        remediate("-e", "kms_remediate_sp_media="),
        "kms-new",
        "The remediation cannot start without kms_remediate_sp_media, which is empty.",
        "To fix it, set kms_remediate_sp_media (the folder on kms-new holding the 5.5.2650 "
        "service pack's update.exe).",
        also=NOTHING,
    ),
    "remediate-media-undefined-variable": Case(
        remediate("-e", "kms_remediate_sp_media={{ undefined_var }}"),
        "kms-new",
        "the settings of the remediation are wrong: 'undefined_var' is undefined.",
        FIX_REMEDIATION_SETTINGS,
        also=NOTHING,
    ),
    "remediate-watch-not-a-number": Case(
        remediate("-e", "kms_remediate_watch=abc"),
        "kms-new",
        # "of type str" on 2.19, "of type <class 'str'>" on 2.16 to 2.18.
        "the settings of the remediation are wrong: argument 'kms_remediate_watch' is of type",
        FIX_REMEDIATION_SETTINGS,
        also=NOTHING,
    ),
    "remediate-startup-password-empty": Case(
        remediate("-e", "kms_startup_password="),
        "kms-new",
        "The remediation cannot start without kms_startup_password, which is empty.",
        "To fix it, set kms_startup_password (in Vault: the startup password of the KM Server "
        "that created the KM database, after a move the original server's, KB Q154531).",
        also=NOTHING,
    ),
    "remediate-startup-password-cmd-cannot-pass": Case(
        remediate(),
        "kms-new",
        *CMD_CANNOT_PASS,
        inventory=set_password("Bad%Pass"),
        also=NOTHING,
    ),
    "remediate-two-targets-name-one-source": Case(
        remediate(),
        "kms-new",
        "kms-new and kms-new-b both name kms-old as their kms_source_host",
        "Keep one new KM Server per kms_source_host in kms_targets: correct kms_source_host of "
        "the others.",
        inventory=second_target_for_the_same_source,
        also=NOTHING,
    ),
}

_RESULT_MESSAGE = re.compile(r'^\s*"msg": ("(?:[^"\\]|\\.)*")')


def messages(output: str) -> list[str]:
    """Each line of the output, and each result's msg as its text (JSON escapes undone)."""
    lines = output.splitlines()
    found = [match.group(1) for match in map(_RESULT_MESSAGE.match, lines) if match]
    return lines + [json.loads(quoted) for quoted in found]


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_bad_input_fails_naming_host_problem_and_fix_with_nothing_changed(
    lab: RunningLab, ansible_env: dict[str, str], tmp_path: Path, case: Case
) -> None:
    inventory = lab.inventory
    if case.inventory is not None:
        changed = copy.deepcopy(yaml.safe_load(lab.inventory.read_text(encoding="utf-8")))
        case.inventory(changed)
        inventory = tmp_path / "inventory.yml"
        inventory.write_text(yaml.safe_dump(changed, allow_unicode=True), encoding="utf-8")
    (tmp_path / "a-file").write_text("not a folder\n", encoding="utf-8")
    if not READ_ONLY_FOLDER.startswith("/"):
        (tmp_path / "read-only").mkdir(mode=0o555)
    tool, *rest = [piece.replace("<tmp>", str(tmp_path)) for piece in case.command]

    with lab_unchanged(lab) as shown:
        result = run_tool([tool, "-i", str(inventory), *rest], ansible_env, tmp_path)

        output = result.stdout + result.stderr
        assert result.returncode == case.exit_code, output[-3000:]
        host, problem, fix = (
            text.replace("<tmp>", str(tmp_path)) for text in (case.host, case.problem, case.fix)
        )
        said = [message for message in messages(output) if problem in message]
        assert said, f"problem not said: {problem!r}\n{output[-3000:]}"
        # Host, problem and fix in one message: the same one, not three pieces of the output.
        named = [message for message in said if host in message]
        assert named, f"host {host} not named in {said}"
        assert any(fix in message for message in named), f"fix {fix!r} not in {named}"
        for text in case.also:
            assert text in output, output[-3000:]
        assert "Traceback" not in output
    assert shown.after["kms-new"]["kms_database"]["intact"] is True
