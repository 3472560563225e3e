# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Exchange build parsing, ordering and naming (plugins/plugin_utils/_builds.py)."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ansible_collections.exchops.kms.plugins.plugin_utils._builds import (
    RELEASES,
    Build,
    family_version,
    name_build,
    on_earlier_service_pack,
    service_pack_release,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("5.5.2650.21", Build(5, 5, 2650, 21)),
        ("6.0.6249.4", Build(6, 0, 6249, 4)),
        ("15.01.2507.006", Build(15, 1, 2507, 6)),
        ("15.02.0529.005", Build(15, 2, 529, 5)),
        ("5.5.2650", Build(5, 5, 2650, 0)),
        ("  5.5.1960.8\r\n", Build(5, 5, 1960, 8)),
        ("0.0.0.0", Build(0, 0, 0, 0)),
        ("65535.65535.65535.65535", Build(65535, 65535, 65535, 65535)),
    ],
)
def test_dotted_builds_parse_into_integer_parts(text: str, expected: Build) -> None:
    assert Build.parse(text) == expected


@pytest.mark.parametrize(
    ("bare", "family", "expected"),
    [
        ("2650", None, Build(5, 5, 2650)),
        (2653, None, Build(5, 5, 2653)),
        ("1960", None, Build(5, 5, 1960)),
        (6249, None, Build(6, 0, 6249)),
        (993, None, Build(4, 0, 993)),
        (7638, None, Build(6, 5, 7638)),
        ("2606", None, Build(5, 5, 2606)),
        (2507, (15, 1), Build(15, 1, 2507)),
        (0xA5A, (5, 5), Build(5, 5, 2650)),
    ],
)
def test_bare_build_numbers_are_placed_in_their_family(
    bare: str | int, family: tuple[int, int] | None, expected: Build
) -> None:
    assert Build.parse(bare, family=family) == expected


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ("", "not an Exchange build"),
        ("5.5", "3 or 4 dot-separated"),
        ("5", "matches no Exchange 4.0-2003 release"),
        ("5.5.2650.21.7", "3 or 4 dot-separated"),
        ("5.5.-2650", "3 or 4 dot-separated"),
        ("5.5.2650a", "3 or 4 dot-separated"),
        ("v5.5.2650", "3 or 4 dot-separated"),
        ("5,5,2650", "3 or 4 dot-separated"),
        ("5.5..2650", "3 or 4 dot-separated"),
        ("5.5.2650.", "3 or 4 dot-separated"),
        ("5.5 .2650", "3 or 4 dot-separated"),
        ("5.5.70000", "outside 0..65535"),
        ("99999", "matches no Exchange 4.0-2003 release"),
        (-1, "negative"),
        (True, "not a string or a number"),
        (None, "not a string or a number"),
        (5.5, "not a string or a number"),
        ("５.５.２６５０", "3 or 4 dot-separated"),  # full-width digits are not ASCII digits
    ],
)
def test_invalid_builds_are_rejected_with_a_clear_error(bad: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Build.parse(bad)  # type: ignore[arg-type]


def test_build_parts_must_be_plain_integers() -> None:
    with pytest.raises(ValueError, match="not an integer"):
        Build(5, 5, "2650")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("newer", "older"),
    [
        # CSS-Exchange #873: HealthChecker compared the revision as a double (2375.18 < 2375.7).
        ("15.2.2375.18", "15.2.2375.7"),
        # CSS-Exchange #1374: '15.2.922.13' -ge '15.2.1118.7' was True as strings.
        ("15.2.1118.7", "15.2.922.13"),
        # dpaulson45/HealthChecker #306: 1847.10 became the double 1847.1.
        ("15.1.1847.10", "15.1.1847.7"),
        # dsccommunity/ExchangeDsc #410: build 847 was "not less than" 1178.
        ("15.0.1178.4", "15.0.847.32"),
        # The KB case: SP3 binaries over RTM binaries.
        ("5.5.2650.21", "5.5.2448.4"),
        ("5.5.2650.0", "5.5.1960.8"),
        ("5.5.2653", "5.5.2650.23"),
        ("6.0.6620.7", "6.0.6620.5"),
        ("10.0.0.0", "9.9.9999.9999"),
    ],
)
def test_builds_compare_as_integer_tuples(newer: str, older: str) -> None:
    assert Build.parse(newer) > Build.parse(older)
    assert Build.parse(older) < Build.parse(newer)
    assert Build.parse(newer) != Build.parse(older)


def test_sp_parity_ignores_the_per_file_revision() -> None:
    # Q243604: within one SP the fourth part differs from file to file.
    assert Build.parse("5.5.2650.23").sp_key == Build.parse("5.5.2650.14").sp_key
    assert Build.parse("5.5.2650.23").sp_key != Build.parse("5.5.2653.1").sp_key


parts = st.integers(min_value=0, max_value=0xFFFF)
build_tuples = st.tuples(parts, parts, parts, parts)


@settings(max_examples=5000, deadline=None)
@given(build_tuples, build_tuples)
def test_ordering_matches_a_plain_integer_tuple_oracle(
    left: tuple[int, int, int, int], right: tuple[int, int, int, int]
) -> None:
    left_build = Build.parse(".".join(map(str, left)))
    right_build = Build.parse(".".join(map(str, right)))
    assert (left_build < right_build) == (left < right)
    assert (left_build == right_build) == (left == right)
    assert (left_build > right_build) == (left > right)


@given(build_tuples, st.integers(min_value=0, max_value=3))
def test_zero_padded_long_format_parses_to_the_same_build(
    build: tuple[int, int, int, int], padding: int
) -> None:
    padded = ".".join(str(part).zfill(len(str(part)) + padding) for part in build)
    assert Build.parse(padded) == Build(*build)


def test_the_table_is_ordered_by_build() -> None:
    builds = [release.build for release in RELEASES]
    assert builds == sorted(builds)
    assert len(set(builds)) == len(builds)


@pytest.mark.parametrize("release", RELEASES, ids=lambda release: f"{release.build}")
def test_every_row_of_the_table_names_itself(release) -> None:
    named = name_build(release.build)
    assert named.known
    assert named.warning is None
    assert named.release == release.name
    assert named.service_pack == release.service_pack
    assert release.source


@pytest.mark.parametrize("release", RELEASES, ids=lambda release: f"{release.build}")
def test_release_dates_are_iso_at_the_precision_of_their_source(release) -> None:
    if release.released:
        day = release.released if len(release.released) == 10 else f"{release.released}-01"
        assert len(release.released) in (7, 10), release.released
        assert date.fromisoformat(day).isoformat() == day


@pytest.mark.parametrize(
    ("build", "released"),
    [
        # Microsoft's page gives these by month only; no day is made up.
        ("6.0.6487", "2003-09"),
        ("6.0.6556", "2004-04"),
        ("6.0.6620.5", "2008-03"),
        ("6.5.7654.4", "2008-08"),
        # Q243604's RTM file dates and ITPro say November 1997; Microsoft's page 1998-02-03.
        ("5.5.1960.8", "1997-11"),
        # The Exchange team blog: "the update rollup (6603.1) released August 16".
        ("6.0.6603", "2004-08-16"),
    ],
)
def test_month_only_sources_give_month_only_dates(build: str, released: str) -> None:
    (release,) = [release for release in RELEASES if release.build == Build.parse(build)]
    assert release.released == released


def _rows(family: tuple[int, int]) -> list:
    return [release for release in RELEASES if release.build.family == family]


def test_the_4_0_to_5_5_builds_cite_the_kb_that_lists_them() -> None:
    # KB Q158530 lists every 4.0, 5.0 and 5.5 build; KB Q191014 lists only dates and fixes.
    for release in _rows((4, 0)) + _rows((5, 0)) + _rows((5, 5))[1:]:
        assert "Q158530" in release.source, release
    assert not [release for release in RELEASES if "Q191014" in release.source]


@pytest.mark.parametrize("version", ["2013", "2016", "2019"])
def test_the_2013_to_2019_rtm_rows_cite_microsofts_page_not_css(version: str) -> None:
    # The CSS-Exchange dictionary starts each of these products at CU1.
    (rtm,) = [release for release in RELEASES if release.name == f"Exchange Server {version} RTM"]
    assert rtm.source == "Microsoft build-numbers page"


@pytest.mark.parametrize(
    ("build", "release", "short", "service_pack"),
    [
        ("5.5.2650.21", "Exchange Server 5.5 SP3", "5.5 SP3", 3),
        ("5.5.1960.8", "Exchange Server 5.5 RTM", "5.5 RTM", 0),
        ("5.5.1960.3", "Exchange Server 5.5 RTM", "5.5 RTM", 0),
        ("5.5.2653.12", "Exchange Server 5.5 SP4", "5.5 SP4", 4),
        ("6.0.6249.0", "Exchange 2000 Server SP3", "2000 SP3", 3),
        ("6.5.7638.1", "Exchange Server 2003 SP2", "2003 SP2", 2),
        ("8.3.83.6", "Exchange Server 2007 SP3", "2007 SP3", 3),
        ("14.3.513.0", "Exchange Server 2010 SP3 RU32", "2010 SP3 RU32", 3),
        ("15.1.2507.6", "Exchange Server 2016 CU23", "2016 CU23", 0),
        ("15.02.1748.010", "Exchange Server 2019 CU15", "2019 CU15", 0),
        ("15.2.2562.37", "Exchange Server Subscription Edition Feb26SU", "SE Feb26SU", 0),
    ],
)
def test_known_builds_are_named_like_microsoft_names_them(
    build: str, release: str, short: str, service_pack: int
) -> None:
    named = name_build(Build.parse(build))
    assert (named.release, named.short, named.service_pack) == (release, short, service_pack)
    assert named.known


@pytest.mark.parametrize(
    ("build", "release", "nearest"),
    [
        # Q231307: Kmserver.exe 5.5.2606 is SP2 plus a hotfix, first corrected in SP3.
        ("5.5.2606.0", "Exchange Server 5.5 SP2 + hotfix", "Exchange Server 5.5 SP2"),
        ("5.5.2602.0", "Exchange Server 5.5 SP2 + hotfix", "Exchange Server 5.5 SP2"),
        ("6.0.6396.0", "Exchange 2000 Server SP3 + hotfix", "Exchange 2000 Server SP3"),
        ("15.2.2375.18", "Exchange Server 2019 CU15 Feb26SU or later", "Exchange Server 2019 CU15"),
        ("15.2.2562.43", "Exchange Server Subscription Edition Feb26SU or later", "Feb26SU"),
    ],
)
def test_unknown_builds_warn_with_the_nearest_known_release(
    build: str, release: str, nearest: str
) -> None:
    named = name_build(Build.parse(build))
    assert not named.known
    assert named.release == release
    assert named.warning is not None
    assert named.warning.startswith(f"unknown build {Build.parse(build)}, nearest known")
    assert nearest in named.warning


def test_a_build_older_than_its_product_is_named_without_crashing() -> None:
    named = name_build(Build.parse("15.2.100.1"))
    assert named.product == "Exchange Server 2019"
    assert not named.known
    assert "older than every known" in (named.warning or "")


def test_a_version_no_exchange_used_is_unknown_not_an_error() -> None:
    named = name_build(Build.parse("7.0.100.0"))
    assert named.product == "unknown product"
    assert not named.known
    assert "no Exchange release has version 7.0" in (named.warning or "")
    assert family_version(Build.parse("7.0.1.0")) is None


def test_subscription_edition_starts_at_build_2562() -> None:
    assert family_version(Build.parse("15.2.2562.17"))[1] == "SE"
    assert family_version(Build.parse("15.2.2561.0"))[1] == "2019"


@given(build_tuples)
def test_naming_never_crashes(build: tuple[int, int, int, int]) -> None:
    named = name_build(Build(*build))
    assert named.release
    assert named.known or named.warning


@pytest.mark.parametrize(
    ("family", "service_pack", "build"),
    [
        ((5, 5), 3, "5.5.2650"),
        ((5, 5), 0, "5.5.1960.8"),
        ((6, 0), 3, "6.0.6249"),  # the SP itself, not a later rollup
        ((4, 0), 5, "4.0.996"),
        ((5, 5), 9, None),
        ((15, 1), 0, None),  # 2007 and later carry no SP in ServicePackNumber
    ],
)
def test_a_service_pack_number_names_the_release_that_brings_it(
    family: tuple[int, int], service_pack: int, build: str | None
) -> None:
    release = service_pack_release(family, service_pack)
    assert (release.build if release else None) == (Build.parse(build) if build else None)


@pytest.mark.parametrize(
    ("file_version", "build", "earlier"),
    [
        ("5.5.2448.8", "5.5.2650", True),  # Store.exe of SP2 under an SP3 registry (KB Q243604)
        ("5.5.2650.23", "5.5.2650", False),
        ("5.5.2650.23", "5.5.2653", True),
        ("5.5.2653.23", "5.5.2650", False),  # later: not this question
        ("5.5.2652.0", "5.5.2650", False),  # SP3 plus a hotfix is SP3
        ("6.0.6249.0", "5.5.2650", False),  # another version is never compared
        ("6.0.5762.4", "6.0.6487", True),  # 2000 SP2 under the SP3 rollup
    ],
)
def test_a_file_version_is_on_an_earlier_service_pack_only_within_one_version(
    file_version: str, build: str, earlier: bool
) -> None:
    assert on_earlier_service_pack(Build.parse(file_version), Build.parse(build)) is earlier
