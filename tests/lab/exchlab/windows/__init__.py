# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""cmd.exe and the Windows tools the collection runs, knowing nothing of WS-Management.

Entry point: `exchlab.windows.shell.run_command(host, command_line, environment)`. Rooms:
`cmdline` parses a command line, `shell` runs it, `formats` holds each era's output shapes,
`tools/` one module per program or internal command. This package imports nothing at load time
(exchlab.exchange imports `formats`, and the tools import exchlab.exchange).
"""

from __future__ import annotations
