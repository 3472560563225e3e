# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The secret scan (secret_scan.py, run by conftest.run_tool for every command) knows each route a
password takes into a command, finds it in each form a log or report writes it, and names a leak
without showing any of it."""

from __future__ import annotations

import html
import json
import re
import subprocess
import sys
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

import pytest
import yaml
from conftest import ANSIBLE_BIN, run_tool
from secret_scan import CHUNK, SecretScan, files_in, secrets_of

from exchlab.fleet import LAB_DEFAULTS

# An account password holding every character that JSON, XML and URLs escape.
PLANTED = 'Pl4nted\\&<ok>"Zq'


def shown_in(message: str, secret: str) -> bool:
    """Whether MESSAGE shows any 4 characters in a row of SECRET."""
    return any(secret[i : i + 4] in message for i in range(len(secret) - 3))


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def host_vars(**variables: object) -> dict:
    return {"all": {"hosts": {"localhost": variables}}}


# Each route: (route, what the scan names, a function that writes the route's files in a folder
# and returns the command line that carries the password).
Route = Callable[[Path], list[str]]
ROUTES: dict[str, tuple[str, Route]] = {
    "-e key=value": (
        "the -e password of key ansible_password",
        lambda d: ["ansible", "all", "-e", f"ansible_password='{PLANTED}'"],
    ),
    "--extra-vars=key=value": (
        "the -e password of key ansible_winrm_pass",
        lambda d: ["ansible-playbook", "p.yml", f"--extra-vars=ansible_winrm_pass='{PLANTED}'"],
    ),
    "-eVALUE": (
        "the -e password of key ansible_become_pass",
        lambda d: ["ansible", "all", f"-eansible_become_pass='{PLANTED}'"],
    ),
    "-e JSON": (
        "the -e JSON password of key kms_startup_password",
        lambda d: [
            "ansible-playbook",
            "p.yml",
            "-e",
            json.dumps({"kms_startup_password": PLANTED}),
        ],
    ),
    "-e @file.yml": (
        "the -e @vars.yml password of key kms_startup_password",
        lambda d: [
            "ansible-playbook",
            "p.yml",
            "-e",
            f"@{write(d / 'vars.yml', yaml.safe_dump({'kms_startup_password': PLANTED}))}",
        ],
    ),
    "--extra-vars @file.json": (
        "the -e @vars.json password of key ansible_become_password",
        lambda d: [
            "ansible-playbook",
            "p.yml",
            "--extra-vars",
            f"@{write(d / 'vars.json', json.dumps({'ansible_become_password': PLANTED}))}",
        ],
    ),
    "-a key=value": (
        "the -a password of key startup_password",
        lambda d: ["ansible", "all", "-m", "m", "-a", f"startup_password='{PLANTED}'"],
    ),
    "-i YAML inventory": (
        "the inventory inventory.yml password of key ansible_winrm_pass",
        lambda d: [
            "ansible",
            "all",
            "-i",
            str(write(d / "inventory.yml", yaml.safe_dump(host_vars(ansible_winrm_pass=PLANTED)))),
        ],
    ),
    "--inventory INI inventory": (
        "the inventory hosts.ini password of key ansible_password",
        lambda d: [
            "ansible",
            "all",
            "--inventory",
            str(
                write(
                    d / "hosts.ini", f"[lab]\nkms-new\n\n[lab:vars]\nansible_password={PLANTED}\n"
                )
            ),
        ],
    ),
    "-i inventory folder": (
        "the inventory 10-hosts.yml password of key kms_startup_password",
        lambda d: [
            "ansible",
            "all",
            "-i",
            str(
                write(
                    d / "inv" / "10-hosts.yml",
                    yaml.safe_dump(host_vars(kms_startup_password=PLANTED)),
                ).parent
            ),
        ],
    ),
    "group_vars beside the inventory": (
        "the group_vars/all.yml password of key ansible_password",
        lambda d: [
            "ansible",
            "all",
            "-i",
            str(write(d / "inventory.yml", "all:\n  hosts:\n    localhost:\n")),
            "-e",
            f"x={write(d / 'group_vars' / 'all.yml', yaml.safe_dump({'ansible_password': PLANTED}))}",
        ],
    ),
    "host_vars beside the playbook": (
        "the host_vars/localhost/secrets.yml password of key vault_like_password",
        lambda d: [
            "ansible-playbook",
            str(write(d / "play" / "site.yml", "- hosts: all\n  tasks: []\n")),
            "-e",
            "x="
            + str(
                write(
                    d / "play" / "host_vars" / "localhost" / "secrets.yml",
                    yaml.safe_dump({"vault_like_password": PLANTED}),
                )
            ),
        ],
    ),
    "ansible-runner env/extravars": (
        "ansible-runner's env/extravars password of key kms_startup_password",
        lambda d: [
            "ansible-runner",
            "run",
            str(
                write(
                    d / "private" / "env" / "extravars",
                    json.dumps({"kms_startup_password": PLANTED}),
                ).parents[1]
            ),
            "-p",
            "site.yml",
        ],
    ),
}


@pytest.mark.parametrize("route", ROUTES)
def test_each_route_gives_the_scan_the_planted_password_and_names_where_it_comes_from(
    route: str, tmp_path: Path
) -> None:
    origin, command = ROUTES[route]
    routes = secrets_of(command(tmp_path), tmp_path)
    assert routes.secrets == {PLANTED: origin}


def test_a_numeric_password_and_an_ini_host_line_one_are_collected_as_ansible_prints_them(
    tmp_path: Path,
) -> None:
    inventory = write(
        tmp_path / "hosts",
        "[lab]\nkms-new ansible_password=73105\n\n[lab:vars]\nkms_startup_password=4711.5\n",
    )
    numbers = write(tmp_path / "n.yml", "ansible_become_pass: 90210\nport_count: 5\n")
    routes = secrets_of(["ansible", "all", "-i", str(inventory), "-e", f"@{numbers}"], tmp_path)
    assert routes.secrets == {
        "73105": "the inventory hosts password of key ansible_password",
        "4711.5": "the inventory hosts password of key kms_startup_password",
        "90210": "the -e @n.yml password of key ansible_become_pass",
    }
    assert routes.inputs == {inventory, numbers}


def test_templates_vault_values_and_names_that_only_contain_pass_are_not_passwords(
    tmp_path: Path,
) -> None:
    extra = write(
        tmp_path / "v.yml",
        "ansible_password: '{{ vault_pw }}'\nbypass_checks: nope\nkms_secret: !vault |\n"
        "  $ANSIBLE_VAULT;1.1;AES256\n  6162\nlab_passes: 3\nshow_password: true\n",
    )
    assert not secrets_of(["ansible", "all", "-e", f"@{extra}"], tmp_path).secrets


# How each tool writes a string: the forms a report or log holds it in.
FORMS: dict[str, Callable[[str], str | bytes]] = {
    "literal": lambda s: s,
    "JSON (ensure_ascii, ansible-runner's events)": json.dumps,
    "JSON (not ensure_ascii, -vvvv results)": lambda s: json.dumps(s, ensure_ascii=False),
    "JSON in JSON (job event stdout)": lambda s: json.dumps(json.dumps(s)),
    "\\uXXXX of every non-alphanumeric": lambda s: "".join(
        c if c.isalnum() else f"\\u{ord(c):04x}" for c in s
    ),
    '\\uXXXX upper case, mixed with \\"': lambda s: "".join(
        {"<": "\\u003C", ">": "\\u003E", "&": "\\u0026", '"': '\\"', "\\": "\\\\"}.get(c, c)
        for c in s
    ),
    "Python repr (-vvvv lists)": repr,
    "XML text (junit.xml)": escape,
    "XML attribute (junit.xml)": quoteattr,
    "HTML": html.escape,
    "numeric entities": lambda s: "".join(c if c.isalnum() else f"&#{ord(c)};" for c in s),
    "hex entities": lambda s: "".join(c if c.isalnum() else f"&#x{ord(c):X};" for c in s),
    "XML escaped twice": lambda s: escape(escape(s)),
    "URL": urllib.parse.quote,
    "UTF-16-LE": lambda s: s.encode("utf-16-le"),
}


@pytest.mark.parametrize("form", FORMS)
def test_the_planted_password_is_found_in_each_form_and_the_leak_never_shows_it(
    form: str, tmp_path: Path
) -> None:
    written = FORMS[form](PLANTED)
    data = written if isinstance(written, bytes) else written.encode("utf-8")
    path = tmp_path / "report"
    path.write_bytes(b"x" * 1000 + data + b"\n")
    scan = SecretScan()
    (leak,) = scan.scan_file(path, "report", {PLANTED: "the -e password of key x"})
    assert leak.where == "report" and 1000 <= leak.offset < 1000 + len(data)
    assert not shown_in(str(leak), PLANTED)
    assert (scan.files, scan.file_bytes) == (1, 1001 + len(data))


def test_a_password_across_a_chunk_boundary_of_a_file_over_20_mib_is_found(
    tmp_path: Path,
) -> None:
    big = tmp_path / "big.log"
    escaped = json.dumps(PLANTED).encode()
    offset = 21 * CHUNK - 5
    with big.open("wb") as handle:
        handle.write(b"." * offset + escaped + b"." * CHUNK)
    scan = SecretScan()
    (leak,) = scan.scan_file(big, "big.log", {PLANTED: "planted"})
    assert leak.offset == offset + 1  # after the opening quote
    assert scan.file_bytes == big.stat().st_size


def test_a_file_that_cannot_be_read_is_reported_not_skipped(tmp_path: Path) -> None:
    scan = SecretScan()
    (leak,) = scan.scan_file(tmp_path, "a folder", {PLANTED: "planted"})
    assert str(leak) == "(every password) in a folder at byte 0 (NOT SCANNED: Is a directory)"
    assert scan.files == 0


def test_a_folder_is_scanned_whole_but_the_declared_inputs(tmp_path: Path) -> None:
    inventory = write(tmp_path / "inv" / "hosts.yml", "x")
    extra = write(tmp_path / "vars.yml", "x")
    kept = write(tmp_path / "home" / ".ansible" / "tmp" / "f", "x")
    assert list(files_in(tmp_path, [inventory.parent, extra])) == [kept]


# ---------------------------------------------------------------------------------------------
# End to end: a real ansible-playbook run leaks through each route, and the scan finds each.

PLAYBOOK = """\
- name: Leak on purpose
  hosts: localhost
  gather_facts: false
  tasks:
    - name: Print each planted password
      ansible.builtin.debug:
        msg: "{{ [from_inventory, from_group_vars, from_json_e, from_file_e, from_kv_e] }}"
    - name: Write them to a file as JSON, URL-encoded and HTML-escaped
      ansible.builtin.copy:
        dest: "{{ out }}/written.txt"
        content: "{{ from_json_e | to_json }} {{ from_file_e | urlencode }} {{ from_kv_e | e }}"
        mode: "0600"
"""


def test_a_real_playbook_leaking_each_route_is_caught_in_its_output_and_files(
    tmp_path: Path,
) -> None:
    planted = {
        route: f"{PLANTED}{index}"
        for index, route in enumerate(
            ["inventory", "group_vars", "json_e", "file_e", "kv_e"], start=1
        )
    }
    inventory = write(
        tmp_path / "inv" / "hosts.yml",
        yaml.safe_dump(
            {
                "all": {
                    "hosts": {
                        "localhost": {
                            "ansible_connection": "local",
                            "ansible_python_interpreter": sys.executable,
                            "ansible_password": planted["inventory"],
                        }
                    }
                }
            }
        ),
    )
    write(
        tmp_path / "inv" / "group_vars" / "all.yml",
        f"kms_startup_password: '{planted['group_vars']}'\n",
    )
    extra = write(tmp_path / "vars.yml", yaml.safe_dump({"my_password": planted["file_e"]}))
    work = tmp_path / "work"
    playbook = write(work / "leak.yml", PLAYBOOK)
    command = [
        "ansible-playbook",
        str(playbook),
        "-i",
        str(inventory.parent),
        "-e",
        json.dumps({"become_pass": planted["json_e"], "out": str(work)}),
        f"--extra-vars=@{extra}",
        "-e",
        f"kv_password='{planted['kv_e']}'",
        "-e",
        "from_inventory={{ ansible_password }} from_group_vars={{ kms_startup_password }}",
        "-e",
        "from_json_e={{ become_pass }} from_file_e={{ my_password }} from_kv_e={{ kv_password }}",
        "-vvvv",
    ]
    result = subprocess.run(
        [str(ANSIBLE_BIN / command[0]), *command[1:]],
        cwd=work,
        capture_output=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-2000:]
    routes = secrets_of(command, work)
    assert sorted(routes.secrets) == sorted(planted.values())
    assert routes.inputs == {inventory.parent, extra}
    scan = SecretScan()
    leaks = scan.scan_output(result.stdout, "stdout", routes.secrets)
    leaks += scan.scan_files([(work / "written.txt", "written.txt")], routes.secrets)
    found = {(leak.origin, leak.where) for leak in leaks}
    assert found == {
        ("the inventory hosts.yml password of key ansible_password", "stdout"),
        ("the group_vars/all.yml password of key kms_startup_password", "stdout"),
        ("the -e JSON password of key become_pass", "stdout"),
        ("the -e @vars.yml password of key my_password", "stdout"),
        ("the -e password of key kv_password", "stdout"),
        ("the -e JSON password of key become_pass", "written.txt"),
        ("the -e @vars.yml password of key my_password", "written.txt"),
        ("the -e password of key kv_password", "written.txt"),
    }
    assert not any(shown_in(str(leak), PLANTED) for leak in leaks)


# ---------------------------------------------------------------------------------------------
# Through run_tool, as every test's commands run.


def test_a_command_printing_the_lab_password_fails_its_test_without_the_password_shown(
    ansible_env: dict[str, str], tmp_path: Path
) -> None:
    secret = LAB_DEFAULTS["password"]
    with pytest.raises(AssertionError) as leaked:
        run_tool(
            ["ansible", "localhost", "-m", "ansible.builtin.debug", "-a", f"msg={secret}"],
            ansible_env,
            tmp_path,
        )
    # All the message says (a word of the password is a word of the message: "password").
    assert re.fullmatch(
        r"ansible localhost -m \.\.\. leaked: the lab's account password in stdout at byte "
        r"\d+ \(literal\)",
        str(leaked.value),
    )


def test_a_password_from_an_inventory_written_to_a_file_by_the_command_is_caught(
    ansible_env: dict[str, str], tmp_path: Path
) -> None:
    inventory = tmp_path / "inventory.yml"
    inventory.write_text(
        yaml.safe_dump(
            host_vars(
                vault_like_password="S3cret-Only-Here", ansible_python_interpreter=sys.executable
            )
        ),
        encoding="utf-8",
    )
    quiet = dict(ansible_env, ANSIBLE_VERBOSITY="0")
    command = [
        "ansible",
        "localhost",
        "-i",
        str(inventory),
        "-c",
        "local",
        "-m",
        "ansible.builtin.copy",
        "-a",
        f"content={{{{ vault_like_password }}}} dest={tmp_path / 'written.txt'}",
    ]
    with pytest.raises(AssertionError) as leaked:
        run_tool(command, quiet, tmp_path)
    message = str(leaked.value)
    assert (
        "the inventory inventory.yml password of key vault_like_password in written.txt" in message
    )
    assert not shown_in(message, "S3cret-Only-Here")
    assert (tmp_path / "written.txt").read_text(encoding="utf-8") == "S3cret-Only-Here"


def test_a_file_written_into_the_commands_own_home_is_scanned(
    ansible_env: dict[str, str], tmp_path: Path
) -> None:
    quiet = dict(ansible_env, ANSIBLE_VERBOSITY="0")
    command = [
        "ansible",
        "localhost",
        "-c",
        "local",
        "-e",
        f"ansible_python_interpreter={sys.executable}",
        "-m",
        "ansible.builtin.copy",
        "-a",
        "content={{ lab_password | to_json }} dest={{ lookup('env', 'HOME') }}/note.json",
        "-e",
        f"lab_password='{PLANTED}'",
    ]
    with pytest.raises(AssertionError) as leaked:
        run_tool(command, quiet, tmp_path)
    message = str(leaked.value)
    assert "the -e password of key lab_password in its own home/note.json at byte 1" in message
    assert not shown_in(message, PLANTED)
