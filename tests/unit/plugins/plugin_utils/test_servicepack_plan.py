# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The decisions of a service pack run (plugins/plugin_utils/_servicepack_plan.py): the refusal
grid (builds compared as integers), the outcome classification, each rule's wording word for
word, the verification after a run, and the start types Setup changed."""

from __future__ import annotations

import typing as t

import pytest

from ansible_collections.exchops.kms.plugins.plugin_utils._builds import Build
from ansible_collections.exchops.kms.plugins.plugin_utils._servicepack import media_statement
from ansible_collections.exchops.kms.plugins.plugin_utils._servicepack_plan import (
    INSTALL_MESSAGES,
    INSTALL_RULES,
    OUTCOME_MESSAGES,
    OUTCOME_RULES,
    HostReadings,
    InstallCase,
    LogDetails,
    Refusal,
    RunCase,
    RunRecord,
    classify,
    decide_install,
    install_rule,
    log_tail,
    moved_since,
    start_type_changes,
    supporting_notes,
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
    """A host whose operator stated the media's build as `media` (update.exe's version too)."""
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
        "media_found": True,
        "media_version": Build.parse(media) if media else None,
        "stated_media_build": Build.parse(media) if media else None,
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
    assert decision.media_build == host.stated_media_build


@pytest.mark.parametrize(
    ("host", "wanted", "match"),
    [
        pytest.param(
            _host(),
            "5.5.2653",
            "installs 5.5.2650 \\(5.5 SP3\\) but build asks for 5.5.2653 \\(5.5 SP4\\)",
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
        pytest.param(_host(media_found=False), None, "no update.exe at", id="no update.exe"),
        pytest.param(_host(media=None), None, "media_build is not set", id="media_build unstated"),
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


PASSWORD_IN_IMAGE_PATH = r"C:\Exchsrvr\Bin\Kmserver.exe ********"

# Each rule of INSTALL_RULES: a host it decides (with the build asked for), and its wording.
INSTALL_WORDING: dict[str, tuple[HostReadings, str | None, str]] = {
    "not_exchange_55_or_2000": (
        _host(server="15.1.2507.6", kms=None),
        None,
        "found Exchange 15.1.2507.6 (2016 CU23). This module reapplies Exchange 5.5 / 2000 "
        "service packs with update.exe; later versions are updated with their own Setup. Run it "
        "only against the KM Server of an Exchange 5.5 or 2000 site.",
    ),
    "media_missing": (
        _host(media_found=False),
        None,
        "no update.exe at D:\\EXCH55SP3\\ENG\\SERVER\\SETUP\\I386\\update.exe. Set media to the "
        "folder of the extracted service pack kit that holds update.exe (5.5: "
        "<kit>\\ENG\\SERVER\\SETUP\\I386, KB Q191013).",
    ),
    "media_build_unstated": (
        _host(stated_media_build=None),
        None,
        "media_build is not set. No source gives a way to read the build a service pack kit "
        "installs (update.exe's file version, 5.5.2650 (5.5 SP3), is not documented to be it), "
        "and without it a downgrade or another service pack than the one asked for cannot be "
        "ruled out. State the build the kit at D:\\EXCH55SP3\\ENG\\SERVER\\SETUP\\I386 installs, "
        "from its name and readme, with media_build (role variable kms_remediate_sp_build), for "
        "example 5.5.2650 for the Exchange 5.5 SP3 kit (KB Q191013).",
    ),
    "media_build_disputed": (
        _host(stated_media_build=Build(5, 5, 2653)),
        None,
        "media_build states that the media at D:\\EXCH55SP3\\ENG\\SERVER\\SETUP\\I386 installs "
        "5.5.2653 (5.5 SP4), but its update.exe's file version is 5.5.2650 (5.5 SP3). No source "
        "documents update.exe's version as the build a kit installs, yet a kit whose update.exe "
        "carries another service pack's build is most likely not the 5.5 SP4 kit, and this run "
        "must not install another service pack than the one you meant. Check the kit's name and "
        "readme, then point media at the 5.5 SP4 kit or correct media_build (role variable "
        "kms_remediate_sp_build).",
    ),
    "other_exchange_version": (
        _host(media="6.0.6249.0"),
        None,
        "the media at D:\\EXCH55SP3\\ENG\\SERVER\\SETUP\\I386 installs 6.0.6249 (2000 "
        "SP3), a service pack for another Exchange version than the server's 5.5.2650 (5.5 SP3). "
        "Point media at a service pack kit for Exchange Server 5.5.",
    ),
    "downgrades_server": (
        _host(media="5.5.2448.0"),
        None,
        "the media at D:\\EXCH55SP3\\ENG\\SERVER\\SETUP\\I386 installs 5.5.2448 (5.5 SP2) but "
        "Exchange is already 5.5.2650 (5.5 SP3): update.exe would downgrade the server, and a "
        "service pack older than the build that last ran the KM database does not fix event 5389 "
        "(KB Q259906). Use the media of 5.5 SP3 or later.",
    ),
    "downgrades_kms_binaries": (
        _host(server="5.5.2448", kms="5.5.2606.0", media="5.5.2448.0"),
        None,
        "the media at D:\\EXCH55SP3\\ENG\\SERVER\\SETUP\\I386 installs 5.5.2448 (5.5 SP2) but "
        "Kmserver.exe is already 5.5.2606 (5.5 SP2 + hotfix): update.exe would downgrade the KM "
        "Server binaries below the build that may have last run the KM database (KB Q259906). "
        "Use media that installs 5.5.2606 or later.",
    ),
    "not_the_wanted_build": (
        _host(),
        "5.5.2653",
        "the media at D:\\EXCH55SP3\\ENG\\SERVER\\SETUP\\I386 installs 5.5.2650 (5.5 "
        "SP3) but build asks for 5.5.2653 (5.5 SP4). Installing another service pack than the "
        "one asked for leaves the KM Server move unfixed (KB Q259906: both servers on the same "
        "service pack). Point media at the 5.5 SP4 kit, or set build to 5.5.2650 if that is the "
        "service pack you want.",
    ),
    "kms_binary_unknown": (
        _host(kms=None, kms_installed=True),
        None,
        "KM Server is installed but Kmserver.exe's file version cannot be read (no wmic on the "
        "host?), so neither the need for the service pack nor its success can be proven. Read "
        "Kmserver.exe's version on the host (its Properties, Version tab) and reapply the "
        "service pack by hand if it is older than 5.5.2650 (5.5 SP3).",
    ),
    "already_on_media": (
        _host(kms="5.5.2650.12"),
        None,
        "Exchange and Kmserver.exe are already on 5.5.2650 (5.5 SP3), the media's service pack",
    ),
    "kms_half_installed": (
        _host(kms_parts=(("service", True), ("KMServer key", False))),
        None,
        "KM Server is only partly installed (present: service; missing: KMServer key). "
        "update.exe fails on such a host with 0xc0020002 (KB Q290226) or tries to upgrade a KM "
        "Server that is not there (KB Q196171). Repair or remove KM Server first, then run again.",
    ),
    "password_in_image_path": (
        _host(image_path_has_arguments=True, kms_image_path=PASSWORD_IN_IMAGE_PATH),
        None,
        "the ImagePath of MSExchangeKMS has arguments after the program "
        "(C:\\Exchsrvr\\Bin\\Kmserver.exe ********), such as the startup password. update.exe "
        "reads that path to find Kmserver.exe's version and fails with \"The system cannot find "
        'the file specified." (KB Q235418). Remove everything after Kmserver.exe from ImagePath '
        "(HKLM\\SYSTEM\\CurrentControlSet\\Services\\MSExchangeKMS), give the password when "
        "starting the service, then run again.",
    ),
    "kms_running": (
        _host(kms_state="running"),
        None,
        "MSExchangeKMS is running. A service pack must not run while the KM Server has its "
        "database open (KB Q235978, Q190713). Back up the KM database and stop "
        "MSExchangeKMS (exchops.kms.kms_backup, exchops.kms.exchange_service with "
        "state=stopped), then run again to install 5.5.2650 (5.5 SP3).",
    ),
    "update_exe_running": (
        _host(update_pids=(2468, 2470)),
        None,
        "update.exe is already running (PID 2468, 2470). A second run would race the first one "
        "over the same files and registry values. Wait until it ends (watch the setup log), then "
        "run again: this module checks the versions and runs nothing when they already match.",
    ),
    "behind_media": (
        _host(server="5.5.2448", kms="5.5.1960.8"),
        None,
        "Exchange is 5.5.2448 (5.5 SP2) and Kmserver.exe is 5.5.1960.8 (5.5 RTM); the media "
        "installs 5.5.2650 (5.5 SP3)",
    ),
}


def test_every_install_rule_has_its_wording_and_a_host_here_that_shows_it() -> None:
    assert [rule.id for rule in INSTALL_RULES] == list(INSTALL_MESSAGES) == list(INSTALL_WORDING)


@pytest.mark.parametrize("rule", list(INSTALL_WORDING))
def test_each_install_rule_words_its_decision_word_for_word(rule: str) -> None:
    host, wanted, text = INSTALL_WORDING[rule]
    build = Build.parse(wanted) if wanted else None
    decided, _values = install_rule(InstallCase(host, MEDIA, build, kms_may_run=False))
    assert decided.id == rule
    if decided.decides == "refuse":
        with pytest.raises(Refusal) as refused:
            decide_install(host, MEDIA, build)
        assert str(refused.value) == text
    else:
        plan = decide_install(host, MEDIA, build)
        assert (plan.install, plan.reason, plan.rule) == (decided.decides == "install", text, rule)


# ---------------------------------------------------------------------------------------------
# Outcome classification: from the versions read after update.exe ended

SP3 = Build(5, 5, 2650)
# A realistic log: no completion or failure wording (Q202258's failed run ends plainly).
PLAIN_RUN = (
    f"{SETUP_LOG_INITIALIZED}\r\n"
    "[10:42:01] Installed C:\\EXCHSRVR\\BIN\\KMSERVER.EXE (version 5.5.2650.12)\r\n"
)
DIALOG_RUN = f"{SETUP_LOG_INITIALIZED}\r\n[10:42:01] Bound to appropriate DSA\r\n"
LOGGED_ID_RUN = DIALOG_RUN + "[10:42:02] Access is denied NT ID: 0xC0020005\r\n"

# Host read back after the run: server build, Store.exe, Kmserver.exe.
DONE = _host(kms="5.5.2650.12", store_version=Build(5, 5, 2650, 23))
KM_LEFT = _host(kms="5.5.1960.8", store_version=Build(5, 5, 2650, 23))
NOTHING_MOVED = _host(server="5.5.2448", kms="5.5.2448.0", store_version=Build(5, 5, 2448, 8))
REGISTRY_ONLY = _host(kms="5.5.2650.12", store_version=Build(5, 5, 2448, 8))
NO_STORE = _host(kms="5.5.2650.12", store_version=None)


def _case(
    after: HostReadings | None = DONE,
    exit_code: int | None = 0,
    success: tuple[int, ...] = (0,),
    log: str = PLAIN_RUN,
    **changes: t.Any,
) -> RunCase:
    values: dict[str, t.Any] = {
        "media_build": SP3,
        "exit_code": exit_code,
        "success_exit_codes": success,
        "runs": parse_setup_log(log),
        "still_running": False,
        "process_running": False,
        "after": after,
        "kms_before": Build(5, 5, 1960, 8),
    }
    values.update(changes)
    return RunCase(**values)


# update.exe runs and nothing moved for 900 s.
WAITING = _case(
    after=None,
    exit_code=None,
    still_running=True,
    process_running=True,
    stalled=True,
    stalled_for=900,
    update_pid=2468,
)


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        pytest.param(_case(), "ok", id="versions on SP3, Kmserver.exe replaced"),
        pytest.param(_case(exit_code=1), "ok", id="an unlisted exit code decides nothing"),
        pytest.param(_case(log=LOGGED_ID_RUN), "ok", id="a logged error ID decides nothing"),
        pytest.param(_case(log=""), "ok", id="nothing logged: the versions decide"),
        pytest.param(_case(exit_code=None), "ok", id="connection lost, update.exe gone"),
        pytest.param(
            _case(exit_code=3010, success=(0, 3010)), "ok_reboot_required", id="listed 3010"
        ),
        pytest.param(_case(exit_code=3010), "ok", id="3010 not listed: no restart read into it"),
        pytest.param(
            _case(exit_code=3010, success=(3010,), after=KM_LEFT),
            "failed",
            id="listed 3010 but Kmserver.exe not replaced",
        ),
        pytest.param(_case(after=KM_LEFT), "failed", id="KB case: Kmserver.exe left at RTM"),
        pytest.param(_case(after=REGISTRY_ONLY), "failed", id="registry moved, Store.exe not"),
        pytest.param(_case(after=NOTHING_MOVED, log=DIALOG_RUN), "failed", id="nothing moved"),
        pytest.param(_case(after=NO_STORE), "unknown", id="Store.exe not readable"),
        pytest.param(
            _case(after=DONE, kms_before=Build(5, 5, 2650, 12)),
            "ok",
            id="Kmserver.exe already on the SP need not change",
        ),
        pytest.param(
            _case(after=_host(update_pids=(2468,), store_version=Build(5, 5, 2650, 23))),
            "still_running",
            id="tasklist still lists update.exe",
        ),
        pytest.param(
            _case(after=None, exit_code=None, still_running=True, process_running=True),
            "still_running",
            id="timeout",
        ),
        pytest.param(
            WAITING,
            "waiting_for_input",
            id="no progress while update.exe runs",
        ),
    ],
)
def test_outcomes_come_from_the_versions_once_update_exe_has_ended(
    case: RunCase, expected: str
) -> None:
    outcome = classify(case)
    assert outcome.outcome == expected
    assert outcome.remedy.endswith(".") and len(outcome.remedy) > 40
    assert outcome.detail and outcome.decided_by


def test_a_success_names_the_readings_that_decided_it() -> None:
    assert classify(_case()).decided_by == (
        "update.exe ended: its command returned exit code 0",
        "registry: Exchange 5.5.2650 (5.5 SP3) (Setup key)",
        "Store.exe file version 5.5.2650.23",
        "Kmserver.exe file version 5.5.2650.12 (before the run: 5.5.1960.8)",
    )


def test_the_exit_code_and_logged_error_ids_are_supporting_notes_only() -> None:
    notes = supporting_notes(_case(exit_code=0xC0070020, log=LOGGED_ID_RUN))
    assert notes == [
        "update.exe's exit code 0xC0070020 is not in success_exit_codes; its exit codes are not "
        "documented, so the outcome was decided from the versions.",
        "the setup log quotes Setup error ID(s) 0xc0020005 (KB Q290226, Q248445).",
    ]


def test_no_outcome_wording_relies_on_a_log_line_or_promises_a_console() -> None:
    for remedy, detail in OUTCOME_MESSAGES.values():
        text = remedy + detail
        assert "completed successfully" not in text and "Setup failed" not in text
        assert "host's console" not in text


def test_the_tail_is_the_last_lines_of_the_appended_runs() -> None:
    runs = parse_setup_log(PLAIN_RUN + DIALOG_RUN)
    assert log_tail(runs, 2) == [SETUP_LOG_INITIALIZED, "[10:42:01] Bound to appropriate DSA"]


# Each rule of OUTCOME_RULES: a case it decides, its outcome and its evidence (detail).
# How the end of an installer an operator runs at the console is seen (launch mode operator).
QUIET_END = (
    "the versions moved, and the setup log and the Exchange BIN folder were unchanged for 120 s"
)
OUTCOME_WORDING: dict[str, tuple[RunCase, str, str]] = {
    "console_not_done": (
        _case(
            after=None,
            exit_code=None,
            still_running=True,
            process_running=None,
            console_end=QUIET_END,
        ),
        "waiting_for_input",
        "the wait ended before its end was seen (the versions moved, and the setup log and the "
        "Exchange BIN folder were unchanged for 120 s).",
    ),
    "waiting_for_input": (
        WAITING,
        "waiting_for_input",
        "update.exe (PID 2468) still runs but made no progress for 900 s (no setup-log growth, "
        "no file changed in the Exchange BIN folder).",
    ),
    "still_running": (
        _case(after=None, exit_code=None, still_running=True, process_running=True),
        "still_running",
        "update.exe was still running (process seen: yes); exit code not known yet.",
    ),
    "update_exe_still_listed": (
        _case(after=_host(update_pids=(2468,))),
        "still_running",
        "tasklist still lists update.exe (PID 2468) after its command returned.",
    ),
    "in_place_restart_asked": (
        _case(exit_code=3010, success=(0, 3010)),
        "ok_reboot_required",
        "the versions are on 5.5.2650 (5.5 SP3): registry: Exchange 5.5.2650 (5.5 SP3) (Setup "
        "key); Store.exe file version 5.5.2650.23; Kmserver.exe file version 5.5.2650.12 (before "
        "the run: 5.5.1960.8); exit code 3010.",
    ),
    "in_place": (
        _case(),
        "ok",
        "the versions are on 5.5.2650 (5.5 SP3): registry: Exchange 5.5.2650 (5.5 SP3) (Setup "
        "key); Store.exe file version 5.5.2650.23; Kmserver.exe file version 5.5.2650.12 (before "
        "the run: 5.5.1960.8).",
    ),
    "store_not_readable": (
        _case(after=NO_STORE),
        "unknown",
        "registry: Exchange 5.5.2650 (5.5 SP3) (Setup key); Store.exe file version: not "
        "readable; Kmserver.exe file version 5.5.2650.12 (before the run: 5.5.1960.8); the media "
        "installs 5.5.2650 (5.5 SP3).",
    ),
    "half_moved": (
        _case(after=KM_LEFT),
        "failed",
        "registry: Exchange 5.5.2650 (5.5 SP3) (Setup key); Store.exe file version 5.5.2650.23; "
        "Kmserver.exe file version 5.5.1960.8 (before the run: 5.5.1960.8); the media installs "
        "5.5.2650 (5.5 SP3).",
    ),
    "not_moved": (
        _case(after=NOTHING_MOVED),
        "failed",
        "registry: Exchange 5.5.2448 (5.5 SP2) (Setup key); Store.exe file version 5.5.2448.8; "
        "Kmserver.exe file version 5.5.2448.0 (before the run: 5.5.1960.8); the media installs "
        "5.5.2650 (5.5 SP3).",
    ),
}


def test_a_run_that_changed_no_version_is_not_called_partly_in_place() -> None:
    """The KB target (registry and Store.exe already on SP3, Kmserver.exe RTM) whose update.exe
    was cancelled before it copied anything: nothing moved, so not "only partly in place"."""
    after = KM_LEFT
    unchanged = _case(
        after=after, build_before=after.server_build, store_before=after.store_version
    )
    assert classify(unchanged).rule == "not_moved"
    store_moved = _case(after=after, build_before=after.server_build, store_before=SP3)
    assert classify(store_moved).rule == "half_moved"
    # Without the earlier readings (a later run finishing a record), the media's SP decides.
    assert classify(_case(after=after)).rule == "half_moved"


def test_every_outcome_rule_has_its_wording_and_a_run_here_that_shows_it() -> None:
    assert [rule.id for rule in OUTCOME_RULES] == list(OUTCOME_MESSAGES) == list(OUTCOME_WORDING)


@pytest.mark.parametrize("rule", list(OUTCOME_WORDING))
def test_each_outcome_rule_gives_its_evidence_word_for_word(rule: str) -> None:
    case, outcome, detail = OUTCOME_WORDING[rule]
    classified = classify(case)
    assert (classified.rule, classified.outcome, classified.detail) == (rule, outcome, detail)
    assert classified.remedy.endswith(".") and "{" not in classified.remedy


def test_an_operator_run_ended_by_the_quiet_rule_is_judged_from_the_versions() -> None:
    """Launch mode operator: no exit code and no process list; the versions decide."""
    case = _case(exit_code=None, process_running=None, console_end=QUIET_END)
    judged = classify(case)
    assert (judged.rule, judged.outcome) == ("in_place", "ok")
    assert judged.decided_by[0] == (
        "update.exe at the console ended: the versions moved, and the setup log and the "
        "Exchange BIN folder were unchanged for 120 s"
    )


@pytest.mark.parametrize(
    ("record", "after", "moved"),
    [
        # KB Q259906: the registry stays 5.5.2650, only Kmserver.exe moves off the CD's build.
        ((Build(5, 5, 2650), Build(5, 5, 2650, 23), Build(5, 5, 1960, 8)), "5.5.2650.12", True),
        ((Build(5, 5, 2650), Build(5, 5, 2650, 23), Build(5, 5, 1960, 8)), "5.5.1960.8", False),
        # A record without the registry and Store.exe readings: the registry on the media's SP.
        ((None, None, Build(5, 5, 1960, 8)), "5.5.1960.8", True),
    ],
)
def test_moved_since_compares_the_versions_with_the_run_records(
    record: tuple[t.Any, t.Any, t.Any], after: str, moved: bool
) -> None:
    build, store, kms = record
    kept = RunRecord(SP3, ("MSExchangeSA",), kms, build, store)
    now = _host(kms=after, store_version=Build(5, 5, 2650, 23))
    assert moved_since(kept, now) is moved


# ---------------------------------------------------------------------------------------------
# Kmserver.exe after the run (kms_short_of) and start types


@pytest.mark.parametrize(
    ("kms_after", "in_place"),
    [
        ("5.5.2650.12", True),
        ("5.5.1960.8", False),  # still the Exchange CD's build under SP3
        # No source lists Kmserver.exe per SP: an earlier SP's build is not demanded to move.
        ("5.5.2448.0", True),
        (None, False),  # it was there before the run and cannot be read now
    ],
)
def test_without_the_database_build_only_the_cds_kmserver_must_be_raised(
    kms_after: str | None, in_place: bool
) -> None:
    case = _case(after=_host(kms=kms_after, store_version=Build(5, 5, 2650, 23)))
    assert case.kms_in_place is in_place
    assert classify(case).outcome == ("ok" if in_place else "failed")


@pytest.mark.parametrize(
    ("media", "kms", "database", "in_place"),
    [
        # SP4 reapplied, Kmserver.exe stays 5.5.2650.12 like the database's: in place.
        ("5.5.2653", "5.5.2650.12", "5.5.2650", True),
        ("5.5.2650", "5.5.2448.0", "5.5.2650", False),
        ("5.5.2650", "5.5.2650.12", "5.5.2650.23", True),  # compared on major.minor.build
    ],
)
def test_with_the_database_build_known_kmserver_must_reach_it_not_the_media_build(
    media: str, kms: str, database: str, in_place: bool
) -> None:
    after = _host(server=media, kms=kms, media=media, store_version=Build.parse(media))
    case = _case(after=after, media_build=Build.parse(media), database=Build.parse(database))
    assert case.kms_in_place is in_place
    assert classify(case).outcome == ("ok" if in_place else "failed")


@pytest.mark.parametrize(
    ("host", "database", "rule"),
    [
        # Two SP4 servers whose Kmserver.exe is 5.5.2650.12 (docs/unsourced.md, U3): nothing to run.
        (
            _host(server="5.5.2653", kms="5.5.2650.12", media="5.5.2653.0"),
            "5.5.2650.12",
            "already_on_media",
        ),
        (_host(server="5.5.2653", kms="5.5.2650.12", media="5.5.2653.0"), None, "already_on_media"),
        # An earlier SP's Kmserver.exe below the database's build: the SP must run.
        (_host(kms="5.5.2448.0"), "5.5.2650.12", "behind_media"),
        (_host(kms="5.5.2448.0"), None, "already_on_media"),
        (_host(), None, "behind_media"),
    ],
)
def test_the_plan_raises_kmserver_only_when_it_is_older_than_the_database_or_the_cds(
    host: HostReadings, database: str | None, rule: str
) -> None:
    plan = decide_install(
        host, "D:\\SP", None, database=Build.parse(database) if database else None
    )
    assert plan.rule == rule


@pytest.mark.parametrize(
    ("store", "rule", "reason"),
    [
        # The registry names SP3 but Store.exe is SP2's: the service pack did not complete (KB
        # Q278518), so it runs again, whatever Kmserver.exe shows.
        (
            Build(5, 5, 2448, 8),
            "behind_media",
            "Store.exe is 5.5.2448.8 (5.5 SP2); the media installs 5.5.2650 (5.5 SP3)",
        ),
        (
            Build(5, 5, 2650, 23),
            "already_on_media",
            "Exchange and Kmserver.exe are already on 5.5.2650 (5.5 SP3), the media's service pack",
        ),
        # Unreadable (no wmic): the registry and Kmserver.exe decide, as before.
        (
            None,
            "already_on_media",
            "Exchange and Kmserver.exe are already on 5.5.2650 (5.5 SP3), the media's service pack",
        ),
    ],
)
def test_a_store_exe_behind_the_media_is_a_service_pack_to_run_again(
    store: Build | None, rule: str, reason: str
) -> None:
    host = _host(kms="5.5.2650.12", store_version=store)
    plan = decide_install(host, MEDIA, Build(5, 5, 2650), database=Build(5, 5, 2650, 12))
    assert (plan.rule, plan.install, plan.reason) == (rule, rule == "behind_media", reason)


def test_every_reason_to_run_is_named_with_store_exe_among_them() -> None:
    host = _host(server="5.5.2448", kms="5.5.1960.8", store_version=Build(5, 5, 2232, 11))
    assert decide_install(host, MEDIA, None).reason == (
        "Exchange is 5.5.2448 (5.5 SP2) and Store.exe is 5.5.2232.11 (5.5 SP1) and Kmserver.exe "
        "is 5.5.1960.8 (5.5 RTM); the media installs 5.5.2650 (5.5 SP3)"
    )


def test_a_half_installed_service_pack_still_refuses_a_running_kms() -> None:
    host = _host(kms="5.5.2650.12", store_version=Build(5, 5, 2448, 8), kms_state="running")
    with pytest.raises(Refusal, match="MSExchangeKMS is running"):
        decide_install(host, MEDIA, None)


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


def test_a_stated_media_build_decides_and_update_exes_version_can_only_refuse_it() -> None:
    unstated = _host(stated_media_build=None)
    readings, source, warning = media_statement(unstated, Build(5, 5, 2650))
    assert (readings.stated_media_build, source) == (Build(5, 5, 2650), "operator statement")
    assert "the operator's statement (media_build)" in warning
    assert install_rule(InstallCase(readings, "D:\\SP", None, True))[0].id == "behind_media"
    # update.exe carrying another SP's build refuses, whichever of the two is right.
    other = media_statement(unstated, Build(5, 5, 2653))[0]
    assert install_rule(InstallCase(other, "D:\\SP", None, True))[0].id == "media_build_disputed"
    # A version that is no Exchange build, or none at all, is no evidence either way.
    for version in (Build(4, 10, 1998), None):
        quiet = media_statement(
            _host(media_version=version, stated_media_build=None), Build(5, 5, 2650)
        )[0]
        assert install_rule(InstallCase(quiet, "D:\\SP", None, True))[0].id == "behind_media"


def test_without_a_statement_update_exes_version_decides_nothing() -> None:
    """docs/unsourced.md, U2: update.exe's file version is not documented to be the kit's build, so with no
    statement the plan refuses whatever that version says, and a statement needs no version."""
    for media in ("5.5.2650.0", "5.5.2448.0", None):
        readings, source, warning = media_statement(
            _host(media=media, stated_media_build=None), None
        )
        assert (source, warning) == (None, "")
        with pytest.raises(Refusal, match="media_build is not set"):
            decide_install(readings, MEDIA, Build(5, 5, 2650))
    stated = media_statement(_host(media=None, stated_media_build=None), Build(5, 5, 2650))[0]
    assert decide_install(stated, MEDIA, Build(5, 5, 2650)).install
