#!/usr/bin/python
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Documentation for the exchops.kms.exchange_service action plugin (the code is in plugins/action)."""

# ansible-core 2.16 still runs modules on Python 2.7 and its sanity test asks module files for
# this boilerplate; a doc stub has no annotations, so nothing of ours is lost.
from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: exchange_service
short_description: Start, stop or restart an Exchange service over WinRM, KMS with its startup password
version_added: 0.1.0
description:
  - Changes the host. Starts, stops or restarts one Windows service, above all the Key Management
    Server service C(MSExchangeKMS), and after a start proves that it stays up.
  - "Start: C(sc start NAME), for C(MSExchangeKMS) C(sc start MSExchangeKMS <startup password>):
    the password is the service's start parameter, as in the Services console's Start parameters
    box. It is never passed to C(net start) and never written into the service's ImagePath, where
    it would make the service pack's update.exe fail (KB Q235418). The service manager starts the
    dependencies first (C(MSExchangeDS), which needs C(MSExchangeSA))."
  - "Startup disk (KB Q196129): before starting C(MSExchangeKMS) the task reads
    C(MasterPasswordPath) under C(HKLM\\SOFTWARE\\Microsoft\\Exchange\\KMServer). When it
    starts with a drive letter (C(A:\\)), KMS reads its startup password from the disk in that
    drive, so it is started with no start parameter and O(startup_password) is not needed; one
    given is not passed, with a warning that quotes the reading. The file on the disk is not
    looked for (KB Q196129 names it C(Kmserver.pwd), KB Q155216 C(Kmspwd.ini)); the start is
    judged from the service's state and events like any other. Put the disk in the server's
    drive before the task runs."
  - After C(sc start), C(sc query) is polled until the service is RUNNING or STOPPED. Then the
    service must stay RUNNING for O(watch) seconds, and no new C(MSExchangeKMS) event 5389, 5057,
    5058, 5015 or 5085 may appear in the Application log. Only events newer than the newest one
    noted before the start count, so old 5389s of a KB Q259906 server do not.
  - On a failed start the task names the event, what it means and what to do; for example 5389
    (KM binaries older than the KM database, KB Q259906) points to reapplying the service pack, and
    5057 to a wrong startup password (after a move, the original KM Server's is needed) or,
    for a KMS that reads a startup disk, to the disk.
  - "Stop: C(sc enumdepend NAME) lists the services that depend on NAME; each running one is
    stopped with C(sc stop), dependents first, and C(sc query) polled until it is STOPPED; then NAME
    the same way. A stop whose C(sc query) CHECKPOINT does not move for 30 seconds (or the
    service's longer WAIT_HINT) hangs and fails the task then; any other fails after O(timeout).
    Either way the message names the service and its state."
  - Idempotent. A service already in the wanted state is only queried. V(restarted) always stops
    and starts again.
  - Runs on the Ansible controller and talks to the host over WinRM itself with plain C(cmd.exe)
    tools (C(sc), C(wmic)); the host needs WinRM only, never PowerShell.
options:
  name:
    description:
      - The service's key name, as C(sc query) prints it after C(SERVICE_NAME), for example
        C(MSExchangeKMS), C(MSExchangeDS) or C(MSExchangeIS). Not the display name.
    type: str
    required: true
  state:
    description:
      - V(started) starts the service if it is not running and proves it stays up.
      - V(stopped) stops it, with the services that depend on it.
      - V(restarted) stops it if it runs, then starts it and proves it stays up; always a change.
      - A service found START_PENDING or STOP_PENDING is first waited for. A paused service fails
        the task; resume it with C(sc continue) first.
    type: str
    required: true
    choices: [started, stopped, restarted]
  startup_password:
    description:
      - The KMS startup password, passed to C(MSExchangeKMS) as its start parameter (KB Q184420).
        Case-sensitive (KB Q190699).
      - It is the password of the KM Server that created the KM database. After a KM Server move
        or a restore of Kmsdata that is the B(original) KM Server's startup password, not the one
        shown when KM Server was installed on the new server (KB Q154531, Q198814, Q155216);
        with the wrong one KMS exits with event 5057.
      - Required to start or restart C(MSExchangeKMS) unless its C(MasterPasswordPath) names a
        startup disk (see above); without it the task reads the service and that value, then
        fails with nothing changed. Ignored, with a warning, for other services and for a KMS
        that reads a startup disk.
      - Never shown in results, messages or C(-vvvv) output. Keep it in Ansible Vault, for
        example in the variable C(kms_startup_password).
      - It is passed as C(sc start MSExchangeKMS "<password>"). A password with a space, a double quote, a percent sign, an exclamation mark or a
        control character, or one that ends with a backslash, is refused before anything is sent, as
        C(cmd.exe) and C(sc) could not pass it unchanged on the C(sc start) command line, where it
        travels in double quotes (so C(&), C(|), C(<), C(>), C(^) and parentheses are fine).
      - Pass it from a variable, not as a literal. When an ad hoc task fails, C(ansible) shows the
        start of its raw arguments (C(-a)) in the error, before any plugin can mask them.
    type: str
  watch:
    description:
      - Seconds the service must stay RUNNING after it started, checked every few seconds. A new
        failure event during this time fails the task too.
      - V(0) checks the state and the events once, right after the service reached RUNNING.
    type: int
    default: 15
  timeout:
    description:
      - Seconds the service may take to reach RUNNING after C(sc start), or each service to
        reach STOPPED after C(sc stop); also the longest a single command on the host may take.
    type: int
    default: 300
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.flow
  - exchops.kms.attributes
  - exchops.kms.attributes.windows
  - exchops.kms.winrm
attributes:
  check_mode:
    support: full
    details: Only queries the service (C(sc query), C(sc qc)) and predicts RV(changed) and RV(state).
  diff_mode:
    support: full
    details: Returns the service's state before and after (predicted in check mode).
notes:
  - The account needs the right to start and stop services and to read the Application event
    log; a local administrator has both.
  - The KM database is never opened or changed by this module. KMS itself writes to it when it
    starts (a newer Kmserver.exe stamps its build into it, which is why an older one then fails
    with event 5389, KB Q259906). Back it up first with C(exchops.kms.kms_backup); the role
    C(exchops.kms.kms_remediate) does the backup, the service pack and this restart in order.
  - Duration. A start takes the service's start time plus O(watch) seconds (15 by default); a stop
    takes as long as the service and its dependents need. O(timeout) bounds both.
  - C(changed) is V(true) whenever a start or a stop was sent, also when the task then fails
    (dependencies may have been started, the service may have run briefly).
  - Stopping a service stops the services that depend on it (RV(dependents_stopped)); V(restarted)
    does not start those again. Start them with this module afterwards.
  - Starting uses C(sc.exe), which is a Resource Kit tool on Windows 2000 and NT 4.0. Where
    C(wmic) is missing (Windows 2000), the Application log cannot be read; then only the state
    is watched, and a warning says so.
  - Through a Windows jump host (C(exchange_jump_host) on the host, for KM servers on Windows NT
    4.0 / 2000 that run no WinRM), the jump host runs C(sc \\SERVER query|qc|stop|enumdepend)
    and C(wmic /node:SERVER) for the events. MSExchangeKMS is started there by a PowerShell on the
    jump host (never on the KM server) through .NET C(ServiceController(name, server).Start()),
    with O(startup_password) read from the command's standard input, so that the password is on
    no command line of the jump host, which its process-creation audit (event 4688) records.
    Whether the start worked is judged only from C(sc query) and the service's new events.
  - C(exchange_jump_allow_password_in_argv=true) on the host makes the jump host run
    C(sc \\SERVER start MSExchangeKMS "password") instead; the password then is on the jump
    host's command line and in its audit log (and in any EDR that records command lines). Use it
    only where PowerShell or .NET cannot run on the jump host. A KMS that reads its password from
    a startup disk needs neither.
  - Through a jump host, a server it cannot reach or control (its name, the SMB 1 client,
    NetBIOS, the account's rights, the double hop) fails with Windows' own text, every cause that
    text may stand for, and what to do; C(exchops.kms.doctor) on the host tells them apart.
seealso:
  - module: exchops.kms.exchange_facts
  - name: KB Q259906 - Event ID 5389 when KM Server is moved to a new server
    description: The Exchange 5.5 problem this collection checks for and fixes.
    link: https://github.com/jeffpar/kbarchive/blob/master/kb/259/Q259906/README.md
  - name: KB Q184420 - KM Server startup password and error 2140 / event 5057
    description: Where the startup password comes from and what a wrong one looks like.
    link: https://github.com/jeffpar/kbarchive/blob/master/kb/184/Q184420/README.md
author:
  - exchops.kms maintainers (@exchops)
"""

EXAMPLES = r"""
- name: Start MSExchangeKMS with its startup password and prove it stays up
  exchops.kms.exchange_service:
    name: MSExchangeKMS
    state: started
    startup_password: "{{ kms_startup_password }}"
  no_log: true

- name: Start MSExchangeKMS that reads its startup password from a disk in A:\ (KB Q196129)
  exchops.kms.exchange_service:
    name: MSExchangeKMS
    state: started

- name: Stop MSExchangeKMS before copying the KM database
  exchops.kms.exchange_service:
    name: MSExchangeKMS
    state: stopped

- name: Restart KMS and watch it for a minute
  exchops.kms.exchange_service:
    name: MSExchangeKMS
    state: restarted
    startup_password: "{{ kms_startup_password }}"
    watch: 60
  no_log: true

- name: Restart the Directory service (this stops KMS, IS and MTA, which depend on it)
  exchops.kms.exchange_service:
    name: MSExchangeDS
    state: restarted
  register: directory

- name: Show which services the restart stopped
  ansible.builtin.debug:
    msg: "Stopped with the Directory: {{ directory.dependents_stopped | join(', ') }}"
"""

RETURN = r"""
name:
  description: The service's name, as given.
  returned: always
  type: str
  sample: MSExchangeKMS
state:
  description:
    - The service's state at the end (running, stopped, start_pending, stop_pending, ...); in check
      mode the state it would have.
  returned: always
  type: str
  sample: running
previous_state:
  description: The service's state before the task.
  returned: always
  type: str
  sample: stopped
changed:
  description: Whether the service was (or, in check mode, would be) started or stopped.
  returned: always
  type: bool
  sample: true
events:
  description:
    - The service's new Application-log events (source = the service's name), newest first, read
      after a start; empty when nothing was started or nothing new was logged.
  returned: always
  type: list
  elements: dict
  sample: [{"id": 5389, "source": "MSExchangeKMS", "time": "2001-03-14T09:12:40+00:00",
            "type": "Information", "record": 4712, "message": "KMS is exiting with error 0."}]
dependencies_started:
  description: Services the service depends on that were not running before the start and run after it.
  returned: when a start was sent
  type: list
  elements: str
  sample: [MSExchangeSA, MSExchangeDS]
password_source:
  description:
    - Where C(MSExchangeKMS) takes its startup password from, read before a start from
      C(MasterPasswordPath) (KB Q196129). V(disk) a startup disk (a drive letter in the value;
      started with no start parameter), V(start_parameter) the typed password (empty or no value).
  returned: for MSExchangeKMS, when the state wanted is started or restarted
  type: str
  sample: start_parameter
dependents_stopped:
  description:
    - Services that depended on the service and were stopped before it, by service name, in the
      order they were stopped.
  returned: when a stop was sent
  type: list
  elements: str
  sample: [MSExchangeIS, MSExchangeKMS]
diff:
  description: The service's state before and after.
  returned: with C(--diff)
  type: dict
  sample: {"before": {"name": "MSExchangeKMS", "state": "stopped"},
           "after": {"name": "MSExchangeKMS", "state": "running"}}
"""
