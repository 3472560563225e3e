# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The kms_parity filter (plugins/filter/kms_parity.py) takes the recorded builds that
kms_move_facts takes, and judges with them exactly as _parity does."""

from __future__ import annotations

import typing as t

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.exchops.kms.plugins.filter.kms_parity import kms_parity
from ansible_collections.exchops.kms.plugins.plugin_utils._parity import (
    judge_pair,
    recorded_builds,
)

RELEASES = {
    "5.5.1960.8": "Exchange Server 5.5 RTM",
    "5.5.2448.0": "Exchange Server 5.5 SP2",
    "5.5.2650.0": "Exchange Server 5.5 SP3",
    "5.5.2650.12": "Exchange Server 5.5 SP3",
}
# kms_backup's result taken on kms-old before the move.
MANIFEST = {"changed": True, "kms_binary_build": "5.5.2650.12", "backup_path": "C:\\B"}
GONE = {"unreachable": True, "msg": "kms-old (http://y): unreachable: connection refused."}


def read(build: str = "5.5.2650.0", kms_binary: str | None = "5.5.2650.12") -> dict[str, t.Any]:
    kms: dict[str, t.Any] = {"installed": True, "events": [], "service": {"state": "stopped"}}
    if kms_binary:
        kms.update(binary_build=kms_binary, binary_release=RELEASES[kms_binary])
    exchange = {"installed": True, "build": build, "release": RELEASES[build], "kms": kms}
    return {"changed": False, "ansible_facts": {"exchange": exchange}}


def verdict(source_read: t.Mapping[str, t.Any], **records: t.Any) -> dict[str, t.Any]:
    return kms_parity(read(kms_binary="5.5.1960.8"), source_read, "kms-new", "kms-old", **records)


@pytest.mark.parametrize(
    ("source_read", "records", "read_from"),
    [
        # The evidence order of kms_move_facts: the source's Kmserver.exe, the backup manifest,
        # kms_database_build, the source's server build.
        (read(), {"backup_manifest": MANIFEST, "database_build": "5.5.2448"}, "source_kmserver"),
        (GONE, {"backup_manifest": MANIFEST, "database_build": "5.5.2448"}, "backup_manifest"),
        (read(kms_binary=None), {"database_build": "5.5.2650.12"}, "kms_database_build"),
        (GONE, {"backup_manifest": None, "database_build": "5.5.2650"}, "kms_database_build"),
        (
            read(kms_binary=None),
            {"backup_manifest": {}, "database_build": ""},
            "source_server_build",
        ),
        (read(kms_binary=None), {"database_build": None}, "source_server_build"),
    ],
)
def test_the_filter_takes_the_recorded_builds_in_kms_move_facts_order(
    source_read: dict[str, t.Any], records: dict[str, t.Any], read_from: str
) -> None:
    judged = verdict(source_read, **records)
    assert judged["database_build_from"] == read_from
    assert judged["status"] == "mismatch" and judged["remedy"] == "reapply_sp"
    # The same verdict as _parity gives kms_move_facts for the same records.
    same = judge_pair(
        "kms-new",
        "kms-old",
        read(kms_binary="5.5.1960.8"),
        source_read,
        allow_newer_target=False,
        source_in_inventory=True,
        recorded=recorded_builds(
            records.get("backup_manifest") or None, records.get("database_build") or "", "kms-old"
        ),
    )
    assert judged == same.to_dict()


def test_an_unreachable_source_without_records_stays_unreachable_and_names_the_records() -> None:
    judged = verdict(GONE)
    assert judged["status"] == "unreachable"
    assert "sp_parity_backup_manifest" in judged["fix"] and "kms_database_build" in judged["fix"]


def test_a_gone_source_with_a_manifest_is_judged_from_it_and_the_reason_says_so() -> None:
    judged = verdict(GONE, backup_manifest={**MANIFEST, "host": "kms-old"})
    assert judged["database_build"] == "5.5.2650"
    assert "Kmserver.exe 5.5.2650.12 recorded by kms_backup on kms-old" in judged["reason"]


@pytest.mark.parametrize(
    ("records", "message"),
    [
        # A path: the filter has no loader; the file is read with a lookup.
        ({"backup_manifest": "backups/kms-old.json"}, "lookup('ansible.builtin.file', PATH)"),
        (
            {"backup_manifest": ["5.5.2650.12"]},
            "give the registered result of exchops.kms.kms_backup",
        ),
        (
            {"backup_manifest": {"backup_path": "C:\\B"}},
            "the backup manifest has no kms_binary_build",
        ),
        ({"database_build": 5.5}, "database_build is 5.5; it must be the file version"),
        ({"database_build": "5.5 SP3"}, "kms_database_build is '5.5 SP3': not an Exchange build"),
    ],
)
def test_records_that_name_no_build_are_refused_in_the_filters_words(
    records: dict[str, t.Any], message: str
) -> None:
    with pytest.raises(AnsibleFilterError, match="^kms_parity: ") as raised:
        verdict(GONE, **records)
    assert message in str(raised.value)
