# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A lab started with `exchlab up` takes CredSSP logons from pywinrm with the inventory's
credentials, and keeps the delegated password out of its log."""

from __future__ import annotations

import pytest
import winrm
from conftest import Lab


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_a_lab_host_runs_commands_for_a_credssp_logon(lab: Lab, scheme: str) -> None:
    lab.up("q259906.yml")
    inventory = lab.inventory()["all"]
    target = inventory["children"]["kms_targets"]["hosts"]["kms-new"]
    port = 25985 if scheme == "http" else 25986
    password = inventory["vars"]["ansible_password"]
    session = winrm.Session(
        f"{scheme}://{target['ansible_host']}:{port}/wsman",
        auth=(target["ansible_user"], password),
        transport="credssp",
        server_cert_validation="validate",
        ca_trust_path=str(lab.state / "ca.pem"),
    )

    result = session.run_cmd("hostname")

    assert (result.std_out, result.status_code) == (b"KMS-NEW\r\n", 0)
    assert lab.show("kms-new")["hosts"]["kms-new"]["requests"]["shells"] == 1
    assert password not in (lab.state / "exchlab.log").read_text(encoding="utf-8")
