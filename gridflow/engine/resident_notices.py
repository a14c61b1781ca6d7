"""What the reporting resident is told, and when (受理回执, 一次性告知, 延期告知, 办结告知, 重办告知).

Pure: from the events one change appends, the messages for the resident, in Chinese. The service
queues them in the outbox in the same transaction as the change; a notifier (SMS, WeChat, the log)
delivers them. The receipt tells everything needed at once (一次性告知): the case number, the unit
that owns it, what happens next and how to follow it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Mapping

#: Outbox kinds of resident notices (``resident.`` routes them to the resident's notifiers only).
RECEIPT, EXTENSION, COMPLETION, REWORK = ("resident.receipt", "resident.extension", "resident.completion",
                                          "resident.rework")
RESIDENT_KINDS = (RECEIPT, EXTENSION, COMPLETION, REWORK)

_TEXTS = {
    RECEIPT: ("【受理回执】您反映的问题已受理，编号{number}，由{unit}负责办理。"
              "我们将分派责任单位按时限处置，办理中如需延期会告知原因，办结后请您评价。"
              "凭编号可随时查询进度。"),
    EXTENSION: "【延期告知】您反映的问题（编号{number}）办理时限已延长，原因：{reason}。",
    COMPLETION: ("【办结告知】您反映的问题（编号{number}）已办结，办理结果：{result}。"
                 "请对办理结果进行评价（满意/基本满意/不满意）。"),
    REWORK: "【重办告知】您反映的问题（编号{number}）已安排重新办理，原因：{reason}。",
}
_ACTION_KINDS = {"extension_approval": EXTENSION, "reply": COMPLETION, "rework": REWORK}
#: Action kinds that send a case back for rework when they lead into the response stage.
_SENDS_BACK = ("rate", "review_fail")
#: Longest text taken from a case into a message (an SMS is short; the rest is on the case page).
_MAX_PART = 120


@dataclass(frozen=True)
class ResidentNotice:
    kind: str
    message: str
    data: Mapping[str, Any]


def _short(text: Any) -> str:
    s = " ".join(str(text or "").split())
    return s if len(s) <= _MAX_PART else s[:_MAX_PART - 1] + "…"


def _first(*values: Any) -> str:
    return next((_short(v) for v in values if v), "")


def resident_notices(number: str, events: Iterable[Any], case_data: Mapping[str, Any], owner_unit: str,
                     response_states: frozenset[str] = frozenset()) -> list[ResidentNotice]:
    """The notices for the resident that ``events`` (with ``type`` and ``data``) call for.

    ``case_data`` is the case's data after the change (the reason an extension was approved with, the
    result); ``owner_unit`` the name of the unit that holds the case. A rework (重办) is an action of
    kind ``rework``, or a dissatisfied rating or a failed review that sends the case back into one of
    ``response_states`` (the workflow's response stage)."""
    out: list[ResidentNotice] = []
    for e in events:
        if e.type == "CaseReported":
            out.append(_notice(RECEIPT, number, unit=owner_unit or "受理单位"))
            continue
        if e.type != "ActionTaken":
            continue
        kind = _ACTION_KINDS.get(e.data.get("kind"))
        if e.data.get("kind") in _SENDS_BACK and e.data.get("to_state") in response_states:
            kind = REWORK
        payload = e.data.get("payload") or {}
        if kind == EXTENSION:
            out.append(_notice(kind, number, reason=_first(
                case_data.get("extension_reason_for_requester"), payload.get("reason_for_requester"),
                case_data.get("extension_reason"), payload.get("reason"), "工作需要")))
        elif kind == COMPLETION:
            out.append(_notice(kind, number, result=_first(payload.get("result"), payload.get("reply"),
                                                           case_data.get("result"), "已按规定办理")))
        elif kind == REWORK:
            reason = _first(payload.get("reason"), case_data.get("rework_reason"),
                            "您对办理结果不满意" if e.data.get("kind") == "rate" else "办理结果未达要求")
            out.append(_notice(kind, number, reason=reason))
    return out


def _notice(kind: str, number: str, **values: str) -> ResidentNotice:
    return ResidentNotice(kind, _TEXTS[kind].format(number=number, **values), {"number": number, **values})
