"""Which grid a reported point falls in: one shapely STRtree per kind of unit over the loaded boundaries
(WKT polygons), built once per version of the organisation and shared by every report."""

from __future__ import annotations

from typing import Iterable

import numpy as np
from shapely import STRtree, points, wkt

from .ports import Locator

#: The kinds a point is looked up in, most precise first: a point in no grid but inside a street (or a
#: district) with a boundary goes to that street's (district's) triage pool.
LOCATED_KINDS = ("grid", "street", "district")


class StrTreeLocator(Locator):
    """``units``: anything with ``code``, ``kind``, ``boundary_wkt`` (and ``retired``, skipped when true).
    A point on the edge two grids share goes to the one with the lower code."""

    def __init__(self, units: Iterable) -> None:
        by_kind: dict[str, list[tuple[str, str]]] = {k: [] for k in LOCATED_KINDS}
        for u in units:
            if u.kind in by_kind and u.boundary_wkt and not getattr(u, "retired", False):
                by_kind[u.kind].append((u.code, u.boundary_wkt))
        self._trees: list[tuple[str, STRtree, list[str]]] = []
        for kind in LOCATED_KINDS:
            found = sorted(by_kind[kind])
            if found:
                geoms = [wkt.loads(text) for _c, text in found]
                self._trees.append((kind, STRtree(geoms), [c for c, _t in found]))

    def locate(self, lat: float, lon: float) -> tuple[str, str] | None:
        point = points(lon, lat)
        for kind, tree, codes in self._trees:
            hits = tree.query(point, predicate="intersects")
            if len(hits):
                return codes[int(np.min(hits))], kind
        return None

    def locate_many(self, lat: Iterable[float], lon: Iterable[float]) -> list[str | None]:
        """Units of many points at once (one vectorised query per kind): for imports and benchmarks."""
        pts = points(np.asarray(list(lon), dtype=float), np.asarray(list(lat), dtype=float))
        out: list[str | None] = [None] * len(pts)
        todo = np.arange(len(pts))
        for _kind, tree, codes in self._trees:
            if not len(todo):
                break
            left, right = tree.query(pts[todo], predicate="intersects")
            best: dict[int, int] = {}
            for i, j in zip(left.tolist(), right.tolist()):
                if j < best.get(i, j + 1):
                    best[i] = j
            for i, j in best.items():
                out[int(todo[i])] = codes[j]
            todo = np.asarray([t for k, t in enumerate(todo.tolist()) if k not in best], dtype=int)
        return out


def rectangle(lon0: float, lat0: float, lon1: float, lat1: float) -> str:
    return f"POLYGON(({lon0} {lat0}, {lon1} {lat0}, {lon1} {lat1}, {lon0} {lat1}, {lon0} {lat0}))"
