"""How long the console's dispatch board takes to render with many open cases in the caller's scope.

In process (FastAPI's TestClient, no network), on a SQLite file of its own: ``--cases`` open cases are
reported in the community dispatcher's community (海港社区), the dispatcher signs in with its demo key, and
``GET /`` (the whole board: session, worklist, template) and ``GET /board/worklist`` (the fragment the live
script reloads) are timed ``--rounds`` times each. The worklist shows at most ``lists.MAX_PAGE`` (200)
cases, most urgent first.

    .venv/bin/python bench/console.py [--cases 500] [--rounds 20]

Last line: ``RESULT cases=… board_p50_ms=… board_p95_ms=… fragment_p50_ms=… rows=…``.
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

GRID = "37060200100101"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cases", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()

    from fastapi.testclient import TestClient

    from gridflow.api.app import create_app
    from gridflow.bootstrap import bootstrap
    from gridflow.service.auth import Caller
    from gridflow.service.intake import ReportCase, report_case
    from gridflow.settings import Settings

    with tempfile.TemporaryDirectory() as tmp:
        gf = bootstrap(Settings(database_url=f"sqlite:///{tmp}/bench.db", environment="test"), runner="none")
        reporter = Caller("gw-1", "grid_worker", GRID).actor
        for i in range(args.cases):
            report_case(gf.services, ReportCase(workflow="grid_event", reporter=reporter, category="C0501",
                                                title=f"楼道漏水 {i}", unit=GRID))
        client = TestClient(create_app(gf, start_runner=False))
        token = re.search(r'name="csrf" value="([^"]+)"', client.get("/signin").text).group(1)
        client.post("/signin", data={"csrf": token, "api_key": "demo-community"})
        timings: dict[str, list[float]] = {"/": [], "/board/worklist": []}
        rows = 0
        for path in timings:
            client.get(path)  # warm the caches and the template
            for _ in range(args.rounds):
                start = time.perf_counter()
                page = client.get(path)
                timings[path].append((time.perf_counter() - start) * 1000)
                assert page.status_code == 200, page.status_code
                rows = page.text.count('<tr class="row-')
        gf.close()

    def p(values: list[float], q: float) -> float:
        return sorted(values)[min(len(values) - 1, int(q * len(values)))]

    board, fragment = timings["/"], timings["/board/worklist"]
    print(f"RESULT cases={args.cases} board_p50_ms={statistics.median(board):.0f} "
          f"board_p95_ms={p(board, 0.95):.0f} fragment_p50_ms={statistics.median(fragment):.0f} rows={rows}")


if __name__ == "__main__":
    main()
