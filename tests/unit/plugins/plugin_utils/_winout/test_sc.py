# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""`parse_sc_query`, `parse_sc_qc`, `parse_sc_enumdepend`, `parse_sc_config` and the image-path helpers
(plugins/plugin_utils/_winout/sc.py).

Inputs: the sc_query, sc_start, sc_stop, sc_enumdepend and sc_qc fixtures (E5-E9 of
docs/windows-output.md#sc-examples and the variants #sc allows), and sc config's
"[SC] ChangeServiceConfig SUCCESS" / "[SC] OpenService FAILED 1060:" written inline
(#sc-failures).
"""

from __future__ import annotations

from typing import Any

import pytest
from conftest import PASSWORD, load
from hypothesis import given
from hypothesis import strategies as st

from ansible_collections.exchops.kms.plugins.plugin_utils._winout import (
    ParseError,
    ScFailure,
    ServiceConfig,
    ServiceStatus,
    mask_image_path,
    parse_reg_query,
    parse_sc_config,
    parse_sc_enumdepend,
    parse_sc_qc,
    parse_sc_query,
    split_image_path,
)

KMS_SERVICE = "HKLM\\SYSTEM\\CurrentControlSet\\Services\\MSExchangeKMS"


# ---------------------------------------------------------------------------------------------
# sc query / queryex / start / stop


RUNNING_CONTROLS = ("STOPPABLE", "NOT_PAUSABLE", "ACCEPTS_SHUTDOWN")
PENDING_CONTROLS = ("NOT_STOPPABLE", "NOT_PAUSABLE", "IGNORES_SHUTDOWN")


def status(state: str, code: int, controls: tuple[str, ...], **changes: Any) -> ServiceStatus:
    fields: dict[str, Any] = {
        "name": "MSExchangeKMS",
        "service_type": 0x10,
        "state": state,
        "state_code": code,
        "controls": controls,
        "win32_exit_code": 0,
        "service_exit_code": 0,
        "checkpoint": 0,
        "wait_hint": 0,
    }
    fields.update(changes)
    return ServiceStatus(**fields)


MISSING = "The specified service does not exist as an installed service."
E5 = load("sc_query", "e5_kms_running")[0]


@pytest.mark.parametrize(
    ("command", "case", "expected"),
    [
        ("sc_query", "e5_kms_running", status("running", 4, RUNNING_CONTROLS)),
        (
            "sc_query",
            "kms_stopped_no_controls_line",
            status("stopped", 1, (), win32_exit_code=1077),
        ),
        (
            "sc_query",
            "kms_stopped_service_specific_error",
            status("stopped", 1, PENDING_CONTROLS, win32_exit_code=1066, service_exit_code=1),
        ),
        (
            "sc_query",
            "queryex_running_pid_flags",
            status("running", 4, RUNNING_CONTROLS, pid=1320, flags=""),
        ),
        (
            "sc_query",
            "queryex_flags_trimmed_interactive",
            status("running", 4, RUNNING_CONTROLS, pid=1320, flags="", service_type=0x110),
        ),
        ("sc_query", "reactos_tab_indent", status("running", 4, RUNNING_CONTROLS)),
        (
            "sc_query",
            "missing_service_1060",
            ScFailure("EnumQueryServicesStatus:OpenService", 1060, MISSING),
        ),
        ("sc_query", "access_denied_5", ScFailure("OpenSCManager", 5, "Access is denied.")),
        (
            "sc_start",
            "e6_start_pending",
            status("start_pending", 2, PENDING_CONTROLS, wait_hint=2000, pid=1320, flags=""),
        ),
        (
            "sc_start",
            "already_running_1056",
            ScFailure("StartService", 1056, "An instance of the service is already running."),
        ),
        (
            "sc_start",
            "already_running_exit_cut_to_8_bits",
            ScFailure("StartService", 1056, "An instance of the service is already running."),
        ),
        (
            "sc_start",
            "timeout_1053",
            ScFailure(
                "StartService",
                1053,
                "The service did not respond to the start or control request in a timely fashion.",
            ),
        ),
        ("sc_start", "missing_service_1060", ScFailure("StartService: OpenService", 1060, MISSING)),
        (
            "sc_stop",
            "e9_not_started_1062",
            ScFailure("ControlService", 1062, "The service has not been started."),
        ),
        (
            "sc_stop",
            "not_started_no_final_line_exit_38",
            ScFailure("ControlService", 1062, "The service has not been started."),
        ),
        ("sc_stop", "stop_pending", status("stop_pending", 3, PENDING_CONTROLS, wait_hint=2000)),
        (
            "sc_stop",
            "dependent_services_1051",
            ScFailure(
                "ControlService",
                1051,
                "A stop control has been sent to a service that other running services are "
                "dependent on.",
            ),
        ),
    ],
)
def test_sc_status_blocks_and_failures_are_answers(
    command: str, case: str, expected: ServiceStatus | ScFailure
) -> None:
    assert parse_sc_query(*load(command, case)) == expected


def test_the_sc_error_number_comes_from_the_text_not_the_exit_code() -> None:
    stdout, stderr, exit_code = load("sc_stop", "not_started_no_final_line_exit_38")
    assert exit_code == 38
    result = parse_sc_query(stdout, stderr, exit_code)
    assert isinstance(result, ScFailure) and result.error == 1062 and not result.service_missing
    missing = parse_sc_query(*load("sc_query", "missing_service_1060"))
    assert isinstance(missing, ScFailure) and missing.service_missing
    # The [SC] text on stderr instead of stdout (the stream is not established,
    # docs/windows-output.md#every-command).
    stdout, stderr, exit_code = load("sc_qc", "e8_missing_1060")
    assert parse_sc_qc(stderr, stdout, exit_code) == parse_sc_qc(stdout, stderr, exit_code)


def test_sc_query_enumeration_form_keeps_the_display_name() -> None:
    stdout = (
        "\r\nSERVICE_NAME: MSExchangeKMS\r\n"
        "DISPLAY_NAME: Microsoft Exchange Key Management Server\r\n"
        "        TYPE               : 10  WIN32_OWN_PROCESS  \r\n"
        "        STATE              : 1  STOPPED \r\n"
        "        WIN32_EXIT_CODE    : -2147024891  (0x80070005)\r\n"
        "        SERVICE_EXIT_CODE  : 0  (0x0)\r\n"
        "        CHECKPOINT         : 0x0\r\n        WAIT_HINT          : 0x0\r\n\r\n"
    )
    result = parse_sc_query(stdout, "", 0)
    assert isinstance(result, ServiceStatus)
    assert result.display_name == "Microsoft Exchange Key Management Server"
    assert result.win32_exit_code == 0x80070005


@pytest.mark.parametrize(
    ("stdout", "message"),
    [
        ("", r"no output \(exit code 0\)"),
        ("\r\n\r\n", "no output"),
        ("SERVICE_NAME: A\r\nSERVICE_NAME: B\r\n", "a second SERVICE_NAME"),
        ("SERVICE_NAME: A\r\n        TYPE : 10  X\r\n        TYPE : 10  X\r\n", "printed twice"),
        (
            E5.replace("10  WIN32_OWN_PROCESS", "WIN32_OWN_PROCESS"),
            "line 3: .*TYPE is not a number",
        ),
        (
            E5.replace("0x7d0", "2000").replace(
                "WAIT_HINT          : 0x0", "WAIT_HINT          : 20"
            ),
            "line 9: .*WAIT_HINT is not 0x",
        ),
        (
            E5.replace("(STOPPABLE", "(STOPPABLE)\r\n        (STOPPABLE"),
            "line 6: .*expected an indented",
        ),
        ("[SC] OpenService FAILED 1060:\r\n[SC] OpenService FAILED 1060:\r\n", "a second"),
        ("        TYPE : 10  X\r\n", "expected SERVICE_NAME"),
        ("SERVICE_NAME: A\r\n    (STOPPABLE)\r\n", "expected an indented"),
    ],
)
def test_sc_edge_output_is_refused_with_a_reason(stdout: str, message: str) -> None:
    with pytest.raises(ParseError, match=message):
        parse_sc_query(stdout, "", 0)


def test_sc_exit_codes_must_agree_in_decimal_and_hex() -> None:
    stdout, stderr, exit_code = load("sc_query", "kms_stopped_no_controls_line")
    with pytest.raises(ParseError, match="WIN32_EXIT_CODE: the decimal and hexadecimal"):
        parse_sc_query(stdout.replace("(0x435)", "(0x436)"), stderr, exit_code)


# ---------------------------------------------------------------------------------------------
# sc qc, ImagePath and the KM Server password


def config(**changes: Any) -> ServiceConfig:
    fields: dict[str, Any] = {
        "name": "MSExchangeKMS",
        "service_type": 0x10,
        "start_type": "manual",
        "start_code": 3,
        "delayed": False,
        "error_control": 1,
        "binary_path": "C:\\Exchsrvr\\Bin\\Kmserver.exe",
        "load_order_group": "",
        "tag": 0,
        "display_name": "Microsoft Exchange Key Management Server",
        "dependencies": ("MSExchangeDS",),
        "account": "EXCHDOM\\ExchSvc",
    }
    fields.update(changes)
    return ServiceConfig(**fields)


TRANSPORT = '"C:\\Program Files\\Microsoft\\Exchange Server\\V15\\Bin\\MSExchangeTransport.exe"'


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("e7_kms", config()),
        ("e8_missing_1060", ScFailure("OpenService", 1060, MISSING)),
        ("two_dependencies", config(dependencies=("MSExchangeDS", "MSExchangeSA"))),
        (
            "image_path_with_password",
            config(binary_path=f"C:\\Exchsrvr\\Bin\\Kmserver.exe {PASSWORD}"),
        ),
        (
            "quoted_path_delayed_auto",
            config(
                name="MSExchangeTransport",
                start_type="auto",
                start_code=2,
                delayed=True,
                binary_path=TRANSPORT,
                display_name="Microsoft Exchange Transport",
                dependencies=("MSExchangeADTopology",),
                account="LocalSystem",
            ),
        ),
        (
            "empty_fields_without_trailing_space",
            config(start_type="disabled", start_code=4, dependencies=(), account="LocalSystem"),
        ),
    ],
)
def test_sc_qc_reads_the_service_configuration(
    case: str, expected: ServiceConfig | ScFailure
) -> None:
    assert parse_sc_qc(*load("sc_qc", case)) == expected


def test_a_password_in_the_image_path_is_never_shown() -> None:
    result = parse_sc_qc(*load("sc_qc", "image_path_with_password"))
    assert isinstance(result, ServiceConfig)
    assert split_image_path(result.binary_path) == ("C:\\Exchsrvr\\Bin\\Kmserver.exe", PASSWORD)
    assert result.masked_binary_path == "C:\\Exchsrvr\\Bin\\Kmserver.exe ********"
    assert PASSWORD not in repr(result)
    assert PASSWORD not in str(result)
    registry = parse_reg_query(*load("reg_query", "kms_service_key_password_in_imagepath"))
    image_path = registry.value(KMS_SERVICE, "imagepath")
    assert image_path is not None and isinstance(image_path.data, str)
    assert mask_image_path(image_path.data) == "C:\\Exchsrvr\\Bin\\Kmserver.exe ********"


@pytest.mark.parametrize(
    ("image_path", "split", "masked"),
    [
        (
            "C:\\Exchsrvr\\Bin\\Kmserver.exe",
            ("C:\\Exchsrvr\\Bin\\Kmserver.exe", ""),
            "C:\\Exchsrvr\\Bin\\Kmserver.exe",
        ),
        (
            f"C:\\Exchsrvr\\Bin\\Kmserver.exe {PASSWORD}",
            ("C:\\Exchsrvr\\Bin\\Kmserver.exe", PASSWORD),
            "C:\\Exchsrvr\\Bin\\Kmserver.exe ********",
        ),
        (
            f"C:\\Exchsrvr\\Bin\\KMSERVER.EXE\t{PASSWORD}",
            ("C:\\Exchsrvr\\Bin\\KMSERVER.EXE", PASSWORD),
            "C:\\Exchsrvr\\Bin\\KMSERVER.EXE ********",
        ),
        (
            f"C:\\Program Files\\Exchsrvr\\bin\\kmserver.exe  {PASSWORD} -x",
            ("C:\\Program Files\\Exchsrvr\\bin\\kmserver.exe", f"{PASSWORD} -x"),
            "C:\\Program Files\\Exchsrvr\\bin\\kmserver.exe ********",
        ),
        (
            f'"C:\\Program Files\\Exchsrvr\\bin\\kmserver.exe" {PASSWORD}',
            ("C:\\Program Files\\Exchsrvr\\bin\\kmserver.exe", PASSWORD),
            '"C:\\Program Files\\Exchsrvr\\bin\\kmserver.exe" ********',
        ),
        (TRANSPORT, (TRANSPORT.strip('"'), ""), TRANSPORT),
        (
            f'"C:\\Exchsrvr\\Bin\\Kmserver.exe {PASSWORD}"',
            (f"C:\\Exchsrvr\\Bin\\Kmserver.exe {PASSWORD}", ""),
            "********",
        ),
        (
            f'"C:\\Exchsrvr\\Bin\\Kmserver.exe {PASSWORD}',
            ("C:\\Exchsrvr\\Bin\\Kmserver.exe", PASSWORD),
            '"C:\\Exchsrvr\\Bin\\Kmserver.exe" ********',
        ),
        (
            f"C:\\Exchsrvr\\Bin\\Kmserver.exe{PASSWORD}",
            (f"C:\\Exchsrvr\\Bin\\Kmserver.exe{PASSWORD}", ""),
            "********",
        ),
        (
            f"C:\\Exchsrvr\\Bin\\Kmserver {PASSWORD}",
            ("C:\\Exchsrvr\\Bin\\Kmserver", PASSWORD),
            "********",
        ),
        (
            "system32\\DRIVERS\\kmsflt.sys",
            ("system32\\DRIVERS\\kmsflt.sys", ""),
            "system32\\DRIVERS\\kmsflt.sys",
        ),
        (
            "C:\\Windows\\system32\\svchost.exe -k netsvcs",
            ("C:\\Windows\\system32\\svchost.exe", "-k netsvcs"),
            "C:\\Windows\\system32\\svchost.exe ********",
        ),
        ("", ("", ""), ""),
    ],
)
def test_image_paths_split_into_executable_and_masked_arguments(
    image_path: str, split: tuple[str, str], masked: str
) -> None:
    assert split_image_path(image_path) == split
    assert mask_image_path(image_path) == masked


@given(
    password=st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!$%", min_size=8, max_size=20),
    folder=st.sampled_from(["C:\\Exchsrvr\\Bin", "D:\\Program Files\\Exchsrvr\\bin", "c:\\exch"]),
    executable=st.sampled_from(["Kmserver.exe", "KMSERVER.EXE", "kmserver"]),
    separator=st.sampled_from([" ", "  ", "\t", ""]),
    quoted=st.booleans(),
)
def test_masking_never_leaks_a_password_appended_to_the_image_path(
    password: str, folder: str, executable: str, separator: str, quoted: bool
) -> None:
    path = f"{folder}\\{executable}"
    image_path = (f'"{path}"' if quoted else path) + separator + password
    assert password not in mask_image_path(image_path)


# ---------------------------------------------------------------------------------------------
# sc config


def test_sc_config_success_is_none() -> None:
    assert parse_sc_config("[SC] ChangeServiceConfig SUCCESS\r\n", "", 0) is None


def test_sc_config_of_a_missing_service_is_the_1060_failure_with_its_message() -> None:
    stdout = (
        "[SC] OpenService FAILED 1060:\r\n\r\n"
        "The specified service does not exist as an installed service.\r\n\r\n"
    )
    failure = parse_sc_config(stdout, "", 1060)
    assert failure == ScFailure(
        "OpenService", 1060, "The specified service does not exist as an installed service."
    )
    assert failure.service_missing


def test_sc_config_access_denied_is_the_failure_5() -> None:
    stdout = "[SC] OpenService FAILED 5:\r\n\r\nAccess is denied.\r\n\r\n"
    assert parse_sc_config(stdout, "", 5) == ScFailure("OpenService", 5, "Access is denied.")


@pytest.mark.parametrize(
    ("stdout", "stderr", "code", "match"),
    [
        ("", "", 1, "no \\[SC\\] line"),
        ("DESCRIPTION:\r\n        Modifies a service entry\r\n", "", 1639, "expected '\\[SC\\]"),
        (
            "[SC] ChangeServiceConfig SUCCESS\r\n[SC] ChangeServiceConfig SUCCESS\r\n",
            "",
            0,
            "expected",
        ),
    ],
)
def test_sc_config_refuses_output_it_does_not_know(
    stdout: str, stderr: str, code: int, match: str
) -> None:
    with pytest.raises(ParseError, match=match):
        parse_sc_config(stdout, stderr, code)


# ---------------------------------------------------------------------------------------------
# sc enumdepend


def test_sc_enumdepend_lists_the_dependents_in_stopping_order() -> None:
    dependents = parse_sc_enumdepend(*load("sc_enumdepend", "exchange_sa_dependents"))
    assert isinstance(dependents, tuple)
    assert [(item.name, item.state) for item in dependents] == [
        ("MSExchangeKMS", "stopped"),
        ("MSExchangeMTA", "running"),
        ("MSExchangeIS", "running"),
        ("MSExchangeDS", "running"),
    ]
    assert dependents[3].display_name == "Microsoft Exchange Directory"
    assert parse_sc_enumdepend(*load("sc_enumdepend", "no_dependents")) == ()


@pytest.mark.parametrize(
    ("case", "error", "message"),
    [
        ("more_data", 234, "more data, need 6971 bytes"),
        (
            "missing_service_1060",
            1060,
            "The specified service does not exist as an installed service.",
        ),
    ],
)
def test_sc_enumdepend_failures_are_answers(case: str, error: int, message: str) -> None:
    failure = parse_sc_enumdepend(*load("sc_enumdepend", case))
    assert isinstance(failure, ScFailure)
    assert (failure.error, failure.message) == (error, message)


@pytest.mark.parametrize(
    ("stdout", "reason"),
    [
        ("", "no output"),
        ("Enumerating...\r\n", "expected 'Enum: entriesRead = n'"),
        ("Enum: entriesRead = 2\r\n", "2 entries announced, 0 printed"),
        (
            "Enum: entriesRead = 1\r\n        TYPE : 10\r\n",
            "expected SERVICE_NAME: after the count",
        ),
    ],
)
def test_sc_enumdepend_refuses_output_it_cannot_read(stdout: str, reason: str) -> None:
    with pytest.raises(ParseError, match=reason):
        parse_sc_enumdepend(stdout, "", 0)
