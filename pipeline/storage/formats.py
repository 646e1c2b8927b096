"""Reading raw JSON Lines and writing CSVs: the only module that touches file formats.

Raw files are parsed by DuckDB with the declared fields and types (``pipeline.schema``: fields we
do not use are skipped, types are fixed rather than guessed): users and products whole, the
carts in batches of whole carts (``cart_batches``), so that memory does not grow with the number
of cart lines.
CSVs are written batch after batch (``CsvWriter``): prepared as Arrow tables (money to cents by
``to_cents``, formulas neutralised) and written by Polars straight to the file, whose CSV writer
takes less than half of pyarrow's CPU for the same bytes (pyarrow encodes what Polars would
write differently: floats, booleans); each write starts the file's way to disk
(``atomic.start_writeback``). They are read back by pyarrow, whole (``read_csv``) or in batches
(``csv_batches``). The business rules stay in pandas (``cleaning``, ``quality``, ``insights``).
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
import threading
from collections.abc import Generator, Iterable, Iterator, Sequence
from pathlib import Path
from queue import Empty, Full, Queue
from types import TracebackType
from typing import Any, BinaryIO

import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.ipc

from pipeline import schema
from pipeline.storage.atomic import start_writeback

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
    """The Arrow schema a raw file is read into: the fields ``pipeline.schema`` declares."""
    return pa.schema([(f.name, _arrow_type(f)) for f in schema.RAW[endpoint].record.fields])


CART_SCHEMA = read_schema("carts")
_CART_FIELDS = [f.name for f in schema.CART.fields if f.items is None]
#: DuckDB's threads and memory while it parses raw files, and its memory to sort carts that are
#: not in id order (it spills to disk beyond it; 10M carts peaked at 2.4 GB in all). The batches
#: are used one at a time, so a few threads do. Each thread reads the file in buffers of 32 MiB:
#: its share of the memory limit must hold two (a limit of 128 MB failed with 3 and 4 threads).
DUCKDB_THREADS = min(4, os.cpu_count() or 1)
DUCKDB_MEMORY_PER_THREAD_MB = 64
DUCKDB_SORT_MEMORY = "512MB"


@contextlib.contextmanager
def _duckdb(threads: int | None = None, memory: str | None = None) -> Iterator[Any]:
    """A DuckDB connection of its own, limited in memory, spilling to a temporary folder."""
    import duckdb

    with tempfile.TemporaryDirectory(prefix="pipeline-duckdb-") as spill:
        threads = threads or DUCKDB_THREADS
        settings = {
            "threads": threads,
            "memory_limit": memory or f"{DUCKDB_MEMORY_PER_THREAD_MB * threads}MB",
            "temp_directory": spill,
            "preserve_insertion_order": True,  # the file's order, as the API paged it
        }
        con = duckdb.connect(config={k: str(v) for k, v in settings.items()})
        try:
            yield con
        finally:
            con.close()


def _source(path: Path, endpoint: str) -> tuple[str, dict[str, Any]]:
    """DuckDB's reader of a raw file with the declared fields, and its parameters.

    DuckDB parses JSON Lines on every core into the same values as pyarrow's reader, bit for
    bit, at half its CPU time, and can hand them over in batches of bounded size.
    """
    columns = {f.name: _duckdb_type(f) for f in schema.RAW[endpoint].record.fields}
    source = "read_json($path, format='newline_delimited', columns=$columns)"
    return source, {"path": str(path), "columns": columns}


def _read_jsonl(path: Path, endpoint: str) -> pa.Table:
    """A whole raw file as a table of the declared fields (``read_schema``)."""
    if Path(path).stat().st_size == 0:  # an endpoint with no records
        return read_schema(endpoint).empty_table()
    source, params = _source(path, endpoint)
    with _duckdb() as con:
        table = con.sql(f"SELECT * FROM {source}", params=params).to_arrow_table()
    return table.cast(read_schema(endpoint))  # the same types whatever DuckDB hands over


def read_users(path: Path) -> pd.DataFrame:
    """Raw users with the address flattened to ``address.city`` etc."""
    return _read_jsonl(path, "users").flatten().to_pandas()


def read_products(path: Path) -> pd.DataFrame:
    return _read_jsonl(path, "products").to_pandas()


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


def _cart_batches(path: Path, in_order: bool) -> Iterator[pa.RecordBatch]:
    """Raw carts as Arrow batches of ``BATCH_CARTS``, parsed by DuckDB with the declared types.

    ``in_order=False`` sorts by cart id, equal ids kept in file order: one thread numbers the
    records as the file has them, and the sort spills to disk beyond DuckDB's memory limit.
    """
    source, params = _source(path, "carts")
    query = f"SELECT * FROM {source}"
    with _duckdb(None if in_order else 1, None if in_order else DUCKDB_SORT_MEMORY) as con:
        if not in_order:  # one thread numbers the records in the order of the file
            con.execute("CREATE SEQUENCE seq")
            numbered = f"SELECT *, nextval('seq') AS seq FROM {source}"
            query = f"SELECT * EXCLUDE (seq) FROM ({numbered}) ORDER BY id, seq"
        yield from con.sql(query, params=params).to_arrow_reader(BATCH_CARTS)


def _prefetch(
    batches: Iterator[pa.RecordBatch], depth: int = 1
) -> Generator[pa.RecordBatch, None, None]:
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
    batches = _prefetch(_cart_batches(Path(path), in_order))
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

    Naming the columns skips converting the others, the bulk of the cost of reading. Each
    column comes in one piece: pandas keeps text in the Arrow chunks the parser made, and a
    ``take`` from a column in many chunks joins them all first, each time (looking the buyers
    of 10M carts up among 5M users, batch by batch, took 9 s of it).
    """
    options = pa_csv.ConvertOptions(
        column_types=CSV_TYPES,
        strings_can_be_null=False,
        include_columns=list(columns) if columns is not None else None,
    )
    table = pa_csv.read_csv(path, parse_options=_PARSE, convert_options=options)
    columns = [_one_chunk(column) for column in table.columns]
    return pa.table(columns, names=table.column_names).to_pandas()


#: Our CSVs quote text, which may hold line breaks (a street given on two lines): read as such.
_PARSE = pa_csv.ParseOptions(newlines_in_values=True)


def _one_chunk(column: pa.ChunkedArray) -> pa.Array:
    """``column`` in one piece; text as large strings, whose offsets do not overflow at 2 GB."""
    if pa.types.is_string(column.type):
        column = column.cast(pa.large_string())
    return column.combine_chunks()


#: The first bytes of FORMULA_PREFIX, for the quick look of ``_may_be_formula``.
_FORMULA_BYTES = np.zeros(256, dtype=bool)
_FORMULA_BYTES[list(b"=+-@\t\r")] = True


def _may_be_formula(values: pa.ChunkedArray | pa.Array) -> bool:
    """Whether any value may start like a formula, from the first byte of each in Arrow's
    buffers: five times faster than the regular expression, which then runs only when a value
    does (or a null hides bytes).
    """
    chunks = values.chunks if isinstance(values, pa.ChunkedArray) else [values]
    for chunk in chunks:
        _, offsets_buffer, data = chunk.buffers()
        if data is None or len(chunk) == 0:
            continue
        width = np.int64 if pa.types.is_large_string(chunk.type) else np.int32
        offsets = np.frombuffer(offsets_buffer, width)[chunk.offset : chunk.offset + len(chunk) + 1]
        starts = offsets[:-1][offsets[1:] > offsets[:-1]]  # type: ignore[operator]  # numpy's stubs lose a dtype chosen at run time
        if _FORMULA_BYTES[np.frombuffer(data, np.uint8)[starts]].any():
            return True
    return False


def neutralise_formulas(values: pa.ChunkedArray | pa.Array) -> pa.ChunkedArray | pa.Array:
    """Prefix a quote to text that a spreadsheet would run as a formula (CSV injection)."""
    if not _may_be_formula(values):
        return values
    risky = pc.match_substring_regex(values, FORMULA_PREFIX).fill_null(False)
    if not pc.any(risky).as_py():
        return values
    quote, empty = pa.scalar("'", values.type), pa.scalar("", values.type)
    return pc.if_else(risky, pc.binary_join_element_wise(quote, values, empty), values)


#: Below this many cents a float64 holds every whole number, and ``_cents`` is exact.
_EXACT_CENTS = 2.0**52


def to_cents(values: pa.ChunkedArray | pa.Array) -> pa.ChunkedArray | pa.Array:
    """Money rounded to cents, as ``MONEY_TYPE``; half a cent rounds away from zero, as finance
    expects (not to even)."""
    if values.type == pa.float64() and values.null_count == 0:
        cents = _cents(values.to_numpy())
        if cents is not None:
            return cents
    return pc.cast(pc.round(values, 2, "half_towards_infinity"), MONEY_TYPE)


def _cents(money: np.ndarray) -> pa.Array | None:
    """What ``pc.round(money, 2, "half_towards_infinity")`` cast to ``MONEY_TYPE`` gives, the
    same for every value (checked on 22M values, ties included), in a third of the CPU: the whole
    cents of ``money * 100`` rounded half away from zero, as C's ``round``, which is what
    Arrow's kernel computes. None for values it is not exact for (infinite, not a number, or
    beyond 2**52 cents), or on a big-endian machine.
    """
    scaled = money * 100
    if sys.byteorder != "little" or not (np.abs(scaled) < _EXACT_CENTS).all():
        return None  # (a decimal128's words are built little-endian below)
    whole = np.trunc(scaled)
    cents = (whole + np.copysign(np.abs(scaled - whole) >= 0.5, scaled)).astype(np.int64)
    words = np.empty((len(cents), 2), dtype=np.int64)  # a decimal128: 16 bytes, little-endian
    words[:, 0], words[:, 1] = cents, cents >> 63
    return pa.Array.from_buffers(MONEY_TYPE, len(cents), [None, pa.py_buffer(words)])


def prepare(table: pa.Table, money: Iterable[str] = ()) -> pa.Table:
    """Arrow table ready for CSV: money rounded to cents, formulas neutralised."""
    money = set(money)
    for i, name in enumerate(table.column_names):
        column = table.column(i)
        if name in money:
            column = to_cents(column)
        elif pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
            column = neutralise_formulas(column)
        else:
            continue
        table = table.set_column(i, name, column)
    return table


#: Rows per CSV chunk: memory holds one chunk's prepared copy (Polars' copy of its text).
CSV_CHUNK_ROWS = 1 << 17


def _polars_writes_as_pyarrow(table: pa.Table) -> bool:
    """Whether Polars writes ``table`` as pyarrow's CSV writer does.

    True for whole numbers, money (``MONEY_TYPE``) and text under distinct, non-empty names: the
    same digits, text always quoted with quotes doubled, nulls empty. Not for floats (Polars
    writes ``41.0`` where pyarrow writes ``41``), booleans (quoted by Polars), other decimals
    (pyarrow writes ``-1E-10`` at a scale of 10), nor for empty or repeated column names or no
    columns at all: those tables are encoded by pyarrow.
    """
    names = table.column_names
    if not names or "" in names or len(set(names)) != len(names):
        return False
    return all(
        pa.types.is_integer(t)
        or t == MONEY_TYPE
        or pa.types.is_string(t)
        or pa.types.is_large_string(t)
        for t in table.schema.types
    )


def _write_csv(table: pa.Table, out: BinaryIO, money: Iterable[str], header: bool) -> None:
    """Write ``table``'s rows to ``out`` as CSV, in pyarrow's CSV dialect whichever library
    encodes them.

    Polars encodes on every core and writes to a file's descriptor itself (``CsvWriter`` opens
    it unbuffered, so nothing waits in Python's buffer): no bytes pass through Python. Encoding
    each chunk into a buffer first took a third more CPU and touched some 50k fresh memory pages
    per 1.5M cart details.
    """
    table = prepare(table, money)
    if _polars_writes_as_pyarrow(table):
        frame = pl.from_arrow(table)
        assert isinstance(frame, pl.DataFrame)  # a Table makes a DataFrame (a Series: an Array)
        frame.write_csv(out, include_header=header, quote_style="non_numeric")
        return
    buffer = pa.BufferOutputStream()
    pa_csv.write_csv(table, buffer, pa_csv.WriteOptions(include_header=header))
    out.write(buffer.getvalue())


def arrow(frame: pd.DataFrame) -> pa.Table:
    """``frame`` as an Arrow table, for a batch handed to several writers: converted once."""
    return pa.Table.from_pandas(frame, preserve_index=False)


class CsvWriter:
    """One CSV file written frame after frame, as one ``write_csv`` of them all would write it.

    The header comes from ``columns``, so a file that gets no rows still has it. Each frame is
    written in chunks of ``CSV_CHUNK_ROWS`` (``_write_csv``), so memory is bounded by a chunk,
    not by the file. ``path`` is a temporary path that the caller renames
    (``atomic.atomic_path``).
    """

    def __init__(
        self, path: str | os.PathLike[str], columns: Sequence[str], money: Iterable[str] = ()
    ) -> None:
        self.columns, self.money, self.rows = list(columns), tuple(money), 0
        self._out = open(path, "wb", buffering=0)  # noqa: SIM115 (closed by close())
        try:
            empty = pa.table({c: pa.array([], pa.string()) for c in self.columns})
            _write_csv(empty, self._out, (), header=True)
        except BaseException:
            self._out.close()
            raise

    def write(self, frame: pd.DataFrame | pa.Table) -> int:
        """Append ``frame``'s rows (its columns must be ``columns``, in order); return them."""
        table = frame
        if not isinstance(table, pa.Table):
            table = pa.Table.from_pandas(table, preserve_index=False)
        if table.column_names != self.columns:
            raise ValueError(f"columns {table.column_names} are not {self.columns}")
        for start in range(0, table.num_rows, CSV_CHUNK_ROWS):
            _write_csv(table.slice(start, CSV_CHUNK_ROWS), self._out, self.money, header=False)
        self.rows += table.num_rows
        start_writeback(self._out.fileno())
        return table.num_rows

    def close(self) -> None:
        self._out.close()

    def __enter__(self) -> CsvWriter:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


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
        path,
        read_options=pa_csv.ReadOptions(block_size=CSV_BLOCK_BYTES),
        parse_options=_PARSE,
        convert_options=options,
    )
    batches = _prefetch(reader)
    try:
        for batch in batches:
            yield batch.to_pandas()
    finally:
        batches.close()


class ExactWriter:
    """An Arrow IPC file written batch by batch, every value as computed (a temporary path).

    For the tasks that sum money: the CSVs hold it rounded to cents, and a sum of rounded lines
    can be cents away from the rounded sum when prices have fractions of a cent. Reading it back
    (``exact_batches``) is a copy, not a parse.
    """

    def __init__(self, path: str | os.PathLike[str], empty: pd.DataFrame) -> None:
        self._schema = pa.Schema.from_pandas(empty, preserve_index=False)
        self._file = pa.OSFile(str(path), "wb")
        try:
            self._out = pa.ipc.new_file(self._file, self._schema)
        except BaseException:
            self._file.close()
            raise

    def write(self, frame: pd.DataFrame | pa.Table) -> None:
        if isinstance(frame, pa.Table):
            self._out.write_table(frame.cast(self._schema))
        else:
            self._out.write_table(pa.Table.from_pandas(frame, self._schema, preserve_index=False))
        start_writeback(self._file.fileno())

    def __enter__(self) -> ExactWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self._out.close()
        finally:
            self._file.close()


def write_copy(frame: pd.DataFrame, path: str | os.PathLike[str], columns: Sequence[str]) -> None:
    """Write ``columns`` of ``frame`` to an Arrow file (a temporary path), as reading them back
    from a CSV of ``frame`` gives them (``read_csv``): text with formulas neutralised as written
    and empty where missing, each column of its CSV type.

    For the tasks that read a few columns of a big CSV (the users'): reading the copy
    (``read_copy``) takes milliseconds where parsing the CSV for them took a quarter of a second
    at 500k users. Numbers with fractions are not copied: a CSV holds money at cents.
    """
    odd = [c for c in columns if CSV_TYPES.get(c, pa.float64()) == pa.float64()]
    if odd:
        raise ValueError(f"columns {odd} hold fractions or are no CSV column: read the CSV")
    schema = _copy_schema(columns)
    table = prepare(pa.Table.from_pandas(frame[list(columns)], preserve_index=False))
    copied = []
    for field, column in zip(schema, table.columns, strict=True):
        column = column.cast(field.type)  # a column with no value at all comes as Arrow's null
        if field.type == pa.large_string():
            column = pc.fill_null(column, "")
        copied.append(column.combine_chunks())
    with pa.OSFile(str(path), "wb") as out, pa.ipc.new_file(out, schema) as ipc:
        ipc.write_table(pa.table(copied, schema=schema))


def _copy_schema(columns: Sequence[str]) -> pa.Schema:
    """Text as large strings in one piece, as ``read_csv`` gives it."""
    types = {pa.string(): pa.large_string()}
    return pa.schema([(c, types.get(CSV_TYPES[c], CSV_TYPES[c])) for c in columns])


class CopyLacksColumns(ValueError):
    """A copy (``write_copy``) was made of other columns than those asked for: by an earlier
    version that copied fewer."""


def read_copy(path: Path, columns: Sequence[str]) -> pd.DataFrame:
    """``columns`` of a file of ``write_copy``: what ``read_csv`` gives of the CSV it copies.

    Raises CopyLacksColumns when the copy does not hold them all.
    """
    with pa.OSFile(str(path)) as source:
        lacking = [c for c in columns if c not in pa.ipc.open_file(source).schema.names]
    if lacking:
        raise CopyLacksColumns(f"{path} holds no column {', '.join(lacking)}")
    return read_exact(path, columns)[list(columns)]


def _exact_reader(
    source: pa.NativeFile, columns: Sequence[str] | None
) -> pa.ipc.RecordBatchFileReader:
    if columns is None:
        return pa.ipc.open_file(source)
    names = pa.ipc.open_file(source).schema.names
    fields = [names.index(c) for c in columns]
    return pa.ipc.open_file(source, options=pa.ipc.IpcReadOptions(included_fields=fields))


def exact_batches(path: Path, columns: Sequence[str] | None = None) -> Iterator[pd.DataFrame]:
    """A file of ``ExactWriter`` batch by batch as written; only ``columns`` if given.

    Read into memory a batch at a time, not memory-mapped: mapped pages would count in the
    process's memory up to the whole file.
    """
    with pa.OSFile(str(path)) as source:
        reader = _exact_reader(source, columns)
        for i in range(reader.num_record_batches):
            yield reader.get_batch(i).to_pandas()


def read_exact(path: Path, columns: Sequence[str] | None = None) -> pd.DataFrame:
    """Read a whole file of ``ExactWriter``; only ``columns`` if given."""
    with pa.OSFile(str(path)) as source:
        return _exact_reader(source, columns).read_all().to_pandas()
