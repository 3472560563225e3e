# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The WinRM doctor against the lab: one fault per test, each named in one line with its fix.

Fleet doctor.yml holds one host per fault the lab injects; the faults that live in the
controller's settings are one changed connection variable on a clean host (`override`).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import BIN, RunningLab, override, run_module, run_tool

DOCTOR = "exchops.kms.winrm_doctor"


@pytest.fixture(scope="module")
def lab(lab_factory) -> RunningLab:
    return lab_factory("doctor.yml")


def diagnose(
    lab: RunningLab, host: str, env: dict[str, str], tmp_path: Path, **variables: object
) -> dict[str, dict]:
    """The doctor's problems on one host, by id, after checking each is one line."""
    extra = override(tmp_path, host, **variables) if variables else []
    result, results = run_module(lab, host, DOCTOR, "", env, tmp_path, *extra)
    answer = results[host]
    assert answer["changed"] is False
    assert answer["ok"] is (not answer["problems"]), answer
    for problem, line in zip(answer["problems"], answer["lines"]):
        assert problem["host"] == host
        assert "\n" not in line and line == f"{host}: {problem['message']} Fix: {problem['fix']}"
        assert line in result.stdout + result.stderr  # the failure message shows every line
    return {problem["id"]: problem for problem in answer["problems"]}


def test_a_healthy_host_has_no_problem_and_the_playbook_exits_0(
    lab: RunningLab, ansible_env: dict[str, str], tmp_path: Path
) -> None:
    before = lab.show("healthy")

    result = run_tool(
        ["ansible-playbook", "exchops.kms.doctor", "-i", str(lab.inventory), "-l", "healthy"],
        ansible_env,
        tmp_path,
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert "healthy                    : ok=1    changed=0" in result.stdout
    assert diagnose(lab, "healthy", ansible_env, tmp_path) == {}
    after = lab.show("healthy")
    assert {k: v for k, v in after.items() if k != "requests"} == {
        k: v for k, v in before.items() if k != "requests"
    }


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


def test_basic_over_plain_http_is_named_with_the_scheme_to_set(
    lab: RunningLab, ansible_env: dict[str, str], tmp_path: Path
) -> None:
    problems = diagnose(
        lab,
        "healthy",
        ansible_env,
        tmp_path,
        ansible_winrm_transport="basic",
        ansible_user="labadmin",
    )

    assert list(problems) == ["basic_over_http"]
    assert "would send the password in clear text" in problems["basic_over_http"]["message"]
    assert problems["basic_over_http"]["fix"].startswith("Set ansible_winrm_scheme=https")


def test_basic_with_a_domain_account_is_named_with_ntlm_as_the_fix(
    lab: RunningLab, ansible_env: dict[str, str], tmp_path: Path
) -> None:
    problems = diagnose(lab, "basic-https", ansible_env, tmp_path, ansible_user="LAB\\labadmin")

    problem = problems["basic_domain_account"]
    assert problem["message"] == (
        "ansible_user is the domain account 'LAB\\labadmin', but Windows' Basic authentication "
        "only accepts local accounts."
    )
    assert problem["fix"].startswith("Set ansible_winrm_transport=ntlm for the domain account")


def test_http_without_message_encryption_is_named_and_not_blamed_on_the_password(
    lab: RunningLab, ansible_env: dict[str, str], tmp_path: Path
) -> None:
    problems = diagnose(
        lab, "healthy", ansible_env, tmp_path, ansible_winrm_message_encryption="never"
    )

    assert list(problems) == ["unencrypted_http"]
    assert problems["unencrypted_http"]["fix"].startswith(
        "Set ansible_winrm_message_encryption=auto"
    )


def test_ntlm_works_when_openssl_has_no_md4_through_pyspnegos_own(
    lab: RunningLab, ansible_env: dict[str, str], tmp_path: Path
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
    env = dict(ansible_env, OPENSSL_CONF=str(config))
    probe = run_tool(
        [str(BIN / "python"), "-c", "import hashlib; hashlib.new('md4')"], env, tmp_path
    )
    assert probe.returncode != 0 and "unsupported hash type md4" in probe.stderr

    assert diagnose(lab, "healthy", env, tmp_path) == {}


def test_an_untrusted_ca_is_named_with_ansible_winrm_ca_trust_path(
    lab: RunningLab, ansible_env: dict[str, str], tmp_path: Path
) -> None:
    problems = diagnose(lab, "ntlm-https", ansible_env, tmp_path, ansible_winrm_ca_trust_path="")

    assert list(problems) == ["ca_not_trusted"]
    assert problems["ca_not_trusted"]["message"] == (
        "the host's WinRM certificate is not trusted by the controller (unable to get local "
        "issuer certificate)."
    )
    assert problems["ca_not_trusted"]["fix"] == (
        "Set ansible_winrm_ca_trust_path to the PEM file of the CA that issued it."
    )


def test_a_certificate_for_another_name_is_a_name_mismatch_not_an_untrusted_ca(
    lab: RunningLab, ansible_env: dict[str, str], tmp_path: Path
) -> None:
    problems = diagnose(lab, "wrong-name", ansible_env, tmp_path)
    address = lab.show("wrong-name")["address"]

    assert list(problems) == ["certificate_name_mismatch"]
    assert problems["certificate_name_mismatch"]["message"].startswith(
        f"the host's WinRM certificate is not issued to {address} (IP address mismatch"
    )
    assert problems["certificate_name_mismatch"]["fix"].startswith(
        "Set ansible_host to a name the certificate carries"
    )


def test_a_channel_binding_token_left_out_is_named_when_the_host_requires_it(
    lab: RunningLab, ansible_env: dict[str, str], tmp_path: Path
) -> None:
    problems = diagnose(lab, "ntlm-https", ansible_env, tmp_path, ansible_winrm_send_cbt=False)

    assert list(problems) == ["channel_binding_refused"]
    assert "CbtHardeningLevel=Strict" in problems["channel_binding_refused"]["message"]
    assert problems["channel_binding_refused"]["fix"] == (
        "Remove ansible_winrm_send_cbt (or set it to true)."
    )


def test_a_shell_code_page_other_than_65001_or_437_is_named(
    lab: RunningLab, ansible_env: dict[str, str], tmp_path: Path
) -> None:
    problems = diagnose(lab, "cp850", ansible_env, tmp_path)

    assert list(problems) == ["wrong_codepage"]
    assert problems["wrong_codepage"]["message"].startswith(
        "the host's shells run in code page 850 although WinRS asked for 65001"
    )
    assert "Command Processor" in problems["wrong_codepage"]["fix"]


def test_the_shell_quota_fault_names_max_shells_per_user(
    lab: RunningLab, ansible_env: dict[str, str], tmp_path: Path
) -> None:
    problems = diagnose(lab, "shell-quota", ansible_env, tmp_path)

    assert list(problems) == ["shell_quota"]
    assert "MaxShellsPerUser (WS-Man fault 2150859173)" in problems["shell_quota"]["message"]
    assert problems["shell_quota"]["fix"].endswith(
        'winrm set winrm/config/winrs @{MaxShellsPerUser="30"}.'
    )


def test_the_operation_quota_fault_names_max_concurrent_operations_per_user(
    lab: RunningLab, ansible_env: dict[str, str], tmp_path: Path
) -> None:
    problems = diagnose(lab, "op-quota", ansible_env, tmp_path)

    assert list(problems) == ["operation_quota"]
    assert "MaxConcurrentOperationsPerUser (WS-Man fault 2150859174)" in (
        problems["operation_quota"]["message"]
    )
    assert problems["operation_quota"]["fix"].endswith(
        'winrm set winrm/config/service @{MaxConcurrentOperationsPerUser="1500"}.'
    )


def test_a_read_timeout_not_above_the_operation_timeout_is_named(
    lab: RunningLab, ansible_env: dict[str, str], tmp_path: Path
) -> None:
    problems = diagnose(
        lab,
        "healthy",
        ansible_env,
        tmp_path,
        ansible_winrm_operation_timeout_sec=20,
        ansible_winrm_read_timeout_sec=20,
    )

    assert list(problems) == ["timeouts_inverted"]
    assert problems["timeouts_inverted"]["message"].startswith(
        "ansible_winrm_read_timeout_sec (20) is not more than ansible_winrm_operation_timeout_sec (20)"
    )
    assert problems["timeouts_inverted"]["fix"] == (
        "Set ansible_winrm_read_timeout_sec=30 (always above the operation timeout)."
    )


def test_kerberos_without_its_library_names_the_pip_requirement(
    lab: RunningLab, ansible_env: dict[str, str], tmp_path: Path
) -> None:
    # Real: this controller's Python has no pykerberos, so pywinrm cannot do Kerberos here.
    problems = diagnose(lab, "healthy", ansible_env, tmp_path, ansible_winrm_transport="kerberos")

    assert list(problems) == ["auth_library_missing"]
    assert problems["auth_library_missing"]["message"].startswith(
        "ansible_winrm_transport=kerberos needs pywinrm[kerberos], which is not installed"
    )
    assert problems["auth_library_missing"]["fix"].startswith("Run pip install 'pywinrm[kerberos]'")


def test_kerberos_to_a_host_whose_clock_is_an_hour_ahead_names_the_skew(
    lab: RunningLab, ansible_env: dict[str, str], tmp_path: Path
) -> None:
    problems = diagnose(lab, "skewed", ansible_env, tmp_path, ansible_winrm_transport="kerberos")

    assert sorted(problems) == ["auth_library_missing", "kerberos_clock_skew"]
    message = problems["kerberos_clock_skew"]["message"]
    skew = int(message.split("clock is ")[1].split(" s ")[0])
    assert 3590 <= skew <= 3610 and "ahead of the controller's" in message
    assert "w32tm /resync" in problems["kerberos_clock_skew"]["fix"]


def test_a_windows_2000_host_without_wmic_is_named(
    lab: RunningLab, ansible_env: dict[str, str], tmp_path: Path
) -> None:
    problems = diagnose(lab, "win2000", ansible_env, tmp_path)

    assert list(problems) == ["wmic_missing"]
    assert problems["wmic_missing"]["message"].startswith("wmic.exe is not on the host's PATH")


def test_a_port_where_nothing_listens_is_named_with_the_listener_check(
    lab: RunningLab, ansible_env: dict[str, str], tmp_path: Path
) -> None:
    problems = diagnose(lab, "healthy", ansible_env, tmp_path, ansible_port=35999)
    address = lab.show("healthy")["address"]

    assert list(problems) == ["port_unreachable"]
    assert problems["port_unreachable"]["message"] == (
        f"cannot open a TCP connection to {address}:35999 (connection refused)."
    )
    assert "winrm enumerate winrm/config/listener" in problems["port_unreachable"]["fix"]
