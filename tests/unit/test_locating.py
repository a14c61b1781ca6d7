"""Locating without a database: the STRtree locator over grid polygons, the directory that builds it
once per version of the organisation, addresses and names."""

from __future__ import annotations

import random
import time

from gridflow.adapters.geo import StrTreeLocator, rectangle
from gridflow.service.units import UnitDirectory, UnitInfo

A, B = "37060200100101", "37060200100102"


def units(*extra: UnitInfo) -> list[UnitInfo]:
    return [UnitInfo("370602", "芝罘区", "district", None),
            UnitInfo("370602001", "向阳街道", "street", "370602", rectangle(121.0, 37.0, 122.0, 38.0)),
            UnitInfo("370602001001", "海港社区", "community", "370602001"),
            UnitInfo(A, "海港社区第1网格", "grid", "370602001001",
                     rectangle(121.39, 37.53, 121.394, 37.534)),
            UnitInfo(B, "海港社区第2网格", "grid", "370602001001",
                     rectangle(121.394, 37.53, 121.398, 37.534)),
            *extra]


def directory(*extra: UnitInfo, addresses=(), factory=StrTreeLocator) -> UnitDirectory:
    d = UnitDirectory(ttl=float("inf"), locator_factory=factory)
    d._units = {u.code: u for u in units(*extra)}
    d._addresses = sorted(addresses, key=lambda x: -len(x[0]))
    d._loaded_at = time.monotonic()
    return d


def test_a_point_is_located_in_its_grid_and_on_a_shared_edge_in_the_lower_code():
    loc = StrTreeLocator(units())
    assert loc.locate(37.532, 121.396) == (B, "grid")
    assert loc.locate(37.532, 121.394) == (A, "grid")


def test_a_point_in_no_grid_falls_to_the_street_with_a_boundary_else_nothing():
    loc = StrTreeLocator(units())
    assert loc.locate(37.6, 121.5) == ("370602001", "street")
    assert loc.locate(1.0, 1.0) is None


def test_a_retired_grid_locates_nothing():
    retired = UnitInfo("37060200100103", "第3网格", "grid", "370602001001",
                       rectangle(121.398, 37.53, 121.402, 37.534), retired=True)
    assert StrTreeLocator(units(retired)).locate(37.532, 121.4) == ("370602001", "street")


def test_many_points_at_once_agree_with_one_at_a_time():
    loc = StrTreeLocator(units())
    rng = random.Random(3)
    pts = [(rng.uniform(37.52, 37.54), rng.uniform(121.385, 121.40)) for _ in range(300)] + [(1.0, 1.0)]
    one = [(loc.locate(lat, lon) or (None,))[0] for lat, lon in pts]
    assert loc.locate_many([p[0] for p in pts], [p[1] for p in pts]) == one


def test_the_directory_builds_the_locator_once_per_version_of_the_boundaries():
    built = []

    def factory(us):
        built.append(1)
        return StrTreeLocator(us)

    d = directory(factory=factory)
    assert d.locate_point(37.532, 121.396) == (B, "grid")
    d._units = dict(d._units)  # a refresh that changed nothing
    assert d.locate_point(37.532, 121.392) == (A, "grid") and len(built) == 1
    d._units = {**d._units, B: UnitInfo(B, "海港社区第2网格", "grid", "370602001001",
                                         rectangle(121.394, 37.53, 121.399, 37.534))}
    assert d.locate_point(37.532, 121.3985) == (B, "grid") and len(built) == 2


def test_an_address_is_found_in_the_table_longest_entry_first_else_by_the_units_names():
    d = directory(addresses=[("海港路1号", A), ("海港路12号", B)])
    assert d.locate_address("海港路 １２号 东门").code == B
    assert d.locate_address("海港路1号").code == A
    assert d.locate_address("向阳街道海港社区居委会旁").code == "370602001001"
    assert d.locate_address("无名路") is None and d.locate_address(None) is None


def test_a_name_picks_the_unit_with_exactly_that_name_else_those_containing_it_never_a_retired_one():
    d = directory(UnitInfo("dept-housing", "区住建局", "department", "370602"),
                  UnitInfo("dept-old", "区住建局旧址办", "department", "370602", retired=True),
                  UnitInfo("dept-police", "公安分局", "department", "370602"),
                  UnitInfo("dept-ecology", "生态环境分局", "department", "370602"))
    assert [u.code for u in d.by_name("住建局")] == ["dept-housing"]
    assert [u.code for u in d.by_name("区住建局")] == ["dept-housing"]
    assert [u.code for u in d.by_name("分局")] == ["dept-ecology", "dept-police"]
    assert d.by_name("教育局") == []
