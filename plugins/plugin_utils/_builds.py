# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Exchange build numbers as data, and a Build value that compares as integers.

Sources of the table (see the `source` of each row):
- Microsoft, "Exchange Server build numbers and release dates" (learn.microsoft.com,
  /exchange/new-features/build-numbers-and-release-dates), 4.0 to 2019.
- KB Q158530 "XGEN: Build Numbers for Exchange" (4.0, 5.0 and 5.5 builds, 5.5 RTM to SP4),
  KB Q176812 (5.5 RTM is build 1960.8), KB Q243604 (file versions of 5.5 RTM to SP3). KB Q191014
  gives the 5.5 service packs' release dates and fix lists, not their builds.
- KB 824282 / 836488 / 870540 (Exchange 2000 post-SP3 rollups).
- microsoft/CSS-Exchange Shared/Get-ExchangeBuildVersionInformation.ps1 (2013, 2016, 2019 from
  CU1 on, SE; it has no RTM rows for 2013, 2016 and 2019).
- Exchange 2003 SP2 is 6.5.7638, not the "6.5.7683" misprinted on Microsoft's page (the Outlook
  object model docs and ExBPA both say 7638).

Builds are compared as integer tuples. Microsoft's own HealthChecker got this wrong twice:
comparing 15.2.2375.18 with 15.2.2375.7 as decimals (CSS-Exchange #873) and 15.2.922.13 with
15.2.1118.7 as strings (CSS-Exchange #1374).
"""

# Internal to exchops.kms: not a public API; may change in any release.

from __future__ import annotations

import re
from dataclasses import dataclass

# A version resource holds four 16-bit parts.
_PART_MAX = 0xFFFF
# ASCII digits only: `\d` would also take full-width and other Unicode digits.
_DOTTED = re.compile(r"^([0-9]+)\.([0-9]+)\.([0-9]+)(?:\.([0-9]+))?$")
_BARE = re.compile(r"^[0-9]+$")


@dataclass(frozen=True, order=True)
class Build:
    """An Exchange (or file) version: major.minor.build.revision, ordered as integers."""

    major: int
    minor: int
    build: int
    revision: int = 0

    def __post_init__(self) -> None:
        for part in (self.major, self.minor, self.build, self.revision):
            if isinstance(part, bool) or not isinstance(part, int):
                raise ValueError(f"not an Exchange build: part {part!r} is not an integer")
            if not 0 <= part <= _PART_MAX:
                raise ValueError(
                    f"not an Exchange build: part {part} is outside 0..{_PART_MAX} "
                    "(a version resource part is 16 bits)"
                )

    @classmethod
    def parse(cls, text: str | int, family: tuple[int, int] | None = None) -> Build:
        """Parse "5.5.2650.21", "15.01.2507.006", "5.5.2650", or a bare build number.

        A bare build number (a registry `NewestBuild` DWORD, 2650) needs the product: pass `family`
        (e.g. (5, 5) from `Services Version` 55); without it, the number is placed by the 4.0-2003
        table, whose build ranges do not overlap, and refused when it fits none.
        """
        if isinstance(text, bool) or not isinstance(text, (str, int)):
            raise ValueError(f"not an Exchange build: {text!r} is not a string or a number")
        if isinstance(text, int):
            if text < 0:
                raise ValueError(f"not an Exchange build: {text} is negative")
            return cls._from_bare(text, family, str(text))
        stripped = text.strip()
        dotted = _DOTTED.match(stripped)
        if dotted:
            major, minor, build, revision = dotted.groups()
            return cls(int(major), int(minor), int(build), int(revision or 0))
        if _BARE.match(stripped):
            return cls._from_bare(int(stripped), family, stripped)
        raise ValueError(
            f"not an Exchange build: {text!r}; expected 3 or 4 dot-separated non-negative integers "
            "such as 5.5.2650.21, or a bare build number such as 2650"
        )

    @classmethod
    def _from_bare(cls, number: int, family: tuple[int, int] | None, shown: str) -> Build:
        if family is not None:
            return cls(family[0], family[1], number)
        for (major, minor), (low, high) in _LEGACY_RANGES.items():
            if low <= number <= high:
                return cls(major, minor, number)
        raise ValueError(
            f"not an Exchange build: bare build number {shown} matches no Exchange 4.0-2003 release; "
            "give the full version (e.g. 15.1.2507.6)"
        )

    @property
    def family(self) -> tuple[int, int]:
        return (self.major, self.minor)

    @property
    def sp_key(self) -> tuple[int, int, int]:
        """What decides service-pack parity between servers: the fourth part differs per file
        within one SP (KB Q243604), so it must not make two servers unequal."""
        return (self.major, self.minor, self.build)

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}.{self.build}.{self.revision}"

    @property
    def short(self) -> str:
        """major.minor.build, how Exchange 4.0-2003 builds are usually written (5.5.2650)."""
        return f"{self.major}.{self.minor}.{self.build}"


@dataclass(frozen=True)
class Release:
    """One row of the build table."""

    build: Build
    product: str  # "Exchange Server 5.5"
    label: str  # "SP3", "RTM", "CU23 Feb26SU"
    service_pack: int
    # ISO 8601 at the precision of the source: "YYYY-MM-DD", "YYYY-MM" where the source gives only
    # the month (no day is made up), or "" where no source dates it. Only a name for people: no
    # rule reads it.
    released: str
    source: str  # where the build number comes from
    exact_revision: bool = False  # rows whose revision matters (6.0.6620.5 vs .7)

    @property
    def name(self) -> str:
        return f"{self.product} {self.label}"


@dataclass(frozen=True)
class BuildName:
    """What a build is, in words: `release` is None-free; `warning` is set when the build is not
    in the table and the name is the nearest known release below it."""

    build: Build
    product: str
    version: str  # "5.5", "2000", "2016"
    release: str  # "Exchange Server 5.5 SP3" or "Exchange Server 5.5 SP2 + hotfix"
    short: str  # "5.5 SP3"
    service_pack: int
    known: bool
    nearest: Release | None
    warning: str | None


def _r(
    build: str,
    product: str,
    label: str,
    sp: int,
    released: str,
    source: str,
    exact_revision: bool = False,
) -> Release:
    return Release(Build.parse(build), product, label, sp, released, source, exact_revision)


_MS = "Microsoft build-numbers page"
_CSS = "CSS-Exchange build dictionary"

# Ordered by build. `service_pack` is the SP level a server on that build has; for 2013 and later
# it counts SPs too (2013 SP1 = CU4), so CU-only products stay at 0.
RELEASES: tuple[Release, ...] = (
    _r("4.0.837.10", "Exchange Server 4.0", "RTM", 0, "1996-06-11", f"{_MS}; Q158530"),
    _r("4.0.838.15", "Exchange Server 4.0", "SP1", 1, "1996-05-01", f"{_MS}; Q158530"),
    _r("4.0.993.4", "Exchange Server 4.0", "SP2", 2, "1996-07-19", f"{_MS}; Q158530"),
    _r("4.0.994.64", "Exchange Server 4.0", "SP3", 3, "1996-10-29", f"{_MS}; Q158530"),
    _r("4.0.995.54", "Exchange Server 4.0", "SP4", 4, "1997-03-28", f"{_MS}; Q158530"),
    _r("4.0.996", "Exchange Server 4.0", "SP5", 5, "1998-05-05", f"{_MS}; Q158530"),
    _r("5.0.1457.10", "Exchange Server 5.0", "RTM", 0, "1997-05-23", f"{_MS}; Q158530"),
    _r("5.0.1458.50", "Exchange Server 5.0", "SP1", 1, "1997-06-18", f"{_MS}; Q158530"),
    _r("5.0.1460.13", "Exchange Server 5.0", "SP2", 2, "1998-02-19", f"{_MS}; Q158530"),
    # The sources disagree on 5.5 RTM's date [?]. KB Q243604 dates the RTM files 11/04/97, and
    # ITPro, "The Pros and Cons of SP4" (https://www.itprotoday.com/microsoft-exchange/pros-and-cons-sp4)
    # says 5.5 "has been available since November 1997"; Microsoft's page says February 3, 1998.
    # The earlier month, which two sources support, is kept, without a day.
    _r("5.5.1960.8", "Exchange Server 5.5", "RTM", 0, "1997-11", f"{_MS}; Q176812"),
    # 5.5 SP dates: Microsoft's page. KB Q191014 agrees for SP1 and SP2 but dates SP3 September 13,
    # 1999 and SP4 November 7, 2000; the sources disagree, the page's dates are kept [?].
    _r("5.5.2232", "Exchange Server 5.5", "SP1", 1, "1998-08-05", f"{_MS}; Q158530; Q243604"),
    _r("5.5.2448", "Exchange Server 5.5", "SP2", 2, "1998-12-23", f"{_MS}; Q158530; Q243604"),
    _r("5.5.2650", "Exchange Server 5.5", "SP3", 3, "1999-09-09", f"{_MS}; Q158530; Q243604"),
    _r("5.5.2653", "Exchange Server 5.5", "SP4", 4, "2000-11-01", f"{_MS}; Q158530"),
    _r("6.0.4417", "Exchange 2000 Server", "RTM", 0, "2000-11-29", _MS),
    _r("6.0.4712", "Exchange 2000 Server", "SP1", 1, "2001-06-21", _MS),
    _r("6.0.5762", "Exchange 2000 Server", "SP2", 2, "2001-11-29", _MS),
    _r("6.0.6249", "Exchange 2000 Server", "SP3", 3, "2002-07-18", _MS),
    # Microsoft's page dates the post-SP3 updates by month only.
    _r("6.0.6487", "Exchange 2000 Server", "SP3 Sep 2003 rollup", 3, "2003-09", "KB824282"),
    _r("6.0.6556", "Exchange 2000 Server", "SP3 Apr 2004 rollup", 3, "2004-04", "KB836488"),
    # The Exchange team blog, "The Exchange 2000 Post-SP3 Rollup is Released" (2004-08-17,
    # https://techcommunity.microsoft.com/t5/exchange-team-blog/the-exchange-2000-post-sp3-rollup-is-released-amp-some-more-info/ba-p/610072):
    # "the update rollup (6603.1) released August 16"; it calls it the July 2004 rollup, KB 893624
    # the August 2004 one.
    _r("6.0.6603", "Exchange 2000 Server", "SP3 Aug 2004 rollup", 3, "2004-08-16", "KB870540"),
    _r("6.0.6620.5", "Exchange 2000 Server", "SP3 Mar 2008 update", 3, "2008-03", _MS, True),
    _r("6.0.6620.7", "Exchange 2000 Server", "SP3 Aug 2008 update", 3, "2008-08", _MS, True),
    _r("6.5.6944", "Exchange Server 2003", "RTM", 0, "2003-09-28", _MS),
    _r("6.5.7226", "Exchange Server 2003", "SP1", 1, "2004-05-25", _MS),
    _r("6.5.7638", "Exchange Server 2003", "SP2", 2, "2005-10-19", f"{_MS} (misprinted 7683)"),
    _r("6.5.7653.33", "Exchange Server 2003", "SP2 Mar 2008 update", 2, "2008-03", _MS, True),
    _r("6.5.7654.4", "Exchange Server 2003", "SP2 Aug 2008 update", 2, "2008-08", _MS, True),
    _r("8.0.685.25", "Exchange Server 2007", "RTM", 0, "2007-03-08", _MS),
    _r("8.1.240.6", "Exchange Server 2007", "SP1", 1, "2007-11-29", _MS),
    _r("8.2.176.2", "Exchange Server 2007", "SP2", 2, "2009-08-24", _MS),
    _r("8.3.83.6", "Exchange Server 2007", "SP3", 3, "2010-06-07", _MS),
    _r("8.3.517.0", "Exchange Server 2007", "SP3 RU23", 3, "2017-03-21", _MS),
    _r("14.0.639.21", "Exchange Server 2010", "RTM", 0, "2009-11-09", _MS),
    _r("14.1.218.15", "Exchange Server 2010", "SP1", 1, "2010-08-23", _MS),
    _r("14.2.247.5", "Exchange Server 2010", "SP2", 2, "2011-12-04", _MS),
    _r("14.3.123.4", "Exchange Server 2010", "SP3", 3, "2013-02-12", _MS),
    _r("14.3.513.0", "Exchange Server 2010", "SP3 RU32", 3, "2021-03-02", _MS),
    # The CSS dictionary starts 2013, 2016 and 2019 at CU1: their RTM rows are Microsoft's page.
    _r("15.0.516.32", "Exchange Server 2013", "RTM", 0, "2012-12-03", _MS),
    _r("15.0.847.32", "Exchange Server 2013", "SP1 (CU4)", 1, "2014-02-25", f"{_MS}; {_CSS}"),
    _r("15.0.1497.2", "Exchange Server 2013", "CU23", 1, "2019-06-18", f"{_MS}; {_CSS}"),
    # The CSS dictionary dates CUs and SE RTM (cuReleaseDate) but no security update: an SU's
    # date below is the second Tuesday (Patch Tuesday) of the month its name gives [I].
    _r("15.0.1497.48", "Exchange Server 2013", "CU23 Mar23SU", 1, "2023-03-14", _CSS, True),
    _r("15.1.225.42", "Exchange Server 2016", "RTM", 0, "2015-10-01", _MS),
    _r("15.1.2507.6", "Exchange Server 2016", "CU23", 0, "2022-04-20", _CSS, True),
    _r("15.1.2507.66", "Exchange Server 2016", "CU23 Feb26SU", 0, "2026-02-10", _CSS, True),
    _r("15.2.221.12", "Exchange Server 2019", "RTM", 0, "2018-10-22", _MS),
    _r("15.2.1544.4", "Exchange Server 2019", "CU14", 0, "2024-02-13", _CSS, True),
    _r("15.2.1748.10", "Exchange Server 2019", "CU15", 0, "2025-02-10", _CSS, True),
    _r("15.2.1748.43", "Exchange Server 2019", "CU15 Feb26SU", 0, "2026-02-10", _CSS, True),
    _r("15.2.2562.17", "Exchange Server Subscription Edition", "RTM", 0, "2025-07-01", _CSS, True),
    _r(
        "15.2.2562.20",
        "Exchange Server Subscription Edition",
        "Aug25SU",
        0,
        "2025-08-12",
        _CSS,
        True,
    ),
    _r(
        "15.2.2562.27",
        "Exchange Server Subscription Edition",
        "Sep25HU",
        0,
        "2025-09",  # the month of its name; no source found dates it to the day
        _CSS,
        True,
    ),
    _r(
        "15.2.2562.29",
        "Exchange Server Subscription Edition",
        "Oct25SU",
        0,
        "2025-10-14",
        _CSS,
        True,
    ),
    _r(
        "15.2.2562.35",
        "Exchange Server Subscription Edition",
        "Dec25SU",
        0,
        "2025-12-09",
        _CSS,
        True,
    ),
    _r(
        "15.2.2562.37",
        "Exchange Server Subscription Edition",
        "Feb26SU",
        0,
        "2026-02-10",
        _CSS,
        True,
    ),
)

# Product and the short version people use ("5.5 SP3", "2000 SP3", "2016 CU23"), per major.minor.
_FAMILIES: dict[tuple[int, int], tuple[str, str]] = {
    (4, 0): ("Exchange Server 4.0", "4.0"),
    (5, 0): ("Exchange Server 5.0", "5.0"),
    (5, 5): ("Exchange Server 5.5", "5.5"),
    (6, 0): ("Exchange 2000 Server", "2000"),
    (6, 5): ("Exchange Server 2003", "2003"),
    **{(8, minor): ("Exchange Server 2007", "2007") for minor in range(4)},
    **{(14, minor): ("Exchange Server 2010", "2010") for minor in range(4)},
    (15, 0): ("Exchange Server 2013", "2013"),
    (15, 1): ("Exchange Server 2016", "2016"),
    (15, 2): ("Exchange Server 2019", "2019"),
}
_SE = ("Exchange Server Subscription Edition", "SE")
_SE_FIRST_BUILD = 2562  # CSS-Exchange: 15.2 with build >= 2562 is Subscription Edition.
# 2007 and 2010 carry the SP in the minor version (8.3 = 2007 SP3).
_SP_IN_MINOR = (8, 14)

# Builds below 8.0 carry the SP in the third part only (the fourth differs per file, Q243604).
_LEGACY_MAJOR_LIMIT = 8

# Bare build numbers of 4.0-2003 do not overlap between products: where each family's builds lie.
_LEGACY_RANGES: dict[tuple[int, int], tuple[int, int]] = {}
for _release in RELEASES:
    if _release.build.major < _LEGACY_MAJOR_LIMIT:
        _low, _high = _LEGACY_RANGES.get(_release.build.family, (_release.build.build,) * 2)
        _LEGACY_RANGES[_release.build.family] = (
            min(_low, _release.build.build),
            max(_high, _release.build.build),
        )
del _release, _low, _high


def family_version(build: Build) -> tuple[str, str] | None:
    """(product, version) of a build's family, or None for a major.minor no Exchange release used."""
    if build.family == (15, 2) and build.build >= _SE_FIRST_BUILD:
        return _SE
    return _FAMILIES.get(build.family)


def service_pack_release(family: tuple[int, int], service_pack: int) -> Release | None:
    """The release that brings a 4.0-2003 server to `service_pack` (0 = RTM): its first row in
    the table (5.5 SP3 = 5.5.2650), not a later rollup; None when the table has no such SP."""
    if family[0] >= _LEGACY_MAJOR_LIMIT:
        return None
    for release in RELEASES:
        if release.build.family == family and release.service_pack == service_pack:
            return release
    return None


def _at_or_below(release: Release, build: Build) -> bool:
    if build.major < _LEGACY_MAJOR_LIMIT and not release.exact_revision:
        return release.build.sp_key <= build.sp_key
    return release.build <= build


def _same_release(build: Build, release: Release) -> bool:
    if build.major < _LEGACY_MAJOR_LIMIT and not release.exact_revision:
        return build.sp_key == release.build.sp_key
    return build == release.build


def name_build(build: Build) -> BuildName:
    """Name a build. A build missing from the table gets the nearest known release below it in the
    same family, a `warning` saying so, and never an exception."""
    family = family_version(build)
    if family is None:
        return BuildName(
            build,
            "unknown product",
            "unknown",
            f"unknown Exchange version {build}",
            "unknown",
            0,
            False,
            None,
            f"unknown build {build}: no Exchange release has version {build.major}.{build.minor}",
        )
    product, version = family
    candidates = [
        release
        for release in RELEASES
        if _at_or_below(release, build)
        and release.product == product
        and (release.build.family == build.family or build.major not in _SP_IN_MINOR)
    ]
    exact = [release for release in candidates if _same_release(build, release)]
    if exact:
        release = exact[-1]
        return BuildName(
            build,
            product,
            version,
            release.name,
            f"{version} {release.label}",
            release.service_pack,
            True,
            release,
            None,
        )
    if not candidates:
        return BuildName(
            build,
            product,
            version,
            f"{product} (build {build})",
            f"{version} pre-release",
            build.minor if build.major in _SP_IN_MINOR else 0,
            False,
            None,
            f"unknown build {build}: older than every known {product} release",
        )
    nearest = candidates[-1]
    service_pack = build.minor if build.major in _SP_IN_MINOR else nearest.service_pack
    # For 4.0-2003 a build between two SPs is the lower SP plus a hotfix (KM Server hotfixes
    # carry in-between builds: Kmserver.exe 5.5.2606 is SP2 + hotfix, Q231307).
    label = (
        f"{nearest.label} + hotfix"
        if build.major < _LEGACY_MAJOR_LIMIT
        else f"{nearest.label} or later"
    )
    return BuildName(
        build,
        product,
        version,
        f"{product} {label}",
        f"{version} {label}",
        service_pack,
        False,
        nearest,
        f"unknown build {build}, nearest known {nearest.name} ({nearest.build})",
    )


def on_earlier_service_pack(file_version: Build, build: Build) -> bool:
    """A binary's file version that names an earlier service pack of the same Exchange version
    than `build`: Store.exe's file version shows the service pack installed (KB Q278518), so a
    Store.exe on an earlier service pack than the registry's build is a service pack that did not
    complete. Builds of other versions are not compared (False)."""
    if file_version.family != build.family:
        return False
    return name_build(file_version).service_pack < name_build(build).service_pack
