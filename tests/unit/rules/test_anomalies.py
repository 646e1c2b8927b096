"""The band math of the anomaly checks, with exact values at its edges, and the checks of an hour
against its trailing window (pure functions: history frames in, checks out)."""

from __future__ import annotations

from datetime import datetime, timedelta

import pandas as pd
import pytest

from pipeline.rules import anomalies, checks, history
from pipeline.rules.anomalies import Settings, band, verdict

HOUR = "2026-11-25T17"


def hour_name(offset: int) -> str:
    """The hour ``offset`` hours from HOUR (negative: before it)."""
    return (datetime(2026, 11, 25, 17) + timedelta(hours=offset)).strftime("%Y-%m-%dT%H")


def rows(name: str, carts: int, categories: dict[str, float]) -> list[dict]:
    """History rows of one hour: carts, 2 lines and 3 units a cart, revenue the categories'."""
    revenue = round(sum(categories.values()), 2)
    out = [{"date_hour": name, "level": "hour", "carts": carts, "lines": 2 * carts,
            "units": 3 * carts, "revenue": revenue}]  # fmt: skip
    out += [{"date_hour": name, "level": "category", "category": c, "revenue": r}
            for c, r in categories.items()]  # fmt: skip
    return out


def frame(*hours: list[dict]) -> pd.DataFrame:
    found = pd.DataFrame([r for h in hours for r in h])
    return found.reindex(columns=[*history.COLUMNS, "date_hour"]).astype(history.COLUMNS)


def steady(n: int, carts: int = 100, cats: dict[str, float] | None = None) -> list[list[dict]]:
    """The ``n`` hours before HOUR, all alike."""
    cats = cats or {"a": 600.0, "b": 400.0}
    return [rows(hour_name(-i), carts, cats) for i in range(1, n + 1)]


def by_name(found: pd.DataFrame) -> dict[str, tuple]:
    return {
        r.name: (r.value, None if pd.isna(r.low) else r.low,
                 None if pd.isna(r.high) else r.high, r.status)
        for r in found.itertuples()
    }  # fmt: skip


# --- the band ------------------------------------------------------------------------------------


def test_a_flat_series_gets_the_floor_five_percent_of_its_median() -> None:
    assert band([100] * 24, 3.5) == (95.0, 105.0, 100.0)
    assert band([1000.0] * 24, 3.5) == (950.0, 1050.0, 1000.0)


def test_a_small_flat_series_gets_one_unit_either_side() -> None:
    assert band([10] * 12, 3.5) == (9.0, 11.0, 10.0)
    assert band([0] * 12, 3.5) == (0.0, 1.0, 0.0)  # never below 0: no figure can be
    assert band([0.5] * 12, 3.5) == (0.0, 1.5, 0.5)


def test_the_band_is_k_scaled_mads_either_side_of_the_median_to_hundredths() -> None:
    # median 100, deviations 10 5 0 5 10: MAD 5; 2 x 1.4826 x 5 = 14.826 > the 5 floor
    assert band([90, 95, 100, 105, 110], 2) == (85.17, 114.83, 100.0)
    # an even count: the median is the mean of the middle two
    assert band([1, 2, 3, 4], 1)[2] == 2.5


def test_one_odd_hour_in_the_window_does_not_widen_the_band() -> None:
    assert band([100] * 23 + [5000], 3.5) == (95.0, 105.0, 100.0)


@pytest.mark.parametrize(
    ("value", "status"),
    [(114.83, "ok"), (114.84, "anomaly"), (85.17, "ok"), (85.16, "anomaly"), (100, "ok")],
)
def test_the_edges_belong_to_the_band_and_the_next_hundredth_does_not(
    value: float, status: str
) -> None:
    low, high, _ = band([90, 95, 100, 105, 110], 2)
    assert verdict(value, low, high) == status


def test_without_a_band_there_is_no_verdict() -> None:
    assert verdict(5, None, None) == "no verdict"


# --- an hour against its window ------------------------------------------------------------------


def test_a_steady_hour_is_ok_on_every_figure() -> None:
    found = anomalies.check(frame(*steady(24), rows(HOUR, 100, {"a": 600.0, "b": 400.0})),
                            HOUR, Settings())  # fmt: skip
    assert by_name(found) == {
        "carts": (100.0, 95.0, 105.0, "ok"),
        "lines": (200.0, 190.0, 210.0, "ok"),
        "units": (300.0, 285.0, 315.0, "ok"),
        "revenue": (1000.0, 950.0, 1050.0, "ok"),
        "share:a": (60.0, 57.0, 63.0, "ok"),
        "share:b": (40.0, 38.0, 42.0, "ok"),
    }
    assert found["hours"].tolist() == [24] * 6


def test_a_one_cent_change_on_a_flat_series_is_no_anomaly() -> None:
    found = anomalies.check(frame(*steady(24), rows(HOUR, 100, {"a": 600.01, "b": 400.0})),
                            HOUR, Settings())  # fmt: skip
    assert by_name(found)["revenue"] == (1000.01, 950.0, 1050.0, "ok")


def test_carts_dropping_by_sixty_percent_is_an_anomaly_of_carts_lines_units_and_revenue() -> None:
    found = anomalies.check(frame(*steady(24), rows(HOUR, 40, {"a": 240.0, "b": 160.0})),
                            HOUR, Settings())  # fmt: skip
    got = by_name(found)
    assert got["carts"] == (40.0, 95.0, 105.0, "anomaly")
    assert got["revenue"] == (400.0, 950.0, 1050.0, "anomaly")
    assert got["share:a"] == (60.0, 57.0, 63.0, "ok")  # the mix did not change


def test_the_verdict_fails_the_hour_only_when_asked_and_only_outside_the_band() -> None:
    """``checks.hour_verdict``: what HistoryHour keeps of the checks, or, with ``fail``, the one
    error naming each anomaly; 105 carts is the band's edge, so no error."""
    drop = frame(*steady(24), rows(HOUR, 40, {"a": 240.0, "b": 160.0}))
    kept = checks.hour_verdict(drop, HOUR, Settings(), fail=False)
    assert kept["anomaly_window"] == {"hours": 24, "window": 24, "needed": 12, "k": 3.5}
    assert [c["name"] for c in kept["anomalies"] if c["status"] == "anomaly"] == [
        "carts", "lines", "units", "revenue",
    ]  # fmt: skip
    with pytest.raises(anomalies.AnomalyError, match=r"^2026-11-25T17: .*carts = 40 outside"):
        checks.hour_verdict(drop, HOUR, Settings(), fail=True)
    edge = frame(*steady(24), rows(HOUR, 105, {"a": 630.0, "b": 420.0}))
    assert checks.hour_verdict(edge, HOUR, Settings(), fail=True)["anomalies"][0]["status"] == "ok"


def test_a_category_whose_share_triples_is_named() -> None:
    cats = {"a": 600.0, "b": 300.0, "c": 100.0}
    found = anomalies.check(
        frame(*steady(24, cats=cats), rows(HOUR, 100, {"a": 400.0, "b": 300.0, "c": 300.0})),
        HOUR, Settings(),
    )  # fmt: skip
    got = by_name(found)
    assert got["share:c"] == (30.0, 9.0, 11.0, "anomaly")
    assert got["share:a"] == (40.0, 57.0, 63.0, "anomaly")  # what c took came from a
    assert got["share:b"] == (30.0, 28.5, 31.5, "ok")
    assert got["revenue"][3] == "ok"


def test_a_new_category_and_one_that_stopped_selling_are_both_checked() -> None:
    found = anomalies.check(
        frame(*steady(24, cats={"a": 990.0, "b": 10.0}), rows(HOUR, 100, {"a": 990.0, "n": 10.0})),
        HOUR, Settings(),
    )  # fmt: skip
    got = by_name(found)
    assert got["share:b"] == (0.0, 0.0, 2.0, "ok")  # 1 %: within one point
    assert got["share:n"] == (1.0, 0.0, 1.0, "ok")  # the last value inside
    assert list(got) == ["carts", "lines", "units", "revenue", "share:a", "share:b", "share:n"]


def test_shares_are_exact_to_the_hundredth_from_whole_cents() -> None:
    table = anomalies.figures(frame(rows(HOUR, 1, {"a": 0.01, "b": 0.02})))
    assert table.loc[HOUR, "share:a"] == 33.33 and table.loc[HOUR, "share:b"] == 66.67


@pytest.mark.parametrize(("hours", "status"), [(12, "anomaly"), (11, "no verdict")])
def test_a_verdict_needs_exactly_the_minimum_hours(hours: int, status: str) -> None:
    found = anomalies.check(frame(*steady(hours), rows(HOUR, 40, {"a": 400.0})), HOUR,
                            Settings(min_hours=12))  # fmt: skip
    got = by_name(found)
    assert got["carts"][3] == status and found["hours"].iloc[0] == hours
    if status == "no verdict":
        assert got["carts"] == (40.0, None, None, "no verdict")


def test_the_window_is_the_clock_hours_before_the_hour_on_record_only() -> None:
    before = steady(24)  # the 24 hours before HOUR ...
    del before[4]  # ... but the one 5 hours before it, missing
    odd = [rows(hour_name(-25), 1, {"a": 1.0}), rows(hour_name(-26), 1, {"a": 1.0})]
    found = anomalies.check(frame(*before, *odd, rows(HOUR, 100, {"a": 600.0, "b": 400.0})),
                            HOUR, Settings(window=24))  # fmt: skip
    assert found["hours"].iloc[0] == 23  # hours 25 and 26 before are outside the window
    assert by_name(found)["carts"] == (100.0, 95.0, 105.0, "ok")


def test_the_hour_itself_and_later_hours_are_not_in_its_window() -> None:
    later = rows(hour_name(1), 5, {"a": 5.0})
    found = anomalies.check(frame(*steady(12), later, rows(HOUR, 100, {"a": 600.0, "b": 400.0})),
                            HOUR, Settings(min_hours=12))  # fmt: skip
    assert found["hours"].iloc[0] == 12 and by_name(found)["carts"][3] == "ok"
    assert anomalies.window_hours(HOUR, 24) == ("2026-11-24T17", "2026-11-25T16")


def test_an_hour_without_rows_cannot_be_checked() -> None:
    with pytest.raises(ValueError, match="no history rows of hour 2026-11-25T17"):
        anomalies.check(frame(*steady(3)), HOUR, Settings())


# --- changes since the previous hour, and what the report and the console say -------------------


def check(name: str, status: str, value: float = 1.0) -> dict:
    return {"name": name, "value": value, "low": 0.0, "high": 2.0, "status": status}


@pytest.mark.parametrize(
    ("now", "before", "change"),
    [
        ("anomaly", None, "new"),
        ("anomaly", "ok", "new"),
        ("anomaly", "no verdict", "new"),
        ("anomaly", "anomaly", "still failing"),
        ("ok", "anomaly", "resolved"),
        ("ok", "ok", None),
        ("ok", None, None),
        ("no verdict", "anomaly", None),
    ],
)
def test_the_change_since_the_previous_hour(now: str, before: str | None, change: str) -> None:
    previous = None if before is None else [check("carts", before)]
    assert checks.with_changes([check("carts", now)], previous) == [
        {**check("carts", now), "change": change}
    ]


def test_a_previous_anomaly_that_is_no_check_now_is_listed_as_resolved() -> None:
    previous = [check("share:gone", "anomaly"), check("carts", "anomaly")]
    assert checks.resolved_since([check("carts", "ok")], previous) == ["share:gone"]


def test_the_console_message_names_each_anomaly_its_value_and_band() -> None:
    found = [
        {"name": "carts", "value": 40.0, "low": 95.0, "high": 105.0, "status": "anomaly"},
        {"name": "revenue", "value": 400.0, "low": 950.0, "high": 1050.0, "status": "anomaly"},
        {"name": "share:c", "value": 30.0, "low": 9.0, "high": 11.0, "status": "anomaly"},
        {"name": "units", "value": 300.0, "low": 285.0, "high": 315.0, "status": "ok"},
    ]
    assert checks.failure_message(found, HOUR) == (
        "2026-11-25T17: anomaly against past hours: carts = 40 outside its band 95 to 105; "
        "revenue = $400.00 outside its band $950.00 to $1,050.00; share of c = 30.00% outside "
        "its band 9.00% to 11.00%"
    )
    assert checks.anomaly_finding(found, 24) == (
        "Anomalies against the 24 complete hours before this one: carts 40 (expected 95 to "
        "105); revenue $400.00 (expected $950.00 to $1,050.00); share of c 30.00% (expected "
        "9.00% to 11.00%)."
    )
    assert checks.anomaly_finding(found[3:], 24) is None


def test_gates_are_checks_with_their_threshold_as_the_band() -> None:
    assert checks.gate_checks({"cart_user_exists": {"rows": 2, "allowed": 5},
                               "cart_ids_unique": {"rows": 1, "allowed": 0}}) == [
        {"name": "cart_user_exists", "value": 2.0, "low": 0.0, "high": 5.0, "status": "ok"},
        {"name": "cart_ids_unique", "value": 1.0, "low": 0.0, "high": 0.0, "status": "anomaly"},
    ]  # fmt: skip


def test_each_drift_is_shown_with_the_first_hour_the_history_records_it() -> None:
    drift = {"products": {"added": ["color"], "missing": ["brand"]}, "users": {"added": [],
             "missing": []}}  # fmt: skip
    past = pd.DataFrame(
        {"date_hour": [hour_name(-3), hour_name(-2), hour_name(-5), HOUR],
         "level": ["drift", "drift", "drift", "drift"],
         "endpoint": ["products", "products", "carts", "products"],
         "field": ["color", "color", "color", "brand"],
         "drift": ["added", "added", "added", "missing"]}
    )  # fmt: skip
    entries = checks.first_seen(drift, past, HOUR)
    assert entries == [
        ("products", "added", "color", "2026-11-25T14"),
        ("products", "missing", "brand", HOUR),
    ]
    assert checks.drift_sentences(entries) == [
        "products: color added (sent, not declared in pipeline/schema.py: dropped, not stored); "
        "first seen 2026-11-25T14.",
        "products: brand missing (declared, not sent in any record); first seen 2026-11-25T17.",
    ]
    assert checks.first_seen(drift, None, HOUR)[0][3] == HOUR
