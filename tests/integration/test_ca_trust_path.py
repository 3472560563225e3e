# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A CA file that is not on the controller (examples/inventory.yml copied as is): the gate and
the doctor name ansible_winrm_ca_trust_path and the path, and nothing connects to the host."""

from __future__ import annotations

from pathlib import Path

import yaml
from conftest import RunGate, RunModule, RunningLab

GATE = "exchops.kms.check_kms_move"
DOCTOR = "exchops.kms.winrm_doctor"
NOT_A_MATCH = 2


def https_with_ca(tmp_path: Path, ca_path: Path) -> list[str]:
    """Inventory arguments that move both lab hosts to HTTPS, validated with `ca_path`."""
    https = {
        "ansible_port": 35986,
        "ansible_winrm_scheme": "https",
        "ansible_winrm_server_cert_validation": "validate",
        "ansible_winrm_ca_trust_path": str(ca_path),
    }
    extra = tmp_path / "https.yml"
    extra.write_text(
        yaml.safe_dump({"all": {"hosts": {"kms-new": https, "kms-old": https}}}), encoding="utf-8"
    )
    return ["-i", str(extra)]


def test_a_missing_ca_file_ends_every_pair_in_error_naming_the_setting_and_the_path(
    kb_lab: RunningLab, gate_playbook: RunGate, ansible_module: RunModule, tmp_path: Path
) -> None:
    missing = tmp_path / "etc-pki" / "corp-ca.pem"
    extra = https_with_ca(tmp_path, missing)
    before = kb_lab.show()
    result, report, markdown, _junit = gate_playbook(GATE, kb_lab, *extra)
    assert result.returncode == NOT_A_MATCH, result.stdout
    wrong = f"ansible_winrm_ca_trust_path is '{missing}', which does not exist on the controller."
    (pair,) = report["pairs"]
    assert pair["status"] == "error", pair
    assert wrong in pair["reason"] + pair["fix"]
    assert "OSError" not in result.stdout + result.stderr
    assert "Could not find a suitable TLS CA certificate bundle" not in result.stdout
    assert wrong in markdown
    # Found before any connection: neither server saw a request.
    after = kb_lab.show()
    for host in ("kms-new", "kms-old"):
        assert after[host]["requests"] == before[host]["requests"], host

    # The doctor says the same, with the fix, though the host itself answers.
    _result, results = ansible_module(kb_lab, "kms-new", DOCTOR, "fail_on_problems=false", *extra)
    problems = {problem["id"]: problem for problem in results["kms-new"]["problems"]}
    assert list(problems) == ["ca_trust_path_unusable"], problems
    assert problems["ca_trust_path_unusable"]["message"] == wrong
    assert "ansible_winrm_ca_trust_path" in problems["ca_trust_path_unusable"]["fix"]


def test_the_same_settings_with_the_ca_file_present_pass_the_tls_step(
    kb_lab: RunningLab, gate_playbook: RunGate, tmp_path: Path
) -> None:
    extra = https_with_ca(tmp_path, kb_lab.state / "ca.pem")
    result, report, _markdown, _junit = gate_playbook(GATE, kb_lab, *extra)
    assert result.returncode == NOT_A_MATCH, result.stdout
    assert report["pairs"][0]["status"] == "mismatch"  # the KB case itself, read over HTTPS
