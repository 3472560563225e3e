# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""exchops.kms.exchange_facts against hosts of era 2003, whose reg.exe 3.0 reports a missing key in
its own words (docs/windows-output.md#e16), with the real `ansible` against the lab."""

from __future__ import annotations

import pytest
import winrm
from conftest import RunModule, RunningLab, lab_session, module_lab

FACTS = "exchops.kms.exchange_facts"
REG3_MISSING = b"Error:  The system was unable to find the specified registry key or value\r\n"

era2003_lab = module_lab("era2003_lab", "era2003.yml")


def facts_of(results: dict[str, dict], host: str) -> dict:
    assert "ansible_facts" in results[host], results[host]
    return results[host]["ansible_facts"]["exchange"]


def reg_query(lab: RunningLab, host: str, key: str) -> winrm.Response:
    """`reg query KEY` on a lab host over WinRM, with the inventory's connection settings."""
    return lab_session(lab, host).run_cmd("reg", ["query", key])


# pywinrm warns that it reads REQUESTS_CA_BUNDLE; these sessions are plain HTTP with NTLM.
@pytest.mark.filterwarnings("ignore:'pywinrm' will use an environment variable:DeprecationWarning")
@pytest.mark.parametrize(
    "key",
    [
        r"HKLM\SOFTWARE\Microsoft\ExchangeServer\v15\Setup",
        r"HKLM\SOFTWARE\Microsoft\ExchangeServer\v14\Setup",
        r"HKLM\SOFTWARE\Microsoft\Exchange\v8.0\Setup",
    ],
)
def test_the_2003_hosts_reg_answers_a_missing_key_in_reg_exe_3_0_words(
    era2003_lab: RunningLab, key: str
) -> None:
    answer = reg_query(era2003_lab, "e55-sp3-2003", key)
    assert (answer.status_code, answer.std_out, answer.std_err) == (1, b"", REG3_MISSING)
    present = reg_query(era2003_lab, "e55-sp3-2003", r"HKLM\SOFTWARE\Microsoft\Exchange\Setup")
    assert present.status_code == 0
    assert present.std_out.startswith(b"\r\n! REG.EXE VERSION 3.0\r\n\r\n")
    assert b"    NewestBuild\tREG_DWORD\t0xa5a\r\n" in present.std_out


def test_exchange_facts_reads_each_2003_host_through_reg_exe_3_0s_words(
    era2003_lab: RunningLab, ansible_module: RunModule
) -> None:
    result, results = ansible_module(era2003_lab, "all", FACTS, "")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "could not read the Exchange facts" not in result.stdout

    e55 = facts_of(results, "e55-sp3-2003")
    assert e55["installed"] is True
    assert (e55["release"], e55["build"], e55["service_pack"]) == (
        "Exchange Server 5.5 SP3",
        "5.5.2650.0",
        3,
    )
    assert e55["install_path"] == "C:\\EXCHSRVR"
    assert "Exchange\\Setup" in e55["sources"]["build"]
    assert e55["kms"]["installed"] is True
    assert e55["kms"]["service"]["state"] == "running"
    assert e55["kms"]["matches_server"] is True
    assert e55["inconsistent"] == []

    e2k = facts_of(results, "e2k-sp3-2003")
    assert (e2k["version"], e2k["release"]) == ("2000", "Exchange 2000 Server SP3")
    assert e2k["kms"]["service"]["state"] == "stopped"
    assert e2k["kms"]["matches_server"] is True

    nothing = facts_of(results, "noexch-2003")
    assert nothing["installed"] is False
    assert nothing["kms"]["installed"] is False

    # Every other generation's key answered "missing" in reg.exe 3.0's words: no warning at all.
    for host in ("e55-sp3-2003", "e2k-sp3-2003", "noexch-2003"):
        assert not results[host].get("warnings"), results[host].get("warnings")
        assert results[host]["changed"] is False
