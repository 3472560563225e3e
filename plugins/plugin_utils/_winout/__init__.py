# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pure parsers of the Windows command output that the collection reads over WinRS, one module
per tool (`reg`, `sc`, `wmic`, `wevtutil`, `dir`, `certutil`, `xcopy`, `tasklist`, `type`,
`net config redirector`, `net time`, `at`, `ping`, the Exchange setup log); `_base` holds what they share.

Contract: `parse_<form>(stdout, stderr, exit_code, section=...)` takes the decoded output (`str`,
CRLF intact, as `_winrs.py` decoded it with the shell's code page) and returns a value; no I/O.

- An answer the tool gives about the host is a value, even when the tool exits non-zero: a missing
  registry key (`RegQuery.found` False), `[SC] ... FAILED n:` (`ScFailure`), no WMI instance
  (`[]` / None), dir's "File Not Found" (`DirListing.found` False).
- Output a parser cannot read raises `ParseError`, naming the section, the line and the reason. A
  failure the tool reports that is not an answer ("ERROR: Access is denied.", a WMI error,
  certutil's "FAILED") raises `CommandFailed`, a `ParseError`; cmd's "is not recognized" raises
  `ToolMissing`, a `CommandFailed`. Callers that catch `ParseError` catch all three.
- Error text never quotes more than 200 characters of a line, and masks everything after
  `ImagePath` / `BINARY_PATH_NAME`, where a KM Server password may sit (KB Q235418).

The formats and their sources: docs/windows-output.md. The modules cite its sections by anchor
(docs/windows-output.md#reg-parser-rules), and mark a rule no source states [I], as it does.
"""

# Internal to exchops.kms: not a public API; may change in any release.

from __future__ import annotations

from ._base import (
    CommandFailed,
    ParseError,
    ToolMissing,
    WmiFailed,
    parse_not_recognized,
    split_merged_streams,
)
from ._events import EventRecord
from .at import parse_at_added
from .certutil import decode_certutil_base64, parse_certutil_encode, parse_certutil_hash
from .dir import DirEntry, DirListing, DirTree, parse_dir, parse_dir_tree, split_merged_dir_streams
from .net import (
    RedirectorConfig,
    ServerClock,
    Transport,
    parse_net_config_redirector,
    parse_net_time,
)
from .ping import PingResult, parse_ping
from .reg import RegKey, RegQuery, RegValue, parse_reg_query
from .remote import remote_call_error
from .sc import (
    ERROR_ACCESS_DENIED,
    ERROR_DEPENDENT_SERVICES_RUNNING,
    ERROR_MORE_DATA,
    ERROR_SERVICE_ALREADY_RUNNING,
    ERROR_SERVICE_DOES_NOT_EXIST,
    ERROR_SERVICE_NOT_ACTIVE,
    ERROR_SERVICE_REQUEST_TIMEOUT,
    SERVICE_STATES,
    START_TYPES,
    ScFailure,
    ServiceConfig,
    ServiceStatus,
    mask_image_path,
    parse_sc_config,
    parse_sc_enumdepend,
    parse_sc_qc,
    parse_sc_query,
    split_image_path,
)
from .setup_log import SETUP_LOG_INITIALIZED, SetupRun, parse_setup_log, setup_log_appended
from .tasklist import TaskEntry, parse_tasklist_csv
from .type import parse_type
from .wevtutil import parse_wevtutil_text
from .wmic import (
    parse_cim_datetime,
    parse_wmic_datafile,
    parse_wmic_events,
    parse_wmic_file_version,
    parse_wmic_service_start_modes,
    parse_wmic_values,
)
from .xcopy import XCOPY_EXIT_MEANINGS, XcopyResult, parse_xcopy

__all__ = [
    "WmiFailed",
    "remote_call_error",
    "ERROR_ACCESS_DENIED",
    "ERROR_DEPENDENT_SERVICES_RUNNING",
    "ERROR_MORE_DATA",
    "ERROR_SERVICE_ALREADY_RUNNING",
    "ERROR_SERVICE_DOES_NOT_EXIST",
    "ERROR_SERVICE_NOT_ACTIVE",
    "ERROR_SERVICE_REQUEST_TIMEOUT",
    "SERVICE_STATES",
    "SETUP_LOG_INITIALIZED",
    "START_TYPES",
    "XCOPY_EXIT_MEANINGS",
    "CommandFailed",
    "DirEntry",
    "DirListing",
    "DirTree",
    "EventRecord",
    "ParseError",
    "PingResult",
    "RedirectorConfig",
    "ServerClock",
    "RegKey",
    "RegQuery",
    "RegValue",
    "ScFailure",
    "ServiceConfig",
    "ServiceStatus",
    "SetupRun",
    "TaskEntry",
    "ToolMissing",
    "Transport",
    "XcopyResult",
    "decode_certutil_base64",
    "mask_image_path",
    "parse_at_added",
    "parse_certutil_encode",
    "parse_certutil_hash",
    "parse_cim_datetime",
    "parse_dir",
    "parse_dir_tree",
    "parse_net_config_redirector",
    "parse_net_time",
    "parse_not_recognized",
    "parse_ping",
    "parse_reg_query",
    "parse_sc_config",
    "parse_sc_enumdepend",
    "parse_sc_qc",
    "parse_sc_query",
    "parse_setup_log",
    "parse_tasklist_csv",
    "parse_type",
    "parse_wevtutil_text",
    "parse_wmic_events",
    "parse_wmic_datafile",
    "parse_wmic_file_version",
    "parse_wmic_service_start_modes",
    "parse_wmic_values",
    "parse_xcopy",
    "setup_log_appended",
    "split_image_path",
    "split_merged_dir_streams",
    "split_merged_streams",
]
