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

On a legacy server (NT 4.0 / 2000), update.exe started by anything but the operator at the
console (an `at` job, `wmic process call create`) does not end by itself: it is a GUI program
with no documented silent switch (KB Q191013: "Type Update, and then follow the instructions
displayed on the screen"), so it waits on the console for the operator's clicks, forever. It is
recorded as waiting (`exchlab.console`) and the command line that started it stops there; `exchlab
console` clicks through it and lets that command line go on. A shell reached over WinRS (the
fiction of the older fleets' Windows 2000 hosts) keeps running it to its end [lab].
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from ...console import CONSOLE, WINRS, wait_on_console
from ...exchange import find_media, run_update
from ...reach import LEGACY_OS
from ...state import HostState
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
    if host.os in LEGACY_OS and invocation.launch not in (CONSOLE, WINRS):
        wait_on_console(host, invocation.program, invocation.argv, invocation.launch)
    return run_installer(host, invocation.program, invocation.argv)


def run_installer(host: HostState, program: str, argv: list[str]) -> int:
    """update.exe run to its end, with the host's `sp_start_types` option: its exit code."""
    overrides = _start_types(host.faults.get("sp_start_types"))
    media = find_media(host, program) if overrides else None
    if media is None:
        return run_update(host, program, argv).exit_code
    host.media[media.root] = dataclasses.replace(media, start_types=media.start_types + overrides)
    try:
        return run_update(host, program, argv).exit_code
    finally:
        host.media[media.root] = media


TOOLS = (Tool(("update",), update, file_name="update.exe"),)
