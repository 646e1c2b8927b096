"""Findings and what-changed on small frames, with every figure worked out by hand; and every
figure of a random hour recomputed independently (Decimal arithmetic on the CSV text)."""

from __future__ import annotations

import csv
import io
import random
from collections import defaultdict
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import numpy as np
import pandas as pd
import pandas.testing as pdt
import pytest

from pipeline.rules import changes, findings, numbers
from pipeline.rules import tables as table_rules
from pipeline.rules.changes import Snapshot
from pipeline.storage import formats

D = Decimal
BANDS = ["under 25", "25-34", "35-44", "45-54", "55-64", "65 and over", "age unknown"]


def category_summary() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "category": ["a-cat", "b-cat", "c-cat", "d-cat"],
            "total_sales": [100.00, 300.01, 49.99, 50.00],
            "total_items_sold": [4, 1, 10, 2],
            "total_sales_discounted": [90.00, 270.00, 49.99, 40.00],
        }
    )


def user_summary() -> pd.DataFrame:
    """Ann is 24 (under 25), Bob 25 (25-34), Cy 65 (65 and over); Di has no age or city."""
    return pd.DataFrame(
        {
            "user_id": [1, 2, 3, 4],
            "first_name": ["Ann", "Bob", "Cy", "Di"],
            "age": [24, 25, 65, None],
            "city": ["Oslo", "Rome", "Oslo", None],
            "carts": [1, 3, 1, 7],
            "total_items": [3, 10, 2, 2],
            "total_spent": [100.00, 300.01, 50.00, 49.99],
            "total_spent_discounted": [90.00, 270.00, 45.00, 44.99],
        }
    )


def cart_ids() -> pd.Series:
    """12 carts on 15 lines (cart 1 has two lines, cart 5 three)."""
    return pd.Series([1, 1, 2, 3, 4, 5, 5, 5, 6, 7, 8, 9, 10, 11, 12], name="cart_id")


def tables() -> table_rules.Tables:
    return table_rules.tables(user_summary(), category_summary(), cart_ids())


@pytest.mark.parametrize(
    ("num", "den", "want"),
    [(5, 2, 3), (-5, 2, -3), (4, 3, 1), (2, 3, 1), (1, 3, 0), (0, 7, 0), (-1, 3, 0), (7, 2, 4)],
)
def test_div_half_up_rounds_halves_away_from_zero(num: int, den: int, want: int) -> None:
    assert numbers.div_half_up(num, den) == want


def test_money_percent_and_cents_formatting() -> None:
    assert numbers.money(123456789) == "$1,234,567.89"
    assert numbers.money(-5) == "-$0.05"
    assert numbers.money(0, sign=True) == "+$0.00"
    assert numbers.money(100, sign=True) == "+$1.00"
    assert numbers.tenths_percent(1, 8) == D("12.5")
    assert numbers.tenths_percent(1, 16) == D("6.3")  # 6.25 rounds up
    assert numbers.tenths_percent(-1, 16) == D("-6.3")
    assert numbers.tenths_percent(3, 0) == D("0.0")
    assert numbers.percent(D("-2.5"), sign=True) == "-2.5%"
    assert numbers.percent(D("0.0"), sign=True) == "+0.0%"
    got = numbers.cents(pd.Series([1365.91, 0.29, 1e6, None]))
    assert got.tolist() == [136591, 29, 100_000_000, 0]


def test_category_table_sorts_by_revenue_in_cents() -> None:
    want = pd.DataFrame(
        {
            "category": ["b-cat", "a-cat", "d-cat", "c-cat"],
            "revenue": [30001, 10000, 5000, 4999],
            "units": [1, 4, 2, 10],
            "discounted": [27000, 9000, 4000, 4999],
            "discount": [3001, 1000, 1000, 0],
        }
    )
    pdt.assert_frame_equal(table_rules.category_table(category_summary()), want)


def test_city_age_and_frequency_tables() -> None:
    t = tables()
    pdt.assert_frame_equal(
        t.cities,
        pd.DataFrame(
            {
                "city": ["Rome", "Oslo", "(unknown)"],
                "customers": [1, 2, 1],
                "carts": [3, 2, 7],
                "spend": [30001, 15000, 4999],
            }
        ),
    )
    pdt.assert_frame_equal(
        t.ages,
        pd.DataFrame(
            {
                "band": BANDS,
                "customers": [1, 1, 0, 0, 0, 1, 1],
                "spend": [10000, 30001, 0, 0, 0, 5000, 4999],
            }
        ),
    )
    pdt.assert_frame_equal(
        t.frequency,
        pd.DataFrame(
            {
                "group": [1, 3, 6],  # Di's 7 carts fall in "6 or more"
                "customers": [2, 1, 1],
                "carts": [2, 3, 7],
                "spend": [15000, 30001, 4999],
                "avg_cart": [7500, 10000, 714],  # 300.01 / 3 = 100.0033; 49.99 / 7 = 7.1414
            }
        ),
    )
    assert (t.carts, t.lines, t.units, t.revenue, t.discounted) == (12, 15, 17, 50000, 44999)


def test_age_band_boundaries() -> None:
    ages = pd.Series([0, 24, 25, 34, 35, 44, 45, 54, 55, 64, 65, 99, None])
    assert table_rules.age_band(ages).tolist() == [
        "under 25", "under 25", "25-34", "25-34", "35-44", "35-44", "45-54", "45-54",
        "55-64", "55-64", "65 and over", "65 and over", "age unknown",
    ]  # fmt: skip


def test_findings_sentences_worked_out_by_hand() -> None:
    texts = [f.text for f in findings.findings(tables())]
    assert texts == [
        "Sales: 12 carts from 4 customers, 15 lines, 17 units; $500.00 at list prices and "
        "$449.99 after discounts, $41.67 per cart on average.",
        "Categories: the top 3 of 4 take 90.0% of revenue: b-cat $300.01 (60.0%; 1 unit at "
        "$300.01 on average), a-cat $100.00 (20.0%; 4 units at $25.00), d-cat $50.00 (10.0%; "
        "2 units at $25.00).",
        "Units: c-cat sells the most units, 10 of 17 (58.8%), for $49.99 (10.0% of revenue) at "
        "$5.00 a unit on average.",
        "Top customers: Bob (user 2, Rome, age 25) spent $300.01 in 3 carts (60.0% of revenue); "
        "Ann (user 1, Oslo, age 24) $100.00 in 1 cart (20.0%); Cy (user 3, Oslo, age 65) $50.00 "
        "in 1 cart (10.0%).",
        "Cities: Rome spends the most, $300.01 (60.0%) from 1 customer; then Oslo $150.00 "
        "(30.0%, 2 customers) and (unknown) $49.99 (10.0%, 1 customer); 3 cities in all.",
        "Age: the 25-34 band spends the most, $300.01 (60.0%) from 1 customer, $300.01 each; "
        "then under 25 $100.00 (20.0%, 1 customer, $100.00 each) and 65 and over $50.00 "
        "(10.0%, 1 customer, $50.00 each).",
        "Frequency and basket size: 3.0 carts per customer at $41.67 a cart; the 2 customers "
        "with 1 cart spend $75.00 a cart, the 1 with 3 carts $100.00 a cart and the 1 with 6 or "
        "more carts $7.14 a cart.",
        "Discounts: $50.01 off list prices (10.0%), $500.00 list against $449.99 paid; the most "
        "in dollars on b-cat ($30.01, 10.0%), the deepest rate on d-cat (20.0%, $10.00).",
    ]


def test_a_customer_without_age_is_named_without_one() -> None:
    users = user_summary().assign(total_spent=[1.0, 2.0, 3.0, 494.0])
    found = {f.topic: f for f in findings.findings(table_rules.tables(users, category_summary(),
                                                                   cart_ids()))}  # fmt: skip
    assert found["customers"].text.startswith(
        "Top customers: Di (user 4, (unknown)) spent $494.00 in 7 carts (98.8% of revenue);"
    )
    assert "top1_age" not in found["customers"].figures


def test_an_hour_without_sales_has_one_plain_finding() -> None:
    empty = table_rules.tables(
        user_summary().iloc[:0], category_summary().iloc[:0], pd.Series([], dtype="int64")
    )
    assert [f.text for f in findings.findings(empty)] == [
        "Sales: no sales in this snapshot (0 carts, $0.00)."
    ]


# --- what changed --------------------------------------------------------------------------------


def snap(name: str, cats: list[tuple[str, float, int]], ids: list[int]) -> Snapshot:
    summary = pd.DataFrame(
        {
            "category": [c for c, _, _ in cats],
            "total_sales": [s for _, s, _ in cats],
            "total_items_sold": [u for _, _, u in cats],
            "total_sales_discounted": [s for _, s, _ in cats],
        }
    )
    return changes.snapshot(name, summary, pd.Series(ids, dtype="int64"))


def test_changes_against_the_previous_hour() -> None:
    before = snap("2026-11-25T14", [("a-cat", 100.00, 4), ("b-cat", 300.01, 1)], [1, 1, 2, 3])
    now = snap("2026-11-25T17", [("a-cat", 120.00, 5), ("c-cat", 5.00, 1)], [2, 3, 4, 4, 5])
    got = changes.changes(now, before)
    assert got.previous == "2026-11-25T14"
    pdt.assert_frame_equal(
        got.totals,
        pd.DataFrame(
            {
                "measure": ["carts", "lines", "units", "revenue"],
                "before": [3, 4, 5, 40001],
                "now": [4, 5, 6, 12500],
                "change": [1, 1, 1, -27501],
            }
        ),
    )
    pdt.assert_frame_equal(
        got.categories,
        pd.DataFrame(
            {
                "category": ["b-cat", "a-cat", "c-cat"],
                "revenue_before": [30001, 10000, 0],
                "revenue_now": [0, 12000, 500],
                "revenue_change": [-30001, 2000, 500],
                "units_before": [1, 4, 0],
                "units_now": [0, 5, 1],
                "units_change": [-1, 1, 1],
            }
        ),
    )
    assert got.appeared.tolist() == [4, 5] and got.vanished.tolist() == [1]
    assert got.sentences == [
        "Against 2026-11-25T14 (3 hours earlier): carts 4 (+1), lines 5 (+1), units 6 (+1), "
        "revenue $125.00 (-$275.01, -68.8%).",
        "2 carts appeared (ids 4, 5) and 1 vanished (id 1).",
        "By category: b-cat -$300.01 ($300.01 to $0.00, units -1), a-cat +$20.00 ($100.00 to "
        "$120.00, units +1) and c-cat +$5.00 ($0.00 to $5.00, units +1).",
    ]


def test_an_unchanged_hour_says_so() -> None:
    before = snap("2026-11-25T16", [("a-cat", 100.00, 4)], [1, 2])
    now = snap("2026-11-25T17", [("a-cat", 100.00, 4)], [1, 2])
    assert changes.changes(now, before).sentences == [
        "Against 2026-11-25T16 (1 hour earlier): carts 2 (no change), lines 2 (no change), "
        "units 4 (no change), revenue $100.00 (no change).",
        "No cart appeared or vanished.",
        "Revenue and units by category are unchanged.",
    ]


def test_many_carts_appearing_are_counted_and_the_first_ten_listed() -> None:
    before = snap("2026-11-25T16", [("a-cat", 100.00, 4)], [50])
    now = snap("2026-11-25T17", [("a-cat", 100.00, 4)], [*range(1, 13), 50])
    assert changes.changes(now, before).sentences[1] == (
        "12 carts appeared (ids 1, 2, 3, 4, 5, 6, 7, 8, 9, 10 and 2 more)."
    )
    assert changes.changes(before, now).sentences[1] == (
        "12 carts vanished (ids 1, 2, 3, 4, 5, 6, 7, 8, 9, 10 and 2 more)."
    )


def test_no_previous_snapshot_is_said_plainly() -> None:
    now = snap("2026-11-25T17", [("a-cat", 100.00, 4)], [1, 2])
    got = changes.changes(now, None)
    assert got.previous is None and got.categories.empty
    assert got.sentences == [
        "There is no earlier complete snapshot, so there is nothing to compare this hour with."
    ]


# --- every figure recomputed independently -------------------------------------------------------


def q2(x: Decimal) -> Decimal:
    return x.quantize(D("0.01"), ROUND_HALF_UP)


def q1(x: Decimal) -> Decimal:
    return x.quantize(D("0.1"), ROUND_HALF_UP)


def share(part: Decimal, whole: Decimal) -> Decimal:
    return q1(part / whole * 100)


def random_hour(tmp: Path, seed: int) -> tuple[Path, Path, list[int]]:
    """Insight CSVs of a random hour whose user and category totals agree, as the pipeline's."""
    rng = random.Random(seed)
    cats = {f"cat-{i:02d}": (rng.randint(1, 900_000), rng.randint(1, 400)) for i in range(12)}
    cats["cat-05"] = cats["cat-04"]  # a tie, broken by name
    total = sum(c for c, _ in cats.values())
    discounted = {k: c - rng.randint(0, c // 4) for k, (c, _) in cats.items()}
    users = 300
    cuts = sorted(rng.sample(range(1, total), users - 1))
    spend = [b - a for a, b in zip([0, *cuts], [*cuts, total], strict=True)]
    dtotal = sum(discounted.values())
    dcuts = sorted(rng.sample(range(1, dtotal), users - 1))
    dspend = [b - a for a, b in zip([0, *dcuts], [*dcuts, dtotal], strict=True)]
    cities = [f"City {i}" for i in range(20)]

    def money(c: int) -> str:
        return f"{c // 100}.{c % 100:02d}"

    cat_path, user_path = tmp / "category_summary.csv", tmp / "user_summary.csv"
    with cat_path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["category", "total_sales", "total_items_sold", "total_sales_discounted"])
        for name, (c, units) in sorted(cats.items()):
            w.writerow([name, money(c), units, money(discounted[name])])
    ids: list[int] = []
    with user_path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["user_id", "first_name", "age", "city", "carts", "total_items",
                    "total_spent", "total_spent_discounted"])  # fmt: skip
        for uid in range(1, users + 1):
            carts = rng.choice([1, 1, 1, 2, 2, 3, 4, 5, 6, 7, 9])
            age = "" if uid % 37 == 0 else rng.randint(16, 80)
            w.writerow([uid, f"Name{uid}", age, rng.choice(cities), carts, rng.randint(1, 30),
                        money(spend[uid - 1]), money(dspend[uid - 1])])  # fmt: skip
            for _ in range(carts):
                ids += [len(ids) + 1] * rng.randint(1, 4)
    return user_path, cat_path, ids


def expected_figures(user_path: Path, cat_path: Path, ids: list[int]) -> dict[str, dict]:
    with cat_path.open(newline="") as fh:
        cats = [
            (r["category"], D(r["total_sales"]), int(r["total_items_sold"]),
             D(r["total_sales_discounted"]))
            for r in csv.DictReader(fh)
        ]  # fmt: skip
    with user_path.open(newline="") as fh:
        users = list(csv.DictReader(fh))
    revenue = sum(c[1] for c in cats)
    paid = sum(c[3] for c in cats)
    units = sum(c[2] for c in cats)
    carts = len(set(ids))
    out: dict[str, dict] = {}
    out["sales"] = {
        "carts": carts, "customers": len(users), "lines": len(ids), "units": units,
        "revenue": revenue, "discounted": paid, "avg_cart": q2(revenue / carts),
    }  # fmt: skip

    by_revenue = sorted(cats, key=lambda c: (-c[1], c[0]))
    fig: dict = {"categories": len(cats)}
    for i, (name, rev, n, _) in enumerate(by_revenue[:3], 1):
        fig |= {f"top{i}": name, f"top{i}_revenue": rev, f"top{i}_share": share(rev, revenue),
                f"top{i}_units": n, f"top{i}_avg_price": q2(rev / n)}  # fmt: skip
    fig["top_share"] = share(sum(c[1] for c in by_revenue[:3]), revenue)
    out["categories"] = fig

    name, rev, n, _ = sorted(cats, key=lambda c: (-c[2], c[0]))[0]
    out["units"] = {
        "category": name, "units": n, "total_units": units, "unit_share": share(D(n), D(units)),
        "revenue": rev, "revenue_share": share(rev, revenue), "avg_price": q2(rev / n),
    }  # fmt: skip

    ranked = sorted(users, key=lambda u: (-D(u["total_spent"]), int(u["user_id"])))
    fig = {}
    for i, u in enumerate(ranked[:3], 1):
        fig |= {f"top{i}_user_id": int(u["user_id"]), f"top{i}_name": u["first_name"],
                f"top{i}_city": u["city"], f"top{i}_spend": D(u["total_spent"]),
                f"top{i}_carts": int(u["carts"]),
                f"top{i}_share": share(D(u["total_spent"]), revenue)}  # fmt: skip
        if u["age"]:
            fig[f"top{i}_age"] = int(u["age"])
    out["customers"] = fig

    city_spend: dict[str, Decimal] = defaultdict(D)
    city_people: dict[str, int] = defaultdict(int)
    for u in users:
        city_spend[u["city"]] += D(u["total_spent"])
        city_people[u["city"]] += 1
    fig = {"cities": len(city_spend)}
    for i, city in enumerate(sorted(city_spend, key=lambda c: (-city_spend[c], c))[:3], 1):
        fig |= {f"top{i}": city, f"top{i}_spend": city_spend[city],
                f"top{i}_share": share(city_spend[city], revenue),
                f"top{i}_customers": city_people[city]}  # fmt: skip
    out["cities"] = fig

    def band(age: str) -> str:
        if not age:
            return "age unknown"
        a = int(age)
        for low, label in ((65, "65 and over"), (55, "55-64"), (45, "45-54"), (35, "35-44"),
                           (25, "25-34")):  # fmt: skip
            if a >= low:
                return label
        return "under 25"

    order = BANDS
    band_spend: dict[str, Decimal] = defaultdict(D)
    band_people: dict[str, int] = defaultdict(int)
    for u in users:
        band_spend[band(u["age"])] += D(u["total_spent"])
        band_people[band(u["age"])] += 1
    fig = {}
    ranked_bands = sorted(band_spend, key=lambda b: (-band_spend[b], order.index(b)))
    for i, b in enumerate(ranked_bands[:3], 1):
        fig |= {f"top{i}": b, f"top{i}_spend": band_spend[b],
                f"top{i}_share": share(band_spend[b], revenue),
                f"top{i}_customers": band_people[b],
                f"top{i}_each": q2(band_spend[b] / band_people[b])}  # fmt: skip
    out["ages"] = fig

    fig = {"carts_per_customer": q1(D(carts) / len(users)), "avg_cart": q2(revenue / carts)}
    groups: dict[int, list[dict]] = defaultdict(list)
    for u in users:
        groups[min(int(u["carts"]), 6)].append(u)
    for g, members in sorted(groups.items()):
        spent = sum(D(u["total_spent"]) for u in members)
        fig[f"carts{g}_customers"] = len(members)
        fig[f"carts{g}_avg_cart"] = q2(spent / sum(int(u["carts"]) for u in members))
    out["frequency"] = fig

    most = sorted(cats, key=lambda c: (-(c[1] - c[3]), c[0]))[0]
    deepest = sorted(cats, key=lambda c: (-(c[1] - c[3]) / c[1], c[0]))[0]
    fig = {
        "discount": revenue - paid, "rate": share(revenue - paid, revenue), "list": revenue,
        "paid": paid, "most": most[0], "most_discount": most[1] - most[3],
        "most_rate": share(most[1] - most[3], most[1]),
    }  # fmt: skip
    if deepest[0] != most[0]:
        fig |= {"deepest": deepest[0], "deepest_rate": share(deepest[1] - deepest[3], deepest[1]),
                "deepest_discount": deepest[1] - deepest[3]}  # fmt: skip
    out["discounts"] = fig
    return out


def shown(value: object) -> str:
    """How a figure reads in a sentence, formatted independently of the code under test."""
    return f"{value:,}" if isinstance(value, int) else str(value)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_every_figure_matches_the_csvs_recomputed_independently(tmp_path: Path, seed: int) -> None:
    user_path, cat_path, ids = random_hour(tmp_path, seed)
    t = table_rules.tables(
        formats.read_csv(user_path), formats.read_csv(cat_path), pd.Series(ids, dtype="int64")
    )
    found = findings.findings(t)
    assert [f.topic for f in found] == [
        "sales", "categories", "units", "customers", "cities", "ages", "frequency", "discounts",
    ]  # fmt: skip
    want = expected_figures(user_path, cat_path, ids)
    for finding in found:
        assert finding.figures == want[finding.topic], finding.topic
        for key, value in finding.figures.items():
            if isinstance(value, Decimal) and value.as_tuple().exponent == -2:
                text = f"${value:,.2f}"  # dollars
            elif key == "carts_per_customer":
                text = str(value)
            elif isinstance(value, Decimal):
                text = f"{value}%"
            elif key.endswith("user_id"):
                text = f"user {value}"
            else:
                text = shown(value)
            assert text in finding.text, (finding.topic, key, text, finding.text)


def test_snapshot_counts_carts_once_and_lines_each() -> None:
    s = snap("2026-11-25T17", [("a-cat", 1.00, 1)], [3, 3, 1, 2, 2, 2])
    assert (s.carts, s.lines) == (3, 6)
    np.testing.assert_array_equal(s.cart_ids, [1, 2, 3])


def test_read_back_from_csv_text_gives_the_same_tables() -> None:
    """The findings read the CSVs' two-decimal text exactly (no float drift into cents)."""
    text = "category,total_sales,total_items_sold,total_sales_discounted\nx,0.29,1,0.07\n"
    frame = pd.read_csv(io.StringIO(text))
    assert table_rules.category_table(frame)[["revenue", "discounted"]].iloc[0].tolist() == [29, 7]


@pytest.mark.parametrize(
    ("ids", "want"),
    [([1, 1, 2, 5, 5, 5], [1, 2, 5]), ([5, 1, 5, 2, 1], [1, 2, 5]), ([], []), ([7], [7])],
)
def test_unique_ids_in_cart_order_or_any_order(ids: list[int], want: list[int]) -> None:
    assert table_rules.unique_ids(pd.Series(ids, dtype="int64")).tolist() == want
