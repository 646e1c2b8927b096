"""Generated data (and the hand-made fixture) look and add up like the real DummyJSON API."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from pipeline.devtools import datagen
from pipeline.devtools.datagen import generate, write_dataset
from tests.support import FIXTURES

# Key sets copied from /work/shared/dummyjson/samples (real responses).
PRODUCT_KEYS = {
    "id", "title", "description", "category", "price", "discountPercentage", "rating", "stock",
    "tags", "brand", "sku", "weight", "dimensions", "warrantyInformation",
    "shippingInformation", "availabilityStatus", "reviews", "returnPolicy",
    "minimumOrderQuantity", "meta", "images", "thumbnail",
}  # fmt: skip
DIMENSION_KEYS = {"width", "height", "depth"}
REVIEW_KEYS = {"rating", "comment", "date", "reviewerName", "reviewerEmail"}
META_KEYS = {"createdAt", "updatedAt", "barcode", "qrCode"}
USER_KEYS = {
    "id", "firstName", "lastName", "maidenName", "age", "gender", "email", "phone", "username",
    "password", "birthDate", "image", "bloodGroup", "height", "weight", "eyeColor", "hair", "ip",
    "address", "macAddress", "university", "bank", "company", "ein", "ssn", "userAgent",
    "crypto", "role",
}  # fmt: skip
ADDRESS_KEYS = {"address", "city", "state", "stateCode", "postalCode", "coordinates", "country"}
BANK_KEYS = {"cardExpire", "cardNumber", "cardType", "currency", "iban"}
COMPANY_KEYS = {"department", "name", "title", "address"}
CRYPTO_KEYS = {"coin", "wallet", "network"}
CART_KEYS = {"id", "products", "total", "discountedTotal", "userId", "totalProducts",
             "totalQuantity"}  # fmt: skip
LINE_KEYS = {"id", "title", "price", "quantity", "total", "discountPercentage",
             "discountedTotal", "thumbnail"}  # fmt: skip


def load_jsonl(path: Path) -> list[dict]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines()]


def assert_shapes(data: dict[str, list[dict]]) -> None:
    for p in data["products"]:
        expected = PRODUCT_KEYS if "brand" in p else PRODUCT_KEYS - {"brand"}
        assert set(p) == expected, p["id"]
        assert set(p["dimensions"]) == DIMENSION_KEYS
        assert set(p["meta"]) == META_KEYS
        assert all(set(r) == REVIEW_KEYS for r in p["reviews"])
        assert isinstance(p["price"], float)
        assert isinstance(p["tags"], list) and isinstance(p["images"], list)
    for u in data["users"]:
        assert set(u) == USER_KEYS, u["id"]
        assert set(u["address"]) == ADDRESS_KEYS
        assert set(u["address"]["coordinates"]) == {"lat", "lng"}
        assert set(u["company"]) == COMPANY_KEYS
        assert set(u["company"]["address"]) == ADDRESS_KEYS
        assert set(u["bank"]) == BANK_KEYS
        assert set(u["crypto"]) == CRYPTO_KEYS
        assert set(u["hair"]) == {"color", "type"}
    for c in data["carts"]:
        assert set(c) == CART_KEYS, c["id"]
        assert all(set(line) == LINE_KEYS for line in c["products"])


def assert_consistent(data: dict[str, list[dict]]) -> None:
    """The invariants the real API holds and the pipeline's checks rely on."""
    products = {p["id"]: p for p in data["products"]}
    users = {u["id"] for u in data["users"]}
    for c in data["carts"]:
        assert c["userId"] in users
        total = discounted = 0.0
        for line in c["products"]:
            p = products[line["id"]]
            assert (line["title"], line["price"], line["thumbnail"]) == (
                p["title"], p["price"], p["thumbnail"],
            )  # fmt: skip
            assert line["discountPercentage"] == p["discountPercentage"]
            assert 1 <= line["quantity"] <= 5
            assert line["total"] == line["price"] * line["quantity"]  # unrounded, exactly
            pct = line["discountPercentage"]
            assert line["discountedTotal"] == round(line["total"] * (1 - pct / 100), 2)
            total += line["total"]
            discounted += line["discountedTotal"]
        assert c["total"] == round(total, 2)
        assert c["discountedTotal"] == round(discounted, 2)
        assert c["totalProducts"] == len(c["products"])
        assert c["totalQuantity"] == sum(line["quantity"] for line in c["products"])


@pytest.fixture(scope="module")
def medium() -> dict[str, list[dict]]:
    return {name: list(rows) for name, rows in generate(3000, 1000, 300, seed=7).items()}


def test_generate_is_lazy_and_sized():
    streams = generate(carts=5, users=4, products=3)
    assert all(isinstance(s, Iterator) for s in streams.values())
    data = {name: list(rows) for name, rows in streams.items()}
    assert [len(data[n]) for n in ("carts", "products", "users")] == [5, 3, 4]
    for rows in data.values():
        assert [r["id"] for r in rows] == list(range(1, len(rows) + 1))


def test_generated_records_have_the_real_shapes(medium):
    assert_shapes(medium)


def test_generated_carts_add_up_and_reference_existing_records(medium):
    assert_consistent(medium)


def test_generated_data_is_realistically_varied(medium):
    products, carts = medium["products"], medium["carts"]
    prices = [p["price"] for p in products]
    assert any(p < 50 for p in prices) and any(p > 50 for p in prices)
    assert all(round(p, 2) == p for p in prices)
    assert len({p["category"] for p in products}) >= 5
    brandless = {p["category"] for p in products if "brand" not in p}
    assert brandless == {"groceries"}
    per_user = Counter(c["userId"] for c in carts)
    assert len(per_user) < len(medium["users"])  # some users never shop
    assert max(per_user.values()) > 1  # and some have several carts
    assert any(
        len({line["id"] for line in c["products"]}) < len(c["products"]) for c in carts
    )  # the same product on two lines of one cart
    assert any(line["total"] != round(line["total"], 2) for c in carts for line in c["products"])


def test_write_dataset_is_byte_identical_for_a_seed(tmp_path):
    a = write_dataset(tmp_path / "a", carts=200, users=50, products=40, seed=3)
    b = write_dataset(tmp_path / "b", carts=200, users=50, products=40, seed=3, workers=3)
    c = write_dataset(tmp_path / "c", carts=200, users=50, products=40, seed=4)
    assert set(a) == {"carts", "products", "users"}
    for name in a:
        assert a[name].name == f"{name}.jsonl"
        assert a[name].read_bytes() == b[name].read_bytes()
        assert a[name].read_bytes() != c[name].read_bytes()
    written = {name: load_jsonl(path) for name, path in a.items()}
    expected = {name: list(rows) for name, rows in generate(200, 50, 40, seed=3).items()}
    assert written == expected
    assert not list((tmp_path / "a").glob(".*.tmp"))


def test_cli_writes_the_files(tmp_path, capsys):
    assert datagen.main([str(tmp_path), "--carts", "3", "--users", "2", "--products", "2"]) == 0
    assert len(load_jsonl(tmp_path / "carts.jsonl")) == 3
    assert "carts.jsonl" in capsys.readouterr().out


def test_carts_without_users_or_products_are_rejected():
    with pytest.raises(ValueError):
        list(generate(carts=1, users=0, products=1)["carts"])


# -- the hand-made fixture used for exact end-to-end expectations -------------------------------
@pytest.fixture(scope="module")
def fixture_data() -> dict[str, list[dict]]:
    return {name: load_jsonl(FIXTURES / f"{name}.jsonl") for name in ("carts", "products", "users")}


def test_fixture_has_real_shapes_and_adds_up(fixture_data):
    assert_shapes(fixture_data)
    assert_consistent(fixture_data)


def test_fixture_covers_the_documented_edge_cases(fixture_data):
    products = {p["id"]: p for p in fixture_data["products"]}
    carts = {c["id"]: c for c in fixture_data["carts"]}
    assert sorted(products) == [3, 15, 16, 17, 100, 122, 141, 162]
    assert [u["id"] for u in fixture_data["users"]] == [1, 2, 3, 4, 5, 6]
    assert sorted(carts) == [1, 2, 3, 4, 5, 6]
    assert {pid for pid, p in products.items() if "brand" not in p} == {16, 17}
    assert {products[16]["category"], products[17]["category"]} == {"groceries"}
    assert products[162]["price"] == 50.0
    assert len({p["category"] for p in products.values()}) >= 4
    assert [line["id"] for line in carts[3]["products"]] == [16, 17, 16]
    assert Counter(c["userId"] for c in carts.values()) == {1: 2, 2: 1, 3: 1, 4: 1, 5: 1}
    assert carts[5]["products"][0]["total"] == 199.95000000000002
    assert sum(c["total"] for c in carts.values()) == pytest.approx(2163.64)
