#!/usr/bin/python
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Documentation for the exchops.kms.winrm_doctor action plugin (the code is in plugins/action)."""

# ansible-core 2.16 still runs modules on Python 2.7 and its sanity test asks module files for
# this boilerplate; a doc stub has no annotations, so nothing of ours is lost.
from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: winrm_doctor
short_description: Say why a host cannot be reached or read over WinRM, and how to fix it
version_added: 0.1.0
description:
  - Diagnoses, without changing anything on the host, why the other exchops.kms modules cannot
    reach or read it, and returns one line per problem found - what is wrong and the fix, naming
    the exact setting or command.
  - Looks at the host's connection settings (the C(ansible_winrm_*) variables as the winrm
    connection resolves them) and at the controller's Python (pywinrm and the library its
    transport needs, NTLM's MD4 hash), then tries the connection step by step - TCP, the TLS
    handshake with and without certificate validation, an unauthenticated WS-Man Identify
    (which authentication schemes the listener offers, the host's clock), the real logon, a
    shell, C(chcp) for the code page, and a PATH lookup of C(reg.exe) and C(wmic.exe).
  - The only commands run on the host are C(chcp) without arguments and a C(for) loop that
    prints where C(reg.exe) and C(wmic.exe) are. The password is never shown.
  - Problems it names include Basic over HTTP or with a domain account, HTTP without message
    encryption, NTLM without an MD4 hash, a C(ansible_winrm_ca_trust_path) that does not exist
    or cannot be read on the controller, an untrusted, expired or misnamed certificate, a
    channel binding token left out, Kerberos clock skew, a read timeout not above the operation
    timeout, exhausted WinRM quotas (MaxShellsPerUser, MaxConcurrentOperationsPerUser), a shell
    code page other than 65001 or 437, and missing C(reg.exe) or C(wmic.exe).
options:
  timeout:
    description:
      - Seconds each step (TCP connect, TLS handshake, Identify, each command) may take.
    type: int
    default: 15
  fail_on_problems:
    description:
      - Whether the task fails when a problem is found. V(false) returns the problems with
        C(failed=false), for a playbook that prints them first (as
        C(exchops.kms.doctor) does).
    type: bool
    default: true
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.flow
  - exchops.kms.attributes
  - exchops.kms.attributes.windows
  - exchops.kms.winrm
attributes:
  check_mode:
    support: full
    details: Read-only; check mode runs the same checks.
  diff_mode:
    support: none
notes:
  - Any account that may open a WinRM shell can run it; no administrator rights are needed to
    run C(chcp) and C(for).
  - It takes a few seconds per host; a host that does not answer costs up to O(timeout) per step.
  - The KM database is never touched.
seealso:
  - name: KB Q259906 - Event ID 5389 when KM Server is moved to a new server
    description: The Exchange 5.5 problem this collection checks for and fixes.
    link: https://github.com/jeffpar/kbarchive/blob/master/kb/259/Q259906/README.md
  - module: exchops.kms.exchange_facts
author:
  - exchops.kms maintainers (@exchops)
"""

EXAMPLES = r"""
- name: Say why this host cannot be read over WinRM
  exchops.kms.winrm_doctor:

- name: Collect the problems without failing, for a report
  exchops.kms.winrm_doctor:
    fail_on_problems: false
  register: winrm_health

- name: Print one line per problem
  ansible.builtin.debug:
    msg: "{{ winrm_health.lines }}"
  when: not winrm_health.ok
"""

RETURN = r"""
ok:
  description: Whether no problem was found.
  returned: always
  type: bool
  sample: false
problems:
  description:
    - Each problem found, in a fixed order (controller, settings, network, logon, shell,
      tools). C(id) is stable for scripts; C(message) says what is wrong; C(fix) the setting
      or command that fixes it.
  returned: always
  type: list
  elements: dict
  sample: [{"id": "ca_not_trusted", "host": "kms02",
            "message": "the host's WinRM certificate is not trusted by the controller (self-signed certificate in certificate chain).",
            "fix": "Set ansible_winrm_ca_trust_path to the PEM file of the CA that issued it."}]
lines:
  description: "Each problem as the one line an operator reads: C(HOST: MESSAGE Fix: FIX)."
  returned: always
  type: list
  elements: str
  sample:
    - >-
      kms02: the host's WinRM certificate is not trusted by the controller (self-signed
      certificate in certificate chain). Fix: Set ansible_winrm_ca_trust_path to the PEM file
      of the CA that issued it.
"""
