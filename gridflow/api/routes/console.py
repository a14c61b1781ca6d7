"""The console: sign in, the dispatch board, closed cases, and the case page — server-rendered HTML.

Every read and action goes through the same service functions as the JSON API (``lists.worklist``,
``lists.list_cases``, ``case_view.get_case`` / ``history``, ``audit.verify_case``, ``actions.act_as``), so
scoping and masking are the API's. The session is server-side (:mod:`gridflow.service.sessions`); every
POST carries the session's CSRF token (the sign-in form a token of its own, in a cookie), else 403.
"""

from __future__ import annotations

import json
import re
import secrets
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from starlette.concurrency import run_in_threadpool

from ...engine.errors import CaseNotFound, GridflowError
from ...service import case_view, lists, sessions
from ...service.actions import act_as
from ...service.audit import verify_case
from ...service.auth import RateLimited
from ..console_forms import action_forms, payload_from_form
from ..console_text import LANGS, Text, local, span
from ..deps import client_address, rate_limits

router = APIRouter(include_in_schema=False)
TEMPLATES = Jinja2Templates(directory=Path(__file__).resolve().parent.parent / "templates")
SESSION_COOKIE = sessions.COOKIE
LANG_COOKIE = "gridflow_lang"
SIGNIN_CSRF_COOKIE = "gridflow_signin_csrf"
NUMBER = re.compile(r"^[A-Za-z0-9_-]{1,32}$")
ACTION = re.compile(r"^[A-Za-z0-9_]{1,64}$")
MAX_FORM_BYTES = 64 * 1024
#: Nothing a console page loads may come from outside the app (an isolated government network).
SECURITY_HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; "
                               "form-action 'self'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff", "Referrer-Policy": "same-origin", "X-Frame-Options": "DENY",
}
FILTER_LIGHTS = ("green", "yellow", "red")


# --- plumbing -------------------------------------------------------------------------------

def _svc(request: Request):
    return request.app.state.gridflow.services


def _lang(request: Request) -> str:
    asked = request.query_params.get("lang")
    if asked in LANGS:
        return asked
    kept = request.cookies.get(LANG_COOKIE)
    return kept if kept in LANGS else "zh"


def _secure(request: Request) -> bool:
    mode = _svc(request).settings.session_cookie_secure
    return mode == "always" or mode == "auto" and request.url.scheme == "https"


def _session(request: Request) -> sessions.Session | None:
    return sessions.resume(_svc(request), request.cookies.get(SESSION_COOKIE))


def render(request: Request, template: str, status: int = 200, session: sessions.Session | None = None,
           **context: Any) -> HTMLResponse:
    lang = _lang(request)
    text = Text(lang)
    response = TEMPLATES.TemplateResponse(request, template, {
        "t": text, "lang": lang, "local": local, "span": lambda s: span(s, lang), "session": session,
        "caller": session.caller if session else None, "csrf": session.csrf_token if session else "",
        "path": request.url.path, "show": _shower(_svc(request)),
        "state_label": _state_labeller(_svc(request), text), **context}, status_code=status)
    response.headers.update(SECURITY_HEADERS)
    if request.query_params.get("lang") in LANGS:
        response.set_cookie(LANG_COOKIE, lang, max_age=365 * 86400, samesite="lax", httponly=True,
                            secure=_secure(request))
    return response


def _state_labeller(svc, text: Text):
    def state_label(case: Any) -> str:
        """A case's state in the page's language (summaries carry only the Chinese label)."""
        st = svc.catalog.get(case.workflow, case.workflow_version).states.get(case.state)
        return text.label(st.label, case.state_label) if st is not None else case.state_label
    return state_label


def _shower(svc):
    def show(value: Any) -> str:
        """An event's value as text: instants on the local wall clock, unit codes as names, Chinese kept
        as it is (the template escapes it)."""
        if isinstance(value, str):
            if _ISO.match(value):
                try:
                    return local(value)
                except ValueError:
                    return value
            unit = svc.units.get(value)
            return unit.name if unit is not None else value
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return "、".join(show(v) for v in value)
        return json.dumps(value, ensure_ascii=False, default=str)
    return show


def _to_signin() -> RedirectResponse:
    return RedirectResponse("/signin", status_code=303, headers={"Cache-Control": "no-store"})


async def _form(request: Request) -> dict[str, list[str]]:
    """A urlencoded form (the console posts nothing else), at most ``MAX_FORM_BYTES``."""
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            return {}
    return parse_qs(body.decode("utf-8", errors="replace"), keep_blank_values=True, max_num_fields=200)


def _first(form: dict[str, list[str]], name: str) -> str:
    return (form.get(name) or [""])[0]


def _forbidden(request: Request, session: sessions.Session | None) -> HTMLResponse:
    return render(request, "error.html", 403, session, title_key="forbidden", message_key="csrf")


def _not_found(request: Request, session: sessions.Session | None) -> HTMLResponse:
    return render(request, "error.html", 404, session, title_key="not_found", message_key="not_found")


# --- sign in and out ------------------------------------------------------------------------

def _signin_page(request: Request, status: int = 200, error: str | None = None, user: str = "") -> Response:
    token = secrets.token_urlsafe(24)
    response = render(request, "signin.html", status, None, signin_csrf=token, error=error, user=user)
    response.set_cookie(SIGNIN_CSRF_COOKIE, token, max_age=3600, httponly=True, samesite="strict",
                        secure=_secure(request), path="/signin")
    return response


@router.get("/signin")
def signin_form(request: Request) -> Response:
    if _session(request) is not None:
        return RedirectResponse("/", status_code=303)
    return _signin_page(request)


@router.post("/signin")
async def signin(request: Request) -> Response:
    form = await _form(request)
    if not sessions.csrf_ok(request.cookies.get(SIGNIN_CSRF_COOKIE), _first(form, "csrf")):
        return _forbidden(request, None)
    svc = _svc(request)
    user = _first(form, "user").strip()[:64]
    try:
        done = await run_in_threadpool(sessions.sign_in, svc, rate_limits(request), client_address(request),
                                       user_id=user, password=_first(form, "password")[:1024],
                                       api_key=_first(form, "api_key").strip()[:200])
    except RateLimited as exc:
        page = _signin_page(request, 429, exc.message, user)
        page.headers["Retry-After"] = str(int(exc.details.get("retry_after") or 1))
        return page
    except GridflowError as exc:
        return _signin_page(request, exc.status if 400 <= exc.status < 500 else 401, exc.message, user)
    response = RedirectResponse("/", status_code=303, headers={"Cache-Control": "no-store"})
    response.set_cookie(SESSION_COOKIE, done.session_id, httponly=True, samesite="lax",
                        secure=_secure(request), path="/")
    response.delete_cookie(SIGNIN_CSRF_COOKIE, path="/signin")
    return response


@router.post("/signout")
async def signout(request: Request) -> Response:
    form = await _form(request)
    session = await run_in_threadpool(_session, request)
    if session is not None and not sessions.csrf_ok(session.csrf_token, _first(form, "csrf")):
        return _forbidden(request, session)
    await run_in_threadpool(sessions.sign_out, _svc(request), request.cookies.get(SESSION_COOKIE))
    response = _to_signin()
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="lax", secure=_secure(request))
    response.headers["Clear-Site-Data"] = '"cache", "storage"'
    return response


# --- the dispatch board -----------------------------------------------------------------------

def _board_filters(request: Request) -> dict[str, Any]:
    q = request.query_params
    escalated = q.get("escalated")
    light = q.get("light")
    return {"stage": q.get("stage") or None, "light": light if light in FILTER_LIGHTS else None,
            "escalated": escalated == "1"}


def _stages(svc) -> dict[str, Any]:
    """Every stage the shipped workflows name, with its label."""
    out: dict[str, Any] = {}
    for defn in svc.catalog.all():
        for code, label in defn.stages.items():
            out.setdefault(code, label)
    return out


def _units(svc, codes) -> dict[str, str]:
    return {c: (svc.units.get(c).name if svc.units.get(c) else c) for c in codes if c}


def _worklist(request: Request, session: sessions.Session) -> dict[str, Any]:
    svc = _svc(request)
    f = _board_filters(request)
    rows = lists.worklist(svc, session.caller, lists.MAX_PAGE)
    rows = [r for r in rows if (f["stage"] is None or r.stage == f["stage"])
            and (f["light"] is None or r.sla.light == f["light"]) and (not f["escalated"] or r.escalated > 0)]
    return {"rows": rows, "filters": f, "stages": _stages(svc), "lights": FILTER_LIGHTS,
            "units": _units(svc, {r.holder_unit for r in rows})}


@router.get("/")
def board(request: Request) -> Response:
    session = _session(request)
    if session is None:
        return _to_signin()
    q = request.query_params.get("q", "").strip()
    if q:
        target = f"/cases/{quote(q)}" if NUMBER.match(q) else "/cases/-"
        return RedirectResponse(target, status_code=303)
    return render(request, "board.html", session=session, **_worklist(request, session))


@router.get("/board/worklist")
def board_fragment(request: Request) -> Response:
    """The worklist table alone: what the live script reloads when an event arrives."""
    session = _session(request)
    if session is None:
        return Response(status_code=401, headers={"Cache-Control": "no-store"})
    return render(request, "_worklist.html", session=session, **_worklist(request, session))


@router.get("/closed")
def closed_cases(request: Request) -> Response:
    session = _session(request)
    if session is None:
        return _to_signin()
    svc = _svc(request)
    cursor = request.query_params.get("cursor") or None
    try:
        page = lists.list_cases(svc, session.caller, lists.CaseFilter(closed=True), cursor, 50)
    except GridflowError:
        page = lists.list_cases(svc, session.caller, lists.CaseFilter(closed=True), None, 50)
    return render(request, "closed.html", session=session, page=page,
                  units=_units(svc, {r.holder_unit for r in page.data}))


# --- the case page ---------------------------------------------------------------------------

#: Event data the timeline leaves out: the event's label and the page already say it.
_QUIET = frozenset({"action", "kind", "from_state", "state", "workflow", "deadline", "calendar", "met",
                    "used_s", "allowed_s", "unit", "duration"})
_ISO = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}")


def _timeline(events: list[Any]) -> list[dict[str, Any]]:
    """Events with the time since the one before."""
    out, prev = [], None
    for e in events:
        at: datetime = e.at
        data = dict(e.data or {})
        payload = data.pop("payload", None)
        if isinstance(payload, dict):  # what the actor entered, shown beside what the engine recorded
            data = {**payload, **data}
        shown = {k: v for k, v in data.items() if k not in _QUIET and v not in (None, "", [], {})}
        out.append({"e": e, "after_s": (at - prev).total_seconds() if prev is not None else None,
                    "fields": shown})
        prev = at
    return out


def _case_context(request: Request, session: sessions.Session, number: str) -> dict[str, Any]:
    svc = _svc(request)
    caller = session.caller
    detail = case_view.get_case(svc, caller, number)
    defn = svc.catalog.get(detail.workflow, detail.workflow_version)
    text = Text(_lang(request))
    units = _units(svc, {detail.holder_unit, detail.origin_unit, detail.escalation_unit,
                         detail.community_code, detail.street_code})
    return {"case": detail, "defn": defn, "timeline": _timeline(case_view.history(svc, caller, number)),
            "chain": verify_case(svc, number, caller), "forms": action_forms(svc, caller, defn,
                                                                              detail.allowed_actions, text),
            "units": units, "stage_label": text.label(defn.stages.get(detail.stage), detail.stage)}


@router.get("/cases/{number}")
def case_page(request: Request, number: str) -> Response:
    session = _session(request)
    if session is None:
        return _to_signin()
    if not NUMBER.match(number):
        return _not_found(request, session)
    try:
        context = _case_context(request, session, number)
    except CaseNotFound:
        return _not_found(request, session)
    done = request.query_params.get("done")
    return render(request, "case.html", session=session, done=done if done and ACTION.match(done) else None,
                  **context)


@router.post("/cases/{number}/actions/{action}")
async def case_action(request: Request, number: str, action: str) -> Response:
    form = await _form(request)
    session = await run_in_threadpool(_session, request)
    if session is None:
        return _to_signin()
    if not sessions.csrf_ok(session.csrf_token, _first(form, "csrf")):
        return _forbidden(request, session)
    if not NUMBER.match(number) or not ACTION.match(action):
        return _not_found(request, session)
    return await run_in_threadpool(_act, request, session, number, action, form)


def _act(request: Request, session: sessions.Session, number: str, action: str,
         form: dict[str, list[str]]) -> Response:
    svc = _svc(request)
    version = _first(form, "version")
    try:
        detail = case_view.get_case(svc, session.caller, number)
        act = svc.catalog.get(detail.workflow, detail.workflow_version).actions.get(action)
        act_as(svc, session.caller, number, action, payload_from_form(act, form),
               expected_version=int(version) if version.isdigit() and len(version) < 12 else None,
               seen_cases=request.app.state.seen_cases)
    except CaseNotFound:
        return _not_found(request, session)
    except GridflowError as exc:
        status = exc.status if 400 <= exc.status < 500 else 409
        try:
            context = _case_context(request, session, number)
        except CaseNotFound:
            return _not_found(request, session)
        return render(request, "case.html", status, session, error=exc.message,
                      error_fields=exc.details.get("fields") or {}, failed_action=action, **context)
    return RedirectResponse(f"/cases/{quote(number)}?done={quote(action)}", status_code=303,
                            headers={"Cache-Control": "no-store"})
