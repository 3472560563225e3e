#!/usr/bin/python
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Documentation for the exchops.kms.exchange_facts action plugin (the code is in plugins/action)."""

# ansible-core 2.16 still runs modules on Python 2.7 and its sanity test asks module files for
# this boilerplate; a doc stub has no annotations, so nothing of ours is lost.
from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: exchange_facts
short_description: Read Exchange version, service pack and KM Server facts over WinRM
version_added: 0.1.0
description:
  - Reads, without changing anything on the host, which Exchange version, build and service pack
    a Windows host runs, and for the Key Management (KM) Server the build of its binaries, the
    state of the C(MSExchangeKMS) service, the location of the KM database and its recent events.
  - Runs on the Ansible controller and talks to the host over WinRM itself, with plain C(cmd.exe)
    tools (C(reg query), C(sc), C(wmic)); PowerShell is never used.
  - A host that runs a WinRM server is read directly. Windows has WinRM only from Windows Server
    2003 R2 and Windows Vista SP1 on (MS-WSMV product behavior,
    U(https://msdn.microsoft.com/en-us/library/cc251762); "Installation and Configuration for
    Windows Remote Management", U(https://msdn.microsoft.com/en-us/library/aa384372)).
  - A server on Windows NT 4.0 or Windows 2000, where Exchange 4.0 to 5.5 and Exchange 2000 run,
    has no WinRM. It is read through a Windows jump host that WinRM reaches. Set the host variable
    C(exchange_jump_host) to the jump host's inventory name and C(ansible_host) to the server's
    name as the jump host reaches it (NetBIOS name or address). The shell opens on the jump host
    with the jump host's own C(ansible_*) settings, and the same tools name the server
    (C(reg query \\KMSNEW\HKLM\...), C(sc \\KMSNEW), C(wmic /node:KMSNEW)). The
    jump host's logon must delegate credentials (C(ansible_winrm_transport=credssp)); see the
    collection's README, "Reaching real KM servers".
  - All readings come from one WinRS shell and one batched command per host.
  - Sets C(ansible_facts.exchange). A host that cannot be read fails with a message naming the
    host, the problem and the setting to change.
options:
  kms_event_count:
    description:
      - How many of the newest C(MSExchangeKMS) events from the Application log to return in
        RV(ansible_facts.exchange.kms.events).
      - V(0) skips reading the event log.
    type: int
    default: 10
  timeout:
    description:
      - Seconds the host may take to answer the probe before the task fails for that host.
      - Reading a large Application log with C(wmic ntevent) is what takes longest; lower
        O(kms_event_count) to V(0) to skip it on a slow host.
    type: int
    default: 120
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
    details: Read-only; check mode gathers the same facts.
  diff_mode:
    support: none
  facts:
    support: full
notes:
  - The account needs the right to read C(HKLM\SOFTWARE\Microsoft\Exchange), query services
    and read the Application event log; a local administrator has all three.
  - The KM database is never opened or changed; only its folder is located.
seealso:
  - name: KB Q259906 - Event ID 5389 when KM Server is moved to a new server
    description: The Exchange 5.5 problem this collection checks for and fixes.
    link: https://github.com/jeffpar/kbarchive/blob/master/kb/259/Q259906/README.md
author:
  - exchops.kms maintainers (@exchops)
"""

EXAMPLES = r"""
- name: Read Exchange facts from the new KM Server
  exchops.kms.exchange_facts:

- name: Read the facts of the old KM Server and keep them under its own name
  exchops.kms.exchange_facts:
    kms_event_count: 20
  delegate_to: "{{ kms_source_host }}"
  delegate_facts: true

- name: Show the release and the KM binaries' build
  ansible.builtin.debug:
    msg: "{{ ansible_facts.exchange.release }}, Kmserver.exe {{ ansible_facts.exchange.kms.binary_build }}"
"""

RETURN = r"""
ansible_facts:
  description: Facts added to the host.
  returned: always
  type: complex
  contains:
    exchange:
      description: What the host runs, as read from its registry, services, files and event log.
      returned: always
      type: complex
      contains:
        installed:
          description: Whether Exchange is installed (setup key, services and binaries agree).
          returned: always
          type: bool
          sample: true
        product:
          description: The product name.
          returned: when installed
          type: str
          sample: Exchange Server 5.5
        version:
          description: The version as people say it.
          returned: when installed
          type: str
          sample: "5.5"
        build:
          description: The server build, major.minor.build.revision.
          returned: when installed
          type: str
          sample: 5.5.2650.0
        build_from:
          description:
            - The registry value that decided RV(ansible_facts.exchange.build).
            - For Exchange 4.0 - 2003 V(NewestBuild) (KB Q158956); on a host without it
              V(ServicePackBuild); without both V(ServicePackNumber), read as the build of that
              service pack, so a hotfix or rollup above it does not show (a warning says so).
            - V(MsiBuildMajor) for Exchange 2007 and later.
          returned: when installed
          type: str
          sample: NewestBuild
        build_number:
          description: The third part of the build, which names the service pack for 4.0 - 2003.
          returned: when installed
          type: int
          sample: 2650
        service_pack:
          description: The service pack number (0 for RTM).
          returned: when installed
          type: int
          sample: 3
        release:
          description: The release the build belongs to.
          returned: when installed
          type: str
          sample: Exchange Server 5.5 SP3
        install_path:
          description: The Exchange folder on the host.
          returned: when installed
          type: str
          sample: C:\EXCHSRVR
        kms:
          description: The Key Management Server on this host.
          returned: always
          type: complex
          contains:
            installed:
              description: Whether KM Server is installed.
              returned: always
              type: bool
              sample: true
            service:
              description:
                - The MSExchangeKMS service. C(state) is running, stopped, start_pending,
                  stop_pending or absent; C(start_mode) auto, manual or disabled.
                - C(binary_path) is the service's ImagePath with anything after the program
                  masked; C(image_path_has_arguments) is V(true) when something follows it, such
                  as a startup password, which makes the service pack's update.exe fail
                  (KB Q235418).
              returned: always
              type: dict
              sample: {"name": "MSExchangeKMS", "state": "stopped", "start_mode": "manual",
                       "binary_path": "C:\\Exchsrvr\\Bin\\Kmserver.exe",
                       "image_path_has_arguments": false, "dependencies": ["MSExchangeDS"],
                       "account": "EXCHDOM\\ExchSvc",
                       "display_name": "Microsoft Exchange Key Management Server"}
            binary_build:
              description: File version of Kmserver.exe.
              returned: when KM Server is installed and the file version can be read
              type: str
              sample: 5.5.1960.8
            binary_release:
              description: The release that Kmserver.exe's build belongs to.
              returned: when KM Server is installed and the file version can be read
              type: str
              sample: Exchange Server 5.5 RTM
            database_path:
              description:
                - The KM database folder. Exchange 5.5 and 2000 keep it in C(Kmsdata) under the
                  Exchange folder (KB Q201271); Exchange 4.0 and 5.0 keep KM Server in a
                  C(SECURITY) folder beside the Exchange folder, such as C(C:\SECURITY) beside
                  C(C:\EXCHSRVR) (KB Q143380, Q155216).
              returned: when KM Server is installed
              type: str
              sample: C:\EXCHSRVR\KMSDATA
            events:
              description: The newest MSExchangeKMS events from the Application log, newest first.
              returned: always
              type: list
              elements: dict
              sample: [{"id": 5389, "source": "MSExchangeKMS", "time": "2001-03-14T09:12:40+00:00",
                        "type": "Information", "record": 4711,
                        "message": "KMS is exiting with error 0."}]
            password_source:
              description:
                - Where KMS takes its startup password from, read from C(MasterPasswordPath)
                  under C(HKLM\\SOFTWARE\\Microsoft\\Exchange\\KMServer) (KB Q196129).
                  V(disk) when the value starts with a drive letter (KMS reads the password from
                  a startup disk in that drive and is started with no start parameter);
                  V(start_parameter) otherwise (the password is typed, or given as
                  C(startup_password)).
                - After a KM Server move either way it is the original KM Server's password or
                  disk that opens the moved KM database (KB Q154531, Q198814).
              returned: when the KMServer key exists and can be read
              type: str
              sample: start_parameter
            master_password_path:
              description: The data of C(MasterPasswordPath) as read; V(null) when the value is not there.
              returned: when the KMServer key exists and can be read
              type: str
              sample: "A:\\"
            matches_server:
              description:
                - V(false) when Kmserver.exe is of another Exchange version than the server, or
                  still carries its version's first (RTM) build, the Exchange CD's, on a server
                  with a service pack - KM Server installed from the CD after the service pack,
                  which must then be reapplied (KB Q259906 MORE INFORMATION, Q192044).
                - V(true) otherwise, also when Kmserver.exe carries an earlier service pack's
                  build than the server (for example 5.5.2650 on 5.5 SP4), because no source
                  lists the Kmserver.exe of each service pack, so that alone proves nothing.
                - One server cannot show the build that last ran its KM database. Whether KMS
                  will exit with event 5389 after a move (the target's Kmserver.exe older than
                  that build) is judged per pair by M(exchops.kms.kms_move_facts).
              returned: when Exchange is installed and Kmserver.exe's version can be read
              type: bool
              sample: false
        reach:
          description:
            - How the host was read. C(via) is the inventory name of the jump host the readings
              were taken through, V(null) when the host was read over its own WinRM. C(auth) is
              how the server was authenticated to - the jump host's credential mode
              (V(delegated)) or, read directly, the WinRM transport.
          returned: always
          type: dict
          sample: {"via": "jump01", "auth": "delegated"}
        windows:
          description:
            - The Windows the host runs, as its registry gives it under
              C(HKLM\SOFTWARE\Microsoft\Windows NT\CurrentVersion), read in the same command
              line as the rest (through the jump host for a server behind one). C(version) is
              C(CurrentVersion) (V(4.0) Windows NT 4.0, V(5.0) Windows 2000), C(build)
              C(CurrentBuildNumber), C(service_pack) C(CSDVersion) (such as V(Service Pack 6);
              Windows NT 4.0 SP6a keeps SP6's text). Each is reported verbatim, never
              interpreted.
            - A member is V(null) when its value is not there (C(CSDVersion) without a service
              pack) or could not be read (a warning says why); C(sources.windows) says which.
            - The collection decides nothing from it; it tells an operator, and a rehearsal twin
              (C(exchlab twin)), which Windows a legacy server runs. See the collection's
              C(docs/registry.md), "Windows version".
          returned: always
          type: dict
          sample: {"version": "4.0", "build": "1381", "service_pack": "Service Pack 6"}
        sources:
          description:
            - Where each reading came from (registry value, file version, event log). The entry of
              a reading that is missing starts with C(unavailable) and gives the reason, such as
              WMI's answer or a missing C(wmic).
            - C(events) names the event log read, also when it held no MSExchangeKMS event;
              C(windows) names the values behind RV(ansible_facts.exchange.windows); one that
              was not read is followed by C(not there) or C(unreadable) in parentheses.
          returned: always
          type: dict
          sample: {"build": "HKLM\\SOFTWARE\\Microsoft\\Exchange\\Setup: Services Version 55, NewestBuild 2650",
                   "kmserver_version": "file version of C:\\EXCHSRVR\\BIN\\KMSERVER.EXE (wmic datafile)",
                   "events": "Application log, source MSExchangeKMS (wmic ntevent)",
                   "windows": "HKLM\\SOFTWARE\\Microsoft\\Windows NT\\CurrentVersion: CurrentVersion, CurrentBuildNumber, CSDVersion"}
        inconsistent:
          description:
            - Readings that should agree but do not, each with every reading, for example
              C(ServicePackBuild) against C(NewestBuild) and Store.exe's version, or Kmserver.exe
              against Kmsmsg.dll (KB Q151689). Empty when all agree. Nothing is silently picked.
          returned: always
          type: list
          elements: dict
          sample: [{"what": "server build", "readings": {"NewestBuild": 2650, "ServicePackBuild": 2448},
                    "disagree": ["ServicePackBuild"]}]
"""
