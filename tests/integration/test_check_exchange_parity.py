# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The check_exchange_parity gate, run as CI runs it: `ansible-playbook
exchops.kms.check_exchange_parity` against lab fleets of Exchange 5.5 to Subscription Edition."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import RunGate, RunningLab, lab_unchanged, run_tool

PARITY = "exchops.kms.check_exchange_parity"
# ansible-playbook's own exit codes, which the README documents.
PASS, OUTLIER, UNREACHABLE = 0, 2, 4


def outliers(report: dict) -> list[str]:
    return sorted(outlier["host"] for outlier in report["outliers"])


@pytest.fixture(scope="module")
def mixed30(lab_factory) -> RunningLab:
    return lab_factory("parity_mixed30.yml")


@pytest.fixture(scope="module")
def dag(lab_factory) -> RunningLab:
    return lab_factory("parity_dag.yml")


def test_the_30_host_mixed_fleet_names_every_outlier_and_a_second_run_is_identical(
    mixed30: RunningLab, gate_playbook: RunGate
) -> None:
    with lab_unchanged(mixed30):
        result, report, markdown, junit = gate_playbook(PARITY, mixed30)
        again, second, _markdown, _junit = gate_playbook(PARITY, mixed30)
    assert result.returncode == OUTLIER, result.stdout
    assert len(report["hosts"]) == 30
    # exact: 2019 is the product most hosts run, CU15 Feb26SU the build most 2019 hosts run.
    assert report["reference"]["release"] == "Exchange Server 2019 CU15 Feb26SU"
    on_reference = {f"ex19-su-{n:02d}" for n in range(1, 7)}
    every_host = {row["host"] for row in report["hosts"]}
    assert outliers(report) == sorted(every_host - on_reference)
    assert report["counts"] == {"ok": 6, "outlier": 24, "unreachable": 0, "error": 0}
    rows = {row["host"]: row for row in report["hosts"]}
    assert rows["ex19-cu14-01"]["behind"] == 2
    assert rows["ex19-cu14-01"]["install"] == "Exchange Server 2019 CU15 Feb26SU"
    assert "a different product from Exchange Server 2019" in rows["e55-sp3-01"]["reason"]
    assert rows["e55-sp3-01"]["kms_binary_build"] == "5.5.2650.12"
    assert rows["e2k-sp2-01"]["release"] == "Exchange 2000 Server SP2"
    assert rows["exse-rtm-01"]["release"] == "Exchange Server Subscription Edition RTM"
    assert "The group mixes 5 products" in report["summary"]
    # Every outlier is failed on its own, with its reason, and shows in the recap.
    for host in outliers(report):
        assert f"fatal: [{host}]: FAILED!" in result.stdout
    for host in on_reference:
        assert f"fatal: [{host}]" not in result.stdout
    assert (
        "- **ex19-cu14-01**: Install Exchange Server 2019 CU15 Feb26SU on ex19-cu14-01" in markdown
    )
    suite = junit.find("testsuite")
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors")) == ("30", "24", "0")

    assert again.returncode == OUTLIER
    assert "changed=1" not in again.stdout and "changed=0" in again.stdout
    assert {k: v for k, v in second.items() if k != "generated"} == {
        k: v for k, v in report.items() if k != "generated"
    }


def test_equal_to_max_on_the_mixed_fleet_measures_against_the_newest_product(
    mixed30: RunningLab, gate_playbook: RunGate
) -> None:
    result, report, _markdown, _junit = gate_playbook(
        PARITY, mixed30, "-e", "exchange_parity_policy=equal_to_max"
    )
    assert result.returncode == OUTLIER
    assert report["reference"]["newest_release"] == "Exchange Server Subscription Edition Feb26SU"
    rows = {row["host"]: row for row in report["hosts"]}
    assert {host for host, row in rows.items() if row["status"] == "ok"} == {
        "exse-su-01",
        "exse-su-02",
        "exse-su-03",
    }
    assert rows["exse-rtm-01"]["behind"] == 5
    assert rows["ex19-su-01"]["fix"].startswith(
        "Upgrade ex19-su-01 in place to Exchange Server Subscription Edition Feb26SU"
    )


@pytest.mark.parametrize(
    ("extra", "code", "expected"),
    [
        (
            ["-e", "exchange_parity_policy=max_behind", "-e", "exchange_parity_max_behind=2"],
            PASS,
            [],
        ),
        (
            ["-e", "exchange_parity_policy=max_behind", "-e", "exchange_parity_max_behind=1"],
            OUTLIER,
            ["dag-06"],
        ),
        (
            ["-e", '{"exchange_parity_policy": {"max_behind": 0}}'],
            OUTLIER,
            ["dag-04", "dag-05", "dag-06"],
        ),
        (["-e", "exchange_parity_policy=equal_to_max"], OUTLIER, ["dag-04", "dag-05", "dag-06"]),
    ],
)
def test_max_behind_passes_and_fails_the_dag_where_it_should(
    dag: RunningLab,
    gate_playbook: RunGate,
    extra: list[str],
    code: int,
    expected: list[str],
) -> None:
    result, report, _markdown, _junit = gate_playbook(
        PARITY, dag, "-e", "exchange_parity_group=exchange_hosts", *extra
    )
    assert result.returncode == code, result.stdout
    assert outliers(report) == expected
    assert report["result"] == ("pass" if code == PASS else "fail")
    if "dag-06" in expected:
        assert (
            "dag-06 runs Exchange Server 2019 CU14 (15.2.1544.4), 2 releases behind the newest build "
            "in exchange_hosts, Exchange Server 2019 CU15 Feb26SU (15.2.1748.43)"
        ) in result.stdout


def test_exact_names_the_canary_where_equal_to_max_names_the_others(
    lab_factory, gate_playbook: RunGate
) -> None:
    lab = lab_factory("parity_canary.yml")
    exact, exact_report, _md, _junit = gate_playbook(PARITY, lab)
    assert exact.returncode == OUTLIER
    assert outliers(exact_report) == ["canary"]
    assert "this host is ahead of them" in exact_report["outliers"][0]["reason"]
    to_max, max_report, _md, _junit = gate_playbook(
        PARITY, lab, "-e", "exchange_parity_policy=equal_to_max"
    )
    assert to_max.returncode == OUTLIER
    assert outliers(max_report) == ["site-01", "site-02", "site-03", "site-04"]
    assert {o["install"] for o in max_report["outliers"]} == {"Exchange Server 2016 CU23 Feb26SU"}


def test_an_unreachable_host_exits_4_with_the_report_written(gate_on_new_lab: RunGate) -> None:
    result, report, markdown, junit = gate_on_new_lab(PARITY, "parity_unreachable.yml")
    assert result.returncode == UNREACHABLE, result.stdout
    rows = {row["host"]: row for row in report["hosts"]}
    assert rows["se-dead"]["status"] == "unreachable"
    assert "certificate has expired" in rows["se-dead"]["reason"]
    assert [rows[h]["status"] for h in ("se-01", "se-02", "se-03")] == ["ok"] * 3
    assert report["counts"] == {"ok": 3, "outlier": 0, "unreachable": 1, "error": 0}
    assert "⚠️ unreachable" in markdown
    assert junit.find("testsuite").get("errors") == "1"


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (
            ["-e", "exchange_parity_policy=newest"],
            "exchange_hosts: exchange_parity_policy is 'newest', which is not a policy. Set "
            "exchange_parity_policy to exact",
        ),
        (
            ["-e", "exchange_parity_policy=max_behind"],
            "exchange_parity_policy is max_behind but exchange_parity_max_behind is not set",
        ),
        (
            ["-e", "exchange_parity_policy=max_behind", "-e", "exchange_parity_max_behind=-1"],
            "exchange_parity_max_behind is -1; it must be 0 or more",
        ),
        (
            ["-e", "exchange_parity_group=dag9"],
            "dag9: the inventory has no group named dag9",
        ),
    ],
)
def test_bad_settings_fail_clearly_before_any_server_is_read(
    dag: RunningLab, ansible_env: dict[str, str], tmp_path: Path, extra: list[str], message: str
) -> None:
    before = dag.show()
    reports = tmp_path / "report"
    result = run_tool(
        [
            "ansible-playbook",
            "exchops.kms.check_exchange_parity",
            "-i",
            str(dag.inventory),
            "-e",
            f"exchange_parity_report_dir={reports}",
            *extra,
        ],
        ansible_env,
        tmp_path,
    )
    assert result.returncode == OUTLIER, result.stdout
    assert message in result.stdout, result.stdout
    assert "Nothing was read or changed." in result.stdout
    assert not reports.exists()
    after = dag.show()
    # Not one request reached a server.
    assert {host: shown["requests"] for host, shown in after.items()} == {
        host: shown["requests"] for host, shown in before.items()
    }
