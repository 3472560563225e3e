# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""exchops.kms.winrm_doctor as the action plugin behaves today: it refuses bad options, but
reports every other problem (another connection plugin, a closed port, each WinRS failure) as
a line of its result, never as unreachable. The doctor's own network steps meet a local
listener that answers WS-Man's Identify with the 401 Windows sends; the shell answers `chcp` and
the PATH lookup as the lab does (tests/lab/tests/windows/test_doctor_support.py)."""

from __future__ import annotations

import http.server
import socket
import threading
import typing as t

import pytest

PASSWORD = "HZGYYHACWLQACTI"  # the example KM Server startup password of KB Q184420
TOOLS_2003 = (
    "reg.exe=C:\\WINDOWS\\system32\\reg.exe\r\nwmic.exe=C:\\WINDOWS\\system32\\wbem\\WMIC.exe\r\n"
)
TOOLS_2000 = "reg.exe=C:\\WINNT\\system32\\reg.exe\r\nwmic.exe=\r\n"
FINE = "kms02: WinRM connection, logon, shell and tools are fine."
ANY_FAILURE = "Run the task with -vvv for the WinRM exchange, and fix what the message names."
OPTIONS = (
    "Its options are fail_on_problems, timeout (ansible-doc exchops.kms.winrm_doctor); fix the "
    "task and run it again. Nothing was changed."
)


class _Identify(http.server.BaseHTTPRequestHandler):
    """Refuses WS-Man's unauthenticated Identify with the 401 and scheme Windows sends."""

    def do_POST(self) -> None:  # pylint: disable=invalid-name # http.server's naming
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.send_response(401)
        self.send_header("WWW-Authenticate", "Negotiate")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: t.Any) -> None:  # pylint: disable=arguments-differ
        pass


@pytest.fixture(scope="module")
def listener() -> t.Iterator[dict[str, t.Any]]:
    """The winrm settings of a host whose WinRM listener is local, over HTTP."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Identify)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield {"remote_addr": "127.0.0.1", "port": server.server_address[1], "scheme": "http"}
    server.shutdown()
    server.server_close()


@pytest.fixture
def windows(fake_winrs: t.Any) -> t.Callable[..., t.Any]:
    """windows(codepage=65001, tools=TOOLS_2003): what the host's shell answers the doctor."""

    def script(codepage: int = 65001, tools: str = TOOLS_2003) -> t.Any:
        fake_winrs.on_line("^chcp$", f"Active code page: {codepage}\r\n")
        fake_winrs.on_line("^for %I in ", tools)
        return fake_winrs

    return script


def problem_ids(outcome: t.Any) -> list[str]:
    return [problem["id"] for problem in outcome.result["problems"]]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param(
            {"timout": 30},
            "kms02: exchops.kms.winrm_doctor: unknown option 'timout' (did you mean 'timeout'?). "
            f"{OPTIONS}",
            id="typo",
        ),
        pytest.param(
            {"password": PASSWORD},
            f"kms02: exchops.kms.winrm_doctor: unknown option 'password'. {OPTIONS}",
            id="password as an option",
        ),
        pytest.param(
            {"timeout": "15s"},
            f"kms02: exchops.kms.winrm_doctor: timeout is '15s'; it must be an integer. {OPTIONS}",
            id="wrong type",
        ),
        pytest.param(
            {"timeout": 0},
            "kms02: timeout is 0; it must be more than 0 seconds. Set timeout to more than 0 seconds, "
            "e.g. its default 15. Nothing was changed.",
            id="0",
        ),
    ],
)
def test_bad_options_are_refused_naming_the_host_and_the_option(
    refused: t.Callable[..., str], args: dict[str, t.Any], message: str
) -> None:
    assert refused("winrm_doctor", args, "kms02: ", secret=PASSWORD) == message


@pytest.mark.parametrize("fail_on_problems", [True, False])
def test_another_connection_plugin_is_a_problem_not_a_refusal(
    run_action: t.Callable[..., t.Any], fake_winrs: t.Any, fail_on_problems: bool
) -> None:
    outcome = run_action("winrm_doctor", {"fail_on_problems": fail_on_problems}, connection="ssh")
    line = (
        "kms02: the host uses ansible_connection=ssh, not winrm. Fix: Set ansible_connection: "
        "winrm and the host's ansible_winrm_* settings."
    )
    assert (outcome.raised, outcome.seen) == (False, (False, fail_on_problems, False))
    assert (problem_ids(outcome), outcome.result["lines"], outcome.result["ok"]) == (
        ["not_winrm_connection"],
        [line],
        False,
    )
    # pinned: with fail_on_problems=false there is no msg at all.
    assert outcome.result.get("msg") == (line if fail_on_problems else None)
    assert fake_winrs.shells == []


@pytest.mark.parametrize("check_mode", [False, True])
def test_a_healthy_host_is_fine_after_chcp_and_the_path_lookup(
    run_action: t.Callable[..., t.Any],
    windows: t.Callable[..., t.Any],
    listener: dict[str, t.Any],
    check_mode: bool,
) -> None:
    host = windows()
    outcome = run_action("winrm_doctor", options=listener, check_mode=check_mode)
    assert outcome.result == {
        "changed": False,
        "ok": True,
        "problems": [],
        "lines": [],
        "msg": FINE,
    }
    assert host.lines == ["chcp", "for %I in (reg.exe wmic.exe) do @echo %I=%~$PATH:I"]
    (shell,) = host.shells
    assert (shell.details["send_cbt"], shell.details["target"].command_timeout_sec) == (True, 15)


@pytest.mark.parametrize("fail_on_problems", [True, False])
def test_a_windows_2000_host_in_another_code_page_has_two_problems(
    run_action: t.Callable[..., t.Any],
    windows: t.Callable[..., t.Any],
    listener: dict[str, t.Any],
    fail_on_problems: bool,
) -> None:
    windows(codepage=850, tools=TOOLS_2000)
    outcome = run_action("winrm_doctor", {"fail_on_problems": fail_on_problems}, options=listener)
    assert (outcome.raised, outcome.seen) == (False, (False, fail_on_problems, False))
    assert problem_ids(outcome) == ["wrong_codepage", "wmic_missing"]
    if fail_on_problems:
        assert outcome.msg == "\n".join(outcome.result["lines"])
    assert outcome.result["lines"][0] == (
        "kms02: the host's shells run in code page 850 although WinRS asked for 65001: names "
        "outside ASCII in reg, sc and wmic output come out garbled. Fix: On the host, remove the "
        "chcp from the AutoRun value of HKLM\\SOFTWARE\\Microsoft\\Command Processor (and "
        "HKCU's), which overrides the code page WinRS sets."
    )


@pytest.mark.parametrize(
    ("kind", "problem"),
    [
        ("connection_refused", "winrm_error"),
        ("connection_reset", "winrm_error"),
        pytest.param(
            "tls_untrusted",
            "winrm_error",
            marks=pytest.mark.xfail(
                strict=True,
                reason="bug: a logon that fails with WinrsTlsError after the doctor's own TLS "
                "check passed (e.g. requests trusting another CA store than ssl) matches no row, "
                "so the doctor says the host is fine",
            ),
        ),
        ("credentials", "logon_refused"),
        ("read_timeout", "winrm_error"),
        ("wsman_fault", "winrm_error"),
        ("shell_quota", "shell_quota"),
        ("http_error", "winrm_error"),
        ("winrm_error", "winrm_error"),
        ("unexpected", "winrm_error"),
    ],
)
def test_each_winrs_failure_of_the_logon_is_one_problem_never_unreachable(
    run_action: t.Callable[..., t.Any],
    fake_winrs: t.Any,
    winrs_error: t.Callable[..., Exception],
    listener: dict[str, t.Any],
    kind: str,
    problem: str,
) -> None:
    error = winrs_error(kind, doing="opening a shell", **listener)
    fake_winrs.refuse_shell(error)
    outcome = run_action("winrm_doctor", options=listener)
    assert (outcome.raised, outcome.seen) == (False, (False, True, False))
    assert problem_ids(outcome) == [problem]
    if problem == "winrm_error":
        # The shell's text without its label, then the generic fix.
        assert outcome.msg == f"kms02: {str(error).split(': ', 1)[1]} Fix: {ANY_FAILURE}"


def test_a_closed_port_is_named_and_no_shell_is_opened(
    run_action: t.Callable[..., t.Any], fake_winrs: t.Any
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    options = {"remote_addr": "127.0.0.1", "port": port, "scheme": "http"}
    outcome = run_action("winrm_doctor", options=options)
    assert (outcome.raised, outcome.seen, problem_ids(outcome)) == (
        False,
        (False, True, False),
        ["port_unreachable"],
    )
    assert outcome.msg.startswith(
        f"kms02: cannot open a TCP connection to 127.0.0.1:{port} (connection refused). Fix: "
    )
    assert fake_winrs.shells == []
