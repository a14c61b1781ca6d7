"""Residents' personal data, in the one place that decides who sees it.

Names, phone numbers, resident ID numbers (身份证号), exact addresses and exact coordinates are shown
only to roles that must contact or visit the resident (:data:`~gridflow.engine.roles.CONTACT_ROLES`);
for every other role, and in every export, they are masked wherever they appear: the reporter's
contact fields, and inside the free text of titles, descriptions, attachment names and URLs, case
data and every string of every history event (the same masking reaches the live event stream).

A confidential case (举报人保密, ``data["confidential"]``) hides the reporter's identity — name, phone,
reporter id, the reporter's actor id in its history, and phones, ID numbers and cue-named names in its
free text — from every handling unit: only the reporter (a resident with the case's token or the
reporter's own account) sees it.

What a mask keeps:

- mobile phones, in any spelling (``138 1234 5678``, ``138-1234-5678``, ``+86 …``, ``0086…``,
  ``+86…`` glued, full-width digits): any prefix as written, the first three and last four digits,
  ``****`` between (``+86 139****4321``);
- landlines: the area code and the last four digits (``0535-***2345``);
- ID numbers, 18 digits (last one may be ``X``) or the old 15: the first six digits (the issuing
  region) and the last four, every digit between replaced by ``*`` — the birth date never shows
  (``370602********123X``);
- names that follow a cue such as 来电人 / 联系人 / 举报人 (see :data:`NAME_CUES`), a surname and one to
  three more characters: as :func:`mask_name` (``来电人王*``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

from ..engine.masks import mask_phone  # noqa: F401  (re-exported: the one phone mask)
from ..engine.roles import CONTACT_ROLES
from .auth import Caller

#: Shown instead of the reporter's actor id in a confidential case's history.
CONFIDENTIAL_ACTOR = "confidential"
#: The events a report writes, before anyone acts on the case.
REPORT_EVENTS = frozenset({"CaseReported", "DeadlineStarted", "CaseClosed"})

_D = "[0-9０-９]"  # an ASCII or a full-width digit
_NOT_DIGIT_BEFORE = "(?<![0-9０-９])"
_NOT_DIGIT_AFTER = "(?![0-9０-９])"
_SEP = "[ \u3000.．\\-－‐–]?"  # at most one separator between two digits
_COUNTRY = "(?:[(（]?(?:[+＋]|00|００)?(?:86|８６)[)）]?[ \u3000\\-－]?)"
_MOBILE = re.compile(rf"{_NOT_DIGIT_BEFORE}({_COUNTRY}?)([1１]{_SEP}[3-9３-９](?:{_SEP}{_D}){{9}})"
                     rf"{_NOT_DIGIT_AFTER}")
_LANDLINE = re.compile(rf"{_NOT_DIGIT_BEFORE}({_COUNTRY}?[(（]?[0０]{_D}{{2,3}}[)）]?[ \u3000\-－]?)"
                       rf"({_D}{{3,4}})[ \u3000\-－]?({_D}{{4}}){_NOT_DIGIT_AFTER}")
_ID_18 = re.compile(rf"{_NOT_DIGIT_BEFORE}[1-9１-９]{_D}{{5}}[ \-]?{_D}{{4}}[ \-]?{_D}{{4}}[ \-]?{_D}{{3}}"
                    rf"[0-9０-９XxＸｘ]{_NOT_DIGIT_AFTER}")
_ID_15 = re.compile(rf"{_NOT_DIGIT_BEFORE}[1-9１-９]{_D}{{14}}{_NOT_DIGIT_AFTER}")
_DIGIT_OR_X = re.compile("[0-9０-９XxＸｘ]")
_DIGITS = re.compile(r"\d+")

#: Words after which a person's name is written in case text (来电人王五, 联系人：李明).
NAME_CUES = ("来电人", "联系人", "举报人", "报案人", "当事人", "反映人", "求助人", "投诉人", "诉求人",
             "申请人", "来访人", "报警人", "被投诉人", "被举报人", "监护人", "户主")
_COMPOUND_SURNAMES = ("欧阳", "司马", "上官", "诸葛", "东方", "皇甫", "尉迟", "公孙", "慕容", "令狐",
                      "长孙", "宇文", "司徒", "夏侯", "轩辕", "端木", "独孤", "南宫", "西门", "百里")
_SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈"
    "姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤"
    "常温康施文牛樊葛邢安齐易乔伍庞颜倪庄聂章鲁岳翟殷詹申欧耿关兰焦俞左柳甘祝包宁尚符舒阮柯纪梅童凌毕单季"
    "裴霍涂成苗谷盛曲翁冉骆蓝路游辛靳管柴蒙鲍华喻祁蒲房滕屈饶解牟艾尤阳时穆农司卓古吉缪简车项连芦麦褚娄窦"
    "戚岑景党宫费卜冷晏席卫米柏宗瞿桂全佟应臧闵苟邬边卞姬师和仇栾隋商刁沙荣巫寇桑郎甄丛仲虞敖巩明佘池查麻"
    "苑迟邝官封谈匡鞠惠荆乐冀郁胥南班储原栗燕楚鄢劳谌奚皮粟冼蔺楼盘满闻位厉伊仝区郜海阚花权强帅屠豆朴盖练"
    "廉禹井祖漆巴丰支卿国狄平计索宣晋相初门云容敬来扈晁芮都普阙浦戈伏鹿薄邸雍辜羊阿乌母裘亓修邰赫杭况那宿"
    "鲜印逯隆茹诸战慕危玉银亢嵇公哈湛宾戎勾茅利於呼居揭干但尉冶斯元束檀衣信展阴昝智幸奉植衡富尧闭由")
#: Characters that end a name rather than continue it (来电人王五称…, 联系人李明电话…).
_NAME_STOP = "称说讲表示反映诉投来电话手机号的在于住家是及和与或等,，。;；:：、!！?？()（）\\s"
_GIVEN = f"(?:(?![{_NAME_STOP}])[\u4e00-\u9fff])"
_NAMED = re.compile(
    f"({'|'.join(sorted(NAME_CUES, key=len, reverse=True))})([：:\\s]*)"
    f"((?:{'|'.join(_COMPOUND_SURNAMES)}){_GIVEN}{{1,2}}|[{_SURNAMES}]{_GIVEN}{{1,3}})")


def sees_contact(caller: Caller | None) -> bool:
    return caller is not None and caller.role in CONTACT_ROLES


def mask_name(name: str | None) -> str | None:
    """李明 → 李*, 欧阳娜娜 → 欧***; an ASCII name keeps its first letter."""
    if not name:
        return name
    return name[0] + "*" * max(1, len(name) - 1)


def mask_address(address: str | None) -> str | None:
    """Keep the road or estate, hide the numbers: 海港路12号3单元501室 → 海港路**号*单元***室."""
    if not address:
        return address
    return _DIGITS.sub(lambda m: "*" * len(m.group()), address)


def _mobile(m: re.Match[str]) -> str:
    digits = _DIGIT_OR_X.findall(m.group(2))
    return m.group(1) + "".join(digits[:3]) + "****" + "".join(digits[-4:])


def _id_number(m: re.Match[str]) -> str:
    chars = _DIGIT_OR_X.findall(m.group())
    return "".join(chars[:6]) + "*" * (len(chars) - 10) + "".join(chars[-4:])


def mask_text(text: str | None) -> str | None:
    """Phones, landlines, ID numbers and cue-named names inside free text (titles, descriptions,
    replies, attachment names and URLs)."""
    if not text:
        return text
    text = _ID_18.sub(_id_number, text)
    text = _MOBILE.sub(_mobile, text)
    text = _ID_15.sub(_id_number, text)
    text = _LANDLINE.sub(lambda m: m.group(1) + "*" * len(m.group(2)) + m.group(3), text)
    return _NAMED.sub(lambda m: m.group(1) + m.group(2) + (mask_name(m.group(3)) or ""), text)


def mask_point(lat: float | None, lon: float | None) -> tuple[float | None, float | None]:
    """About 100 m: enough to place a case in its grid, not at a door."""
    return (round(lat, 3) if lat is not None else None, round(lon, 3) if lon is not None else None)


def mask_value(value: Any) -> Any:
    """Free text anywhere in a structure (event data, case data, attachments), recursively."""
    if isinstance(value, str):
        return mask_text(value)
    if isinstance(value, Mapping):
        return {k: mask_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [mask_value(v) for v in value]
    return value


# --- what one reader may see of one case ----------------------------------------------------------

def is_confidential(row: Any) -> bool:
    """A case filed with ``confidential: true`` (举报人保密): the flag lives in the case data."""
    sla = getattr(row, "sla", None) or {}
    return bool((sla.get("data") or {}).get("confidential"))


def is_reporter(caller: Caller | None, number: str | None, reporter_id: str | None) -> bool:
    """The person who reported the case: a resident holding its token, or the reporting resident."""
    return caller is not None and caller.role == "resident" and (
        (caller.case_number is not None and caller.case_number == number)
        or (reporter_id is not None and caller.id == reporter_id))


@dataclass(frozen=True)
class Exposure:
    """What a reader sees of one case: ``contact`` — names, phones, addresses and free text as written;
    ``reporter`` — who reported it (False on a confidential case for everyone but the reporter)."""

    contact: bool
    reporter: bool

    @property
    def text(self) -> bool:
        """Free text shown as written (contact roles, and on a confidential case only its reporter)."""
        return self.contact and self.reporter


def exposure(caller: Caller | None, row: Any, *, export: bool = False) -> Exposure:
    """An export is read by whoever gets the file: it sees as a role without contact rights would."""
    reporter = not is_confidential(row) or (not export and is_reporter(caller, row.number, row.reporter_id))
    return Exposure(contact=sees_contact(caller) and not export, reporter=reporter)


def text_for(seen: Exposure, text: str | None) -> str | None:
    return text if seen.text else mask_text(text)


def value_for(seen: Exposure, value: Any) -> Any:
    return value if seen.text else mask_value(value)


@dataclass(frozen=True)
class Contact:
    name: str | None
    phone: str | None
    address: str | None
    lat: float | None
    lon: float | None
    description: str
    reporter_id: str | None = None


def contact_for(caller: Caller | None, row: Any, *, export: bool = False, seen: Exposure | None = None
                ) -> Contact:
    """The reporter's contact and the case's location as this caller (or an export) may see them
    (``seen``: :func:`exposure` for the same caller, row and ``export``, if the caller has it already)."""
    seen = seen if seen is not None else exposure(caller, row, export=export)
    name, phone, address, lat, lon = row.reporter_name, row.reporter_phone, row.address, row.lat, row.lon
    if not seen.contact:
        name, phone, address = mask_name(name), mask_phone(phone), mask_address(address)
        lat, lon = mask_point(lat, lon)
    if not seen.reporter:
        name = phone = None
    return Contact(name, phone, address, lat, lon, text_for(seen, row.description) or "",
                   row.reporter_id if seen.reporter else None)


def events_for(caller: Caller | None, events: Iterable[Mapping[str, Any]], *,
               hide_actor: str | None = None, from_report: bool = True) -> list[dict[str, Any]]:
    """Event dicts as this caller may see them: free text masked for callers who do not see contacts.

    ``hide_actor`` is a confidential case's reporter (:func:`hidden_reporter`): on such a case every
    event's text is masked, and the reporter is shown as :data:`CONFIDENTIAL_ACTOR` in the events of the
    report (the leading :data:`REPORT_EVENTS`, when ``events`` start with the report) and in whatever it
    does as a resident. An operator who logged the report keeps its name on what it does afterwards.
    """
    out = []
    in_report = from_report
    for e in events:
        in_report = in_report and e.get("type") in REPORT_EVENTS
        if hide_actor is not None or not sees_contact(caller):
            e = {**e, "data": mask_value(e.get("data") or {})}
        else:
            e = dict(e)
        if hide_actor is not None and "on_behalf_of_name" in e["data"]:
            # even masked (张*), the name a hotline operator logged would give the reporter away
            e["data"] = {k: v for k, v in e["data"].items() if k != "on_behalf_of_name"}
        reporter_did = hide_actor is not None and e.get("actor") == hide_actor
        if reporter_did and (in_report or e.get("role") == "resident"):
            e["actor"] = CONFIDENTIAL_ACTOR
        out.append(e)
    return out


def hidden_reporter(caller: Caller | None, *, confidential: bool, number: str | None,
                    reporter_id: str | None) -> str | None:
    """The actor id to hide from this caller in a case's events: a confidential case's reporter."""
    if not confidential or reporter_id is None or is_reporter(caller, number, reporter_id):
        return None
    return reporter_id
