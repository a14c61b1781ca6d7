"""Which grid a reported point falls in (grid boundaries are polygons stored as WKT)."""

from __future__ import annotations

from functools import lru_cache
from typing import Iterable

from shapely import wkt
from shapely.geometry import Point
from shapely.prepared import prep


@lru_cache(maxsize=100_000)
def _prepared(boundary: str):
    return prep(wkt.loads(boundary))


def locate_grid(units: Iterable, lat: float, lon: float, kind: str = "grid") -> str | None:
    """The code of the grid (or unit of ``kind``) containing (lat, lon), or None. Coordinates are WGS-84
    degrees (x=lon, y=lat)."""
    point = Point(lon, lat)
    for unit in units:
        if unit.kind == kind and unit.boundary_wkt and _prepared(unit.boundary_wkt).contains(point):
            return unit.code
    return None


def rectangle(lon0: float, lat0: float, lon1: float, lat1: float) -> str:
    return f"POLYGON(({lon0} {lat0}, {lon1} {lat0}, {lon1} {lat1}, {lon0} {lat1}, {lon0} {lat0}))"
