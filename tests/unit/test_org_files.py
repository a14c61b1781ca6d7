"""The organisation files are checked all at once, each problem with its file and line (YAML, CSV) or
its feature (GeoJSON), and the shipped sample is valid and contains the demo organisation unchanged."""

from __future__ import annotations

import json
import textwrap

import pytest

from gridflow.adapters.geo import rectangle
from gridflow.engine.errors import OrganisationInvalid
from gridflow.service.organisation import check_org_files

UNITS = """\
cities:
  - {code: "3706", name: 烟台市}
districts:
  - {code: "370602", name: 芝罘区, parent: "3706"}
streets:
  - {code: "370602001", name: 向阳街道, parent: "370602"}
communities:
  - {code: "370602001001", name: 海港社区, parent: "370602001"}
grids:
  - {code: "37060200100101", name: 一网格, parent: "370602001001"}
  - {code: "37060200100102", name: 二网格, parent: "370602001001"}
departments:
  - {code: dept-housing, name: 区住建局, parent: "370602"}
"""


def square(x0: float, y0: float, side: float = 0.004) -> dict:
    return {"type": "Polygon", "coordinates": [[[x0, y0], [x0 + side, y0], [x0 + side, y0 + side],
                                                [x0, y0 + side], [x0, y0]]]}


def feature(grid: str, geometry: dict, community: str = "370602001001", **props) -> dict:
    return {"type": "Feature", "id": grid, "properties": {"grid": grid, "community": community, **props},
            "geometry": geometry}


def write(tmp_path, units: str = UNITS, features: list | None = None, addresses: str | None = None):
    files = [tmp_path / "units.yaml", tmp_path / "grids.geojson"]
    files[0].write_text(textwrap.dedent(units), encoding="utf-8")
    if features is None:
        features = [feature("37060200100101", square(121.39, 37.53)),
                    feature("37060200100102", square(121.394, 37.53))]
    files[1].write_text(json.dumps({"type": "FeatureCollection", "features": features}), encoding="utf-8")
    if addresses is not None:
        files.append(tmp_path / "addresses.csv")
        files[2].write_text(addresses, encoding="utf-8")
    return files


def problems(files) -> list[str]:
    with pytest.raises(OrganisationInvalid) as exc:
        check_org_files(files)
    return [str(p) for p in exc.value.problems]


def test_the_shipped_sample_is_valid_and_holds_the_demo_organisation_unchanged():
    from gridflow.demo.seed import SAMPLE_FILES, USERS

    plan = check_org_files(SAMPLE_FILES)
    kinds = [u.kind for u in plan.units.values()]
    assert kinds.count("district") == 1 and kinds.count("street") >= 3
    assert 4 <= kinds.count("community") <= 8 and kinds.count("grid") >= 24 and kinds.count("department") >= 8
    assert plan.units["dept-housing"].name == "区住建局" and plan.units["370602001001"].name == "海港社区"
    for i, grid in enumerate(["37060200100101", "37060200100102", "37060200100103", "37060200100201",
                              "37060200100202", "37060200100203", "37060200200101", "37060200200102",
                              "37060200200103", "37060200200201", "37060200200202", "37060200200203"]):
        lon0 = 121.39 + i * 0.004
        from shapely import wkt
        assert wkt.loads(plan.units[grid].boundary_wkt).equals(wkt.loads(
            rectangle(lon0, 37.53, lon0 + 0.004, 37.534)))
    assert all(unit in plan.units for _id, _n, _r, unit, _t in USERS)
    assert plan.addresses["海港路12号"] == "37060200100102"


def test_a_valid_set_of_files_becomes_a_plan_with_the_grids_polygons(tmp_path):
    plan = check_org_files(write(tmp_path))
    assert plan.units["37060200100101"].boundary_wkt.startswith("POLYGON")
    assert plan.units["dept-housing"].kind == "department" and plan.units["dept-housing"].boundary_wkt is None


def test_unknown_parent_duplicate_code_and_a_code_off_its_parents_prefix_are_reported_with_their_lines(
        tmp_path):
    units = UNITS + """\
units:
  - {code: "370602001", name: 重复街道, kind: street, parent: "370602"}
  - {code: "370602002001", name: 错码社区, kind: community, parent: "370602001"}
  - {code: "370602001009", name: 无主社区, kind: community, parent: "370602009"}
"""
    found = problems(write(tmp_path, units))
    f = tmp_path / "units.yaml"
    assert f"{f}:15: [unit 370602001] duplicate code '370602001' (first defined at {f}:6)" in found
    assert any(p.startswith(f"{f}:16: [unit 370602002001] code '370602002001' does not follow its parent's")
               for p in found)
    assert f"{f}:17: [unit 370602001009] unknown parent '370602009'" in found


def test_a_grid_code_must_be_its_communitys_and_two_digits_and_a_department_has_its_own_code(tmp_path):
    units = UNITS.replace('"37060200100102"', '"370602001001002"').replace("dept-housing", '"12345"')
    found = problems(write(tmp_path, units))
    assert any("[unit 370602001001002] code '370602001001002' does not follow its parent's: a grid code is "
               "its parent's '370602001001' and 2 more digits" in p for p in found)
    assert any("[unit 12345] code '12345' is not a department code" in p for p in found)


def test_a_unit_under_the_wrong_kind_of_parent_is_reported(tmp_path):
    units = UNITS.replace('name: 一网格, parent: "370602001001"', 'name: 一网格, parent: "370602001"')
    found = problems(write(tmp_path, units))
    assert any(":10: [unit 37060200100101] a grid's parent must be a community, not the street" in p
               for p in found)


def test_overlapping_grids_are_reported_by_feature_above_the_tolerance_only(tmp_path):
    found = problems(write(tmp_path, features=[feature("37060200100101", square(121.39, 37.53)),
                                               feature("37060200100102", square(121.392, 37.53))]))
    geo = tmp_path / "grids.geojson"
    assert any(p.startswith(f"{geo}: [feature 1 (grid 37060200100102)] overlaps grid '37060200100101' "
                            f"({geo} feature 0 (grid 37060200100101))") for p in found)
    # touching along an edge, or a sliver under the tolerance, is drawing noise
    check_org_files(write(tmp_path, features=[feature("37060200100101", square(121.39, 37.53)),
                                              feature("37060200100102", square(121.39399999, 37.53))]))


def test_orphans_both_ways_a_polygon_without_unit_and_a_grid_without_polygon(tmp_path):
    found = problems(write(tmp_path, features=[feature("37060200100101", square(121.39, 37.53)),
                                               feature("37060200100199", square(121.40, 37.53))]))
    assert f"{tmp_path / 'grids.geojson'}: [feature 1 (grid 37060200100199)] orphan polygon: no unit " \
           "'37060200100199' in the unit files" in found
    assert f"{tmp_path / 'units.yaml'}:11: [unit 37060200100102] orphan grid: no polygon for grid " \
           "'37060200100102' in the GeoJSON files" in found


def test_an_invalid_polygon_is_reported_with_shapelys_explanation(tmp_path):
    bowtie = {"type": "Polygon", "coordinates": [[[121.394, 37.53], [121.398, 37.534], [121.398, 37.53],
                                                  [121.394, 37.534], [121.394, 37.53]]]}
    found = problems(write(tmp_path, features=[feature("37060200100101", square(121.39, 37.53)),
                                               feature("37060200100102", bowtie)]))
    assert any("[feature 1 (grid 37060200100102)] invalid polygon: Self-intersection" in p for p in found)


def test_a_grid_outside_its_community_is_reported_when_the_community_has_a_boundary(tmp_path):
    features = [feature("37060200100101", square(121.39, 37.53)),
                feature("37060200100102", square(121.394, 37.53)),
                {"type": "Feature", "properties": {"code": "370602001001"},
                 "geometry": square(121.39, 37.53, 0.006)}]
    found = problems(write(tmp_path, features=features))
    assert any("[feature 1 (grid 37060200100102)] lies outside its community '370602001001'" in p
               for p in found)
    assert not any("feature 0" in p for p in found)


def test_a_feature_naming_another_community_than_the_unit_files_is_reported(tmp_path):
    found = problems(write(tmp_path, features=[feature("37060200100101", square(121.39, 37.53)),
                                               feature("37060200100102", square(121.394, 37.53),
                                                       community="370602001002")]))
    assert any("[feature 1 (grid 37060200100102)] the feature says community '370602001002'" in p
               for p in found)


def test_every_problem_of_every_file_comes_at_once(tmp_path):
    units = UNITS + 'units:\n  - {code: "370602001", name: 重复, kind: street, parent: "370602"}\n'
    found = problems(write(tmp_path, units, features=[feature("37060200100101", square(121.39, 37.53))],
                           addresses="address,grid\n海港路1号,37060200100101\n海港路2号,37060200199999\n"))
    assert len(found) == 3  # the duplicate, the grid without polygon, the address of an unknown grid
    assert f"{tmp_path / 'addresses.csv'}:3: [address 海港路2号] unknown unit '37060200199999'" in found


def test_units_may_come_as_csv_with_the_line_of_each_row(tmp_path):
    csv = tmp_path / "units.csv"
    csv.write_text("code,name,kind,parent\n3706,烟台市,city,\n370602,芝罘区,district,3706\n"
                   "370602001,向阳街道,street,370602\n370602001001,海港社区,street,370602001\n"
                   "dept-x,某局,bureau,370602\n", encoding="utf-8")
    found = problems([csv])
    assert f"{csv}:5: [unit 370602001001] a street's parent must be a district, not the street " \
           "'370602001'" in found
    assert f"{csv}:6: [unit dept-x] unknown unit kind 'bureau' (one of city, district, street, community, " \
           "grid, department)" in found


def test_malformed_yaml_is_reported_with_its_line(tmp_path):
    bad = tmp_path / "units.yaml"
    bad.write_text("streets:\n  - {code: 1\n", encoding="utf-8")
    (found,) = problems([bad])
    assert found.startswith(f"{bad}:") and "not valid YAML" in found
