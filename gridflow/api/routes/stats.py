"""The statistics a supervisor publishes: the three rates (三率) per unit and the counters beside them."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from ...service import reports, stats
from . import API_PREFIX
from ..deps import CallerDep, ServicesDep
from ..errors import responses
from ..schemas import Code, IsoDate, SlaStatsPublic, UnitStatsPublic

router = APIRouter(prefix=API_PREFIX, tags=["statistics"])

#: The definitions, as docs/three-rates.md gives them (keep the two in step).
DEFINITIONS = """\
Per unit and in total, counted from facts derived from each case's history (never from where a case is
now). Periods are local days (Asia/Shanghai), `from` and `to` inclusive; each figure says which instant
places it in a period. 按单位统计，依据案件历史记录生成的事实计数（而非案件当前所在单位）；
统计周期按北京时间自然日，`from`、`to` 均含当日。

Who sees which figures: an admin every unit's; a supervisor, dispatcher, operator or grid worker those of
the cases located in its unit's area and its own unit's; a department its own. `unit` narrows to that
unit's figures and those of the cases in its area. Summed from one row per day, unit and area, kept in
the transaction of every change.
可见范围：管理员全部；其他工作人员为本辖区案件及本单位的数据；职能部门为本部门数据。

**响应率 response rate** = `responded_on_time / (receipts − unanswered_withdrawn)`.
A *receipt* is a dispatch the unit received: the case assigned to it as lead (主办, `CaseAssigned`) or a
co-handling part opened for it (协办, `CoHandlingOpened`). Its *response* is the unit's first action of
kind `sign_for`, `co_sign_for`, `contact`, `reply` or `take_over` (not a return); on time when no later than
the receipt's limit (the earliest deadline started with the dispatch; a part's own `due_at`). Receipts
returned before any response (`unanswered_returned`) count against the unit; receipts recalled,
reassigned, taken over or closed before any response (`unanswered_withdrawn`) are shown apart and left out.
Placed by the dispatch time. 响应率 = 时限内签收（签收、协办签收、联系诉求人、答复、接管）的派单数 ÷
（收到的派单数 − 响应前被撤回/改派的派单数）；响应前退单的计入分母；按派单时间归入周期。

**解决率 resolution rate** = `resolved / (resolved + closed_other + returned_unresolved)`.
*Received*: cases the unit led at some point (the intake unit — the community or operator centre that got
the report — included). At the case's close each receiving unit gets one outcome: the closing outcome if it
led the case then (`resolved`, `merged`, `rejected`, `closed_other`), otherwise how it last let the case go
(`returned_unresolved` 退单, `passed_on` dispatched onward, `withdrawn` taken from it). Merged, rejected,
passed on, withdrawn and still `open` cases are shown apart and left out. Placed by the time the unit first
received the case. 解决率 = 牵头期间办结为"已解决"的案件 ÷（已解决 + 其他方式办结 + 退单后由他人办结）；
合并、不予受理、转派、被撤回及未办结案件单列，不计入分母；按该单位首次收到案件的时间归入周期。

**满意率 satisfaction rate** = `(satisfied + basically_satisfied) / rated`. *Rated*: ratings given by the
resident (kind `rate`). Default ratings (kind `rate_default`: "satisfied by default", "unrated") are
`rated_by_default`, and resolved cases closed after a reply with no rating at all are `rating_missing`:
both shown apart and left out. A rating is attributed to the unit that gave the last reply (the lead when
it replied); placed by the rating time. 满意率 =（满意 + 基本满意）÷ 群众实际评价数；默认评价、未评价单列
且不计入分母；归属最后答复时的牵头单位，按评价时间归入周期。

**Counters 计数** (placed by when they happened, attributed to the lead at the time unless the event names
the unit): `rework_rounds` 重办 (kind `rework`, and dissatisfied ratings that send the case back to the
response stage), `failed_reviews` 核查不通过 (`review_fail`), `returns` 退单 (`return`), `improper_returns`
不当退单, `extensions` 延期 (approved), `suspensions` 挂起 (approved), `supervision_orders` 督办 (of which
`key_supervision_orders` 重点督办; `supervision_answered_on_time`/`_late`, `supervision_overdue`),
`reminders` 催办, `criticism_notices` 通报批评, `breaches` 超时, `escalations` 升级, `supervised` 纳入督办.

Changed from earlier versions: `responded` now counts receipts answered (was: cases with any staff action);
`received` counts cases each unit led (was: cases by current holder); `on_time`/`overdue` (cases without /
with a breach, by current holder) are replaced by `breaches` and `responded_on_time`/`responded_late`;
`escalated` is replaced by `escalations`; `rated` counts residents' ratings only.
"""


UnitQuery = Annotated[Code | None, Query(description="the facts of this unit and of the cases located in its "
                                                      "area")]
FromQuery = Annotated[IsoDate | None, Query(alias="from", description="first local day")]
ToQuery = Annotated[IsoDate | None, Query(alias="to", description="last local day (inclusive)")]
FormatQuery = Annotated[Literal["csv", "html", "png"], Query(description="the file's format")]


def _stats(u: stats.UnitStats) -> UnitStatsPublic:
    return UnitStatsPublic.model_validate(u.as_dict())


@router.get("/stats/sla", response_model=SlaStatsPublic, responses=responses(401, 403, 422),
            summary="三率 per unit: response, resolution and satisfaction rates, with their counters",
            description=DEFINITIONS)
def sla_stats(svc: ServicesDep, caller: CallerDep, unit: UnitQuery = None, date_from: FromQuery = None,
              date_to: ToQuery = None) -> SlaStatsPublic:
    report = stats.sla_stats(svc, caller, unit, date_from, date_to)
    return SlaStatsPublic(date_from=report.date_from, date_to=report.date_to,
                          units=[_stats(u) for u in report.units], total=_stats(report.total))


#: format -> (media type, file extension) of the downloadable SLA report
REPORT_FORMATS = {"csv": ("text/csv; charset=utf-8", "csv"), "html": ("text/html; charset=utf-8", "html"),
                  "png": ("image/png", "png")}


@router.get("/stats/sla/report", responses={**responses(401, 403, 422), 200: {
    "description": "the report as a file", "content": {m: {} for m, _ in REPORT_FORMATS.values()}}},
    summary="三率 per unit as a file to publish: CSV (UTF-8, BOM), a self-contained HTML page, a PNG chart",
    description="The figures of `GET /stats/sla` (same definitions, same scope), as a file.")
async def sla_report(svc: ServicesDep, caller: CallerDep, format: FormatQuery = "csv", unit: UnitQuery = None,
                     date_from: FromQuery = None, date_to: ToQuery = None) -> Response:
    report = await run_in_threadpool(stats.sla_stats, svc, caller, unit, date_from, date_to)
    render = {"csv": reports.to_csv, "html": lambda r: reports.to_html(r).encode("utf-8"),
              "png": reports.to_png}[format]
    body = await run_in_threadpool(render, report)  # a chart takes a while to draw: off the event loop
    media, ext = REPORT_FORMATS[format]
    lo = date_from.isoformat() if date_from else "start"
    hi = date_to.isoformat() if date_to else "now"
    return Response(body, media_type=media,
                    headers={"Content-Disposition": f'attachment; filename="sla-{lo}-{hi}.{ext}"'})
