"""Loading the organisation into a real database (SQLite and PostgreSQL): atomic, recorded as a diff,
units retired rather than deleted, open cases left where they are; reports located by point, by
address, or sent to the district's triage pool."""

from __future__ import annotations

import json
import shutil

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from gridflow.demo.seed import SAMPLE_FILES, grid_center
from gridflow.engine.case import Actor
from gridflow.engine.errors import OrganisationInvalid
from gridflow.service.organisation import list_org_changes, load_org_files
from tests.integration.helpers import report, snapshot

HOTLINE = Actor("op-1", "hotline_operator", "370602")
LAST_GRID = "37060200300206"  # 金沙社区第6网格


@pytest.fixture
def sample(tmp_path):
    """A copy of the sample to edit: ``sample.units`` (text), ``sample.features`` (list), then ``files()``."""
    class Sample:
        units = SAMPLE_FILES[0].read_text(encoding="utf-8")
        grids = json.loads(SAMPLE_FILES[1].read_text(encoding="utf-8"))
        addresses = SAMPLE_FILES[2].read_text(encoding="utf-8")

        def drop_grid(self, code: str) -> None:
            self.units = "\n".join(line for line in self.units.splitlines() if code not in line) + "\n"
            self.grids["features"] = [f for f in self.grids["features"] if f["id"] != code]
            kept = [line for line in self.addresses.splitlines() if code not in line]
            self.addresses = "\n".join(kept) + "\n"

        def files(self):
            out = [tmp_path / "units.yaml", tmp_path / "grids.geojson", tmp_path / "addresses.csv"]
            out[0].write_text(self.units, encoding="utf-8")
            out[1].write_text(json.dumps(self.grids, ensure_ascii=False), encoding="utf-8")
            out[2].write_text(self.addresses, encoding="utf-8")
            return out

    return Sample()


def units_table(app) -> list[tuple]:
    with app.services.db.connect() as conn:
        return sorted(conn.execute(sa.text("select code, name, kind, parent_code, boundary_wkt, retired "
                                           "from units")).all())


def reported(app, number: str) -> dict:
    _row, events, _timers = snapshot(app.services, number)
    return next(e.data for e in events if e.type == "CaseReported")


def test_the_seed_is_the_first_recorded_change_and_loading_the_same_files_again_changes_nothing(app):
    (seed,) = list_org_changes(app.services)
    assert seed.actor == "demo-seed" and len(seed.diff["added"]) == 66
    assert load_org_files(app.services, SAMPLE_FILES, "admin") is None
    assert len(list_org_changes(app.services)) == 1


def test_a_reload_is_one_recorded_change_with_its_diff_added_renamed_moved_reshaped_retired(app, sample):
    sample.units = sample.units.replace("name: 胜利社区,", "name: 胜利里社区,").replace(
        'name: 区水务局, parent: "370602"}', 'name: 区水务局, parent: "370602001"}')
    sample.drop_grid(LAST_GRID)
    ring = sample.grids["features"][0]["geometry"]["coordinates"][0]
    ring[2][1] = ring[3][1] = 37.5335  # 海港社区第1网格 loses a strip on its north side
    change = load_org_files(app.services, sample.files(), "张工")
    assert change is not None and change.actor == "张工" and "units.yaml" in change.source
    assert change.diff["renamed"] == [{"code": "370602001002", "from": "胜利社区", "to": "胜利里社区"}]
    assert change.diff["moved"] == [{"code": "dept-water", "from": "370602", "to": "370602001"}]
    assert change.diff["reshaped"] == [{"code": "37060200100101"}]
    assert change.diff["retired"] == [{"code": LAST_GRID, "name": "金沙社区第6网格", "kind": "grid"}]
    assert change.diff["addresses"] == {"removed": 2}
    assert change.summary == "1 renamed, 1 moved, 1 reshaped, 1 retired, 2 address(es) removed"
    assert [c.id for c in list_org_changes(app.services)] == [change.id, change.id - 1]


def test_invalid_files_change_nothing_at_all(app, sample):
    before = units_table(app)
    sample.units = sample.units.replace("name: 胜利社区,", "name: 胜利里社区,")
    sample.grids["features"][1]["geometry"] = sample.grids["features"][0]["geometry"]  # overlap
    with pytest.raises(OrganisationInvalid) as exc:
        load_org_files(app.services, sample.files(), "admin")
    assert "overlaps grid '37060200100101'" in str(exc.value)
    assert units_table(app) == before and len(list_org_changes(app.services)) == 1


def test_a_unit_gone_from_the_files_is_retired_not_deleted_and_its_open_case_keeps_its_grid(app, sample):
    lat, lon = grid_center(LAST_GRID)
    number = report(app.services, reporter=HOTLINE, lat=lat, lon=lon).number
    sample.drop_grid(LAST_GRID)
    load_org_files(app.services, sample.files(), "admin")
    assert [r[5] for r in units_table(app) if r[0] == LAST_GRID] == [True]
    row, _events, _timers = snapshot(app.services, number)
    assert row.origin_unit == LAST_GRID and row.community_code == "370602003002"  # nothing rewrote it
    again = report(app.services, reporter=HOTLINE, lat=lat, lon=lon).number
    assert snapshot(app.services, again)[0].origin_unit == "370602"  # the retired grid locates nothing
    assert reported(app, again)["located_by"] == "none"


def test_a_retired_unit_back_in_the_files_is_restored(app, sample):
    sample.drop_grid(LAST_GRID)
    load_org_files(app.services, sample.files(), "admin")
    change = load_org_files(app.services, SAMPLE_FILES, "admin")
    assert change.diff["restored"] == [{"code": LAST_GRID, "name": "金沙社区第6网格"}]
    assert change.diff["addresses"] == {"added": 2}


def test_a_report_is_located_by_its_point_and_the_history_says_so(app):
    lat, lon = grid_center("37060200300104")  # a grid the sample adds (新港社区)
    r = report(app.services, reporter=HOTLINE, lat=lat, lon=lon)
    row, _events, _timers = snapshot(app.services, r.number)
    assert (row.origin_unit, row.holder_unit, row.street_code) == \
        ("37060200300104", "370602003001", "370602003")
    assert reported(app, r.number)["located_by"] == "point"


def test_a_report_without_coordinates_is_located_by_its_address_in_the_address_table(app):
    r = report(app.services, reporter=HOTLINE, address="芝罘区 海港路１２号 3单元")
    row, _events, _timers = snapshot(app.services, r.number)
    assert row.origin_unit == "37060200100102" and row.holder_unit == "370602001001"
    assert reported(app, r.number)["located_by"] == "address"


def test_an_address_not_in_the_table_is_matched_against_the_units_names(app):
    r = report(app.services, reporter=HOTLINE, address="金沙社区北门外")
    row, _events, _timers = snapshot(app.services, r.number)
    assert row.origin_unit == "370602003002" and row.holder_unit == "370602003002"
    assert reported(app, r.number)["located_by"] == "address"


def test_a_point_outside_every_grid_goes_to_the_districts_triage_pool_with_no_grid(app):
    r = report(app.services, reporter=HOTLINE, lat=36.0, lon=120.0)
    row, _events, _timers = snapshot(app.services, r.number)
    assert (row.origin_unit, row.holder_unit, row.community_code) == ("370602", "370602", None)
    assert reported(app, r.number)["located_by"] == "none"


def test_a_report_naming_its_unit_keeps_it_and_says_so(app):
    r = report(app.services, reporter=HOTLINE, unit="37060200100103", lat=36.0, lon=120.0)
    assert snapshot(app.services, r.number)[0].origin_unit == "37060200100103"
    assert reported(app, r.number)["located_by"] == "unit"


# --- the CLI -------------------------------------------------------------------------------------

def test_org_load_prints_the_change_and_org_changes_lists_it(make_app, sqlite_url, sample):
    from gridflow.cli import app as cli

    make_app(sqlite_url).close()
    db = sqlite_url.removeprefix("sqlite:///")
    sample.drop_grid(LAST_GRID)
    result = CliRunner().invoke(cli, ["org", "load", "--db", db, "--as", "张工", *map(str, sample.files())])
    assert result.exit_code == 0, result.output
    assert "loaded: change #2 — 1 retired, 2 address(es) removed" in result.output
    assert f"retired   {LAST_GRID} 金沙社区第6网格" in result.output
    listed = CliRunner().invoke(cli, ["org", "changes", "--db", db])
    assert listed.exit_code == 0 and "#2" in listed.output and "张工" in listed.output
    assert "#1" in listed.output and "demo-seed" in listed.output


def test_org_validate_lists_every_problem_with_file_and_line_and_exits_1(tmp_path, sample):
    from gridflow.cli import app as cli

    sample.units = sample.units.replace('parent: "370602001"}', 'parent: "370602009"}', 1)
    files = sample.files()
    result = CliRunner().invoke(cli, ["org", "validate", *map(str, files)])
    assert result.exit_code == 1
    assert f"{files[0]}:13: [unit 370602001001] unknown parent '370602009'" in result.output
    assert "problem(s) in the organisation files" in result.output
    ok = CliRunner().invoke(cli, ["org", "validate", *map(str, SAMPLE_FILES)])
    assert ok.exit_code == 0 and "42 grid(s)" in ok.output


def test_org_load_of_invalid_files_says_nothing_was_loaded(make_app, sqlite_url, tmp_path):
    from gridflow.cli import app as cli

    make_app(sqlite_url).close()
    shutil.copy(SAMPLE_FILES[0], tmp_path / "units.yaml")  # grids without polygons
    result = CliRunner().invoke(cli, ["org", "load", "--db", sqlite_url.removeprefix("sqlite:///"),
                                      str(tmp_path / "units.yaml")])
    assert result.exit_code == 1 and "orphan grid" in result.output and "nothing was loaded" in result.output


def test_the_demo_seed_loads_the_organisation_files_the_settings_name(make_app, sqlite_url, sample):
    sample.units = sample.units.replace("name: 金沙社区,", "name: 金沙湾社区,")
    app = make_app(sqlite_url, org_files=sample.files())
    assert [r[1] for r in units_table(app) if r[0] == "370602003002"] == ["金沙湾社区"]
    (seed,) = list_org_changes(app.services)
    assert "units.yaml" in seed.source and str(SAMPLE_FILES[0]) not in seed.source
