# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The WinRM doctor against the lab: one fault per test, each named in one line with its fix.

Fleet doctor.yml holds one host per fault the lab injects; the faults that live in the
controller's settings are one changed connection variable on a clean host (`override`).
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import ANSIBLE_BIN, RunModule, RunningLab, lab_unchanged, override, run_tool, shown_in

DOCTOR = "exchops.kms.winrm_doctor"
# diagnose(host, **connection variables to override) -> the problems found, by id
Diagnose = Callable[..., dict[str, dict]]
# doctor_playbook(limit) -> the result of `ansible-playbook exchops.kms.doctor -l LIMIT`
RunDoctor = Callable[[str], subprocess.CompletedProcess[str]]


@pytest.fixture(scope="module")
def lab(lab_factory) -> RunningLab:
    return lab_factory("doctor.yml")


@pytest.fixture
def diagnose(lab: RunningLab, ansible_module: RunModule, tmp_path: Path) -> Diagnose:
    """The doctor's problems on one host, by id, after checking each is one line."""

    def run(host: str, **variables: object) -> dict[str, dict]:
        extra = override(tmp_path, host, **variables) if variables else []
        result, results = ansible_module(lab, host, DOCTOR, "", *extra)
        answer = results[host]
        assert answer["changed"] is False
        assert answer["ok"] is (not answer["problems"]), answer
        for problem, line in zip(answer["problems"], answer["lines"]):
            assert problem["host"] == host
            assert (
                "\n" not in line and line == f"{host}: {problem['message']} Fix: {problem['fix']}"
            )
            # the failure message shows every line
            assert shown_in(line, result.stdout + result.stderr), line
        return {problem["id"]: problem for problem in answer["problems"]}

    return run


def assert_problem(
    problems: dict[str, dict], problem_id: str, message: str | None, fix: str | None
) -> None:
    """The problem is among those found, and its message and fix read as expected: the text
    itself, where "..." stands for any text (as in doctest); None leaves that part unchecked."""
    assert problem_id in problems, sorted(problems)
    for part, expected in (("message", message), ("fix", fix)):
        if expected is None:
            continue
        pattern = ".*".join(re.escape(piece) for piece in expected.split("..."))
        found = problems[problem_id][part]
        assert re.fullmatch(pattern, found, re.DOTALL), f"{problem_id}'s {part} is {found!r}"


@pytest.fixture
def doctor_playbook(lab: RunningLab, ansible_env: dict[str, str], tmp_path: Path) -> RunDoctor:
    """`ansible-playbook exchops.kms.doctor` on the hosts a limit (-l) names."""

    def run(limit: str) -> subprocess.CompletedProcess[str]:
        return run_tool(
            ["ansible-playbook", "exchops.kms.doctor", "-i", str(lab.inventory), "-l", limit],
            ansible_env,
            tmp_path,
        )

    return run


def test_a_healthy_host_has_no_problem_and_the_playbook_exits_0(
    lab: RunningLab, diagnose: Diagnose, doctor_playbook: RunDoctor
) -> None:
    with lab_unchanged(lab, "healthy"):
        result = doctor_playbook("healthy")

        assert result.returncode == 0, result.stdout + result.stderr
        assert "healthy                    : ok=1    changed=0" in result.stdout
        assert diagnose("healthy") == {}


def test_the_playbook_prints_one_line_per_problem_and_exits_2(
    doctor_playbook: RunDoctor,
) -> None:
    result = doctor_playbook("win2000:cp850")

    assert result.returncode == 2, result.stdout + result.stderr
    assert "\"win2000: wmic.exe is not on the host's PATH" in result.stdout
    assert "\"cp850: the host's shells run in code page 850" in result.stdout


def test_basic_with_a_domain_account_is_named_with_ntlm_as_the_fix(diagnose: Diagnose) -> None:
    problems = diagnose("basic-https", ansible_user="LAB\\labadmin")

    assert_problem(
        problems,
        "basic_domain_account",
        "ansible_user is the domain account 'LAB\\labadmin', but Windows' Basic authentication "
        "only accepts local accounts.",
        "Set ansible_winrm_transport=ntlm for the domain account...",
    )


def test_ntlm_works_when_openssl_has_no_md4_through_pyspnegos_own(
    diagnose: Diagnose, ansible_env: dict[str, str], tmp_path: Path
) -> None:
    # An openssl.cnf that loads only the default provider: no legacy provider, so no MD4 in
    # hashlib. pyspnego 0.5.2+ hashes NTLM itself, so the logon must still work and the
    # doctor must not report ntlm_md4_missing.
    config = tmp_path / "openssl-no-legacy.cnf"
    config.write_text(
        "openssl_conf = openssl_init\n[openssl_init]\nproviders = provider_sect\n"
        "[provider_sect]\ndefault = default_sect\n[default_sect]\nactivate = 1\n",
        encoding="utf-8",
    )
    ansible_env["OPENSSL_CONF"] = str(config)  # for every command of this test, the doctor's too
    probe = run_tool(
        [str(ANSIBLE_BIN / "python"), "-c", "import hashlib; hashlib.new('md4')"],
        ansible_env,
        tmp_path,
    )
    assert probe.returncode != 0 and "unsupported hash type md4" in probe.stderr

    assert diagnose("healthy") == {}


# One fault per case: the host and the connection variables that bring it, then the one problem
# the doctor finds, with its message and fix (see assert_problem; None leaves that part unchecked).
@pytest.mark.parametrize(
    ("host", "variables", "problem_id", "message", "fix"),
    [
        pytest.param(
            "healthy",
            {"ansible_winrm_transport": "basic", "ansible_user": "labadmin"},
            "basic_over_http",
            "...would send the password in clear text...",
            "Set ansible_winrm_scheme=https...",
            id="basic over plain http is named with the scheme to set",
        ),
        pytest.param(
            "healthy",
            {"ansible_winrm_message_encryption": "never"},
            "unencrypted_http",
            None,
            "Set ansible_winrm_message_encryption=auto...",
            id="http without message encryption is named and not blamed on the password",
        ),
        pytest.param(
            "ntlm-https",
            {"ansible_winrm_ca_trust_path": ""},
            "ca_not_trusted",
            "the host's WinRM certificate is not trusted by the controller (unable to get local "
            "issuer certificate).",
            "Set ansible_winrm_ca_trust_path to the PEM file of the CA that issued it.",
            id="an untrusted CA is named with ansible_winrm_ca_trust_path",
        ),
        pytest.param(
            "ntlm-https",
            {"ansible_winrm_send_cbt": False},
            "channel_binding_refused",
            "...CbtHardeningLevel=Strict...",
            "Remove ansible_winrm_send_cbt (or set it to true).",
            id="a channel binding token left out is named when the host requires it",
        ),
        pytest.param(
            "cp850",
            {},
            "wrong_codepage",
            "the host's shells run in code page 850 although WinRS asked for 65001...",
            "...Command Processor...",
            id="a shell code page other than 65001 or 437 is named",
        ),
        pytest.param(
            "shell-quota",
            {},
            "shell_quota",
            "...MaxShellsPerUser (WS-Man fault 2150859173)...",
            '...winrm set winrm/config/winrs @{MaxShellsPerUser="30"}.',
            id="the shell quota fault names MaxShellsPerUser",
        ),
        pytest.param(
            "op-quota",
            {},
            "operation_quota",
            "...MaxConcurrentOperationsPerUser (WS-Man fault 2150859174)...",
            '...winrm set winrm/config/service @{MaxConcurrentOperationsPerUser="1500"}.',
            id="the operation quota fault names MaxConcurrentOperationsPerUser",
        ),
        pytest.param(
            "healthy",
            {"ansible_winrm_operation_timeout_sec": 20, "ansible_winrm_read_timeout_sec": 20},
            "timeouts_inverted",
            "ansible_winrm_read_timeout_sec (20) is not more than ansible_winrm_operation_timeout_sec "
            "(20)...",
            "Set ansible_winrm_read_timeout_sec=30 (always above the operation timeout).",
            id="a read timeout not above the operation timeout is named",
        ),
        # Real: this controller's Python has no pykerberos, so pywinrm cannot do Kerberos here.
        pytest.param(
            "healthy",
            {"ansible_winrm_transport": "kerberos"},
            "auth_library_missing",
            "ansible_winrm_transport=kerberos needs pywinrm[kerberos], which is not installed...",
            "Run pip install 'pywinrm[kerberos]'...",
            id="kerberos without its library names the pip requirement",
        ),
        pytest.param(
            "win2000",
            {},
            "wmic_missing",
            "wmic.exe is not on the host's PATH...",
            None,
            id="a Windows 2000 host without wmic is named",
        ),
    ],
)
def test_a_fault_is_named_alone_with_its_fix(
    diagnose: Diagnose,
    host: str,
    variables: dict[str, object],
    problem_id: str,
    message: str | None,
    fix: str | None,
) -> None:
    problems = diagnose(host, **variables)

    assert list(problems) == [problem_id]
    assert_problem(problems, problem_id, message, fix)


# As above, where the message names the host's address ({address}).
@pytest.mark.parametrize(
    ("host", "variables", "problem_id", "message", "fix"),
    [
        pytest.param(
            "wrong-name",
            {},
            "certificate_name_mismatch",
            "the host's WinRM certificate is not issued to {address} (IP address mismatch...",
            "Set ansible_host to a name the certificate carries...",
            id="a certificate for another name is a name mismatch, not an untrusted CA",
        ),
        pytest.param(
            "healthy",
            {"ansible_port": 35999},
            "port_unreachable",
            "cannot open a TCP connection to {address}:35999 (connection refused).",
            "...winrm enumerate winrm/config/listener...",
            id="a port where nothing listens is named with the listener check",
        ),
    ],
)
def test_a_fault_at_the_hosts_address_is_named_alone_with_its_fix(
    lab: RunningLab,
    diagnose: Diagnose,
    host: str,
    variables: dict[str, object],
    problem_id: str,
    message: str,
    fix: str,
) -> None:
    problems = diagnose(host, **variables)
    address = lab.show(host)["address"]

    assert list(problems) == [problem_id]
    assert_problem(problems, problem_id, message.format(address=address), fix)


def test_kerberos_to_a_host_whose_clock_is_an_hour_ahead_names_the_skew(
    diagnose: Diagnose,
) -> None:
    problems = diagnose("skewed", ansible_winrm_transport="kerberos")

    assert sorted(problems) == ["auth_library_missing", "kerberos_clock_skew"]
    message = problems["kerberos_clock_skew"]["message"]
    skew = int(message.split("clock is ")[1].split(" s ")[0])
    assert 3590 <= skew <= 3610 and "ahead of the controller's" in message
    assert_problem(problems, "kerberos_clock_skew", None, "...w32tm /resync...")
