#!/usr/bin/python
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Documentation for the exchops.kms.exchange_service_pack action plugin (the code is in plugins/action)."""

# ansible-core 2.16 still runs modules on Python 2.7 and its sanity test asks module files for
# this boilerplate; a doc stub has no annotations, so nothing of ours is lost.
from __future__ import absolute_import, division, print_function

__metaclass__ = type

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
    registry (C(NewestBuild)), the file versions of C(Store.exe) and C(Kmserver.exe),
    C(MSExchangeKMS). The media's build is O(media_build), the operator's statement. No source
    gives a way to read the build a kit installs (C(update.exe)'s file version is only quoted
    beside it), so without the statement the task refuses, with nothing changed. Nothing runs
    when Exchange is already on the media's service pack, C(Store.exe) (when readable) is not on
    an earlier one (its file version shows the service pack installed, KB Q278518) and
    C(Kmserver.exe) is not one to raise (see O(kms_database_build)) (C(changed=false)).
  - Refuses, with nothing changed, a media folder without C(update.exe), an unstated
    O(media_build), media that is not the wanted O(build), media older than the
    server or than C(Kmserver.exe) (a downgrade), C(MSExchangeKMS) whose ImagePath carries
    arguments such as the startup password (update.exe then fails, KB Q235418), a KM Server that
    is only partly installed (KB Q290226), a running C(MSExchangeKMS) and an C(update.exe) that
    is already running.
  - Before C(update.exe) starts, stops every running Exchange service (C(MSExchange*)), each
    one's dependents first (C(sc enumdepend); KB Q235978 "Stop all Exchange Server services",
    Q177221), and records them in C(exchops-sp-run.txt) beside the setup log. Once
    C(update.exe) has ended, whatever the outcome, starts them again, all but
    C(MSExchangeKMS), which starts only after a proven success, with its startup password
    (M(exchops.kms.exchange_service)). RV(services_stopped), RV(services_started).
  - Judges the run from evidence read on the host after C(update.exe) has ended (its command
    returned, or C(tasklist) no longer lists it) - the registry build and C(Store.exe)'s file
    version must both be on the media's service pack (KB Q243604, Q278518), and
    C(Kmserver.exe) no longer one to raise (see O(kms_database_build)). RV(decided_by)
    names the readings that decided. The exit code and the lines the run appended to the
    setup log (C(Exchange Server Setup.log) at the root of the Exchange drive for 4.0 - 5.5, KB
    Q182518) are supporting readings only, as their wording is not documented.
  - RV(outcome) is V(ok), V(ok_reboot_required), V(failed), V(waiting_for_input),
    V(still_running) or V(unknown), each with a RV(remedy). The task fails unless the outcome
    is V(ok) or V(ok_reboot_required).
  - C(update.exe) is an interactive installer (KB Q191013, Q235978). When it still runs but
    neither the setup log nor the Exchange C(BIN) folder changes for O(no_progress_timeout)
    seconds, the task ends with V(waiting_for_input). C(update.exe) is never ended, nothing is
    restarted under it, and the message names the services that were stopped and how to bring
    them back. Run the task again once C(update.exe) has ended; it finds its record, judges the
    versions and starts the services again.
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
      - A folder without C(update.exe) is refused.
    type: str
    required: true
  media_build:
    description:
      - The build the media installs, as the operator states it, for example V(5.5.2650) for
        the Exchange 5.5 SP3 kit (the kit's name and readme say which service pack it is).
      - Needed for every run (empty is refused, with nothing changed) but one that finishes an
        earlier run's record. No source gives a way to read a kit's build on the host, so the
        statement decides. C(update.exe)'s file version can only refuse it - when it is another
        Exchange build than the stated service pack's, the kit is most likely not the one
        stated - and never chooses a build. The outcome is proven from the versions afterwards.
      - Used to refuse a downgrade and another service pack than O(build) before anything runs.
    type: str
    default: ""
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
      - Exit codes of C(update.exe) that count as success. They are not documented for the 5.5
        service pack, so they decide nothing on their own; the versions read afterwards do. An
        exit code not listed is reported as a warning.
      - V(3010) or V(1641) in this list, with the versions in place, are read as "installed,
        restart required". These are Windows' ERROR_SUCCESS_REBOOT_REQUIRED and
        ERROR_SUCCESS_REBOOT_INITIATED (Windows Installer returns them); that update.exe uses
        them alike is an assumption.
    type: list
    elements: int
    default: [0]
  timeout:
    description:
      - Seconds C(update.exe) may run. After that RV(outcome) is V(still_running) and the task
        fails; C(update.exe) is left running and nothing is restarted under it.
    type: int
    default: 3600
  no_progress_timeout:
    description:
      - Seconds C(update.exe) may run without progress - no growth of the setup log, no file
        changed in the Exchange C(BIN) folder - before the task ends with V(waiting_for_input).
        C(update.exe) is left running; it is most likely waiting at a prompt.
      - Progress is only judged while C(tasklist) shows C(update.exe) running.
    type: int
    default: 900
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
  launch:
    description:
      - Who starts C(update.exe) on a host reached through a Windows jump host
        (C(exchange_jump_host)); ignored for a host reached directly.
      - V(operator) - the module stops the Exchange services and writes its run record, then
        shows the exact console steps and waits while an operator at the server's console runs
        C(update.exe) and answers its prompts (KB Q191013). It polls the setup log, the
        Exchange C(BIN) folder and the versions through the jump host, and goes on once the
        versions moved and the log and C(BIN) were unchanged for O(quiet_period) seconds. The
        module never starts C(update.exe) through the jump host, and never looks for it in a
        process list (that needs WMI the server may lack).
      - V(at_interactive) - as V(operator), but the module writes a small batch beside the
        setup log (C(exchops\runsp.cmd)), reads the server's clock (C(net time \\SERVER)) and
        adds a job (C(at \\SERVER HH:MM /interactive "cmd /c ...")) that starts C(update.exe) on
        the console's desktop a minute or two later, where an operator answers it. The batch
        makes a C(started) and a C(finished) marker folder; the wait ends at the C(finished)
        one. Jobs run as SYSTEM, which reads only the server's local disks (KB Q105995), so O(media)
        must be such a path. The job needs the server's Schedule service running.
      - C(wmic process call create) is not offered, since it cannot start an interactive process
        remotely, and no source shows an unattended command line for this C(update.exe).
      - If the wait ends first (O(timeout)), RV(outcome) is V(waiting_for_input), the services
        stay stopped and the run record stays; the next run polls again from it.
    type: str
    choices: [operator, at_interactive]
    default: operator
  quiet_period:
    description:
      - With O(launch=operator), seconds the setup log and the Exchange C(BIN) folder must stay
        unchanged, once the versions moved, before the installer at the console counts as
        ended.
    type: int
    default: 120
  resume_only:
    description:
      - Only finish the run an earlier task of this module left on the host (its run record,
        beside the setup log) - for instance one that ended V(waiting_for_input) - and never
        start a new one. Once C(update.exe) has ended, the versions are judged and the services
        it stopped are started again, all but C(MSExchangeKMS).
      - With no run record nothing changes and RV(outcome) is V(ok).
      - For a pair that already matches, where a new run is not wanted but an earlier one may
        be unfinished (the role C(exchops.kms.kms_remediate) uses it so).
    type: bool
    default: false
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
    and control services).
  - The KM database (C(Kmsdata)) is never read, copied or changed by this module; back it up
    and verify the copy first (M(exchops.kms.kms_backup), KB Q190713), and stop
    C(MSExchangeKMS) (M(exchops.kms.exchange_service)).
  - Exchange is down from the stop of its services until C(update.exe) has ended and they are
    started again. KB Q235978 also asks to stop Performance Monitor, server monitors, SNMP and
    UPS software (a server monitor can restart the System Attendant mid-update, Q177221); this
    module does not.
  - C(update.exe) is interactive and no unattended switch is documented for 5.5 (KB Q191013).
    A process started through WinRS has no window on the console that anyone has shown, so a
    prompt cannot be answered from this module; an operator-driven run at the console is the
    dependable way for 5.5. The task then ends with V(waiting_for_input) or V(still_running)
    and the WinRS shell is left open, because deleting a shell ends the processes it started.
  - Through a jump host (C(exchange_jump_host)) the services are stopped and started with
    C(sc \\\\SERVER), the setup log and the run record are read and written over the server's
    administrative share, and C(update.exe) is run by an operator at the console (O(launch)).
    With O(launch=at_interactive) the batch C(exchops\runsp.cmd) and its marker folders
    C(exchops\sp-<run>-started) and C(-finished) stay beside the setup log as a trace of the run.
  - A restart is never performed; V(ok_reboot_required) asks for one.
  - Start types are read before and after and changes are reported in RV(start_types_changed),
    never set back; no source shows Setup changing them, and a 5.5 install leaves
    C(MSExchangeKMS) manual on purpose (KB Q184420).
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
    media_build: 5.5.2650  # the kit is the Exchange 5.5 SP3 kit, as its readme says
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
    - V(ok) - the versions prove the service pack in place; V(ok_reboot_required) - in place,
      and the exit code is a listed 3010 / 1641; V(failed) - update.exe ended and the versions
      are not (or only partly) on the media's service pack; V(waiting_for_input) - update.exe
      still runs but made no progress for O(no_progress_timeout) seconds; V(still_running) -
      C(update.exe) did not end within O(timeout); V(unknown) - the run cannot be judged
      (the versions could not be read).
    - V(ok) with C(changed=false) when nothing had to be done; V(not_run) in check mode when
      C(update.exe) would run; V(refused) when a check refused the run (the task fails).
  returned: always
  type: str
  sample: ok
decided_by:
  description: The readings that decided the outcome, each with its value.
  returned: always
  type: list
  elements: str
  sample: ["update.exe ended: its command returned exit code 0", "registry: Exchange 5.5.2650 (5.5 SP3) (NewestBuild)", "Store.exe file version 5.5.2650.23"]
media_build_from:
  description: Where the media's build came from - V(operator statement) or V(run record of an earlier run).
  returned: when the media's build is known
  type: str
  sample: operator statement
services_stopped:
  description: The Exchange services this run (or the earlier run whose record it finished) stopped, in the order stopped.
  returned: always
  type: list
  elements: str
  sample: ["MSExchangeIS", "MSExchangeMTA", "MSExchangeDS", "MSExchangeSA"]
services_started:
  description: The services started again after update.exe ended (never C(MSExchangeKMS)); those Setup had already started are not listed.
  returned: always
  type: list
  elements: str
  sample: ["MSExchangeSA", "MSExchangeDS"]
store_version_before:
  description: C(Store.exe)'s file version before the run.
  returned: always
  type: str
  sample: 5.5.2650.23
store_version_after:
  description: C(Store.exe)'s file version after the run.
  returned: always
  type: str
  sample: 5.5.2650.23
update_pid:
  description: The process ID of the C(update.exe) that still runs (V(waiting_for_input), V(still_running)).
  returned: always
  type: int
  sample: 1324
remedy:
  description: What to do next, as a sentence, for the outcome.
  returned: always
  type: str
  sample: None for the service pack. Start MSExchangeKMS with its startup password (exchops.kms.exchange_service) and check that it stays running.
media_build:
  description: The build the media installs, as O(media_build) states it (or as the run record of an earlier run holds it).
  returned: when the media's build is known
  type: str
  sample: 5.5.2650.0
build_before:
  description: The server build before the run (registry, Setup key).
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
  description:
    - The last lines (at most 20) that this run appended to the setup log, as read; no outcome
      depends on them.
    - The sample is illustrative - lines that KB Q290226 (the first) and KB Q202258 (the other
      two) quote from C(Exchange Server Setup.log); no source documents the lines of a whole run.
  returned: always
  type: list
  elements: str
  sample: ["++++ Microsoft Exchange Setup initialized ++++", "Bound to local DSA", "Bound to appropriate DSA"]
start_types_changed:
  description:
    - Services whose start type changed during the run, with the start type before and the one
      Setup left. They are not set back. Empty when none changed.
  returned: always
  type: dict
  sample: {"MSExchangeIS": {"before": "auto", "after_setup": "manual"}}
exit_code:
  description: The exit code of C(update.exe); null when it did not run or the connection to it was lost.
  returned: always
  type: int
  sample: 0
"""
