"""Insight formulas and the reconciliation that proves them. Pure functions, no I/O.

Every figure is computed from all cart lines. Product attributes come from the full catalogue,
never from the price-filtered ``cleaned_products``: the old system joined on the filtered list and
silently lost every sale of a cheap product.

The cart lines come in batches, so the two summaries are built in two steps: per batch, the
lines' totals per user (``user_totals``) and per product (``product_totals``), added up over the
batches by key (``add_totals``, or ``RunningTotals`` as the batches come); then the summary from
those totals (``user_summary``, ``category_summary``). Money is summed unrounded throughout and
rounded once, when written.
Cart details need no totals: each batch of lines is detailed on its own (``cart_details``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from pipeline.rules.keys import IdIndex
from pipeline.schema import INSIGHT_TABLES

MONEY_TOLERANCE = 0.01  # one cent, the API's own rounding step
_EPS = 1e-6  # float noise around exact-cent comparisons
UNKNOWN = "(unknown)"  # product missing from the catalogue (only when a quality threshold allows)

USER_SUMMARY_COLUMNS = INSIGHT_TABLES["user_summary"].names
CATEGORY_SUMMARY_COLUMNS = INSIGHT_TABLES["category_summary"].names
CART_DETAIL_COLUMNS = INSIGHT_TABLES["cart_details"].names
#: The cleaned cart-line columns each summary uses: its task reads no others.
USER_SUMMARY_LINE_COLUMNS = (
    "cart_id", "user_id", "quantity", "line_total", "discounted_line_total",
)  # fmt: skip
CATEGORY_SUMMARY_LINE_COLUMNS = (
    "product_id", "quantity", "line_total", "discounted_line_total",
)  # fmt: skip
USER_SUMMARY_MONEY = INSIGHT_TABLES["user_summary"].money
CATEGORY_SUMMARY_MONEY = INSIGHT_TABLES["category_summary"].money
CART_DETAIL_MONEY = INSIGHT_TABLES["cart_details"].money
#: The attributes an insight takes from a user and from a product.
BUYER_COLUMNS = ["first_name", "age", "city"]
PRODUCT_COLUMNS = ["name", "category"]
#: What the insights read of the users: each one's id and the attributes shown.
USER_COLUMNS_READ = ["user_id", *BUYER_COLUMNS]


class ReconciliationError(ValueError):
    """Figures that must agree do not; the output would mislead, so none is written."""


#: What each total adds up (a column of the lines, or the carts that ``first_lines_of_carts`` marks:
#: the total it becomes), in the totals' order.
_USER_TOTALS = {
    "carts": "carts",
    "quantity": "total_items",
    "line_total": "total_spent",
    "discounted_line_total": "total_spent_discounted",
}
_PRODUCT_TOTALS = {
    "line_total": "total_sales",
    "quantity": "total_items_sold",
    "discounted_line_total": "total_sales_discounted",
}


def user_totals(lines: pd.DataFrame) -> pd.DataFrame:
    """Per user in a batch of cleaned cart lines: carts, units bought, money spent (unrounded).

    Indexed by ``user_id``. All the lines of a cart id are in one batch, so a user's carts are
    counted once however the batches are cut, and adding the batches' counts is exact.
    """
    totals = lines[["user_id", "quantity", "line_total", "discounted_line_total"]].assign(
        carts=first_lines_of_carts(lines)
    )
    return (
        totals.groupby("user_id", sort=False)[list(_USER_TOTALS)].sum().rename(columns=_USER_TOTALS)
    )


def first_lines_of_carts(lines: pd.DataFrame) -> np.ndarray:
    """Whether each line is the first of its cart id for its user: summed per user, the number
    of distinct carts a user has.

    Lines come ordered by cart (``cleaning.clean_cart_lines``), so a cart starts where the id
    changes: a comparison with the line before, where counting distinct ids per user would hash
    every line (it took half the time of ``user_totals``). Lines not ordered so, or a cart id
    shared by two users (a duplicate the quality gates tolerated), are counted id by id.
    """
    cart, user = lines["cart_id"].to_numpy(), lines["user_id"].to_numpy()
    same_cart = cart[1:] == cart[:-1]
    if (cart[1:] >= cart[:-1]).all() and (user[1:][same_cart] == user[:-1][same_cart]).all():
        first = np.ones(len(cart), dtype=bool)
        first[1:] = ~same_cart
        return first
    return ~lines.duplicated(["user_id", "cart_id"]).to_numpy()


def product_totals(lines: pd.DataFrame) -> pd.DataFrame:
    """Per product in a batch of cleaned cart lines: units sold and sales (unrounded)."""
    return (
        lines.groupby("product_id", sort=False)[list(_PRODUCT_TOTALS)]
        .sum()
        .rename(columns=_PRODUCT_TOTALS)
    )


def add_totals(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """Totals of several batches added up by key: the combine step of ``*_totals``."""
    return pd.concat(frames).groupby(level=0, sort=False).sum()


class RunningTotals:
    """Per-batch totals (``user_totals``, ``product_totals``) added up by key as batches come.

    The keys are ids: each batch's totals are added into one array per column, at the id's
    position, so a batch costs its own rows however many keys came before, and memory is the
    arrays (8 or 16 bytes a column per id up to the largest). Money is added in extended
    precision, so that a total does not depend on how the batches were cut. Should an id not
    fit (``DENSE_IDS``), the batches are added up by ``add_totals`` instead, a million rows at a
    time.
    """

    DENSE_IDS = 1 << 24  # arrays of at most 128 MB a column
    FOLD_ROWS = 1 << 20

    def __init__(self, empty: pd.DataFrame) -> None:
        self._empty = empty  # the totals of no lines: columns and types of the result
        self._arrays = {c: np.zeros(0, _exact_type(empty[c].dtype)) for c in empty.columns}
        self._seen = np.zeros(0, bool)
        self._folded: pd.DataFrame | None = None  # once an id does not fit the arrays
        self._waiting: list[pd.DataFrame] = []
        self._rows = 0

    def add(self, batch: pd.DataFrame) -> None:
        ids = batch.index.to_numpy()
        if self._folded is None and _fits(ids, self.DENSE_IDS):
            self._add_dense(ids, batch)
            return
        if self._folded is None:
            self._folded = self._dense()
        self._waiting.append(batch)
        self._rows += len(batch)
        if self._rows >= self.FOLD_ROWS:
            self._fold()

    def _add_dense(self, ids: np.ndarray, batch: pd.DataFrame) -> None:
        if len(ids) and ids.max() >= len(self._seen):
            size = max(int(ids.max()) + 1, 2 * len(self._seen))
            self._seen = np.concatenate([self._seen, np.zeros(size - len(self._seen), bool)])
            for c, values in self._arrays.items():
                grown = np.zeros(size, values.dtype)
                grown[: len(values)] = values
                self._arrays[c] = grown
        for c, values in self._arrays.items():
            values[ids] += batch[c].to_numpy()  # ids are distinct within a batch's totals
        self._seen[ids] = True

    def _dense(self) -> pd.DataFrame:
        ids = np.flatnonzero(self._seen)
        index = pd.Index(ids, name=self._empty.index.name)
        columns = {c: v[ids].astype(self._empty[c].dtype) for c, v in self._arrays.items()}
        return pd.DataFrame(columns, index=index)

    def _fold(self) -> None:
        assert self._folded is not None
        if self._waiting:
            self._folded = add_totals([self._folded, *self._waiting])
            self._waiting, self._rows = [], 0

    def result(self) -> pd.DataFrame:
        """Every batch's totals added up."""
        if self._folded is None:
            return self._dense()
        self._fold()
        return self._folded


def _exact_type(dtype: np.dtype) -> np.dtype:
    """The type a column of totals is added up in: floats in extended precision."""
    return np.dtype(np.longdouble) if dtype.kind == "f" else dtype


def _fits(ids: np.ndarray, limit: int) -> bool:
    """Whether ``ids`` can index arrays of ``limit`` rows."""
    return ids.dtype.kind in "iu" and (len(ids) == 0 or (ids.min() >= 0 and ids.max() < limit))


def user_summary(totals: pd.DataFrame, users: pd.DataFrame) -> pd.DataFrame:
    """Per user with a cart, from ``user_totals`` of all lines: with first name, age, city."""
    out = totals.sort_index().join(_buyer_table(users), how="left").reset_index()
    return out[USER_SUMMARY_COLUMNS]


def category_summary(totals: pd.DataFrame, catalogue: pd.DataFrame) -> pd.DataFrame:
    """Per category, from ``product_totals`` of all lines: sales, units sold, discounted sales."""
    category = products(catalogue).of(totals.index.to_series())["category"]
    category = category.fillna(UNKNOWN)  # a sale is never dropped for want of a category
    out = totals.groupby(category.to_numpy(), sort=True).sum().rename_axis("category")
    return out.reset_index()[CATEGORY_SUMMARY_COLUMNS]


class Attributes:
    """A table of attributes by id (the users' or the catalogue's), made once and looked up for
    every batch of lines: its ids are indexed once (``keys.IdIndex``), and one lookup serves
    every column, where a ``Series.map`` per column would repeat it."""

    def __init__(self, table: pd.DataFrame) -> None:
        self.table = table  # indexed by id
        self.index = IdIndex(table.index)

    def of(self, keys: pd.Series) -> pd.DataFrame:
        """The row for each of ``keys``, aligned with them; NaN where there is none."""
        rows = self.index.rows(keys)
        every = (rows >= 0).all()
        found = self.table.iloc[rows] if every else self.table.reindex(keys.to_numpy())
        return found.set_axis(keys.index, axis=0)


def _buyer_table(users: pd.DataFrame) -> pd.DataFrame:
    return users.set_index("user_id")[BUYER_COLUMNS]


def buyers(users: pd.DataFrame) -> Attributes:
    """The users' attributes an insight shows, by ``user_id``."""
    return Attributes(_buyer_table(users))


def products(catalogue: pd.DataFrame) -> Attributes:
    """The catalogue's attributes an insight shows, by ``product_id``."""
    return Attributes(catalogue.set_index("product_id")[PRODUCT_COLUMNS])


def cart_details(lines: pd.DataFrame, buyers: Attributes, products: Attributes) -> pd.DataFrame:
    """Every cart line of a batch with its buyer's and its product's attributes, in line order.

    ``buyers``, ``products``: as the functions of those names make them from users and catalogue.
    """
    buyer = buyers.of(lines["user_id"])
    product = products.of(lines["product_id"]).fillna(UNKNOWN)
    columns = {**dict(lines.items()), **dict(buyer.items()), **dict(product.items())}
    return pd.DataFrame({c: columns[c] for c in CART_DETAIL_COLUMNS}, copy=False)


def check_agrees(what: str, got: float, want: float, tolerance: float = MONEY_TOLERANCE) -> None:
    """Raise ReconciliationError unless two figures agree within ``tolerance``."""
    if not abs(got - want) <= tolerance + _EPS:
        raise ReconciliationError(f"{what}: {got:.2f} != {want:.2f} (tolerance {tolerance:.2f})")


def check_against_lines(
    frame: pd.DataFrame, what: str, money: str, units: str, line_total: float, line_units: int
) -> dict[str, float | int]:
    """A summary must hold every cent and unit of the cart lines; return its two totals."""
    money_total, units_total = float(frame[money].sum()), int(frame[units].sum())
    check_agrees(f"{what}.{money} vs sum of cart line totals", money_total, line_total)
    check_agrees(f"{what}.{units} vs sum of cart line units", units_total, line_units, 0)
    return {"money_total": money_total, "units_total": units_total}


def reconcile(
    *,
    api_cart_total: float,
    line_total: float,
    user_total_spent: float,
    category_total_sales: float,
    carts: int,
) -> dict[str, float | int]:
    """Prove that every view of the money agrees; the figures go into the manifest.

    Each cart's lines are already within a cent of its API total (a quality check), so the grand
    totals may differ by at most a cent per cart; the summaries must equal the lines to a cent.
    """
    check_agrees(
        "sum of user_summary.total_spent vs sum of line totals", user_total_spent, line_total
    )
    check_agrees(
        "sum of category_summary.total_sales vs sum of line totals",
        category_total_sales,
        line_total,
    )
    check_agrees("sum of line totals vs sum of API cart totals",
                 line_total, api_cart_total, MONEY_TOLERANCE * max(1, carts))  # fmt: skip
    return {
        "carts": carts,
        "api_cart_total": round(api_cart_total, 2),
        "line_total": round(line_total, 2),
        "user_total_spent": round(user_total_spent, 2),
        "category_total_sales": round(category_total_sales, 2),
        "difference_lines_vs_api": round(line_total - api_cart_total, 6),
    }
