#!/usr/bin/python
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Documentation for the exchops.kms.kms_backup action plugin (the code is in plugins/action)."""

# ansible-core 2.16 still runs modules on Python 2.7 and its sanity test asks module files for
# this boilerplate; a doc stub has no annotations, so nothing of ours is lost.
from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: kms_backup
short_description: Back up the KM Server database (Kmsdata) and verify the copy, or verify a restore
version_added: 0.1.0
description:
  - Changes the host, except with O(verify_against), which only reads and checks a restored KM
    database folder against a backup's manifest. Without it, copies the whole Key Management (KM) Server database folder (C(Kmsdata),
    which holds the users' private encryption keys) to a new folder on the same host, proves the
    copy, and leaves C(MSExchangeKMS) as it found it. This is the offline backup of KB Q190713;
    an online Exchange backup does not include Kmsdata.
  - "Steps: read C(MSExchangeKMS)'s state, list the KM database (C(dir /s /a): hidden and system
    files too) and the free space of the destination drive; stop C(MSExchangeKMS) if it runs,
    the way M(exchops.kms.exchange_service) stops it (C(sc enumdepend), any running service that
    depends on it stopped first, then C(sc stop)); list the database again (stopping may flush
    its logs); copy it with
    C(xcopy SRC DST /E /I /H /K /Y /Q) (every file and subfolder, hidden and system files,
    attributes kept); verify that the copy has the same file list, the same sizes and the same
    SHA256 (C(certutil -hashfile) on both sides) as the database; start C(MSExchangeKMS) again
    with O(startup_password) if it was running, the way M(exchops.kms.exchange_service) starts
    it, wait until it is RUNNING, then check once that it still runs and logged no new KMS
    failure event (5389, 5057, 5058, 5015, 5085); such an event fails the task with its meaning
    and fix, though the verified backup is kept and named."
  - Refuses, before anything is changed, when the KM database folder does not exist or holds no
    files, when the destination already exists, when the destination drive lacks room for the
    copy plus a margin (a tenth of the copy, at least 64 MiB), or when C(MSExchangeKMS) is running,
    O(startup_password) is not set and KMS does not read a startup disk (its C(MasterPasswordPath)
    under C(HKLM\\SOFTWARE\\Microsoft\\Exchange\\KMServer) holds no drive letter, KB
    Q196129; read only in that case).
  - The KM database is only ever read. Nothing is deleted, ever, not even a failed copy; a
    failure says where the partial copy is, lists the KM database again to show it is unchanged,
    and starts C(MSExchangeKMS) again if it was running.
  - Runs on the Ansible controller and talks to the host over WinRM itself with plain C(cmd.exe)
    tools (C(reg query), C(sc), C(dir), C(xcopy), C(certutil)); the host needs WinRM only, never
    PowerShell.
options:
  database_path:
    description:
      - The KM database folder on the host, for example C(C:\EXCHSRVR\KMSDATA).
      - Empty (the default) reads it from the registry, the C(Services) value of
        C(HKLM\SOFTWARE\Microsoft\Exchange\Setup) (the Exchange folder) plus C(\KMSDATA)
        (KB Q201271). Exchange 4.0 and 5.0 keep the KM data under C(Security) instead (KB Q155216),
        so set it to that folder there.
      - A full path on a drive of the host (C(X:\...)); UNC paths are refused.
    type: str
    default: ""
  destination:
    description:
      - The new folder to copy the KM database into. It must not exist yet, and must not be
        inside the KM database folder.
      - Empty (the default) is a folder beside the KM database named after the controller's UTC
        time, for example C(C:\EXCHSRVR\KMSDATA.backup-20240131-221500).
      - A full path on a drive of the host (C(X:\...)). UNC paths are refused, because the host
        cannot pass the WinRM credentials on to another server; copy the folder off the host
        afterwards with your usual backup tools.
      - The copy takes the permissions of the folder it is created in; choose a parent folder
        as well protected as the Exchange folder. Whoever can read the copy and knows the
        startup password can read the users' private keys.
    type: str
    default: ""
  startup_password:
    description:
      - The KMS startup password (KB Q184420), needed only to start C(MSExchangeKMS) again when
        it was running. It is passed as the service's start parameter (C(sc start MSExchangeKMS
        "<password>")), never written into the service's ImagePath (KB Q235418).
      - It is the password of the KM Server that created the KM database. After a KM Server move
        or a restore of Kmsdata that is the B(original) KM Server's startup password, not the one
        shown when KM Server was installed on the new server (KB Q154531, Q198814, Q155216).
      - Required when C(MSExchangeKMS) is running, unless KMS reads its password from a startup
        disk (C(MasterPasswordPath) starts with a drive letter, KB Q196129); KMS is then started
        again with no start parameter, and a password given is not passed, with a warning.
        Otherwise, without it the task fails before anything is changed. Not used when KMS is
        stopped or not installed.
      - Never shown in results, messages or C(-vvvv) output. Keep it in Ansible Vault, for
        example in the variable C(kms_startup_password).
      - A password with a space, a double quote, a percent sign, an exclamation mark or a
        control character, or one that ends with a backslash, is refused before anything is sent, as
        C(cmd.exe) and C(sc) could not pass it unchanged on the C(sc start) command line, where it
        travels in double quotes (so C(&), C(|), C(<), C(>), C(^) and parentheses are fine).
      - Pass it from a variable, not as a literal. When an ad hoc task fails, C(ansible) shows the
        start of its raw arguments (C(-a)) in the error, before any plugin can mask them.
    type: str
  timeout:
    description:
      - Seconds any one step may take on the host; the copy and the hashing of a large database
        are the longest. Also how long C(MSExchangeKMS) may take to stop, and to start again;
        a stop whose C(sc query) checkpoint does not move for 30 s (or its wait hint, if longer)
        is taken as hung sooner, and the task fails saying so.
    type: int
    default: 600
  verify_against:
    description:
      - Verify only. The manifest of the backup that was restored into O(database_path), that is
        the RV(manifest) a backup by this module returned (register it), or the C(manifest) list in
        the C(manifest.json) of its controller copy (O(copy_to)). A list of dicts with C(name)
        (relative to the KM database folder), C(size) (bytes) and C(sha256) (hex; null for a
        backup verified by sizes only).
      - When set, the module changes nothing. It reads C(MSExchangeKMS)'s state, lists
        O(database_path) (C(dir /s /a)) and hashes its files (C(certutil -hashfile ... SHA256)),
        and reports C(changed=false) when the folder holds exactly the manifest's files with the
        same sizes and SHA256. Otherwise it fails naming every file that is missing, extra or
        different; start nothing on such a folder.
      - Run it on the new KM Server after restoring the backup and before C(MSExchangeKMS) first
        starts there (KB Q154531 steps 6 to 8, KB Q190713 "To restore the directory"). It refuses
        while C(MSExchangeKMS) is running or pending, because a running KM Server keeps its database open
        and writes its Jet logs and checkpoint (ESE97, KB Q274321), so the folder cannot equal an
        offline backup, and it is never stopped by a check.
      - A file in the folder that the backup does not hold is a difference too (files of the
        fresh installation left beside the restored ones; KB Q198814 deletes the files in Kmsdata
        before restoring).
      - Cannot be combined with O(destination), O(startup_password) or O(copy_to).
    type: list
    elements: dict
  copy_to:
    description:
      - A folder on the Ansible controller for a second, verified copy of the backup. Empty (the
        default) makes none.
      - After the backup is verified on the host (and C(MSExchangeKMS) runs again if it ran),
        each file is read over WinRM as Base64 (C(certutil -f -encode) into one file beside the
        backup folder, C(type), then C(del) of that one file), decoded on the controller and
        checked against the manifest (size and SHA256). The files go into a hidden staging
        folder that is renamed to C(<copy_to>/<inventory_hostname>/<backup folder name>) only once
        every file matched; it then holds the database folder (for example C(KMSDATA)) and
        C(manifest.json) (host, paths, time, and the manifest that O(verify_against) takes). A
        copy that fails is removed, never left under that name.
      - The host cannot write to a share on another server with the WinRM credentials (the second
        hop), which is why the copy is fetched, not pushed.
      - Needs C(certutil) on the host (not on Windows 2000 or NT 4.0). The copy's folder is
        created readable by the controller's user only (mode 0700). Protect O(copy_to) as you
        would the KM database, as with the startup password it opens every user's private keys.
    type: str
    default: ""
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.flow
  - exchops.kms.attributes
  - exchops.kms.attributes.windows
  - exchops.kms.winrm
attributes:
  check_mode:
    support: full
    details:
      - Read-only. Lists the KM database, checks the destination and the free space and reports
        the plan (files, sizes, destination, whether C(MSExchangeKMS) would be stopped) with
        C(changed=true). Nothing is stopped, created or copied. The refusals apply in check mode
        too.
      - With O(verify_against) the verification runs as usual (it only reads) and reports
        C(changed=false).
  diff_mode:
    support: none
notes:
  - The account needs local administrator rights on the host to stop and start C(MSExchangeKMS),
    read the KM database folder and create the destination folder.
  - Through a Windows jump host (C(exchange_jump_host) on the host, for KM servers on Windows NT
    4.0 / 2000 that run no WinRM), the paths stay the server's own (O(database_path),
    O(destination)); the jump host reads and copies them through the server's administrative
    share, C(\\SERVER\C$\...), where C(dir), C(xcopy) and C(certutil -hashfile) run on the jump
    host, so the copy streams through it and the SHA256 proof does not need certutil on the
    server. MSExchangeKMS is stopped and started as M(exchops.kms.exchange_service) does it
    there. O(copy_to) fetches the backup through the jump host the same way, and O(verify_against)
    reads the restored folder through the admin share.
  - While the database is copied and verified C(MSExchangeKMS) is stopped, so no certificates
    can be issued or revoked. For a KM database of a few MB this takes seconds plus WinRM round
    trips; each file is hashed twice.
  - A backup is useless without the KMS startup password or startup disk of the KM Server that
    created the database (KB Q154531); keep it with the backup. After a move that stays the
    original server's password or disk (KB Q198814, Q155216).
  - Under C(delegate_to) the delegated host is backed up.
  - For a KM Server move (KB Q154531) back up the old server with O(copy_to), and after the
    restore on the new server check it with O(verify_against) before MSExchangeKMS first starts
    there; the collection's runbook (C(docs/runbook.md)) has the whole procedure.
  - O(copy_to) costs one WinRM round trip per file, carrying the file as Base64 (a third larger).
    Against the lab over loopback a 2 MB Kmsmdb.edb took 0.9 s [lab]; on a real network it is
    bound by the WinRM link.
seealso:
  - name: KB Q190713 - Key Management Server Backup and Disaster Recovery
    description: Why and how the Kmsdata folder is backed up offline.
    link: https://github.com/jeffpar/kbarchive/blob/master/kb/190/Q190713/README.md
  - name: KB Q259906 - Event ID 5389 when KM Server is moved to a new server
    description: The Exchange 5.5 problem whose fix (reapplying the service pack) needs this backup first.
    link: https://github.com/jeffpar/kbarchive/blob/master/kb/259/Q259906/README.md
  - name: KB Q154531 - Moving the KM Server to another server in the site
    description: The move whose backup (O(copy_to)) and restore (O(verify_against)) this module proves.
    link: https://github.com/jeffpar/kbarchive/blob/master/kb/154/Q154531/README.md
  - module: exchops.kms.exchange_facts
    description: Finds the KM database folder and the state of MSExchangeKMS without changing anything.
  - module: exchops.kms.exchange_service
    description: Starts MSExchangeKMS with its startup password if a backup could not restart it.
author:
  - exchops.kms maintainers (@exchops)
"""

EXAMPLES = r"""
- name: Back up the KM database beside Kmsdata, stopping and restarting KMS if it runs
  exchops.kms.kms_backup:
    startup_password: "{{ kms_startup_password }}"
  register: kms_backup

- name: Show where the backup is
  ansible.builtin.debug:
    msg: "{{ kms_backup.files }} files, {{ kms_backup.bytes }} bytes in {{ kms_backup.backup_path }}"

- name: Back up a KM database outside the default folder to another drive
  exchops.kms.kms_backup:
    database_path: D:\EXCHSRVR\KMSDATA
    destination: E:\KMS-BACKUP\before-sp4
    startup_password: "{{ kms_startup_password }}"

- name: Back up the old KM Server's database and keep a second, verified copy on the controller
  exchops.kms.kms_backup:
    startup_password: "{{ kms_startup_password }}"
    copy_to: "{{ playbook_dir }}/kms-backups"
  register: kms_backup

- name: Prove the restore on the new KM Server before MSExchangeKMS first starts there
  exchops.kms.kms_backup:
    verify_against: "{{ (lookup('ansible.builtin.file', kms_backup.controller_copy.manifest_path) | from_json).manifest }}"

- name: Show what a backup would do, without stopping or copying anything
  exchops.kms.kms_backup:
  check_mode: true
"""

RETURN = r"""
backup_path:
  description:
    - The folder that holds the copy (in check mode, the folder that would be created).
    - On a failed copy the partial copy, if any, is here; the message says how much it holds.
  returned: success (not with O(verify_against)), and on failure once the copy had started
  type: str
  sample: C:\EXCHSRVR\KMSDATA.backup-20240131-221500
database_path:
  description: The KM database folder that was copied (with O(verify_against), checked).
  returned: success
  type: str
  sample: C:\EXCHSRVR\KMSDATA
manifest:
  description:
    - Every file of the copy, with its path relative to the KM database folder, its size in bytes
      and its SHA256 (lower-case hex), equal on both sides (null when RV(verification) is
      C(sizes)).
    - In check mode the files that would be copied, without C(sha256).
    - With O(verify_against), the manifest the folder was checked against.
  returned: success
  type: list
  elements: dict
  sample: [{"name": "edb.chk", "size": 8192, "sha256": "fbefe80c275d59cccb0530c67514bc8980a19622f45919a0922c3aedeaca1f78"},
           {"name": "Kmsmdb.edb", "size": 2105344, "sha256": "3f0a77c1f7d4e9a8b2c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a0b9c8d7e6f5a4"}]
kms_binary_build:
  description:
    - The file version of C(Kmserver.exe) (RV(kms_binary_path)) when the backup was taken; null
      when it cannot be read (no such file, no C(wmic) on the host, or its place is not known).
    - On the server KM Server runs on, this is the build that last ran the KM database. Keep it
      with the backup; after a move, when the old server can no longer be read, the gate
      (role M(exchops.kms.sp_parity), variable C(sp_parity_backup_manifest)) judges the new
      server's C(Kmserver.exe) against it (KB Q259906).
  returned: success
  type: str
  sample: 5.5.2650.12
kms_binary_path:
  description:
    - Where RV(kms_binary_build) was read - in C(BIN) beside a KM database folder named
      C(KMSDATA) (Exchange 5.5 and 2000; KB Q235418, Q201271), or in C(BIN) inside one named
      C(SECURITY) (Exchange 4.0 and 5.0; KB Q143380, Q155216).
    - Null for a KM database folder of any other name - no source says where its
      C(Kmserver.exe) is, so none is guessed.
  returned: success
  type: str
  sample: C:\EXCHSRVR\BIN\KMSERVER.EXE
verification:
  description:
    - How the copy was proven. C(sha256) is the file list, the sizes and the SHA256 of every file
      on both sides. C(sizes) is the file list and the sizes only, on a host without
      C(certutil) (Windows 2000, NT 4.0), with a warning; the manifest's C(sha256) is then null.
    - With O(verify_against), how the KM database folder was compared with the manifest, the
      same two words.
  returned: success; in check mode only with O(verify_against)
  type: str
  sample: sha256
files:
  description: How many files were copied (would be copied, in check mode).
  returned: success
  type: int
  sample: 3
bytes:
  description: Their total size in bytes.
  returned: success
  type: int
  sample: 3162112
free_bytes:
  description: Free bytes on the destination drive before the copy, as C(dir) reported them.
  returned: success, not with O(verify_against)
  type: int
  sample: 1234567890
required_bytes:
  description: The free bytes the copy needed (its size plus the margin).
  returned: success, not with O(verify_against)
  type: int
  sample: 70270976
kms_stop_required:
  description: Whether C(MSExchangeKMS) was (in check mode, would be) stopped for the copy.
  returned: success, not with O(verify_against)
  type: bool
  sample: false
controller_copy:
  description:
    - The second copy on the controller (O(copy_to)), verified against the manifest. In check
      mode only C(path), the folder that would be created.
  returned: success, when O(copy_to) is set
  type: dict
  contains:
    path:
      description: The folder on the controller.
      type: str
    database_folder:
      description: The copied KM database folder inside it.
      type: str
    manifest_path:
      description: Its C(manifest.json).
      type: str
    files:
      description: How many files were fetched.
      type: int
    bytes:
      description: Their total size in bytes.
      type: int
    verification:
      description: C(sha256) (size and SHA256 of every file checked on the controller).
      type: str
  sample:
    path: /srv/kms-backups/kms-old/KMSDATA.backup-20240131-221500
    database_folder: /srv/kms-backups/kms-old/KMSDATA.backup-20240131-221500/KMSDATA
    manifest_path: /srv/kms-backups/kms-old/KMSDATA.backup-20240131-221500/manifest.json
    files: 3
    bytes: 3162112
    verification: sha256
kms_state_before:
  description: The state of C(MSExchangeKMS) before the backup, C(running), C(stopped) or C(absent) (not installed).
  returned: success, and on failure once something was changed
  type: str
  sample: running
kms_state_after:
  description:
    - The state of C(MSExchangeKMS) after the backup, read from the host. Equal to
      RV(kms_state_before) on success. In check mode the predicted state.
    - On a failure, C(unknown) when it could not be read.
  returned: success, and on failure once something was changed
  type: str
  sample: running
"""
