# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Connection settings -> WinrsTarget (plugins/plugin_utils/_winrs.py), without a network."""

from __future__ import annotations

import typing as t

import pytest

from ansible_collections.exchops.kms.plugins.plugin_utils._winrs import (
    WinrsConfigError,
    _first_sentences,
    mask,
    target_from_options,
)

SECRET = "S3cret-Pa55"


def options(**overrides: t.Any) -> t.Callable[[str], t.Any]:
    values: dict[str, t.Any] = {
        "remote_addr": "10.0.0.2",
        "port": 5985,
        "scheme": None,
        "path": "/wsman",
        "transport": None,
        "remote_user": "LAB\\admin",
        "remote_password": SECRET,
        "_extras": {},
    }
    extras = overrides.pop("extras", {})
    values.update(overrides)
    values["_extras"] = {f"ansible_winrm_{key}": value for key, value in extras.items()}
    return values.__getitem__


def test_defaults_are_ntlm_over_http_on_5985_with_validation_on() -> None:
    target = target_from_options("kms02", options())
    assert (target.transport, target.scheme, target.port) == ("ntlm", "http", 5985)
    assert target.server_cert_validation == "validate"
    assert target.endpoint == "http://10.0.0.2:5985/wsman"
    assert target.label == "kms02 (http://10.0.0.2:5985/wsman)"
    assert SECRET not in repr(target)


def test_a_port_other_than_5985_means_https_like_ansible_windows() -> None:
    target = target_from_options("kms02", options(port=5986, transport=["basic"]))
    assert (target.scheme, target.transport) == ("https", "basic")


def test_winrm_extras_reach_the_target() -> None:
    target = target_from_options(
        "kms02",
        options(
            port=5986,
            extras={
                "ca_trust_path": "/etc/lab/ca.pem",
                "server_cert_validation": "ignore",
                "operation_timeout_sec": "5",
                "read_timeout_sec": 9,
                "message_encryption": "always",
                "scheme": "https",
            },
        ),
    )
    assert target.ca_trust_path == "/etc/lab/ca.pem"
    assert target.server_cert_validation == "ignore"
    assert (target.operation_timeout_sec, target.read_timeout_sec) == (5, 9)
    assert target.message_encryption == "always"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"transport": ["basic"]}, "refusing Basic authentication over plain HTTP"),
        ({"transport": ["plaintext"]}, "refusing Basic authentication over plain HTTP"),
        ({"transport": ["ssl"], "scheme": "http", "port": 5986}, "refusing Basic authentication"),
        ({"transport": ["telnet"]}, "'telnet', which pywinrm does not offer"),
        ({"scheme": "ftp"}, "ansible_winrm_scheme is 'ftp'"),
        ({"remote_user": None}, "ansible_user is not set"),
        ({"remote_password": ""}, "ansible_password is not set"),
        ({"port": "five"}, "ansible_port is 'five', not a whole number"),
        ({"extras": {"server_cert_validation": "no"}}, "server_cert_validation is 'no'"),
        ({"extras": {"message_encryption": "maybe"}}, "message_encryption is 'maybe'"),
        ({"extras": {"operation_timeout_sec": 0}}, "it must be more than 0"),
        (
            {"extras": {"operation_timeout_sec": 30, "read_timeout_sec": 30}},
            "read_timeout_sec (30) must be more than ansible_winrm_operation_timeout_sec (30)",
        ),
    ],
)
def test_settings_that_cannot_work_are_refused_naming_the_host_and_the_fix(
    overrides: dict[str, t.Any], message: str
) -> None:
    with pytest.raises(WinrsConfigError) as caught:
        target_from_options("kms02", options(**overrides))
    assert str(caught.value).startswith("kms02 (")
    assert message in str(caught.value)
    assert SECRET not in str(caught.value)


def test_mask_hides_every_secret_longest_first() -> None:
    assert mask("sc start MSExchangeKMS HZGYY HZ", ["HZ", "HZGYY", ""]) == (
        "sc start MSExchangeKMS ******** ********"
    )


# Windows' text for fault 2150858770, as WinRM sends it (shortened in the middle).
WINDOWS_FAULT = (
    "The client cannot connect to the destination specified in the request. Verify that the service "
    "on the destination is running and is accepting requests. Consult the logs and documentation for "
    "the WS-Management service running on the destination, most commonly IIS or WinRM. If the "
    "destination is the WinRM service, run the following command on the destination to analyze and "
    'configure the WinRM service: "winrm quickconfig".'
)


def test_a_long_fault_text_is_cut_at_a_sentence_end_and_a_short_one_kept_whole() -> None:
    cut = _first_sentences(WINDOWS_FAULT)
    assert cut.endswith("most commonly IIS or WinRM.") and len(cut) <= 300
    assert _first_sentences("Access is denied") == "Access is denied."
    assert _first_sentences("x" * 50 + " " + "y" * 400).endswith("...")


def test_a_ca_trust_path_missing_on_the_controller_is_refused_before_any_connection(
    tmp_path: t.Any,
) -> None:
    missing = str(tmp_path / "corp-ca.pem")
    with pytest.raises(WinrsConfigError) as caught:
        target_from_options("kms02", options(port=5986, extras={"ca_trust_path": missing}))
    assert str(caught.value) == (
        f"kms02 (https://10.0.0.2:5986/wsman): ansible_winrm_ca_trust_path is {missing!r}, which "
        "does not exist on the controller. Set ansible_winrm_ca_trust_path to the PEM file (or a "
        "folder of hashed PEM certificates) of the CA that issued the host's WinRM certificate, "
        "as a path on the controller, or remove it to use the controller's own trust store. "
        "Nothing was sent."
    )


@pytest.mark.parametrize("kind", ["file", "folder"])
def test_a_ca_trust_path_may_be_a_file_or_a_folder_as_requests_takes_both(
    tmp_path: t.Any, kind: str
) -> None:
    path = tmp_path / "ca"
    if kind == "file":
        path.write_text("-----BEGIN CERTIFICATE-----\n", encoding="ascii")
    else:
        path.mkdir()
    target = target_from_options("kms02", options(port=5986, extras={"ca_trust_path": str(path)}))
    assert target.ca_trust_path == str(path)


@pytest.mark.parametrize(
    "extras",
    [
        {"scheme": "http"},  # requests reads the CA only for https URLs
        {"server_cert_validation": "ignore"},  # and only when it validates
    ],
)
def test_a_missing_ca_trust_path_is_left_alone_where_it_is_never_read(
    tmp_path: t.Any, extras: dict[str, str]
) -> None:
    missing = str(tmp_path / "corp-ca.pem")
    target = target_from_options(
        "kms02", options(port=5986, extras={"ca_trust_path": missing, **extras})
    )
    assert target.ca_trust_path == missing
