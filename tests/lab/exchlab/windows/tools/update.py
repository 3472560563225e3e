# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""update.exe, the Exchange service pack installer (the model is `exchlab.exchange.run_update`).

It is a GUI program: nothing reaches the console; the result is the exit code and the run
appended to "Exchange Server Setup.log". Any switches are accepted and recorded: no source
documents the 5.5 SP's unattended switches or exit codes (the SP readmes, KB Q191013 and
Q198347, only say to run Update and follow the screen): accepting them all is [lab].

Lab option `sp_start_types` (a host fault, set at run time with
`exchlab fault --state DIR HOST 'sp_start_types={MSExchangeIS: manual}'`): the start types this
run of Setup leaves on those services, as Exchange Setup is known to change other services' start
types (issue 6). Values are auto / manual (or demand) / disabled, or the Start DWORD (2, 3, 4).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from ...exchange import find_media, run_update
from . import Invocation, Output, Tool

_START_WORDS = {"auto": 2, "manual": 3, "demand": 3, "disabled": 4}


def _start_types(raw: Any) -> tuple[tuple[str, int], ...]:
    if not isinstance(raw, Mapping):
        return ()
    pairs = []
    for name, value in raw.items():
        start = _START_WORDS.get(str(value).lower()) if not isinstance(value, int) else value
        if start is not None:
            pairs.append((str(name), int(start)))
    return tuple(pairs)


def update(invocation: Invocation, output: Output) -> int:
    assert invocation.program is not None
    host = invocation.host
    overrides = _start_types(host.faults.get("sp_start_types"))
    media = find_media(host, invocation.program) if overrides else None
    if media is None:
        return run_update(host, invocation.program, invocation.argv).exit_code
    host.media[media.root] = dataclasses.replace(media, start_types=media.start_types + overrides)
    try:
        return run_update(host, invocation.program, invocation.argv).exit_code
    finally:
        host.media[media.root] = media


TOOLS = (Tool(("update",), update, file_name="update.exe"),)
