"""Possible duplicates of a new report: same category nearby and recent, or the same caller's phone;
ranked best first, each with its reason; nothing else."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from gridflow.engine.duplicates import DuplicateRules, OpenCase, Report, bounding_box, distance_m, rank

NOW = datetime(2026, 11, 2, 9, 0, tzinfo=timezone.utc)
LAT, LON = 37.5320, 121.3920
RULES = DuplicateRules(radius_m=100, window=timedelta(hours=72), phone_window=timedelta(days=7))


def _north(metres: float) -> float:
    return LAT + metres / 111_195


def test_distance_is_the_great_circle_distance():
    assert abs(distance_m(LAT, LON, _north(100), LON) - 100) < 0.5
    assert distance_m(LAT, LON, LAT, LON) == 0


def test_the_bounding_box_holds_every_point_within_the_radius():
    lat0, lat1, lon0, lon1 = bounding_box(LAT, LON, 100)
    for bearing in range(0, 360, 15):
        import math
        dlat = 99.9 * math.cos(math.radians(bearing)) / 111_195
        dlon = 99.9 * math.sin(math.radians(bearing)) / (111_195 * math.cos(math.radians(LAT)))
        assert lat0 <= LAT + dlat <= lat1 and lon0 <= LON + dlon <= lon1


def test_same_category_nearby_and_recent_is_a_candidate_with_its_reason():
    new = Report("0301", NOW, LAT, LON)
    found = rank(new, [OpenCase("A", "0301", NOW - timedelta(hours=2), _north(40), LON)], RULES)
    assert [c.number for c in found] == ["A"]
    assert found[0].reason == "同类别，相距 40 米，2 小时前上报" and round(found[0].distance_m) == 40
    assert 0 < found[0].score <= 1 and not found[0].same_phone


def test_too_far_too_old_another_category_or_reported_later_is_not():
    new = Report("0301", NOW, LAT, LON)
    others = [OpenCase("far", "0301", NOW - timedelta(hours=1), _north(150), LON),
              OpenCase("old", "0301", NOW - timedelta(hours=73), LAT, LON),
              OpenCase("other", "0302", NOW - timedelta(hours=1), LAT, LON),
              OpenCase("later", "0301", NOW + timedelta(minutes=1), LAT, LON),
              OpenCase("nowhere", "0301", NOW - timedelta(hours=1))]
    assert rank(new, others, RULES) == []


def test_the_same_callers_phone_is_a_candidate_even_in_another_category_or_without_a_point():
    new = Report("H01", NOW, phone="13800001111")
    found = rank(new, [OpenCase("B", "H02", NOW - timedelta(days=3), phone="13800001111"),
                       OpenCase("C", "H01", NOW - timedelta(days=8), phone="13800001111")], RULES)
    assert [c.number for c in found] == ["B"]
    assert found[0].same_phone and found[0].reason == "同一来电号码，3 天前上报（类别不同）"
    assert "1380000" not in found[0].reason  # no personal data in the reason


def test_candidates_are_ranked_nearest_and_newest_first_and_limited():
    new = Report("0301", NOW, LAT, LON)
    others = [OpenCase(f"N{m}", "0301", NOW - timedelta(hours=1), _north(m), LON) for m in (90, 10, 50)]
    others.append(OpenCase("both", "0301", NOW - timedelta(minutes=5), _north(5), LON))
    found = rank(new, others, RULES)
    assert [c.number for c in found] == ["both", "N10", "N50", "N90"]
    assert len(rank(new, others * 2, DuplicateRules(limit=2))) == 2


def test_a_rule_with_a_zero_radius_or_window_is_off():
    new = Report("0301", NOW, LAT, LON, phone="138")
    near = OpenCase("A", "0301", NOW - timedelta(hours=1), LAT, LON, phone="138")
    assert rank(new, [near], DuplicateRules(radius_m=0, phone_window=timedelta(0))) == []
    assert rank(new, [near], DuplicateRules(radius_m=0))[0].same_phone
