# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""cmd.exe command-line semantics: operators, quotes, redirections, %VAR%, IF, FOR, ERRORLEVEL."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from exchlab.exchange import build_exchange_host
from exchlab.state import HostState
from exchlab.windows.cmdline import CmdSyntaxError, parse, split_arguments
from exchlab.windows.shell import CommandResult, run_command

Run = Callable[[HostState, str], CommandResult]
MISSING_KEY = "ERROR: The system was unable to find the specified registry key or value.\r\n"
NOPE = r"reg query HKLM\SOFTWARE\Nope"


@pytest.mark.parametrize(
    ("line", "stdout", "stderr", "exit_code"),
    [
        # & runs both; ECHO keeps the space before the operator (cmd.exe prints "==A== ").
        ("echo ==A== & echo ==B==", "==A== \r\n==B==\r\n", "", 0),
        ("echo a&&echo b", "a\r\nb\r\n", "", 0),
        (f"{NOPE} && echo yes", "", MISSING_KEY, 1),
        # || runs on failure; ECHO leaves ERRORLEVEL as reg set it.
        (f"{NOPE} || echo fallback", "fallback\r\n", MISSING_KEY, 1),
        ("echo ok || echo never", "ok \r\n", "", 0),
        (f"{NOPE} 2>nul", "", "", 1),
        (f"{NOPE} 2>&1", MISSING_KEY, "", 1),
        (f"{NOPE} >nul 2>&1", "", "", 1),
        # Order matters: 2>&1 copies stdout before >nul moves it.
        (f"{NOPE} 2>&1 >nul", MISSING_KEY, "", 1),
        ("echo hidden 1>nul", "", "", 0),
        ("echo a2>nul", "", "", 0),
        (
            "wmic os get Version /value < NUL",
            "\r\r\n\r\r\nVersion=10.0.14393\r\r\n\r\r\n\r\r\n\r\r\n",
            "",
            0,
        ),
        # Quotes make operators literal; ^ escapes outside quotes.
        ('echo "a & b"', '"a & b"\r\n', "", 0),
        ("echo a ^& b", "a & b\r\n", "", 0),
        ("echo %COMPUTERNAME% %SystemDrive% %SystemRoot%", "KMS-OLD C: C:\\Windows\r\n", "", 0),
        ("echo %NOT_DEFINED%", "%NOT_DEFINED%\r\n", "", 0),
        ("echo %SystemRoot:~3%", "Windows\r\n", "", 0),
        # %ERRORLEVEL% is expanded before the line runs.
        (f"{NOPE} 2>nul & echo %ERRORLEVEL%", "0\r\n", "", 1),
        # VER clears ERRORLEVEL on success, ECHO never does.
        (f"{NOPE} 2>nul & ver", "\r\nMicrosoft Windows [Version 10.0.14393]\r\n", "", 0),
        (f"{NOPE} 2>nul & echo done", "done\r\n", "", 1),
        (
            "nosuch & echo after",
            "after\r\n",
            "'nosuch' is not recognized as an internal or "
            "external command,\r\noperable program or batch file.\r\n",
            9009,
        ),
        ("exit /b 3", "", "", 3),
        ("echo before & exit 5 & echo never", "before \r\n", "", 5),
        ("echo.", "\r\n", "", 0),
        ("echo", "ECHO is on.\r\n", "", 0),
        # SET keeps the space before & in the value.
        ("set LAB_X=bar & set LAB_X", "LAB_X=bar \r\n", "", 0),
        ("set LAB_NOPE", "", "Environment variable LAB_NOPE not defined\r\n", 1),
        ("hostname", "KMS-OLD\r\n", "", 0),
        (r"cd /d C:\EXCHSRVR & cd", "C:\\EXCHSRVR\r\n", "", 0),
        (r"cd C:\nope", "", "The system cannot find the path specified.\r\n", 1),
        # IF without parentheses takes the rest of the line, & included.
        (r"if exist C:\EXCHSRVR\KMSDATA\Kmsmdb.edb echo yes", "yes\r\n", "", 0),
        (r"if exist C:\nope echo a & echo b", "", "", 0),
        (r"if not exist C:\nope echo missing", "missing\r\n", "", 0),
        (r"if exist C:\nope (echo a) else (echo b)", "b\r\n", "", 0),
        (r'if exist "C:\EXCHSRVR\KMSDATA\" echo folder', "folder\r\n", "", 0),
        (r"if exist C:\EXCHSRVR\KMSDATA\*.edb echo edb", "edb\r\n", "", 0),
        ('if /i "%COMPUTERNAME%"=="kms-old" echo same', "same\r\n", "", 0),
        (f"{NOPE} 2>nul & if errorlevel 1 echo failed", "failed\r\n", "", 1),
        ("(echo a & echo b) 2>&1", "a \r\nb\r\n", "", 0),
        (
            r"for %f in (C:\EXCHSRVR\KMSDATA\*) do @echo %~nxf",
            "edb.chk\r\nedb.log\r\nKmsmdb.edb\r\n",
            "",
            0,
        ),
        (r"for %f in (C:\EXCHSRVR\KMSDATA\edb.*) do @echo %~zf", "8192\r\n1048576\r\n", "", 0),
        ('cmd /c "echo a & echo b"', "a \r\nb\r\n", "", 0),
        (r"C:\Windows\system32\hostname.exe", "KMS-OLD\r\n", "", 0),
        (r'"C:\Windows\system32\hostname"', "KMS-OLD\r\n", "", 0),
        (r"C:\nodir\x.exe", "", "The system cannot find the path specified.\r\n", 3),
        (
            r"C:\Windows\nosuch.exe",
            "",
            "'C:\\Windows\\nosuch.exe' is not recognized as an "
            "internal or external command,\r\noperable program or batch file.\r\n",
            9009,
        ),
        ("& echo x", "", "& was unexpected at this time.\r\n", 255),
        ("(echo a", "", "The syntax of the command is incorrect.\r\n", 1),
        ("rem nothing & echo not run", "", "", 0),
        ("", "", "", 0),
    ],
)
def test_command_lines_behave_as_cmd_exe(
    run: Run, sp3: HostState, line: str, stdout: str, stderr: str, exit_code: int
) -> None:
    result = run(sp3, line)
    assert (result.stdout, result.stderr, result.exit_code) == (stdout, stderr, exit_code)


def test_the_shell_environment_is_expanded_and_overrides_the_host(sp3: HostState) -> None:
    result = run_command(sp3, "echo %LAB_VAR% %COMPUTERNAME%", {"LAB_VAR": "from winrs"})
    assert result.stdout == "from winrs KMS-OLD\r\n"
    assert run_command(sp3, "set lab_var", {"LAB_VAR": "x"}).stdout == "LAB_VAR=x\r\n"


def test_redirection_to_a_file_creates_it_and_appends(run: Run, sp3: HostState) -> None:
    # The space after the file name still belongs to ECHO's text, as in cmd.exe.
    result = run(sp3, r"echo one> C:\out.txt & echo two>>C:\out.txt & type C:\out.txt")
    assert result.stdout == "one \r\ntwo \r\n"
    assert sp3.fs.file_entry(r"C:\out.txt") is not None


def test_a_pipe_feeds_stdout_to_the_next_command(run: Run, sp3_running: HostState) -> None:
    result = run(sp3_running, "echo y| net stop MSExchangeDS")
    assert "Do you want to continue this operation? (Y/N) [N]: y\r\n" in result.stdout
    assert result.exit_code == 0
    assert sp3_running.services["MSExchangeKMS"].state == "STOPPED"


def test_a_program_missing_from_the_era_is_not_recognized(run: Run) -> None:
    host = build_exchange_host("E55-W2K", "127.0.0.6", "5.5", 3, os="2000")
    result = run(host, "wmic datafile get Version /value < NUL")
    assert result.exit_code == 9009
    assert result.stderr.startswith("'wmic' is not recognized")
    assert run(host, "ver").stdout == "\r\nMicrosoft Windows 2000 [Version 5.00.2195]\r\n"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a b  c", ["a", "b", "c"]),
        ('"a b" c', ["a b", "c"]),
        ('a"b c"d', ["ab cd"]),
        (r'"C:\dir\\" x', ["C:\\dir\\", "x"]),
        (r"a\\\"b", ['a\\"b']),
        (r"C:\EXCHSRVR\BIN", ["C:\\EXCHSRVR\\BIN"]),
        ('"a""b"', ['a"b']),
        ('""', [""]),
        ("", []),
    ],
)
def test_arguments_split_like_commandlinetoargvw(text: str, expected: list[str]) -> None:
    assert split_arguments(text) == expected


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("& echo", "& was unexpected at this time."),
        ("echo a && ", "The syntax of the command is incorrect."),
        ("echo a > ", "The syntax of the command is incorrect."),
        ("if exist", "The syntax of the command is incorrect."),
        ("for %f in (a) echo %f", "echo was unexpected at this time."),
    ],
)
def test_malformed_lines_raise_cmds_own_message(line: str, message: str) -> None:
    with pytest.raises(CmdSyntaxError, match=message.replace(".", r"\.")):
        parse(line)
