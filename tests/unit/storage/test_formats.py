"""File formats: JSON Lines in, CSV out (money to cents, formulas neutralised, types kept)."""

from __future__ import annotations

from pathlib import Path

import orjson
import pandas as pd
import pandas.testing as pdt
import pyarrow as pa

from pipeline.storage import formats as storage

CARTS = [
    {"id": 2, "userId": 5, "total": 11.97, "discountedTotal": 10.0, "totalProducts": 2,
     "products": [{"id": 16, "title": "Apple", "price": 1.99, "quantity": 3, "total": 5.97,
                   "discountedTotal": 5.0, "thumbnail": "x"},
                  {"id": 16, "title": "Apple", "price": 1.99, "quantity": 3, "total": 5.97,
                   "discountedTotal": 5.0, "thumbnail": "x"}]},
    {"id": 1, "userId": 4, "total": 129.99, "discountedTotal": 109.79,
     "products": [{"id": 100, "title": "Airpods", "price": 129.99, "quantity": 1,
                   "total": 129.99, "discountedTotal": 109.79}]},
]  # fmt: skip


def write_jsonl(path: Path, records: list[dict]) -> Path:
    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in records))
    return path


def test_read_carts_gives_cart_totals_and_numbered_lines(tmp_path: Path) -> None:
    carts, lines = storage.read_carts(write_jsonl(tmp_path / "carts.jsonl", CARTS))
    assert carts[["id", "userId", "total", "discountedTotal"]].to_dict("list") == {
        "id": [2, 1], "userId": [5, 4], "total": [11.97, 129.99],
        "discountedTotal": [10.0, 109.79],
    }  # fmt: skip
    assert lines[["cart_id", "user_id", "line_no", "id", "quantity"]].to_dict("list") == {
        "cart_id": [2, 2, 1], "user_id": [5, 5, 4], "line_no": [1, 2, 1],
        "id": [16, 16, 100], "quantity": [3, 3, 1],
    }  # fmt: skip


def test_read_products_leaves_missing_brand_empty(tmp_path: Path) -> None:
    path = write_jsonl(
        tmp_path / "p.jsonl",
        [{"id": 1, "title": "Apple", "category": "groceries", "price": 2, "tags": ["x"]},
         {"id": 2, "title": "Sink", "category": "furniture", "brand": "B", "price": 9.5}],
    )  # fmt: skip
    got = storage.read_products(path)
    assert got["price"].tolist() == [2.0, 9.5]
    assert got["brand"].isna().tolist() == [True, False]


def test_money_is_written_with_two_decimals_and_types_survive_a_round_trip(tmp_path: Path) -> None:
    frame = pd.DataFrame(
        {"user_id": [1, 2], "postal_code": ["06413", "29112"],
         "line_total": [99.94999999999999, 100.0]}
    )  # fmt: skip
    path = tmp_path / "x.csv"
    storage.write_csv(frame, path, money=("line_total",))
    assert path.read_text().splitlines() == [
        '"user_id","postal_code","line_total"',
        '1,"06413",99.95',
        '2,"29112",100.00',
    ]
    back = storage.read_csv(path)
    expected = pd.DataFrame(
        {"user_id": [1, 2], "postal_code": ["06413", "29112"], "line_total": [99.95, 100.0]}
    )
    pdt.assert_frame_equal(back, expected, check_dtype=False)
    assert back["postal_code"].tolist() == ["06413", "29112"]


def test_text_that_a_spreadsheet_would_execute_is_neutralised(tmp_path: Path) -> None:
    risky = ["=1+2", "+cmd", "-2", "@SUM(A1)", "\tx", "\rx", "plain", "a=b", ""]
    frame = pd.DataFrame({"name": risky, "quantity": [-1, 2, 3, 4, 5, 6, 7, 8, 9]})
    path = tmp_path / "x.csv"
    storage.write_csv(frame, path)
    back = storage.read_csv(path)
    assert back["name"].tolist() == [
        "'=1+2", "'+cmd", "'-2", "'@SUM(A1)", "'\tx", "'\rx", "plain", "a=b", "",
    ]  # fmt: skip
    assert back["quantity"].tolist() == [-1, 2, 3, 4, 5, 6, 7, 8, 9]  # numbers untouched


def test_half_a_cent_rounds_away_from_zero(tmp_path: Path) -> None:
    frame = pd.DataFrame({"line_total": [0.125, 0.375, 2.5, 0.124, -0.125]})  # exact in binary
    path = tmp_path / "x.csv"
    storage.write_csv(frame, path, money=("line_total",))
    assert path.read_text().splitlines()[1:] == ["0.13", "0.38", "2.50", "0.12", "-0.13"]


def test_an_empty_endpoint_reads_as_empty_frames(tmp_path: Path) -> None:
    empty = tmp_path / "empty.jsonl"
    empty.write_bytes(b"")
    carts, lines = storage.read_carts(empty)
    assert (len(carts), len(lines)) == (0, 0)
    assert {"cart_id", "user_id", "line_no", "id", "quantity"} <= set(lines.columns)
    assert len(storage.read_users(empty)) == 0 and len(storage.read_products(empty)) == 0


def test_raw_files_are_parsed_with_exactly_the_declared_fields() -> None:
    address = pa.struct([(f, pa.string()) for f in
                         ("address", "city", "state", "postalCode", "country")])  # fmt: skip
    line = pa.struct([("id", pa.int64()), ("price", pa.float64()), ("quantity", pa.int64()),
                      ("total", pa.float64()), ("discountedTotal", pa.float64())])  # fmt: skip
    assert storage.read_schema("users") == pa.schema(
        [("id", pa.int64()), ("firstName", pa.string()), ("lastName", pa.string()),
         ("gender", pa.string()), ("age", pa.int64()), ("address", address)]
    )  # fmt: skip
    assert storage.read_schema("products") == pa.schema(
        [("id", pa.int64()), ("title", pa.string()), ("category", pa.string()),
         ("brand", pa.string()), ("price", pa.float64())]
    )  # fmt: skip
    assert storage.read_schema("carts") == pa.schema(
        [("id", pa.int64()), ("userId", pa.int64()), ("total", pa.float64()),
         ("discountedTotal", pa.float64()), ("products", pa.list_(line))]
    )  # fmt: skip


def test_csv_columns_are_read_with_their_declared_types() -> None:
    types = {c: str(t) for c, t in storage.CSV_TYPES.items()}
    assert {c: types[c] for c in ("user_id", "age", "quantity", "carts", "total_items_sold")} == {
        c: "int64" for c in ("user_id", "age", "quantity", "carts", "total_items_sold")
    }
    assert {types[c] for c in ("price", "line_total", "total_spent", "total_sales")} == {"double"}
    assert {types[c] for c in ("postal_code", "first_name", "brand", "category")} == {"string"}
