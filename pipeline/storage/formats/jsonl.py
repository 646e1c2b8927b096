"""Raw JSON Lines (``jsons/<endpoint>.jsonl``) read into frames, parsed by pyarrow's JSON reader.

Only the fields ``pipeline.schema`` declares are read, with their declared types (fields we do
not use are skipped, types are fixed rather than guessed): users and products whole, the carts
in batches of whole carts (``cart_batches``), so that memory does not grow with the number of
cart lines. A carts file out of cart-id order is sorted in buckets spilled to a temporary folder
(``_sorted``), so that sorting does not hold the file in memory either.
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.ipc
import pyarrow.json as pa_json

from pipeline import schema
from pipeline.storage.formats.prefetch import prefetch
from pipeline.storage.formats.values import ARROW_TYPES

#: Carts per batch when the cart lines are streamed (about three lines each): what one batch
#: holds in memory, whatever the number of carts in the file.
BATCH_CARTS = 1 << 17

#: Bytes of JSON parsed at a time (some 1,300 carts); batches are then cut to ``BATCH_CARTS``.
#: At 1M carts, blocks of 1 MiB took 2.85 s of CPU and peaked at 346 MB; of 16 MiB, 3.3 s and
#: 557 MB (the parser's buffers); of 256 KiB, 3.0 s.
JSON_BLOCK_BYTES = 1 << 20


class CartsOutOfOrder(ValueError):
    """The carts file is not in cart-id order, so it cannot be streamed as it is."""


def _arrow_type(f: schema.Field) -> pa.DataType:
    if f.items is None:
        return ARROW_TYPES[f.kind]
    struct = pa.struct([(g.name, _arrow_type(g)) for g in f.items.fields])
    return pa.list_(struct) if f.kind == "list" else struct


def read_schema(endpoint: str) -> pa.Schema:
    """The Arrow schema a raw file is read into: the fields ``pipeline.schema`` declares."""
    return pa.schema([(f.name, _arrow_type(f)) for f in schema.RAW[endpoint].record.fields])


CART_SCHEMA = read_schema("carts")
_CART_FIELDS = [f.name for f in schema.CART.fields if f.items is None]
_ID_SCHEMA = pa.schema([CART_SCHEMA.field("id")])


def _parse_options(read: pa.Schema) -> pa_json.ParseOptions:
    return pa_json.ParseOptions(explicit_schema=read, unexpected_field_behavior="ignore")


def _read_jsonl(path: Path, endpoint: str) -> pa.Table:
    """A whole raw file as a table of the declared fields (``read_schema``)."""
    read = read_schema(endpoint)
    if Path(path).stat().st_size == 0:  # an endpoint with no records
        return read.empty_table()
    return pa_json.read_json(path, parse_options=_parse_options(read))


def read_users(path: Path) -> pd.DataFrame:
    """Raw users with the address flattened to ``address.city`` etc."""
    return _read_jsonl(path, "users").flatten().to_pandas()


def read_products(path: Path) -> pd.DataFrame:
    return _read_jsonl(path, "products").to_pandas()


def _json_batches(path: Path, read: pa.Schema) -> Iterator[pa.RecordBatch]:
    """``path``'s records block by block, as batches of the fields of ``read``."""
    reader = pa_json.open_json(
        path,
        read_options=pa_json.ReadOptions(block_size=JSON_BLOCK_BYTES),
        parse_options=_parse_options(read),
    )
    yield from reader


def _rebatch(parts: Iterable[pa.RecordBatch | pa.Table], rows: int) -> Iterator[pa.Table]:
    """``parts`` as tables of ``rows`` rows each (the last one fewer), each in one piece."""
    held: list[pa.Table] = []
    count = 0
    for part in parts:
        table = part if isinstance(part, pa.Table) else pa.Table.from_batches([part])
        while table.num_rows:
            take = min(rows - count, table.num_rows)
            held.append(table.slice(0, take))
            table, count = table.slice(take), count + take
            if count == rows:
                yield pa.concat_tables(held).combine_chunks()
                held, count = [], 0
    if count:
        yield pa.concat_tables(held).combine_chunks()


def _sorted(path: Path) -> Iterator[pa.Table]:
    """The carts of ``path`` in cart-id order, equal ids in the order of the file.

    Three passes, in bounded memory: the ids alone, which cut the id range into buckets of about
    ``BATCH_CARTS`` carts each; every cart to its bucket's file in a temporary folder, in file
    order; then each bucket read back and sorted by id (a stable sort keeps file order).
    """
    found = [batch.column(0).to_numpy() for batch in _json_batches(path, _ID_SCHEMA)]
    ids = np.sort(np.concatenate(found)) if found else np.zeros(0, np.int64)
    bounds = np.unique(ids[BATCH_CARTS::BATCH_CARTS])  # the first id of every bucket but one
    del found, ids
    with tempfile.TemporaryDirectory(prefix="pipeline-sort-") as spill:
        files = [Path(spill) / f"{n}.arrow" for n in range(len(bounds) + 1)]
        with contextlib.ExitStack() as stack:
            writers: dict[int, pa.ipc.RecordBatchFileWriter] = {}
            for batch in _json_batches(path, CART_SCHEMA):
                bucket = np.searchsorted(bounds, batch.column(0).to_numpy(), side="right")
                for n in np.unique(bucket):
                    if n not in writers:
                        sink = stack.enter_context(pa.OSFile(str(files[n]), "wb"))
                        writers[n] = stack.enter_context(pa.ipc.new_file(sink, CART_SCHEMA))
                    writers[n].write_batch(batch.take(np.flatnonzero(bucket == n)))
        for file in files:
            if not file.exists():
                continue
            with pa.OSFile(str(file)) as source:
                table = pa.ipc.open_file(source).read_all()
            file.unlink()
            order = np.argsort(table.column("id").to_numpy(), kind="stable")
            yield table.take(order)


def _whole_carts(tables: Iterable[pa.Table], check_order: bool) -> Iterator[pa.Table]:
    """``tables`` as they come, except that carts sharing the id that ends one (duplicates) are
    moved into it from the next one: every cart id ends up in a single table.

    With ``check_order`` raise CartsOutOfOrder at the first id lower than the one before.
    """
    pending: pa.Table | None = None  # the table before, waiting for its id's duplicates
    last = None
    for table in tables:
        if table.num_rows == 0:
            continue
        ids = table.column("id").to_numpy()
        if check_order and (
            (last is not None and not ids[0] >= last) or not (ids[1:] >= ids[:-1]).all()
        ):
            raise CartsOutOfOrder("the carts are not in cart-id order")
        if pending is not None:
            same = int(np.argmin(ids == last)) if (ids != last).any() else len(ids)
            pending = pa.concat_tables([pending, table.slice(0, same)]) if same else pending
            table = table.slice(same)
            if table.num_rows == 0:
                continue
            yield pending
        pending, last = table, ids[-1]
    if pending is not None:
        yield pending


def _cart_tables(path: Path, in_order: bool) -> Iterator[pa.Table]:
    """Raw carts as tables of ``BATCH_CARTS``, in the file's order or sorted by cart id."""
    parts = _json_batches(path, CART_SCHEMA) if in_order else _sorted(path)
    return _rebatch(parts, BATCH_CARTS)


def cart_batches(
    path: Path, *, in_order: bool = True
) -> Iterator[tuple[pd.DataFrame, pd.DataFrame]]:
    """Raw carts as ``(carts, lines)`` frames, batch by batch in cart-id order, whole carts only.

    ``carts``: cart-level fields; ``lines``: one row per cart line, in the API's order, with
    ``cart_id``, ``user_id`` and ``line_no`` (its number within the cart). A cart id never spans
    two batches, so checks per cart, duplicates included, see all of it at once. An empty
    file gives one empty batch. Parsing runs a batch ahead of its use, on a thread.

    ``in_order``: the file is read as it is, and CartsOutOfOrder is raised at the first cart
    whose id is lower than the one before (the API pages in id order, so this is the rule);
    ``False`` sorts by cart id first, keeping equal ids in the order of the file.
    """
    if Path(path).stat().st_size == 0:  # an endpoint with no records
        yield _split_carts(CART_SCHEMA.empty_table())
        return
    tables = prefetch(_cart_tables(Path(path), in_order))
    try:
        for table in _whole_carts(tables, check_order=in_order):
            yield _split_carts(table)
    finally:
        tables.close()


def _split_carts(table: pa.Table) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Cart-level fields, and one row per cart line numbered within its cart."""
    carts = table.select(_CART_FIELDS).to_pandas()
    products = table.column("products")
    parents = pc.list_parent_indices(products)
    flat = pa.Table.from_struct_array(pc.list_flatten(products))
    offsets = pc.list_value_length(products).fill_null(0).to_numpy()
    starts = offsets.cumsum() - offsets
    lines = flat.to_pandas()
    parent = parents.to_numpy()
    lines.insert(0, "cart_id", carts["id"].to_numpy()[parent])
    lines.insert(1, "user_id", carts["userId"].to_numpy()[parent])
    lines.insert(2, "line_no", (pd.RangeIndex(len(lines)).to_numpy() - starts[parent]) + 1)
    return carts, lines
