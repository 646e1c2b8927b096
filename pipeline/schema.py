"""Every record shape the pipeline reads or writes, declared once: the registry of data.

Two kinds of declaration:

- **Raw records** (``RAW``): per API endpoint, the fields stored in ``jsons/<endpoint>.jsonl``,
  their JSON types and the ranges the contract checks. They are also the allowlist for personal
  data: a field not declared here is dropped before anything is written, nested ones included.
  ``ignored`` names the fields the API sends today that are deliberately not kept; it only
  decides what is worth a warning (a field in neither list is new), never what is stored.
- **Tables** (``CLEANED``, ``INSIGHT_TABLES``): the CSVs written, their columns in order, types,
  which columns are money (rounded to cents when written) and the data dictionary's text
  (docs/data.md).

Derived from these: the contract checks (``rules.contract``), the projection that drops what is
not declared (``rules.allowlist``), the pyarrow read schemas and CSV column types
(``storage.formats``), the column order of ``rules.cleaning`` and ``rules.insights``, and a test
that the data dictionary (docs/data.md) matches (``tests/unit/test_schema.py``). To add an
endpoint or an insight, declare it here; docs/architecture.md ("How to add an insight") walks
through an example.

Plain dataclasses, no pandas or pyarrow here, so importing the schema stays light.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

#: JSON types of raw fields; "object" and "list" (of objects) carry a nested ``Record``.
Kind = Literal["int", "number", "text", "object", "list"]
#: Types of CSV columns: int64, float64 or text when read back.
ColumnKind = Literal["int", "number", "text"]


@dataclass(frozen=True)
class Field:
    """One field of a raw record: type, the range the contract checks, and why it is kept."""

    name: str
    kind: Kind
    description: str
    minimum: int | None = None  # int/number: smallest value allowed
    nonempty: bool = False  # text: not blank
    optional: bool = False  # may be absent (the API omits it); checked when present
    items: Record | None = None  # object/list: the shape of the nested object(s)

    @property
    def expected(self) -> str:
        """What the contract expects, as its messages say it: e.g. ``integer >= 1``."""
        if self.kind in ("int", "number"):
            word = "integer" if self.kind == "int" else "number"
            text = word if self.minimum is None else f"{word} >= {self.minimum}"
        elif self.kind == "text":
            text = "non-empty string" if self.nonempty else "string"
        elif self.kind == "list":
            assert self.items is not None
            text = f"list of {self.items.name}s"
        else:
            text = "object"
        return f"{text} when present" if self.optional else text


@dataclass(frozen=True)
class Record:
    """The shape of a raw record (or of an object nested in one)."""

    name: str  # singular, as messages say it: "cart line"
    fields: tuple[Field, ...]
    ignored: tuple[str, ...] = ()  # sent by the API today, deliberately not kept


@dataclass(frozen=True)
class Endpoint:
    """An API collection snapshotted each hour and stored as ``jsons/<name>.jsonl``."""

    name: str
    record: Record

    @property
    def file(self) -> str:
        return f"jsons/{self.name}.jsonl"


@dataclass(frozen=True)
class Column:
    """One column of a CSV we write, with the data dictionary's description of it."""

    name: str
    kind: ColumnKind
    description: str
    money: bool = False  # dollars: computed unrounded, rounded to cents (0.00) when written


@dataclass(frozen=True)
class Table:
    """A CSV we write: ``<folder>/<name>.csv`` with these columns in this order."""

    name: str
    folder: Literal["cleaned", "insights"]
    columns: tuple[Column, ...]

    @property
    def file(self) -> str:
        return f"{self.folder}/{self.name}.csv"

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]

    @property
    def money(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns if c.money)


# Raw records ---------------------------------------------------------------------------------

CART_LINE = Record(
    "cart line",
    (
        Field("id", "int", "the product, becomes `product_id`", minimum=1),
        Field("price", "number", "unit price, becomes `price`", minimum=0),
        Field("quantity", "int", "units, becomes `quantity`", minimum=1),
        Field("total", "number", "the API's line total, checked against price times quantity",
              minimum=0),
        Field("discountedTotal", "number", "becomes `discounted_line_total`", minimum=0),
    ),
    ignored=("title", "discountPercentage", "thumbnail"),
)  # fmt: skip
CART = Record(
    "cart",
    (
        Field("id", "int", "becomes `cart_id`", minimum=1),
        Field("userId", "int", "the buyer, becomes `user_id`", minimum=1),
        Field("total", "number", "the API's cart total, reconciled against the lines", minimum=0),
        Field("discountedTotal", "number", "the API's discounted total, reconciled likewise",
              minimum=0),
        Field("products", "list", "the cart lines", items=CART_LINE),
    ),
    ignored=("totalProducts", "totalQuantity"),
)  # fmt: skip
PRODUCT = Record(
    "product",
    (
        Field("id", "int", "becomes `product_id`", minimum=1),
        Field("title", "text", "becomes `name`", nonempty=True),
        Field("category", "text", "becomes `category`", nonempty=True),
        Field("brand", "text", "becomes `brand` (absent for some categories)", optional=True),
        Field("price", "number", "becomes `price`", minimum=0),
    ),
    # reviews: nothing reads them, and they name and e-mail their reviewers
    ignored=(
        "description", "discountPercentage", "rating", "stock", "tags", "sku", "weight",
        "dimensions", "warrantyInformation", "shippingInformation", "availabilityStatus",
        "reviews", "returnPolicy", "minimumOrderQuantity", "meta", "images", "thumbnail",
    ),
)  # fmt: skip
ADDRESS = Record(
    "address",
    (
        Field("address", "text", "becomes `street`"),
        Field("city", "text", "becomes `city`"),
        Field("state", "text", "becomes `state`"),
        Field("postalCode", "text", "becomes `postal_code`"),
        Field("country", "text", "becomes `country`"),
    ),
    ignored=("stateCode", "coordinates"),
)
USER = Record(
    "user",
    (
        Field("id", "int", "becomes `user_id`", minimum=1),
        Field("firstName", "text", "becomes `first_name`"),
        Field("lastName", "text", "becomes `last_name`"),
        Field("gender", "text", "becomes `gender`"),
        Field("age", "int", "becomes `age`", minimum=0),
        Field("address", "object", "the postal address, without coordinates", items=ADDRESS),
    ),
    ignored=(
        "maidenName", "email", "phone", "username", "password", "birthDate", "image",
        "bloodGroup", "height", "weight", "eyeColor", "hair", "ip", "macAddress", "university",
        "bank", "company", "ein", "ssn", "userAgent", "crypto", "role",
    ),
)  # fmt: skip

#: The API collections snapshotted each hour, in the order they are extracted.
RAW: dict[str, Endpoint] = {
    e.name: e
    for e in (Endpoint("carts", CART), Endpoint("products", PRODUCT), Endpoint("users", USER))
}
ENDPOINTS: tuple[str, ...] = tuple(RAW)


# Tables --------------------------------------------------------------------------------------

USER_ID = Column("user_id", "int", "the API's user id")
PRODUCT_ID = Column("product_id", "int", "the API's product id")
CART_ID = Column("cart_id", "int", "the API's cart id")
QUANTITY = Column("quantity", "int", "units on the line")
UNIT_PRICE = Column("price", "number", "unit price, dollars", money=True)
LINE_TOTAL = Column("line_total", "number", "`price × quantity`, dollars", money=True)  # noqa: RUF001
DISCOUNTED_LINE_TOTAL = Column(
    "discounted_line_total", "number", "the API's `discountedTotal` for the line, dollars",
    money=True,
)  # fmt: skip

_PRODUCT_COLUMNS = (
    PRODUCT_ID,
    Column("name", "text", "product title"),
    Column("category", "text", "category slug, e.g. `mens-watches`"),
    Column("brand", "text", "brand; empty when the API has none (e.g. groceries)"),
    Column("price", "number", "unit list price, dollars", money=True),
)

CLEANED: dict[str, Table] = {
    t.name: t
    for t in (
        Table("cleaned_users", "cleaned", (
            USER_ID,
            Column("first_name", "text", "first name"),
            Column("last_name", "text", "last name"),
            Column("gender", "text", "as the API gives it"),
            Column("age", "int", "years"),
            Column("street", "text", "street and number, from the user's `address`"),
            Column("city", "text", "city, from the user's `address`"),
            Column("state", "text", "state, from the user's `address`"),
            Column("postal_code", "text", "postal code, from the user's `address`; text, so "
                   "leading zeros are kept"),
            Column("country", "text", "country, from the user's `address`"),
        )),
        Table("cleaned_products", "cleaned", _PRODUCT_COLUMNS),
        Table("product_catalogue", "cleaned", _PRODUCT_COLUMNS),
        Table("cleaned_carts", "cleaned", (
            CART_ID,
            Column("user_id", "int", "the buyer's user id"),
            Column("product_id", "int", "the product's id"),
            QUANTITY,
            UNIT_PRICE,
            LINE_TOTAL,
            DISCOUNTED_LINE_TOTAL,
        )),
    )
}  # fmt: skip

#: The insight tables, in the order they are built.
INSIGHT_TABLES: dict[str, Table] = {
    t.name: t
    for t in (
        Table("user_summary", "insights", (
            USER_ID,
            Column("first_name", "text", "the user's first name"),
            Column("age", "int", "the user's age"),
            Column("city", "text", "the user's city"),
            Column("carts", "int", "number of carts"),
            Column("total_items", "int", "units bought (sum of `quantity`)"),
            Column("total_spent", "number", "sum of `line_total`, dollars", money=True),
            Column("total_spent_discounted", "number", "sum of `discounted_line_total`, dollars",
                   money=True),
        )),
        Table("category_summary", "insights", (
            Column("category", "text", "category from the full catalogue (`(unknown)` only if "
                   "a tolerated orphan line has none)"),
            Column("total_sales", "number", "sum of `line_total`, dollars", money=True),
            Column("total_items_sold", "int", "units sold"),
            Column("total_sales_discounted", "number", "sum of `discounted_line_total`, dollars",
                   money=True),
        )),
        Table("cart_details", "insights", (
            CART_ID,
            Column("user_id", "int", "the buyer's user id"),
            Column("first_name", "text", "the buyer's first name"),
            Column("age", "int", "the buyer's age"),
            Column("city", "text", "the buyer's city"),
            Column("product_id", "int", "the product's id"),
            Column("name", "text", "the product's title, from the full catalogue"),
            Column("category", "text", "the product's category, from the full catalogue"),
            QUANTITY,
            UNIT_PRICE,
            LINE_TOTAL,
            DISCOUNTED_LINE_TOTAL,
        )),
    )
}  # fmt: skip
INSIGHTS: tuple[str, ...] = tuple(INSIGHT_TABLES)

#: Every CSV we write, by name.
TABLES: dict[str, Table] = {**CLEANED, **INSIGHT_TABLES}


def column_kinds() -> dict[str, ColumnKind]:
    """Each column name's type across all tables; a name must mean one type everywhere."""
    kinds: dict[str, ColumnKind] = {}
    for table in TABLES.values():
        for column in table.columns:
            if kinds.setdefault(column.name, column.kind) != column.kind:
                raise TypeError(f"column {column.name!r} has two types: see {table.name}")
    return kinds
