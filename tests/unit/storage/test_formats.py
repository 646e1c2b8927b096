"""File formats: JSON Lines in, CSV out (money to cents, formulas neutralised, types kept)."""

from __future__ import annotations

import os
import sys
import tempfile
from decimal import Decimal
from pathlib import Path

import numpy as np
import orjson
import pandas as pd
import pandas.testing as pdt
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from pipeline.storage import atomic
from pipeline.storage import formats as storage
from pipeline.storage.formats import csv as csv_format
from pipeline.storage.formats import jsonl
from pipeline.storage.formats import values as cell_values

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


def batches(path: Path, in_order: bool = True) -> list[tuple[pd.DataFrame, pd.DataFrame]]:
    return list(storage.cart_batches(path, in_order=in_order))


def test_cart_batches_give_cart_totals_and_numbered_lines(tmp_path: Path) -> None:
    [(carts, lines)] = batches(write_jsonl(tmp_path / "carts.jsonl", CARTS[::-1]))
    assert carts[["id", "userId", "total", "discountedTotal"]].to_dict("list") == {
        "id": [1, 2], "userId": [4, 5], "total": [129.99, 11.97],
        "discountedTotal": [109.79, 10.0],
    }  # fmt: skip
    assert lines[["cart_id", "user_id", "line_no", "id", "quantity"]].to_dict("list") == {
        "cart_id": [1, 2, 2], "user_id": [4, 5, 5], "line_no": [1, 1, 2],
        "id": [100, 16, 16], "quantity": [1, 3, 3],
    }  # fmt: skip


def cart(cart_id: int, lines: int = 1) -> dict:
    line = {"id": 16, "price": 1.5, "quantity": 1, "total": 1.5, "discountedTotal": 1.5}
    return {"id": cart_id, "userId": 1, "total": 1.5 * lines, "discountedTotal": 1.5 * lines,
            "products": [{**line, "quantity": n + 1} for n in range(lines)]}  # fmt: skip


def ids(found: list[tuple[pd.DataFrame, pd.DataFrame]]) -> list[list[int]]:
    return [carts["id"].tolist() for carts, _ in found]


def test_cart_batches_have_a_fixed_size_and_never_split_a_cart_id(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(jsonl, "BATCH_CARTS", 3)
    records = [cart(1), cart(2, lines=2), cart(3), cart(3), cart(3), cart(4), cart(5), cart(6)]
    found = batches(write_jsonl(tmp_path / "carts.jsonl", records))
    # Cart 3's duplicates, which begin the second batch, join the first one.
    assert ids(found) == [[1, 2, 3, 3, 3], [4], [5, 6]]
    assert [lines["cart_id"].tolist() for _, lines in found] == [[1, 2, 2, 3, 3, 3], [4], [5, 6]]
    monkeypatch.setattr(jsonl, "BATCH_CARTS", 2)
    assert ids(batches(tmp_path / "carts.jsonl")) == [[1, 2], [3, 3, 3], [4], [5, 6]]


def test_cart_batches_stop_at_a_cart_out_of_order_or_sort_when_told(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(jsonl, "BATCH_CARTS", 2)
    records = [cart(1), cart(3), {**cart(2), "userId": 7}, cart(4), {**cart(2), "userId": 8}]
    path = write_jsonl(tmp_path / "carts.jsonl", records)
    with pytest.raises(storage.CartsOutOfOrder):
        batches(path)
    found = batches(path, in_order=False)
    assert ids(found) == [[1, 2, 2], [3], [4]]
    assert found[0][0]["userId"].tolist() == [1, 7, 8]  # equal ids: file order


def test_an_empty_carts_file_is_one_empty_batch(tmp_path: Path) -> None:
    empty = tmp_path / "empty.jsonl"
    empty.write_bytes(b"")
    [(carts, lines)] = batches(empty)
    assert (len(carts), len(lines)) == (0, 0)
    assert {"cart_id", "user_id", "line_no", "id", "quantity"} <= set(lines.columns)
    assert len(storage.read_users(empty)) == 0 and len(storage.read_products(empty)) == 0


def test_a_csv_written_in_parts_is_the_csv_written_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(csv_format, "CSV_CHUNK_ROWS", 2)
    frame = pd.DataFrame(
        {"cart_id": range(7), "name": ["a", "=b", "c", "d", "e", "f", "g"],
         "line_total": [0.125, 1.0, 2.005, 3.0, 4.0, 5.0, 99.94999999999999]}
    )  # fmt: skip
    storage.write_csv(frame, tmp_path / "once.csv", ("line_total",))
    with storage.CsvWriter(tmp_path / "parts.csv", list(frame.columns), ("line_total",)) as out:
        for start, end in ((0, 3), (3, 3), (3, 6), (6, 7)):  # an empty part too
            out.write(frame.iloc[start:end])
    once = (tmp_path / "once.csv").read_bytes()
    assert once.splitlines()[:3] == [
        b'"cart_id","name","line_total"',
        b'0,"a",0.13',
        b'1,"\'=b",1.00',
    ]
    assert (tmp_path / "parts.csv").read_bytes() == once
    assert out.rows == 7


def test_parts_encoded_in_any_order_are_written_in_the_order_given(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``encode`` touches no file, so a task's threads encode batches as they finish: the file
    has them in the order they are written, the header first."""
    monkeypatch.setattr(csv_format, "CSV_CHUNK_ROWS", 2)
    frame = pd.DataFrame({"cart_id": range(7), "line_total": [i + 0.125 for i in range(7)]})
    with storage.CsvWriter(tmp_path / "x.csv", ["cart_id", "line_total"], ("line_total",)) as out:
        parts = [frame.iloc[:5], frame.iloc[5:]]
        late, early = out.encode(parts[1]), out.encode(parts[0])
        assert (tmp_path / "x.csv").read_bytes() == b'"cart_id","line_total"\n'
        assert [len(early.chunks), early.rows, len(late.chunks), late.rows] == [3, 5, 1, 2]
        out.write(early)
        out.write(late)
    assert (tmp_path / "x.csv").read_bytes().splitlines() == [
        b'"cart_id","line_total"', b"0,0.13", b"1,1.13", b"2,2.13", b"3,3.13", b"4,4.13",
        b"5,5.13", b"6,6.13",
    ]  # fmt: skip
    assert out.rows == 7


def test_rows_encoded_for_another_file_are_refused(tmp_path: Path) -> None:
    with (
        storage.CsvWriter(tmp_path / "a.csv", ["cart_id"]) as a,
        storage.CsvWriter(tmp_path / "b.csv", ["user_id"]) as b,
    ):
        encoded = a.encode(pd.DataFrame({"cart_id": [1]}))
        with pytest.raises(ValueError, match=r"rows encoded for \['cart_id'\], not \['user_id'\]"):
            b.write(encoded)
    assert (tmp_path / "b.csv").read_bytes() == b'"user_id"\n'


def test_parts_of_other_types_come_in_the_order_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Whole numbers and fractions in one column, part after part: each encoded as it is."""
    monkeypatch.setattr(csv_format, "CSV_CHUNK_ROWS", 2)
    ints = pd.DataFrame({"cart_id": range(5), "x": range(5)})
    floats = ints.assign(x=[0.5, 1.0, 2.25, 3.0, 4.0])
    with storage.CsvWriter(tmp_path / "mixed.csv", ["cart_id", "x"]) as out:
        for part in (ints.iloc[:3], floats.iloc[:3], ints.iloc[3:], floats.iloc[3:]):
            out.write(part)
    assert (tmp_path / "mixed.csv").read_bytes().splitlines() == [
        b'"cart_id","x"', b"0,0", b"1,1", b"2,2", b"0,0.5", b"1,1", b"2,2.25",
        b"3,3", b"4,4", b"3,3", b"4,4",
    ]  # fmt: skip


def test_a_csv_that_gets_no_rows_has_its_header(tmp_path: Path) -> None:
    with storage.CsvWriter(tmp_path / "x.csv", ["cart_id", "name"]) as out:
        pass
    assert (tmp_path / "x.csv").read_bytes() == b'"cart_id","name"\n' and out.rows == 0


def test_a_frame_with_other_columns_than_the_header_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="are not"):  # noqa: SIM117
        with storage.CsvWriter(tmp_path / "x.csv", ["a"]) as out:
            out.write(pd.DataFrame({"a": [1]}))
            out.write(pd.DataFrame({"b": [2]}))


def test_csv_batches_read_a_csv_back_in_parts_with_its_types(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(csv_format, "CSV_BLOCK_BYTES", 64)
    frame = pd.DataFrame({"user_id": range(40), "postal_code": [f"{i:05d}" for i in range(40)]})
    storage.write_csv(frame, tmp_path / "x.csv")
    parts = list(storage.csv_batches(tmp_path / "x.csv"))
    assert len(parts) > 1
    pdt.assert_frame_equal(pd.concat(parts, ignore_index=True), frame, check_dtype=False)
    assert parts[0]["postal_code"].tolist()[:2] == ["00000", "00001"]
    only = list(storage.csv_batches(tmp_path / "x.csv", ["user_id"]))
    assert [list(p.columns) for p in only] == [["user_id"]] * len(only)


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


def _arrow_cents(values: pa.Array) -> pa.Array:
    """What to_cents gave before it computed cents itself: Arrow's rounding and cast."""
    return pc.cast(pc.round(values, 2, "half_towards_infinity"), storage.MONEY_TYPE)


def test_cents_are_arrows_to_the_bit_and_odd_values_take_arrows_way() -> None:
    rng = np.random.default_rng(7)
    ties = [
        float(f"{i}.{j:03d}")
        for i, j in zip(
            rng.integers(-(10**6), 10**6, 20_000), rng.integers(0, 1000, 20_000), strict=True
        )
    ]
    values = np.concatenate([
        rng.uniform(-1e12, 1e12, 20_000), rng.uniform(-1, 1, 20_000), ties,
        np.round(rng.uniform(0, 2000, 20_000), 2) * rng.integers(1, 10, 20_000),
        [0.0, -0.0, 0.005, -0.005, 0.015, 1.005, 2.675, 8.675, 0.29, 1e-300],
        [-2.5, 0.49999999999999994],
    ])  # fmt: skip
    got = storage.to_cents(pa.array(values))
    assert cell_values._cents(values) is not None  # computed, not handed to Arrow
    assert got.equals(_arrow_cents(pa.array(values)))
    assert [str(c) for c in got[-12:]] == [
        "0.00", "0.00", "0.01", "-0.01", "0.02", "1.00", "2.68", "8.68", "0.29", "0.00",
        "-2.50", "0.50",
    ]  # fmt: skip
    # as prepare gets them: slices of a table's columns, in chunks, offsets not zero
    chunked = pa.chunked_array([pa.array(values[:1000]), pa.array(values[1000:3000])])
    for part in (chunked.slice(7, 2500), pa.array(values).slice(3, 11), chunked.slice(0, 0)):
        got, expected = storage.to_cents(part), _arrow_cents(part)
        assert got.type == expected.type and got.to_pylist() == expected.to_pylist()
    # nulls, not-a-number and amounts beyond 2**52 cents go Arrow's way, with its errors
    assert cell_values._cents(np.array([1.0, np.nan])) is None
    assert cell_values._cents(np.array([1.0, 2.0**52 / 100])) is None
    with_null = pa.array([1.005, None])
    assert storage.to_cents(with_null).equals(_arrow_cents(with_null))
    with pytest.raises(pa.ArrowInvalid):
        storage.to_cents(pa.array([1e17]))


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


def test_formulas_are_found_in_slices_and_chunks_of_columns() -> None:
    values = pa.array(["=x", "ok", None, "", "-1", "é="])
    assert storage.neutralise_formulas(values.slice(1, 3)).to_pylist() == ["ok", None, ""]
    assert storage.neutralise_formulas(values.slice(3)).to_pylist() == ["", "'-1", "é="]
    chunked = pa.chunked_array([values.slice(1, 2), values.slice(0, 1)])
    assert storage.neutralise_formulas(chunked).to_pylist() == ["ok", None, "'=x"]
    large = storage.neutralise_formulas(values.cast(pa.large_string()))
    assert large.to_pylist()[0] == "'=x"


AWKWARD = pa.table(
    {
        "id": pa.array([1, None, -3, 0, 2**62], pa.int64()),
        "small": pa.array([7, 8, None, 0, -1], pa.int32()),
        "text": pa.array(['a"b', None, "", "x,y\nz", "é ünï"], pa.string()),
        "large": pa.array(["q", None, "", " lead", "tail "], pa.large_string()),
        "money": pa.array(
            [Decimal("0.05"), Decimal("-0.05"), None, Decimal("1234567.10"), Decimal("-12.00")],
            storage.MONEY_TYPE,
        ),
        "float": pa.array([41.0, None, 3.5, 1e20, -0.0]),
        "flag": pa.array([True, None, False, True, False]),
    }
)


def _written(table: pa.Table, header: bool = True) -> bytes:
    return csv_format._encode(table, (), header=header).to_pybytes()


def test_the_csv_dialect_quotes_text_leaves_nulls_empty_and_spells_numbers_plainly() -> None:
    """The bytes every output CSV is made of (the outputs of earlier versions, Polars' and
    pyarrow's encoders alike, were these): text always quoted, quotes doubled, nulls empty, money
    at two decimals, whole floats without a fraction, booleans unquoted."""
    assert _written(AWKWARD) == (
        b'"id","small","text","large","money","float","flag"\n'
        b'1,7,"a""b","q",0.05,41,true\n'
        b",8,,,-0.05,,\n"
        b'-3,,"","",,3.5,false\n'
        b'0,0,"x,y\nz"," lead",1234567.10,1e+20,true\n'
        b'4611686018427387904,-1,"\xc3\xa9 \xc3\xbcn\xc3\xaf","tail ",-12.00,-0,false\n'
    )
    assert _written(AWKWARD.slice(0, 0), header=False) == b""
    assert _written(AWKWARD.slice(4), header=False).startswith(b"4611686018427387904,-1,")


@pytest.fixture(scope="module")
def large_carts(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int]:
    """About 140 MB of carts: many of the JSON reader's blocks."""
    path, carts = tmp_path_factory.mktemp("large") / "carts.jsonl", 600_000
    line = (
        b'{"id":%d,"userId":7,"total":36.97,"discountedTotal":33.29,"products":['
        b'{"id":16,"price":1.99,"quantity":3,"total":5.97,"discountedTotal":5.37},'
        b'{"id":100,"price":31.0,"quantity":1,"total":31.0,"discountedTotal":27.92}]}\n'
    )
    with path.open("wb") as out:
        for start in range(1, carts + 1, 100_000):
            out.write(b"".join(line % i for i in range(start, start + 100_000)))
    return path, carts


@pytest.mark.slow
@pytest.mark.parametrize("block", [1 << 16, 16 << 20])
def test_a_large_file_comes_in_batches_of_batch_carts_whatever_the_json_blocks(
    large_carts: tuple[Path, int], block: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The parser's blocks (of bytes) are cut and joined into batches of ``BATCH_CARTS`` carts,
    each in one piece, in file order."""
    monkeypatch.setattr(jsonl, "JSON_BLOCK_BYTES", block)
    path, carts = large_carts
    tables = list(jsonl._cart_tables(path, in_order=True))
    assert [t.num_rows for t in tables] == [jsonl.BATCH_CARTS] * 4 + [carts - 4 * jsonl.BATCH_CARTS]
    assert all(t.column("id").num_chunks == 1 for t in tables)
    ids = np.concatenate([t.column("id").to_numpy() for t in tables])
    assert (ids == np.arange(1, carts + 1)).all()


def test_sorting_spills_buckets_and_keeps_equal_ids_in_file_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Many buckets, an id repeated across the file's blocks and past a bucket's size: every
    cart comes once, by id, equal ids in the order of the file, in batches of BATCH_CARTS."""
    monkeypatch.setattr(jsonl, "BATCH_CARTS", 4)
    monkeypatch.setattr(jsonl, "JSON_BLOCK_BYTES", 300)  # a few carts per block
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # where the buckets spill
    order = [9, 3, 5, 5, 1, 12, 5, 7, 2, 11, 5, 5, 4, 10, 6, 8, 5, 0]
    records = [{**cart(i), "userId": n} for n, i in enumerate(order)]
    path = write_jsonl(tmp_path / "carts.jsonl", records)
    found = batches(path, in_order=False)
    carts = pd.concat([c for c, _ in found], ignore_index=True)
    assert carts["id"].tolist() == sorted(order)
    fives = carts.loc[carts["id"] == 5, "userId"].tolist()
    assert fives == [n for n, i in enumerate(order) if i == 5]  # file order
    # sorted, cut every 4 carts, and the 5s moved into the batch their first one is in
    assert ids(found) == [[0, 1, 2, 3], [4, 5, 5, 5, 5, 5, 5], [6], [7, 8, 9, 10], [11, 12]]
    assert not list(tmp_path.glob("pipeline-sort-*"))


def test_text_with_line_breaks_is_read_back_as_written(tmp_path: Path) -> None:
    """A street on two lines is written quoted, and read back whole (in one read and in parts),
    also where the reader cuts the file into blocks (1 MB for read_csv)."""
    streets = ["12 Elm\nSt", 'a "b"\r\nc', "x"] * 40_000
    frame = pd.DataFrame({"user_id": range(len(streets)), "street": streets})
    storage.write_csv(frame, tmp_path / "users.csv")
    pdt.assert_frame_equal(storage.read_csv(tmp_path / "users.csv"), frame, check_dtype=False)
    parts = pd.concat(storage.csv_batches(tmp_path / "users.csv"), ignore_index=True)
    pdt.assert_frame_equal(parts, frame, check_dtype=False)


COPIED = ["user_id", "first_name", "age", "city"]


@pytest.mark.parametrize(
    "frame",
    [
        pd.DataFrame(
            {"user_id": [3, 1, 2], "first_name": ["=1+2", None, "Ann"], "age": [40, 51, 0],
             "street": ["x", "y", "z"], "city": ["", "Ma\nin", "@x"]}
        ),
        pd.DataFrame(  # a text column with no value at all, ages as floats with a gap
            {"user_id": [1, 2], "first_name": [None, None], "age": [30.0, np.nan],
             "city": [' "q" ', "\u00e9\t"]}
        ),
        pd.DataFrame(  # nullable whole numbers
            {"user_id": [1, 2], "first_name": ["a", "b"], "age": pd.array([7, None], "Int64"),
             "city": ["c", None]}
        ),
        pd.DataFrame({c: pd.Series(dtype=object) for c in COPIED}),  # no users
    ],
    ids=["awkward text", "no value in a column", "nullable ints", "no rows"],
)  # fmt: skip
def test_a_copy_of_some_columns_reads_as_its_csv_reads_them(
    tmp_path: Path, frame: pd.DataFrame
) -> None:
    """What the insights read of the users: from the copy, the values the CSV gives back."""
    storage.write_csv(frame, tmp_path / "users.csv")
    storage.write_copy(frame, tmp_path / "users.arrow", COPIED)
    got = storage.read_copy(tmp_path / "users.arrow", COPIED)
    pdt.assert_frame_equal(got, storage.read_csv(tmp_path / "users.csv", COPIED))
    some = ["city", "user_id"]  # fewer columns, in another order
    pdt.assert_frame_equal(
        storage.read_copy(tmp_path / "users.arrow", some),
        storage.read_csv(tmp_path / "users.csv", some),
    )


def test_a_copy_holds_text_as_written_and_empty_where_missing(tmp_path: Path) -> None:
    frame = pd.DataFrame({"user_id": [1, 2, 3], "city": ["=1+2", None, "@x"]})
    storage.write_copy(frame, tmp_path / "users.arrow", ["user_id", "city"])
    got = storage.read_copy(tmp_path / "users.arrow", ["city"])["city"]
    assert got.tolist() == ["'=1+2", "", "'@x"]


def test_a_copy_asked_for_columns_it_does_not_hold_names_them(tmp_path: Path) -> None:
    frame = pd.DataFrame({"user_id": [1], "city": ["x"]})
    storage.write_copy(frame, tmp_path / "users.arrow", ["user_id", "city"])
    with pytest.raises(storage.CopyLacksColumns, match=r"users\.arrow holds no column age$"):
        storage.read_copy(tmp_path / "users.arrow", ["user_id", "age"])


@pytest.mark.parametrize("column", ["line_total", "not_a_csv_column"])
def test_money_and_undeclared_columns_are_not_copied(tmp_path: Path, column: str) -> None:
    frame = pd.DataFrame({"user_id": [1], column: [0.125]})
    with pytest.raises(ValueError, match=rf"\['{column}'\]"):
        storage.write_copy(frame, tmp_path / "x.arrow", ["user_id", column])
    assert not (tmp_path / "x.arrow").exists()


def test_writers_start_the_write_to_disk_of_what_they_wrote_as_they_go(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """So that the fsync before the rename has little left to wait for: after each write, the
    disk is asked (sync_file_range) for the bytes of the file written so far."""
    assert atomic._sync_file_range() is not None or not sys.platform.startswith("linux")
    started: list[int] = []

    def record(fd: int, offset: int, length: int, flags: int) -> int:
        assert (offset, length, flags) == (0, 0, 2)  # the whole file, SYNC_FILE_RANGE_WRITE
        started.append(os.fstat(fd).st_ino)
        return 0

    monkeypatch.setattr(atomic, "_start_writeback", record)
    frame = pd.DataFrame({"a": [1, 2, 3]})
    with storage.CsvWriter(tmp_path / "x.csv", ["a"]) as out:
        out.write(frame)
        out.write(frame)
    with storage.ExactWriter(tmp_path / "x.arrow", frame.iloc[:0]) as exact:
        exact.write(frame)
    csv, arrow = (tmp_path / "x.csv").stat().st_ino, (tmp_path / "x.arrow").stat().st_ino
    assert started == [csv, csv, arrow]
    assert (tmp_path / "x.csv").read_text() == '"a"\n1\n2\n3\n1\n2\n3\n'
