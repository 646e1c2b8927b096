"""Every record shape the pipeline reads or writes, declared once.

(Stub: the endpoint and insight names; the full declarations follow.)
"""

from __future__ import annotations

#: The API collections snapshotted each hour, in the order they are extracted.
ENDPOINTS: tuple[str, ...] = ("carts", "products", "users")

#: The insight tables, in the order they are built.
INSIGHTS: tuple[str, ...] = ("user_summary", "category_summary", "cart_details")
