# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The doctor's table of causes: which findings name which problem, and each in one line."""

from __future__ import annotations

import dataclasses

import pytest

from ansible_collections.exchops.kms.plugins.plugin_utils._doctor import (
    SIGNATURES,
    Findings,
    Settings,
)
from ansible_collections.exchops.kms.plugins.plugin_utils._winrs import (
    WinrsAuthError,
    WinrsQuotaFault,
)

NTLM_HTTP = Settings(
    address="10.0.0.2", port=5985, scheme="http", transport="ntlm", user="CORP\\ops",
    has_password=True, cert_validation="validate", ca_trust_path=None, message_encryption="auto",
    operation_timeout_sec=None, read_timeout_sec=None, send_cbt=True, ca_trust_path_problem=None,
)  # fmt: skip
NO_CA = "ansible_winrm_ca_trust_path is '/x.pem', which does not exist on the controller."
REFUSED = WinrsAuthError("kms02 (http://10.0.0.2:5985/wsman)", "the host refused the credentials")


def found_ids(findings: Findings) -> list[str]:
    return [row.id for row in SIGNATURES if row.detect(findings) is not None]


def findings(settings: dict | None = None, **seen: object) -> Findings:
    return Findings(
        host="kms02", settings=dataclasses.replace(NTLM_HTTP, **(settings or {})), **seen
    )


# fmt: off
@pytest.mark.parametrize(
    ("case", "expected"),
    [
        (findings(), []),
        (findings(codepage=437), []),
        (findings(has_winrm=False, missing_library="pywinrm"), ["pywinrm_missing"]),
        (findings(md4_available=False), ["ntlm_md4_missing"]),
        (findings({"transport": "kerberos"}, missing_library="pywinrm[kerberos]"), ["auth_library_missing"]),
        (findings({"transport": "basic", "user": "ops"}), ["basic_over_http"]),
        (findings({"transport": "basic", "scheme": "https", "user": "ops@corp.example"}), ["basic_domain_account"]),
        (findings({"message_encryption": "never"}, logon_error=REFUSED), ["unencrypted_http"]),
        (findings({"read_timeout_sec": 20}), ["timeouts_inverted"]),
        (findings(tcp_error="Connection refused"), ["port_unreachable"]),
        (findings({"ca_trust_path_problem": NO_CA}, tcp_error="Name or service not known"), ["ca_trust_path_unusable", "port_unreachable"]),
        (findings(tls_verify_error="unable to get local issuer certificate", tls_verify_code=20), ["ca_not_trusted"]),
        (findings(tls_verify_error="Hostname mismatch", tls_verify_code=62), ["certificate_name_mismatch"]),
        (findings(tls_verify_error="certificate has expired", tls_verify_code=10), ["certificate_expired"]),
        (findings(offered_schemes=("basic",)), ["auth_scheme_not_offered"]),
        (findings(logon_error=REFUSED, logon_works_with_cbt=True), ["channel_binding_refused"]),
        (findings(logon_error=REFUSED), ["logon_refused"]),
        (findings({"transport": "kerberos"}, server_clock_skew_s=-900.0), ["kerberos_clock_skew"]),
        (findings(server_clock_skew_s=-900.0), []),  # only Kerberos minds the clock
        (findings(logon_error=WinrsQuotaFault("kms02", "quota", 2150859173, "")), ["shell_quota"]),
        (findings(command_error=WinrsQuotaFault("kms02", "quota", 2150859174, "")), ["operation_quota"]),
        (findings(codepage=850), ["wrong_codepage"]),
        (findings(missing_tools=("reg.exe", "wmic.exe")), ["reg_missing", "wmic_missing"]),
    ],
)
# fmt: on
def test_each_finding_names_its_cause_and_nothing_else(case: Findings, expected: list[str]) -> None:
    assert found_ids(case) == expected


def test_every_cause_has_a_unique_id_and_a_one_line_message_and_fix() -> None:
    ids = [row.id for row in SIGNATURES]
    assert len(ids) == len(set(ids)) >= 12
    for row in SIGNATURES:
        assert "\n" not in row.message + row.fix
        assert row.fix.endswith(".") and row.fix[0].isupper(), row.id
