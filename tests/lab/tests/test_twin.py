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
        "Credentials and connection settings are the lab's",
        "reach.via",
        "Windows Server 2016",
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


# ---------------------------------------------------------------------------------------------
# Servers read through a jump host (Windows NT 4.0 / 2000)

WINDOWS_KEY = "HKLM\\SOFTWARE\\Microsoft\\Windows NT\\CurrentVersion"
READ = {
    "kmserver_version": "file version of C:\\EXCHSRVR\\BIN\\KMSERVER.EXE (wmic datafile)",
    "events": "Application log, source MSExchangeKMS (wmic ntevent)",
}
NO_WMI = {
    "file_versions": "unavailable (WMI: The RPC server is unavailable. )",
    "events": "unavailable (WMI: The RPC server is unavailable. )",
}


def behind_jump(
    result: dict[str, Any],
    via: str = "jump01",
    version: str | None = "4.0",
    build: str | None = "1381",
    service_pack: str | None = "Service Pack 6",
    sources: dict[str, str] | None = None,
) -> dict[str, Any]:
    """A result as exchange_facts returns it for a server read through the jump host VIA."""
    result = copy.deepcopy(result)
    exchange = result["ansible_facts"]["exchange"]
    exchange["reach"] = {"via": via, "auth": "delegated"}
    exchange["windows"] = {"version": version, "build": build, "service_pack": service_pack}
    said = ", ".join(
        name if value is not None else f"{name} (not there)"
        for name, value in (
            ("CurrentVersion", version),
            ("CurrentBuildNumber", build),
            ("CSDVersion", service_pack),
        )
    )
    exchange["sources"] = {
        "windows": f"{WINDOWS_KEY}: {said}",
        **(READ if sources is None else sources),
    }
    return result


JUMP_KB_FACTS = {host: behind_jump(result) for host, result in KB_FACTS.items()}
JUMP01_LINE = (
    "jump01: the jump host of kms-new, kms-old; no fact names its own Windows, so the twin's runs "
    "Windows Server 2016, the lab's default for a jump host (SMB 1 client and NetBIOS over TCP/IP "
    "on, as the reads through it needed)"
)


def test_the_kb_pair_read_through_a_jump_host_becomes_nt4_servers_behind_that_jump_host(
    tmp_path: Path,
) -> None:
    twin = facts_twin(JUMP_KB_FACTS, KB_PAIR)
    assert twin.fleet["jump_hosts"] == [{"name": "jump01", "os": "2016"}]
    (pair,) = twin.fleet["pairs"]
    legacy = {"os": "nt4", "sp": 6, "wmi_core": True, "reach": {"via": "jump01"}}
    assert pair["source"] == {
        "name": "kms-old",
        **legacy,
        "exchange": {"version": "5.5", "sp": 3},
        "kms": {"binary_build": "5.5.2650.12", "state": "running", "database_stamp": "5.5.2650"},
    }
    assert pair["target"] == {
        "name": "kms-new",
        **legacy,
        "exchange": {"version": "5.5", "sp": 3},
        "kms": {"binary_build": "5.5.1960.8", "state": "stopped", "database_stamp": "5.5.2650"},
        "events": [5389],
        "media": {"D:\\EXCH55SP3": "5.5.2650"},
    }
    sp6 = (
        ": CSDVersion 'Service Pack 6' is Windows NT 4.0 SP6 or SP6a, which keeps SP6's text "
        "(docs/registry.md#windows-version); the twin runs SP6, which the lab models like SP6a"
    )
    assert twin.warnings == ("kms-old" + sp6, "kms-new" + sp6, JUMP01_LINE)
    assert twin.host_count == 3
    assert "the jump host runs the lab's default Windows Server 2016" in twin.fleet["description"]
    fleet, groups = started_fleet(twin, tmp_path)
    assert [(host.name, host.role, host.os, host.via) for host in fleet.hosts] == [
        ("jump01", "jump", "2016", None),
        ("kms-old", "source", "nt4", "jump01"),
        ("kms-new", "target", "nt4", "jump01"),
    ]
    target_vars = groups["kms_targets"]["hosts"]["kms-new"]
    assert (target_vars["ansible_host"], target_vars["exchange_jump_host"]) == ("KMS-NEW", "jump01")
    assert target_vars["kms_remediate_sp_media"] == "D:\\EXCH55SP3\\ENG\\SERVER\\SETUP\\I386"
    assert "jump01" in groups["jump_hosts"]["hosts"]


def test_windows_2000_servers_get_their_service_pack_and_none_when_csdversion_is_not_there(
    tmp_path: Path,
) -> None:
    results = {
        "e2k-new": behind_jump(KB_FACTS["kms-new"], version="5.0", build="2195", service_pack=None),
        "e2k-old": behind_jump(
            KB_FACTS["kms-old"], version="5.0", build="2195", service_pack="Service Pack 4"
        ),
    }
    twin = facts_twin(results, {"e2k-new": "e2k-old"})
    (pair,) = twin.fleet["pairs"]
    assert {key: pair["target"][key] for key in ("os", "sp", "reach")} == {
        "os": "2000",
        "sp": 0,
        "reach": {"via": "jump01"},
    }
    assert (pair["source"]["os"], pair["source"]["sp"]) == ("2000", 4)
    # Windows 2000 includes WMI: no wmi_core knob (fleet.py refuses it there).
    assert "wmi_core" not in pair["target"] and "wmi_core" not in pair["source"]
    started_fleet(twin, tmp_path)


def test_an_nt4_server_whose_wmi_did_not_answer_gets_no_wmi_core_and_says_what_is_missing(
    tmp_path: Path,
) -> None:
    no_wmi = behind_jump(KB_FACTS["kms-new"], sources=NO_WMI)
    del no_wmi["ansible_facts"]["exchange"]["kms"]["binary_build"]
    no_wmi["ansible_facts"]["exchange"]["kms"]["events"] = []
    results = {**JUMP_KB_FACTS, "kms-new": no_wmi}
    with pytest.raises(
        TwinError,
        match=r"kms-new: exchange.kms.binary_build is missing\. It could not be read "
        r"\(sources.file_versions: unavailable \(WMI: The RPC server is unavailable\. \)\)\. "
        r"Read Kmserver.exe's file version",
    ):
        facts_twin(results, KB_PAIR)
    # The operator read it on the server and put it in the facts, as the refusal says.
    no_wmi["ansible_facts"]["exchange"]["kms"]["binary_build"] = "5.5.1960.8"
    twin = facts_twin(results, KB_PAIR)
    target = twin.fleet["pairs"][0]["target"]
    assert (target["wmi_core"], "events" in target) == (False, False)
    assert (
        "kms-new: WMI did not answer on it (sources.file_versions: unavailable (WMI: The RPC server "
        "is unavailable. )); the twin's runs no WMI core, the lab's one way for WMI on Windows NT "
        "4.0 not to answer" in twin.warnings
    )
    assert (
        "kms-new: its MSExchangeKMS events could not be read (sources.events: unavailable (WMI: "
        "The RPC server is unavailable. )); the twin's Application log holds none of them"
        in twin.warnings
    )
    started_fleet(twin, tmp_path)


def test_an_nt4_server_below_sp4_makes_its_jump_host_send_ntlm_responses(tmp_path: Path) -> None:
    results = {
        **JUMP_KB_FACTS,
        "kms-old": behind_jump(KB_FACTS["kms-old"], service_pack="Service Pack 3"),
    }
    twin = facts_twin(results, KB_PAIR)
    assert twin.fleet["jump_hosts"] == [{"name": "jump01", "os": "2016", "lm_compatibility": 2}]
    assert twin.fleet["pairs"][0]["source"]["sp"] == 3
    assert (
        "jump01: it read kms-old (Windows NT 4.0 below SP4, which has no NTLMv2, KB Q236414), so "
        "it sends NTLM responses: the twin's has LmCompatibilityLevel 2" in twin.warnings
    )
    started_fleet(twin, tmp_path)


def test_a_jump_host_without_wmic_is_replicated_and_its_servers_wmi_core_said_unknown(
    tmp_path: Path,
) -> None:
    no_wmic = {
        "file_versions": "unavailable (wmic missing)",
        "events": "unavailable (wmic missing)",
    }
    results = {host: behind_jump(result, sources=no_wmic) for host, result in KB_FACTS.items()}
    twin = facts_twin(results, KB_PAIR)
    assert twin.fleet["jump_hosts"] == [{"name": "jump01", "os": "2016", "wmic": False}]
    assert twin.fleet["pairs"][0]["target"]["wmi_core"] is False
    assert (
        "kms-new: whether it runs WMI core is unknown: its jump host jump01 has no wmic "
        "(sources.file_versions: unavailable (wmic missing)), so nothing read WMI through it; the "
        "twin's kms-new has none" in twin.warnings
    )
    started_fleet(twin, tmp_path)


def test_the_jump_hosts_own_facts_declare_it_once_and_its_exchange_is_left_out(
    tmp_path: Path,
) -> None:
    jump = exchange_facts(build="15.1.2507.6", service_pack=0, km_build=None)
    jump["ansible_facts"]["exchange"]["reach"] = {"via": None, "auth": "credssp"}
    jump["ansible_facts"]["exchange"]["windows"] = {
        "version": "6.3",
        "build": "14393",
        "service_pack": None,
    }
    twin = facts_twin({**JUMP_KB_FACTS, "jump01": jump}, KB_PAIR)
    assert twin.fleet["jump_hosts"] == [{"name": "jump01", "os": "2016"}]
    assert "hosts" not in twin.fleet
    assert (
        "jump01: it is the jump host of kms-old, kms-new; the lab's jump hosts run no Exchange, so "
        "its own Exchange is left out of the twin" in twin.warnings
    )
    assert (
        JUMP01_LINE + "; its own facts give CurrentVersion 6.3, which does not tell 2012 R2 to "
        "2022 apart" in twin.warnings
    )
    started_fleet(twin, tmp_path)


def _jump_kb_with(host: str, **windows: Any) -> dict[str, Any]:
    return {**JUMP_KB_FACTS, host: behind_jump(KB_FACTS[host], **windows)}


def _without_windows() -> dict[str, Any]:
    results = copy.deepcopy(JUMP_KB_FACTS)
    del results["kms-new"]["ansible_facts"]["exchange"]["windows"]
    return results


def _unreadable_csd_version() -> dict[str, Any]:
    results = _jump_kb_with("kms-new", service_pack=None)
    sources = results["kms-new"]["ansible_facts"]["exchange"]["sources"]
    sources["windows"] = sources["windows"].replace("(not there)", "(unreadable)")
    return results


def _wmi_unshown() -> dict[str, Any]:
    results = _jump_kb_with("kms-new", sources={})
    results["kms-new"]["ansible_facts"]["exchange"]["kms"]["events"] = []
    return results


def _mixed_wmic() -> dict[str, Any]:
    no_wmic = {"file_versions": "unavailable (wmic missing)"}
    return {**JUMP_KB_FACTS, "kms-new": behind_jump(KB_FACTS["kms-new"], sources=no_wmic)}


@pytest.mark.parametrize(
    ("results", "pairs", "message"),
    [
        pytest.param(
            _without_windows(),
            KB_PAIR,
            r"kms-new: its facts were read through the jump host jump01 but carry no windows "
            r"\(the Windows it runs\).*Gather facts on it again",
            id="facts gathered before windows",
        ),
        pytest.param(
            _jump_kb_with("kms-new", version=None),
            KB_PAIR,
            r"kms-new: windows.version is missing \(sources.windows: HKLM.*CurrentVersion \(not "
            r"there\).*\), so the twin cannot tell Windows NT 4.0 from 2000",
            id="no CurrentVersion",
        ),
        pytest.param(
            _jump_kb_with("kms-new", version="5.2", build="3790"),
            KB_PAIR,
            r"kms-new: windows.version is '5.2', but its facts were read through the jump host "
            r"jump01: .* A server on later Windows runs WinRM: read it directly",
            id="Server 2003 behind a jump host",
        ),
        pytest.param(
            _jump_kb_with("kms-new", service_pack="Service Pack 3 RC 1.32"),
            KB_PAIR,
            r"kms-new: windows.service_pack is 'Service Pack 3 RC 1.32', not 'Service Pack N': a "
            r"hotfix can write such a text \(KB Q222507\)",
            id="a hotfix's CSDVersion",
        ),
        pytest.param(
            _jump_kb_with("kms-new", service_pack=None),
            KB_PAIR,
            r"kms-new: it runs Windows NT 4.0 without a service pack; the lab runs Windows NT 4.0 "
            r"SP1 to SP6a",
            id="NT 4.0 without a service pack",
        ),
        pytest.param(
            _unreadable_csd_version(),
            KB_PAIR,
            r"kms-new: windows.service_pack is missing and sources.windows does not say that "
            r"CSDVersion is not there",
            id="CSDVersion unreadable",
        ),
        pytest.param(
            _wmi_unshown(),
            KB_PAIR,
            r"kms-new: nothing in its facts shows whether WMI answers on it",
            id="WMI not shown",
        ),
        pytest.param(
            _mixed_wmic(),
            KB_PAIR,
            r"jump01: the facts of kms-new say it has no wmic, those of kms-old were read with its "
            r"wmic; the facts contradict each other",
            id="wmic both missing and used",
        ),
        pytest.param(
            {**JUMP_KB_FACTS, "jump01": KB_FACTS["kms-old"]},
            {"jump01": "kms-new"},
            r"jump01: it is the jump host kms-old, kms-new were read through, and a server of a "
            r"pair; a lab host has one role",
            id="a jump host in a pair",
        ),
        pytest.param(
            {**JUMP_KB_FACTS, "jump01": behind_jump(KB_FACTS["kms-old"], via="jump02")},
            None,
            r"jump01: it is the jump host of kms-old, kms-new but was itself read through jump02",
            id="a jump host behind a jump host",
        ),
        pytest.param(
            _jump_kb_with("kms-new", via=["jump01"]),
            KB_PAIR,
            r"kms-new: exchange.reach is .*; its via is the inventory name of the jump host",
            id="reach.via not a name",
        ),
        pytest.param(
            {**KB_FACTS, "kms-new": exchange_facts(reach="jump01")},
            KB_PAIR,
            r"kms-new: exchange.reach is 'jump01'; its via is the inventory name of the jump host",
            id="reach not a mapping",
        ),
    ],
)
def test_a_server_behind_a_jump_host_without_the_facts_the_twin_needs_is_refused(
    results: dict[str, Any], pairs: dict[str, str] | None, message: str
) -> None:
    with pytest.raises(TwinError, match=message):
        facts_twin(results, pairs)
