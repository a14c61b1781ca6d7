"""The demo organisation for the embedded default — the sample organisation files in ``examples/org``
(one district of Yantai: streets, communities, grids as GeoJSON polygons, departments, an address
table) — plus one demo user per role with a known token."""

from __future__ import annotations

import functools
from pathlib import Path

from sqlmodel import select

from ..adapters.orm import ApiKey, Unit, User
from ..service.context import Services
from ..service.organisation import check_org_files, record_org_plan
from ..service.tokens import hash_token

#: The sample organisation (see docs/organisation.md): units, grid polygons, addresses.
SAMPLE_DIR = Path(__file__).resolve().parent / "org"  # examples/org links here: shipped with the package
SAMPLE_FILES = (SAMPLE_DIR / "units.yaml", SAMPLE_DIR / "grids.geojson", SAMPLE_DIR / "addresses.csv")

#: The first four communities, whose grids 1–3 the demo city and the tests report in.
COMMUNITIES = {
    "370602001": [("370602001001", "海港社区"), ("370602001002", "胜利社区")],
    "370602002": [("370602002001", "东山社区"), ("370602002002", "南山社区")],
}
#: (user id, name, role, unit, token)
USERS = [
    ("admin", "系统管理员", "admin", "3706", "demo-admin"),
    ("sv-1", "区指挥中心 督办员", "supervisor", "370602", "demo-supervisor"),
    ("sd-1", "向阳街道 调度员", "street_dispatcher", "370602001", "demo-street"),
    ("cd-1", "海港社区 调度员", "community_dispatcher", "370602001001", "demo-community"),
    ("cd-2", "胜利社区 调度员", "community_dispatcher", "370602001002", "demo-community-2"),
    ("gw-1", "网格员 王芳", "grid_worker", "37060200100101", "demo-grid-worker"),
    ("dh-housing", "住建局 承办人", "department_handler", "dept-housing", "demo-housing"),
    ("dh-urban", "城管局 承办人", "department_handler", "dept-urban", "demo-urban"),
    ("op-1", "12345 话务员", "hotline_operator", "370602", "demo-hotline"),
    ("res-1", "居民 李明", "resident", "37060200100101", "demo-resident"),
]
#: The console password of every demo staff user (embedded demo only: production refuses the demo seed).
DEMO_PASSWORD = "gridflow-demo"
#: Its argon2 hash, computed once (hashing at every seed would cost half a second).
DEMO_PASSWORD_HASH = ("$argon2id$v=19$m=65536,t=3,p=4$MfQIZM7X4gskT1GR3MYBMQ$"
                      "y8q39zAee6UQiqwzUZLHV9dmrgypsiwB2a5z381qwe8")
ORIGIN = (121.39, 37.53)  # lon, lat near Zhifu district
GRID = 0.004  # degrees per grid side


@functools.lru_cache(maxsize=8)
def _plan(files: tuple[Path, ...]):
    return check_org_files(files)


def sample_plan(files: tuple[Path, ...] | None = None):
    """The checked organisation of ``files`` (default: the sample), read once per process."""
    return _plan(tuple(files or SAMPLE_FILES))


def demo_units() -> list[tuple[str, str, str, str | None, str | None]]:
    """(code, name, kind, parent, boundary WKT) of every unit of the sample."""
    return [(u.code, u.name, u.kind, u.parent, u.boundary_wkt) for u in sample_plan().units.values()]


def grid_center(code: str) -> tuple[float, float]:
    """(lat, lon) of a sample grid's centre."""
    unit = sample_plan().units.get(code)
    if unit is None or unit.kind != "grid" or not unit.boundary_wkt:
        raise KeyError(code)
    from shapely import wkt

    point = wkt.loads(unit.boundary_wkt).centroid
    return point.y, point.x


def seed_demo(svc: Services) -> bool:
    """Load the organisation (``GRIDFLOW_ORG_FILES``, else the sample) and the demo users into a database
    that has no units yet. Returns True if it seeded."""
    files = tuple(svc.settings.org_files) if svc.settings.org_files else None
    plan = sample_plan(files)
    with svc.uow() as uow:
        if uow.session.exec(select(Unit).limit(1)).first() is not None:
            return False
        record_org_plan(svc, uow, plan, actor="demo-seed")
        now = svc.clock.now()
        for uid, name, role, unit, token in USERS:
            uow.session.add(User(id=uid, name=name, role=role, unit_code=unit,
                                 password_hash=DEMO_PASSWORD_HASH if role != "resident" else None))
            uow.session.flush()
            uow.session.add(ApiKey(user_id=uid, key_hash=hash_token(token), label="demo", created_at=now))
        uow.commit()
    svc.units.invalidate()
    return True
