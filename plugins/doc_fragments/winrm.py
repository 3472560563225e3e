# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Notes every exchops.kms module shares: how it reaches the host over WinRM."""

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options: {}
notes:
  - The connection is the host's own WinRM settings, the same variables C(ansible.windows) uses
    (C(ansible_host), C(ansible_port), C(ansible_user), C(ansible_password),
    C(ansible_winrm_transport), C(ansible_winrm_scheme), C(ansible_winrm_path),
    C(ansible_winrm_server_cert_validation), C(ansible_winrm_ca_trust_path),
    C(ansible_winrm_message_encryption), C(ansible_winrm_operation_timeout_sec),
    C(ansible_winrm_read_timeout_sec)) with C(ansible_connection=winrm). Under C(delegate_to)
    the delegated host's settings are used.
  - "Use C(gather_facts: false) in the play: Ansible's own fact gathering needs PowerShell."
  - The controller needs the Python package C(pywinrm) (with C(pyspnego) for NTLM).
"""
