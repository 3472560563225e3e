# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Verdicts on KM Server move pairs (plugins/plugin_utils/_parity.py) and the report formats."""

from __future__ import annotations

import typing as t
import xml.etree.ElementTree as ET

import jsonschema
import pytest

from ansible_collections.exchops.kms.plugins.plugin_utils._kms import DATABASE_BUILD_FROM
from ansible_collections.exchops.kms.plugins.plugin_utils._parity import (
    PAIR_MESSAGES,
    PAIR_RULES,
    REMEDIES,
    DatabaseBuild,
    Pair,
    PairVerdict,
    decide_pair,
    judge_pair,
    recorded_builds,
)
from ansible_collections.exchops.kms.plugins.plugin_utils._report import (
    REMEDY_WORDS,
    build_report,
    to_junit,
    to_markdown,
)

SCHEMA = "kms_report.schema.json"
RELEASES = {
    "5.5.1960.8": "Exchange Server 5.5 RTM",
    "5.5.2232.0": "Exchange Server 5.5 SP1",
    "5.5.2448.0": "Exchange Server 5.5 SP2",
    "5.5.2606.0": "Exchange Server 5.5 SP2 + hotfix",
    "5.5.2610.0": "Exchange Server 5.5 SP2 + hotfix",
    "5.5.2650.0": "Exchange Server 5.5 SP3",
    "5.5.2650.12": "Exchange Server 5.5 SP3",
    "5.5.2653.0": "Exchange Server 5.5 SP4",
    "5.5.2653.12": "Exchange Server 5.5 SP4",
    "6.0.4417.0": "Exchange 2000 Server RTM",
    "6.0.5762.0": "Exchange 2000 Server SP2",
    "6.0.6249.0": "Exchange 2000 Server SP3",
}


def read(
    build: str | None = "5.5.2650.0",
    kms_binary: str | None = "5.5.2650.12",
    kms: bool = True,
    events: list[dict[str, t.Any]] | None = None,
    store: str | None = None,
) -> dict[str, t.Any]:
    """exchange_facts' result; `store`: a Store.exe version on another service pack than the
    registry's, recorded as exchange_facts records it (`inconsistent`)."""
    exchange: dict[str, t.Any] = {
        "installed": build is not None,
        "kms": {"installed": kms, "events": events or []},
    }
    if build:
        exchange.update(build=build, release=RELEASES[build])
    if build and store:
        newest = int(build.split(".")[2])
        exchange["inconsistent"] = [
            {
                "what": "server build",
                "readings": {"NewestBuild": newest, "ServicePackBuild": newest, "Store.exe": store},
                "disagree": ["Store.exe"],
            }
        ]
    if kms and kms_binary:
        exchange["kms"].update(binary_build=kms_binary, binary_release=RELEASES[kms_binary])
    exchange["kms"]["service"] = {"state": "stopped" if kms else "absent"}
    return {"changed": False, "ansible_facts": {"exchange": exchange}}


EVENT_5389 = {"id": 5389, "source": "MSExchangeKMS", "time": "2001-03-14T09:12:40+00:00"}
UNREACHABLE = {"unreachable": True, "msg": "kms-new (http://x): unreachable: connection refused"}
NOT_TRUSTED = {"unreachable": True, "msg": "kms-old: TLS certificate not trusted"}
UNREACHABLE_SOURCE = {
    "unreachable": True,
    "msg": "kms-old (http://y): unreachable: connection refused.",
}
REFUSED = {"failed": False, "msg": "kms-old: refused the credentials"}


# kms_backup's result taken on kms-old before the move, and the operator's statement.
MANIFEST = {"changed": True, "kms_binary_build": "5.5.2650.12", "backup_path": "C:\\B"}


def recorded(manifest: dict | None = None, database_build: str = "") -> tuple[DatabaseBuild, ...]:
    return recorded_builds(manifest, database_build, "kms-old")


def judge(
    target: t.Mapping[str, t.Any] | None,
    source: t.Mapping[str, t.Any] | None,
    allow_newer: bool = False,
    *,
    source_name: str | None = "kms-old",
    in_inventory: bool = True,
    records: tuple[DatabaseBuild, ...] = (),
) -> PairVerdict:
    return judge_pair(
        "kms-new",
        source_name,
        target,
        source,
        allow_newer_target=allow_newer,
        source_in_inventory=in_inventory,
        recorded=records,
    )


def rule_of(
    target: t.Mapping[str, t.Any] | None,
    source: t.Mapping[str, t.Any] | None,
    allow_newer: bool = False,
    *,
    source_name: str | None = "kms-old",
    in_inventory: bool = True,
    records: tuple[DatabaseBuild, ...] = (),
) -> str:
    pair = Pair("kms-new", source_name, target, source, allow_newer, in_inventory, records)
    rule, _values = decide_pair(pair)
    return rule.id


@pytest.mark.parametrize(
    ("target", "source", "allow_newer", "rule", "status"),
    [
        (read(), read(), False, "match", "match"),
        (read(kms_binary="5.5.1960.8"), read(), False, "binary_behind", "mismatch"),
        (read("5.5.2448.0", "5.5.2448.0"), read(), False, "sp_behind", "mismatch"),
        (read("5.5.2653.0", "5.5.2653.12"), read(), False, "newer_target", "mismatch"),
        (read("5.5.2653.0", "5.5.2653.12"), read(), True, "newer_target_allowed", "match"),
        (read("6.0.6249.0", None, kms=False), read(), False, "target_without_kms", "error"),
        (read("6.0.6249.0", "6.0.6249.0"), read(), False, "different_family", "mismatch"),
        (read(None), read(), False, "target_without_exchange", "error"),
        (read(), read(None), False, "source_without_exchange", "error"),
        (read(), read(kms=False), False, "source_without_kms", "error"),
        (read(kms_binary=None), read(), False, "binary_unknown", "error"),
        (UNREACHABLE, read(), False, "target_unreachable", "unreachable"),
        (read(), NOT_TRUSTED, False, "source_unreachable", "unreachable"),
        (read(), REFUSED, False, "source_not_read", "error"),
        (read(), {"skipped": True}, False, "source_not_read", "error"),
        (None, read(), False, "target_not_read", "error"),
        # The order of the rules decides when more than one would apply.
        ({"failed": True}, NOT_TRUSTED, False, "target_not_read", "error"),
        (read(None), read(kms=False), False, "source_without_kms", "error"),
        (read("6.0.6249.0", "5.5.1960.8"), read(), False, "different_family", "mismatch"),
        (read("5.5.2448.0", None), read(), False, "sp_behind", "mismatch"),
        (read("5.5.2653.0", "5.5.1960.8"), read(), True, "binary_behind", "mismatch"),
        (read("5.5.2653.0", None), read(), True, "binary_unknown", "error"),
        # A target whose service pack did not complete (KB Q278518) never matches; a registry
        # behind the source is sp_behind whatever Store.exe says, and read errors come first.
        (read(store="5.5.2448.8"), read(), False, "store_behind", "mismatch"),
        (
            read(kms_binary="5.5.1960.8", store="5.5.2448.8"),
            read(),
            False,
            "store_behind",
            "mismatch",
        ),
        (
            read("5.5.2653.0", "5.5.2653.12", store="5.5.2650.23"),
            read(),
            True,
            "store_behind",
            "mismatch",
        ),
        (
            read("5.5.2653.0", "5.5.2653.12", store="5.5.2650.23"),
            read(),
            False,
            "store_behind",
            "mismatch",
        ),
        (
            read("5.5.2448.0", "5.5.2448.0", store="5.5.2232.11"),
            read(),
            False,
            "sp_behind",
            "mismatch",
        ),
        (read(kms_binary=None, store="5.5.2448.8"), read(), False, "binary_unknown", "error"),
        (read(store="5.5.2448.8"), UNREACHABLE_SOURCE, False, "source_unreachable", "unreachable"),
        # Store.exe on a later service pack, or not a version: a finding, not this rule.
        (read(store="5.5.2653.23"), read(), False, "match", "match"),
        (read(store="5.5.x"), read(), False, "match", "match"),
    ],
)
def test_each_kind_of_pair_is_decided_by_its_rule(
    target: dict, source: dict, allow_newer: bool, rule: str, status: str
) -> None:
    assert rule_of(target, source, allow_newer) == rule
    assert judge(target, source, allow_newer).status == status


def test_two_sp4_servers_whose_kmserver_carries_the_sp3_build_match_with_a_finding() -> None:
    # KB Q259906 judges Kmserver.exe against the build that last ran the KM database (kms-old's
    # Kmserver.exe), not against the SP build: no source lists Kmserver.exe per SP (docs/unsourced.md, U3).
    sp4 = read("5.5.2653.0", "5.5.2650.12")
    verdict = judge(sp4, read("5.5.2653.0", "5.5.2650.12"))
    assert (verdict.status, verdict.remedy) == ("match", None)
    assert (verdict.database_build, verdict.database_build_from) == ("5.5.2650", "source_kmserver")
    assert verdict.reason == (
        "kms-new and kms-old both run Exchange 5.5 SP4 (5.5.2653), and kms-new's Kmserver.exe "
        "(5.5.2650) is not older than 5.5.2650, the build that last ran the KM database (from "
        "kms-old's Kmserver.exe)."
    )
    (finding,) = verdict.findings
    assert finding.startswith(
        "kms-new's Kmserver.exe carries an earlier service pack's build (Exchange 5.5 SP3, "
        "5.5.2650.12) than Exchange (Exchange 5.5 SP4, 5.5.2653); no source lists"
    )
    assert finding.endswith("so it is no mismatch")


def test_the_cds_kmserver_on_a_service_pack_is_named_even_when_the_database_agrees() -> None:
    # Both servers' KM Server came from the CD after SP3: KMS starts (its database was last run
    # by the same RTM build), and the finding asks for the SP (KB Q259906, Q192044).
    verdict = judge(read(kms_binary="5.5.1960.8"), read(kms_binary="5.5.1960.8"))
    assert verdict.status == "match"
    assert verdict.findings == (
        "kms-new's Kmserver.exe is the Exchange CD's build (Exchange 5.5 RTM, 5.5.1960.8) on "
        "Exchange 5.5 SP3: KB Q259906 and Q192044 ask to reapply the service pack after "
        "installing KM Server from the CD",
    )


@pytest.mark.parametrize(
    ("source", "records", "database", "read_from"),
    [
        # (a) the source's Kmserver.exe, read now, decides over every record.
        (read(), recorded(MANIFEST, "5.5.2448"), "5.5.2650", "source_kmserver"),
        # (b) the source read, its Kmserver.exe not: the backup manifest, then the variable.
        (read(kms_binary=None), recorded(MANIFEST, "5.5.2448"), "5.5.2650", "backup_manifest"),
        (read(kms_binary=None), recorded(None, "5.5.2650.12"), "5.5.2650", "kms_database_build"),
        # The source unreachable or gone: the records alone.
        (NOT_TRUSTED, recorded(MANIFEST), "5.5.2650", "backup_manifest"),
        (read(None), recorded(None, "5.5.2650"), "5.5.2650", "kms_database_build"),
        # (c) nothing else: the source's server build, the weaker evidence.
        (read("5.5.2653.0", None), (), "5.5.2653", "source_server_build"),
    ],
)
def test_the_database_build_comes_from_the_strongest_reading_and_the_verdict_names_it(
    source: dict, records: tuple[DatabaseBuild, ...], database: str, read_from: str
) -> None:
    verdict = judge(read(), source, records=records)
    assert (verdict.database_build, verdict.database_build_from) == (database, read_from)


def test_only_the_source_server_build_is_called_the_weaker_evidence() -> None:
    verdict = judge(read("5.5.2653.0", "5.5.2650.12"), read("5.5.2653.0", None))
    assert (verdict.status, verdict.remedy, verdict.remedy_build) == (
        "mismatch",
        "reapply_sp",
        "5.5.2653",
    )
    assert (
        "older than 5.5.2653, the build that last ran the KM database (from kms-old's Exchange "
        "build, the weaker evidence: its Kmserver.exe could not be read and neither a backup "
        "manifest nor kms_database_build was given)"
    ) in verdict.reason
    assert "weaker" not in judge(read(), read()).reason


@pytest.mark.parametrize("source", [NOT_TRUSTED, REFUSED, read(None), read(kms=False)])
def test_an_unread_or_stripped_source_with_a_recorded_build_is_judged_from_the_record(
    source: dict,
) -> None:
    verdict = judge(read(), source, records=recorded(MANIFEST))
    assert verdict.status == "match"
    assert verdict.database_build_from == "backup_manifest"
    assert "Kmserver.exe 5.5.2650.12 recorded by kms_backup on kms-old" in verdict.reason


def test_a_recorded_build_later_than_the_target_is_a_mismatch_reapplying_its_service_pack() -> None:
    verdict = judge(read(kms_binary="5.5.1960.8"), NOT_TRUSTED, records=recorded(None, "5.5.2650"))
    assert (verdict.status, verdict.remedy, verdict.remedy_build) == (
        "mismatch",
        "reapply_sp",
        "5.5.2650",
    )
    assert verdict.source_build is None and verdict.database_build_from == "kms_database_build"
    assert verdict.findings == (
        "kms-old was not read (kms-old: TLS certificate not trusted); the build that last ran "
        "the KM database is 5.5.2650, kms_database_build 5.5.2650",
    )


def test_a_record_that_disagrees_with_the_source_is_a_finding_and_the_source_decides() -> None:
    verdict = judge(
        read(), read(), records=recorded({**MANIFEST, "kms_binary_build": "5.5.2448.0"})
    )
    assert verdict.database_build_from == "source_kmserver"
    assert verdict.findings == (
        "Kmserver.exe 5.5.2448.0 recorded by kms_backup on kms-old differs from 5.5.2650, which "
        "decided (from kms-old's Kmserver.exe)",
    )


@pytest.mark.parametrize(
    ("manifest", "database_build", "expected"),
    [
        (None, "", ()),
        ({}, "", ()),
        (MANIFEST, "", (("backup_manifest", "5.5.2650.12"),)),
        (None, " 5.5.2606 ", (("kms_database_build", "5.5.2606.0"),)),
        (
            {**MANIFEST, "host": "kms-old-2001"},
            "5.5.2650",
            (("backup_manifest", "5.5.2650.12"), ("kms_database_build", "5.5.2650.0")),
        ),
    ],
)
def test_records_are_taken_manifest_first(
    manifest: dict | None, database_build: str, expected: tuple
) -> None:
    records = recorded_builds(manifest, database_build, "kms-old")
    assert tuple((record.read_from, str(record.build)) for record in records) == expected


@pytest.mark.parametrize(
    ("manifest", "database_build", "message"),
    [
        ({"backup_path": "C:\\B"}, "", "the backup manifest has no kms_binary_build"),
        ({"kms_binary_build": None}, "", "it holds None"),
        ({"kms_binary_build": "SP3"}, "", "kms_binary_build of the backup manifest is 'SP3'"),
        (None, "5.5 SP3", "kms_database_build is '5.5 SP3': not an Exchange build"),
    ],
)
def test_a_record_without_a_build_is_refused_saying_what_to_give(
    manifest: dict | None, database_build: str, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        recorded_builds(manifest, database_build, "kms-old")


def test_a_kms_hotfix_build_on_the_source_needs_that_hotfix_not_a_service_pack() -> None:
    # kms-old: 5.5 SP2 plus the KM Server hotfix of KB Q231307 (Kmserver.exe 5.5.2606.0).
    hotfixed = read("5.5.2448.0", "5.5.2606.0")
    verdict = judge(read("5.5.2448.0", "5.5.2448.0"), hotfixed)
    assert (verdict.status, verdict.remedy, verdict.remedy_build) == (
        "mismatch",
        "install_hotfix",
        "5.5.2606",
    )
    assert verdict.reason == (
        "kms-new's KM Server binaries (Kmserver.exe) are Exchange 5.5 SP2 (5.5.2448), older than "
        "5.5.2606, the build that last ran the KM database (from kms-old's Kmserver.exe), a KM "
        "Server hotfix build (Exchange 5.5 SP2 + hotfix): KMS is expected to exit with event "
        "5389. KB Q259906 speaks of service packs; that a hotfix build does the same is inferred."
    )
    assert verdict.fix == (
        "On kms-new, install the KM Server hotfix of KB Q231307 (V1 certificates issued when V3 "
        "only is set), whose Kmserver.exe is 5.5.2606, as on the server that last ran the KM "
        "database; the remediation reapplies service packs only and refuses this pair. Or apply "
        "Exchange 5.5 SP3, which first carried the hotfix's fix, on both servers."
    )
    # The same hotfix on both servers is a match; a build no table names still needs a hotfix.
    assert judge(read("5.5.2448.0", "5.5.2606.0"), hotfixed).status == "match"
    unlisted = judge(read("5.5.2448.0", "5.5.2448.0"), read("5.5.2448.0", "5.5.2610.0"))
    assert unlisted.remedy == "install_hotfix"
    assert "no KB in this collection's table names that build" in unlisted.fix


@pytest.mark.parametrize(
    ("source_name", "in_inventory", "rule", "message"),
    [
        (None, True, "no_source", "kms-new has no kms_source_host"),
        ("", True, "no_source", "kms-new has no kms_source_host"),
        ("kms-new", True, "own_source", "kms-new is its own kms_source_host"),
        (
            "kms-gone",
            False,
            "source_not_in_inventory",
            "kms_source_host 'kms-gone' is not a host of this inventory",
        ),
    ],
)
def test_a_bad_source_is_an_error_naming_the_variable(
    source_name: str | None, in_inventory: bool, rule: str, message: str
) -> None:
    assert rule_of(read(), None, source_name=source_name, in_inventory=in_inventory) == rule
    verdict = judge(read(), None, source_name=source_name, in_inventory=in_inventory)
    assert verdict.status == "error"
    assert message in verdict.reason
    assert (verdict.target_build, verdict.findings, verdict.remedy) == (None, (), None)


# One pair per rule, with the reason and fix it gives, word for word.
WORDING: dict[str, tuple[dict[str, t.Any], tuple[str, str]]] = {
    "no_source": (
        {"target": read(), "source": None, "source_name": None},
        (
            "kms-new has no kms_source_host: the gate cannot tell which server it must match.",
            "Set the host variable kms_source_host of kms-new to its old KM Server.",
        ),
    ),
    "source_not_in_inventory": (
        {"target": read(), "source": None, "source_name": "kms-gone", "in_inventory": False},
        (
            "kms-new's kms_source_host 'kms-gone' is not a host of this inventory.",
            "Add kms-gone to the inventory (group kms_sources) with its WinRM settings, or fix "
            "kms_source_host of kms-new.",
        ),
    ),
    "own_source": (
        {"target": read(), "source": None, "source_name": "kms-new"},
        (
            "kms-new is its own kms_source_host.",
            "Set kms_source_host of kms-new to the old KM Server it replaces.",
        ),
    ),
    "target_unreachable": (
        {"target": UNREACHABLE, "source": read()},
        (
            "kms-new (http://x): unreachable: connection refused",
            "Make kms-new reachable over WinRM (see the message), then run again.",
        ),
    ),
    "target_not_read": (
        {"target": {"failed": True, "msg": "kms-new: refused the credentials"}, "source": read()},
        (
            "kms-new: refused the credentials",
            "Fix what the message says on kms-new, then run again.",
        ),
    ),
    "source_unreachable": (
        {"target": read(), "source": NOT_TRUSTED},
        (
            "kms-old: TLS certificate not trusted",
            "Make kms-old reachable over WinRM (see the message), then run again; or, if kms-old "
            "is gone, give the build that last ran the KM database: sp_parity_backup_manifest "
            "(the result of exchops.kms.kms_backup taken on kms-old) or kms_database_build.",
        ),
    ),
    "source_not_read": (
        {"target": read(), "source": REFUSED},
        (
            "kms-old: refused the credentials",
            "Fix what the message says on kms-old, then run again.",
        ),
    ),
    "source_without_exchange": (
        {"target": read(), "source": read(None)},
        (
            "kms-old has no Exchange installed, so there is nothing to compare.",
            "Check that kms_source_host of kms-new names the old KM Server, and that kms-old is "
            "the right host.",
        ),
    ),
    "source_without_kms": (
        {"target": read(), "source": read(kms=False)},
        (
            "kms-old runs Exchange 5.5 SP3 but has no KM Server installed (MSExchangeKMS absent).",
            "Check that kms_source_host of kms-new names the server KM Server moved from; if KM "
            "Server was removed from it, give the build that last ran the KM database "
            "(sp_parity_backup_manifest or kms_database_build).",
        ),
    ),
    "target_without_exchange": (
        {"target": read(None), "source": read()},
        (
            "kms-new has no Exchange installed, so there is nothing to compare.",
            "Check that kms_source_host of kms-new names the old KM Server, and that kms-new is "
            "the right host.",
        ),
    ),
    "target_without_kms": (
        {"target": read("6.0.6249.0", None, kms=False), "source": read()},
        (
            "kms-new runs Exchange 2000 Server SP3 but has no KM Server installed (MSExchangeKMS "
            "absent).",
            "Install KM Server on kms-new from the Exchange CD, then reapply Exchange 5.5 SP3 "
            "(KB Q192044).",
        ),
    ),
    "different_family": (
        {"target": read("6.0.6249.0", "6.0.6249.0"), "source": read()},
        (
            "kms-new runs Exchange 2000 Server SP3 (6.0.6249) but kms-old runs Exchange 5.5 SP3 "
            "(5.5.2650): they are different Exchange versions, and a KM database moves only "
            "between servers of the same version and service pack (KB Q259906, Q155216).",
            "Move KM Server to a server that runs Exchange 5.5 SP3 (KB Q154531).",
        ),
    ),
    "recorded_other_family": (
        {
            "target": read("6.0.6249.0", "6.0.6249.0"),
            "source": NOT_TRUSTED,
            "records": recorded(MANIFEST),
        },
        (
            "kms-new runs Exchange 2000 Server SP3 (6.0.6249) but the KM database was last run "
            "by 5.5.2650, the build that last ran the KM database (Kmserver.exe 5.5.2650.12 "
            "recorded by kms_backup on kms-old), another Exchange version: a KM database moves "
            "only between servers of the same version and service pack (KB Q259906, Q155216).",
            "Move KM Server to a server that runs Exchange 5.5 (KB Q154531), or correct "
            "backup_manifest if it names the wrong build.",
        ),
    ),
    "sp_behind": (
        {"target": read("5.5.2448.0", "5.5.2448.0"), "source": read()},
        (
            "kms-new runs Exchange 5.5 SP2 (5.5.2448) but kms-old runs Exchange 5.5 SP3 "
            "(5.5.2650) and last ran the KM database on 5.5.2650: KMS will exit with event 5389 "
            "(KB Q259906).",
            "Reapply Exchange 5.5 SP3 on kms-new (playbook exchops.kms.remediate_kms_move).",
        ),
    ),
    "binary_unknown": (
        {"target": read(kms_binary=None), "source": read()},
        (
            "kms-new runs Exchange 5.5 SP3 but the version of its Kmserver.exe could not be "
            "read, so it cannot be checked against 5.5.2650, the build that last ran the KM "
            "database (from kms-old's Kmserver.exe).",
            "Check Kmserver.exe's version on kms-new by hand (file properties); if it is older "
            "than 5.5.2650, reapply Exchange 5.5 SP3 on kms-new (playbook "
            "exchops.kms.remediate_kms_move).",
        ),
    ),
    "hotfix_behind": (
        {"target": read("5.5.2448.0", "5.5.2448.0"), "source": read("5.5.2448.0", "5.5.2606.0")},
        (
            "kms-new's KM Server binaries (Kmserver.exe) are Exchange 5.5 SP2 (5.5.2448), older "
            "than 5.5.2606, the build that last ran the KM database (from kms-old's "
            "Kmserver.exe), a KM Server hotfix build (Exchange 5.5 SP2 + hotfix): KMS is "
            "expected to exit with event 5389. KB Q259906 speaks of service packs; that a "
            "hotfix build does the same is inferred.",
            "On kms-new, install the KM Server hotfix of KB Q231307 (V1 certificates issued when "
            "V3 only is set), whose Kmserver.exe is 5.5.2606, as on the server that last ran the "
            "KM database; the remediation reapplies service packs only and refuses this pair. Or "
            "apply Exchange 5.5 SP3, which first carried the hotfix's fix, on both servers.",
        ),
    ),
    "store_behind": (
        {"target": read(store="5.5.2448.8"), "source": read()},
        (
            "kms-new's Store.exe is 5.5.2448.8 (Exchange 5.5 SP2) while its registry says "
            "Exchange 5.5 SP3 (5.5.2650): the service pack did not complete on kms-new (KB "
            "Q278518: Store.exe's file version shows the service pack installed), and "
            "MSExchangeKMS must not be started on a half-installed service pack.",
            "Reapply Exchange 5.5 SP3 on kms-new (playbook exchops.kms.remediate_kms_move); it "
            "starts MSExchangeKMS only once Store.exe and the registry both show the service "
            "pack.",
        ),
    ),
    "binary_behind": (
        {"target": read(kms_binary="5.5.1960.8"), "source": read()},
        (
            "kms-new runs Exchange 5.5 SP3 (5.5.2650) but its KM Server binaries (Kmserver.exe) "
            "are Exchange 5.5 RTM (5.5.1960), older than 5.5.2650, the build that last ran the "
            "KM database (from kms-old's Kmserver.exe): KMS will exit with event 5389 (KB "
            "Q259906).",
            "Reapply Exchange 5.5 SP3 on kms-new (playbook exchops.kms.remediate_kms_move).",
        ),
    ),
    "newer_target_allowed": (
        {"target": read("5.5.2653.0", "5.5.2653.12"), "source": read(), "allow_newer": True},
        (
            "kms-new runs Exchange 5.5 SP4 (5.5.2653), later than kms-old's Exchange 5.5 SP3 "
            "(5.5.2650), which is allowed; its Kmserver.exe (5.5.2653) is not older than "
            "5.5.2650, the build that last ran the KM database (from kms-old's Kmserver.exe).",
            "Nothing to do.",
        ),
    ),
    "newer_target": (
        {"target": read("5.5.2653.0", "5.5.2653.12"), "source": read()},
        (
            "kms-new runs Exchange 5.5 SP4 (5.5.2653), later than kms-old's Exchange 5.5 SP3 "
            "(5.5.2650). KB Q259906 asks for the same version and service pack on both servers.",
            "Apply Exchange 5.5 SP4 on kms-old too, or set sp_parity_allow_newer_target: true if "
            "a later service pack on the new server is intended.",
        ),
    ),
    "match": (
        {"target": read(), "source": read()},
        (
            "kms-new and kms-old both run Exchange 5.5 SP3 (5.5.2650), and kms-new's "
            "Kmserver.exe (5.5.2650) is not older than 5.5.2650, the build that last ran the KM "
            "database (from kms-old's Kmserver.exe).",
            "Nothing to do.",
        ),
    ),
    "recorded_match": (
        {"target": read(), "source": UNREACHABLE_SOURCE, "records": recorded(None, "5.5.2650.12")},
        (
            "kms-new runs Exchange 5.5 SP3 (5.5.2650) and its Kmserver.exe (5.5.2650) is not "
            "older than 5.5.2650, the build that last ran the KM database (kms_database_build "
            "5.5.2650.12). kms-old was not read (kms-old (http://y): unreachable: connection "
            "refused), so the two servers' service packs were not compared.",
            "Nothing to do for KB Q259906. Compare kms-new's service pack with the old server's "
            "records by hand if the old server still exists.",
        ),
    ),
}


def test_every_rule_has_its_wording_and_a_pair_here_that_shows_it() -> None:
    assert [rule.id for rule in PAIR_RULES] == list(PAIR_MESSAGES) == list(WORDING)


@pytest.mark.parametrize("rule", list(WORDING))
def test_each_rule_gives_its_reason_and_fix_word_for_word(rule: str) -> None:
    case, (reason, fix) = WORDING[rule]
    assert rule_of(**case) == rule
    verdict = judge(**case)
    assert (verdict.reason, verdict.fix) == (reason, fix)


@pytest.mark.parametrize(
    ("target", "source", "reason"),
    [
        (
            read("6.0.6249.0", "6.0.4417.0"),
            read("6.0.6249.0", "6.0.6249.0"),
            "kms-new runs Exchange 2000 Server SP3 (6.0.6249) but its KM Server binaries "
            "(Kmserver.exe) are Exchange 2000 Server RTM (6.0.4417), older than 6.0.6249, the "
            "build that last ran the KM database (from kms-old's Kmserver.exe): KMS will exit "
            "with event 5389 (KB Q259906, written for Exchange 5.5; for Exchange 2000 the link "
            "is inferred).",
        ),
        (
            read("6.0.5762.0", "6.0.5762.0"),
            read("6.0.6249.0", "6.0.6249.0"),
            "kms-new runs Exchange 2000 Server SP2 (6.0.5762) but kms-old runs Exchange 2000 "
            "Server SP3 (6.0.6249) and last ran the KM database on 6.0.6249: KMS will exit with "
            "event 5389 (KB Q259906, written for Exchange 5.5; for Exchange 2000 the link is "
            "inferred).",
        ),
    ],
)
def test_on_exchange_2000_the_5389_link_to_q259906_is_said_to_be_inferred(
    target: dict, source: dict, reason: str
) -> None:
    assert judge(target, source).reason == reason


def test_a_newer_target_that_is_allowed_says_so_in_its_findings() -> None:
    verdict = judge(read("5.5.2653.0", "5.5.2653.12"), read(), True)
    assert verdict.findings == (
        "kms-new runs a later build (5.5.2653) than kms-old (5.5.2650); allowed by "
        "sp_parity_allow_newer_target",
    )


@pytest.mark.parametrize(
    ("target", "source", "reason", "fix"),
    [
        ({"unreachable": True}, read(), "kms-new could not be reached", "Make kms-new reachable"),
        (read(), {"skipped": True}, "kms-old: no Exchange facts were read", "on kms-old,"),
        (read(), {"changed": False}, "kms-old: no Exchange facts were read", "on kms-old,"),
        (None, read(), "kms-new: not read", "on kms-new,"),
    ],
)
def test_a_read_without_a_message_is_explained_all_the_same(
    target: dict | None, source: dict | None, reason: str, fix: str
) -> None:
    verdict = judge(target, source)
    assert verdict.reason == reason
    assert fix in verdict.fix


def test_events_on_the_target_are_explained_and_5015_points_to_q274321() -> None:
    events = [
        EVENT_5389,
        {"id": 5015, "source": "MSExchangeKMS", "time": "t"},
        {"id": 5057, "source": "msexchangekms", "time": "t"},
    ]
    verdict = judge(read(kms_binary="5.5.1960.8", events=events), read())
    text = " ".join(verdict.findings)
    assert "event 5389 at 2001-03-14T09:12:40+00:00" in text
    assert "KB Q274321" in text and "KB Q184420" in text


def test_an_old_5389_on_a_fixed_pair_with_kms_running_is_called_history() -> None:
    fixed = read(events=[EVENT_5389])
    fixed["ansible_facts"]["exchange"]["kms"]["service"]["state"] = "running"
    verdict = judge(fixed, read())
    assert verdict.status == "match"
    (finding,) = verdict.findings
    assert finding.startswith("event 5389 at 2001-03-14T09:12:40+00:00: MSExchangeKMS exited then")
    assert "from before the fix" in finding and "reapply" not in finding
    # Matched but KMS not running: the 5389 keeps its full meaning.
    stopped = judge(read(events=[EVENT_5389]), read())
    assert "reapply the SP" in stopped.findings[0]


def test_builds_are_compared_as_integers_not_strings() -> None:
    # As strings, "5.5.2650" < "5.5.999" would call SP3 older than a (made-up) build 999.
    target = read("5.5.2650.0")
    source = read("5.5.2650.0")
    source["ansible_facts"]["exchange"]["build"] = "5.5.999.0"
    verdict = judge(target, source)
    assert verdict.status == "mismatch"
    assert "later than kms-old's" in verdict.reason


def report_for(*statuses: str | None) -> dict[str, t.Any]:
    verdicts: list[dict[str, t.Any] | None] = []
    for index, status in enumerate(statuses):
        if status is None:
            verdicts.append(None)
            continue
        target = read() if status == "match" else read(kms_binary="5.5.1960.8")
        if status == "unreachable":
            target = {"unreachable": True, "msg": "down"}
        verdict = judge_pair(
            f"new-{index}",
            f"old-{index}",
            target,
            read(),
            allow_newer_target=False,
            source_in_inventory=True,
        )
        verdicts.append(verdict.to_dict())
    return build_report(
        verdicts, [f"new-{index}" for index in range(len(statuses))], "2026-11-27T05:00:00Z"
    )


def test_a_report_has_one_valid_pair_per_target_and_fails_unless_all_match(
    report_schema: t.Callable[[str], dict[str, t.Any]],
) -> None:
    report = report_for("match", "mismatch", "unreachable")
    jsonschema.validate(report, report_schema(SCHEMA))
    assert [pair["target"] for pair in report["pairs"]] == ["new-0", "new-1", "new-2"]
    assert report["counts"] == {"match": 1, "mismatch": 1, "unreachable": 1, "error": 0}
    assert report["result"] == "fail"
    assert build_report([], [], "2026-11-27T05:00:00Z")["result"] == "fail"
    assert report_for("match", "match")["result"] == "pass"


def test_a_target_without_a_verdict_is_an_error_row_and_marks_the_report_partial(
    report_schema: t.Callable[[str], dict[str, t.Any]],
) -> None:
    report = report_for("match", None)
    jsonschema.validate(report, report_schema(SCHEMA))
    assert report["partial"] is True
    assert report["pairs"][1]["status"] == "error"
    assert "did not finish" in report["pairs"][1]["reason"]


def test_markdown_has_one_row_per_pair_and_escapes_pipes() -> None:
    report = report_for("match", "mismatch")
    report["pairs"][0]["reason"] = "a | b\nc"
    markdown = to_markdown(report)
    rows = [line for line in markdown.splitlines() if line.startswith("| new-")]
    assert len(rows) == 2
    assert "a \\| b c" in rows[0]
    assert "Result: **FAIL**" in markdown


def test_junit_has_a_testcase_per_pair_with_failures_and_errors() -> None:
    root = ET.fromstring(to_junit(report_for("match", "mismatch", "unreachable")))
    suite = root.find("testsuite")
    assert suite is not None
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors")) == ("3", "1", "1")
    cases = suite.findall("testcase")
    assert [case.get("name") for case in cases] == [
        "new-0 matches old-0",
        "new-1 matches old-1",
        "new-2 matches old-2",
    ]
    assert cases[1].find("failure") is not None and cases[2].find("error") is not None


@pytest.mark.parametrize(
    ("target", "source", "allow_newer", "records", "remedy_build", "remedy_release"),
    [
        # The service pack the pair needs, as sp_behind would give it ...
        (read(store="5.5.2448.8"), read(), False, (), "5.5.2650", "Exchange 5.5 SP3"),
        (
            read(store="5.5.2448.8"),
            NOT_TRUSTED,
            False,
            recorded(MANIFEST),
            "5.5.2650",
            "Exchange 5.5 SP3",
        ),
        # ... or the target's own, when its registry names a later one: completing it is what
        # the target needs, and reapplying the source's earlier one would be a downgrade.
        (
            read("5.5.2653.0", "5.5.2653.12", store="5.5.2650.23"),
            read(),
            True,
            (),
            "5.5.2653",
            "Exchange 5.5 SP4",
        ),
        (
            read("5.5.2653.0", "5.5.2653.12", store="5.5.2650.23"),
            read(),
            False,
            (),
            "5.5.2653",
            "Exchange 5.5 SP4",
        ),
    ],
)
def test_a_half_installed_service_pack_is_reapplied_and_kms_is_never_started_by_a_match(
    target: dict,
    source: dict,
    allow_newer: bool,
    records: tuple[DatabaseBuild, ...],
    remedy_build: str,
    remedy_release: str,
) -> None:
    verdict = judge(target, source, allow_newer, records=records)
    assert (verdict.status, verdict.remedy, verdict.remedy_build) == (
        "mismatch",
        "reapply_sp",
        remedy_build,
    )
    assert f"Reapply {remedy_release} on kms-new" in verdict.fix
    assert "(KB Q278518" in verdict.reason
    # The disagreeing readings stay among the findings, as exchange_facts gave them.
    assert any("server build readings disagree" in finding for finding in verdict.findings)


@pytest.mark.parametrize(
    ("target", "remedy", "remedy_build"),
    [
        (read(kms_binary="5.5.1960.8"), "reapply_sp", "5.5.2650"),
        (read("5.5.2448.0", "5.5.2448.0"), "reapply_sp", "5.5.2650"),
        (read("5.5.2653.0", "5.5.2653.12"), None, None),
        (read("6.0.6249.0", "6.0.6249.0"), None, None),
        (read(), None, None),
    ],
)
def test_only_mismatches_a_service_pack_fixes_carry_a_remedy(
    target: dict, remedy: str | None, remedy_build: str | None
) -> None:
    verdict = judge(target, read())
    assert (verdict.remedy, verdict.remedy_build) == (remedy, remedy_build)


def test_every_remedy_is_in_the_schema_and_worded_in_the_reports(
    report_schema: t.Callable[[str], dict[str, t.Any]],
) -> None:
    pair_schema = report_schema(SCHEMA)["properties"]["pairs"]["items"]["properties"]
    assert set(pair_schema["remedy"]["enum"]) == {*REMEDIES, None}
    assert set(REMEDY_WORDS) == set(REMEDIES) == {rule.remedy for rule in PAIR_RULES} - {None}
    assert set(pair_schema["database_build_from"]["enum"]) == {*DATABASE_BUILD_FROM, None}


def test_the_hotfix_remedy_is_listed_in_markdown_and_junit_and_the_report_is_valid(
    report_schema: t.Callable[[str], dict[str, t.Any]],
) -> None:
    hotfix = judge(read("5.5.2448.0", "5.5.2448.0"), read("5.5.2448.0", "5.5.2606.0"))
    behind = judge(read(kms_binary="5.5.1960.8"), read())
    report = build_report(
        [hotfix.to_dict(), behind.to_dict()], ["kms-new", "kms-new"], "2026-12-03T09:00:00Z"
    )
    jsonschema.validate(report, report_schema(SCHEMA))
    assert report["pairs"][0]["database_build_from"] == "source_kmserver"
    markdown = to_markdown(report)
    assert (
        "- **kms-new**: `install_hotfix`, install the KM Server hotfix whose Kmserver.exe is "
        "5.5.2606, named in the fix (the remediation refuses it: it reapplies service packs only)"
    ) in markdown
    assert (
        "- **kms-new**: `reapply_sp`, reapply the service pack 5.5.2650 on the target" in markdown
    )
    failures = [case.find("failure") for case in ET.fromstring(to_junit(report)).iter("testcase")]
    assert "Remedy: install_hotfix, install the KM Server hotfix" in (failures[0].text or "")
