# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Output travels byte-exact: chunking, code pages, CRLF quirks, environment, timeouts."""

from __future__ import annotations

import time

import pytest
from winrm.exceptions import WinRMOperationTimeoutError
from wsman_support import (
    EXACT_BYTES,
    DummyBackend,
    large_output,
    pypsrp_client,
    pywinrm_protocol,
    pywinrm_session,
)


def test_a_million_bytes_arrive_byte_exact_in_64_kib_receives(backend: DummyBackend) -> None:
    session = pywinrm_session(backend)

    result = session.run_cmd("big", ["1000000"])

    assert result.std_out == large_output(1_000_000).encode("ascii")
    assert result.status_code == 0
    # ceil(1,000,000 / 65,536) = 16 Receives instead of 1: 8 + 15 requests.
    assert backend.counts["http"] == 23

    client = pypsrp_client(backend)
    stdout, stderr, rc = client.execute_cmd("big 1000000")
    assert (stdout, stderr, rc) == (large_output(1_000_000), "", 0)


@pytest.mark.parametrize(
    ("codepage", "expected"),
    [
        # cp437 has é and ü but no ✓: Windows' OEM code page turns it into '?'.
        (437, b"caf\x82 \x81ber ?\r\n"),
        (65001, "café über ✓\r\n".encode("utf-8")),
    ],
)
def test_output_is_encoded_in_the_shells_code_page(
    backend: DummyBackend, codepage: int, expected: bytes
) -> None:
    protocol = pywinrm_protocol(backend)
    shell_id = protocol.open_shell(codepage=codepage)
    command_id = protocol.run_command(shell_id, "cafe")

    assert protocol.get_command_output(shell_id, command_id) == (expected, b"", 0)
    protocol.cleanup_command(shell_id, command_id)
    protocol.close_shell(shell_id)


def test_a_shell_without_a_code_page_gets_437(backend: DummyBackend) -> None:
    client = pypsrp_client(backend)

    # pypsrp's execute_cmd sends no WINRS_CODEPAGE and decodes as 437, like an en-US host.
    assert client.execute_cmd("cafe") == ("café über ?\r\n", "", 0)


def test_cr_cr_lf_tabs_and_trailing_spaces_survive(backend: DummyBackend) -> None:
    session = pywinrm_session(backend)

    assert session.run_cmd("exact").std_out == EXACT_BYTES.encode("ascii")


def test_xml_special_characters_in_command_lines_and_environment_round_trip(
    backend: DummyBackend,
) -> None:
    protocol = pywinrm_protocol(backend)
    shell_id = protocol.open_shell(env_vars={"KMS_PATH": 'C:\\Exch & "KM" <5.5>'})
    command_id = protocol.run_command(shell_id, "env", ["KMS_PATH"])
    env_out = protocol.get_command_output(shell_id, command_id)
    command_id = protocol.run_command(shell_id, 'echo a&b <c> "d" é')
    echo_out = protocol.get_command_output(shell_id, command_id)
    protocol.close_shell(shell_id)

    assert env_out == (b'KMS_PATH=C:\\Exch & "KM" <5.5>\r\n', b"", 0)
    assert backend.command_lines[-1] == 'echo a&b <c> "d" é'
    assert echo_out[0] == 'ran echo a&b <c> "d" é\r\n'.encode("cp437")


def test_a_command_longer_than_operation_timeout_still_returns(backend: DummyBackend) -> None:
    session = pywinrm_session(backend, operation_timeout_sec=1, read_timeout_sec=3)

    result = session.run_cmd("sleep", ["3"])

    assert (result.std_out, result.std_err, result.status_code) == (b"slept 3\r\n", b"", 0)
    # At least two TimedOut Receives were retried invisibly by pywinrm.
    assert backend.counts["http"] >= 10


def test_the_operation_timeout_fault_times_out_every_receive_until_the_lifetime_ends(
    backend: DummyBackend,
) -> None:
    backend.faults.operation_timeout = True
    backend.faults.command_lifetime_s = 2.5
    protocol = pywinrm_protocol(backend, operation_timeout_sec=1, read_timeout_sec=3)
    shell_id = protocol.open_shell()
    command_id = protocol.run_command(shell_id, "reg query HKLM\\SOFTWARE")

    for _attempt in range(2):
        with pytest.raises(WinRMOperationTimeoutError):
            protocol.get_command_output_raw(shell_id, command_id)
    stdout, stderr, exit_code = protocol.get_command_output(shell_id, command_id)
    protocol.close_shell(shell_id)

    # Killed at the end of its lifetime: nothing printed, exit code 1, never reached the host.
    assert (stdout, stderr, exit_code) == (b"", b"", 1)
    assert backend.command_lines == []
    assert backend.counts["commands"] == 1


def test_a_command_that_outlives_its_lifetime_is_killed(backend: DummyBackend) -> None:
    backend.faults.command_lifetime_s = 1.0
    session = pywinrm_session(backend)

    started = time.monotonic()
    result = session.run_cmd("sleep", ["30"])

    assert (result.std_out, result.status_code) == (b"", 1)
    assert time.monotonic() - started < 10
