# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one batched cmd.exe command line that reads everything exchange_facts needs, and the
splitting of its answer back into named sections.

Each section runs as `echo ==exchops:begin:NAME== & (COMMAND) 2>&1 && echo ==exchops:end:ok== ||
echo ==exchops:end:failed==`: its stderr joins its stdout (the streams of several commands would
otherwise interleave without markers), and cmd's && / || record whether it succeeded. %ERRORLEVEL%
cannot be used: cmd expands it once, when it reads the whole line. A section whose key, service or
file is missing is an answer (`failed` with the tool's text), never an error of the probe.

Every builder takes the host to read as a parameter (`remote`): None reads the host the shell
runs on; a name reads that server from a jump host (`reg query \\\\HOST\\HKLM\\...`, `sc \\\\HOST`,
`wmic /node:HOST`), for Exchange 5.5 / 2000 servers that cannot run WinRM themselves.
"""

# Internal to exchops.kms: not a public API; may change in any release.

from __future__ import annotations

import re
import typing as t
from dataclasses import dataclass

from ._kms import KMS_SERVER_KEY, KMS_SERVICE, KMS_SERVICE_KEY, kms_home
from ._winout import split_merged_dir_streams, split_merged_streams

MARKER_PREFIX = "==exchops:"
# cmd's echo keeps the space before a following `&` or `||`: "==exchops:end:ok== ".
_BEGIN = re.compile(r"^==exchops:begin:([a-z0-9_]+)==[ \t]*\r?$")
_END = re.compile(r"^==exchops:end:(ok|failed)==[ \t]*\r?$")
_ASKED = re.compile(r"^echo ==exchops:begin:([a-z0-9_]+)== ")

SETUP_KEY_LEGACY = r"HKLM\SOFTWARE\Microsoft\Exchange\Setup"  # 4.0 - 2003 (KB Q147374)
SETUP_KEY_2007 = r"HKLM\SOFTWARE\Microsoft\Exchange\v8.0\Setup"
SETUP_KEY_2010 = r"HKLM\SOFTWARE\Microsoft\ExchangeServer\v14\Setup"
SETUP_KEY_2013_PLUS = r"HKLM\SOFTWARE\Microsoft\ExchangeServer\v15\Setup"
# Windows' own version (docs/registry.md#windows-version), read by exchange_facts and the doctor.
WINDOWS_NT_KEY = r"HKLM\SOFTWARE\Microsoft\Windows NT\CurrentVersion"
# The `windows` fact: (its member, the probe's section, the value of WINDOWS_NT_KEY). One section
# per value: a value that is not there (CSDVersion without a service pack) is then that section's
# answer alone.
WINDOWS_VALUES = (
    ("version", "windows_version", "CurrentVersion"),
    ("build", "windows_build", "CurrentBuildNumber"),
    ("service_pack", "windows_sp", "CSDVersion"),
)
# Where Exchange 5.5 (KB Q149205, Q235418) and 2000 (unsourced) install by default: see
# docs/registry.md#install-roots. The probe reads Kmserver.exe's version at these paths in the
# same round trip; a host installed elsewhere gets a second command for its own path (see
# `files_sections`).
DEFAULT_INSTALL_PATHS = (r"C:\EXCHSRVR", r"C:\Program Files\Exchsrvr")
# cmd.exe takes at most 8191 characters per line (KB 830473); batched lines stay well below.
COMMAND_LINE_BUDGET = 6000


class ProbeError(ValueError):
    """The probe's answer is not what the probe asked for (truncated, or markers mangled)."""


@dataclass(frozen=True)
class Section:
    name: str
    text: str  # the section's output, stdout and stderr together, CRLF intact
    succeeded: bool  # cmd's && / || verdict on the section's command

    def streams(self, *, dir_output: bool = False) -> tuple[str, str, int]:
        """The section as a parser takes it: (stdout, stderr, exit code 0 or 1). The tool's own
        error lines are told from its output by their text; `dir_output` for dir's answers,
        whose "File Not Found" and system messages differ from other tools'."""
        split = split_merged_dir_streams if dir_output else split_merged_streams
        stdout, stderr = split(self.text)
        return stdout, stderr, 0 if self.succeeded else 1


class Sections(dict[str, Section]):
    """The sections of one or more answers, by name."""

    def need(self, name: str) -> Section:
        """The section `name`, or ProbeError when the answer lacks it."""
        try:
            return self[name]
        except KeyError:
            raise ProbeError(f"the answer has no section {name!r}") from None


def _unc(remote: str | None) -> str:
    return f"\\\\{remote}\\" if remote else ""


def shell_path(path: str, remote: str | None = None) -> str:
    """PATH, a path on the server (`X:\\...`), as the shell sees it: unchanged on the server
    itself; from its jump host, through the server's administrative share `\\\\REMOTE\\X$\\...`,
    which Windows creates for every fixed drive and which only its administrators may use
    (https://learn.microsoft.com/troubleshoot/windows-server/networking/problems-administrative-shares-missing).
    """
    if not remote:
        return path
    return f"\\\\{remote}\\{path[0].upper()}${path[2:] or chr(92)}"


def reg_query(key: str, remote: str | None = None) -> str:
    return f'reg query "{_unc(remote)}{key}"'


def reg_value(key: str, name: str, remote: str | None = None) -> str:
    """`reg query KEY /v NAME`: one value of a key."""
    return f"{reg_query(key, remote)} /v {name}"


def sc(verb: str, service: str, remote: str | None = None) -> str:
    server = f"\\\\{remote} " if remote else ""
    return f"sc {server}{verb} {service}"


def _wmic_path(path: str) -> str:
    # WQL string literal: backslashes doubled, quotes as is (docs/windows-output.md#wmic-value).
    return path.replace("\\", "\\\\")


def wmic_file_version(path: str, remote: str | None = None) -> str:
    # CIM_DataFile's Name (the full path) and Version ("from the version resource (if one is
    # present)"): docs/windows-output.md#wmi-classes.
    node = f"/node:{remote} " if remote else ""
    # `< NUL`: wmic can hang reading stdin in a non-console remote shell
    # (docs/windows-output.md#wmic-value).
    return f'wmic {node}datafile where name="{_wmic_path(path)}" get Version /value < NUL'


# Every field of an Application-log event that the modules return (_kms.event_dict): properties
# of Win32_NTLogEvent (docs/windows-output.md#wmi-classes).
EVENT_FIELDS = "EventCode,Message,RecordNumber,SourceName,TimeGenerated,Type"


def wmic_events(
    source: str, *, after: int | None = None, fields: str = EVENT_FIELDS, remote: str | None = None
) -> str:
    """The Application-log events of one source (those after record `after` only, if given).
    wmic ntevent works on XP/2003 and later alike, wevtutil only from Vista on; the events are
    matched by source and ID later, never by text (5389 has two wordings, Q259906 and Q274321)."""
    node = f"/node:{remote} " if remote else ""
    where = f"LogFile='Application' and SourceName='{source}'"
    if after is not None:
        where += f" and RecordNumber > {after}"
    # `< NUL`: wmic can hang reading stdin in a non-console remote shell.
    return f'wmic {node}ntevent where "{where}" get {fields} /value < NUL'


def wmic_kms_events(remote: str | None = None) -> str:
    return wmic_events(KMS_SERVICE, remote=remote)


def section(name: str, command: str) -> str:
    if not re.fullmatch(r"[a-z0-9_]+", name):
        raise ValueError(f"section name {name!r} must be lower-case letters, digits and _")
    return (
        f"echo {MARKER_PREFIX}begin:{name}== & ({command}) 2>&1 "
        f"&& echo {MARKER_PREFIX}end:ok== || echo {MARKER_PREFIX}end:failed=="
    )


def kms_binary_paths(install_path: str, family: tuple[int, int] | None = None) -> tuple[str, str]:
    """Kmserver.exe and Kmsmsg.dll (they must match, Q151689) of an install: in its BIN for 5.5 /
    2000 (KB Q235418) and when `family` is unknown; in SECURITY\\BIN beside it for 4.0 / 5.0
    (KB Q143380; Kmsmsg.dll beside Kmserver.exe there is [I])."""
    home = kms_home(install_path, family)
    return rf"{home}\BIN\KMSERVER.EXE", rf"{home}\BIN\KMSMSG.DLL"


def files_section_names(index: int) -> tuple[str, str, str]:
    return (f"kmserver_{index}", f"kmsmsg_{index}", f"store_{index}")


def files_sections(
    install_paths: tuple[str, ...],
    remote: str | None = None,
    family: tuple[int, int] | None = None,
) -> list[str]:
    """Version sections for Kmserver.exe, Kmsmsg.dll and Store.exe of each install path, KM
    Server where `family` keeps it (`kms_binary_paths`)."""
    parts = []
    for index, root in enumerate(install_paths):
        kmserver, kmsmsg = kms_binary_paths(root, family)
        store = rf"{root.rstrip(chr(92))}\BIN\STORE.EXE"
        names = files_section_names(index)
        for name, path in zip(names, (kmserver, kmsmsg, store)):
            parts.append(section(name, wmic_file_version(path, remote)))
    return parts


def facts_probe(kms_event_count: int, remote: str | None = None) -> str:
    """The command line exchange_facts runs: every reading in one round trip."""
    parts = [
        section("setup_legacy", reg_query(SETUP_KEY_LEGACY, remote)),
        section("setup_2007", reg_query(SETUP_KEY_2007, remote)),
        section("setup_2010", reg_query(SETUP_KEY_2010, remote)),
        section("setup_2013", reg_query(SETUP_KEY_2013_PLUS, remote)),
        *(
            section(name, reg_value(WINDOWS_NT_KEY, value, remote))
            for _member, name, value in WINDOWS_VALUES
        ),
        section("kms_service_key", reg_query(KMS_SERVICE_KEY, remote)),
        section("kms_server_key", reg_query(KMS_SERVER_KEY, remote)),
        section("kms_qc", sc("qc", KMS_SERVICE, remote)),
        section("kms_query", sc("query", KMS_SERVICE, remote)),
        *files_sections(DEFAULT_INSTALL_PATHS, remote),
    ]
    if kms_event_count > 0:
        parts.append(section("kms_events", wmic_kms_events(remote)))
    return " & ".join(parts)


def split_sections(stdout: str) -> Sections:
    """Cut the probe's stdout into its sections. Lines outside a section are cmd's own noise
    (e.g. a blank line) and are ignored; a section without its end marker means the answer was
    cut short."""
    sections = Sections()
    current: str | None = None
    lines: list[str] = []
    for line in stdout.split("\n"):
        begin = _BEGIN.match(line)
        end = _END.match(line)
        if begin:
            if current is not None:
                raise ProbeError(f"section {current!r} has no end marker before {begin.group(1)!r}")
            current, lines = begin.group(1), []
        elif end:
            if current is None:
                raise ProbeError("an end marker without a section")
            text = "".join(f"{line}\n" for line in lines)
            sections[current] = Section(current, text, end.group(1) == "ok")
            current = None
        elif current is not None:
            lines.append(line)
    if current is not None:
        raise ProbeError(f"section {current!r} was cut short (no end marker)")
    return sections


def batch(parts: t.Sequence[str], budget: int = COMMAND_LINE_BUDGET) -> list[str]:
    """Join sections with ` & ` into as few lines as keep each under `budget` characters."""
    lines: list[str] = []
    current: list[str] = []
    for part in parts:
        if current and len(" & ".join([*current, part])) > budget:
            lines.append(" & ".join(current))
            current = []
        current.append(part)
    if current:
        lines.append(" & ".join(current))
    return lines


class Runs(t.Protocol):  # pylint: disable=too-few-public-methods
    """What runs one command line on a host and returns its output (WinrsShell.run)."""

    def __call__(self, command_line: str, stdin: str | None = None) -> t.Any:
        """Run COMMAND_LINE on the host, with STDIN as its standard input, and return its
        output."""


def run_sections(run: Runs, parts: t.Sequence[str], stdin: str | None = None) -> Sections:
    """Run `section(...)` parts in as few command lines as fit (one round trip each) and return
    their sections; ProbeError when an asked-for section did not come back (a line cut short).
    STDIN, when given, is the standard input of the one command line the parts must fit in."""
    lines = batch(parts)
    if stdin is not None and len(lines) != 1:
        raise ValueError("a command line with standard input must hold every section")
    found = Sections()
    for line in lines:
        found.update(split_sections((run(line) if stdin is None else run(line, stdin)).stdout))
    asked = [match.group(1) for part in parts if (match := _ASKED.match(part))]
    missing = [name for name in asked if name not in found]
    if missing:
        raise ProbeError(
            f"the answer lacks the section(s) {', '.join(missing)}: the command line was cut short"
        )
    return found


def run_commands(run: Runs, commands: t.Mapping[str, str], stdin: str | None = None) -> Sections:
    """run_sections for named commands ({section name: command})."""
    return run_sections(run, [section(name, command) for name, command in commands.items()], stdin)
