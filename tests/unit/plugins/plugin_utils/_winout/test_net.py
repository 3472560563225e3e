# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""`parse_net_stop` (plugins/plugin_utils/_winout/net.py).

Inputs: the fixture of docs/windows-output.md#e10 (tests/unit/fixtures/net_stop), and bytes literals
built from the table of docs/windows-output.md#net (net names services by display name; NET HELPMSG
3521 "is not started", 2185 "service name is invalid", 3533 "starting or stopping"; `System error 5`
+ "Access is denied."; the dependents list and the (Y/N) question) with the display names of the
Exchange 5.5 services (KMS: KB Q143380). Each literal says which row of that table it follows.
"""

from __future__ import annotations

import pytest
from conftest import load

from ansible_collections.exchops.kms.plugins.plugin_utils._winout import (
    CommandFailed,
    NetStop,
    ParseError,
    ToolMissing,
    parse_net_stop,
    split_merged_streams,
)

KMS = "Microsoft Exchange Key Management Server"
DS = "Microsoft Exchange Directory"
IS = "Microsoft Exchange Information Store"
MTA = "Microsoft Exchange Message Transfer Agent"

# "Dependent services" (+ the lab's order of the messages: dependents first, then the service).
DS_WITH_DEPENDENTS = (
    b"The following services are dependent on the Microsoft Exchange Directory service.\r\n"
    b"Stopping the Microsoft Exchange Directory service will also stop these services.\r\n\r\n"
    b"   Microsoft Exchange Information Store\r\n"
    b"   Microsoft Exchange Message Transfer Agent\r\n"
    b"   Microsoft Exchange Key Management Server\r\n\r\n"
    b"The Microsoft Exchange Information Store service is stopping.\r\n"
    b"The Microsoft Exchange Information Store service was stopped successfully.\r\n\r\n"
    b"The Microsoft Exchange Message Transfer Agent service is stopping.\r\n"
    b"The Microsoft Exchange Message Transfer Agent service was stopped successfully.\r\n\r\n"
    b"The Microsoft Exchange Key Management Server service is stopping.\r\n"
    b"The Microsoft Exchange Key Management Server service was stopped successfully.\r\n\r\n"
    b"The Microsoft Exchange Directory service is stopping.\r\n"
    b"The Microsoft Exchange Directory service was stopped successfully.\r\n\r\n"
)
# "Stop a stopped service" (stderr, exit 2).
NOT_STARTED = (
    b"The Microsoft Exchange Key Management Server service is not started.\r\n\r\n"
    b"More help is available by typing NET HELPMSG 3521.\r\n\r\n"
)
# "Unknown service".
INVALID_NAME = b"The service name is invalid.\r\n\r\nMore help is available by typing NET HELPMSG 2185.\r\n\r\n"
# "No rights".
ACCESS_DENIED = b"System error 5 has occurred.\r\n\r\nAccess is denied.\r\n\r\n"
# A stop that did not finish (net's "could not be stopped", NERR 3528 text).
HUNG = (
    b"The Microsoft Exchange Key Management Server service is stopping.\r\n"
    b"The Microsoft Exchange Key Management Server service could not be stopped.\r\n\r\n"
)
# net waiting prints progress dots ("…").
WITH_DOTS = (
    b"The Microsoft Exchange Key Management Server service is stopping......\r\n"
    b"The Microsoft Exchange Key Management Server service was stopped successfully.\r\n\r\n"
)
# Without /y net asks, and a WinRS shell has no console to answer ("Dependent services").
DECLINED = (
    b"The following services are dependent on the Microsoft Exchange Directory service.\r\n"
    b"Stopping the Microsoft Exchange Directory service will also stop these services.\r\n\r\n"
    b"   Microsoft Exchange Key Management Server\r\n\r\n"
    b"Do you want to continue this operation? (Y/N) [N]: \r\n"
)
PENDING = (
    b"The service is starting or stopping.  Please try again later.\r\n\r\n"
    b"More help is available by typing NET HELPMSG 3533.\r\n\r\n"
)
# A failure text this parser has no pattern for, with its HELPMSG number (kept as message).
NOT_VALID = (
    b"The requested pause, continue, or stop is not valid for this service.\r\n\r\n"
    b"More help is available by typing NET HELPMSG 2191.\r\n\r\n"
)


def text(data: bytes) -> str:
    return data.decode("cp437")


def test_e10_a_stop_without_dependents_names_only_the_service() -> None:
    assert parse_net_stop(*load("net_stop", "e10_kms_stopped")) == NetStop(stopped=(KMS,))


@pytest.mark.parametrize(
    ("stdout", "stderr", "exit_code", "expected"),
    [
        pytest.param(
            DS_WITH_DEPENDENTS,
            b"",
            0,
            NetStop(dependents=(IS, MTA, KMS), stopped=(IS, MTA, KMS, DS)),
            id="dependents listed then stopped first",
        ),
        pytest.param(WITH_DOTS, b"", 0, NetStop(stopped=(KMS,)), id="progress dots"),
        pytest.param(
            b"",
            NOT_STARTED,
            2,
            NetStop(
                not_started=True,
                error=3521,
                message=f"The {KMS} service is not started.",
            ),
            id="not started is an answer",
        ),
        pytest.param(
            b"",
            INVALID_NAME,
            2,
            NetStop(error=2185, message="The service name is invalid."),
            id="no such service",
        ),
        pytest.param(
            b"",
            ACCESS_DENIED,
            2,
            NetStop(error=5, message="System error 5 has occurred. Access is denied."),
            id="access denied",
        ),
        pytest.param(
            HUNG[: HUNG.index(b"The Microsoft", 10)],
            HUNG[HUNG.index(b"The Microsoft", 10) :],
            2,
            NetStop(not_stopped=(KMS,), message=f"The {KMS} service could not be stopped."),
            id="could not be stopped, streams apart",
        ),
        pytest.param(
            DECLINED,
            b"",
            2,
            NetStop(dependents=(KMS,), declined=True),
            id="the Y/N question unanswered",
        ),
        pytest.param(
            b"",
            PENDING,
            2,
            NetStop(
                error=3533,
                message="The service is starting or stopping.  Please try again later.",
            ),
            id="starting or stopping",
        ),
        pytest.param(
            b"",
            NOT_VALID,
            2,
            NetStop(
                error=2191,
                message="The requested pause, continue, or stop is not valid for this service.",
            ),
            id="an unknown failure text kept with its HELPMSG number",
        ),
    ],
)
def test_net_stop_answers(stdout: bytes, stderr: bytes, exit_code: int, expected: NetStop) -> None:
    assert parse_net_stop(text(stdout), text(stderr), exit_code) == expected


def test_merged_streams_read_the_same_as_separate_ones() -> None:
    merged = text(HUNG)
    assert parse_net_stop(*split_merged_streams(merged), 1) == parse_net_stop(merged, "", 1)
    assert parse_net_stop(merged, "", 1).not_stopped == (KMS,)


@pytest.mark.parametrize(
    ("stdout", "stderr", "exit_code", "error", "match"),
    [
        pytest.param(
            "SERVICE_NAME: MSExchangeKMS\r\n",
            "",
            0,
            ParseError,
            r"net stop: line 1: cannot read 'SERVICE_NAME: MSExchangeKMS': not a line net stop",
            id="sc output is not net output",
        ),
        pytest.param(
            "",
            "The syntax of this command is:\r\n\r\nNET STOP\r\nservice\r\n",
            1,
            CommandFailed,
            r"net stop: the command failed \(exit code 1\): The syntax of this command is:",
            id="usage text",
        ),
        pytest.param(
            "",
            "'net' is not recognized as an internal or external command,\r\n"
            "operable program or batch file.\r\n",
            9009,
            ToolMissing,
            "'net' is missing on this host",
            id="no net.exe",
        ),
        pytest.param("", "", 2, CommandFailed, "printed nothing", id="silent failure"),
    ],
)
def test_output_that_is_not_a_net_stop_answer_is_refused(
    stdout: str, stderr: str, exit_code: int, error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        parse_net_stop(stdout, stderr, exit_code)


def test_an_empty_successful_answer_means_nothing_was_reported() -> None:
    assert parse_net_stop("", "", 0) == NetStop()
