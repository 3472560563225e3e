# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""exchops.kms.exchange_service_pack as the action plugin behaves today: its refusals, what each
WinRS failure becomes, the plan's refusal, check mode and the run that has nothing to do, with
the lab's answers to the job's command lines (fixtures/servicepack, host kms-new of KB Q259906)."""

from __future__ import annotations

import typing as t

import pytest

PASSWORD = "HZGYYHACWLQACTI"  # the example KM Server startup password of KB Q184420
MEDIA = "D:\\EXCH55SP3\\ENG\\SERVER\\SETUP\\I386"
SP3 = {"media": MEDIA, "media_build": "5.5.2650"}
UPDATE = '"D:\\EXCH55SP3\\ENG\\SERVER\\SETUP\\I386\\update.exe"'
OPTIONS = (
    "Its options are arguments, build, kms_database_build, launch, media, media_build, "
    "no_progress_timeout, poll_interval, progress_interval, quiet_period, resume_only, "
    "success_exit_codes, timeout (ansible-doc exchops.kms.exchange_service_pack); fix the task "
    "and run it again. Nothing was changed."
)


@pytest.fixture
def kms_new(fake_winrs: t.Any, recorded: t.Callable[..., t.Any]) -> t.Callable[..., t.Any]:
    """kms_new(kms_binary=...): the KB target before the service pack: Exchange 5.5 SP3 with
    KM Server binaries of 5.5 RTM (or the version given), answering the read and the detail."""

    def script(kms_binary: str = "5.5.1960.8") -> t.Any:
        before = recorded("servicepack/read_before").stdout
        fake_winrs.on_line("sp_media", before.replace("5.5.1960.8", kms_binary))
        fake_winrs.on_line("sp_log_dir", recorded("servicepack/detail_before"))
        return fake_winrs

    return script


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param(
            {**SP3, "succes_exit_codes": [0, 3010]},
            "kms02: exchops.kms.exchange_service_pack: unknown option 'succes_exit_codes' (did "
            f"you mean 'success_exit_codes'?). {OPTIONS}",
            id="typo",
        ),
        pytest.param(
            {**SP3, "startup_password": PASSWORD},
            "kms02: exchops.kms.exchange_service_pack: unknown option 'startup_password'. "
            f"{OPTIONS}",
            id="password as an option",
        ),
        pytest.param(
            {**SP3, "success_exit_codes": ["zero"]},
            "kms02: exchops.kms.exchange_service_pack: success_exit_codes holds 'zero'; each of its "
            f"elements must be an integer. {OPTIONS}",
            id="wrong element type",
        ),
        pytest.param(
            {},
            f"kms02: exchops.kms.exchange_service_pack: missing required arguments: media. {OPTIONS}",
            id="required",
        ),
        pytest.param(
            {**SP3, "timeout": 0},
            "kms02: timeout is 0; it must be more than 0 seconds. Set timeout to more than 0 seconds, "
            "e.g. its default 3600. Nothing was changed.",
            id="timeout 0",
        ),
        pytest.param(
            {**SP3, "poll_interval": -5},
            "kms02: poll_interval is -5; it must be more than 0 seconds. Set poll_interval to more "
            "than 0 seconds, e.g. its default 15. Nothing was changed.",
            id="poll -5",
        ),
        pytest.param(
            {**SP3, "progress_interval": 0},
            "kms02: progress_interval is 0; it must be more than 0 seconds. Set progress_interval to "
            "more than 0 seconds, e.g. its default 60. Nothing was changed.",
            id="progress 0",
        ),
        pytest.param(
            {"media": "  "},
            "kms02: media is empty. Set it to the folder on the host that holds the service "
            "pack's update.exe (e.g. D:\\EXCH55SP3\\ENG\\SERVER\\SETUP\\I386). Nothing was "
            "changed.",
            id="media empty",
        ),
        pytest.param(
            {**SP3, "success_exit_codes": []},
            "kms02: success_exit_codes is empty, so no run could succeed. Leave it at [0] or list "
            "the exit codes that mean success for this kit. Nothing was changed.",
            id="no exit codes",
        ),
        pytest.param(
            {**SP3, "build": "SP3"},
            "kms02: build is 'SP3': not an Exchange build: 'SP3'; expected 3 or 4 dot-separated "
            "non-negative integers such as 5.5.2650.21, or a bare build number such as 2650. Set "
            "it to the build the service pack installs, e.g. 5.5.2650 for Exchange 5.5 SP3. "
            "Nothing was changed.",
            id="build",
        ),
        pytest.param(
            {**SP3, "kms_database_build": "SP3"},
            "kms02: kms_database_build is 'SP3': not an Exchange build: 'SP3'; expected 3 or 4 "
            "dot-separated non-negative integers such as 5.5.2650.21, or a bare build number such "
            "as 2650. Set it to the file version of the Kmserver.exe that last ran the KM "
            "database, e.g. 5.5.2650.12. Nothing was changed.",
            id="kms_database_build",
        ),
        pytest.param(
            {**SP3, "arguments": ['/log "C:\\sp.log"']},
            "kms02: arguments: the argument '/log \"C:\\\\sp.log\"' holds a quote, %, ! or a line "
            "break, which cmd.exe would expand or split; pass switches without them. Nothing was "
            "changed.",
            id="quoted argument",
        ),
    ],
)
def test_bad_options_are_refused_naming_the_host_and_the_option(
    refused: t.Callable[..., str], args: dict[str, t.Any], message: str
) -> None:
    assert refused("exchange_service_pack", args, "kms02: ", secret=PASSWORD) == message


def test_a_host_reached_without_winrm_is_refused_before_anything_is_sent(
    refused: t.Callable[..., str],
) -> None:
    assert refused("exchange_service_pack", SP3, "winrm", connection="ssh") == (
        "kms02: exchops.kms.exchange_service_pack works on the host over WinRM and needs "
        "ansible_connection=winrm (this host uses 'ssh'). Set ansible_connection: winrm and the "
        "ansible_winrm_* settings for it. Nothing was changed."
    )


def test_a_shell_failure_before_the_read_is_unreachable_or_raised(
    run_action: t.Callable[..., t.Any], fake_winrs: t.Any, shell_failure: Exception
) -> None:
    fake_winrs.refuse_shell(shell_failure)
    outcome = run_action("exchange_service_pack", SP3)
    unreachable = shell_failure.unreachable  # type: ignore[attr-defined]
    assert (outcome.raised, outcome.seen) == (
        not unreachable,
        (unreachable, not unreachable, False),
    )
    assert outcome.msg == f"{shell_failure} Nothing was changed."


def test_refused_credentials_say_nothing_was_changed_once(
    run_action: t.Callable[..., t.Any], fake_winrs: t.Any, winrs_error: t.Callable[..., Exception]
) -> None:
    fake_winrs.refuse_shell(winrs_error("credentials", doing="opening a shell"))
    assert run_action("exchange_service_pack", SP3).msg.count("Nothing was changed.") == 1


def test_check_mode_reads_predicts_the_run_and_starts_no_update_exe(
    run_action: t.Callable[..., t.Any], kms_new: t.Callable[..., t.Any]
) -> None:
    host = kms_new()
    outcome = run_action("exchange_service_pack", SP3, check_mode=True, diff=True)
    assert (outcome.raised, outcome.seen) == (False, (False, False, True))
    assert outcome.result == {
        "outcome": "not_run",
        "remedy": "Run without check mode to stop the Exchange services and install 5.5.2650 "
        "(5.5 SP3): Kmserver.exe is 5.5.1960.8 (5.5 RTM); the media installs 5.5.2650 (5.5 SP3).",
        "changed": True,
        "media_build": "5.5.2650.0",
        "media_build_from": "operator statement",
        "build_before": "5.5.2650.0",
        "build_after": "5.5.2650.0",
        "kms_binary_before": "5.5.1960.8",
        "kms_binary_after": "5.5.1960.8",
        "store_version_before": "5.5.2650.23",
        "store_version_after": None,
        "decided_by": [],
        "services_stopped": [],
        "services_started": [],
        "setup_log_tail": [],
        "start_types_changed": {},
        "exit_code": None,
        "update_pid": None,
        "warnings": [
            "kms02: the media's build 5.5.2650 (5.5 SP3) is the operator's statement "
            "(media_build); no source gives a way to read it from the kit, and the outcome is "
            "proven from the versions afterwards."
        ],
        "diff": {
            "before_header": "kms02: before",
            "after_header": "kms02: after (predicted)",
            "before": "Exchange build: 5.5.2650 (5.5 SP3)\nKmserver.exe: 5.5.1960.8 (5.5 RTM)\n",
            "after": "Exchange build: 5.5.2650 (5.5 SP3)\nKmserver.exe: replaced by the copy of "
            "5.5.2650 (5.5 SP3) (its version is not documented)\n",
        },
    }
    assert len(host.lines) == 2 and not any(UPDATE in line for line in host.lines)
    assert [shell.details["target"].command_timeout_sec for shell in host.shells] == [300]


def test_a_host_already_on_the_media_s_service_pack_is_ok_and_unchanged(
    run_action: t.Callable[..., t.Any], kms_new: t.Callable[..., t.Any]
) -> None:
    host = kms_new(kms_binary="5.5.2650.12")
    outcome = run_action("exchange_service_pack", SP3)
    assert (outcome.raised, outcome.seen) == (False, (False, False, False))
    assert (outcome.result["outcome"], outcome.result["remedy"]) == (
        "ok",
        "None: Exchange and Kmserver.exe are already on 5.5.2650 (5.5 SP3), the media's service "
        "pack; update.exe was not run.",
    )
    assert len(host.lines) == 2 and len(outcome.result["warnings"]) == 1


def test_a_refused_plan_is_raised_with_the_readings_and_nothing_changed_once(
    run_action: t.Callable[..., t.Any], kms_new: t.Callable[..., t.Any]
) -> None:
    host = kms_new()
    outcome = run_action("exchange_service_pack", {**SP3, "build": "5.5.2653"})
    assert (outcome.raised, outcome.seen) == (True, (False, True, False))
    assert outcome.msg == (
        f"kms02: the media at {MEDIA} installs 5.5.2650 (5.5 SP3) but build asks for "
        "5.5.2653 (5.5 SP4). Installing another service pack than the one asked for leaves the "
        "KM Server move unfixed (KB Q259906: both servers on the same service pack). Point "
        "media at the 5.5 SP4 kit, or set build to 5.5.2650 if that is the service pack you "
        "want. Nothing was changed."
    )
    assert (outcome.result["outcome"], outcome.result["kms_binary_before"]) == (
        "refused",
        "5.5.1960.8",
    )
    assert len(host.lines) == 2  # the host and the setup log read; nothing run


def test_an_answer_in_an_unexpected_form_is_raised_as_nothing_changed(
    run_action: t.Callable[..., t.Any], fake_winrs: t.Any, recorded: t.Callable[..., t.Any]
) -> None:
    before = recorded("servicepack/read_before").stdout
    fake_winrs.on_line("sp_media", before.split("==exchops:begin:sp_tasks==")[0])
    outcome = run_action("exchange_service_pack", SP3)
    assert (outcome.raised, outcome.seen) == (True, (False, True, False))
    assert outcome.msg == (
        "kms02: could not read the host: the answer has no section 'sp_tasks'. The host answered "
        "in an unexpected form; run with -vvvv to see the command and report it. Nothing was "
        "changed."
    )
