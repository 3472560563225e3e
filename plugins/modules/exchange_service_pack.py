#!/usr/bin/python
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Documentation for the exchops.kms.exchange_service_pack action plugin (the code is in plugins/action)."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: exchange_service_pack
short_description: Reapply an Exchange 5.5 / 2000 service pack from media on the host, never downgrading
version_added: 0.1.0
description:
  - Changes the host. Runs the service pack's C(update.exe) from a folder the host can read, so
    that Exchange is on the media's service pack and the KM Server binaries (C(Kmserver.exe))
    are no longer older than the build that last ran the KM database (O(kms_database_build)), as
    KB Q259906 requires after KM Server components were installed from the Exchange 5.5 CD.
  - Reads first, in the same way as M(exchops.kms.exchange_facts) - the server build from the
    registry (C(NewestBuild)), C(Kmserver.exe)'s file version, C(MSExchangeKMS) - and the
    media's build from C(update.exe)'s file version. Nothing runs when Exchange is already on the
    media's service pack and C(Kmserver.exe) is not one to raise (see O(kms_database_build))
    (C(changed=false)).
  - Refuses, with nothing changed, media that is not the wanted O(build), media older than the
    server or than C(Kmserver.exe) (a downgrade), C(MSExchangeKMS) whose ImagePath carries
    arguments such as the startup password (update.exe then fails, KB Q235418), a KM Server that
    is only partly installed (KB Q290226), a running C(MSExchangeKMS) and an C(update.exe) that
    is already running.
  - Reads the start types of the Exchange services (C(MSExchange*)) and of the services they
    depend on before the run, sets back any that Setup changed, and reports them in
    RV(start_types_restored).
  - Judges the run from the exit code, the lines the run appended to the setup log
    (C(Exchange Server Setup.log) at the root of the Exchange drive for 5.5, KB Q158545) and
    then the versions. RV(outcome) is V(ok), V(ok_reboot_required), V(failed), V(still_running)
    or V(unknown), each with a RV(remedy). The task fails unless the outcome is V(ok) or
    V(ok_reboot_required), the registry build is on the media's service pack afterwards and
    C(Kmserver.exe) is no longer one to raise; the message says which reading is wrong.
  - Shows a progress line at least every O(progress_interval) seconds while the host answers,
    with the elapsed time, the phase and the last line of the setup log.
  - If the connection to C(update.exe)'s WinRS shell is lost during the run, opens a new shell
    and polls the setup log and the C(update.exe) process until the run ends. It never starts
    C(update.exe) a second time.
  - Runs on the Ansible controller and talks to the host over WinRM with plain C(cmd.exe)
    commands; PowerShell is never used.
options:
  media:
    description:
      - Folder on the host that holds the service pack's C(update.exe), as the host sees it.
      - For Exchange 5.5 this is C(<kit>\ENG\SERVER\SETUP\I386) of the extracted kit (KB
        Q191013, Q198347), for example C(D:\EXCH55SP3\ENG\SERVER\SETUP\I386).
      - The media's build is C(update.exe)'s file version; media without a readable version is
        refused.
    type: str
    required: true
  build:
    description:
      - The build the media must install, for example V(5.5.2650) for Exchange 5.5 SP3 (the
        source server's build, as C(sp_parity_result.remedy_build) gives it).
      - Builds are compared by major, minor and build number as integers; the revision is
        ignored.
      - Empty accepts whatever service pack the media holds; a downgrade is refused all the same.
    type: str
    default: ""
  kms_database_build:
    description:
      - The build that last ran the KM database, the file version of the old KM Server's
        C(Kmserver.exe) (C(sp_parity_result.database_build) gives it). With it, C(Kmserver.exe)
        must end not older than this build (the cause in KB Q259906), and a C(Kmserver.exe) that
        is not older needs no run.
      - Empty means it is not known; then only a C(Kmserver.exe) that still carries the Exchange
        CD's (RTM) build under the service pack must be raised (KB Q259906, Q192044).
      - The media's own build is never demanded of C(Kmserver.exe) - no source lists the
        C(Kmserver.exe) of each service pack (after 5.5 SP4 it may stay 5.5.2650.x).
    type: str
    default: ""
  arguments:
    description:
      - Switches passed to C(update.exe), each as one argument.
      - No unattended or silent switch is documented for the Exchange 5.5 service pack's
        C(update.exe), nor are its exit codes; the Windows NT service pack's C(-u -z -q) and
        Exchange Setup's C(/q) do not apply (KB Q194507, Q180404). That is why the switches are
        configurable; test the ones you use on a lab copy of the server first.
      - Arguments may not contain quotes, C(%), C(!) or line breaks.
    type: list
    elements: str
    default: []
  success_exit_codes:
    description:
      - Exit codes of C(update.exe) that count as success, together with a completed run in
        the setup log and the versions checked afterwards. A code is never proof on its own.
      - V(3010) or V(1641) in this list are read as "installed, restart required".
    type: list
    elements: int
    default: [0]
  timeout:
    description:
      - Seconds C(update.exe) may run. After that RV(outcome) is V(still_running) and the task
        fails; C(update.exe) is left running.
    type: int
    default: 3600
  poll_interval:
    description:
      - Seconds between reads of the setup log and the C(update.exe) process while the
        service pack installs.
    type: int
    default: 15
  progress_interval:
    description:
      - A progress line (elapsed time, phase, last setup-log line) is shown at least this often,
        in seconds, while the host answers.
    type: int
    default: 60
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.flow
  - exchops.kms.attributes
  - exchops.kms.attributes.windows
  - exchops.kms.winrm
attributes:
  check_mode:
    support: full
    details: >-
      Check mode does every read and every refusal but one, predicts C(changed) and runs
      nothing. A running C(MSExchangeKMS) is only a warning in check mode (the run it predicts
      comes after the backup, which stops KMS); without check mode it is refused.
  diff_mode:
    support: full
    details: The diff shows the Exchange build and C(Kmserver.exe)'s version before and after (predicted in check mode).
notes:
  - The account needs local administrator rights on the host (to run Setup, read the registry
    and configure services).
  - The KM database (C(Kmsdata)) is never read, copied or changed by this module; back it up
    and verify the copy first (M(exchops.kms.kms_backup), KB Q190713), and stop
    C(MSExchangeKMS) (M(exchops.kms.exchange_service)).
  - C(update.exe) stops the Exchange services during the run (KB Q290226); Exchange is down
    until it ends and restarts them. C(MSExchangeKMS) needs its startup password to start;
    start it afterwards with M(exchops.kms.exchange_service).
  - A service pack install takes many minutes. If C(update.exe) waits at a dialog (no
    unattended switch is documented for 5.5), the task ends with V(still_running) after
    O(timeout). Its WinRS shell is then left open, because deleting a shell ends the processes
    it started; Windows closes it after the shell idle timeout (2 hours by default).
  - A restart is never performed; V(ok_reboot_required) asks for one.
seealso:
  - name: KB Q259906 - Event ID 5389 when KM Server is moved to a new server
    description: Reapply the current service pack after installing KM Server from the CD.
    link: https://github.com/jeffpar/kbarchive/blob/master/kb/259/Q259906/README.md
  - name: KB Q235418 - a password in the KMS ImagePath breaks the service pack's Update.exe
    description: Why a KMS ImagePath with arguments is refused.
    link: https://github.com/jeffpar/kbarchive/blob/master/kb/235/Q235418/README.md
  - module: exchops.kms.exchange_facts
  - module: exchops.kms.kms_backup
  - module: exchops.kms.exchange_service
author:
  - exchops.kms maintainers (@exchops)
"""

EXAMPLES = r"""
- name: Reapply Exchange 5.5 SP3 on the new KM Server
  exchops.kms.exchange_service_pack:
    media: D:\EXCH55SP3\ENG\SERVER\SETUP\I386
    build: 5.5.2650

- name: Reapply the source's service pack, from the media named in the inventory
  exchops.kms.exchange_service_pack:
    media: "{{ kms_remediate_sp_media }}"
    build: "{{ hostvars[kms_source_host].ansible_facts.exchange.build }}"
    timeout: 5400
  register: sp

- name: Show what the service pack run did
  ansible.builtin.debug:
    msg: "{{ sp.outcome }}: {{ sp.build_before }} -> {{ sp.build_after }}, Kmserver.exe {{ sp.kms_binary_after }}. {{ sp.remedy }}"
"""

RETURN = r"""
outcome:
  description:
    - V(ok) - installed; V(ok_reboot_required) - installed, a restart is asked for;
      V(failed) - the setup log or the exit code says it failed; V(still_running) -
      C(update.exe) did not end within O(timeout); V(unknown) - the run cannot be judged.
    - V(ok) with C(changed=false) when nothing had to be done; V(not_run) in check mode when
      C(update.exe) would run; V(refused) when a check refused the run (the task fails).
  returned: always
  type: str
  sample: ok
remedy:
  description: What to do next, as a sentence, for the outcome.
  returned: always
  type: str
  sample: None for the service pack. Start MSExchangeKMS with its startup password (exchops.kms.exchange_service) and check that it stays running.
media_build:
  description: The build the media installs (C(update.exe)'s file version).
  returned: when update.exe in the media has a version
  type: str
  sample: 5.5.2650.0
build_before:
  description: The server build before the run (registry C(NewestBuild)).
  returned: always
  type: str
  sample: 5.5.2650.0
build_after:
  description: The server build after the run (predicted in check mode).
  returned: always
  type: str
  sample: 5.5.2650.0
kms_binary_before:
  description: C(Kmserver.exe)'s file version before the run; null without KM Server.
  returned: always
  type: str
  sample: 5.5.1960.8
kms_binary_after:
  description: C(Kmserver.exe)'s file version after the run (predicted in check mode).
  returned: always
  type: str
  sample: 5.5.2650.12
setup_log_tail:
  description: The last lines (at most 20) that this run appended to the setup log.
  returned: always
  type: list
  elements: str
  sample: ["[10:42:17] Starting service MSExchangeIS", "[10:42:18] Setup completed successfully."]
start_types_restored:
  description:
    - Services whose start type Setup changed, with the start type before, the one Setup left
      and whether it was set back. Empty when none changed.
  returned: always
  type: dict
  sample: {"MSExchangeIS": {"before": "auto", "after_setup": "manual", "restored": true}}
exit_code:
  description: The exit code of C(update.exe); null when it did not run or the connection to it was lost.
  returned: always
  type: int
  sample: 0
"""
