"""History rows of one hour and the trends over days, on small frames worked out by hand."""

from __future__ import annotations

import pandas as pd
import pandas.testing as pdt

from pipeline.rules import history


def test_hour_rows_hold_the_hour_its_categories_and_its_customers() -> None:
    users = pd.DataFrame(
        {
            "user_id": [7, 2],
            "first_name": ["Ann", "Bob"],
            "age": [30, 40],
            "city": ["Oslo", "Rome"],
            "carts": [2, 1],
            "total_items": [5, 1],
            "total_spent": [100.10, 0.29],
            "total_spent_discounted": [90.00, 0.07],
        }
    )
    categories = pd.DataFrame(
        {
            "category": ["b-cat", "a-cat"],
            "total_sales": [0.29, 100.10],
            "total_items_sold": [1, 5],
            "total_sales_discounted": [0.07, 90.00],
        }
    )
    got = history.hour_rows(users, categories, lines=4, run_id="run-20261125T173000Z-7")
    na = pd.NA
    want = pd.DataFrame(
        {
            "level": ["hour", "category", "category", "user", "user"],
            "category": [na, "a-cat", "b-cat", na, na],
            "user_id": [na, na, na, 2, 7],
            "carts": [3, na, na, 1, 2],
            "lines": [4, na, na, na, na],
            "users": [2, na, na, na, na],
            "units": [6, 5, 1, 1, 5],
            "revenue": [100.39, 100.10, 0.29, 0.29, 100.10],
            "revenue_discounted": [90.07, 90.00, 0.07, 0.07, 90.00],
            "endpoint": [na] * 5,  # level "drift" only
            "field": [na] * 5,
            "drift": [na] * 5,
            "run_id": ["run-20261125T173000Z-7"] * 5,
        }
    ).astype(history.COLUMNS)
    pdt.assert_frame_equal(got, want)
    assert "first_name" not in got and "city" not in got  # no names in the long-lived history


def test_an_hour_without_carts_has_one_row_of_zeros() -> None:
    users = pd.DataFrame(columns=["user_id", "carts", "total_items", "total_spent",
                                  "total_spent_discounted"])  # fmt: skip
    categories = pd.DataFrame(
        columns=["category", "total_sales", "total_items_sold", "total_sales_discounted"]
    )
    got = history.hour_rows(users, categories, lines=0)
    assert got["level"].tolist() == ["hour"]
    assert got.iloc[0][["carts", "lines", "users", "units"]].tolist() == [0, 0, 0, 0]
    assert got.iloc[0][["revenue", "revenue_discounted"]].tolist() == [0.0, 0.0]


def rows(hour: str, revenue: float, carts: int, cats: dict[str, float]) -> list[dict]:
    out = [{"date_hour": hour, "level": "hour", "carts": carts, "revenue": revenue}]
    out += [
        {"date_hour": hour, "level": "category", "category": c, "revenue": r}
        for c, r in cats.items()
    ]
    return out


def test_window_covers_the_days_up_to_and_including_the_hour() -> None:
    assert history.window("2026-11-25T17", 7) == ("2026-11-18T18", "2026-11-25T17")
    assert history.window("2026-03-01T00", 1) == ("2026-02-28T01", "2026-03-01T00")


def test_trends_over_the_window() -> None:
    frame = pd.DataFrame(
        rows("2026-11-18T17", 999.0, 99, {"old": 999.0})  # one hour too old
        + rows("2026-11-18T18", 100.0, 2, {"a": 60.0, "b": 40.0})  # the first hour inside
        + rows("2026-11-25T16", 300.5, 5, {"a": 0.5, "b": 100.0, "c": 200.0})
        + rows("2026-11-25T17", 200.0, 4, {"a": 150.0, "d": 50.0})
        + rows("2026-11-25T18", 999.0, 99, {"new": 999.0})  # after the hour: not yet
    )
    got = history.trends(frame, "2026-11-25T17", 7)
    assert (got.first, got.last, got.days) == ("2026-11-18T18", "2026-11-25T17", 7)
    pdt.assert_frame_equal(
        got.hours,
        pd.DataFrame(
            {
                "date_hour": ["2026-11-18T18", "2026-11-25T16", "2026-11-25T17"],
                "hour": pd.to_datetime(
                    ["2026-11-18 18:00", "2026-11-25 16:00", "2026-11-25 17:00"]
                ),
                "carts": [2, 5, 4],
                "revenue": [10000, 30050, 20000],
            }
        ),
        check_dtype=False,
    )
    # revenue over the window: a 210.50, b 140.00, c 200.00, d 50.00 -> a, c, b, d
    assert got.categories.columns.tolist() == ["a", "c", "b", "d"]
    assert got.categories.to_numpy().tolist() == [
        [6000, 0, 4000, 0],
        [50, 20000, 10000, 0],
        [15000, 0, 0, 5000],
    ]
    # 3 hours, $600.50 in all: $200.17 an hour on average; carts (2 + 5 + 4) / 3 = 3.67 -> 3.7
    assert got.sentence == (
        "Over the last 7 days, 3 hours are on record: $600.50 of revenue, $200.17 and 3.7 carts "
        "an hour on average; this hour $200.00 (-$0.17 against the average)."
    )


def test_a_single_hour_has_no_trend_yet() -> None:
    frame = pd.DataFrame(rows("2026-11-25T17", 10.0, 1, {"a": 10.0}))
    got = history.trends(frame, "2026-11-25T17", 7)
    assert got.sentence == "This is the only hour on record in the last 7 days: no trend yet."
    assert got.hours["revenue"].tolist() == [1000]
