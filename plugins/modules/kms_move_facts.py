#!/usr/bin/python
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Documentation for the exchops.kms.kms_move_facts action plugin (the code is in plugins/action)."""

# ansible-core 2.16 still runs modules on Python 2.7 and its sanity test asks module files for
# this boilerplate; a doc stub has no annotations, so nothing of ours is lost.
from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: kms_move_facts
short_description: Read both servers of a KM Server move and judge their service-pack parity
version_added: 0.2.0
description:
  - Runs on the new KM Server (the target, the play's host) and reads, at the same time and
    without changing anything, the target's Exchange facts and those of the server KM Server moved
    from (the source, O(source_host)), exactly as M(exchops.kms.exchange_facts) reads them.
  - Then judges the pair as KB Q259906 asks - the same Exchange version and service pack on both
    servers, and the target's KM binaries (C(Kmserver.exe)) not older than the build that last ran
    the KM database - and that the target's service pack completed (its C(Store.exe), whose file
    version shows the service pack installed, KB Q278518, not on an earlier service pack than its
    registry says) - and returns the verdict (RV(status) V(match), V(mismatch), V(unreachable)
    or V(error), with a RV(reason) and a RV(fix)).
  - The build that last ran the KM database is the file version of the source's C(Kmserver.exe),
    whether KM Server runs there or not. When the source cannot be read (after the move it is
    often gone) or has no C(Kmserver.exe) any more, it is the build recorded in
    O(backup_manifest), else O(database_build); only without any of them the source's Exchange
    build, which the reason calls the weaker evidence. RV(database_build_from) says which decided.
    No source lists the C(Kmserver.exe) that each service pack installs (5.5 SP4 was a collection
    of fixes), so a C(Kmserver.exe) below its server's service pack is a finding, not a mismatch.
  - A server that cannot be reached or read is a verdict, not a failure of the task, so a gate
    over many pairs judges every pair. The task fails on wrong options, and on a pair that is not
    a match with O(fail_on_mismatch=true).
  - This is the one task per pair of the role M(exchops.kms.sp_parity) and the playbook
    C(exchops.kms.check_kms_move); use them rather than this module unless you build your own
    gate.
options:
  source_host:
    description:
      - Inventory name of the server KM Server moved from. Its WinRM settings are its own
        inventory variables (C(ansible_host), C(ansible_user), C(ansible_password),
        C(ansible_winrm_*)), as under C(delegate_to); play and task variables of the target do
        not apply to it.
      - Empty means the target's host variable C(kms_source_host), the collection's inventory
        convention.
      - No source, one not in the inventory, or the target itself gives an V(error) verdict that
        says so.
    type: str
    default: ""
  allow_newer_target:
    description:
      - Count a target on a later service pack than its source as a match. KB Q259906 asks for the
        same service pack; set this only when the later one is intended.
    type: bool
    default: false
  kms_event_count:
    description:
      - How many of the newest C(MSExchangeKMS) events to read from the target's Application log
        and explain in RV(findings) (5389, 5015, 5057, 5058, 5085). V(0) skips the event log.
      - The source's event log is not read.
    type: int
    default: 10
  timeout:
    description: Seconds each server may take to answer.
    type: int
    default: 120
  fail_on_mismatch:
    description:
      - Fail the task when the pair is not a match, with the reason and the fix as its message, and
        end the host as unreachable when a server of the pair could not be reached (so
        C(ansible-playbook) exits 2 or 4). The verdict is returned, and registered, either way.
      - The facts are left out of a failed result (Ansible prints a failed result whole).
    type: bool
    default: false
  backup_manifest:
    description:
      - The result of M(exchops.kms.kms_backup) taken on the source before the move (registered,
        or the path of a JSON or YAML file on the controller that holds it). Its
        C(kms_binary_build) is the C(Kmserver.exe) that last ran the KM database, used when the
        source's own C(Kmserver.exe) cannot be read.
      - Empty means the target's host variable C(kms_backup_manifest), if set.
    type: raw
  database_build:
    description:
      - The file version of the C(Kmserver.exe) that last ran the KM database (for example
        V(5.5.2650.12)), as the operator knows it; used when the source's own C(Kmserver.exe)
        cannot be read and O(backup_manifest) gives none.
      - Empty means the target's host variable C(kms_database_build), if set.
    type: str
    default: ""
  listed_twice:
    description:
      - Set by M(exchops.kms.sp_parity) when the inventory lists this pair twice (one server under
        two names, or two targets naming one source; the filter
        P(exchops.kms.kms_pairs_listed_twice#filter) finds them). The verdict is then V(error)
        with this reason and fix, whatever the builds say.
    type: dict
    suboptions:
      reason:
        description: Why the pair cannot be judged.
        type: str
        required: true
      fix:
        description: What to change in the inventory.
        type: str
        required: true
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.flow
  - exchops.kms.attributes
  - exchops.kms.attributes.windows
  - exchops.kms.winrm
  - ansible.builtin.action_common_attributes.facts
attributes:
  check_mode:
    support: full
    details: Read-only; check mode reads and judges the same.
  diff_mode:
    support: none
  facts:
    support: full
    details: Sets the target's C(ansible_facts.exchange); the source's facts are in RV(source_facts).
notes:
  - Builds are compared as numbers, never as text (5.5.2650 is later than 5.5.1960).
  - The KM database is never opened or changed on either server.
seealso:
  - module: exchops.kms.exchange_facts
  - name: KB Q259906 - Event ID 5389 when KM Server is moved to a new server
    description: The Exchange 5.5 problem this collection checks for and fixes.
    link: https://github.com/jeffpar/kbarchive/blob/master/kb/259/Q259906/README.md
author:
  - exchops.kms maintainers (@exchops)
"""

EXAMPLES = r"""
- name: Judge the KM Server move of every new KM Server
  exchops.kms.kms_move_facts:
    source_host: "{{ kms_source_host }}"
  register: kms_move

- name: Stop here unless the move is safe
  ansible.builtin.assert:
    that: kms_move.status == 'match'
    fail_msg: "{{ kms_move.reason }} {{ kms_move.fix }}"
"""

RETURN = r"""
status:
  description:
    - V(match) when the move is safe; V(mismatch) when the builds differ (RV(fix) says what to
      install); V(unreachable) when a server could not be reached; V(error) when a server could not
      be read or the inventory does not describe the pair.
  returned: always
  type: str
  sample: mismatch
reason:
  description: Why, naming the servers and builds.
  returned: always
  type: str
  sample: >-
    kms-new runs Exchange 5.5 SP3 (5.5.2650) but its KM Server binaries (Kmserver.exe) are
    Exchange 5.5 RTM (5.5.1960), older than 5.5.2650, the build that last ran the KM database (from
    kms-old's Kmserver.exe): KMS will exit with event 5389 (KB Q259906).
fix:
  description: What to do about it.
  returned: always
  type: str
  sample: Reapply Exchange 5.5 SP3 on kms-new (playbook exchops.kms.remediate_kms_move).
target:
  description: The target's inventory name.
  returned: always
  type: str
  sample: kms-new
source:
  description: The source's inventory name (C((no kms_source_host)) when none was given).
  returned: always
  type: str
  sample: kms-old
target_build:
  description: The target's Exchange build, when read.
  returned: always
  type: str
  sample: 5.5.2650.0
source_build:
  description: The source's Exchange build, when read.
  returned: always
  type: str
  sample: 5.5.2650.0
kms_binary_build:
  description: The build of the target's C(Kmserver.exe), when KM Server is installed there.
  returned: always
  type: str
  sample: 5.5.1960.8
target_release:
  description: The release the target's build belongs to.
  returned: when the target was read
  type: str
  sample: Exchange Server 5.5 SP3
source_release:
  description: The release the source's build belongs to.
  returned: when the source was read
  type: str
  sample: Exchange Server 5.5 SP3
findings:
  description: The target's C(MSExchangeKMS) events explained, and other observations.
  returned: always
  type: list
  elements: str
remedy:
  description:
    - V(reapply_sp) when reapplying the service pack RV(remedy_build) on the target fixes the pair
      (the role M(exchops.kms.kms_remediate) does it).
    - V(install_hotfix) when the KM database was last run by a KM Server hotfix build (KB Q231751,
      Q231307, Q230780 with C(Kmserver.exe) 5.5.2602, 5.5.2606, 5.5.2608 on 5.5 SP2) that the
      target's C(Kmserver.exe) is older than; RV(fix) names the hotfix's KB. The remediation
      refuses such a pair.
    - Null when neither helps, or the pair matches.
  returned: always
  type: str
  sample: reapply_sp
remedy_build:
  description:
    - With V(reapply_sp), the service pack build to install on the target (the source's; for a
      target whose service pack did not complete, its own when its registry names a later one); with
      V(install_hotfix), the C(Kmserver.exe) build of the hotfix.
  returned: always
  type: str
  sample: 5.5.2650
database_build:
  description: The build that last ran the KM database (major.minor.build), null before any facts.
  returned: always
  type: str
  sample: 5.5.2650
database_build_from:
  description:
    - Which reading gave RV(database_build), strongest first - V(source_kmserver) (the source's
      C(Kmserver.exe), read now), V(backup_manifest), V(kms_database_build), or
      V(source_server_build) (the source's Exchange build, the weaker evidence).
  returned: always
  type: str
  sample: source_kmserver
source_facts:
  description: The source's facts, in the form of RV(exchops.kms.exchange_facts#module:ansible_facts.exchange);
    null when the source was not read.
  returned: always
  type: dict
unreachable_servers:
  description: The servers of the pair that could not be reached (to read again, or to fix).
  returned: always
  type: list
  elements: str
  sample: [kms-old]
ansible_facts:
  description: The target's facts, as M(exchops.kms.exchange_facts) sets them.
  returned: when the target was read
  type: complex
  contains:
    exchange:
      description: See RV(exchops.kms.exchange_facts#module:ansible_facts.exchange).
      returned: when the target was read
      type: dict
"""
