# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""WinRS Send delivers standard input to the running command, as pywinrm sends it."""

from __future__ import annotations

import base64
import logging
import time
from collections.abc import Callable

import pytest
import xmltodict
from winrm.exceptions import WSManFaultError
from winrm.protocol import Protocol
from wsman_support import PASSWORD, DummyBackend, pywinrm_protocol

from exchlab.wsman import LabCA

SHELL_RESOURCE = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/cmd"
SEND_ACTION = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/Send"


def _send_raw_stream(protocol: Protocol, shell_id: str, command_id: str, text: str) -> None:
    """A Send whose rsp:Stream holds TEXT as it is (pywinrm's own send_command_input always
    base64-encodes)."""
    header = protocol.build_wsman_header(SEND_ACTION, SHELL_RESOURCE, shell_id)
    request = {"env:Envelope": header}
    stream = request["env:Envelope"].setdefault("env:Body", {}).setdefault("rsp:Send", {})
    stream["rsp:Stream"] = {
        "@xmlns:rsp": "http://schemas.microsoft.com/wbem/wsman/1/windows/shell",
        "@Name": "stdin",
        "@CommandId": command_id,
        "@End": "true",
        "#text": text,
    }
    protocol.send_message(xmltodict.unparse(request))


def _wait_for(condition: Callable[[], bool], timeout_s: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return condition()


@pytest.mark.parametrize("https", [False, True], ids=["ntlm over http", "basic over https"])
def test_pywinrm_send_command_input_reaches_the_command_reading_stdin(
    backend: DummyBackend, lab_ca: LabCA, https: bool
) -> None:
    protocol = pywinrm_protocol(backend, "basic", lab_ca) if https else pywinrm_protocol(backend)
    shell_id = protocol.open_shell()
    command_id = protocol.run_command(shell_id, "stdin", ["10"])
    protocol.send_command_input(shell_id, command_id, b"Lab-Passw0rd\r\n", end=True)
    output = protocol.get_command_output(shell_id, command_id)
    protocol.cleanup_command(shell_id, command_id)
    protocol.close_shell(shell_id)

    assert output == (b"14 bytes: Lab-Passw0rd\r\n", b"", 0)
    assert backend.stdin_reads == [b"Lab-Passw0rd\r\n"]


def test_input_sent_in_pieces_arrives_whole_once_the_end_is_sent(backend: DummyBackend) -> None:
    protocol = pywinrm_protocol(backend)
    shell_id = protocol.open_shell()
    command_id = protocol.run_command(shell_id, "stdin", ["10"])
    protocol.send_command_input(shell_id, command_id, b"first line\r\n")
    protocol.send_command_input(shell_id, command_id, "second line\r\n")
    protocol.send_command_input(shell_id, command_id, b"", end=True)
    output = protocol.get_command_output(shell_id, command_id)
    protocol.close_shell(shell_id)

    assert output == (b"25 bytes: first line\r\nsecond line\r\n", b"", 0)


def test_a_command_whose_input_never_ends_reads_what_came_when_its_wait_ends(
    backend: DummyBackend,
) -> None:
    protocol = pywinrm_protocol(backend)
    shell_id = protocol.open_shell()
    command_id = protocol.run_command(shell_id, "stdin", ["0.5"])
    protocol.send_command_input(shell_id, command_id, b"abc")
    output = protocol.get_command_output(shell_id, command_id)
    protocol.close_shell(shell_id)

    assert output == (b"3 bytes: abc", b"", 0)


def test_a_command_nobody_sends_input_to_reads_nothing(backend: DummyBackend) -> None:
    protocol = pywinrm_protocol(backend)
    shell_id = protocol.open_shell()
    command_id = protocol.run_command(shell_id, "stdin", ["0.2"])
    output = protocol.get_command_output(shell_id, command_id)
    protocol.close_shell(shell_id)

    assert output == (b"0 bytes: ", b"", 0)


def test_terminating_a_command_stops_its_wait_for_input(backend: DummyBackend) -> None:
    protocol = pywinrm_protocol(backend)
    shell_id = protocol.open_shell()
    command_id = protocol.run_command(shell_id, "stdin", ["60"])
    started = time.monotonic()
    protocol.cleanup_command(shell_id, command_id)

    assert _wait_for(lambda: backend.stdin_reads == [b""])
    assert time.monotonic() - started < 10
    protocol.close_shell(shell_id)


def test_standard_input_is_logged_by_length_never_by_content(
    backend: DummyBackend, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="exchlab.wsman")
    protocol = pywinrm_protocol(backend)
    shell_id = protocol.open_shell()
    command_id = protocol.run_command(shell_id, "stdin", ["10"])
    protocol.send_command_input(shell_id, command_id, PASSWORD.encode("ascii"), end=True)
    protocol.get_command_output(shell_id, command_id)
    protocol.close_shell(shell_id)

    assert f"{len(PASSWORD)} bytes of standard input, end of stream" in caplog.text
    assert PASSWORD not in caplog.text
    assert base64.b64encode(PASSWORD.encode("ascii")).decode("ascii") not in caplog.text


def test_input_that_is_not_base64_is_refused_and_delivers_nothing(backend: DummyBackend) -> None:
    protocol = pywinrm_protocol(backend)
    shell_id = protocol.open_shell()
    command_id = protocol.run_command(shell_id, "stdin", ["0.5"])

    with pytest.raises(WSManFaultError) as refused:
        _send_raw_stream(protocol, shell_id, command_id, "not base64 at all!")
    output = protocol.get_command_output(shell_id, command_id)
    protocol.close_shell(shell_id)

    assert refused.value.wsman_fault_code == 87
    assert output == (b"0 bytes: ", b"", 0)


def test_input_after_the_end_of_the_stream_is_dropped(backend: DummyBackend) -> None:
    protocol = pywinrm_protocol(backend)
    shell_id = protocol.open_shell()
    command_id = protocol.run_command(shell_id, "stdin", ["10"])
    protocol.send_command_input(shell_id, command_id, b"once", end=True)
    protocol.send_command_input(shell_id, command_id, b"twice", end=True)
    output = protocol.get_command_output(shell_id, command_id)
    protocol.close_shell(shell_id)

    assert output == (b"4 bytes: once", b"", 0)
