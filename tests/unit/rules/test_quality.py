"""Quality gates: each check finds exactly the offending rows; thresholds decide the verdict."""

from __future__ import annotations

import pandas as pd
import pytest

from pipeline.rules import quality
from pipeline.rules.quality import QualityError


def carts() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "cart_id": [1, 2, 3],
            "user_id": [1, 2, 99],  # user 99 does not exist
            "total": [7.96, 100.0, 5.0],
            "discounted_total": [7.0, 90.0, 4.5],
        }
    )


def lines() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "cart_id": [1, 1, 2, 3],
            "user_id": [1, 1, 2, 99],
            "product_id": [16, 16, 500, 16],  # product 500 is not in the catalogue
            "quantity": [2, 2, 1, 2],
            "price": [1.99, 1.99, 100.0, 2.5],
            "line_total": [3.98, 3.98, 100.0, 5.0],
            "discounted_line_total": [3.5, 3.5, 90.0, 4.5],
        }
    )


def findings(api_line_totals: list[float] | None = None) -> dict[str, quality.Finding]:
    api_totals = pd.Series(api_line_totals or [3.98, 3.98, 100.0, 5.0])
    found = quality.cart_findings(
        carts(), lines(), api_totals, pd.Series([1, 2]), pd.Series([16, 17])
    )
    return {f.check: f for f in found}


def test_each_check_reports_exactly_its_offending_rows() -> None:
    found = findings(api_line_totals=[3.98, 3.98, 100.0, 6.0])
    counts = {name: f.count for name, f in found.items()}
    assert counts == {
        "cart_ids_unique": 0,
        "cart_keys_not_null": 0,
        "line_keys_not_null": 0,
        "cart_user_exists": 1,
        "line_product_exists": 1,
        "line_total_matches": 1,
        "cart_total_matches": 0,
    }
    assert found["cart_user_exists"].example_ids() == [3]
    assert found["line_product_exists"].rows["product_id"].tolist() == [500]
    assert found["line_total_matches"].rows["api_line_total"].tolist() == [6.0]


def test_cart_total_check_tolerates_one_cent_and_no_more() -> None:
    c = carts()
    c.loc[0, "total"] = 7.97  # lines sum to 7.96: one cent off is the API's rounding
    found = quality.cart_findings(
        c, lines(), lines()["line_total"], c["user_id"], pd.Series([16, 500])
    )
    assert {f.check: f.count for f in found}["cart_total_matches"] == 0
    c.loc[0, "total"] = 7.98
    found = quality.cart_findings(
        c, lines(), lines()["line_total"], c["user_id"], pd.Series([16, 500])
    )
    assert {f.check: f.count for f in found}["cart_total_matches"] == 1


def test_enforce_names_check_count_and_example_ids() -> None:
    found = list(findings().values())
    with pytest.raises(QualityError) as err:
        quality.enforce(found, {})
    assert str(err.value) == (
        "check cart_user_exists: 1 offending row(s), e.g. cart_id 3; "
        "check line_product_exists: 1 offending row(s), e.g. cart_id 2"
    )


def test_enforce_tolerates_up_to_the_threshold_with_a_warning() -> None:
    found = list(findings().values())
    warnings = quality.enforce(found, {"cart_user_exists": 1, "line_product_exists": 1})
    assert warnings == [
        "check cart_user_exists: 1 offending row(s), e.g. cart_id 3 (tolerated: threshold 1)",
        "check line_product_exists: 1 offending row(s), e.g. cart_id 2 (tolerated: threshold 1)",
    ]


def test_example_ids_are_capped_at_ten() -> None:
    frame = pd.DataFrame({"user_id": [5] * 2 + list(range(10, 30))})
    found = quality.id_findings(frame, "user", "user_id")
    assert found[0].count == 2 and found[0].example_ids() == [5]
    many = quality.Finding("x", "user_id", frame)
    assert many.example_ids() == [5, *range(10, 19)]


def test_check_carts_cleans_checks_and_sums_in_one_pass() -> None:
    raw_carts = pd.DataFrame({"id": [1], "userId": [1], "total": [7.96], "discountedTotal": [7.0]})
    raw_lines = pd.DataFrame(
        {"cart_id": [1, 1], "user_id": [1, 1], "line_no": [1, 2], "id": [16, 16],
         "price": [1.99, 1.99], "quantity": [2, 2], "total": [3.98, 3.98],
         "discountedTotal": [3.5, 3.5]}
    )  # fmt: skip
    checked = quality.check_carts(raw_carts, raw_lines, pd.Series([1]), pd.Series([16]))
    assert checked.lines["line_total"].tolist() == [3.98, 3.98]
    assert not [f.check for f in checked.findings if f.count]
    assert checked.figures() == {
        "carts": 1, "units": 4, "api_cart_total": 7.96, "api_cart_discounted_total": 7.0,
        "line_total": 7.96, "discounted_line_total": 7.0,
    }  # fmt: skip


def test_a_cart_whose_discounted_total_alone_disagrees_is_flagged() -> None:
    c = carts()
    c.loc[0, "discounted_total"] = 7.02  # its lines' discounted totals sum to 7.00; total agrees
    found = quality.cart_findings(
        c, lines(), lines()["line_total"], c["user_id"], pd.Series([16, 500])
    )
    bad = {f.check: f for f in found}["cart_total_matches"]
    assert bad.example_ids() == [1]
    row = bad.rows.iloc[0]
    assert (row["total"], row["line_total"], row["difference"]) == (7.96, 7.96, 0.0)
    assert (row["discounted_total"], row["discounted_line_total"]) == (7.02, 7.0)
    assert row["discounted_difference"] == pytest.approx(-0.02, abs=1e-9)
    c.loc[0, "discounted_total"] = 7.01  # one cent: the API's rounding
    found = quality.cart_findings(
        c, lines(), lines()["line_total"], c["user_id"], pd.Series([16, 500])
    )
    assert {f.check: f.count for f in found}["cart_total_matches"] == 0


def test_check_carts_keeps_sub_cent_line_money_unrounded() -> None:
    """Three lines at $0.3333, discounted to half a cent: the lines and their sums stay exact
    (0.9999 and 0.015), within a cent of the API's rounded cart totals (1.00 and 0.02)."""
    raw_carts = pd.DataFrame({"id": [7], "userId": [3], "total": [1.0], "discountedTotal": [0.02]})
    raw_lines = pd.DataFrame(
        {"cart_id": [7, 7, 7], "user_id": [3, 3, 3], "line_no": [1, 2, 3], "id": [16, 17, 16],
         "price": [0.3333] * 3, "quantity": [1, 1, 1], "total": [0.3333] * 3,
         "discountedTotal": [0.005] * 3}
    )  # fmt: skip
    checked = quality.check_carts(raw_carts, raw_lines, pd.Series([3]), pd.Series([16, 17]))
    assert checked.lines["price"].tolist() == [0.3333] * 3
    assert checked.lines["line_total"].tolist() == [0.3333] * 3
    assert checked.lines["discounted_line_total"].tolist() == [0.005] * 3
    assert not [f.check for f in checked.findings if f.count]
    assert checked.figures() == {
        "carts": 1, "units": 3, "api_cart_total": 1.0, "api_cart_discounted_total": 0.02,
        "line_total": pytest.approx(0.9999, abs=1e-12),
        "discounted_line_total": pytest.approx(0.015, abs=1e-12),
    }  # fmt: skip


def test_tallies_add_up_the_findings_of_every_batch() -> None:
    tally = quality.Tally("cart_user_exists", "cart_id")
    for batch in ([3, 4], [], [4, 5], list(range(10, 20))):
        rows = pd.DataFrame({"cart_id": batch, "user_id": [99] * len(batch)})
        tally.add(quality.Finding("cart_user_exists", "cart_id", rows))
    assert tally.count == 14
    assert tally.example_ids() == [3, 4, 5, 10, 11, 12, 13, 14, 15, 16]
    with pytest.raises(QualityError, match=r"^check cart_user_exists: 14 offending row\(s\), "
                       r"e\.g\. cart_id 3, 4, 5, 10, 11, 12, 13, 14, 15, 16$"):  # fmt: skip
        quality.enforce([tally], {})


def test_figures_of_batches_add_up_to_the_figures_of_all_carts() -> None:
    """0.1 + 0.2 is not 0.3 in floats, yet the batches' money adds up as one sum gives it."""
    raw_carts = pd.DataFrame(
        {"id": [1, 2, 3], "userId": [1, 1, 1], "total": [0.1, 0.2, 0.3],
         "discountedTotal": [0.1, 0.2, 0.3]}
    )  # fmt: skip
    raw_lines = pd.DataFrame(
        {"cart_id": [1, 2, 3], "user_id": [1, 1, 1], "line_no": [1, 1, 1], "id": [16] * 3,
         "price": [0.1, 0.2, 0.3], "quantity": [1] * 3, "total": [0.1, 0.2, 0.3],
         "discountedTotal": [0.1, 0.2, 0.3]}
    )  # fmt: skip
    ids = pd.Index([1]), pd.Index([16])
    whole = quality.add_figures([quality.check_carts(raw_carts, raw_lines, *ids).figures()])
    parts = [
        quality.check_carts(raw_carts.iloc[a:b], raw_lines.iloc[a:b], *ids).figures()
        for a, b in ((0, 1), (1, 2), (2, 3))
    ]
    assert quality.add_figures(parts) == whole
    assert whole == {
        "carts": 3, "units": 3, "api_cart_total": 0.6, "api_cart_discounted_total": 0.6,
        "line_total": 0.6, "discounted_line_total": 0.6,
    }  # fmt: skip
    assert all(type(v) in (int, float) for v in whole.values())


def test_known_ids_are_looked_up_in_an_index_of_distinct_ids() -> None:
    ids = quality.id_index(pd.Series([3, 1, 3, None]))
    assert sorted(ids.ids) == [1, 3]
    assert quality.known(pd.Series([1, 2, 3]), ids).tolist() == [True, False, True]
    assert quality.known(pd.Series([1, 2]), pd.Series([2, 2])).tolist() == [False, True]
