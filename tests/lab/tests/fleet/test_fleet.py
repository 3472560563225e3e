# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Fleet files: valid ones plan hosts and addresses; bad ones name the line and the fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from exchlab.fleet import FleetError, load_fleet
from exchlab.hosts import inventory_for
from exchlab.layout import StateLayout

PAIR = """pairs:
  - source:
      name: kms-old
      exchange: {version: "5.5", sp: 3}
    target:
      name: kms-new
      exchange: {version: "5.5", sp: 3}
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "fleet.yml"
    path.write_text(text, encoding="utf-8")
    return path


def test_a_pair_plans_its_source_then_its_target_on_consecutive_addresses(tmp_path: Path) -> None:
    fleet = load_fleet(write(tmp_path, PAIR))
    assert [(host.name, host.role, host.source, host.address) for host in fleet.hosts] == [
        ("kms-old", "source", None, "127.0.10.1"),
        ("kms-new", "target", "kms-old", "127.0.10.2"),
    ]
    assert fleet.lab["connection"] == "ntlm_http"


def test_count_replicates_a_pair_with_numbered_names(tmp_path: Path) -> None:
    fleet = load_fleet(write(tmp_path, PAIR.replace("  - source:", "  - count: 3\n    source:")))
    assert [host.name for host in fleet.hosts] == [
        "kms-old-001",
        "kms-new-001",
        "kms-old-002",
        "kms-new-002",
        "kms-old-003",
        "kms-new-003",
    ]
    assert fleet.hosts[1].source == "kms-old-001"


def test_addresses_skip_the_0_and_255_octets(tmp_path: Path) -> None:
    text = PAIR.replace("  - source:", "  - count: 130\n    source:")
    fleet = load_fleet(write(tmp_path, text), {"base_address": "127.0.50.250"})
    addresses = [host.address for host in fleet.hosts]
    assert "127.0.50.255" not in addresses and "127.0.51.0" not in addresses
    assert addresses[:7] == [
        "127.0.50.250",
        "127.0.50.251",
        "127.0.50.252",
        "127.0.50.253",
        "127.0.50.254",
        "127.0.51.1",
        "127.0.51.2",
    ]
    assert len(set(addresses)) == 260


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "line 1: a fleet file is a mapping"),
        ("- a\n- b\n", "line 1: a fleet file is a mapping"),
        ("pairs: [\n", "not valid YAML"),
        ("lab: {}\n", "line 1: the file: {'lab': {}} is not valid under any of the given schemas"),
        (
            PAIR.replace("sp: 3}\n    target", "sp: three}\n    target"),
            "line 4: pairs[0].source.exchange.sp: 'three' is not of type 'integer'",
        ),
        (
            PAIR.replace('version: "5.5", sp: 3}\n    target', 'version: "5.6"}\n    target'),
            "line 4: pairs[0].source.exchange.version: '5.6' is not one of",
        ),
        (
            PAIR.replace("name: kms-new", "name: kms_new"),
            "line 6: pairs[0].target.name: 'kms_new' does not match",
        ),
        (
            PAIR.replace("name: kms-new", "name: a-name-longer-than-15"),
            "line 6: pairs[0].target.name",
        ),
        (
            PAIR.replace("name: kms-new", "name: KMS-OLD"),
            "the target 'KMS-OLD' cannot be its own source",
        ),
        (
            PAIR + "      colour: blue\n",
            "line 8: pairs[0].target.colour: unknown key; allowed keys are name",
        ),
        (
            PAIR.replace("  - source:", "  - count: 0\n    source:"),
            "pairs[0].count: 0 is less than the minimum of 1",
        ),
        (
            PAIR.replace("  - source:", "  - count: 900\n    source:").replace(
                "kms-old", "kms-old-server"
            ),
            "longer than Windows' 15 characters",
        ),
        (
            PAIR + "hosts:\n  - name: KMS-new\n",
            "line 9: hosts[0].name: host name 'KMS-new' is already used at line 6",
        ),
        (PAIR + "lab:\n  base_address: 10.0.0.1\n", "lab.base_address: '10.0.0.1' does not match"),
        (
            PAIR + "lab:\n  http_port: 70000\n",
            "lab.http_port: 70000 is greater than the maximum of 65535",
        ),
        (PAIR.replace("kms-old\n", "kms-old\n      name: again\n", 1), "key 'name' appears twice"),
        (PAIR + "      media: {'EXCH55SP3': '5.5.2650'}\n", "pairs[0].target.media"),
        (PAIR + "      events: [1234]\n", "line 8: pairs[0].target.events[0]: 1234 is not one of"),
        (
            PAIR + "      faults: {tls_certificate: stolen}\n",
            "pairs[0].target.faults.tls_certificate: 'stolen' is not one of",
        ),
    ],
)
def test_a_bad_fleet_names_the_file_line_and_what_is_wrong(
    tmp_path: Path, text: str, message: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(FleetError) as caught:
        load_fleet(path)
    assert str(caught.value).startswith(str(path))
    assert message in str(caught.value)


def test_a_missing_fleet_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(FleetError, match="cannot read the fleet file"):
        load_fleet(tmp_path / "absent.yml")


FLEETS = Path(__file__).resolve().parents[2] / "fleets"


def test_an_inventory_carries_the_startup_password_only_where_a_km_server_types_it(
    tmp_path: Path,
) -> None:
    layout = StateLayout(tmp_path)
    typed = inventory_for(load_fleet(FLEETS / "q259906.yml"), layout)["all"]["vars"]
    assert typed["kms_startup_password"]
    # Every KM Server of disk_mode.yml reads its startup disk (KB Q196129): none is given.
    disk = inventory_for(load_fleet(FLEETS / "disk_mode.yml"), layout)["all"]["vars"]
    assert "kms_startup_password" not in disk
