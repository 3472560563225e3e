# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""update.exe, the Exchange service pack installer (the model is `exchlab.exchange.run_update`).

It is a GUI program: nothing reaches the console; the result is the exit code and the run
appended to "Exchange Server Setup.log". Any switches are accepted and recorded: no source
documents the 5.5 SP's unattended switches or exit codes (service-packs.md section 1).
"""

from __future__ import annotations

from ...exchange import run_update
from . import Invocation, Output, Tool


def update(invocation: Invocation, output: Output) -> int:
    assert invocation.program is not None
    return run_update(invocation.host, invocation.program, invocation.argv).exit_code


TOOLS = (Tool(("update",), update, file_name="update.exe"),)
