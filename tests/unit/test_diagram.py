"""Workflow diagrams as Mermaid stateDiagram-v2, in Chinese and English."""

from __future__ import annotations

import re

import pytest

from gridflow.engine.diagram import to_mermaid
from tests.unit.helpers import workflow

EDGE = re.compile(r"^    (\S+) --> (\S+)(?: : (.*))?$")
DECLARED = re.compile(r'^    state "([^"]*)" as (\w+)$')


def edges(text: str) -> list[tuple[str, str, str]]:
    return [(m[1], m[2], m[3] or "") for line in text.splitlines() if (m := EDGE.match(line))]


def declared(text: str) -> dict[str, str]:
    return {m[2]: m[1] for line in text.splitlines() if (m := DECLARED.match(line))}


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_every_shipped_workflow_draws_every_state_and_every_move(shipped, lang):
    for defn in shipped.values():
        text = to_mermaid(defn, lang)
        assert text.startswith(f"---\ntitle: {defn.label.get(lang)} ({defn.key})\n---\nstateDiagram-v2\n")
        states = declared(text)
        assert states == {name: st.label.get(lang) for name, st in defn.states.items()}
        drawn = edges(text)
        assert ("[*]", defn.initial, "") in drawn
        assert {s for s, d, _ in drawn if d == "[*]"} == set(defn.final_states)
        for source, dest, _ in drawn:
            assert source in set(states) | {"[*]"} and dest in set(states) | {"[*]"}
        moves = {(s, d) for a in defn.actions.values() for s in a.sources for d in a.destinations}
        assert {(s, d) for s, d, _ in drawn if "[*]" not in (s, d)} == moves


def test_states_are_annotated_and_coloured_by_stage(grid_event):
    text = to_mermaid(grid_event, "zh")
    assert "    %% 阶段: 部门响应" in text
    assert "    handling : 部门响应" in text
    assert "    class dispatched,handling,taken_over,suspended stage_response" in text
    # one style per stage that has states (grid_event declares "report" for the channels, with none)
    assert text.count("classDef stage_") == len({s.stage for s in grid_event.states.values()}) == 5
    assert "    %% 升级层级: 社区 → 街道 → 区县 → 市" in text


def test_edges_carry_action_labels_and_routes_show_their_condition(grid_event):
    zh = edges(to_mermaid(grid_event, "zh"))
    assert ("reported", "dispatched", "派遣") in zh
    assert ("awaiting_feedback", "handling", "评价 (满意度=dissatisfied)") in zh
    assert ("awaiting_feedback", "reviewing", "评价 (其他)") in zh
    en = edges(to_mermaid(grid_event, "en"))
    assert ("awaiting_feedback", "handling", "Rate (Rating=dissatisfied)") in en
    assert ("awaiting_feedback", "reviewing", "Rate (otherwise)") in en


def test_breach_actions_and_escalations_are_marked(grid_event, shipped):
    zh = edges(to_mermaid(grid_event, "zh"))
    assert ("awaiting_feedback", "reviewing", "⏱ 默认满意") in zh
    assert ("reported", "street_triage", "上报街道 ↑") in zh
    mediation = edges(to_mermaid(shipped["dispute_mediation"], "en"))
    assert ("mediating", "mediating", "Hand up to the next level ↑") in mediation


def test_boolean_routes_read_as_words(shipped):
    en = edges(to_mermaid(shipped["hotline_request"], "en"))
    assert ("contacting", "handling_complex", "Contact the requester (Complex=yes)") in en
    zh = edges(to_mermaid(shipped["hotline_request"], "zh"))
    assert ("contacting", "handling_complex", "联系诉求人 (疑难复杂=是)") in zh


def test_notes_give_timers_pauses_and_actions_that_keep_the_state(grid_event):
    text = to_mermaid(grid_event, "en")
    handling = text.split("    note right of handling\n", 1)[1].split("    end note", 1)[0]
    assert "⏲ Handling deadline 16wh; or the category's handle limit; warn at 75%; on breach: escalate, " \
           "supervise, notify department " \
           "handler/supervisor; again every 5wd" in handling
    assert ("also: Request extension, Approve extension, Deny extension, Request suspension, "
            "Deny suspension, Supervise") in handling
    assert "SLA clock paused" in text.split("    note right of suspended\n", 1)[1]
    zh = to_mermaid(grid_event, "zh")
    assert "⏲ 评价时限 3wd；超期：⏱ 默认满意" in zh
    assert "⏲ 签收时限 1wd；事项有acknowledge时限的按事项；预警 75%" in zh
    assert "note" not in to_mermaid(grid_event, "zh", notes=False)


def test_text_that_would_break_mermaid_is_defused():
    defn = workflow("""
name: awkward
label: {zh: '甲:乙', en: 'a "quoted"; name'}
roles: [resident]
initial: a
states:
  a: {label: {zh: '状态"一"', en: 'state: one; {x}'}}
  done: {final: true}
actions:
  go: {from: a, to: done, roles: [resident], label: {zh: 完成, en: 'go: now; #1'}}
""")
    text = to_mermaid(defn, "en")
    assert "title: a 'quoted'； name (awkward@1)" in text
    assert '    state "state： one； (x)" as a' in text
    assert ("a", "done", "go： now； ＃1") in edges(text)


def test_an_unknown_language_is_refused(grid_event):
    with pytest.raises(ValueError, match="'zh' or 'en'"):
        to_mermaid(grid_event, "fr")
