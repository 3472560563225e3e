# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What a jump host's tool prints when it cannot reach or read the server it names (`reg query
\\\\HOST\\...`, `sc \\\\HOST`, `wmic /node:HOST`, `dir \\\\HOST\\C$`): which Windows error the text
is (docs/windows-output.md#remote-call-errors).

One text stands for several causes (error 53, "The network path was not found.", is printed for
a name that does not resolve, a missing SMB1 client, NetBIOS over TCP/IP turned off and a
stopped Remote Registry service alike), so the error tells the causes apart only as far as
Windows' text does; `_reach` words each error with every cause it may have, and the doctor
separates them with checks of their own.
"""

# Internal to exchops.kms: not a public API; may change in any release.

from __future__ import annotations

import re

# Win32 error names, by the texts the tools print for them (docs/windows-output.md#remote-call-errors).
SMB1_NOT_AVAILABLE = "smb1_not_available"  # 384
NETWORK_PATH_NOT_FOUND = "network_path_not_found"  # 53
NETWORK_NAME_NOT_FOUND = "network_name_not_found"  # 67
RPC_SERVER_UNAVAILABLE = "rpc_server_unavailable"  # 1722
ACCESS_DENIED = "access_denied"  # 5 (and WMI's WBEM_E_ACCESS_DENIED)
LOGON_FAILURE = "logon_failure"  # 1326

_TEXTS = (
    # Checked first: net.exe's 384 text says "SMB1" and would not match another entry.
    (SMB1_NOT_AVAILABLE, re.compile(r"System error 384\b|requires the obsolete SMB1 protocol")),
    (NETWORK_PATH_NOT_FOUND, re.compile(r"The network path was not found\.|FAILED 53:")),
    (NETWORK_NAME_NOT_FOUND, re.compile(r"The network name cannot be found\.|FAILED 67:")),
    (RPC_SERVER_UNAVAILABLE, re.compile(r"The RPC server is unavailable\.?|FAILED 1722:")),
    (ACCESS_DENIED, re.compile(r"Access is denied\.|Access denied|FAILED 5:")),
    (
        LOGON_FAILURE,
        re.compile(
            r"The user name or password is incorrect\.|Logon failure: unknown user name or bad "
            r"password\.|FAILED 1326:"
        ),
    ),
)


def remote_call_error(text: str) -> str | None:
    """The Windows error (one of the names above) that TEXT, a tool's output on the jump host,
    reports; None when it reports none of them."""
    for error, pattern in _TEXTS:
        if pattern.search(text):
            return error
    return None
