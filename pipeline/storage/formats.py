"""Reading raw JSON Lines and writing CSVs: the only module that touches file formats.

Raw files are parsed with an explicit schema (fields we do not use are skipped, types are fixed
rather than guessed): users and products whole by pyarrow, the carts by DuckDB in batches of
whole carts (``cart_batches``), so that memory does not grow with the number of cart lines.
CSVs are written by pyarrow, far faster than ``DataFrame.to_csv``, batch after batch
(``CsvWriter``) and read back in batches (``csv_batches``). The business rules stay in pandas
(``cleaning``, ``quality``, ``insights``).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import threading
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from queue import Empty, Full, Queue
from types import TracebackType
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.feather as pa_feather
import pyarrow.json as pa_json

from pipeline import schema

#: Columns that hold money: rounded to cents only here, at output, and written as 0.00.
MONEY_TYPE = pa.decimal128(18, 2)

#: A text cell starting with one of these is read as a formula by spreadsheet programs (OWASP).
FORMULA_PREFIX = r"^[=+\-@\t\r]"

#: pyarrow type of each schema kind (raw fields and CSV columns alike).
_ARROW: dict[str, pa.DataType] = {"int": pa.int64(), "number": pa.float64(), "text": pa.string()}


def _arrow_type(f: schema.Field) -> pa.DataType:
    if f.items is None:
        return _ARROW[f.kind]
    struct = pa.struct([(g.name, _arrow_type(g)) for g in f.items.fields])
    return pa.list_(struct) if f.kind == "list" else struct


def read_schema(endpoint: str) -> pa.Schema:
    """The explicit schema a raw file is parsed with: the fields ``pipeline.schema`` declares."""
    return pa.schema([(f.name, _arrow_type(f)) for f in schema.RAW[endpoint].record.fields])


USER_SCHEMA = read_schema("users")
PRODUCT_SCHEMA = read_schema("products")
CART_SCHEMA = read_schema("carts")
_CART_FIELDS = [f.name for f in schema.CART.fields if f.items is None]
#: DuckDB's threads and memory while it parses the carts: beyond the limit a sort spills to disk.
DUCKDB_THREADS = os.cpu_count() or 1
DUCKDB_MEMORY = "256MB"


def _read_jsonl(path: Path, arrow_schema: pa.Schema) -> pa.Table:
    if Path(path).stat().st_size == 0:  # an endpoint with no records (pyarrow rejects the file)
        return arrow_schema.empty_table()
    return pa_json.read_json(
        path,
        read_options=pa_json.ReadOptions(block_size=16 << 20),
        parse_options=pa_json.ParseOptions(
            explicit_schema=arrow_schema, unexpected_field_behavior="ignore"
        ),
    )


def read_users(path: Path) -> pd.DataFrame:
    """Raw users with the address flattened to ``address.city`` etc."""
    return _read_jsonl(path, USER_SCHEMA).flatten().to_pandas()


def read_products(path: Path) -> pd.DataFrame:
    return _read_jsonl(path, PRODUCT_SCHEMA).to_pandas()


#: Carts per batch when the cart lines are streamed (about three lines each): what one batch
#: holds in memory, whatever the number of carts in the file.
BATCH_CARTS = 1 << 17


class CartsOutOfOrder(ValueError):
    """The carts file is not in cart-id order, so it cannot be streamed as it is."""


def _duckdb_type(f: schema.Field) -> str:
    """DuckDB's name for the type of a raw field (the same types as ``_arrow_type``)."""
    if f.items is None:
        return {"int": "BIGINT", "number": "DOUBLE", "text": "VARCHAR"}[f.kind]
    struct = ", ".join(f'"{g.name}" {_duckdb_type(g)}' for g in f.items.fields)
    return f"STRUCT({struct})[]" if f.kind == "list" else f"STRUCT({struct})"


def _duckdb_batches(path: Path, in_order: bool) -> Iterator[pa.RecordBatch]:
    """Raw carts as Arrow batches of ``BATCH_CARTS``, parsed by DuckDB with the declared types.

    DuckDB's JSON reader parses on every core into the same values as pyarrow's (bit for bit)
    at half its CPU time and with a bounded buffer. ``in_order=False`` sorts by cart id,
    equal ids kept in file order: one thread numbers the records as the file has them, and the
    sort spills to a temporary folder beyond its memory limit.
    """
    import duckdb

    columns = {f.name: _duckdb_type(f) for f in schema.CART.fields}
    with tempfile.TemporaryDirectory(prefix="pipeline-duckdb-") as spill:
        settings = {
            "threads": 1 if not in_order else DUCKDB_THREADS,
            "memory_limit": DUCKDB_MEMORY,
            "temp_directory": spill,
            "preserve_insertion_order": True,
        }
        con = duckdb.connect(config={k: str(v) for k, v in settings.items()})
        try:
            source = "read_json($path, format='newline_delimited', columns=$columns)"
            query = f"SELECT * FROM {source}"
            if not in_order:
                numbered = f"SELECT *, row_number() OVER () AS seq FROM {source}"
                query = f"SELECT * EXCLUDE (seq) FROM ({numbered}) ORDER BY id, seq"
            params = {"path": str(path), "columns": columns}
            yield from con.sql(query, params=params).to_arrow_reader(BATCH_CARTS)
        finally:
            con.close()


def _prefetch(batches: Iterator[pa.RecordBatch], depth: int = 2) -> Iterator[pa.RecordBatch]:
    """``batches`` produced on a thread, up to ``depth`` ahead: parsing overlaps their use
    (pyarrow and DuckDB release the GIL while they parse)."""
    queue: Queue[tuple[str, Any]] = Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            for batch in batches:
                while not stop.is_set():
                    try:
                        queue.put(("batch", batch), timeout=0.1)
                        break
                    except Full:
                        continue
                if stop.is_set():
                    return
            queue.put(("end", None))
        except BaseException as exc:  # handed to the consumer, raised there
            queue.put(("error", exc))
        finally:
            close = getattr(batches, "close", None)
            if close is not None:
                close()

    thread = threading.Thread(target=produce, name="read-carts", daemon=True)
    thread.start()
    try:
        while True:
            kind, item = queue.get()
            if kind == "end":
                return
            if kind == "error":
                raise item
            yield item
    finally:
        stop.set()
        while thread.is_alive():  # unblock a producer waiting on a full queue
            with contextlib.suppress(Empty):
                queue.get(timeout=0.1)
        thread.join()


def _whole_carts(batches: Iterable[pa.RecordBatch], check_order: bool) -> Iterator[pa.Table]:
    """``batches`` as they come, except that carts sharing the id that ends a batch (duplicates)
    are moved into it from the next one: every cart id ends up in a single batch.

    With ``check_order`` raise CartsOutOfOrder at the first id lower than the one before.
    """
    pending: pa.Table | None = None  # the batch before, waiting for its id's duplicates
    last = None
    for batch in batches:
        if batch.num_rows == 0:
            continue
        ids = batch.column("id").to_numpy(zero_copy_only=False)
        if check_order and (
            (last is not None and not ids[0] >= last) or not (ids[1:] >= ids[:-1]).all()
        ):
            raise CartsOutOfOrder("the carts are not in cart-id order")
        table = pa.Table.from_batches([batch])
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


def cart_batches(
    path: Path, *, in_order: bool = True
) -> Iterator[tuple[pd.DataFrame, pd.DataFrame]]:
    """Raw carts as ``(carts, lines)`` frames, batch by batch in cart-id order, whole carts only.

    ``carts``: cart-level fields; ``lines``: one row per cart line, in the API's order, with
    ``cart_id``, ``user_id`` and ``line_no`` (its number within the cart). A cart id never spans
    two batches, so checks per cart, duplicates included, see all of it at once. An empty
    file gives one empty batch.

    ``in_order``: the file is read as it is, and CartsOutOfOrder is raised at the first cart
    whose id is lower than the one before (the API pages in id order, so this is the rule);
    ``False`` sorts by cart id first, keeping equal ids in the order of the file.
    """
    if Path(path).stat().st_size == 0:  # an endpoint with no records
        yield _split_carts(CART_SCHEMA.empty_table())
        return
    batches = _prefetch(_duckdb_batches(Path(path), in_order))
    try:
        for table in _whole_carts(batches, check_order=in_order):
            yield _split_carts(table)
    finally:
        batches.close()


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


#: Types of the columns of our own CSVs, so that e.g. postal code "06413" stays text.
CSV_TYPES: dict[str, pa.DataType] = {c: _ARROW[k] for c, k in schema.column_kinds().items()}


def read_csv(path: Path, columns: Sequence[str] | None = None) -> pd.DataFrame:
    """Read one of our own CSVs with fixed column types; only ``columns`` if given.

    Naming the columns skips converting the others, the bulk of the cost of reading.
    """
    options = pa_csv.ConvertOptions(
        column_types=CSV_TYPES,
        strings_can_be_null=False,
        include_columns=list(columns) if columns is not None else None,
    )
    return pa_csv.read_csv(path, convert_options=options).to_pandas()


def neutralise_formulas(values: pa.ChunkedArray | pa.Array) -> pa.ChunkedArray | pa.Array:
    """Prefix a quote to text that a spreadsheet would run as a formula (CSV injection)."""
    risky = pc.match_substring_regex(values, FORMULA_PREFIX).fill_null(False)
    if not pc.any(risky).as_py():
        return values
    quote, empty = pa.scalar("'", values.type), pa.scalar("", values.type)
    return pc.if_else(risky, pc.binary_join_element_wise(quote, values, empty), values)


def prepare(table: pa.Table, money: Iterable[str] = ()) -> pa.Table:
    """Arrow table ready for CSV: money rounded to cents, formulas neutralised."""
    money = set(money)
    for i, name in enumerate(table.column_names):
        column = table.column(i)
        if name in money:
            # half a cent rounds away from zero, as finance expects (not to even)
            column = pc.cast(pc.round(column, 2, "half_towards_infinity"), MONEY_TYPE)
        elif pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
            column = neutralise_formulas(column)
        else:
            continue
        table = table.set_column(i, name, column)
    return table


#: Rows per CSV chunk. Rows are independent in CSV, so chunks are prepared and encoded on a
#: thread pool (Arrow releases the GIL) and written in order: the same bytes as one pass, about
#: 40% faster at a million carts on 2 cores, with memory bounded by the chunks in flight.
CSV_CHUNK_ROWS = 1 << 17
CSV_THREADS = min(4, os.cpu_count() or 1)


def _encode_csv(table: pa.Table, money: Iterable[str], header: bool) -> pa.Buffer:
    sink = pa.BufferOutputStream()
    pa_csv.write_csv(prepare(table, money), sink, pa_csv.WriteOptions(include_header=header))
    return sink.getvalue()


class CsvWriter:
    """One CSV file written frame after frame, as one ``write_csv`` of them all would write it.

    The header comes from ``columns``, so a file that gets no rows still has it. Each frame is
    cut into chunks encoded on a thread pool and written in order; at most a few chunks are in
    flight, so memory is bounded by them, not by the file. ``path`` is a temporary path that
    the caller renames (``atomic.atomic_path``).
    """

    def __init__(
        self, path: str | os.PathLike[str], columns: Sequence[str], money: Iterable[str] = ()
    ) -> None:
        self.columns, self.money, self.rows = list(columns), tuple(money), 0
        self._out = open(path, "wb")  # noqa: SIM115 (closed by close())
        self._pool = ThreadPoolExecutor(CSV_THREADS, thread_name_prefix="csv")
        self._pending: deque[Future[pa.Buffer]] = deque()
        empty = pa.table({c: pa.array([], pa.string()) for c in self.columns})
        self._out.write(_encode_csv(empty, (), header=True))

    def write(self, frame: pd.DataFrame | pa.Table) -> int:
        """Append ``frame``'s rows (its columns must be ``columns``, in order); return them."""
        table = frame
        if not isinstance(table, pa.Table):
            table = pa.Table.from_pandas(table, preserve_index=False)
        if table.column_names != self.columns:
            raise ValueError(f"columns {table.column_names} are not {self.columns}")
        for start in range(0, table.num_rows, CSV_CHUNK_ROWS):
            chunk = table.slice(start, CSV_CHUNK_ROWS)
            self._pending.append(self._pool.submit(_encode_csv, chunk, self.money, False))
            while len(self._pending) > CSV_THREADS:
                self._out.write(self._pending.popleft().result())
        self.rows += table.num_rows
        return table.num_rows

    def close(self, discard: bool = False) -> None:
        """Write what is still in flight (unless ``discard``: the file is abandoned) and close."""
        try:
            while self._pending and not discard:
                self._out.write(self._pending.popleft().result())
        finally:
            for future in self._pending:
                future.cancel()
            self._pool.shutdown(wait=True)
            self._out.close()

    def __enter__(self) -> CsvWriter:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close(discard=exc is not None)


def write_csv(frame: pd.DataFrame, path: str | os.PathLike[str], money: Iterable[str] = ()) -> None:
    """Write ``frame`` as CSV to ``path`` (a temporary path: the caller renames it)."""
    with CsvWriter(path, list(frame.columns), money) as out:
        out.write(frame)


#: Bytes of CSV parsed per batch by ``csv_batches``: some 300k rows of cleaned cart lines.
CSV_BLOCK_BYTES = 16 << 20


def csv_batches(path: Path, columns: Sequence[str] | None = None) -> Iterator[pd.DataFrame]:
    """One of our own CSVs batch by batch (about ``CSV_BLOCK_BYTES`` each), typed as ``read_csv``
    reads it; only ``columns`` if given. Parsing runs a batch ahead of its use, on a thread."""
    options = pa_csv.ConvertOptions(
        column_types=CSV_TYPES,
        strings_can_be_null=False,
        include_columns=list(columns) if columns is not None else None,
    )
    reader = pa_csv.open_csv(
        path, read_options=pa_csv.ReadOptions(block_size=CSV_BLOCK_BYTES), convert_options=options
    )
    batches = _prefetch(reader)
    try:
        for batch in batches:
            yield batch.to_pandas()
    finally:
        batches.close()


def write_exact(frame: pd.DataFrame, path: str | os.PathLike[str]) -> None:
    """Write ``frame`` as an Arrow IPC file, every value as computed (a temporary path).

    For the tasks that sum money: the CSVs hold it rounded to cents, and a sum of rounded lines
    can be cents away from the rounded sum when prices have fractions of a cent.
    """
    table = pa.Table.from_pandas(frame, preserve_index=False)
    pa_feather.write_feather(table, str(path), compression="uncompressed")


def read_exact(path: Path, columns: Sequence[str] | None = None) -> pd.DataFrame:
    """Read a file of ``write_exact``; only ``columns`` if given."""
    cols = list(columns) if columns is not None else None
    return pa_feather.read_table(str(path), columns=cols, memory_map=False).to_pandas()
