# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""`parse_certutil_hash` (plugins/plugin_utils/_winout/certutil.py) on the certutil_hashfile
fixtures and on output written inline.
"""

from __future__ import annotations

import pytest
from conftest import load

from ansible_collections.exchops.kms.plugins.plugin_utils._winout import (
    ParseError,
    parse_certutil_hash,
)

DIGEST = "41598bd7f011d612dac42bedd01f9567a335aac8843dce54d3efe58c39542565"


@pytest.mark.parametrize("case", ["sha256", "sha256_spaced_pairs_windows7"])
def test_certutil_digests_are_lower_case_hex(case: str) -> None:
    assert parse_certutil_hash(*load("certutil_hashfile", case)) == DIGEST


def test_certutil_checks_the_digest_length_and_the_completion_line() -> None:
    good = (
        f"SHA256 hash of C:\\x:\r\n{DIGEST}\r\n"
        "CertUtil: -hashfile command completed successfully.\r\n"
    )
    assert (
        parse_certutil_hash(
            good.replace("SHA256", "SHA1").replace(DIGEST, DIGEST[:40]), "", 0, algorithm="sha1"
        )
        == DIGEST[:40]
    )
    with pytest.raises(ParseError, match="a SHA256 digest has 64 hex digits"):
        parse_certutil_hash(good.replace(DIGEST, DIGEST[:62]), "", 0)
    with pytest.raises(ParseError, match="expected 'CertUtil: -hashfile command completed"):
        parse_certutil_hash(good.replace("completed successfully", "done"), "", 0)
    with pytest.raises(ParseError, match="not hexadecimal byte pairs"):
        parse_certutil_hash(good.replace(DIGEST[:2], "zz"), "", 0)
    with pytest.raises(ValueError, match="unknown hash algorithm"):
        parse_certutil_hash(good, "", 0, algorithm="CRC32")
