# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""How a host is reached (plugins/plugin_utils/_reach.py): directly, or through its Windows jump
host, and what is refused before anything is sent."""

from __future__ import annotations

import typing as t

import pytest

from ansible_collections.exchops.kms.plugins.plugin_utils._reach import (
    direct_reach,
    jump_host_of,
    reach_through,
    shell_slot,
)
from ansible_collections.exchops.kms.plugins.plugin_utils._winrs import (
    WinrsAuthError,
    WinrsConfigError,
    WinrsQuotaFault,
    translate_error,
)

JUMP_PASSWORD = "Jump-Pa55"


def options(**overrides: t.Any) -> t.Callable[[str], t.Any]:
    values: dict[str, t.Any] = {
        "remote_addr": "10.0.0.9",
        "port": 5985,
        "scheme": None,
        "path": "/wsman",
        "transport": ["credssp"],
        "remote_user": "CORP\\kmsadmin",
        "remote_password": JUMP_PASSWORD,
        "_extras": {},
    }
    extras = overrides.pop("extras", {})
    values.update(overrides)
    values["_extras"] = {f"ansible_winrm_{key}": value for key, value in extras.items()}
    return values.__getitem__


LEGACY = options(remote_addr="KMSNEW", transport=None, remote_password="not-used")


def through(
    jump_options: t.Callable[[str], t.Any] | None = None,
    legacy: t.Callable[[str], t.Any] = LEGACY,
    host_vars: dict[str, t.Any] | None = None,
    jump_vars: dict[str, t.Any] | None = None,
    jump: str = "jump01",
    host: str = "kms-new",
):
    return reach_through(
        host,
        legacy,
        {"exchange_jump_host": jump, **(host_vars or {})},
        jump,
        jump_options or options(),
        jump_vars or {},
    )


def test_a_host_without_a_jump_host_is_reached_directly_with_its_own_settings() -> None:
    assert jump_host_of("kms-new", {"ansible_host": "10.0.0.2"}) is None
    reach = direct_reach("kms-new", options(transport=["ntlm"], remote_addr="10.0.0.2"))
    assert (reach.remote, reach.via) == (None, None)
    assert reach.target.label == "kms-new (http://10.0.0.2:5985/wsman)"
    assert reach.facts() == {"via": None, "auth": "ntlm"}


def test_through_a_jump_host_the_shell_is_the_jump_hosts_and_the_commands_name_the_server() -> None:
    reach = through()
    assert reach.remote == "KMSNEW"
    assert (reach.target.address, reach.target.user) == ("10.0.0.9", "CORP\\kmsadmin")
    assert reach.target.password == JUMP_PASSWORD
    assert reach.target.label == "kms-new (through jump01, http://10.0.0.9:5985/wsman)"
    assert reach.facts() == {"via": "jump01", "auth": "delegated"}


def test_kerberos_with_delegation_is_a_logon_that_delegates() -> None:
    jump = options(transport=["kerberos"], port=5986, extras={"kerberos_delegation": "true"})
    reach = through(jump)
    assert reach.target.kerberos_delegation is True


@pytest.mark.parametrize(
    ("transport", "extras"),
    [
        pytest.param("ntlm", {}, id="ntlm"),
        pytest.param("kerberos", {}, id="kerberos without delegation"),
        pytest.param("basic", {}, id="basic"),
    ],
)
def test_a_jump_host_logon_that_delegates_nothing_is_the_double_hop_refused_before_sending(
    transport: str, extras: dict[str, t.Any]
) -> None:
    jump = options(transport=[transport], port=5986, extras=extras)
    with pytest.raises(WinrsConfigError) as caught:
        through(jump)
    message = str(caught.value)
    assert message.startswith("kms-new (through jump01): jump01 is reached with ")
    assert f"ansible_winrm_transport={transport}, which delegates no credentials" in message
    assert "jump01 would reach KMSNEW as ANONYMOUS LOGON and be refused (the double hop)" in message
    assert "Set ansible_winrm_transport: credssp for jump01" in message
    assert message.endswith("Nothing was sent.")
    assert JUMP_PASSWORD not in message


@pytest.mark.parametrize(
    "name",
    ["KMS NEW", "KMSNEW&calc", "https://kmsnew", "kmsnew:5985", '"KMSNEW"', "KMS%PATH%", "-x"],
)
def test_a_name_the_jump_hosts_tools_cannot_take_is_refused(name: str) -> None:
    with pytest.raises(WinrsConfigError, match="behind a jump host it must be the server's name"):
        through(legacy=options(remote_addr=name))


@pytest.mark.parametrize(
    ("arguments", "problem"),
    [
        pytest.param({"jump": "kms-new"}, "exchange_jump_host names the host itself", id="self"),
        pytest.param(
            {"jump_vars": {"exchange_jump_host": "jump00"}},
            "its jump host jump01 has an exchange_jump_host of its own",
            id="chain",
        ),
        pytest.param(
            {"host_vars": {"exchange_jump_auth": "explicit"}},
            "exchange_jump_auth is 'explicit'; the one mode is delegated",
            id="unknown auth mode",
        ),
    ],
)
def test_settings_that_cannot_work_are_refused_naming_the_host(
    arguments: dict[str, t.Any], problem: str
) -> None:
    with pytest.raises(WinrsConfigError) as caught:
        through(**arguments)
    assert str(caught.value).startswith("kms-new (through ")
    assert problem in str(caught.value)


def test_a_jump_host_named_by_something_other_than_a_name_is_refused() -> None:
    with pytest.raises(WinrsConfigError, match="exchange_jump_host is \\['jump01'\\]; it must be"):
        jump_host_of("kms-new", {"exchange_jump_host": ["jump01"]})


def test_a_jump_host_gets_at_most_its_max_shells_at_once_then_the_next_waits_and_gives_up(
    tmp_path: t.Any, fake_clock: t.Any
) -> None:
    reach = through(jump_vars={"exchange_jump_max_shells": 2})
    assert reach.max_shells == 2
    with shell_slot(reach, 30, folder=str(tmp_path)), shell_slot(reach, 30, folder=str(tmp_path)):
        with pytest.raises(WinrsQuotaFault) as caught:
            with shell_slot(reach, 30, clock=fake_clock.clock, folder=str(tmp_path)):
                pass
    message = str(caught.value)
    assert message.startswith("kms-new (through jump01, http://10.0.0.9:5985/wsman): all 2 shells")
    assert "(exchange_jump_max_shells) stayed in use for 30 s" in message
    # Freed: the next one gets a slot at once.
    with shell_slot(reach, 30, clock=fake_clock.clock, folder=str(tmp_path)):
        pass


def test_a_host_reached_directly_takes_no_slot(tmp_path: t.Any) -> None:
    reach = direct_reach("kms-new", options(transport=["ntlm"]))
    with shell_slot(reach, 1, folder=str(tmp_path)):
        pass
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("value", [0, "many", -3])
def test_a_max_shells_that_is_not_a_positive_whole_number_is_refused(value: t.Any) -> None:
    with pytest.raises(WinrsConfigError, match="jump01's exchange_jump_max_shells is"):
        through(jump_vars={"exchange_jump_max_shells": value})


def test_credssp_failures_say_what_to_change_on_the_jump_host() -> None:
    from requests_credssp.exceptions import (  # pylint: disable=import-outside-toplevel
        AuthenticationException,
        NTStatusException,
    )

    target = through().target
    refused = translate_error(
        target,
        "opening a shell",
        AuthenticationException(
            "The server did not response CredSSP being an available authentication method"
        ),
    )
    assert isinstance(refused, WinrsAuthError)
    assert "the host does not offer CredSSP" in str(refused)
    assert "Enable-WSManCredSSP -Role Server" in str(refused)
    wrong = translate_error(target, "opening a shell", NTStatusException(0xC000006D))
    assert isinstance(wrong, WinrsAuthError)
    assert "refused the credentials of 'CORP\\kmsadmin' (credssp)" in str(wrong)
    assert JUMP_PASSWORD not in str(wrong) + str(refused)


@pytest.mark.parametrize(
    ("value", "allowed"),
    [(None, False), (False, False), (True, True), ("yes", True), ("false", False)],
)
def test_the_password_goes_on_a_command_line_only_when_the_operator_says_so(
    value: t.Any, allowed: bool
) -> None:
    host_vars = {} if value is None else {"exchange_jump_allow_password_in_argv": value}
    assert through(host_vars=host_vars).password_in_argv is allowed


@pytest.mark.parametrize("value", ["perhaps", 2, ["true"]])
def test_an_opt_in_that_is_not_a_boolean_is_refused_without_quoting_it(value: t.Any) -> None:
    with pytest.raises(WinrsConfigError) as caught:
        through(host_vars={"exchange_jump_allow_password_in_argv": value})
    message = str(caught.value)
    assert (
        "exchange_jump_allow_password_in_argv is not a boolean; it must be true or false" in message
    )
    assert repr(value) not in message
