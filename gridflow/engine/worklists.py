"""Whose worklist a case is on: the one rule the service's worklist query and the invariant test share.

A case is on the worklist of role R (at some unit) when

- R holds the case's state (``holder:``) and sits where it can see the case: a department handler at the
  department holding it, a grid worker in its grid, a community / street / district dispatcher in the
  community / street / district the case lies in or at the unit holding it (others: anywhere in the area
  above it);
- R stands in for a role the case's place lacks: a state held by the community dispatcher, for a case
  lying in no community (a report outside every grid is filed in the triage pool of the street, or else
  the district, it lies in), is worked by the street's dispatcher, or the district's; a state held by
  the grid worker, for a case lying in no grid, by the dispatcher of the lowest area it lies in; a state
  held by department handlers, while a community, street or district holds the case itself (it handled
  the case locally, or took it over, and it came back for rework), by that unit's dispatcher;
- R works the level the case is escalated to (``escalation.handlers``), at the escalation unit;
- R is the supervisor and the case is supervised (督办);
- R is a department handler with an open co-handling part (协办) of the case.

:func:`worklist_roles` applies the rule to one snapshot; ``service.lists.worklist`` writes the same arms
as SQL, taking the levels each role works from :func:`worklist_rule`. The property test over every shipped
workflow holds the rule to the invariant (every open case is on a worklist of a role that can act on it);
the integration tests hold the query to the rule.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from types import MappingProxyType
from typing import Mapping

from .case import CaseSnapshot
from .definition import WorkflowDefinition
from .guards import ESCALATION_UNITS
from .parts import open_parts

#: The area a role must sit in to see a case it holds (roles not named: anywhere above the case).
HOME_AREA: Mapping[str, str] = {"community_dispatcher": "community", "street_dispatcher": "street",
                                "district_dispatcher": "district", "grid_worker": "grid"}
#: Roles that see only the cases their own unit holds.
HOLDER_UNIT_ROLES = frozenset({"department_handler"})
#: Roles tied to an area a case may not lie in, and the area; and the department's role, stood in for by
#: the dispatcher of the area unit holding a case.
STOOD_IN_FOR: Mapping[str, str] = {"grid_worker": "grid", "community_dispatcher": "community",
                                   "department_handler": "department"}
#: Who stands in, by the lowest area the case does lie in.
STAND_INS: Mapping[str, str] = {"community": "community_dispatcher", "street": "street_dispatcher",
                                "district": "district_dispatcher"}
SUPERVISION_ROLE = "supervisor"
CO_HANDLER_ROLE = "department_handler"


@dataclass(frozen=True)
class CasePlace:
    """Where a case lies: the area kinds it is in (grid, community, street, district, city) and the kind
    of the unit holding it."""

    areas: frozenset[str]
    holder_kind: str | None = None

    def stand_in(self, role: str) -> str | None:
        """Who works what ``role`` would, for a case lying outside the area ``role`` works in: the
        dispatcher of the lowest area the case lies in (None: the case lies in that area)."""
        needed = STOOD_IN_FOR.get(role)
        if needed == "department":
            return STAND_INS.get(self.holder_kind or "")
        if needed is None or needed in self.areas:
            return None
        lowest = next((k for k in ("community", "street", "district") if k in self.areas), "district")
        return STAND_INS[lowest] if STAND_INS[lowest] != role else None


@dataclass(frozen=True)
class WorklistRule:
    """Which cases of one workflow version are on role R's worklist."""

    role: str
    holder_states: frozenset[str]
    #: state -> the roles holding it that ``role`` may stand in for
    stand_in_states: Mapping[str, frozenset[str]]
    escalation_levels: frozenset[int]
    supervised: bool
    co_handling: bool


def worklist_rule(definition: WorkflowDefinition, role: str) -> WorklistRule:
    holder = frozenset(s.name for s in definition.states.values() if not s.final and role in s.holder_roles)
    stand_in: dict[str, frozenset[str]] = {}
    if role in STAND_INS.values():
        for s in definition.states.values():
            stood = frozenset(r for r in s.holder_roles if r in STOOD_IN_FOR and r != role)
            if stood and not s.final:
                stand_in[s.name] = stood
    ladder = definition.escalation
    levels = frozenset(i for i in range(1, len(ladder.levels)) if role in ladder.handlers_at(i))
    return WorklistRule(role, holder, MappingProxyType(stand_in), levels, role == SUPERVISION_ROLE,
                        role == CO_HANDLER_ROLE)


def _sees_held(role: str, where: CasePlace) -> bool:
    if role in HOLDER_UNIT_ROLES:
        return where.holder_kind == "department"
    home = HOME_AREA.get(role)
    return home is None or home in where.areas or home == where.holder_kind


def on_worklist(rule: WorklistRule, snap: CaseSnapshot, where: CasePlace) -> bool:
    if snap.is_closed:
        return False
    if snap.state in rule.holder_states and _sees_held(rule.role, where):
        return True
    if any(where.stand_in(r) == rule.role for r in rule.stand_in_states.get(snap.state, ())):
        return True
    if snap.escalation_level in rule.escalation_levels:
        return True
    if rule.supervised and snap.supervised:
        return True
    return rule.co_handling and bool(open_parts(snap.data))


def worklist_roles(definition: WorkflowDefinition, snap: CaseSnapshot, where: CasePlace) -> frozenset[str]:
    """The roles on whose worklist the case is."""
    return frozenset(r for r in definition.roles if on_worklist(worklist_rule(definition, r), snap, where))


# --- where an escalation goes -----------------------------------------------------------------

#: Area unit kinds from the bottom up: a level is served by a unit of that kind, or of a kind above it.
AREA_RANK: Mapping[str, int] = {"grid": 0, "community": 1, "street": 2, "district": 3, "city": 4}


@dataclass(frozen=True)
class EscalationRoute:
    """The unit a case escalated to ``level`` goes to, and the units above it (``chain``)."""

    level: str
    unit: str | None
    unit_kind: str | None
    chain: tuple[str, ...] = ()
    note: str | None = None


def route_escalation(place: list[tuple[str, str]], level: str) -> EscalationRoute:
    """The unit of ``level`` above the case's place (``place``: the place and its ancestors, bottom up, as
    (code, kind)). Where no unit of that kind exists (a district without streets, a case filed at the
    district because it lay outside every grid), the nearest unit above that level serves it, and the
    route says so."""
    want = AREA_RANK.get(level)
    for i, (code, kind) in enumerate(place):
        if kind == level or (want is not None and AREA_RANK.get(kind, -1) >= want):
            chain = tuple(c for c, _ in place[i:])
            note = None if kind == level else (
                f"no {level} unit above the case's place; routed to the nearest unit above it "
                f"({kind} {code})")
            return EscalationRoute(level, code, kind, chain, note)
    return EscalationRoute(level, None, None, (),
                           f"no unit at or above the {level} level above the case's place")


def routed(snap: CaseSnapshot, route: EscalationRoute, definition: WorkflowDefinition) -> CaseSnapshot:
    """The snapshot once its escalation is routed: the chain of units that may act from above is kept in
    the case data (the ``at_escalation_unit`` guard reads it), and a case routed to a unit of a higher
    level than asked for is at that unit's level (its handlers work it)."""
    if route.unit is None:
        return snap
    levels = definition.escalation.levels
    level = snap.escalation_level
    if route.unit_kind in levels and route.unit_kind != route.level:
        level = max(level, levels.index(route.unit_kind))
    data = dict(snap.data)
    data[ESCALATION_UNITS] = list(route.chain)
    return replace(snap, data=MappingProxyType(data), escalation_level=level)
