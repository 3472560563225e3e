# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Injected and natural WS-Man faults reach the clients as Windows' would."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from email.utils import parsedate_to_datetime

import pytest
import requests
import xmltodict
from pypsrp.exceptions import WSManFaultError as PsrpFaultError
from winrm.exceptions import WSManFaultError
from wsman_support import DummyBackend, http_url, pypsrp_client, pywinrm_protocol, pywinrm_session

from exchlab.wsman import LabCA, WsmanServer

SHELL_CMD = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/cmd"


@contextlib.contextmanager
def one_connection_dropped(backend: DummyBackend) -> Iterator[None]:
    """Allow the backend's drop fault one connection: the block must lose its connection
    (requests' ConnectionError) and use that one drop up."""
    backend.faults.drop_connection_count = 1
    with pytest.raises(requests.exceptions.ConnectionError):
        yield
    assert backend.faults.drop_connection_count == 0


def test_a_dropped_command_is_a_connection_error_and_the_next_call_works(
    host: tuple[WsmanServer, DummyBackend],
) -> None:
    server, backend = host
    backend.faults.drop_connection_on = "Command"

    with one_connection_dropped(backend):
        pywinrm_session(backend).run_cmd("ver")
    assert backend.command_lines == []

    # A new session, as a caller reconnecting after a network error would open.
    session = pywinrm_session(backend)
    assert session.run_cmd("ver").std_out == b"ran ver\r\n"
    # The shell of the dropped run stays until Delete or IdleTimeOut, as on Windows.
    assert server.shell_manager(backend.name).open_shells() == 1


def test_a_cut_receive_leaves_its_command_running_and_other_shells_working(
    host: tuple[WsmanServer, DummyBackend],
) -> None:
    server, backend = host
    backend.faults.drop_receive_for = "SLEEP 1.5"
    protocol = pywinrm_protocol(backend)
    shell = protocol.open_shell()
    command = protocol.run_command(shell, "sleep 1.5")

    with one_connection_dropped(backend):
        protocol.get_command_output(shell, command)
    # The command goes on; another connection and shell are served meanwhile.
    other = pywinrm_session(backend)
    assert other.run_cmd("ver").std_out == b"ran ver\r\n"
    backend.released.set()
    assert backend.command_lines == ["sleep 1.5", "ver"]
    assert server.shell_manager(backend.name).open_shells() == 1  # the cut one, until reaped


@pytest.mark.parametrize(
    ("code", "reason"),
    [
        (2150858770, "The client cannot connect to the destination"),
        (2147943418, "Illegal operation attempted on a registry key"),
        (1234567, "The WS-Management service cannot process the request."),
    ],
)
def test_an_injected_wsman_fault_carries_its_code(
    backend: DummyBackend, lab_ca: LabCA, code: int, reason: str
) -> None:
    backend.faults.wsman_fault_on = "Create"
    backend.faults.wsman_fault_code = code

    with pytest.raises(WSManFaultError) as caught:
        pywinrm_protocol(backend, "basic", lab_ca).open_shell()

    assert caught.value.code == 500
    assert caught.value.wsman_fault_code == code
    assert caught.value.reason.startswith(reason)
    assert backend.counts["shells"] == 0


def test_pypsrp_sees_an_injected_fault_with_the_machine_name(
    backend: DummyBackend, lab_ca: LabCA
) -> None:
    backend.faults.wsman_fault_on = "Command"
    backend.faults.wsman_fault_code = 2150858770
    client = pypsrp_client(backend, lab_ca, auth="basic")

    with pytest.raises(PsrpFaultError) as caught:
        client.execute_cmd("ver")
    assert caught.value.code == 2150858770
    assert caught.value.machine == backend.name


def test_the_sixth_open_shell_hits_the_max_shells_per_user_quota(
    backend: DummyBackend, lab_ca: LabCA
) -> None:
    protocol = pywinrm_protocol(backend, "basic", lab_ca)
    shells = [protocol.open_shell() for _shell_number in range(5)]

    with pytest.raises(WSManFaultError) as caught:
        protocol.open_shell()
    # ERROR_WSMAN_QUOTA_MAX_SHELLS (0x803381A5)
    assert caught.value.wsman_fault_code == 2150859173
    assert "maximum number of 5 concurrent shells" in caught.value.reason

    protocol.close_shell(shells.pop(), close_session=False)
    shells.append(protocol.open_shell())
    assert backend.counts["shells"] == 6


def test_the_host_keeps_the_most_shells_open_at_once_after_they_are_deleted(
    host: tuple[WsmanServer, DummyBackend],
) -> None:
    server, backend = host
    protocol = pywinrm_protocol(backend)
    shells = [protocol.open_shell() for _shell_number in range(3)]
    for shell in shells:
        protocol.close_shell(shell, close_session=False)
    protocol.close_shell(protocol.open_shell(), close_session=False)

    assert server.shell_manager(backend.name).open_shells() == 0
    assert (backend.counts["shells"], backend.shells_peak) == (4, 3)


def test_an_unknown_shell_id_is_an_invalid_selectors_fault(
    backend: DummyBackend, lab_ca: LabCA
) -> None:
    protocol = pywinrm_protocol(backend, "basic", lab_ca)
    missing = "11111111-1111-1111-1111-111111111111"

    with pytest.raises(WSManFaultError) as caught:
        protocol.run_command(missing, "ver")
    assert caught.value.wsman_fault_code == 2150858843
    assert caught.value.fault_subcode == "w:InvalidSelectors"
    assert missing in caught.value.response


def test_an_unknown_command_id_is_an_invalid_parameter_fault(
    backend: DummyBackend, lab_ca: LabCA
) -> None:
    protocol = pywinrm_protocol(backend, "basic", lab_ca)
    shell_id = protocol.open_shell()

    with pytest.raises(WSManFaultError) as caught:
        protocol.get_command_output_raw(shell_id, "22222222-2222-2222-2222-222222222222")
    assert caught.value.wsman_fault_code == 87


def test_an_unknown_action_is_not_supported(backend: DummyBackend, lab_ca: LabCA) -> None:
    protocol = pywinrm_protocol(backend, "basic", lab_ca)
    request = {
        "env:Envelope": protocol.build_wsman_header(
            action="http://schemas.xmlsoap.org/ws/2004/09/transfer/Get", resource_uri=SHELL_CMD
        )
    }
    request["env:Envelope"]["env:Body"] = {}

    with pytest.raises(WSManFaultError) as caught:
        protocol.send_message(xmltodict.unparse(request))
    assert caught.value.wsman_fault_code == 2150858771
    assert caught.value.fault_subcode == "a:ActionNotSupported"


def test_the_latency_fault_delays_every_request(backend: DummyBackend, lab_ca: LabCA) -> None:
    backend.faults.latency_ms = 100
    session = pywinrm_session(backend, "basic", lab_ca)

    started = time.monotonic()
    assert session.run_cmd("ver").std_out == b"ran ver\r\n"
    # Five requests, each held 100 ms: a lower bound, which no machine load can break.
    assert time.monotonic() - started >= 0.5


def test_an_idle_shell_is_reaped_after_its_idle_timeout(
    host: tuple[WsmanServer, DummyBackend], lab_ca: LabCA
) -> None:
    server, backend = host
    protocol = pywinrm_protocol(backend, "basic", lab_ca)
    shell_id = protocol.open_shell(idle_timeout="PT1S")
    manager = server.shell_manager(backend.name)

    deadline = time.monotonic() + 10
    while manager.open_shells() and time.monotonic() < deadline:
        time.sleep(0.1)

    assert manager.open_shells() == 0
    with pytest.raises(WSManFaultError) as caught:
        protocol.run_command(shell_id, "ver")
    assert caught.value.wsman_fault_code == 2150858843


def test_the_shell_codepage_fault_overrides_the_requested_code_page(backend: DummyBackend) -> None:
    backend.faults.shell_codepage = 850
    protocol = pywinrm_protocol(backend)
    shell_id = protocol.open_shell(codepage=65001)
    try:
        command_id = protocol.run_command(shell_id, "chcp")
        stdout, _stderr, _code = protocol.get_command_output(shell_id, command_id)
    finally:
        protocol.close_shell(shell_id)

    assert stdout == b"Active code page: 850\r\n"


def test_the_clock_skew_fault_shifts_the_date_header(backend: DummyBackend) -> None:
    backend.faults.clock_skew_s = 3600

    answer = requests.post(http_url(backend), data=b"", timeout=10)

    skew = parsedate_to_datetime(answer.headers["Date"]).timestamp() - time.time()
    assert 3590 < skew < 3610
