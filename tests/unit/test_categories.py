"""The event catalogue: the loader's problems with file and line, layering city files over the shipped one,
suggestions, and timers whose length comes from the case's category (engine, manual clock)."""

from __future__ import annotations

import pytest

from gridflow.engine import Engine, ManualClock
from gridflow.engine.categories import (
    CATEGORY_LIMITS_KEY, CatalogueInvalid, load_catalogue, load_catalogue_files,
)
from gridflow.engine.errors import DefinitionError
from gridflow.service.categories import SHIPPED_CATEGORIES, build_categories, limits_read
from gridflow.service.catalog import WorkflowCatalog

from tests.unit.helpers import CALENDARS, COMMUNITY, DEPT, MONDAY_9, REPORTER, Runner, at, local, workflow

SHIPPED_TEXT = SHIPPED_CATEGORIES.read_text(encoding="utf-8")
WORKFLOWS = {"grid_event": frozenset({"acknowledge", "handle"}), "hotline_request": frozenset(),
             "dispute_mediation": frozenset(), "emergency_incident": frozenset(),
             "special_care_visit": frozenset()}


def problems_of(*texts: str, workflows=WORKFLOWS) -> list[str]:
    with pytest.raises(CatalogueInvalid) as refused:
        load_catalogue([(SHIPPED_TEXT, "shipped.yaml"), *((t, f"city{i}.yaml") for i, t in enumerate(texts))],
                       workflows=workflows)
    return [str(p) for p in refused.value.problems]


@pytest.fixture(scope="module")
def catalogue():
    catalog = WorkflowCatalog(CALENDARS)
    catalog.load_shipped()
    return build_categories(catalog)


# --- the shipped catalogue ----------------------------------------------------------------------

def test_the_shipped_catalogue_loads_against_the_shipped_workflows_with_every_kind(catalogue):
    kinds = {c.kind for c in catalogue.entries.values()}
    assert kinds == {"component", "event", "governance", "hotline"}
    assert {c.label.zh for c in catalogue.select("hotline")} == {"咨询", "求助", "投诉", "举报", "建议"}
    assert {catalogue.majors[m].zh for m in ("E01", "E02", "E03", "E04", "E05", "E06")} == {
        "市容环境", "宣传广告", "施工管理", "突发事件", "街面秩序", "其他事件"}
    assert {catalogue.majors[m].zh for m in ("C01", "C02", "C03", "C04", "C05", "C06")} == {
        "公用设施", "道路交通", "市容环境", "园林绿化", "房屋土地", "其他设施"}
    assert {catalogue.majors[m].zh for m in ("G01", "G02", "G03", "G04", "G05")} == {
        "矛盾纠纷", "治安隐患", "安全生产", "特殊人群", "消防安全"}


def test_shipped_limits_are_the_published_ones_and_assignment_follows_the_kind(catalogue):
    assert catalogue.get("E0102").limit_texts() == {"handle": "4wh"}  # exposed rubbish
    assert catalogue.get("E0103").limit_texts() == {"handle": "2wd"}  # muck
    assert catalogue.get("E0101").limit_texts() == {"acknowledge": "4wh", "handle": "20wd"}
    assert catalogue.get("C0101").assignment == ("owner", "territory")
    assert catalogue.get("E0102").assignment == ("territory", "owner")
    assert catalogue.get("G0101").workflow == "dispute_mediation"
    assert catalogue.get("H0103").workflow == "hotline_request"


def test_components_and_events_with_the_same_standard_number_have_distinct_codes(catalogue):
    assert catalogue.get("C0101").label.zh == "井盖" and catalogue.get("E0101").label.zh == "私搭乱建"
    assert catalogue.get("0101") is None


def test_grid_event_reads_the_acknowledge_and_handle_limits():
    catalog = WorkflowCatalog(CALENDARS)
    catalog.load_shipped()
    assert limits_read(catalog)["grid_event"] == {"acknowledge", "handle"}


# --- suggestions ------------------------------------------------------------------------------

def test_an_old_four_digit_code_suggests_every_kind_ending_in_it(catalogue):
    assert catalogue.suggest("0101")[:2] == ["C0101", "E0101"]


def test_a_label_in_either_language_suggests_its_code(catalogue):
    assert catalogue.suggest("暴露垃圾")[0] == "E0102"
    assert "E0102" in catalogue.suggest("rubbish")
    assert catalogue.suggest("") == []


# --- loader problems, each with file and line ------------------------------------------------

def test_every_problem_of_a_file_is_reported_with_its_file_and_line():
    bad = (
        "majors:\n"                                              # 1
        "  E07: {zh: 新大类}\n"                                   # 2  label without en
        "  X1: {zh: 坏, en: Bad}\n"                               # 3  bad major code
        "categories:\n"                                          # 4
        "  - {code: X01, label: {zh: 坏, en: Bad}}\n"             # 5  bad code
        "  - code: E0199\n"                                      # 6
        "    label: {zh: 新事件, en: New event}\n"                # 7
        "    urgency: very\n"                                    # 8  unknown urgency
        "    assignment: [owner, nobody]\n"                      # 9  unknown assignee
        "    limits: {handel: 2wh, handle: 5 parsecs}\n"         # 10 typo'd name, bad duration
        "  - {code: E0199, label: {zh: 重复, en: Dup}}\n"          # 11 duplicate
        "  - {code: E0901, label: {zh: 无大类, en: No major}, workflow: no_such}\n"  # 12
        "  - {code: E0198}\n"                                    # 13 new without label
        "  - {code: E0197, label: {zh: 甲, en: A}, colour: red}\n"  # 14 unknown key
    )
    found = problems_of(bad)
    expected = [
        ("city0.yaml:2:", "both 'zh' and 'en'"), ("city0.yaml:3:", "major class code 'X1'"),
        ("city0.yaml:5:", "code 'X01' must be a kind letter"), ("city0.yaml:8:", "unknown urgency 'very'"),
        ("city0.yaml:9:", "assignment must list"), ("city0.yaml:10:", "cannot parse duration"),
        ("city0.yaml:10:", "limit 'handel' is read by no workflow timer"),
        ("city0.yaml:11:", "duplicate code 'E0199' (first defined on line 6)"),
        ("city0.yaml:12:", "major class E09 is not declared"),
        ("city0.yaml:12:", "unknown workflow 'no_such'"),
        ("city0.yaml:13:", "a new category needs a label"), ("city0.yaml:14:", "unknown key 'colour'"),
    ]
    for where, what in expected:
        assert any(p.startswith(where) and what in p for p in found), (where, what, found)
    assert len(found) == len(expected), found


def test_broken_yaml_and_a_file_that_is_not_a_mapping_name_their_file_and_line():
    found = problems_of("categories:\n  - {code: E0102\n", "- just a list\n")
    assert any(p.startswith("city0.yaml:") and "not valid YAML" in p for p in found), found
    assert any(p.startswith("city1.yaml:1:") and "must be a mapping" in p for p in found), found


def test_an_unreadable_file_is_reported_by_name(tmp_path):
    with pytest.raises(CatalogueInvalid, match="cannot read file"):
        load_catalogue_files([tmp_path / "missing.yaml"])


def test_a_replacing_file_must_declare_its_own_majors_and_workflows():
    found = problems_of("replace: true\ncategories:\n  - {code: E0102, label: {zh: 暴露垃圾, en: Rubbish}}\n")
    assert any(p.startswith("city0.yaml:3:") and "major class E01 is not declared" in p for p in found)
    assert any(p.startswith("city0.yaml:3:") and "no workflow" in p for p in found), found


# --- a city's file over the shipped one -------------------------------------------------------

CITY = """\
majors:
  E07: {zh: 扩展事件, en: Local events}
categories:
  - {code: E0102, limits: {handle: 2wh}}
  - {code: E0101, urgency: emergency, limits: {acknowledge: null}}
  - {code: E0701, label: {zh: 海滩垃圾, en: Rubbish on the beach}, limits: {handle: 4wh}}
"""


def test_a_city_file_extends_the_catalogue_and_overrides_only_what_it_names():
    cat = load_catalogue([(SHIPPED_TEXT, "shipped.yaml"), (CITY, "zhifu.yaml")], workflows=WORKFLOWS)
    rubbish = cat.get("E0102")
    assert rubbish.limit_texts() == {"handle": "2wh"} and rubbish.label.zh == "暴露垃圾"
    assert rubbish.workflow == "grid_event" and rubbish.source == "zhifu.yaml"
    construction = cat.get("E0101")
    assert construction.urgency == "emergency" and construction.limit_texts() == {"handle": "20wd"}
    beach = cat.get("E0701")
    assert beach.kind == "event" and beach.major_label.zh == "扩展事件" and beach.workflow == "grid_event"
    assert beach.assignment == ("territory", "owner")
    assert len(cat) == len(load_catalogue([(SHIPPED_TEXT, "shipped.yaml")])) + 1


def test_a_replacing_file_drops_the_shipped_catalogue():
    own = """\
replace: true
majors: {H01: {zh: 诉求, en: Requests}}
defaults: {hotline: {workflow: hotline_request}}
categories:
  - {code: H0101, label: {zh: 咨询, en: Consultation}}
"""
    cat = load_catalogue([(SHIPPED_TEXT, "shipped.yaml"), (own, "own.yaml")], workflows=WORKFLOWS)
    assert list(cat.entries) == ["H0101"] and cat.get("H0101").urgency == "normal"


# --- timers whose length comes from the category (engine, manual clock) ----------------------

def _dispatched(grid_event, limits: dict[str, str] | None) -> Runner:
    run = Runner(Engine(grid_event, CALENDARS), ManualClock(MONDAY_9))
    run.open(REPORTER, data={CATEGORY_LIMITS_KEY: limits} if limits is not None else {})
    run.advance(hours=1)
    run.act("dispatch", COMMUNITY, {"department": "housing"})  # Monday 10:00
    return run


def test_exposed_rubbish_is_overdue_after_its_own_four_working_hours(grid_event):
    run = _dispatched(grid_event, {"handle": "4wh"})
    handle = run.deadline("handle")
    # 10:00-12:00 and 13:30-15:30: four working hours on the cn calendar.
    assert handle.duration == "4wh" and local(handle.due_at) == at(2026, 3, 9, 15, 30)
    started = [e for e in run.events if e.type == "DeadlineStarted" and e.data["timer"] == "handle"]
    assert started[-1].data["duration"] == "4wh"
    run.act("acknowledge", DEPT)
    run.advance_to(at(2026, 3, 9, 15, 29))
    assert "DeadlineBreached" not in run.types()
    run.advance_to(at(2026, 3, 9, 15, 31))
    breached = [e for e in run.events if e.type == "DeadlineBreached"]
    assert [e.data["timer"] for e in breached] == ["handle"]


def test_a_category_without_the_limit_runs_on_the_timers_own_duration(grid_event):
    run = _dispatched(grid_event, {"acknowledge": "4wh"})
    assert run.deadline("handle").duration == "16wh"
    assert run.deadline("acknowledge").duration == "4wh"
    plain = _dispatched(grid_event, None)
    assert plain.deadline("handle").duration == "16wh" and plain.deadline("acknowledge").duration == "1wd"
    assert plain.deadline("handle").due_at == run.deadline("handle").due_at


def test_the_limit_recorded_at_filing_carries_on_into_handling_without_a_new_allowance(grid_event):
    run = _dispatched(grid_event, {"handle": "2wd"})
    due = run.deadline("handle").due_at
    run.advance(hours=1)
    run.act("acknowledge", DEPT)
    assert run.deadline("handle").state == "handling" and run.deadline("handle").due_at == due
    assert "DeadlineRetimed" not in run.types()


def test_a_calendar_time_limit_counts_around_the_clock_and_a_broken_one_falls_back():
    defn = workflow("""\
name: t
version: 1
roles: [resident, community_dispatcher]
initial: open
states:
  open:
    stage: triage
    holder: community_dispatcher
    timers:
      - {name: answer, duration: 1wd, category_limit: answer}
  done: {stage: closed, final: true}
actions:
  close: {from: open, to: done, roles: [community_dispatcher]}
""")
    run = Runner(Engine(defn, CALENDARS), ManualClock(MONDAY_9))
    run.open(REPORTER, data={CATEGORY_LIMITS_KEY: {"answer": "2h"}})
    d = run.deadline("answer")
    assert d.calendar == "24x7" and local(d.due_at) == at(2026, 3, 9, 11, 0)
    broken = Runner(Engine(defn, CALENDARS), ManualClock(MONDAY_9))
    broken.open(REPORTER, data={CATEGORY_LIMITS_KEY: {"answer": "soon"}})
    assert broken.deadline("answer").duration == "1wd"


def test_a_timer_naming_a_category_limit_badly_is_refused_with_its_line():
    with pytest.raises(DefinitionError) as refused:
        workflow("""\
name: t
version: 1
roles: [resident, community_dispatcher]
initial: open
states:
  open:
    stage: triage
    timers:
      - name: answer
        duration: 1wd
        category_limit: Answer Now
  done: {stage: closed, final: true}
actions:
  close: {from: open, to: done, roles: [community_dispatcher]}
""")
    assert any(p.line == 11 and "category_limit must name" in p.message for p in refused.value.problems)
