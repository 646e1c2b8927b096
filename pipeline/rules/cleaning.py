"""Cleaning rules: raw API frames in, tidy frames out. Pure functions, no I/O.

Money stays unrounded here; it is rounded to cents only when written (``storage``), so sums
downstream are not distorted by rounding each line first.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from pipeline.schema import CLEANED

#: Column order of each output, from the schema.
USER_COLUMNS = CLEANED["cleaned_users"].names
PRODUCT_COLUMNS = CLEANED["product_catalogue"].names  # cleaned_products has the same
CART_COLUMNS = CLEANED["cleaned_carts"].names
CART_MONEY_COLUMNS = CLEANED["cleaned_carts"].money


def _table(columns: list[str], values: dict[str, pd.Series]) -> pd.DataFrame:
    """A frame of exactly the schema's ``columns``, in their order; a missing one fails."""
    if set(values) != set(columns):
        raise ValueError(f"columns {sorted(values)} do not match the schema's {columns}")
    return pd.DataFrame({c: values[c] for c in columns})


def clean_users(users: pd.DataFrame) -> pd.DataFrame:
    """One row per user, address flattened; personal data beyond these columns is left out."""
    out = _table(
        USER_COLUMNS,
        {
            "user_id": users["id"].astype("int64"),
            "first_name": users["firstName"],
            "last_name": users["lastName"],
            "gender": users["gender"],
            "age": users["age"].astype("int64"),
            "street": users["address.address"],
            "city": users["address.city"],
            "state": users["address.state"],
            "postal_code": users["address.postalCode"],
            "country": users["address.country"],
        },
    )
    return out.sort_values("user_id", kind="stable", ignore_index=True)


def product_catalogue(products: pd.DataFrame) -> pd.DataFrame:
    """Every product, whatever its price: the reference for names and categories."""
    out = _table(
        PRODUCT_COLUMNS,
        {
            "product_id": products["id"].astype("int64"),
            "name": products["title"],
            "category": products["category"],
            "brand": products["brand"].fillna("").astype("str"),
            "price": products["price"].astype("float64"),
        },
    )
    return out.sort_values("product_id", kind="stable", ignore_index=True)


def clean_products(catalogue: pd.DataFrame, min_price: float) -> pd.DataFrame:
    """Products priced strictly above ``min_price``, as the original system reported them."""
    return catalogue[catalogue["price"] > min_price].reset_index(drop=True)


def clean_cart_lines(lines: pd.DataFrame) -> pd.DataFrame:
    """One row per cart line; ``line_total`` is price x quantity, recomputed rather than trusted."""
    out = _table(
        CART_COLUMNS,
        {
            "cart_id": lines["cart_id"].astype("int64"),
            "user_id": lines["user_id"].astype("int64"),
            "product_id": lines["id"].astype("int64"),
            "quantity": lines["quantity"].astype("int64"),
            "price": lines["price"].astype("float64"),
            "line_total": lines["price"] * lines["quantity"],
            "discounted_line_total": lines["discountedTotal"].astype("float64"),
        },
    )
    order = _line_order(lines)
    return (out if order is None else out.take(order)).reset_index(drop=True)


def empty_lines() -> pd.DataFrame:
    """Cleaned cart lines of no cart: the columns and types ``clean_cart_lines`` gives."""
    columns = CLEANED["cleaned_carts"].columns
    kinds = {c.name: "int64" if c.kind == "int" else "float64" for c in columns}
    return pd.DataFrame({c: pd.Series(dtype=kinds[c]) for c in CART_COLUMNS})


def api_line_totals(lines: pd.DataFrame) -> pd.Series:
    """The API's own ``total`` of each line, row for row with ``clean_cart_lines(lines)``."""
    totals = lines["total"].astype("float64")
    order = _line_order(lines)
    return (totals if order is None else totals.take(order)).reset_index(drop=True)


def _line_order(lines: pd.DataFrame) -> np.ndarray | None:
    """Positions sorting raw lines by cart, then by their order within the cart; None when they
    are sorted already."""
    cart = lines["cart_id"].to_numpy()
    line_no = lines["line_no"].to_numpy() if "line_no" in lines else np.arange(len(lines))
    step, next_line = np.diff(cart), np.diff(line_no)
    if ((step > 0) | ((step == 0) & (next_line > 0))).all():  # the usual case
        return None
    return np.lexsort((line_no, cart))


def cart_totals(carts: pd.DataFrame) -> pd.DataFrame:
    """The API's own totals per cart, kept to reconcile the lines against."""
    out = pd.DataFrame(
        {
            "cart_id": carts["id"].astype("int64"),
            "user_id": carts["userId"].astype("int64"),
            "total": carts["total"].astype("float64"),
            "discounted_total": carts["discountedTotal"].astype("float64"),
        }
    )
    return out.sort_values("cart_id", kind="stable", ignore_index=True)
