# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Parse a cmd.exe command line (as `cmd /c` reads it) into a small syntax tree.

Grammar, operators from tightest to loosest as cmd.exe binds them (`a & b && c` is
`a & (b && c)`):

    sequence  := andor ( "&" andor )*
    andor     := pipeline ( ("&&" | "||") pipeline )*
    pipeline  := command ( "|" command )*
    command   := "(" sequence ")" redirection* | if | for | rem | simple

- Inside double quotes every character is literal and the quotes stay in the command text
  (programs see them); outside quotes `^` makes the next character literal.
- Redirections (`>f`, `>>f`, `<f`, `n>f`, `n>&m`, e.g. `2>&1`, `2>nul`, `1>nul`, `< NUL`) are
  taken out of the command text wherever they stand; a handle digit counts only when a space or
  the start of the command comes before it (`echo a2>x` writes "a2").
- `if` and `for` without parentheses take the rest of the line as their command, `&` included
  (`if 1==2 echo a & echo b` prints nothing), as cmd.exe does.
- `%VAR%` is expanded before parsing (`expand_variables`); an undefined name stays as typed,
  which is cmd's command-line (not batch) behaviour.

[lab]: no source is cited for these rules (the quote stripping of `cmd /c "..."` follows
`cmd /?`), nor for "The syntax of the command is incorrect." with exit code 1.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

WHITESPACE = " \t"


class CmdSyntaxError(Exception):
    """A line cmd.exe refuses; `message` is cmd's own text, `exit_code` its ERRORLEVEL."""

    def __init__(self, message: str, exit_code: int = 255) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code


@dataclass(frozen=True)
class Redirection:
    handle: int  # 0 stdin, 1 stdout, 2 stderr
    kind: str  # ">", ">>", "<", ">&"
    target: str  # a file name (quotes removed), or the handle digit for ">&"


@dataclass(frozen=True)
class Simple:
    """One command: its text (redirections removed, quotes kept, carets consumed)."""

    text: str
    redirections: tuple[Redirection, ...] = ()


@dataclass(frozen=True)
class Block:
    body: Node
    redirections: tuple[Redirection, ...] = ()


@dataclass(frozen=True)
class If:
    negate: bool
    ignore_case: bool
    kind: str  # "exist", "errorlevel", "defined", "compare"
    operands: tuple[str, ...]  # exist/errorlevel/defined: (x,); compare: (left, op, right)
    then: Node
    otherwise: Node | None = None


@dataclass(frozen=True)
class For:
    variable: str  # the letter after % (case-sensitive, as in cmd)
    items: str  # the text between the parentheses of `in (...)`
    body_text: str  # re-parsed for every item after %X is replaced
    recursive_root: str | None = None  # `for /r [root]`: "" = the current folder


@dataclass(frozen=True)
class _Joined:
    """Two commands joined by an operator; the subclass is the operator."""

    left: Node
    right: Node


class Sequence(_Joined):
    """`left & right`: right runs after left, whatever left's exit code."""


class AndThen(_Joined):
    """`left && right`: right runs if left succeeded."""


class OrElse(_Joined):
    """`left || right`: right runs if left failed."""


class Pipe(_Joined):
    """`left | right`: left's stdout is right's stdin."""


Node = Simple | Block | If | For | Sequence | AndThen | OrElse | Pipe

COMPARE_OPERATORS = ("EQU", "NEQ", "LSS", "LEQ", "GTR", "GEQ")


def parse(line: str) -> Node | None:
    """Parse one (already %-expanded) command line; None for an empty line."""
    parser = _Parser(line)
    parser.skip_space()
    if parser.at_end():
        return None
    node = parser.sequence(in_block=False)
    parser.skip_space()
    if not parser.at_end():
        raise CmdSyntaxError(f"{parser.rest()[0]} was unexpected at this time.")
    return node


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    # -- scanning helpers -----------------------------------------------------------------

    def at_end(self) -> bool:
        return self.pos >= len(self.text)

    def rest(self) -> str:
        return self.text[self.pos :]

    def peek(self, token: str) -> bool:
        return self.text.startswith(token, self.pos)

    def skip_space(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos] in WHITESPACE:
            self.pos += 1

    def keyword(self, word: str) -> bool:
        """True (and consumed) when the next word is `word`, case-insensitive."""
        end = self.pos + len(word)
        if self.text[self.pos : end].lower() != word:
            return False
        if end < len(self.text) and self.text[end] not in WHITESPACE + "(":
            return False
        self.pos = end
        return True

    def word(self, until: str | None = None) -> str:
        """A space-separated token; a quoted part keeps its quotes. Outside quotes, `until` ends
        it too (IF's `==`, which needs no spaces around it)."""
        self.skip_space()
        start = self.pos
        quoted = False
        while self.pos < len(self.text):
            char = self.text[self.pos]
            if char == '"':
                quoted = not quoted
            elif not quoted and (char in WHITESPACE or (until is not None and self.peek(until))):
                break
            self.pos += 1
        return self.text[start : self.pos]

    # -- grammar --------------------------------------------------------------------------

    def sequence(self, in_block: bool) -> Node:
        node = self.andor(in_block)
        while True:
            self.skip_space()
            if not self.peek("&") or self.peek("&&"):
                return node
            self.pos += 1
            self.skip_space()
            if self.at_end() or (in_block and self.peek(")")):
                return node  # a trailing "&" is allowed
            node = Sequence(node, self.andor(in_block))

    def andor(self, in_block: bool) -> Node:
        node = self.pipeline(in_block)
        while True:
            self.skip_space()
            if self.peek("&&"):
                self.pos += 2
                node = AndThen(node, self.pipeline(in_block))
            elif self.peek("||"):
                self.pos += 2
                node = OrElse(node, self.pipeline(in_block))
            else:
                return node

    def pipeline(self, in_block: bool) -> Node:
        node = self.command(in_block)
        while True:
            self.skip_space()
            if self.peek("|") and not self.peek("||"):
                self.pos += 1
                node = Pipe(node, self.command(in_block))
            else:
                return node

    def command(self, in_block: bool) -> Node:
        self.skip_space()
        while self.peek("@"):
            self.pos += 1
            self.skip_space()
        if self.at_end():
            raise CmdSyntaxError("The syntax of the command is incorrect.", 1)
        for operator in ("&&", "||", "&", "|"):
            if self.peek(operator):
                raise CmdSyntaxError(f"{operator} was unexpected at this time.")
        if self.peek("("):
            self.pos += 1
            self.skip_space()
            body = self.sequence(in_block=True)
            self.skip_space()
            if not self.peek(")"):
                raise CmdSyntaxError("The syntax of the command is incorrect.", 1)
            self.pos += 1
            return Block(body, self.trailing_redirections(in_block))
        if self.keyword("if"):
            return self.if_command(in_block)
        if self.keyword("for"):
            return self.for_command(in_block)
        if self.text[self.pos : self.pos + 3].lower() == "rem" and (
            self.pos + 3 == len(self.text) or self.text[self.pos + 3] in WHITESPACE
        ):
            # REM takes the rest of the line, operators included.
            start = self.pos
            self.pos = len(self.text)
            return Simple(self.text[start:])
        return self.simple(in_block)

    def simple(self, in_block: bool) -> Simple:
        chars: list[str] = []
        redirections: list[Redirection] = []
        quoted = False
        text = self.text
        while self.pos < len(text):
            char = text[self.pos]
            if quoted:
                chars.append(char)
                self.pos += 1
                quoted = char != '"'
                continue
            if char == '"':
                quoted = True
                chars.append(char)
                self.pos += 1
            elif char == "^":
                if self.pos + 1 < len(text):
                    chars.append(text[self.pos + 1])
                self.pos += 2
            elif char in "&|" or (char == ")" and in_block):
                break
            elif char in "<>":
                handle = None
                if (
                    char == ">"
                    and chars
                    and chars[-1].isdigit()
                    and (len(chars) == 1 or chars[-2] in WHITESPACE)
                ):
                    handle = int(chars.pop())
                redirections.append(self.redirection(handle, in_block))
            else:
                chars.append(char)
                self.pos += 1
        return Simple("".join(chars), tuple(redirections))

    def redirection(self, handle: int | None, in_block: bool) -> Redirection:
        text = self.text
        if text[self.pos] == "<":
            self.pos += 1
            kind, number = "<", 0 if handle is None else handle
        else:
            kind = ">>" if self.peek(">>") else ">"
            self.pos += len(kind)
            number = 1 if handle is None else handle
            if self.peek("&") and self.pos + 1 < len(text) and text[self.pos + 1].isdigit():
                self.pos += 2
                return Redirection(number, ">&", text[self.pos - 1])
        self.skip_space()
        target: list[str] = []
        quoted = False
        while self.pos < len(text):
            char = text[self.pos]
            if char == '"':
                quoted = not quoted
            elif quoted:
                target.append(char)
            elif char in WHITESPACE or char in "&|<>" or (char == ")" and in_block):
                break
            elif char == "^" and self.pos + 1 < len(text):
                self.pos += 1
                target.append(text[self.pos])
            else:
                target.append(char)
            self.pos += 1
        if not target:
            raise CmdSyntaxError("The syntax of the command is incorrect.", 1)
        return Redirection(number, kind, "".join(target))

    def trailing_redirections(self, in_block: bool) -> tuple[Redirection, ...]:
        found: list[Redirection] = []
        while True:
            self.skip_space()
            if self.peek("<") or self.peek(">"):
                found.append(self.redirection(None, in_block))
            elif (
                self.pos + 1 < len(self.text)
                and self.text[self.pos].isdigit()
                and self.text[self.pos + 1] == ">"
            ):
                handle = int(self.text[self.pos])
                self.pos += 1
                found.append(self.redirection(handle, in_block))
            else:
                return tuple(found)

    def body(self, in_block: bool) -> Node:
        """The command of an IF or FOR: a parenthesized block, or the rest of the line."""
        self.skip_space()
        if self.peek("("):
            return self.command(in_block)
        return self.sequence(in_block)

    def if_command(self, in_block: bool) -> If:
        ignore_case = negate = False
        self.skip_space()
        if self.keyword("/i"):
            ignore_case = True
            self.skip_space()
        if self.keyword("not"):
            negate = True
            self.skip_space()
        operands: tuple[str, ...]
        if self.keyword("exist"):
            kind, operands = "exist", (self.word(),)
        elif self.keyword("errorlevel"):
            kind, operands = "errorlevel", (self.word(),)
        elif self.keyword("defined"):
            kind, operands = "defined", (self.word(),)
        else:
            kind, operands = "compare", self.comparison()
        if not operands[0]:
            raise CmdSyntaxError("The syntax of the command is incorrect.", 1)
        self.skip_space()
        if self.at_end():
            raise CmdSyntaxError("The syntax of the command is incorrect.", 1)
        then = self.body(in_block)
        otherwise = None
        if isinstance(then, Block):
            self.skip_space()
            if self.keyword("else"):
                otherwise = self.body(in_block)
        return If(negate, ignore_case, kind, operands, then, otherwise)

    def comparison(self) -> tuple[str, str, str]:
        left = self.word(until="==")
        self.skip_space()
        if self.peek("=="):
            self.pos += 2
            operator = "=="
        else:
            operator = self.word().upper()
            if operator not in COMPARE_OPERATORS:
                raise CmdSyntaxError(f"{operator or self.rest()[:1]} was unexpected at this time.")
        right = self.word()
        return left, operator, right

    def for_command(self, in_block: bool) -> For:
        recursive_root: str | None = None
        self.skip_space()
        if self.keyword("/r"):
            self.skip_space()
            recursive_root = ""
            if not self.peek("%"):
                recursive_root = self.word().strip('"')
        self.skip_space()
        variable = self.word()
        if not variable.startswith("%") or len(variable.lstrip("%")) != 1:
            raise CmdSyntaxError(f"{variable} was unexpected at this time.")
        self.skip_space()
        if not self.keyword("in"):
            raise CmdSyntaxError(f"{self.word()} was unexpected at this time.")
        self.skip_space()
        if not self.peek("("):
            raise CmdSyntaxError(f"{self.word()} was unexpected at this time.")
        close = self.text.find(")", self.pos)
        if close < 0:
            raise CmdSyntaxError("The syntax of the command is incorrect.", 1)
        items = self.text[self.pos + 1 : close]
        self.pos = close + 1
        self.skip_space()
        if not self.keyword("do"):
            raise CmdSyntaxError(f"{self.word() or 'do'} was unexpected at this time.")
        self.skip_space()
        start = self.pos
        self.body(in_block)
        return For(variable[-1], items, self.text[start : self.pos], recursive_root)


# ---------------------------------------------------------------------------------------------
# %VAR% expansion and argument splitting


def expand_variables(line: str, lookup: Callable[[str], str | None]) -> str:
    """Replace %NAME%, %NAME:~start,length% and %NAME:old=new% with values from `lookup`.

    Command-line rules: an undefined variable is left as typed; a lone % stays.
    """
    out: list[str] = []
    position = 0
    while position < len(line):
        start = line.find("%", position)
        if start < 0:
            out.append(line[position:])
            break
        out.append(line[position:start])
        end = line.find("%", start + 1)
        if end < 0:
            out.append(line[start:])
            break
        expression = line[start + 1 : end]
        value = _expand_one(expression, lookup) if expression else None
        if value is None:
            # Not a defined variable: keep the first % and go on scanning from the second.
            out.append("%")
            position = start + 1
            continue
        out.append(value)
        position = end + 1
    return "".join(out)


def _expand_one(expression: str, lookup: Callable[[str], str | None]) -> str | None:
    name, colon, modifier = expression.partition(":")
    if any(char in name for char in "\r\n"):
        return None
    value = lookup(name)
    if value is None or not colon:
        return value
    if modifier.startswith("~"):
        start_text, _comma, length_text = modifier[1:].partition(",")
        try:
            start = int(start_text or 0)
            length = int(length_text) if length_text else None
        except ValueError:
            return None
        chunk = value[start:] if start >= 0 else value[len(value) + start :]
        if length is None:
            return chunk
        return chunk[:length] if length >= 0 else chunk[:length]
    old, equals, new = modifier.partition("=")
    if not equals or not old:
        return None
    lowered, result, index = value.lower(), [], 0
    while True:
        found = lowered.find(old.lower(), index)
        if found < 0:
            result.append(value[index:])
            return "".join(result)
        result.append(value[index:found] + new)
        index = found + len(old)


def split_arguments(text: str) -> list[str]:
    """Split like CommandLineToArgvW / the C runtime: whitespace separates, quotes group,
    2n backslashes + quote -> n backslashes and a quote toggle, 2n+1 -> n and a literal quote,
    `""` inside quotes is a literal quote."""
    args: list[str] = []
    current: list[str] = []
    in_quotes = False
    have_arg = False
    index = 0
    while index < len(text):
        char = text[index]
        if char == "\\":
            run = 0
            while index < len(text) and text[index] == "\\":
                run += 1
                index += 1
            if index < len(text) and text[index] == '"':
                current.append("\\" * (run // 2))
                if run % 2:
                    current.append('"')
                    index += 1
                have_arg = True
            else:
                current.append("\\" * run)
                have_arg = True
            continue
        if char == '"':
            if in_quotes and index + 1 < len(text) and text[index + 1] == '"':
                current.append('"')
                index += 2
                continue
            in_quotes = not in_quotes
            have_arg = True
            index += 1
            continue
        if char in WHITESPACE and not in_quotes:
            if have_arg:
                args.append("".join(current))
                current, have_arg = [], False
            index += 1
            continue
        current.append(char)
        have_arg = True
        index += 1
    if have_arg:
        args.append("".join(current))
    return args


def split_program(text: str) -> tuple[str, str]:
    """The program token (quotes removed) and the raw rest of a command's text."""
    stripped = text.lstrip(WHITESPACE)
    if stripped.startswith('"'):
        end = stripped.find('"', 1)
        if end < 0:
            return stripped[1:], ""
        return stripped[1:end], stripped[end + 1 :]
    index = 0
    while index < len(stripped) and stripped[index] not in WHITESPACE:
        index += 1
    return stripped[:index], stripped[index:]
