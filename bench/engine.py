"""How much the engine costs over a bare ``transitions`` machine, per decision.

Drives grid_event cases through the :class:`~gridflow.engine.Engine` — actions
and timer firings, with real deadline arithmetic on the "cn" working calendar
(deadlines started, stopped, paused, resumed, extended, warned, breached and
escalated) — and, in the same run, as many bare ``Event.trigger`` calls on an
equivalent ``transitions`` machine (same states and transitions, one machine
shared by all models, no callbacks). Best of ``--rounds`` for each side.

    .venv/bin/python bench/engine.py [--ops 30000] [--rounds 5]

Last line: ``RESULT engine_per_s=… bare_per_s=… ratio=…`` (ratio = engine / bare; target >= 0.3).
"""

from __future__ import annotations

import argparse
import sys
import time
from functools import partial
from datetime import datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from transitions import Machine  # noqa: E402

from gridflow.engine import Actor, Engine, default_registry, load_file  # noqa: E402

SH = ZoneInfo("Asia/Shanghai")
START = datetime(2026, 9, 14, 9, 0, tzinfo=SH).astimezone(timezone.utc)  # a Monday morning; clocks give UTC
REPORTER = Actor("resident-1", "resident", None)
DISPATCHER = Actor("disp-1", "community_dispatcher", "community-1")
HANDLER = Actor("dept-1", "department_handler", "housing")
CHECKER = Actor("grid-1", "grid_worker", "community-1")

# (kind, name, actor, payload, minutes to wait first). kind "act" takes an action,
# "fire" fires the named deadline's pending timer of that kind at its due time.
SCRIPT = [
    ("fire", "warning", None, None, 0),
    ("act", "dispatch", DISPATCHER, {"department": "housing"}, 20),
    ("fire", "breach", None, None, 0),  # acknowledgement late: escalates to the street
    ("act", "acknowledge", HANDLER, None, 30),
    ("act", "request_extension", HANDLER, {"duration": "2wd", "reason": "材料待补"}, 60),
    ("act", "approve_extension", DISPATCHER, None, 45),
    ("act", "request_suspension", HANDLER, {"reason_code": "resident_unavailable", "reason": "业主外出",
                                            "duration": "5wd"}, 60),
    ("act", "approve_suspension", DISPATCHER, None, 30),
    ("act", "resume", HANDLER, None, 60 * 20),
    ("act", "reply", HANDLER, {"result": "已修复"}, 120),
    ("act", "rate", REPORTER, {"rating": "dissatisfied"}, 60),
    ("act", "reply", HANDLER, {"result": "已返工"}, 180),
    ("fire", "breach", None, None, 0),  # nobody rated: rate_by_default moves it to review
    ("act", "verify_pass", CHECKER, None, 30),
]
SCRIPT = [(kind, name, actor, payload, timedelta(minutes=wait))
          for kind, name, actor, payload, wait in SCRIPT]
# The state-changing triggers of the same script, for the bare machine.
BARE_SCRIPT = [
    ("dispatch", None), ("acknowledge", None), ("approve_suspension", None), ("resume", None),
    ("reply", None), ("rate", {"rating": "dissatisfied"}), ("reply", None), ("rate_by_default", None),
    ("verify_pass", None),
]


def run_engine(engine: Engine, ops: int) -> tuple[int, float]:
    """Drive whole cases until ``ops`` decisions were taken; (decisions, seconds)."""
    done = 0
    n = 0
    t0 = time.perf_counter()
    while done < ops:
        n += 1
        now = START + timedelta(minutes=n % 600)
        decision = engine.open(f"GE-{n}", REPORTER, now, origin_unit="community-1")
        case = decision.case
        # The script fires the newest timer of a kind (of one decision's, the one due first).
        latest = {t.kind: t for t in sorted(decision.schedule, key=lambda t: t.due_at, reverse=True)}
        done += 1
        for kind, name, actor, payload, wait in SCRIPT:
            if kind == "act":
                now += wait
                decision = engine.act(case, name, actor, payload, now)
            else:
                timer = latest[name]
                now = max(now, timer.due_at)
                decision = engine.fire(case, timer, now)
            done += 1
            case = decision.case
            for t in sorted(decision.schedule, key=lambda t: t.due_at, reverse=True):
                latest[t.kind] = t
        assert case.state == "closed", case.state
    return done, time.perf_counter() - t0


class _Model:
    __slots__ = ("state",)

    def __init__(self, state: str) -> None:
        self.state = state


def _route_holds(route, payload=None) -> bool:
    return (payload or {}).get(route.field) in route.values


def bare_machine(engine: Engine) -> Machine:
    """The same states and transitions, built afresh, with route conditions as plain callables."""
    defn = engine.definition
    transitions = []
    for a in defn.actions.values():
        for r in a.routes:
            transitions.append({"trigger": a.name, "source": list(a.sources), "dest": r.dest,
                                "conditions": [partial(_route_holds, r)]})
        if a.dest is not None:
            transitions.append({"trigger": a.name, "source": list(a.sources), "dest": a.dest})
    return Machine(model=None, states=list(defn.states), initial=defn.initial, auto_transitions=False,
                   transitions=transitions)


def run_bare(machine: Machine, ops: int) -> tuple[int, float]:
    events = machine.events
    done = 0
    t0 = time.perf_counter()
    while done < ops:
        model = _Model(machine.initial)
        for name, payload in BARE_SCRIPT:
            events[name].trigger(model, payload=payload)
            done += 1
            if done == ops:
                break
        else:
            assert model.state == "closed", model.state
    return done, time.perf_counter() - t0


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ops", type=int, default=30_000, help="decisions per side per round")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)

    defn = load_file(ROOT / "gridflow" / "workflows" / "grid_event.yaml")
    engine = Engine(defn, default_registry())
    machine = bare_machine(engine)
    run_engine(engine, 500)  # warm up: load the year's holidays, fill the day cache
    run_bare(machine, 500)

    best_engine = best_bare = 0.0
    for i in range(args.rounds):
        n_e, s_e = run_engine(engine, args.ops)
        n_b, s_b = run_bare(machine, n_e)
        best_engine = max(best_engine, n_e / s_e)
        best_bare = max(best_bare, n_b / s_b)
        print(f"round {i + 1}: engine {n_e} decisions in {s_e:.3f}s ({n_e / s_e:,.0f}/s, "
              f"{s_e / n_e * 1e6:.1f} µs each); bare {n_b} triggers in {s_b:.3f}s ({n_b / s_b:,.0f}/s, "
              f"{s_b / n_b * 1e6:.1f} µs each)")
    ratio = best_engine / best_bare
    print(f"script per case: 1 open + {len(SCRIPT)} decisions "
          f"({sum(k == 'fire' for k, *_ in SCRIPT)} timer firings); "
          f"bare: {len(BARE_SCRIPT)} triggers per model")
    print(f"RESULT engine_per_s={best_engine:.0f} bare_per_s={best_bare:.0f} ratio={ratio:.3f}")


if __name__ == "__main__":
    main()
