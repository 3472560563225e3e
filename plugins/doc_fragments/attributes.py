# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Attributes every exchops.kms module shares, over the descriptions of
ansible.builtin.action_common_attributes (and its .flow): each module is an action plugin that
does its whole work on the controller, host by host, and cannot run with async."""

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
attributes:
  action:
    support: full
  async:
    support: none
  bypass_host_loop:
    support: none
"""

    # The modules that work on a Windows host over WinRM (all but report_files).
    WINDOWS = r"""
attributes:
  platform:
    platforms: windows
"""
