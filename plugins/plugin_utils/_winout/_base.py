# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What every parser of this package shares: its errors, the lines it reads, masking, and
merged streams.

- `ParseError`: output a parser cannot read; names the section, the line (1-based, in its stream)
  and the reason. `CommandFailed` (a ParseError): the tool reported a failure that is not an answer
  about the host. `ToolMissing` (a CommandFailed): cmd.exe's "is not recognized" (exit 9009,
  docs/windows-output.md#not-recognized).
- Error text quotes at most 200 characters of a line, control characters escaped, and masks
  everything after `ImagePath` / `BINARY_PATH_NAME`, where a KM Server password may sit
  (KB Q235418). Errors survive pickling (Ansible's workers pickle what they pass on).
- Lines: split on LF, every CR dropped (wmic ends lines with CR CR LF;
  docs/windows-output.md#every-command).
- `split_merged_streams`: the stderr lines of a `2>&1`-merged answer, given back to stderr.
- `_stderr_answers`: the stderr lines a tool prints as an answer; any other stderr text raises.
- `_record_field`: one `label: value` line of a block, its label known and printed once.
"""

# Internal to exchops.kms: not a public API; may change in any release.

from __future__ import annotations

import re
from collections.abc import Container, Iterable, Sequence
from typing import NamedTuple, Protocol, TypeVar

# How much of an offending line an error may quote.
_SHOWN_MAX = 200
# cmd.exe's exit code for a command it cannot find (docs/windows-output.md#not-recognized).
_CMD_NOT_FOUND = 9009
_MASK = "********"

# Numbers as the tools print them: decimal, and 0x with hexadecimal digits.
_DECIMAL = re.compile(r"^[0-9]+$")
_HEX_INT = re.compile(r"^0x([0-9A-Fa-f]+)$")

# ---------------------------------------------------------------------------------------------
# Errors


# Lines that may carry a KM Server password after the executable (KB Q235418): everything after
# the marker is masked before a line reaches an error message.
_SECRET_MARKER = re.compile(r"(?i)(imagepath|binary_path_name)")


def _shown(line: str) -> str:
    """The part of a line an error message may quote: secrets masked, control characters escaped,
    at most 200 characters."""
    marker = _SECRET_MARKER.search(line)
    if marker:
        line = line[: marker.end()] + " " + _MASK
    escaped = "".join(
        char if char.isprintable() else char.encode("unicode_escape").decode("ascii")
        for char in line
    )
    if len(escaped) > _SHOWN_MAX:
        escaped = escaped[: _SHOWN_MAX - 3] + "..."
    return escaped


def _restore_error(cls: type[ParseError], state: dict[str, object], message: str) -> ParseError:
    """Rebuild a pickled error (Ansible's worker processes pickle what they pass on)."""
    error = cls.__new__(cls)
    ValueError.__init__(error, message)
    error.__dict__.update(state)
    return error


class ParseError(ValueError):
    """Output that is not in any format this module knows (or is inconsistent in itself).

    `section` names the command ("reg", "sc query", ...); `line_number` (1-based, in `stream`) and
    `line` (at most 200 characters, secrets masked) point at the offending line when there is one.
    """

    def __init__(
        self,
        section: str,
        reason: str,
        line_number: int | None = None,
        line: str | None = None,
        stream: str = "stdout",
    ) -> None:
        self.section = section
        self.reason = reason
        self.line_number = line_number
        self.line = None if line is None else _shown(line)
        self.stream = stream
        super().__init__(self._compose())

    def __reduce__(self) -> tuple[object, tuple[type[ParseError], dict[str, object], str]]:
        return (_restore_error, (type(self), dict(self.__dict__), str(self)))

    def _where(self) -> str:
        if self.line_number is None:
            return ""
        prefix = "line" if self.stream == "stdout" else f"{self.stream} line"
        return f"{prefix} {self.line_number}: "

    def _compose(self) -> str:
        if self.line is None:
            return f"{self.section}: {self._where()}{self.reason}"
        return f"{self.section}: {self._where()}cannot read '{self.line}': {self.reason}"


class CommandFailed(ParseError):
    """The tool reported a failure that is not an answer about the host ("ERROR: Access is
    denied.", a WMI error, certutil's FAILED line). `reason` is the tool's own text."""

    def __init__(
        self,
        section: str,
        reason: str,
        exit_code: int,
        line_number: int | None = None,
        line: str | None = None,
        stream: str = "stderr",
    ) -> None:
        self.exit_code = exit_code
        super().__init__(section, _shown(reason), line_number, line, stream)

    def _compose(self) -> str:
        code = f"exit code {self.exit_code}"
        if self.exit_code == _CMD_NOT_FOUND:
            # cmd.exe's "is not recognized" in words the parsers do not know (another language;
            # Server 2003's wording is not sourced, docs/windows-output.md#tool-messages).
            code += ", cmd.exe's code for a command it cannot find"
        return f"{self.section}: the command failed ({code}): {self.reason}"


class WmiFailed(CommandFailed):
    """wmic's own error block (docs/windows-output.md#wmic-errors): WMI could not answer, e.g.
    "The RPC server is unavailable." from a server without WMI or out of reach, "Invalid class"
    from one whose WMI lacks the class. `description` is the text after "Description = "."""

    def __init__(
        self, section: str, description: str, text: str, exit_code: int, line_number: int
    ) -> None:
        self.description = _shown(description.strip())
        super().__init__(section, text, exit_code, line_number)


class ToolMissing(CommandFailed):
    """cmd.exe does not know the tool (exit 9009, docs/windows-output.md#not-recognized): e.g. no
    wmic on Windows 2000, no wevtutil on Server 2003. `tool` is the name cmd printed."""

    def __init__(self, section: str, tool: str, exit_code: int, line_number: int) -> None:
        self.tool = tool
        reason = f"'{tool}' is not recognized as an internal or external command"
        super().__init__(section, reason, exit_code, line_number, None, "stderr")

    def _compose(self) -> str:
        return (
            f"{self.section}: '{self.tool}' is missing on this host: cmd.exe does not recognize "
            f"it (exit code {self.exit_code})"
        )


# ---------------------------------------------------------------------------------------------
# Lines (docs/windows-output.md#every-command)


class _Line(NamedTuple):
    stream: str
    number: int
    text: str


def _lines(text: str, stream: str = "stdout") -> list[_Line]:
    """Split on LF, then drop every CR (CRLF for cmd tools, CR CR LF for wmic)."""
    return [
        _Line(stream, number, raw.replace("\r", ""))
        for number, raw in enumerate(text.split("\n"), start=1)
    ]


def _nonblank(text: str, stream: str) -> list[_Line]:
    return [line for line in _lines(text, stream) if line.text.strip()]


def _parse_error(section: str, reason: str, line: _Line | None = None) -> ParseError:
    """The error for output the parser cannot read, pointing at `line` when there is one."""
    if line is None:
        return ParseError(section, reason)
    return ParseError(section, reason, line.number, line.text, line.stream)


def _command_failed(section: str, exit_code: int, lines: Sequence[_Line]) -> CommandFailed:
    """The error for a failure the tool reported itself: its `lines`, joined, are the reason."""
    first = lines[0]
    text = " ".join(line.text.strip() for line in lines)
    return CommandFailed(section, text, exit_code, first.number, None, first.stream)


def _record_field(
    section: str,
    fields: dict[str, tuple[_Line, str]],
    labels: Container[str],
    line: _Line,
    match: re.Match[str],
) -> tuple[str, str]:
    """Record one `label: value` line of a block (an sc service's fields, a wevtutil event's) in
    `fields` and return its label and value (`match`'s groups, trailing whitespace dropped). A
    label not among `labels`, or one the block printed already, raises ParseError."""
    label, value = match.group("label"), (match.group("value") or "").rstrip()
    if label not in labels:
        raise _parse_error(section, f"unknown field {label}", line)
    if label in fields:
        raise _parse_error(section, f"field {label} printed twice", line)
    fields[label] = (line, value)
    return label, value


_NOT_RECOGNIZED = re.compile(r"^'(.*)' is not recognized as an internal or external command,?\s*$")


def parse_not_recognized(stderr: str) -> str | None:
    """The tool name in cmd's "'X' is not recognized as an internal or external command,"
    (docs/windows-output.md#e15), or None when stderr does not say that."""
    for line in _lines(stderr, "stderr"):
        match = _NOT_RECOGNIZED.match(line.text)
        if match:
            return match.group(1)
    return None


def _raise_if_missing(section: str, stderr: str, exit_code: int) -> None:
    for line in _lines(stderr, "stderr"):
        match = _NOT_RECOGNIZED.match(line.text)
        if match:
            raise ToolMissing(section, match.group(1), exit_code, line.number)


def _stderr_answers(
    section: str, stderr: str, exit_code: int, answers: Container[str] = ()
) -> list[_Line]:
    """The stderr lines that are among the tool's `answers` (compared stripped). cmd's "is not
    recognized" raises ToolMissing, and any other stderr text CommandFailed."""
    _raise_if_missing(section, stderr, exit_code)
    errors = _nonblank(stderr, "stderr")
    other = [line for line in errors if line.text.strip() not in answers]
    if other:
        raise _command_failed(section, exit_code, other)
    return errors


def _raise_if_silent_failure(section: str, stdout: str, stderr: str, exit_code: int) -> None:
    """For tools whose empty output is an answer (wmic, wevtutil, net, type): a non-zero exit code
    with no text at all is not one."""
    if exit_code != 0 and not stdout.strip() and not stderr.strip():
        raise CommandFailed(section, "the command printed nothing", exit_code)


# ---------------------------------------------------------------------------------------------
# Output of a command run with `2>&1` (the batched probe merges each section's streams)

# reg.exe's "ERROR: ..." (docs/windows-output.md#reg-errors) and wmic's one-line errors; cmd's
# "is not recognized" (docs/windows-output.md#e15) and its second line.
_STDERR_LINES = (
    re.compile(r"^ERROR: .*$"),
    _NOT_RECOGNIZED,
    re.compile(r"^operable program or batch file\.\s*$"),
)


# wmic's error block, all on stderr (docs/windows-output.md#wmic-errors): "Node - NAME" (with
# /node:), "ERROR:", then "Code = ", "Description = ", "Facility = " lines.
_WMIC_ERROR_LINE = re.compile(r"^(?:Node - .*|ERROR:\s*|(?:Code|Description|Facility) = .*)$")


def split_merged_streams(text: str) -> tuple[str, str]:
    """Separate what reg and cmd write to stderr from a `2>&1`-merged answer, so each parser
    sees the streams as the tool wrote them. Lines keep their line ends. wmic's error block is
    taken only where the answer starts with it: lines of an event's message may look alike."""
    lines = text.splitlines(keepends=True)
    block = 0
    while block < len(lines) and (
        not lines[block].strip() or _WMIC_ERROR_LINE.match(lines[block].rstrip("\r\n"))
    ):
        block += 1
    if not any(line.rstrip("\r\n").strip() == "ERROR:" for line in lines[:block]):
        block = 0
    stdout, stderr = _split_streams("".join(lines[block:]), _STDERR_LINES)
    return stdout, "".join(lines[:block]) + stderr


def _split_streams(text: str, stderr_lines: Sequence[re.Pattern[str]]) -> tuple[str, str]:
    """`text` cut into (the lines no pattern matches, the lines one does), line ends kept."""
    stdout, stderr = [], []
    for line in text.splitlines(keepends=True):
        bare = line.rstrip("\r\n")
        (stderr if any(pattern.match(bare) for pattern in stderr_lines) else stdout).append(line)
    return "".join(stdout), "".join(stderr)


class _Named(Protocol):
    @property
    def name(self) -> str:
        """The name it is known by."""


_NamedT = TypeVar("_NamedT", bound=_Named)


def _by_name(items: Iterable[_NamedT], name: str) -> _NamedT | None:
    """The first of `items` called `name`, compared case-insensitively (as Windows compares
    registry value names and file names)."""
    wanted = name.casefold()
    return next((item for item in items if item.name.casefold() == wanted), None)
