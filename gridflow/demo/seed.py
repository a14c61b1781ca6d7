"""A demo organisation for the embedded default: one district of Yantai with streets,
communities, grids and departments, plus one demo user per role with a known token."""

from __future__ import annotations

from sqlmodel import select

from ..adapters.geo import rectangle
from ..adapters.orm import ApiKey, Unit, User
from ..service.context import Services
from ..service.tokens import hash_token

CITY = ("3706", "烟台市", "city", None)
DISTRICT = ("370602", "芝罘区", "district", "3706")
STREETS = [("370602001", "向阳街道"), ("370602002", "东山街道")]
COMMUNITIES = {
    "370602001": [("370602001001", "海港社区"), ("370602001002", "胜利社区")],
    "370602002": [("370602002001", "东山社区"), ("370602002002", "南山社区")],
}
DEPARTMENTS = [
    ("dept-housing", "区住建局"), ("dept-urban", "区城管局"), ("dept-police", "公安分局"),
    ("dept-civil", "区民政局"), ("dept-health", "区卫健局"), ("dept-emergency", "区应急局"),
    ("dept-water", "区水务局"), ("dept-justice", "区司法局"),
]
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


def demo_units() -> list[tuple[str, str, str, str | None, str | None]]:
    units: list[tuple[str, str, str, str | None, str | None]] = [(*CITY, None), (*DISTRICT, None)]
    for si, (scode, sname) in enumerate(STREETS):
        units.append((scode, sname, "street", DISTRICT[0], None))
        for ci, (ccode, cname) in enumerate(COMMUNITIES[scode]):
            units.append((ccode, cname, "community", scode, None))
            for g in range(3):
                lon0 = ORIGIN[0] + (si * 6 + ci * 3 + g) * GRID
                lat0 = ORIGIN[1]
                units.append((f"{ccode}{g + 1:02d}", f"{cname}第{g + 1}网格", "grid", ccode,
                              rectangle(lon0, lat0, lon0 + GRID, lat0 + GRID)))
    units += [(code, name, "department", DISTRICT[0], None) for code, name in DEPARTMENTS]
    return units


def grid_center(code: str) -> tuple[float, float]:
    """(lat, lon) of a demo grid's centre."""
    for ucode, _n, kind, _p, boundary in demo_units():
        if ucode == code and kind == "grid" and boundary:
            nums = boundary.split("((")[1].split(",")[0].split()
            return float(nums[1]) + GRID / 2, float(nums[0]) + GRID / 2
    raise KeyError(code)


def seed_demo(svc: Services) -> bool:
    """Create the demo organisation if the database has no units yet. Returns True if it seeded."""
    with svc.uow() as uow:
        if uow.session.exec(select(Unit).limit(1)).first() is not None:
            return False
        for code, name, kind, parent, boundary in demo_units():
            uow.session.add(Unit(code=code, name=name, kind=kind, parent_code=parent, boundary_wkt=boundary))
        uow.session.flush()
        now = svc.clock.now()
        for uid, name, role, unit, token in USERS:
            uow.session.add(User(id=uid, name=name, role=role, unit_code=unit,
                                 password_hash=DEMO_PASSWORD_HASH if role != "resident" else None))
            uow.session.flush()
            uow.session.add(ApiKey(user_id=uid, key_hash=hash_token(token), label="demo", created_at=now))
        uow.commit()
    svc.units.invalidate()
    return True
