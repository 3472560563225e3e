# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""exchlab: simulated Exchange servers that speak real WS-Management/WinRS.

Rooms: `wsman/` is the protocol (knows nothing of Exchange), `windows/` is cmd.exe and its tools
(knows nothing of WS-Man), `exchange.py` is the KB Q259906 model, `state.py` the per-host state on
disk, `fleet.py` the fleet files, `runtime.py` the running lab process, `cli.py` the command.
The lab never imports the collection's plugins, and the plugins never import the lab.
"""

from __future__ import annotations
