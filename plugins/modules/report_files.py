#!/usr/bin/python
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Documentation for the exchops.kms.report_files action plugin (the code is in plugins/action)."""

# ansible-core 2.16 still runs modules on Python 2.7 and its sanity test asks module files for
# this boilerplate; a doc stub has no annotations, so nothing of ours is lost.
from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: report_files
short_description: Write a run's report files into a folder on the controller
version_added: 0.2.0
description:
  - Creates the folder O(path) on the Ansible controller when it is missing and writes each of
    O(files) into it, whole or not at all (a new file replaces the old one in one step, so a CI
    step reading the report never sees half of it).
  - With no O(files), only makes sure the folder exists and can be written; the gate and the
    remediation do this before they read or change any server, so that a report folder that
    cannot be written stops the run before it starts.
  - Runs on the controller only, whatever the task's host; it never connects to the host. Use it
    with C(run_once) when the report covers every host.
  - The report is the run's output, written in check mode too, and is never reported as a
    change (it changes nothing on the servers).
options:
  path:
    description: The folder on the controller.
    type: path
    required: true
  files:
    description:
      - File name (no folder) to the file's text. Each file is written with mode C(0644).
    type: dict
    default: {}
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.flow
  - exchops.kms.attributes
attributes:
  check_mode:
    support: full
    details: Writes the files in check mode too (they are the run's report, not managed state).
  diff_mode:
    support: none
  platform:
    platforms: posix
    details: The controller.
seealso:
  - module: ansible.builtin.copy
author:
  - exchops.kms maintainers (@exchops)
"""

EXAMPLES = r"""
- name: Make sure the report can be written before reading any server
  exchops.kms.report_files:
    path: "{{ kms_report_dir }}"
  run_once: true

- name: Write the report
  exchops.kms.report_files:
    path: "{{ kms_report_dir }}"
    files:
      report.json: "{{ report | to_nice_json(indent=2) }}\n"
      report.md: "{{ report | exchops.kms.kms_report_markdown }}"
  run_once: true
"""

RETURN = r"""
path:
  description: The folder.
  returned: success
  type: str
  sample: /builds/infra/kms-report
written:
  description: The files written, in the order given.
  returned: success
  type: list
  elements: str
  sample: [/builds/infra/kms-report/report.json, /builds/infra/kms-report/report.md]
"""
