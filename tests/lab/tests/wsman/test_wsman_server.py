# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The server as a process component: scale, clean stop, bind errors, throughput figures.

Timings are printed, never asserted (timing belongs in benchmarks/); run with -s or read the
captured output to see them.
"""

from __future__ import annotations

import errno
import socket
import threading
import time

import pytest
from wsman_support import (
    HTTP_PORT,
    HTTPS_PORT,
    AddressPool,
    DummyBackend,
    ServerFactory,
    pywinrm_protocol,
    pywinrm_session,
)

from exchlab.wsman import LabCA, ListenerBindError, WsmanServer


def _lab_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("exchlab-wsman")]


def _report(capsys: pytest.CaptureFixture[str], text: str) -> None:
    with capsys.disabled():
        print(f"\n[wsman figures] {text}")


def _can_bind(address: str, port: int) -> bool:
    probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        # As the lab itself binds: TIME_WAIT leftovers of closed connections do not count.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind((address, port))
        probe.listen(1)
        return True
    except OSError:
        return False
    finally:
        probe.close()


def test_four_hundred_hosts_start_listen_and_stop_cleanly(
    make_server: ServerFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    threads_before = set(threading.enumerate())
    started = time.perf_counter()
    server, backends = make_server(count=400)
    start_s = time.perf_counter() - started
    try:
        # One accept thread for all 800 listeners, not one per listener.
        assert [t.name for t in _lab_threads()] == ["exchlab-wsman-accept"]
        for backend in backends:
            for port in (HTTP_PORT, HTTPS_PORT):
                with socket.create_connection((backend.address, port), timeout=5):
                    pass
        # A real request on the last host, to see the whole chain at this scale.
        last = backends[-1]
        session = pywinrm_session(last)
        assert session.run_cmd("ver").std_out == b"ran ver\r\n"
    finally:
        stopped = time.perf_counter()
        server.stop()
        stop_s = time.perf_counter() - stopped

    _report(capsys, f"400 hosts / 800 listeners: start {start_s:.2f} s, stop {stop_s:.2f} s")
    assert _lab_threads() == []
    assert set(threading.enumerate()) <= threads_before
    assert all(_can_bind(b.address, p) for b in backends for p in (HTTP_PORT, HTTPS_PORT))


def test_a_taken_port_fails_start_with_its_address_and_binds_nothing(
    make_server: ServerFactory, address_pool: AddressPool, lab_ca: LabCA
) -> None:
    _server, (taken,) = make_server()
    free = DummyBackend("KMS-FREE", address_pool.take()[0])
    clash = DummyBackend("KMS-CLASH", taken.address)
    second = WsmanServer([free, clash], lab_ca, http_port=HTTP_PORT, https_port=HTTPS_PORT)

    with pytest.raises(ListenerBindError, match=f"{taken.address}:{HTTP_PORT}") as caught:
        second.start()

    assert isinstance(caught.value, OSError)
    assert caught.value.errno == errno.EADDRINUSE
    assert _can_bind(free.address, HTTP_PORT) and _can_bind(free.address, HTTPS_PORT)
    assert [t.name for t in _lab_threads()] == ["exchlab-wsman-accept"]


def test_stop_ends_a_receive_that_is_waiting_for_output(
    make_server: ServerFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    threads_before = set(threading.enumerate())
    server, (backend,) = make_server()
    backend.faults.operation_timeout = True  # the command never answers: Receive long-polls
    protocol = pywinrm_protocol(backend)
    shell_id = protocol.open_shell()
    command_id = protocol.run_command(shell_id, "ver")
    outcome: list[BaseException] = []

    def receive() -> None:
        try:
            protocol.get_command_output_raw(shell_id, command_id)
        except BaseException as exc:  # noqa: BLE001 - the test inspects what the client saw
            outcome.append(exc)

    client = threading.Thread(target=receive)
    client.start()
    time.sleep(0.3)
    started = time.perf_counter()
    server.stop()
    stop_s = time.perf_counter() - started
    client.join(timeout=10)

    _report(capsys, f"stop with a Receive in flight: {stop_s:.2f} s")
    assert not client.is_alive()
    assert len(outcome) == 1  # the client got an error, not a hang of OperationTimeout (20 s)
    assert _lab_threads() == []
    assert set(threading.enumerate()) <= threads_before | {threading.current_thread()}


def test_stop_closes_idle_keep_alive_connections_on_both_listeners(
    make_server: ServerFactory, lab_ca: LabCA
) -> None:
    threads_before = set(threading.enumerate())
    server, (backend,) = make_server()
    https = pywinrm_protocol(backend, "basic", lab_ca)
    http = pywinrm_protocol(backend)
    https.open_shell()
    http.open_shell()
    # Two keep-alive connections, each with a server thread blocked reading the next request.
    assert len(_lab_threads()) == 3

    started = time.perf_counter()
    server.stop()

    assert time.perf_counter() - started < 5
    assert _lab_threads() == []
    assert set(threading.enumerate()) <= threads_before


def test_a_hundred_sequential_run_cmd_calls(
    backend: DummyBackend, lab_ca: LabCA, capsys: pytest.CaptureFixture[str]
) -> None:
    figures = []

    session = pywinrm_session(backend)
    started = time.perf_counter()
    for n in range(100):
        assert session.run_cmd("echo", [str(n)]).std_out == f"ran echo {n}\r\n".encode()
    figures.append(f"pywinrm run_cmd NTLM/HTTP {time.perf_counter() - started:.2f} s")
    assert backend.counts["http"] == 800

    session = pywinrm_session(backend, "basic", lab_ca)
    started = time.perf_counter()
    for n in range(100):
        assert session.run_cmd("echo", [str(n)]).status_code == 0
    figures.append(f"pywinrm run_cmd Basic/HTTPS {time.perf_counter() - started:.2f} s")
    assert backend.counts["http"] == 800 + 500

    protocol = pywinrm_protocol(backend)
    shell_id = protocol.open_shell()
    started = time.perf_counter()
    for n in range(100):
        command_id = protocol.run_command(shell_id, "echo", [str(n)])
        assert protocol.get_command_output(shell_id, command_id)[2] == 0
        protocol.cleanup_command(shell_id, command_id)
    figures.append(f"pywinrm Protocol, one shell, NTLM/HTTP {time.perf_counter() - started:.2f} s")
    protocol.close_shell(shell_id)

    _report(capsys, "100 sequential commands: " + "; ".join(figures))
