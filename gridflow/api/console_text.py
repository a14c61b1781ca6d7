"""What the console says: its words in Chinese and English, and how it shows times and spans of time.

Chinese is the default; ``?lang=en`` (remembered in a cookie) switches to English. Every moment is shown
on the wall clock of the dispatch centre (Asia/Shanghai), whatever zone the server runs in.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Mapping

from ..engine.calendar import LOCAL_ZONE
from ..engine.definition import ROLE_LABELS

LANGS = ("zh", "en")

#: History event types, as a person reads them.
EVENT_LABELS: Mapping[str, tuple[str, str]] = {
    "CaseReported": ("上报", "Reported"),
    "CaseAssigned": ("转交", "Assigned"),
    "ActionTaken": ("办理", "Action taken"),
    "DeadlineStarted": ("开始计时", "Deadline started"),
    "DeadlineWarned": ("临期预警", "Deadline warning"),
    "DeadlineBreached": ("超期", "Deadline breached"),
    "DeadlineStopped": ("停止计时", "Deadline stopped"),
    "DeadlinePaused": ("暂停计时", "Deadline paused"),
    "DeadlineResumed": ("恢复计时", "Deadline resumed"),
    "DeadlineExtended": ("延期", "Deadline extended"),
    "DeadlineRetimed": ("重新计时", "Deadline retimed"),
    "BreachActionRefused": ("超期处置未能执行", "Breach action refused"),
    "EscalationRouted": ("升级转交", "Escalation routed"),
    "CaseEscalated": ("升级", "Escalated"),
    "CaseSupervised": ("督办", "Supervised"),
    "SupervisionOrderIssued": ("下达督办单", "Supervision order issued"),
    "SupervisionOrderAnswered": ("督办单已答复", "Supervision order answered"),
    "SupervisionOrderOverdue": ("督办单超期", "Supervision order overdue"),
    "ReminderIssued": ("催办", "Reminder issued"),
    "CriticismNoticeIssued": ("通报批评", "Criticism notice issued"),
    "EscalationAlertRaised": ("升级已到顶", "Escalation alert"),
    "SuspensionLimitReached": ("挂起已达上限", "Suspension limit reached"),
    "ImproperReturnRecorded": ("记录不当退单", "Improper return recorded"),
    "ReturnReviewRequested": ("退单待审核", "Return review requested"),
    "ReturnReviewed": ("退单已审核", "Return reviewed"),
    "CoHandlingOpened": ("协办开始", "Co-handling opened"),
    "CoHandlingSignedFor": ("协办签收", "Co-handling signed for"),
    "CoHandlingAnswered": ("协办答复", "Co-handling answered"),
    "CoHandlingClosed": ("协办结束", "Co-handling closed"),
    "CaseClosed": ("结案", "Closed"),
    "WorkflowMigrated": ("流程版本迁移", "Workflow migrated"),
}

#: Names of action fields that carry no label in their workflow.
FIELD_LABELS: Mapping[str, tuple[str, str]] = {
    "reason": ("理由", "Reason"), "instructions": ("办理要求", "Instructions"),
    "summary": ("摘要", "Summary"),
    "result": ("办理结果", "Result"), "notes": ("备注", "Notes"), "unit": ("单位", "Unit"),
    "comment": ("备注", "Comment"), "answer": ("答复", "Answer"), "reply": ("答复", "Reply"),
    "duration": ("时长", "Duration"), "department": ("承办部门", "Department"),
    "due_at": ("期限", "Due"), "timer": ("时限", "Deadline"), "to_state": ("转入", "To"),
    "from_unit": ("原单位", "From unit"), "to_unit": ("转至", "To unit"), "category": ("类别", "Category"),
    "co_handlers": ("协办部门", "Co-handlers"), "rating": ("评价", "Rating"), "channel": ("渠道", "Channel"),
    "origin_unit": ("上报网格", "Reported in"), "to_level": ("升至", "To level"),
    "reason_code": ("原因", "Reason"),
}

LIGHTS: Mapping[str, tuple[str, str]] = {
    "green": ("正常", "on time"), "yellow": ("临期", "due soon"), "red": ("超期", "overdue"),
    "none": ("不计时", "no deadline"),
}

UI: Mapping[str, tuple[str, str]] = {
    "title": ("网格化治理 案件调度台", "gridflow dispatch console"),
    "sign_in": ("登录", "Sign in"), "sign_out": ("退出", "Sign out"),
    "user": ("用户名", "User"), "password": ("密码", "Password"), "api_key": ("API 密钥", "API key"),
    "or_key": ("或使用 API 密钥登录", "or sign in with an API key"),
    "board": ("调度台", "Dispatch board"), "closed_cases": ("已结案件", "Closed cases"),
    "worklist": ("待办案件", "Worklist"), "number": ("编号", "Number"), "case_title": ("标题", "Title"),
    "state": ("状态", "State"), "stage": ("阶段", "Stage"), "light": ("时限", "SLA"),
    "left": ("剩余工作时间", "Working time left"), "holder": ("承办单位", "Held by"),
    "category": ("类别", "Category"), "opened": ("上报时间", "Reported"),
    "closed_at": ("结案时间", "Closed"),
    "badges": ("标记", "Flags"), "supervised": ("督办", "Supervised"), "suspended": ("挂起", "Suspended"),
    "escalated": ("已升级", "Escalated"), "filter": ("筛选", "Filter"), "all": ("全部", "All"),
    "search": ("按编号查找", "Find by number"), "go": ("查找", "Find"), "empty": ("没有案件", "No cases"),
    "overdue_by": ("已超期", "overdue by"), "details": ("案件详情", "Details"),
    "description": ("描述", "Description"), "address": ("地址", "Address"),
    "reporter": ("上报人", "Reporter"), "phone": ("电话", "Phone"), "masked": ("已脱敏", "masked"),
    "actions": ("可办理操作", "Actions"), "no_actions": ("当前没有可办理的操作", "No action is open to you"),
    "timeline": ("办理经过", "Timeline"), "deadlines": ("时限说明", "Deadlines"),
    "chain_ok": ("记录链完整", "History chain verified"),
    "chain_broken": ("记录链已被篡改", "History chain BROKEN"),
    "calendar": ("日历", "Calendar"), "started": ("开始", "Started"),
    "original_due": ("原定期限", "First due"),
    "current_due": ("当前期限", "Due"), "pauses": ("挂起", "Pauses"), "extensions": ("延期", "Extensions"),
    "allowed": ("时限", "Allowed"), "used": ("已用", "Used"), "status": ("状态", "Status"),
    "running": ("计时中", "running"), "paused": ("已暂停", "paused"), "after": ("间隔", "after"),
    "actor": ("办理人", "Actor"), "at": ("时间", "Time"), "event": ("事件", "Event"),
    "submit": ("提交", "Submit"), "done": ("已办理", "Done"), "refused": ("未能办理", "Refused"),
    "required": ("必填", "required"), "yes": ("是", "yes"), "no": ("否", "no"),
    "not_found": ("没有这个案件，或您无权查看", "No such case, or it is not yours to see"),
    "forbidden": ("请求已被拒绝", "Request refused"),
    "csrf": ("表单已过期或来源不明，请刷新页面后重试",
             "The form expired or did not come from this console; reload the page and try again"),
    "back": ("返回调度台", "Back to the board"), "more": ("更多", "More"), "live": ("实时", "live"),
    "comment": ("备注", "Comment"), "signed_in_as": ("当前用户", "Signed in as"),
    "local_time": ("北京时间", "Asia/Shanghai time"), "escalation": ("升级", "Escalation"),
    "data": ("案件数据", "Case data"), "attachments": ("附件", "Attachments"),
}


class Text:
    """The console's words in one language, for templates: ``t("sign_in")``, ``t.event(type)``…"""

    def __init__(self, lang: str) -> None:
        self.lang = lang if lang in LANGS else "zh"

    def _pick(self, pair: tuple[str, str]) -> str:
        return pair[0] if self.lang == "zh" else pair[1]

    def __call__(self, key: str) -> str:
        pair = UI.get(key)
        return self._pick(pair) if pair else key

    def label(self, label: Any, fallback: str = "") -> str:
        """A definition's :class:`Label` (or None) in this language."""
        return label.get(self.lang) if label is not None else fallback

    def event(self, kind: str) -> str:
        pair = EVENT_LABELS.get(kind)
        return self._pick(pair) if pair else kind

    def role(self, role: str) -> str:
        label = ROLE_LABELS.get(role)
        return label.get(self.lang) if label is not None else role

    def light(self, light: str | None) -> str:
        return self._pick(LIGHTS.get(light or "none", LIGHTS["none"]))

    def key(self, name: str) -> str:
        """An event data key, as a label where one is known."""
        pair = FIELD_LABELS.get(name)
        return self._pick(pair) if pair else name

    def field(self, spec: Any) -> str:
        if spec.label is not None:
            return spec.label.get(self.lang)
        pair = FIELD_LABELS.get(spec.name)
        return self._pick(pair) if pair else spec.name.replace("_", " ")


def local(at: datetime | str | None) -> str:
    """A moment on the dispatch centre's wall clock, to the minute (``—`` for none)."""
    if at is None or at == "":
        return "—"
    if isinstance(at, str):
        at = datetime.fromisoformat(at)
    return at.astimezone(LOCAL_ZONE).strftime("%Y-%m-%d %H:%M")


def span(seconds: float | None, lang: str = "zh") -> str:
    """A span of time: ``2天3小时``, ``1小时05分`` (``2d 3h``, ``1h 05m`` in English); sign dropped."""
    if seconds is None:
        return "—"
    s = int(abs(seconds))
    days, hours, minutes = s // 86400, s % 86400 // 3600, s % 3600 // 60
    if lang == "zh":
        return (f"{days}天{hours}小时" if days else f"{hours}小时{minutes:02d}分" if hours
                else f"{minutes}分钟")
    return f"{days}d {hours}h" if days else f"{hours}h {minutes:02d}m" if hours else f"{minutes}m"
