# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""`parse_net_config_redirector` (plugins/plugin_utils/_winout/net.py): the transports under
"Workstation active on", NetBIOS over TCP/IP from them (KB 204279), and the answers that are not
that listing (docs/windows-output.md#net-config-redirector).
"""

from __future__ import annotations

import pytest
from conftest import load

from ansible_collections.exchops.kms.plugins.plugin_utils._probe import Section
from ansible_collections.exchops.kms.plugins.plugin_utils._winout import (
    CommandFailed,
    ParseError,
    ToolMissing,
    Transport,
    parse_net_config_redirector,
)

NET = "net_config_redirector"


def test_kb_204279s_sample_lists_both_kinds_of_transport_and_netbios_is_bound() -> None:
    config = parse_net_config_redirector(*load(NET, "e17_kb204279_sample"))
    assert config.transports == (
        Transport("NetbiosSmb", "000000000000"),
        Transport("NetBT_Tcpip_{610E2A3A-16C7-4E66-A11D-A483A5468C10}", "02004C4F4F50"),
        Transport("NetBT_Tcpip_{CAF8956D-99FB-46E3-B04B-D4BB1AE93982}", "009027CED4C2"),
    )
    assert config.netbios_over_tcpip is True


@pytest.mark.parametrize(
    ("case", "names", "netbios"),
    [
        ("netbios_on_2016", ["NetBT_Tcpip_{4D36E972-E325-11CE-BFC1-08002BE10318}"], True),
        ("netbios_off_2016", [], False),
        (
            "reactos_padded_heading_six_spaces",
            ["NetbiosSmb", "NetBT_Tcpip_{3E5D9C0B-8E2F-4E1A-9C9D-1234567890AB}"],
            True,
        ),
    ],
)
def test_the_list_ends_at_the_first_empty_line_whatever_its_indentation(
    case: str, names: list[str], netbios: bool
) -> None:
    config = parse_net_config_redirector(*load(NET, case))
    assert [transport.name for transport in config.transports] == names
    assert config.netbios_over_tcpip is netbios
    # Addresses are kept as 12 hexadecimal digits, upper case.
    assert all(len(t.address) == 12 and t.address == t.address.upper() for t in config.transports)


def test_netbiossmb_alone_is_no_netbios_over_tcpip() -> None:
    # The direct-hosted transport is global, not per adapter (KB 204279).
    stdout = "Workstation active on\r\n        NetbiosSmb (000000000000)\r\n\r\n"
    assert parse_net_config_redirector(stdout, "", 0).netbios_over_tcpip is False


@pytest.mark.parametrize(
    ("case", "message"),
    [
        (
            "garbage_transport_without_address",
            r"line 2: .* expected a transport 'NAME \(ADDRESS\)'",
        ),
        ("garbage_powershell_binding", "no 'Workstation active on' line"),
    ],
)
def test_output_that_is_not_the_listing_is_refused(case: str, message: str) -> None:
    with pytest.raises(ParseError, match=message):
        parse_net_config_redirector(*load(NET, case), section="jump_netbios")


def test_nets_own_failure_is_a_command_failure_with_its_text() -> None:
    with pytest.raises(CommandFailed, match="System error 5 has occurred. Access is denied."):
        parse_net_config_redirector(*load(NET, "access_denied"))


def test_a_failure_merged_into_stdout_is_a_command_failure() -> None:
    # The doctor's probe runs net with 2>&1: net's message arrives among stdout's lines.
    section = Section("jump_netbios", "The Workstation service is not started.\r\n\r\n", False)
    with pytest.raises(CommandFailed, match="the command failed \\(exit code 1\\)"):
        parse_net_config_redirector(*section.streams(), section="jump_netbios")


def test_a_failure_that_printed_nothing_is_a_command_failure() -> None:
    with pytest.raises(CommandFailed, match="printed nothing"):
        parse_net_config_redirector("", "", 2)


def test_a_missing_net_is_a_missing_tool() -> None:
    stderr = (
        "'net' is not recognized as an internal or external command,\r\n"
        "operable program or batch file.\r\n"
    )
    with pytest.raises(ToolMissing, match="'net' is missing"):
        parse_net_config_redirector("", stderr, 9009)
