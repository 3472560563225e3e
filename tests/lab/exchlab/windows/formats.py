# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Windows eras and the exact output shapes of the tools, as text with CRLF line ends.

Every layout here follows docs/windows-output.md (its bytes literals are the authority; its
section numbers are cited beside each shape). Tools build their output from these
helpers only, so one era difference (reg.exe 3.0 TABs vs Vista+ spaces) lives in one place.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from ..state import WIN32_MESSAGES

CRLF = "\r\n"
# wmic's text-mode CRT turns its own "\r\n" into "\r\r\n" when stdout is a pipe (section 0).
WMIC_EOL = "\r\r\n"


# ping.exe is part of every Windows TCP/IP installation, NT 4.0 included [lab: no source cited];
# at.exe schedules jobs from NT on (KB Q105995 runs it on NT 3.x / 4.0).
_COMMON_TOOLS = frozenset(
    {"cmd.exe", "reg.exe", "net.exe", "xcopy.exe", "hostname.exe", "sc.exe", "ping.exe", "at.exe"}
)
# No wmic on Windows 2000 / NT 4.0 (docs/windows-output.md#which-tool-exists); sc.exe is a
# Resource Kit tool there (unsourced) and the lab assumes it is installed, or KMS could not get its
# password from a command line (`sc start`, Microsoft Learn "Sc start"; KB Q184420) [lab].
_TOOLS_2000 = _COMMON_TOOLS
_TOOLS_2003 = _COMMON_TOOLS | {"wmic.exe", "certutil.exe"}
# robocopy and wevtutil are built in from Vista / Server 2008 on (no source cited: wevtutil is
# [?] in docs/windows-output.md#which-tool-exists; robocopy [lab]). xcopy.exe and hostname.exe on
# every era, certutil.exe from 2003 on: [lab] (certutil's absence on 2000: docs, [lab]).
_TOOLS_VISTA = _TOOLS_2003 | {"robocopy.exe", "wevtutil.exe"}
# Windows PowerShell is part of the installation from Windows Server 2008 R2 on (a feature of
# 2008): the lab's 2012 R2 to 2022 hosts have it, in System32\WindowsPowerShell\v1.0 [lab].
_TOOLS_2012 = _TOOLS_VISTA | {"powershell.exe"}


@dataclass(frozen=True)
class Era:
    """What differs between Windows versions, as far as the emulated tools show it. The defaults
    are those of Vista / Server 2008 and later; Windows 2000 and 2003 set their own."""

    name: str
    windows_version: str  # "10.0.14393"
    ver_line: str  # what `ver` prints
    product_name: str  # HKLM\SOFTWARE\Microsoft\Windows NT\CurrentVersion ProductName
    current_version: str  # ... CurrentVersion, "5.0" = Windows 2000 (docs/registry.md)
    certutil: str | None  # "spaced" (Windows 7-era "hash of file", spaced hex), "plain" (10+)
    system_root: str = r"C:\Windows"  # C:\WINNT, C:\WINDOWS, C:\Windows
    profiles_root: str = r"C:\Users"  # where WinRS starts: the user's profile folder lives here
    reg_version: str | None = None  # "2.0" / "3.0" header of reg.exe before Vista
    tools: frozenset[str] = _TOOLS_VISTA  # external programs in System32 (lower-case file names)
    x64: bool = True

    @property
    def vista_or_later(self) -> bool:
        return self.reg_version is None


# The `ver` lines and ProductName texts below are the lab's [lab] (no published sample cited);
# CurrentVersion follows docs/registry.md; certutil's "spaced" form on 2008 to 2012 R2 is [I]
# (docs/windows-output.md#tool-messages).
ERAS: dict[str, Era] = {
    era.name: era
    for era in (
        # Windows NT 4.0 runs no WinRM and no lab shell: it is only ever read from a jump host,
        # so its tools never print. CurrentVersion "4.0" is docs/registry.md's; build 1381, the
        # `ver` line, the product name, the profiles folder under the system root and the
        # Resource Kit reg.exe 2.0 are [lab].
        Era(
            "nt4",
            "4.0.1381",
            "Windows NT Version 4.0",
            "Microsoft Windows NT",
            "4.0",
            None,
            system_root=r"C:\WINNT",
            profiles_root=r"C:\WINNT\Profiles",
            reg_version="2.0",
            tools=_TOOLS_2000,
            x64=False,
        ),
        Era(
            "2000",
            "5.0.2195",
            "Microsoft Windows 2000 [Version 5.00.2195]",
            "Microsoft Windows 2000",
            "5.0",
            None,
            system_root=r"C:\WINNT",
            profiles_root=r"C:\Documents and Settings",
            reg_version="2.0",
            tools=_TOOLS_2000,
            x64=False,
        ),
        Era(
            "2003",
            "5.2.3790",
            "Microsoft Windows [Version 5.2.3790]",
            "Microsoft Windows Server 2003",
            "5.2",
            "spaced",
            system_root=r"C:\WINDOWS",
            profiles_root=r"C:\Documents and Settings",
            reg_version="3.0",
            tools=_TOOLS_2003,
            x64=False,
        ),
        Era(
            "2008",
            "6.0.6002",
            "Microsoft Windows [Version 6.0.6002]",
            "Windows Server (R) 2008 Standard",
            "6.0",
            "spaced",
        ),
        Era(
            "2012",
            "6.3.9600",
            "Microsoft Windows [Version 6.3.9600]",
            "Windows Server 2012 R2 Standard",
            "6.3",
            "spaced",
            tools=_TOOLS_2012,
        ),
        Era(
            "2016",
            "10.0.14393",
            "Microsoft Windows [Version 10.0.14393]",
            "Windows Server 2016 Standard",
            "6.3",
            "plain",
            tools=_TOOLS_2012,
        ),
        Era(
            "2019",
            "10.0.17763",
            "Microsoft Windows [Version 10.0.17763.1]",
            "Windows Server 2019 Standard",
            "6.3",
            "plain",
            tools=_TOOLS_2012,
        ),
        Era(
            "2022",
            "10.0.20348",
            "Microsoft Windows [Version 10.0.20348.587]",
            "Windows Server 2022 Standard",
            "6.3",
            "plain",
            tools=_TOOLS_2012,
        ),
    )
}


def era_of(name: str) -> Era:
    try:
        return ERAS[name]
    except KeyError:
        raise ValueError(f"unknown Windows era {name!r}; choose from {sorted(ERAS)}") from None


# ---------------------------------------------------------------------------------------------
# Messages

# Win32 error texts (en-US FormatMessage) for the tools that print them; the file-system ones
# are the state model's own. Sources: 1051, 1053, 1056, 1060, 1062 and 5 in
# docs/windows-output.md#sc-failures; 2140 KB Q184420. The texts of 87, 1052, 1058, 1061 and
# 1066 to 1068 have no source cited [lab].
SYSTEM_MESSAGES: dict[int, str] = {
    **WIN32_MESSAGES,
    87: "The parameter is incorrect.",
    1051: "A stop control has been sent to a service that other running services are dependent on.",
    1052: "The requested control is not valid for this service.",
    1053: "The service did not respond to the start or control request in a timely fashion.",
    1056: "An instance of the service is already running.",
    1058: (
        "The service cannot be started, either because it is disabled or because it has no "
        "enabled devices associated with it."
    ),
    1060: "The specified service does not exist as an installed service.",
    1061: "The service cannot accept control messages at this time.",
    1062: "The service has not been started.",
    1066: "The service has returned a service-specific error code.",
    1067: "The process terminated unexpectedly.",
    1068: "The dependency service or group failed to start.",
    # NERR_InternalError in the NT-era wording KB Q184420 quotes for a wrong KMS password.
    2140: "An internal Windows NT error occurred.",
    # What a jump host's tools say of another computer (exchlab.windows.remote). 53, 67, 1219
    # and 1326 (its Vista-and-later wording; NT printed "Logon failure: unknown user name or bad
    # password.") are quoted from `net use` and `dir \\HOST\c$` captures in public scripts;
    # 1722 from `sc \\HOST` captures; 384 is KB 4034314's text, broken in two lines as the
    # captured `net use` shows it. 2250's text is [lab].
    53: "The network path was not found.",
    67: "The network name cannot be found.",
    384: (
        "You can't connect to the file share because it's not secure. This share requires the "
        "obsolete SMB1 protocol, which is unsafe and could expose your system to attack."
        f"{CRLF}Your system requires SMB2 or higher. For more info on resolving this issue, see: "
        "https://go.microsoft.com/fwlink/?linkid=852747"
    ),
    1219: (
        "Multiple connections to a server or shared resource by the same user, using more than "
        "one user name, are not allowed. Disconnect all previous connections to the server or "
        "shared resource and try again."
    ),
    1326: "The user name or password is incorrect.",
    1722: "The RPC server is unavailable.",
    # NERR_ServiceNotInstalled (lmerr.h): what at.exe says of a stopped Schedule service [I].
    2184: "The service has not been started.",
    2250: "The network connection could not be found.",
}


def not_recognized(name: str) -> str:
    """cmd.exe's answer to an unknown command (section 7, E15); exit code 9009."""
    return (
        f"'{name}' is not recognized as an internal or external command,{CRLF}"
        f"operable program or batch file.{CRLF}"
    )


# ---------------------------------------------------------------------------------------------
# reg.exe (section 1)


def reg_header(era: Era) -> str:
    """Vista+: one empty line. reg.exe 3.0 (XP/2003): empty line, version header, empty line.

    Windows 2000's Support Tools reg.exe 2.0 has no published sample (section 1.3): the lab
    defines it as the 3.0 layout with a "2.0" header.
    """
    if era.reg_version is None:
        return CRLF
    return f"{CRLF}! REG.EXE VERSION {era.reg_version}{CRLF}{CRLF}"


def reg_value_line(era: Era, name: str, kind: str, data: str) -> str:
    """Vista+: 4 spaces, name, 4 spaces, type, 4 spaces, data (the third separator is printed
    even for empty data, E2). reg.exe 2.0/3.0: 4 spaces, name, TAB, type, TAB, data (E3)."""
    if era.reg_version is None:
        return f"    {name}    {kind}    {data}{CRLF}"
    return f"    {name}\t{kind}\t{data}{CRLF}"


def reg_default_name(era: Era) -> str:
    # Vista+ "(Default)" (Wine strings), XP "<NO NAME>" (mozilla/addon-sdk activate.bat).
    return "(Default)" if era.reg_version is None else "<NO NAME>"


def reg_data_text(era: Era, kind: str, data: object) -> str:
    """REG_DWORD `0x%x` lower-case; REG_BINARY upper-case hex pairs; REG_MULTI_SZ joined by the
    two characters `\\0` (Wine reg_data_to_wchar). reg.exe 3.0 ends a REG_MULTI_SZ with `\\0\\0`
    (the lab's reading of XP output; no published sample) [lab]."""
    if kind in ("REG_DWORD", "REG_DWORD_BIG_ENDIAN", "REG_QWORD"):
        return f"0x{int(data):x}"  # type: ignore[call-overload]
    if kind in ("REG_BINARY", "REG_NONE"):
        return bytes(data).hex().upper()  # type: ignore[call-overload]
    if kind == "REG_MULTI_SZ":
        joined = "\\0".join(data)  # type: ignore[call-overload]
        return joined + ("\\0\\0" if era.reg_version is not None else "")
    return str(data)


def reg_not_found(era: Era) -> str:
    """A missing key or value, on stderr (section 1.4). Vista+: "ERROR: ... value." (E4).
    reg.exe 3.0 (XP / Server 2003): "Error:  ... value", mixed case, two spaces, no period (E16);
    its stream (stderr) is reasoned, not seen. Windows 2000's reg.exe 2.0 gets the 3.0 words, as
    it gets the 3.0 layout [lab]. The trailing CRLF of both is the lab's [lab]."""
    if era.reg_version is None:
        return f"ERROR: The system was unable to find the specified registry key or value.{CRLF}"
    return f"Error:  The system was unable to find the specified registry key or value{CRLF}"


# ---------------------------------------------------------------------------------------------
# sc.exe (section 2)

SERVICE_TYPES = {
    0x10: "WIN32_OWN_PROCESS",
    0x20: "WIN32_SHARE_PROCESS",
    0x1: "KERNEL_DRIVER",
    0x2: "FILE_SYSTEM_DRIVER",  # ReactOS sc print.c names it so
}
STATE_NUMBERS = {"STOPPED": 1, "START_PENDING": 2, "STOP_PENDING": 3, "RUNNING": 4}
START_TYPES = {
    0: "BOOT_START",
    1: "SYSTEM_START",
    2: "AUTO_START",
    3: "DEMAND_START",
    4: "DISABLED",
}
ERROR_CONTROLS = {0: "IGNORE", 1: "NORMAL", 2: "SEVERE", 3: "CRITICAL"}
ACCEPTS_STOP = "(STOPPABLE, NOT_PAUSABLE, ACCEPTS_SHUTDOWN)"
ACCEPTS_NOTHING = "(NOT_STOPPABLE, NOT_PAUSABLE, IGNORES_SHUTDOWN)"


def sc_field(label: str, value: str) -> str:
    """8 spaces, the label padded to 19 characters, ": ", the value (section 2.1)."""
    return f"        {label:<19}: {value}{CRLF}"


def sc_type_text(service_type: int) -> str:
    return f"{service_type:x}  {SERVICE_TYPES.get(service_type, '')}".rstrip()


def sc_status_block(
    name: str,
    service_type: int,
    state: str,
    controls: str,
    win32_exit_code: int,
    service_exit_code: int,
    wait_hint: int = 0,
    *,
    pid: int | None = None,
    display_name: str | None = None,
    leading: bool = True,
) -> str:
    """The block of `sc query` / `queryex` / `start` / `stop` (E5, E6): an empty line first,
    one after. `pid` adds the PID and FLAGS lines (queryex, start); FLAGS keeps its trailing
    space. `display_name` adds DISPLAY_NAME (enumeration without a service name; there one
    empty line separates the blocks, so each block after the first has no leading one)."""
    lines = [CRLF if leading else "", f"SERVICE_NAME: {name}{CRLF}"]
    if display_name is not None:
        lines.append(f"DISPLAY_NAME: {display_name}{CRLF}")
    lines.append(sc_field("TYPE", sc_type_text(service_type)))
    lines.append(sc_field("STATE", f"{STATE_NUMBERS[state]}  {state}"))
    lines.append(" " * 32 + controls + CRLF)
    lines.append(sc_field("WIN32_EXIT_CODE", f"{win32_exit_code}  (0x{win32_exit_code:x})"))
    lines.append(sc_field("SERVICE_EXIT_CODE", f"{service_exit_code}  (0x{service_exit_code:x})"))
    lines.append(sc_field("CHECKPOINT", "0x0"))
    lines.append(sc_field("WAIT_HINT", f"0x{wait_hint:x}"))
    if pid is not None:
        lines.append(sc_field("PID", str(pid)))
        lines.append(sc_field("FLAGS", ""))
    lines.append(CRLF)
    return "".join(lines)


def sc_config_block(
    name: str,
    service_type: int,
    start: int,
    error_control: int,
    binary_path: str,
    display_name: str,
    dependencies: tuple[str, ...],
    account: str,
    load_order_group: str = "",
) -> str:
    """`sc qc` (E7). Codes are `%-3x ` ("3   DEMAND_START"); empty fields keep ": " with its
    trailing space; further dependencies go on lines of 27 spaces + ": " (ReactOS config.c)."""
    lines = [
        f"[SC] QueryServiceConfig SUCCESS{CRLF}",
        CRLF,
        f"SERVICE_NAME: {name}{CRLF}",
        sc_field("TYPE", f"{service_type:<3x} {SERVICE_TYPES.get(service_type, '')}".rstrip()),
        sc_field("START_TYPE", f"{start:<3x} {START_TYPES.get(start, '')}"),
        sc_field("ERROR_CONTROL", f"{error_control:<3x} {ERROR_CONTROLS.get(error_control, '')}"),
        sc_field("BINARY_PATH_NAME", binary_path),
        sc_field("LOAD_ORDER_GROUP", load_order_group),
        sc_field("TAG", "0"),
        sc_field("DISPLAY_NAME", display_name),
        sc_field("DEPENDENCIES", dependencies[0] if dependencies else ""),
    ]
    lines.extend(" " * 27 + f": {dependency}{CRLF}" for dependency in dependencies[1:])
    lines.append(sc_field("SERVICE_START_NAME", account))
    lines.append(CRLF)
    return "".join(lines)


def sc_failure(operation: str, code: int) -> str:
    """`[SC] <operation> FAILED <n>:`, an empty line, the message, an empty line (E8, E9)."""
    return f"[SC] {operation} FAILED {code}:{CRLF}{CRLF}{SYSTEM_MESSAGES[code]}{CRLF}{CRLF}"


# ---------------------------------------------------------------------------------------------
# wmic (sections 4 and 5.3)


def wmic_values(instances: list[list[tuple[str, str]]]) -> str:
    """`/value` output: per instance two empty lines, then its `Name=Value` lines; after the
    last instance three empty lines. One instance gives E11's bytes exactly; the layout between
    several instances is the lab's reading (no published multi-instance capture) [lab]."""
    parts = []
    for properties in instances:
        parts.append(WMIC_EOL * 2)
        parts.extend(f"{name}={value}{WMIC_EOL}" for name, value in properties)
    parts.append(WMIC_EOL * 3)
    return "".join(parts)


def wmic_table(header: list[str], rows: list[list[str]]) -> str:
    """Default (table) output: columns padded to the widest cell plus two spaces [lab: no
    published sample cited; the collection reads /value only]."""
    widths = [
        max(len(header[index]), *(len(row[index]) for row in rows)) if rows else len(header[index])
        for index in range(len(header))
    ]

    def line(cells: list[str]) -> str:
        return "".join(cell.ljust(width + 2) for cell, width in zip(cells, widths)) + WMIC_EOL

    return line(header) + "".join(line(row) for row in rows) + WMIC_EOL


def wmic_csv(node: str, header: list[str], rows: list[list[str]]) -> str:
    """`/format:csv`: an empty line, then `Node,` + columns (section 5.3; shape only)."""
    lines = [WMIC_EOL, ",".join(["Node", *header]) + WMIC_EOL]
    lines.extend(",".join([node, *row]) + WMIC_EOL for row in rows)
    return "".join(lines)


WMIC_NO_INSTANCES = f"No Instance(s) Available.{CRLF}"


def cim_datetime(moment: datetime) -> str:
    """CIM datetime `yyyymmddHHMMSS.ffffff+UUU`; lab hosts run on UTC (offset +000) [lab]."""
    return moment.strftime("%Y%m%d%H%M%S") + ".000000+000"


# ---------------------------------------------------------------------------------------------
# dir (section 6)


def dir_timestamp(moment: datetime) -> str:
    """`dd/mm/yyyy  HH:MM`, the locale of E14 (en-GB style dates, 24-hour time)."""
    return moment.strftime("%d/%m/%Y  %H:%M")


def group_digits(number: int) -> str:
    return f"{number:,}"


def dir_header(drive_letter: str, label: str, serial: str) -> str:
    volume = (
        f" Volume in drive {drive_letter} is {label}{CRLF}"
        if label
        else f" Volume in drive {drive_letter} has no label.{CRLF}"
    )
    return volume + f" Volume Serial Number is {serial}{CRLF}"


def dir_entry_line(moment: datetime, name: str, size: int | None, grouped: bool) -> str:
    """A directory (`size` None) or file line: date, time, `<DIR>` or size right-aligned in 18
    columns, one space, name (E14)."""
    if size is None:
        return f"{dir_timestamp(moment)}    <DIR>          {name}{CRLF}"
    shown = group_digits(size) if grouped else str(size)
    return f"{dir_timestamp(moment)}{shown:>18} {name}{CRLF}"


def dir_file_total(count: int, size: int, grouped: bool) -> str:
    shown = group_digits(size) if grouped else str(size)
    return f"{count:>16} File(s) {shown:>14} bytes{CRLF}"


def dir_dir_total(count: int, free: int, grouped: bool) -> str:
    shown = group_digits(free) if grouped else str(free)
    return f"{count:>16} Dir(s) {shown:>15} bytes free{CRLF}"
