# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Rehearsal twins: gathered facts and gate reports become fleets the lab runs; what cannot be
replicated faithfully is refused (host, field, fix) or, when the lab only lacks a detail, warned."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from exchlab.cli import main
from exchlab.fleet import load_fleet
from exchlab.hosts import inventory_for
from exchlab.layout import StateLayout
from exchlab.twin import (
    FACTS,
    REPORT,
    TwinError,
    classify,
    fleet_text,
    read_input,
    read_pairs,
    twin_from_facts,
    twin_from_report,
)


def exchange_facts(
    build: str = "5.5.2650.0",
    service_pack: int = 3,
    km_build: str | None = "5.5.2650.12",
    state: str = "running",
    events: tuple[int, ...] = (),
    **changes: Any,
) -> dict[str, Any]:
    """One host's exchange_facts result, in the shape the module returns (RETURN, and what it
    returned from the q259906 lab)."""
    exchange: dict[str, Any] = {
        "build": build,
        "build_number": int(build.split(".")[2]),
        "inconsistent": [],
        "install_path": "C:\\EXCHSRVR",
        "installed": True,
        "kms": {
            "binary_build": km_build,
            "database_path": "C:\\EXCHSRVR\\KMSDATA",
            "events": [
                {
                    "id": event,
                    "source": "MSExchangeKMS",
                    "time": "2001-03-14T09:12:40+00:00",
                    "type": "Information",
                    "record": index + 1,
                    "message": "KMS is exiting with error 0.",
                }
                for index, event in enumerate(events)
            ],
            "installed": True,
            "service": {
                "name": "MSExchangeKMS",
                "state": state,
                "start_mode": "manual",
                "binary_path": "C:\\Exchsrvr\\Bin\\Kmserver.exe",
                "image_path_has_arguments": False,
            },
        },
        "product": "Exchange Server 5.5",
        "release": f"Exchange Server 5.5 SP{service_pack}",
        "service_pack": service_pack,
        "version": "5.5",
    }
    if km_build is None:
        del exchange["kms"]["binary_build"]
    for path, value in changes.items():
        node = exchange
        *parents, last = path.split("__")
        for parent in parents:
            node = node[parent]
        node[last] = value
    return {"ansible_facts": {"exchange": exchange}, "changed": False}


KB_FACTS = {
    "kms-old": exchange_facts(),
    "kms-new": exchange_facts(km_build="5.5.1960.8", state="stopped", events=(5389,)),
}
KB_REPORT = {
    "generated": "2026-11-27T10:48:57Z",
    "partial": False,
    "result": "fail",
    "counts": {"match": 0, "mismatch": 1, "unreachable": 0, "error": 0},
    "pairs": [
        {
            "target": "kms-new",
            "source": "kms-old",
            "status": "mismatch",
            "target_build": "5.5.2650.0",
            "source_build": "5.5.2650.0",
            "kms_binary_build": "5.5.1960.8",
            "reason": "kms-new runs Exchange 5.5 SP3 (5.5.2650) but its KM Server binaries are ...",
            "fix": "Reapply Exchange 5.5 SP3 on kms-new (playbook exchops.kms.remediate_kms_move).",
        }
    ],
}


def facts_twin(results: dict[str, Any], pairs: dict[str, str] | None = None):
    return twin_from_facts(classify(copy.deepcopy(results), "facts.json", "facts"), pairs)


def report_twin(report: dict[str, Any]):
    return twin_from_report(classify(copy.deepcopy(report), "report.json", "report"))


def started_fleet(twin, tmp_path: Path):
    """The twin as `exchlab up` reads it: written, loaded with fleet.py, and its inventory."""
    path = tmp_path / "twin-fleet.yml"
    path.write_text(fleet_text(twin), encoding="utf-8")
    fleet = load_fleet(path)
    return fleet, inventory_for(fleet, StateLayout(tmp_path))["all"]["children"]


# ---------------------------------------------------------------------------------------------
# The KB case, from both kinds of input


def test_the_kb_pairs_facts_become_the_kb_fleet_with_the_sources_build_as_database_stamp(
    tmp_path: Path,
) -> None:
    twin = facts_twin(KB_FACTS, {"kms-new": "kms-old"})
    assert twin.warnings == ()
    (pair,) = twin.fleet["pairs"]
    assert pair["source"] == {
        "name": "kms-old",
        "exchange": {"version": "5.5", "sp": 3},
        "kms": {"binary_build": "5.5.2650.12", "state": "running", "database_stamp": "5.5.2650"},
    }
    assert pair["target"] == {
        "name": "kms-new",
        "exchange": {"version": "5.5", "sp": 3},
        "kms": {"binary_build": "5.5.1960.8", "state": "stopped", "database_stamp": "5.5.2650"},
        "events": [5389],
        "media": {"D:\\EXCH55SP3": "5.5.2650"},
    }
    fleet, groups = started_fleet(twin, tmp_path)
    assert [(host.name, host.role, host.source) for host in fleet.hosts] == [
        ("kms-old", "source", None),
        ("kms-new", "target", "kms-old"),
    ]
    target_vars = groups["kms_targets"]["hosts"]["kms-new"]
    assert target_vars["kms_source_host"] == "kms-old"
    assert target_vars["kms_remediate_sp_media"] == "D:\\EXCH55SP3\\ENG\\SERVER\\SETUP\\I386"
    assert target_vars["kms_remediate_sp_build"] == "5.5.2650"


def test_a_gate_report_becomes_the_kb_fleet_with_its_derivations_said(tmp_path: Path) -> None:
    twin = report_twin(KB_REPORT)
    (pair,) = twin.fleet["pairs"]
    assert pair["target"]["kms"] == {
        "binary_build": "5.5.1960.8",
        "state": "stopped",
        "database_stamp": "5.5.2650",
    }
    assert pair["target"]["events"] == [5389]
    assert pair["source"]["kms"] == {"state": "running", "database_stamp": "5.5.2650"}
    assert twin.warnings[0].startswith("report.json carries builds only")
    assert (
        "kms-new: MSExchangeKMS stopped with event 5389 (derived: Kmserver.exe 5.5.1960.8"
        in twin.warnings[1]
    )
    started_fleet(twin, tmp_path)


def test_a_matching_report_pair_gets_a_running_kms_and_exchange_2000_its_own_kit(
    tmp_path: Path,
) -> None:
    report = copy.deepcopy(KB_REPORT)
    report["pairs"][0].update(
        status="match",
        target_build="6.0.6249.0",
        source_build="6.0.6249.0",
        kms_binary_build="6.0.6249.0",
        target="e2k-new",
        source="e2k-old",
    )
    (pair,) = report_twin(report).fleet["pairs"]
    assert pair["target"]["kms"]["state"] == "running" and "events" not in pair["target"]
    assert pair["target"]["exchange"] == {"version": "2000", "sp": 3}
    assert pair["target"]["media"] == {"D:\\E2KSP3": "6.0.6249"}
    started_fleet(report_twin(report), tmp_path)


# ---------------------------------------------------------------------------------------------
# The database stamp rule


def test_a_target_whose_kms_runs_later_binaries_has_its_own_build_as_stamp() -> None:
    results = {
        "kms-old": exchange_facts(),
        "kms-new": exchange_facts(build="5.5.2653.0", service_pack=4, km_build="5.5.2653.12"),
    }
    (pair,) = facts_twin(results, {"kms-new": "kms-old"}).fleet["pairs"]
    assert pair["target"]["kms"]["database_stamp"] == "5.5.2653"


def test_a_target_running_binaries_older_than_its_source_is_kept_running_with_a_warning() -> None:
    results = {"kms-old": exchange_facts(), "kms-new": exchange_facts(km_build="5.5.1960.8")}
    twin = facts_twin(results, {"kms-new": "kms-old"})
    assert twin.fleet["pairs"][0]["target"]["kms"]["database_stamp"] == "5.5.2650"
    assert any("a restart will exit with event 5389" in line for line in twin.warnings)


def test_a_host_in_no_pair_stands_alone_with_its_own_kmserver_build_as_stamp() -> None:
    twin = facts_twin({"kms-new": KB_FACTS["kms-new"]})
    assert "pairs" not in twin.fleet
    assert twin.fleet["hosts"][0]["kms"]["database_stamp"] == "5.5.1960"
    assert any("names no source/target pairs" in line for line in twin.warnings)


# ---------------------------------------------------------------------------------------------
# Input shapes and pairs


def test_every_accepted_input_shape_reads_as_the_same_facts(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    tree.mkdir()
    for host, result in KB_FACTS.items():
        (tree / host).write_text(json.dumps(result), encoding="utf-8")
    mapping = tmp_path / "facts.json"
    mapping.write_text(json.dumps(KB_FACTS), encoding="utf-8")
    callback = tmp_path / "callback.json"
    callback.write_text(
        json.dumps(
            {"plays": [{"play": {"name": "adhoc"}, "tasks": [{"hosts": KB_FACTS}]}], "stats": {}}
        ),
        encoding="utf-8",
    )
    for given in (read_input(tree), read_input(mapping), read_input(callback)):
        assert given.kind == FACTS
        assert given.facts == {host: r["ansible_facts"]["exchange"] for host, r in KB_FACTS.items()}
    single = tmp_path / "kms-new.json"
    single.write_text(json.dumps(KB_FACTS["kms-new"]), encoding="utf-8")
    given = read_input(single)
    assert list(given.facts) == ["kms-new"]
    assert given.notes == (
        "kms-new.json holds one host's result: the twin names that host 'kms-new', after the file",
    )
    report = tmp_path / "report.json"
    report.write_text(json.dumps(KB_REPORT), encoding="utf-8")
    assert read_input(report).kind == REPORT


def test_pairs_come_from_a_mapping_an_inventory_or_kms_source_host_beside_the_facts(
    tmp_path: Path,
) -> None:
    mapping = tmp_path / "pairs.yml"
    mapping.write_text("kms-new: kms-old\n", encoding="utf-8")
    inventory = tmp_path / "inventory.yml"
    inventory.write_text(
        "all:\n  vars:\n    ansible_password: !vault |\n      $ANSIBLE_VAULT;1.1;AES256\n      6134\n"
        "  children:\n    kms_targets:\n      hosts:\n        kms-new:\n          kms_source_host: kms-old\n"
        "    kms_sources:\n      hosts:\n        kms-old:\n",
        encoding="utf-8",
    )
    assert read_pairs(mapping) == read_pairs(inventory) == {"kms-new": "kms-old"}
    beside = copy.deepcopy(KB_FACTS)
    beside["kms-new"]["kms_source_host"] = "kms-old"
    assert facts_twin(beside).fleet["pairs"][0]["target"]["name"] == "kms-new"


# ---------------------------------------------------------------------------------------------
# Refusals: host, field, what to do


def _with(host: str, result: dict[str, Any]) -> dict[str, Any]:
    return {**KB_FACTS, host: result}


KB_PAIR = {"kms-new": "kms-old"}


@pytest.mark.parametrize(
    ("results", "pairs", "message"),
    [
        (
            _with("kms-new", exchange_facts(km_build=None, state="stopped")),
            KB_PAIR,
            r"kms-new: exchange.kms.binary_build is missing\. Read Kmserver.exe's file version",
        ),
        (
            _with(
                "kms-new",
                exchange_facts(
                    inconsistent=[
                        {
                            "what": "server build",
                            "readings": {"NewestBuild": 2650, "ServicePackBuild": 2448},
                        }
                    ]
                ),
            ),
            None,
            r"kms-new: exchange.inconsistent: the server build readings disagree .* will not pick one",
        ),
        (
            _with("kms-new", exchange_facts(state="start_pending")),
            KB_PAIR,
            r"kms-new: exchange.kms.service.state is 'start_pending'.*once the service has settled",
        ),
        (
            _with("kms-new", exchange_facts(state="absent")),
            KB_PAIR,
            r"kms-new: exchange.kms.installed is true but the MSExchangeKMS service is absent",
        ),
        (
            _with("kms-new", exchange_facts(build_number=2448)),
            KB_PAIR,
            r"kms-new: exchange.build_number is 2448 but exchange.build is 5.5.2650.0; the facts contradict",
        ),
        (
            _with("kms-new", exchange_facts(service_pack=2)),
            KB_PAIR,
            r"kms-new: service_pack is 2 but exchange.build 5.5.2650.0 is Exchange 5.5 SP3",
        ),
        (
            _with("kms-new", exchange_facts(km_build="6.0.6249.0")),
            KB_PAIR,
            r"kms-new: exchange.kms.binary_build 6.0.6249.0 is not a build of the server's Exchange 5.5",
        ),
        (
            _with("kms-new", exchange_facts(build="6.5.7638.1", service_pack=2)),
            KB_PAIR,
            r"kms-new: exchange.build 6.5.7638.1 is an Exchange version the lab does not model .*Leave this pair out",
        ),
        (
            _with("kms-new", exchange_facts(installed="yes")),
            KB_PAIR,
            r"kms-new: exchange.installed is missing or not true/false",
        ),
        (
            _with("kms-new", {"failed": True, "msg": "kms-new: TLS certificate not trusted"}),
            KB_PAIR,
            r"kms-new: facts.json holds a failed result for it, not facts "
            r"\(kms-new: TLS certificate not trusted\)\. Gather facts",
        ),
        (
            _with("kms-new", {"unreachable": True, "msg": "timed out"}),
            KB_PAIR,
            r"kms-new: facts.json holds a failed result",
        ),
        (
            _with("kms-new", {"changed": False}),
            KB_PAIR,
            r"kms-new: facts.json has no ansible_facts.exchange",
        ),
        (
            KB_FACTS,
            {"kms-new": "kms-gone"},
            r"kms-gone: it is the source of the pair kms-new <- kms-gone but facts.json has no facts",
        ),
        (KB_FACTS, {"kms-new": "kms-new"}, r"kms-new: it is named as its own source"),
        (
            {**KB_FACTS, "kms-3": exchange_facts()},
            {"kms-new": "kms-old", "kms-3": "kms-old"},
            r"kms-old: it is the source of both kms-new and kms-3",
        ),
        (
            {**KB_FACTS, "kms-3": exchange_facts()},
            {"kms-new": "kms-old", "kms-old": "kms-3"},
            r"kms-old: it is the target of one pair and the source of another",
        ),
        (
            {"kms_new": KB_FACTS["kms-new"]},
            None,
            r"kms_new: not a Windows computer name the lab can give a host",
        ),
        (
            {"kms-new.a.example": KB_FACTS["kms-new"], "kms-new.b.example": KB_FACTS["kms-old"]},
            None,
            r"kms-new.b.example: its computer name 'kms-new' is also kms-new.a.example's",
        ),
    ],
)
def test_missing_or_contradictory_facts_refuse_the_twin_naming_host_field_and_fix(
    results: dict[str, Any], pairs: dict[str, str] | None, message: str
) -> None:
    with pytest.raises(TwinError, match=message):
        facts_twin(results, pairs)


def test_a_source_host_beside_the_facts_that_disagrees_with_pairs_is_refused() -> None:
    beside = copy.deepcopy(KB_FACTS)
    beside["kms-new"]["kms_source_host"] = "kms-elsewhere"
    with pytest.raises(
        TwinError,
        match="kms-new: its facts name kms_source_host kms-elsewhere but the pairs given name kms-old",
    ):
        facts_twin(beside, {"kms-new": "kms-old"})


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {
                "status": "unreachable",
                "target_build": None,
                "reason": "kms-new: TLS certificate not trusted",
            },
            r"kms-new: report.json pairs\[0\] is unreachable: the gate could not judge this pair \(kms-new: TLS",
        ),
        ({"status": "error"}, r"kms-new: report.json pairs\[0\] is error"),
        (
            {"kms_binary_build": None},
            r"kms-new: report.json pairs\[0\] kms_binary_build is missing\. Run the gate again",
        ),
        (
            {"source_build": "5.5"},
            r"kms-old: report.json pairs\[0\] source_build is '5.5', not an Exchange build",
        ),
        (
            {"status": "match"},
            r"kms-new: report.json pairs\[0\] says match but Kmserver.exe 5.5.1960.8 is older",
        ),
        (
            {"target_build": "15.1.2507.6"},
            r"kms-new: report.json pairs\[0\] target_build is Exchange 2016, which has no KM Server",
        ),
    ],
)
def test_a_report_row_without_builds_or_contradicting_itself_is_refused(
    change: dict[str, Any], message: str
) -> None:
    report = copy.deepcopy(KB_REPORT)
    report["pairs"][0].update(change)
    with pytest.raises(TwinError, match=message):
        report_twin(report)


def test_a_report_listing_a_target_twice_is_refused() -> None:
    report = copy.deepcopy(KB_REPORT)
    report["pairs"].append(dict(report["pairs"][0], source="kms-other"))
    with pytest.raises(TwinError, match="kms-new: report.json lists it as a target twice"):
        report_twin(report)


# ---------------------------------------------------------------------------------------------
# Warnings: what the lab cannot model


def test_what_the_lab_cannot_model_is_said_in_one_warning_line_each(tmp_path: Path) -> None:
    target = exchange_facts(
        km_build="5.5.1960.8",
        state="stopped",
        events=(5389,),
        install_path="E:\\EXCHSRVR",
        kms__database_path="E:\\EXCHSRVR\\KMSDATA",
        kms__service__start_mode="auto",
    )
    target["ansible_facts"]["exchange"]["kms"]["events"].insert(
        0, {"id": 101, "source": "ESE97", "time": "2001-03-14T09:12:40+00:00", "message": "..."}
    )
    results = {
        "kms-old.corp.example": exchange_facts(),
        "kms-new": target,
        "exch2003": exchange_facts(build="6.5.7638.1", service_pack=2),
    }
    twin = facts_twin(results, {"kms-new": "kms-old.corp.example"})
    assert twin.warnings == (
        "kms-new: Exchange is installed in E:\\EXCHSRVR; the lab installs it in C:\\EXCHSRVR, so paths "
        "in the twin's reports (backups, Kmsdata) differ from the real server's",
        "kms-new: the KM database is in E:\\EXCHSRVR\\KMSDATA; the lab keeps it in C:\\EXCHSRVR\\KMSDATA",
        "kms-new: MSExchangeKMS starts auto on the server; the lab's starts manually (as after an "
        "Exchange 5.5 install, KB Q184420)",
        "kms-new: the lab does not model event(s) 101 (ESE97); left out (it models MSExchangeKMS "
        "5389, 5015, 5057, 5058, 5085)",
        "exch2003: exchange.build 6.5.7638.1 is an Exchange version the lab does not model (it runs "
        "5.5, 2000, 2016, 2019 and SE); left out of the twin",
        "kms-old.corp.example: the twin names it kms-old (its computer name; the lab takes no DNS names)",
    )
    assert twin.fleet["pairs"][0]["target"]["events"] == [5389]
    text = fleet_text(twin)
    assert text.count("# warning: ") == len(twin.warnings)
    started_fleet(twin, tmp_path)


def test_a_password_in_the_kms_image_path_is_replicated_with_the_labs_password() -> None:
    results = _with(
        "kms-new",
        exchange_facts(
            km_build="5.5.1960.8", state="stopped", kms__service__image_path_has_arguments=True
        ),
    )
    assert (
        facts_twin(results, {"kms-new": "kms-old"}).fleet["pairs"][0]["target"]["kms"][
            "image_path_password"
        ]
        is True
    )


def test_a_kms_that_reads_a_startup_disk_gets_the_labs_disk_in_its_twin() -> None:
    results = _with(
        "kms-new",
        exchange_facts(km_build="5.5.1960.8", state="stopped", kms__password_source="disk"),
    )
    target = facts_twin(results, {"kms-new": "kms-old"}).fleet["pairs"][0]["target"]["kms"]
    assert target["startup_disk"] is True  # KB Q196129; MasterPasswordPath "A:\\" in the lab


def test_hosts_without_exchange_or_with_a_modern_exchange_stand_alone(tmp_path: Path) -> None:
    results = {
        "plain": {
            "ansible_facts": {
                "exchange": {"installed": False, "kms": {"installed": False, "events": []}}
            }
        },
        "exch2016": exchange_facts(build="15.1.2507.6", service_pack=None),
        # Subscription Edition: 15.2 like 2019, from build 2562 on.
        "exchse": exchange_facts(build="15.2.2562.17", service_pack=None),
    }
    twin = facts_twin(results)
    assert twin.fleet["hosts"] == [
        {"name": "plain", "exchange": None},
        {"name": "exch2016", "exchange": {"version": "2016", "build": "15.1.2507.6"}},
        {"name": "exchse", "exchange": {"version": "SE", "build": "15.2.2562.17"}},
    ]
    started_fleet(twin, tmp_path)


# ---------------------------------------------------------------------------------------------
# The command


def test_exchlab_twin_refuses_bad_input_before_writing_or_starting_anything(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    facts = tmp_path / "facts.json"
    facts.write_text(json.dumps(_with("kms-new", exchange_facts(km_build=None))), encoding="utf-8")
    state = tmp_path / "twin"
    assert (
        main(["twin", "--facts", str(facts), "--pair", "kms-new=kms-old", "--state", str(state)])
        == 1
    )
    assert (
        "exchlab twin: error: kms-new: exchange.kms.binary_build is missing."
        in capsys.readouterr().err
    )
    assert not state.exists()
    report = tmp_path / "report.json"
    report.write_text(json.dumps(KB_REPORT), encoding="utf-8")
    assert (
        main(["twin", "--facts", str(report), "--pair", "kms-new=kms-old", "--state", str(state)])
        == 1
    )
    assert "report.json is a report.json, which names its own pairs" in capsys.readouterr().err


def test_exchlab_twin_help_documents_inputs_pairing_and_the_stamp_rule(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit):
        main(["twin", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for phrase in (
        "--tree DIR",
        "report.json",
        "--pairs FILE",
        "kms_source_host",
        "KB Q259906",
        "twin-fleet.yml",
        "Credentials, connection and Windows version are the lab's",
    ):
        assert phrase in text


def test_a_source_on_a_post_sp_rollup_gets_its_sp_kit_on_the_target_and_a_warning() -> None:
    results = {
        "e2k-old": exchange_facts(
            build="6.0.6620.7",
            service_pack=3,
            km_build="6.0.6249.0",
            install_path="C:\\Program Files\\Exchsrvr",
            kms__database_path="C:\\Program Files\\Exchsrvr\\KMSDATA",
        ),
        "e2k-new": exchange_facts(
            build="6.0.6249.0",
            service_pack=3,
            km_build="6.0.4417.0",
            state="stopped",
            events=(5389,),
            install_path="C:\\Program Files\\Exchsrvr",
            kms__database_path="C:\\Program Files\\Exchsrvr\\KMSDATA",
        ),
    }
    twin = facts_twin(results, {"e2k-new": "e2k-old"})
    (pair,) = twin.fleet["pairs"]
    assert pair["source"]["exchange"] == {"version": "2000", "sp": 3, "build": "6.0.6620"}
    assert pair["target"]["kms"]["database_stamp"] == "6.0.6620"
    assert pair["target"]["media"] == {"D:\\E2KSP3": "6.0.6249"}
    assert twin.warnings == (
        "e2k-new: its source e2k-old runs 6.0.6620, after SP3; the lab's kits are service packs "
        "only, so the twin's inventory has no kms_remediate_sp_media",
    )
