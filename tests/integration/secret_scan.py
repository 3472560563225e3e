# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The secret scan: every password a command could know, searched for in all it left behind.

One scanner for the integration suite (conftest.run_tool) and the molecule stage
(hacking/run_checks.py).

Where the passwords come from (`secrets_of`), parsed the way Ansible reads them:

- `-e` / `--extra-vars` / `--extra-vars=` / `-eVALUE`: `@FILE` (YAML or JSON), a JSON or YAML
  string starting with `{` or `[`, or `key=value` pairs (Ansible's own `parse_kv`); `-a` /
  `--args` the same way (`key=value` or JSON);
- `-i` / `--inventory` / `--inventory-file`: a YAML or INI file (INI through Ansible's own
  inventory reader) or a folder of them, and the `group_vars` / `host_vars` folders beside each
  inventory and beside a playbook named by its path;
- `ansible-runner run DIR`: `DIR/env/extravars`, `DIR/inventory`, `DIR/env/cmdline` and the
  `group_vars` / `host_vars` beside `DIR/project`;
- any extra inventory or known secret the caller names (the lab's passwords).

A password is the value of a key named like one: `password`, `passwd`, `passphrase` or `secret`
anywhere in the name, or `pass` as a whole `_`-separated word (`ansible_winrm_pass`,
`ansible_become_pass`); every string, integer or float under such a key (numbers as Ansible
prints them), except Jinja templates (`{{`, `{%`) and vault-encrypted values.

How a password may appear (`pattern`): every character that is not an ASCII letter or digit may
be written in any of the forms below, each character independently, so a mix (JSON that escapes
`"` as `\\"` and `<` as `\\u003c`) is found as well as one form throughout:

- literally, after up to 7 backslashes: JSON's `\\"` and `\\\\`, Python's repr (what -vvvv prints
  of lists and dicts), and those escaped again when one JSON document is a string in another
  (ansible-runner's job events hold the callback's already-escaped stdout);
- `\\uXXXX` (either case, surrogate pairs above U+FFFF), `\\xXX`, `\\UXXXXXXXX`, `\\n` `\\r` `\\t`,
  after 1 to 8 backslashes: JSON with ensure_ascii and encoders that escape `<`, `>`, `&`;
- an XML / HTML entity, named (`&amp;` `&lt;` `&gt;` `&quot;` `&apos;`) or numeric (`&#60;`,
  `&#x3C;`), itself escaped up to 3 times (`&amp;lt;`): junit.xml and other XML reports;
- URL-encoded (`%3C`, either case; `+` for a space);
- shell-quoted `'` (`'"'"'`, `'\\''`);
- and the whole password in UTF-16-LE.

Files are read in chunks of 1 MiB that overlap by more than the longest possible match, so a
password across a chunk boundary is found; there is no size limit. A file that cannot be read is
reported as a failure, never skipped; symbolic links are not followed.
"""

from __future__ import annotations

import os
import re
import shlex
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import yaml

CHUNK = 1024 * 1024
# Longest form of one character in `pattern`: 8 backslashes and a surrogate pair's two
# `\uXXXX`, or `&amp;amp;amp;#x0000` and 6 hex digits and `;`.
LONGEST_FORM = 32

PASSWORD_KEY = re.compile(r"password|passwd|passphrase|secret|(?:^|_)pass(?:$|_)", re.IGNORECASE)
ENTITY_NAMES = {"&": "amp", "<": "lt", ">": "gt", '"': "quot", "'": "apos"}
CONTROL_ESCAPES = {"\n": "n", "\r": "r", "\t": "t"}


# ---------------------------------------------------------------------------------------------
# Where the passwords come from


class TolerantLoader(yaml.SafeLoader):  # pylint: disable=too-many-ancestors
    """YAML as Ansible writes it: `!unsafe` keeps its value; `!vault` (ciphertext) gives None."""


def construct_tagged(loader: TolerantLoader, suffix: str, node: yaml.Node) -> object:
    if suffix == "unsafe" and isinstance(node, yaml.ScalarNode):
        return loader.construct_scalar(node)
    return None


TolerantLoader.add_multi_constructor("!", construct_tagged)


def load_yaml(text: str) -> object:
    try:
        return yaml.load(text, Loader=TolerantLoader)  # nosec: a safe loader
    except yaml.YAMLError:
        return None


def printable(value: object) -> str | None:
    """A password's text as Ansible would print it; None for what cannot be one."""
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        return None
    text = str(value)
    if not text or "{{" in text or "{%" in text:
        return None
    return text


def passwords_in(value: object, origin: str, found: dict[str, str], under: str = "") -> None:
    """Collect every password (see the module's docstring) in a parsed value into FOUND:
    password -> 'ORIGIN password of key KEY'."""
    if isinstance(value, dict):
        for key, item in value.items():
            name = str(key)
            passwords_in(item, origin, found, name if PASSWORD_KEY.search(name) else under)
    elif isinstance(value, (list, tuple)):
        for item in value:
            passwords_in(item, origin, found, under)
    elif under:
        text = printable(value)
        if text is not None:
            found.setdefault(text, f"{origin} password of key {under}")


def vars_folders_beside(folder: Path, found: dict[str, str]) -> None:
    """Every file of `group_vars` and `host_vars` in FOLDER (Ansible's host_group_vars)."""
    for kind in ("group_vars", "host_vars"):
        for path in sorted((folder / kind).rglob("*")):
            if path.is_file():
                where = path.relative_to(folder)
                passwords_in(load_yaml(read_text(path)), f"the {where}", found)


def read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""


def inventory_file(path: Path, found: dict[str, str]) -> None:
    """A YAML inventory walked whole; any other through Ansible's own inventory reader (INI)."""
    origin = f"the inventory {path.name}"
    parsed = load_yaml(read_text(path))
    if isinstance(parsed, dict):
        passwords_in(parsed, origin, found)
        return
    # pylint: disable=import-outside-toplevel
    from ansible.inventory.manager import InventoryManager
    from ansible.parsing.dataloader import DataLoader

    try:
        inventory = InventoryManager(loader=DataLoader(), sources=[str(path)])
    except Exception:  # pylint: disable=broad-exception-caught
        return  # Ansible could not read it either
    for group in inventory.groups.values():
        passwords_in(dict(group.get_vars()), origin, found)
    for host in inventory.hosts.values():
        passwords_in(dict(host.vars), origin, found)


def inventory_source(value: str, cwd: Path, found: dict[str, str], inputs: set[Path]) -> None:
    """`-i VALUE`: a file or folder (its files, and group_vars / host_vars beside or in it); a
    host list (`a,b`) holds no password."""
    path = (cwd / value).resolve() if not os.path.isabs(value) else Path(value)
    if path.is_dir():
        inputs.add(path)
        for item in sorted(path.rglob("*")):
            if item.is_file() and not {"group_vars", "host_vars"} & set(item.parts):
                inventory_file(item, found)
        vars_folders_beside(path, found)
    elif path.is_file():
        inputs.add(path)
        inventory_file(path, found)
        vars_folders_beside(path.parent, found)


def extra_vars(value: str, cwd: Path, found: dict[str, str], inputs: set[Path], flag: str) -> None:
    """`-e VALUE` / `-a VALUE` the way Ansible reads them."""
    # pylint: disable=import-outside-toplevel
    from ansible.parsing.splitter import parse_kv

    if value.startswith("@"):
        path = cwd / value[1:]
        if path.is_file():
            inputs.add(path.resolve())
            passwords_in(load_yaml(read_text(path)), f"the {flag} @{path.name}", found)
    elif value.lstrip().startswith(("{", "[")):
        passwords_in(load_yaml(value), f"the {flag} JSON", found)
    else:
        try:
            pairs = parse_kv(value)
        except Exception:  # pylint: disable=broad-exception-caught
            return  # Ansible refuses it too
        passwords_in(pairs, f"the {flag}", found)


VALUE_OPTIONS = {
    "-e": "-e",
    "--extra-vars": "-e",
    "-a": "-a",
    "--args": "-a",
    "-i": "-i",
    "--inventory": "-i",
    "--inventory-file": "-i",
}


def options(command: list[str]) -> Iterator[tuple[str, str]]:
    """(option, value) of every -e / -a / -i in COMMAND, in each spelling argparse accepts;
    ('', word) for the other words."""
    words = iter(command)
    for word in words:
        name, equals, attached = word.partition("=")
        if equals and name in VALUE_OPTIONS and name.startswith("--"):
            yield VALUE_OPTIONS[name], attached
        elif word in VALUE_OPTIONS:
            yield VALUE_OPTIONS[word], next(words, "")
        elif len(word) > 2 and word[:2] in ("-e", "-a", "-i") and not word.startswith("--"):
            yield word[:2], word[2:]
        else:
            yield "", word


@dataclass
class Routes:
    """The passwords a command could know (password -> where it comes from) and the declared
    inputs that hold passwords by design (inventories, -e @files), which the scan leaves out."""

    secrets: dict[str, str] = field(default_factory=dict)
    inputs: set[Path] = field(default_factory=set)


def secrets_of(
    command: list[str], cwd: Path, known: dict[str, str] | None = None, depth: int = 0
) -> Routes:
    """Every password COMMAND could know, by its routes (the module's docstring), and KNOWN."""
    routes = Routes(dict(known or {}))
    for option, value in options(command):
        if option == "-i":
            inventory_source(value, cwd, routes.secrets, routes.inputs)
        elif option in ("-e", "-a"):
            extra_vars(value, cwd, routes.secrets, routes.inputs, option)
        elif value.endswith((".yml", ".yaml")) and (cwd / value).is_file():
            vars_folders_beside((cwd / value).resolve().parent, routes.secrets)
    if command[:2] == ["ansible-runner", "run"] and len(command) > 2 and depth == 0:
        runner(Path(cwd / command[2]), cwd, routes)
    return routes


def runner(private: Path, cwd: Path, routes: Routes) -> None:
    """ansible-runner's private data folder: env/extravars, inventory/, env/cmdline."""
    extravars = private / "env" / "extravars"
    if extravars.is_file():
        routes.inputs.add(extravars.resolve())
        passwords_in(
            load_yaml(read_text(extravars)), "ansible-runner's env/extravars", routes.secrets
        )
    inventory_source(str(private / "inventory"), cwd, routes.secrets, routes.inputs)
    cmdline = private / "env" / "cmdline"
    if cmdline.is_file():
        inner = secrets_of(shlex.split(read_text(cmdline)), private / "project", depth=1)
        routes.inputs |= inner.inputs
        for secret, origin in inner.secrets.items():
            routes.secrets.setdefault(secret, origin)
    vars_folders_beside(private / "project", routes.secrets)


# ---------------------------------------------------------------------------------------------
# How a password may be written


def hex_digits(number: int, width: int, zeros: str = "") -> str:
    """NUMBER in hex, either case, WIDTH digits (after optional ZEROS pattern)."""
    digits = f"{number:0{width}x}" if width else f"{number:x}"
    return zeros + "".join(f"[{d}{d.upper()}]" if d.isalpha() else d for d in digits)


def char_forms(char: str) -> str:
    """A regular expression (text) matching CHAR in every form of the module's docstring."""
    if char.isascii() and char.isalnum():
        return re.escape(char)
    code = ord(char)
    forms = [r"\\{0,7}" + re.escape(char)]
    if code > 0xFFFF:
        high, low = divmod(code - 0x10000, 0x400)
        forms.append(
            r"\\{1,8}u" + hex_digits(0xD800 + high, 4) + r"\\{1,8}u" + hex_digits(0xDC00 + low, 4)
        )
        forms.append(r"\\{1,8}U" + hex_digits(code, 8))
    else:
        forms.append(r"\\{1,8}u" + hex_digits(code, 4))
    if code < 0x100:
        forms.append(r"\\{1,8}x" + hex_digits(code, 2))
    if char in CONTROL_ESCAPES:
        forms.append(r"\\{1,8}" + CONTROL_ESCAPES[char])
    entities = [f"#0{{0,4}}{code}", "#[xX]" + hex_digits(code, 0, "0{0,4}")]
    if char in ENTITY_NAMES:
        entities.append(ENTITY_NAMES[char])
    forms.append("&(?:amp;){0,3}(?:" + "|".join(entities) + ");")
    forms.append("".join("%" + hex_digits(byte, 2) for byte in char.encode("utf-8")))
    if char == " ":
        forms.append(r"\+")
    if char == "'":
        forms.extend(["'\"'\"'", r"'\\''"])
    return "(?:" + "|".join(forms) + ")"


def pattern(secret: str) -> re.Pattern[bytes]:
    """SECRET in every form (the module's docstring), as a pattern over bytes."""
    text = "".join(char_forms(char) for char in secret).encode("utf-8")
    return re.compile(b"(?:" + text + b")|(?:" + re.escape(secret.encode("utf-16-le")) + b")")


def form_of(found: bytes, secret: str) -> str:
    """Which form a match took, in words that never show any of it."""
    if found == secret.encode("utf-8"):
        return "literal"
    if found == secret.encode("utf-16-le"):
        return "UTF-16-LE"
    kinds = [("\\u/\\x escapes", rb"\\+[uUx][0-9a-fA-F]")]
    if found.count(b"\\") > secret.count("\\"):
        kinds.append(("backslash escapes", rb"\\"))
    kinds += [
        ("XML entities", rb"&(?:amp;)*(?:#|lt;|gt;|quot;|apos;|amp;)"),
        ("URL encoding", rb"%[0-9a-fA-F]{2}"),
    ]
    return ", ".join(name for name, kind in kinds if re.search(kind, found)) or "shell quoting"


# ---------------------------------------------------------------------------------------------
# The scan


@dataclass
class Leak:
    origin: str  # where the password comes from
    where: str  # stdout, stderr, or a file
    offset: int
    form: str

    def __str__(self) -> str:
        return f"{self.origin} in {self.where} at byte {self.offset} ({self.form})"


@dataclass
class SecretScan:
    """Scans outputs and files for passwords, and counts only what it really read."""

    commands: int = 0
    verbose_commands: int = 0
    output_bytes: int = 0
    files: int = 0
    file_bytes: int = 0
    secrets: set[str] = field(default_factory=set)

    def scan_bytes(self, data: bytes, where: str, secrets: dict[str, str]) -> list[Leak]:
        leaks = []
        for secret, origin in secrets.items():
            match = pattern(secret).search(data)
            if match:
                leaks.append(Leak(origin, where, match.start(), form_of(match.group(), secret)))
        return leaks

    def scan_output(self, data: bytes, where: str, secrets: dict[str, str]) -> list[Leak]:
        leaks = self.scan_bytes(data, where, secrets)
        self.output_bytes += len(data)
        return leaks

    def scan_file(self, path: Path, where: str, secrets: dict[str, str]) -> list[Leak]:
        """Read PATH in overlapping chunks; a file that cannot be read is a failure."""
        patterns = {secret: pattern(secret) for secret in secrets}
        overlap = LONGEST_FORM * max((len(s) for s in secrets), default=0) + 64
        leaks: dict[str, Leak] = {}
        size = 0
        try:
            with path.open("rb") as handle:
                start, window = 0, b""
                while chunk := handle.read(CHUNK):
                    window += chunk
                    size += len(chunk)
                    for secret, compiled in patterns.items():
                        match = compiled.search(window)
                        if match and secret not in leaks:
                            form = form_of(match.group(), secret)
                            leaks[secret] = Leak(
                                secrets[secret], where, start + match.start(), form
                            )
                    keep = min(overlap, len(window))
                    start += len(window) - keep
                    window = window[len(window) - keep :]
        except FileNotFoundError:
            return []  # gone before it could be read: nothing is left to leak
        except OSError as error:
            return [Leak("(every password)", where, 0, f"NOT SCANNED: {error.strerror}")]
        self.files += 1
        self.file_bytes += size
        return list(leaks.values())

    def scan_files(self, files: Iterable[tuple[Path, str]], secrets: dict[str, str]) -> list[Leak]:
        return [leak for path, where in files for leak in self.scan_file(path, where, secrets)]

    def count_command(self, verbosity: int, secrets: dict[str, str]) -> None:
        self.commands += 1
        self.verbose_commands += verbosity >= 4
        self.secrets.update(secrets)

    def summary(self) -> dict[str, int]:
        return {
            "commands": self.commands,
            "commands_at_vvvv": self.verbose_commands,
            "output_bytes": self.output_bytes,
            "files": self.files,
            "file_bytes": self.file_bytes,
            "secrets": len(self.secrets),
        }

    def summary_line(self) -> str:
        figures = self.summary()
        return (
            f"secret scan: {figures['commands']} commands ({figures['commands_at_vvvv']} at "
            f"-vvvv), {figures['output_bytes']} bytes of output and {figures['files']} files "
            f"({figures['file_bytes']} bytes) searched for {figures['secrets']} passwords"
        )


def files_in(folder: Path, left_out: Iterable[Path] = ()) -> Iterator[Path]:
    """Every regular file under FOLDER, symbolic links not followed, LEFT_OUT files and folders
    left out."""
    skipped = {Path(path).resolve() for path in left_out}
    for root, folders, names in os.walk(folder):
        here = Path(root)
        folders[:] = [name for name in folders if (here / name).resolve() not in skipped]
        for name in names:
            path = here / name
            if path.resolve() not in skipped and path.is_file() and not path.is_symlink():
                yield path


def verbosity_of(command: list[str], env: dict[str, str]) -> int:
    """The verbosity an ansible-* command runs at: ANSIBLE_VERBOSITY or its -v flags; 0 for a
    command that is not Ansible's."""
    if not Path(command[0]).name.startswith("ansible"):
        return 0
    flags = sum(
        word.count("v") for word in command if re.fullmatch(r"-v+", word) or word == "--verbose"
    )
    try:
        return max(flags, int(env.get("ANSIBLE_VERBOSITY", "0")))
    except ValueError:
        return flags


def leak_report(leaks: Iterable[Leak]) -> str:
    return "; ".join(str(leak) for leak in leaks)


def scan_command_folder(
    scan: SecretScan,
    command: list[str],
    output: bytes,
    folder: Path,
    known: dict[str, str],
    inventories: Iterable[Path] = (),
    left_out: Iterable[Path] = (),
) -> list[Leak]:
    """For a command run outside pytest (molecule): its output and every file in FOLDER (its
    own folder) but LEFT_OUT and its declared inputs, for KNOWN passwords and those of its routes
    and of INVENTORIES (read after it ran: molecule's are written by the scenario)."""
    extra = [f"--inventory={path}" for path in inventories if path.exists()]
    routes = secrets_of([*command, *extra], folder, known)
    leaks = scan.scan_output(output, "output", routes.secrets)
    files = files_in(folder, [*routes.inputs, *left_out])
    leaks += scan.scan_files(
        ((path, str(path.relative_to(folder))) for path in files), routes.secrets
    )
    scan.count_command(4, routes.secrets)
    return leaks
