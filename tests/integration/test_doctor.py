# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The WinRM doctor against the lab: one fault per test, each named in one line with its fix.

Fleet doctor.yml holds one host per fault the lab injects; the faults that live in the
controller's settings are one changed connection variable on a clean host (`override`).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import BIN, RunModule, RunningLab, lab_unchanged, override, run_tool

DOCTOR = "exchops.kms.winrm_doctor"
# diagnose(host, **connection variables to override) -> the problems found, by id
Diagnose = Callable[..., dict[str, dict]]


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
            assert line in result.stdout + result.stderr  # the failure message shows every line
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


def test_a_healthy_host_has_no_problem_and_the_playbook_exits_0(
    lab: RunningLab, diagnose: Diagnose, ansible_env: dict[str, str], tmp_path: Path
) -> None:
    with lab_unchanged(lab, "healthy"):
        result = run_tool(
            ["ansible-playbook", "exchops.kms.doctor", "-i", str(lab.inventory), "-l", "healthy"],
            ansible_env,
            tmp_path,
        )

        assert result.returncode == 0, result.stdout + result.stderr
        assert "healthy                    : ok=1    changed=0" in result.stdout
        assert diagnose("healthy") == {}


def test_the_playbook_prints_one_line_per_problem_and_exits_2(
    lab: RunningLab, ansible_env: dict[str, str], tmp_path: Path
) -> None:
    result = run_tool(
        ["ansible-playbook", "exchops.kms.doctor", "-i", str(lab.inventory), "-l", "win2000:cp850"],
        ansible_env,
        tmp_path,
    )

    assert result.returncode == 2, result.stdout + result.stderr
    assert "\"win2000: wmic.exe is not on the host's PATH" in result.stdout
    assert "\"cp850: the host's shells run in code page 850" in result.stdout


def test_basic_over_plain_http_is_named_with_the_scheme_to_set(diagnose: Diagnose) -> None:
    problems = diagnose("healthy", ansible_winrm_transport="basic", ansible_user="labadmin")

    assert list(problems) == ["basic_over_http"]
    assert_problem(
        problems,
        "basic_over_http",
        "...would send the password in clear text...",
        "Set ansible_winrm_scheme=https...",
    )


def test_basic_with_a_domain_account_is_named_with_ntlm_as_the_fix(diagnose: Diagnose) -> None:
    problems = diagnose("basic-https", ansible_user="LAB\\labadmin")

    assert_problem(
        problems,
        "basic_domain_account",
        "ansible_user is the domain account 'LAB\\labadmin', but Windows' Basic authentication "
        "only accepts local accounts.",
        "Set ansible_winrm_transport=ntlm for the domain account...",
    )


def test_http_without_message_encryption_is_named_and_not_blamed_on_the_password(
    diagnose: Diagnose,
) -> None:
    problems = diagnose("healthy", ansible_winrm_message_encryption="never")

    assert list(problems) == ["unencrypted_http"]
    assert_problem(
        problems, "unencrypted_http", None, "Set ansible_winrm_message_encryption=auto..."
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
        [str(BIN / "python"), "-c", "import hashlib; hashlib.new('md4')"], ansible_env, tmp_path
    )
    assert probe.returncode != 0 and "unsupported hash type md4" in probe.stderr

    assert diagnose("healthy") == {}


def test_an_untrusted_ca_is_named_with_ansible_winrm_ca_trust_path(diagnose: Diagnose) -> None:
    problems = diagnose("ntlm-https", ansible_winrm_ca_trust_path="")

    assert list(problems) == ["ca_not_trusted"]
    assert_problem(
        problems,
        "ca_not_trusted",
        "the host's WinRM certificate is not trusted by the controller (unable to get local "
        "issuer certificate).",
        "Set ansible_winrm_ca_trust_path to the PEM file of the CA that issued it.",
    )


def test_a_certificate_for_another_name_is_a_name_mismatch_not_an_untrusted_ca(
    lab: RunningLab, diagnose: Diagnose
) -> None:
    problems = diagnose("wrong-name")
    address = lab.show("wrong-name")["address"]

    assert list(problems) == ["certificate_name_mismatch"]
    assert_problem(
        problems,
        "certificate_name_mismatch",
        f"the host's WinRM certificate is not issued to {address} (IP address mismatch...",
        "Set ansible_host to a name the certificate carries...",
    )


def test_a_channel_binding_token_left_out_is_named_when_the_host_requires_it(
    diagnose: Diagnose,
) -> None:
    problems = diagnose("ntlm-https", ansible_winrm_send_cbt=False)

    assert list(problems) == ["channel_binding_refused"]
    assert_problem(
        problems,
        "channel_binding_refused",
        "...CbtHardeningLevel=Strict...",
        "Remove ansible_winrm_send_cbt (or set it to true).",
    )


def test_a_shell_code_page_other_than_65001_or_437_is_named(diagnose: Diagnose) -> None:
    problems = diagnose("cp850")

    assert list(problems) == ["wrong_codepage"]
    assert_problem(
        problems,
        "wrong_codepage",
        "the host's shells run in code page 850 although WinRS asked for 65001...",
        "...Command Processor...",
    )


def test_the_shell_quota_fault_names_max_shells_per_user(diagnose: Diagnose) -> None:
    problems = diagnose("shell-quota")

    assert list(problems) == ["shell_quota"]
    assert_problem(
        problems,
        "shell_quota",
        "...MaxShellsPerUser (WS-Man fault 2150859173)...",
        '...winrm set winrm/config/winrs @{MaxShellsPerUser="30"}.',
    )


def test_the_operation_quota_fault_names_max_concurrent_operations_per_user(
    diagnose: Diagnose,
) -> None:
    problems = diagnose("op-quota")

    assert list(problems) == ["operation_quota"]
    assert_problem(
        problems,
        "operation_quota",
        "...MaxConcurrentOperationsPerUser (WS-Man fault 2150859174)...",
        '...winrm set winrm/config/service @{MaxConcurrentOperationsPerUser="1500"}.',
    )


def test_a_read_timeout_not_above_the_operation_timeout_is_named(diagnose: Diagnose) -> None:
    problems = diagnose(
        "healthy", ansible_winrm_operation_timeout_sec=20, ansible_winrm_read_timeout_sec=20
    )

    assert list(problems) == ["timeouts_inverted"]
    assert_problem(
        problems,
        "timeouts_inverted",
        "ansible_winrm_read_timeout_sec (20) is not more than ansible_winrm_operation_timeout_sec "
        "(20)...",
        "Set ansible_winrm_read_timeout_sec=30 (always above the operation timeout).",
    )


def test_kerberos_without_its_library_names_the_pip_requirement(diagnose: Diagnose) -> None:
    # Real: this controller's Python has no pykerberos, so pywinrm cannot do Kerberos here.
    problems = diagnose("healthy", ansible_winrm_transport="kerberos")

    assert list(problems) == ["auth_library_missing"]
    assert_problem(
        problems,
        "auth_library_missing",
        "ansible_winrm_transport=kerberos needs pywinrm[kerberos], which is not installed...",
        "Run pip install 'pywinrm[kerberos]'...",
    )


def test_kerberos_to_a_host_whose_clock_is_an_hour_ahead_names_the_skew(
    diagnose: Diagnose,
) -> None:
    problems = diagnose("skewed", ansible_winrm_transport="kerberos")

    assert sorted(problems) == ["auth_library_missing", "kerberos_clock_skew"]
    message = problems["kerberos_clock_skew"]["message"]
    skew = int(message.split("clock is ")[1].split(" s ")[0])
    assert 3590 <= skew <= 3610 and "ahead of the controller's" in message
    assert_problem(problems, "kerberos_clock_skew", None, "...w32tm /resync...")


def test_a_windows_2000_host_without_wmic_is_named(diagnose: Diagnose) -> None:
    problems = diagnose("win2000")

    assert list(problems) == ["wmic_missing"]
    assert_problem(problems, "wmic_missing", "wmic.exe is not on the host's PATH...", None)


def test_a_port_where_nothing_listens_is_named_with_the_listener_check(
    lab: RunningLab, diagnose: Diagnose
) -> None:
    problems = diagnose("healthy", ansible_port=35999)
    address = lab.show("healthy")["address"]

    assert list(problems) == ["port_unreachable"]
    assert_problem(
        problems,
        "port_unreachable",
        f"cannot open a TCP connection to {address}:35999 (connection refused).",
        "...winrm enumerate winrm/config/listener...",
    )
