# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The decisions of a service pack run (plugins/plugin_utils/_servicepack_plan.py): the refusal
grid (builds compared as integers), the outcome classification, the verification after a run,
and the start types Setup changed."""

from __future__ import annotations

import typing as t

import pytest

from ansible_collections.exchops.kms.plugins.plugin_utils._builds import Build
from ansible_collections.exchops.kms.plugins.plugin_utils._servicepack_plan import (
    HostReadings,
    LogDetails,
    Refusal,
    classify,
    decide_install,
    log_tail,
    start_type_changes,
    verify,
    watched_services,
)
from ansible_collections.exchops.kms.plugins.plugin_utils._winout import (
    SETUP_LOG_INITIALIZED,
    parse_setup_log,
)

MEDIA = r"D:\EXCH55SP3\ENG\SERVER\SETUP\I386"


# ---------------------------------------------------------------------------------------------
# The plan: refusals and idempotence


def _host(
    server: str | None = "5.5.2650",
    kms: str | None = "5.5.1960.8",
    media: str | None = "5.5.2650.0",
    **changes: t.Any,
) -> HostReadings:
    values: dict[str, t.Any] = {
        "facts": {},
        "warnings": (),
        "server_build": Build.parse(server) if server else None,
        "install_path": r"C:\EXCHSRVR",
        "kms_installed": kms is not None,
        "kms_parts": (("service", kms is not None), ("Kmserver.exe", kms is not None)),
        "kms_binary": Build.parse(kms) if kms else None,
        "kms_state": "stopped" if kms else "absent",
        "image_path_has_arguments": False,
        "kms_image_path": r"C:\Exchsrvr\Bin\Kmserver.exe",
        "media_version": Build.parse(media) if media else None,
        "update_pids": (),
        "start_types": {},
    }
    values.update(changes)
    return HostReadings(**values)


@pytest.mark.parametrize(
    ("host", "wanted", "install"),
    [
        pytest.param(_host(), "5.5.2650", True, id="the KB case: SP3 server, RTM Kmserver.exe"),
        pytest.param(_host(), None, True, id="no build asked: the media's SP"),
        pytest.param(_host(kms="5.5.2650.12"), "5.5.2650", False, id="both on SP3 already"),
        pytest.param(
            _host(kms="5.5.2650.12", media="5.5.2650.9"),
            None,
            False,
            id="revision 9 vs 12: same SP, not a downgrade",
        ),
        pytest.param(_host(server="5.5.2448", kms="5.5.2448.0"), "5.5.2650", True, id="SP2 to SP3"),
        pytest.param(
            _host(server="5.5.2448", kms="5.5.2606.0"),
            None,
            True,
            id="SP2 + KMS hotfix 2606 is older than SP3",
        ),
        pytest.param(
            _host(server="5.5.2448", kms=None), None, True, id="no KM Server: the server alone"
        ),
        pytest.param(
            _host(server="5.5.2650", kms=None), None, False, id="no KM Server, server on SP3"
        ),
        pytest.param(
            _host(kms="5.5.2650.12", image_path_has_arguments=True),
            None,
            False,
            id="nothing to do: ImagePath not in the way",
        ),
    ],
)
def test_the_plan_installs_only_what_is_older_than_the_media(
    host: HostReadings, wanted: str | None, install: bool
) -> None:
    decision = decide_install(host, MEDIA, Build.parse(wanted) if wanted else None)
    assert decision.install is install
    assert decision.media_build == host.media_version


@pytest.mark.parametrize(
    ("host", "wanted", "match"),
    [
        pytest.param(
            _host(),
            "5.5.2653",
            "holds update.exe 5.5.2650 \\(5.5 SP3\\) but build asks for 5.5.2653 \\(5.5 SP4\\)",
            id="wrong build",
        ),
        pytest.param(_host(), "6.0.6249", "build asks for 6.0.6249", id="another product asked"),
        pytest.param(
            _host(media="5.5.2448.0"),
            None,
            "installs 5.5.2448 \\(5.5 SP2\\) but Exchange is already 5.5.2650 \\(5.5 SP3\\)",
            id="media older than the server",
        ),
        pytest.param(
            _host(media="5.5.2448.0"),
            "5.5.2448",
            "downgrade the server",
            id="a downgrade even when asked for",
        ),
        pytest.param(
            _host(server="5.5.2448", kms="5.5.2606.0", media="5.5.2448.0"),
            None,
            "Kmserver.exe is already 5.5.2606 \\(5.5 SP2 \\+ hotfix\\).*media that installs 5.5.2606 or later",
            id="media older than Kmserver.exe",
        ),
        pytest.param(
            _host(server="5.5.2650", kms="5.5.2653.1", media="5.5.2650.0"),
            None,
            "downgrade the KM Server binaries",
            id="Kmserver.exe newer than SP3 media",
        ),
        pytest.param(
            _host(media="6.0.6249.0"),
            None,
            "another Exchange version",
            id="Exchange 2000 media on 5.5",
        ),
        pytest.param(_host(media=None), None, "no update.exe with a version", id="no update.exe"),
        pytest.param(_host(server=None), None, "no Exchange 4.0 - 2003 install", id="no Exchange"),
        pytest.param(
            _host(server="15.1.2507.6", kms=None),
            None,
            "later versions are updated with their own Setup",
            id="Exchange 2016",
        ),
        pytest.param(
            _host(
                image_path_has_arguments=True,
                kms_image_path=r"C:\Exchsrvr\Bin\Kmserver.exe ********",
            ),
            None,
            "Q235418",
            id="password in ImagePath",
        ),
        pytest.param(
            _host(kms_parts=(("service", True), ("KMServer key", False))),
            None,
            "only partly installed .*missing: KMServer key.*Q290226",
            id="half-installed KMS",
        ),
        pytest.param(
            _host(kms_state="running"), None, "MSExchangeKMS is running", id="KMS running"
        ),
        pytest.param(
            _host(kms_state="start_pending"),
            None,
            "MSExchangeKMS is start pending",
            id="KMS starting",
        ),
        pytest.param(
            _host(update_pids=(2468,)),
            None,
            "update.exe is already running \\(PID 2468\\)",
            id="update.exe running",
        ),
        pytest.param(
            _host(kms=None, kms_installed=True),
            None,
            "Kmserver.exe's file version cannot be read",
            id="Kmserver.exe unreadable",
        ),
    ],
)
def test_the_plan_refuses_with_nothing_changed(
    host: HostReadings, wanted: str | None, match: str
) -> None:
    with pytest.raises(Refusal, match=match) as refused:
        decide_install(host, MEDIA, Build.parse(wanted) if wanted else None)
    assert refused.value.changed is False
    assert "Nothing was changed" not in str(refused.value)  # the action edge says it, once
    assert "HZGY" not in str(refused.value)


@pytest.mark.parametrize("state", ["running", "start_pending"])
def test_a_plan_for_check_mode_lets_a_running_kms_through_but_keeps_every_other_refusal(
    state: str,
) -> None:
    # The remediation's check-mode plan predicts the run that follows its backup, which stops
    # KMS; everything else that blocks the run still blocks the plan.
    decided = decide_install(_host(kms_state=state), MEDIA, None, kms_may_run=True)
    assert decided.install and decided.media_build == Build.parse("5.5.2650.0")
    with pytest.raises(Refusal, match="already running \\(PID 2468\\)"):
        decide_install(_host(kms_state=state, update_pids=(2468,)), MEDIA, None, kms_may_run=True)


# ---------------------------------------------------------------------------------------------
# Outcome classification

OK_RUN = (
    f"{SETUP_LOG_INITIALIZED}\r\n"
    "[10:42:01] Installed C:\\EXCHSRVR\\BIN\\KMSERVER.EXE (version 5.5.2650.12)\r\n"
    "[10:42:04] Setup completed successfully.\r\n"
)
FAILED_RUN = (
    f"{SETUP_LOG_INITIALIZED}\r\n[10:42:01] Setup failed. An error occurred while copying C:\\EXCHSRVR\\BIN\\KMSERVER.EXE: "
    "The process cannot access the file because it is being used by another process. ID no: 0xc0070020\r\n"
)
HALF_REMOVED_RUN = f"{SETUP_LOG_INITIALIZED}\r\n"
OPEN_RUN = f"{SETUP_LOG_INITIALIZED}\r\n[10:42:01] Stopping service MSExchangeIS\r\n"
REBOOT_RUN = OK_RUN + "[10:42:05] You must restart your computer to complete the installation.\r\n"


@pytest.mark.parametrize(
    ("exit_code", "success", "log", "still_running", "expected"),
    [
        pytest.param(0, (0,), OK_RUN, False, "ok", id="exit 0, completed"),
        pytest.param(0, (0,), REBOOT_RUN, False, "ok_reboot_required", id="log asks for a restart"),
        pytest.param(3010, (0, 3010), OK_RUN, False, "ok_reboot_required", id="listed 3010"),
        pytest.param(3010, (0,), OK_RUN, False, "unknown", id="3010 not listed, log completed"),
        pytest.param(0xC0070020, (0,), FAILED_RUN, False, "failed", id="error ID and exit code"),
        pytest.param(0, (0,), FAILED_RUN, False, "failed", id="log failure outweighs exit 0"),
        pytest.param(
            0xC0020002, (0,), HALF_REMOVED_RUN, False, "failed", id="Q290226: only the first line"
        ),
        pytest.param(1, (0,), "", False, "failed", id="exit 1, nothing logged"),
        pytest.param(0, (0,), "", False, "unknown", id="exit 0, nothing logged"),
        pytest.param(0, (0,), OPEN_RUN, False, "unknown", id="exit 0, no end line"),
        pytest.param(None, (0,), OK_RUN, False, "ok", id="connection lost, log completed"),
        pytest.param(None, (0,), FAILED_RUN, False, "failed", id="connection lost, log failed"),
        pytest.param(None, (0,), "", False, "unknown", id="connection lost, nothing logged"),
        pytest.param(None, (0,), OPEN_RUN, True, "still_running", id="timeout"),
    ],
)
def test_outcomes_come_from_the_log_and_the_exit_code_together(
    exit_code: int | None, success: tuple[int, ...], log: str, still_running: bool, expected: str
) -> None:
    outcome = classify(exit_code, success, parse_setup_log(log), still_running)
    assert outcome.outcome == expected
    assert outcome.remedy.endswith(".") and len(outcome.remedy) > 40
    assert outcome.detail


def test_the_exit_code_is_shown_in_hex_when_it_is_an_error_id() -> None:
    outcome = classify(0xC0070020, (0,), parse_setup_log(FAILED_RUN), False)
    assert "0xC0070020" in outcome.detail and "0xc0070020" in outcome.detail


def test_the_tail_is_the_last_lines_of_the_appended_runs() -> None:
    runs = parse_setup_log(OK_RUN + FAILED_RUN)
    assert log_tail(runs, 2) == [SETUP_LOG_INITIALIZED, parse_setup_log(FAILED_RUN)[0].lines[-1]]


# ---------------------------------------------------------------------------------------------
# Verification and start types


@pytest.mark.parametrize(
    ("server", "kms", "expected"),
    [
        ("5.5.2650", "5.5.2650.12", []),
        ("5.5.2650", "5.5.1960.8", ["Kmserver.exe's file version is 5.5.1960.8 (5.5 RTM)"]),
        (
            "5.5.2448",
            "5.5.2650.12",
            ["the registry (Setup key, NewestBuild) says 5.5.2448 (5.5 SP2)"],
        ),
        ("5.5.2650", None, ["Kmserver.exe's file version cannot be read"]),
    ],
)
def test_verification_names_each_reading_not_on_the_media_sp(
    server: str, kms: str | None, expected: list[str]
) -> None:
    after = _host(server=server, kms=kms)
    assert verify(Build(5, 5, 2650), after, kms_expected=True) == expected


def test_start_types_of_exchange_services_and_their_dependencies_are_watched() -> None:
    readings = _host(
        start_types={
            "MSExchangeSA": "auto",
            "MSExchangeIS": "auto",
            "RPCSS": "auto",
            "Spooler": "auto",
        }
    )
    details = LogDetails(
        "C:\\x.log",
        0,
        None,
        {"MSExchangeSA": ("RPCSS", "+NetworkProvider"), "MSExchangeIS": ("MSExchangeSA",)},
    )
    assert watched_services(readings, details) == ("MSExchangeIS", "MSExchangeSA", "RPCSS")


def test_only_changed_start_types_are_reported() -> None:
    before = {"MSExchangeIS": "auto", "MSExchangeKMS": "manual", "RPCSS": "auto", "Spooler": "auto"}
    after = {
        "MSExchangeIS": "manual",
        "MSExchangeKMS": "manual",
        "RPCSS": "auto",
        "Spooler": "disabled",
    }
    assert start_type_changes(before, after, ("MSExchangeIS", "MSExchangeKMS", "RPCSS")) == {
        "MSExchangeIS": ("auto", "manual")
    }
