"""Which counters a fact adds to: one rule for the live summary (``unit_day_stats``), its rebuild and the
report (definitions: docs/three-rates.md). Pure: a fact's kind, detail and on_time in, counter names out."""

from __future__ import annotations

#: The counters of a unit's figures, in the order they are shown.
RESPONSE_FIELDS = ("receipts", "responded", "responded_on_time", "responded_late", "unanswered_returned",
                   "unanswered_withdrawn", "unanswered_passed_on", "awaiting_response")
RESOLUTION_FIELDS = ("received", "resolved", "merged", "rejected", "closed_other", "returned_unresolved",
                     "passed_on", "withdrawn", "open", "closed")
SATISFACTION_FIELDS = ("rated", "satisfied", "basically_satisfied", "dissatisfied", "rated_by_default",
                       "rating_missing")
COUNTER_FIELDS = ("rework_rounds", "failed_reviews", "returns", "improper_returns", "extensions",
                  "suspensions", "supervision_orders", "key_supervision_orders",
                  "supervision_answered_on_time", "supervision_answered_late", "supervision_overdue",
                  "reminders", "criticism_notices",
                  "breaches", "escalations", "supervised")
FIELDS = RESPONSE_FIELDS + RESOLUTION_FIELDS + SATISFACTION_FIELDS + COUNTER_FIELDS
#: Figures worked out from the others, never stored.
DERIVED = frozenset({"awaiting_response", "open"})
#: The counters stored per unit, area and day: every name :func:`tally` can give.
STORED = tuple(name for name in FIELDS if name not in DERIVED)

#: fact kind -> the counter it adds to, when neither its detail nor its on_time decides
_BY_KIND = {"receipt": "receipts", "received": "received", "rating_default": "rated_by_default",
            "rating_missing": "rating_missing", "rework": "rework_rounds", "review_fail": "failed_reviews",
            "return": "returns", "improper_return": "improper_returns", "extension": "extensions",
            "suspension": "suspensions", "supervision_overdue": "supervision_overdue",
            "reminder": "reminders",
            "criticism_notice": "criticism_notices", "breach": "breaches", "escalation": "escalations",
            "supervised": "supervised"}
_OUTCOMES = {"resolved": "resolved", "merged": "merged", "rejected": "rejected",
             "closed_other": "closed_other", "returned": "returned_unresolved", "passed_on": "passed_on",
             "withdrawn": "withdrawn"}
_UNANSWERED = {"returned": "unanswered_returned", "withdrawn": "unanswered_withdrawn",
               "passed_on": "unanswered_passed_on"}
_RATINGS = ("satisfied", "basically_satisfied", "dissatisfied")


def tally(kind: str, detail: str | None, on_time: bool | None) -> tuple[str, ...]:
    """The counters one fact adds 1 to."""
    if kind == "response":
        return ("responded", "responded_on_time" if on_time else "responded_late")
    if kind == "unanswered":
        return (_UNANSWERED.get(detail or "", "unanswered_withdrawn"),)
    if kind == "outcome":
        name = _OUTCOMES.get(detail or "", "closed_other")
        return (name, "closed") if name in ("resolved", "merged", "rejected", "closed_other") else (name,)
    if kind == "rating":
        return ("rated", detail) if detail in _RATINGS else ("rated",)
    if kind == "supervision_order":
        key = ("key_supervision_orders",) if detail == "key" else ()
        return ("supervision_orders", *key)
    if kind == "supervision_answered":
        return ("supervision_answered_on_time" if on_time else "supervision_answered_late",)
    name = _BY_KIND.get(kind)
    return (name,) if name else ()
