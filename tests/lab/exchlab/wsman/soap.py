# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""SOAP 1.2 / WS-Addressing / WS-Management envelopes and faults, shaped like Windows'.

Requests are parsed with xml.etree (namespace-exact); responses are built from templates with
every text and attribute escaped. Fault texts come from Windows' wsmerror.h / winerror.h and
from recorded Windows faults (MS-WSMV; pypsrp and pywinrm test data).
"""

# Internal to exchops.kms: not a public API; may change in any release.

from __future__ import annotations

import re
import uuid
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from xml.sax.saxutils import escape, quoteattr

NS_SOAP = "http://www.w3.org/2003/05/soap-envelope"
NS_ADDRESSING = "http://schemas.xmlsoap.org/ws/2004/08/addressing"
NS_TRANSFER = "http://schemas.xmlsoap.org/ws/2004/09/transfer"
NS_WSMAN = "http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd"
NS_WSMAN_MS = "http://schemas.microsoft.com/wbem/wsman/1/wsman.xsd"
NS_SHELL = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell"
NS_WSMAN_FAULT = "http://schemas.microsoft.com/wbem/wsman/1/wsmanfault"

ANONYMOUS = "http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous"
RESOURCE_CMD = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/cmd"
ACTION_FAULT = "http://schemas.dmtf.org/wbem/wsman/1/wsman/fault"

ACTIONS = {
    "http://schemas.xmlsoap.org/ws/2004/09/transfer/Create": "Create",
    "http://schemas.xmlsoap.org/ws/2004/09/transfer/Delete": "Delete",
    "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/Command": "Command",
    "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/Receive": "Receive",
    "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/Signal": "Signal",
    "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/Send": "Send",
}

# Windows' error numbers (wsmerror.h / winerror.h), named as there.
ERROR_WSMAN_OPERATION_TIMEDOUT = 2150858793
ERROR_WSMAN_UNEXPECTED_SELECTORS = 2150858843
ERROR_INVALID_PARAMETER = 87
ERROR_WSMAN_QUOTA_MAX_SHELLS = 2150859173
ERROR_WSMAN_ACTION_NOT_SUPPORTED = 2150858771
ERROR_WSMAN_RESOURCE_NOT_FOUND = 2150858752
ERROR_WSMAN_INVALID_SOAP_BODY = 2150858791
ERROR_INTERNAL_ERROR = 1359

_GENERIC_REASON = "The WS-Management service cannot process the request."

# code -> (s:Code value, subcode, reason). The reason also goes to f:Message unless the
# caller gives a more specific message, as Windows does.
FAULT_CATALOG: dict[int, tuple[str, str, str]] = {
    ERROR_WSMAN_OPERATION_TIMEDOUT: (
        "s:Receiver",
        "w:TimedOut",
        "The WS-Management service cannot complete the operation within the time specified "
        "in OperationTimeout.",
    ),
    ERROR_WSMAN_UNEXPECTED_SELECTORS: (
        "s:Sender",
        "w:InvalidSelectors",
        "The WS-Management service cannot process the request because the request contained "
        "invalid selectors for the resource.",
    ),
    ERROR_INVALID_PARAMETER: ("s:Sender", "w:InvalidParameter", "The parameter is incorrect."),
    5: ("s:Sender", "w:AccessDenied", "Access is denied."),
    ERROR_WSMAN_QUOTA_MAX_SHELLS: (
        "s:Receiver",
        "w:InternalError",
        "The WS-Management service cannot process the request. The maximum number of "
        "concurrent shells for this user has been exceeded. Close existing shells or raise "
        "the quota for this user.",
    ),
    2150859174: (
        "s:Receiver",
        "w:InternalError",
        "The WS-Management service cannot process the request. The maximum number of "
        "concurrent operations for this user has been exceeded. Close existing operations "
        "for this user, or raise the quota for this user.",
    ),
    2150858770: (
        "s:Sender",
        "a:DestinationUnreachable",
        "The client cannot connect to the destination specified in the request. Verify that "
        "the service on the destination is running and is accepting requests. Consult the "
        "logs and documentation for the WS-Management service running on the destination, "
        "most commonly IIS or WinRM. If the destination is the WinRM service, run the "
        "following command on the destination to analyze and configure the WinRM service: "
        '"winrm quickconfig".',
    ),
    ERROR_WSMAN_ACTION_NOT_SUPPORTED: (
        "s:Sender",
        "a:ActionNotSupported",
        "The WS-Management service does not support the action specified in the request.",
    ),
    ERROR_WSMAN_RESOURCE_NOT_FOUND: (
        "s:Sender",
        "a:DestinationUnreachable",
        "The WS-Management service cannot process the request. The service cannot find the "
        "resource identified by the resource URI and selectors.",
    ),
    2150858772: (
        "s:Receiver",
        "a:EndpointUnavailable",
        "The WS-Management service cannot process the request because the resource is "
        "offline. Retry the request later when the resource is online.",
    ),
    ERROR_WSMAN_INVALID_SOAP_BODY: (
        "s:Sender",
        "w:InvalidBody",
        "The WS-Management service cannot process the request because the request packet "
        "does not have a valid SOAP body.",
    ),
    # 0x800703FA: the classic fault when the user profile of the WinRM shell was unloaded.
    2147943418: (
        "s:Receiver",
        "w:InternalError",
        "Illegal operation attempted on a registry key that has been marked for deletion.",
    ),
    ERROR_INTERNAL_ERROR: ("s:Receiver", "w:InternalError", "An internal error occurred."),
    995: (
        "s:Receiver",
        "w:InternalError",
        "The I/O operation has been aborted because of either a thread exit or an "
        "application request.",
    ),
    1460: (
        "s:Receiver",
        "w:InternalError",
        "This operation returned because the timeout period expired.",
    ),
}


class WsmanFault(Exception):
    """A WS-Man fault to answer with HTTP 500, in Windows' shape."""

    def __init__(
        self,
        code: int,
        message: str | None = None,
        *,
        value: str | None = None,
        subcode: str | None = None,
        reason: str | None = None,
        fault_detail: str | None = None,
    ) -> None:
        cat_value, cat_subcode, cat_reason = FAULT_CATALOG.get(
            code, ("s:Receiver", "w:InternalError", _GENERIC_REASON)
        )
        self.code = code
        self.value = value or cat_value
        self.subcode = subcode or cat_subcode
        self.reason = reason or cat_reason
        self.message = message or self.reason
        self.fault_detail = fault_detail
        super().__init__(f"WSManFault {code}: {self.message}")


@dataclass(frozen=True)
class WsmanRequest:
    """The parts of a WS-Man request the WinRS layer uses."""

    action: str
    message_id: str
    resource_uri: str
    to: str
    selectors: dict[str, str] = field(default_factory=dict)
    options: dict[str, str] = field(default_factory=dict)
    operation_timeout_s: float | None = None
    max_envelope_size: int | None = None
    body: ET.Element | None = None

    @property
    def operation(self) -> str | None:
        """The WinRS operation name ("Create", "Receive", ...) or None for unknown actions."""
        return ACTIONS.get(self.action)


_DURATION = re.compile(
    r"^P(?:(?P<d>\d+)D)?(?:T(?:(?P<h>\d+)H)?(?:(?P<m>\d+)M)?(?:(?P<s>\d+(?:\.\d+)?)S)?)?$"
)


def parse_duration(text: str) -> float:
    """Seconds in an xs:duration such as PT20S, PT7200.000S or P0DT0H0M20S."""
    match = _DURATION.match(text.strip())
    if not match or text.strip() in ("P", "PT"):
        raise ValueError(f"not an xs:duration: {text!r}")
    parts = {k: float(v) if v else 0.0 for k, v in match.groupdict().items()}
    return parts["d"] * 86400 + parts["h"] * 3600 + parts["m"] * 60 + parts["s"]


def format_duration(seconds: float) -> str:
    """Windows' style for IdleTimeOut (PT7200.000S)."""
    return f"PT{seconds:.3f}S"


def _q(ns: str, tag: str) -> str:
    return f"{{{ns}}}{tag}"


def parse_request(data: bytes) -> WsmanRequest:
    """Parse a SOAP envelope; raise WsmanFault (InvalidBody) when it is not one."""
    try:
        root = ET.fromstring(data)
    except ET.ParseError as exc:
        raise WsmanFault(ERROR_WSMAN_INVALID_SOAP_BODY) from exc
    if root.tag != _q(NS_SOAP, "Envelope"):
        raise WsmanFault(ERROR_WSMAN_INVALID_SOAP_BODY)
    header = root.find(_q(NS_SOAP, "Header"))
    if header is None:
        raise WsmanFault(ERROR_WSMAN_INVALID_SOAP_BODY)

    def text(ns: str, tag: str) -> str:
        element = header.find(_q(ns, tag))
        return (element.text or "").strip() if element is not None else ""

    selectors: dict[str, str] = {}
    for selector in header.iterfind(f"{_q(NS_WSMAN, 'SelectorSet')}/{_q(NS_WSMAN, 'Selector')}"):
        selectors[selector.get("Name", "")] = (selector.text or "").strip()
    options: dict[str, str] = {}
    for option in header.iterfind(f"{_q(NS_WSMAN, 'OptionSet')}/{_q(NS_WSMAN, 'Option')}"):
        options[option.get("Name", "")] = (option.text or "").strip()

    operation_timeout: float | None = None
    timeout_text = text(NS_WSMAN, "OperationTimeout")
    if timeout_text:
        try:
            operation_timeout = parse_duration(timeout_text)
        except ValueError as exc:
            raise WsmanFault(
                ERROR_INVALID_PARAMETER, f"Invalid OperationTimeout {timeout_text}"
            ) from exc
    max_envelope: int | None = None
    envelope_text = text(NS_WSMAN, "MaxEnvelopeSize")
    if envelope_text.isdigit():
        max_envelope = int(envelope_text)

    return WsmanRequest(
        action=text(NS_ADDRESSING, "Action"),
        message_id=text(NS_ADDRESSING, "MessageID"),
        resource_uri=text(NS_WSMAN, "ResourceURI"),
        to=text(NS_ADDRESSING, "To"),
        selectors=selectors,
        options=options,
        operation_timeout_s=operation_timeout,
        max_envelope_size=max_envelope,
        body=root.find(_q(NS_SOAP, "Body")),
    )


_ENVELOPE_OPEN = (
    '<s:Envelope xml:lang="en-US" xmlns:s="{s}" xmlns:a="{a}" xmlns:x="{x}" xmlns:w="{w}" '
    'xmlns:rsp="{rsp}" xmlns:p="{p}">'
).format(s=NS_SOAP, a=NS_ADDRESSING, x=NS_TRANSFER, w=NS_WSMAN, rsp=NS_SHELL, p=NS_WSMAN_MS)


def new_message_id() -> str:
    """A message, shell or command id the way Windows writes them (upper-case GUID)."""
    return str(uuid.uuid4()).upper()


def envelope(action: str, relates_to: str, body_xml: str) -> bytes:
    """A response envelope; body_xml must already be escaped XML."""
    return (
        f"{_ENVELOPE_OPEN}<s:Header>"
        f"<a:Action>{escape(action)}</a:Action>"
        f"<a:MessageID>uuid:{new_message_id()}</a:MessageID>"
        f"<a:To>{ANONYMOUS}</a:To>"
        # Echoed verbatim: pypsrp compares the exact string (its ids are upper case).
        f"<a:RelatesTo>{escape(relates_to)}</a:RelatesTo>"
        f"</s:Header><s:Body>{body_xml}</s:Body></s:Envelope>"
    ).encode("utf-8")


def fault_envelope(fault: WsmanFault, relates_to: str, machine: str) -> bytes:
    """The SOAP fault Windows sends with HTTP 500."""
    detail = ""
    if fault.fault_detail:
        detail = f"<w:FaultDetail>{escape(fault.fault_detail)}</w:FaultDetail>"
    body = (
        "<s:Fault><s:Code>"
        f"<s:Value>{escape(fault.value)}</s:Value>"
        f"<s:Subcode><s:Value>{escape(fault.subcode)}</s:Value></s:Subcode>"
        "</s:Code>"
        f'<s:Reason><s:Text xml:lang="en-US">{escape(fault.reason)} </s:Text></s:Reason>'
        f"<s:Detail>{detail}"
        f'<f:WSManFault xmlns:f="{NS_WSMAN_FAULT}" Code="{fault.code}" Machine={quoteattr(machine)}>'
        f"<f:Message>{escape(fault.message)} </f:Message></f:WSManFault>"
        "</s:Detail></s:Fault>"
    )
    return envelope(ACTION_FAULT, relates_to, body)


def attr(value: str) -> str:
    """An XML attribute value, quoted and escaped."""
    return quoteattr(value)


def text_node(value: str) -> str:
    """XML character data, escaped."""
    return escape(value)
